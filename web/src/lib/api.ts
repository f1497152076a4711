import { backoffDelay, isAbortError, parseRetryAfter, type BackoffOptions } from './backoff';
import type { CancelResponse, ErrorBody, InitiateResponse, MissingFilesPolicy, StatusDocument } from './types';

/** How the client reaches the facade. */
export interface ApiConfig {
  /** The facade's origin and path prefix, without a trailing slash; '' for the page's own origin. */
  baseUrl?: string;
  /** Injectable for tests; globalThis.fetch by default. */
  fetch?: typeof fetch;
  /** Extra headers for every request, computed per request. */
  headers?: () => Record<string, string>;
  /**
   * A W3C trace context `traceparent` (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`) to
   * send with every request, or a function asked before each request, so that the server's trace
   * of the download joins the page's. Nothing is sent when it is missing, empty or malformed.
   * The event stream cannot carry it: EventSource sends no custom headers.
   */
  traceparent?: Traceparent;
}

/** A traceparent, or where to get the current one (from the page's tracing library, say). */
export type Traceparent = string | (() => string | null | undefined);

// Version 00 as written by W3C Trace Context; all-zero ids are invalid.
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The traceparent to send, or undefined when there is none or it is malformed. */
export function resolveTraceparent(tp: Traceparent | undefined): string | undefined {
  const value = (typeof tp === 'function' ? tp() : tp)?.trim().toLowerCase();
  return value && TRACEPARENT.test(value) ? value : undefined;
}

/** A request that did not get the answer it wanted. status 0 is a network failure. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** From Retry-After, when the server sent one (429, 503, …). */
  readonly retryAfterMs?: number;

  constructor(status: number, body: ErrorBody, retryAfterMs?: number) {
    super(body.message);
    this.name = 'ApiError';
    this.status = status;
    this.code = body.code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Network failures, 408, 429 and 5xx answers may succeed later; the rest will not. */
export function isRetryable(e: unknown): boolean {
  if (!(e instanceof ApiError)) return !isAbortError(e);
  return e.status === 0 || e.status === 408 || e.status === 429 || e.status >= 500;
}

export function isNotFound(e: unknown): boolean {
  return e instanceof ApiError && e.status === 404;
}

/**
 * React Query's retryDelay for the facade: the delay before retry number failureCount + 1 (React
 * Query counts failures from 0), the server's Retry-After when it sent one.
 */
export function retryDelay(failureCount: number, error: unknown, backoff?: BackoffOptions): number {
  return backoffDelay(failureCount + 1, error instanceof ApiError ? error.retryAfterMs : undefined, backoff);
}

/** What to tell the user about a failed request. */
export function errorBodyOf(e: unknown): ErrorBody {
  if (e instanceof ApiError) return { code: e.code, message: e.message };
  return { code: 'Error', message: e instanceof Error ? e.message : String(e) };
}

function url(cfg: ApiConfig, path: string): string {
  return `${(cfg.baseUrl ?? '').replace(/\/+$/, '')}${path}`;
}

async function request<T>(
  cfg: ApiConfig,
  method: string,
  path: string,
  init: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<T> {
  const doFetch = cfg.fetch ?? globalThis.fetch;
  const headers: Record<string, string> = { Accept: 'application/json', ...cfg.headers?.(), ...init.headers };
  const traceparent = resolveTraceparent(cfg.traceparent);
  if (traceparent) headers.traceparent = traceparent;
  if (init.body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await doFetch(url(cfg, path), {
      method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: init.signal,
      cache: 'no-store',
    });
  } catch (e) {
    if (isAbortError(e)) throw e;
    throw new ApiError(0, { code: 'NetworkError', message: 'the server cannot be reached' });
  }
  let payload: unknown;
  try {
    payload = await res.json();
  } catch (e) {
    if (isAbortError(e)) throw e;
    payload = undefined;
  }
  if (res.ok) return payload as T;
  const body = (payload as { error?: Partial<ErrorBody> } | undefined)?.error;
  throw new ApiError(
    res.status,
    {
      code: typeof body?.code === 'string' ? body.code : `HTTP${res.status}`,
      message: typeof body?.message === 'string' ? body.message : `the server answered ${res.status}`,
    },
    parseRetryAfter(res.headers.get('Retry-After')),
  );
}

/**
 * POST /v1/download/initiate. The same idempotencyKey and request always name the same job.
 * missing_files is sent only for 'skip': 'fail' is the default, and an older facade refuses
 * fields it does not know.
 */
export function initiate(
  cfg: ApiConfig,
  fileIds: number[],
  idempotencyKey: string,
  signal?: AbortSignal,
  missingFiles?: MissingFilesPolicy,
): Promise<InitiateResponse> {
  return request(cfg, 'POST', '/v1/download/initiate', {
    body: missingFiles === 'skip' ? { file_ids: fileIds, missing_files: 'skip' } : { file_ids: fileIds },
    headers: { 'Idempotency-Key': idempotencyKey },
    signal,
  });
}

/** GET /v1/download/status/{jobId}. */
export function getStatus(cfg: ApiConfig, jobId: string, signal?: AbortSignal): Promise<StatusDocument> {
  return request(cfg, 'GET', `/v1/download/status/${encodeURIComponent(jobId)}`, { signal });
}

/** DELETE /v1/download/{jobId}. */
export function cancelJob(cfg: ApiConfig, jobId: string, signal?: AbortSignal): Promise<CancelResponse> {
  return request(cfg, 'DELETE', `/v1/download/${encodeURIComponent(jobId)}`, { signal });
}

/** The Server-Sent Events stream of a job. */
export function eventsUrl(cfg: ApiConfig, jobId: string): string {
  return url(cfg, `/v1/download/events/${encodeURIComponent(jobId)}`);
}

/**
 * Where a status document's archiveUrl points: a path is the facade's (baseUrl + path), an
 * absolute http(s) URL is taken as it is; anything else is not a link to follow (undefined).
 */
export function archiveLink(cfg: Pick<ApiConfig, 'baseUrl'>, archiveUrl: string | undefined): string | undefined {
  if (!archiveUrl) return undefined;
  if (/^https?:\/\//i.test(archiveUrl)) return archiveUrl;
  // '//host/…' would leave the facade's origin.
  if (archiveUrl.startsWith('/') && !archiveUrl.startsWith('//')) return url(cfg, archiveUrl);
  return undefined;
}

/** A random UUID v4, also where crypto.randomUUID is missing (pages not served securely). */
export function randomId(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  const b = new Uint8Array(16);
  if (typeof c?.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
