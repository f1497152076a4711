/** The facade's accepted range of file ids (see openapi.json). */
export const MIN_FILE_ID = 10_000;
export const MAX_FILE_ID = 100_000_000;
export const MAX_FILE_IDS = 1000;

/** Parses "70000, 70007 70014" into sorted unique ids, or says what is wrong. */
export function parseIds(text: string): { ids: number[] } | { error: string } {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  if (parts.length === 0) return { error: 'Enter at least one file id.' };
  const ids = new Set<number>();
  for (const p of parts) {
    if (!/^\d+$/.test(p)) return { error: `“${p}” is not a file id: use whole numbers.` };
    const n = Number(p);
    if (n < MIN_FILE_ID || n > MAX_FILE_ID) {
      return { error: `${p} is out of range: file ids go from ${MIN_FILE_ID} to ${MAX_FILE_ID}.` };
    }
    ids.add(n);
  }
  if (ids.size > MAX_FILE_IDS) return { error: `At most ${MAX_FILE_IDS} file ids per archive.` };
  return { ids: [...ids].sort((a, b) => a - b) };
}
