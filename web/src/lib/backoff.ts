/** How long to wait before retrying a failed request. */
export interface BackoffOptions {
  /** The first retry's nominal delay. */
  baseMs?: number;
  /** No exponential delay grows past this. */
  maxMs?: number;
  /** A Retry-After longer than this is cut to it, so a client never sleeps for hours. */
  maxRetryAfterMs?: number;
  /** Injectable for tests; Math.random by default. */
  random?: () => number;
}

export const DEFAULT_BACKOFF: Required<Omit<BackoffOptions, 'random'>> = {
  baseMs: 1000,
  maxMs: 30_000,
  maxRetryAfterMs: 300_000,
};

/**
 * The delay before retry number `attempt` (1 for the first retry).
 *
 * Without a Retry-After it is exponential with "equal jitter": half of base·2^(attempt-1)
 * (capped at maxMs) plus a random part of the other half, so clients that failed together do
 * not retry together. With a Retry-After (429, 503) the server's word is the floor, plus up to
 * 10 % (at most 1 s) of jitter for the same reason.
 */
export function backoffDelay(attempt: number, retryAfterMs?: number, options: BackoffOptions = {}): number {
  const { baseMs, maxMs, maxRetryAfterMs } = { ...DEFAULT_BACKOFF, ...options };
  const random = options.random ?? Math.random;
  if (retryAfterMs !== undefined && retryAfterMs >= 0) {
    const floor = Math.min(retryAfterMs, maxRetryAfterMs);
    return Math.round(floor + random() * Math.min(1000, floor * 0.1));
  }
  const n = Math.max(1, Math.floor(attempt));
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(n - 1, 30));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/**
 * Parses a Retry-After header: delta-seconds or an HTTP date. Returns milliseconds, or
 * undefined when the header is absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value == null) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

export function abortError(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

export function isAbortError(e: unknown): boolean {
  return e instanceof Error && e.name === 'AbortError';
}
