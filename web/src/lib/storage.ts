/**
 * Remembers each browser's jobs in localStorage, keyed by the sorted file ids, so that a reload
 * or another tab resumes the job instead of starting a second one.
 */

export const STORAGE_PREFIX = 'download-operator:job:';

/** What is kept for one set of file ids. */
export interface StoredJob {
  fileIds: number[];
  /** Sent with every initiate of this job: a reload during the initiate replays, never duplicates. */
  idempotencyKey: string;
  /** Set once the facade answered the initiate. */
  jobId?: string;
  /** Epoch milliseconds of the initiate. */
  createdAt: number;
}

/** Sorted, de-duplicated ids: the canonical form of a request. */
export function normalizeFileIds(fileIds: readonly number[]): number[] {
  return Array.from(new Set(fileIds)).sort((a, b) => a - b);
}

export function storageKey(fileIds: readonly number[]): string {
  return STORAGE_PREFIX + normalizeFileIds(fileIds).join(',');
}

/** window.localStorage when it can be used (it throws in some private modes), else null. */
export function defaultStorage(): Storage | null {
  try {
    const s = globalThis.localStorage;
    return s ?? null;
  } catch {
    return null;
  }
}

function parse(raw: string | null): StoredJob | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<StoredJob>;
    if (!Array.isArray(v.fileIds) || typeof v.idempotencyKey !== 'string') return undefined;
    if (v.jobId !== undefined && typeof v.jobId !== 'string') return undefined;
    return {
      fileIds: v.fileIds.filter((x): x is number => Number.isInteger(x)),
      idempotencyKey: v.idempotencyKey,
      jobId: v.jobId,
      createdAt: typeof v.createdAt === 'number' ? v.createdAt : 0,
    };
  } catch {
    return undefined;
  }
}

export function loadJob(storage: Storage | null, fileIds: readonly number[]): StoredJob | undefined {
  try {
    return parse(storage?.getItem(storageKey(fileIds)) ?? null);
  } catch {
    return undefined;
  }
}

export function saveJob(storage: Storage | null, job: StoredJob): void {
  try {
    storage?.setItem(storageKey(job.fileIds), JSON.stringify({ ...job, fileIds: normalizeFileIds(job.fileIds) }));
  } catch {
    // Full or forbidden: resuming is a convenience, the download still works.
  }
}

export function clearJob(storage: Storage | null, fileIds: readonly number[]): void {
  try {
    storage?.removeItem(storageKey(fileIds));
  } catch {
    // see saveJob
  }
}

/** Every job this browser remembers, oldest first. */
export function listJobs(storage: Storage | null): StoredJob[] {
  const out: StoredJob[] = [];
  if (!storage) return out;
  try {
    for (let i = 0; i < storage.length; i++) {
      const k = storage.key(i);
      if (!k?.startsWith(STORAGE_PREFIX)) continue;
      const job = parse(storage.getItem(k));
      if (job) out.push(job);
    }
  } catch {
    return out;
  }
  return out.sort((a, b) => a.createdAt - b.createdAt);
}
