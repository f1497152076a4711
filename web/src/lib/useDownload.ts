import { QueryClient, QueryClientContext, useQuery } from '@tanstack/react-query';
import { useCallback, useContext, useEffect, useMemo, useRef, useState } from 'react';
import {
  ApiError,
  archiveLink,
  cancelJob,
  eventsUrl,
  getStatus,
  initiate,
  isRetryable,
  randomId,
  resolveTraceparent,
  type ApiConfig,
} from './api';
import { backoffDelay, isAbortError, sleep, type BackoffOptions } from './backoff';
import { clearJob, defaultStorage, loadJob, normalizeFileIds, saveJob, skipMissing, storageKey } from './storage';
import { CODE_CANCELLED, isTerminal, type ErrorBody, type MissingFilesPolicy, type StatusDocument } from './types';

/**
 * What the hook reports:
 * - idle: nothing asked yet (only without autoStart);
 * - initiating: the initiate request is in flight or waiting to be retried;
 * - pending, processing: the job's own states;
 * - completed: downloadUrl is ready;
 * - failed: `error` says why;
 * - cancelled: by this client, another tab, or anyone holding the jobId;
 * - expired: the archive's link ran out, or the finished job was removed.
 */
export type DownloadStatus =
  | 'idle'
  | 'initiating'
  | 'pending'
  | 'processing'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'expired';

export interface UseDownloadOptions extends ApiConfig {
  /** Initiate on mount when no job of these ids is remembered. Default true. */
  autoStart?: boolean;
  /**
   * What to do about requested ids that do not exist: 'fail' (the facade's default) fails the
   * job; 'skip' leaves them out (skippedFileIds lists them). A different policy is a different
   * job: it is remembered apart from the same ids' default one.
   */
  missingFiles?: MissingFilesPolicy;
  /** How often the status is polled without a live event stream. Default 3000. */
  pollIntervalMs?: number;
  /** How often the status is still polled while the event stream is live, as a safety net. Default 30000. */
  ssePollIntervalMs?: number;
  /** Follow the job through Server-Sent Events when the browser can. Default true. */
  sse?: boolean;
  /** Injectable for tests; globalThis.EventSource by default, null to never use SSE. */
  EventSource?: typeof EventSource | null;
  /** Where jobs are remembered; localStorage by default, null for nowhere. */
  storage?: Storage | null;
  /** Used instead of the one from QueryClientProvider (or a module-wide default). */
  queryClient?: QueryClient;
  /** Retry delays of failed requests. */
  backoff?: BackoffOptions;
  /** How often a 404 of a job this client just created is retried (the cache catching up). Default 3. */
  maxNotFoundRetries?: number;
  /** How often a failed initiate is retried before the job is reported failed. Default 8. */
  maxInitiateRetries?: number;
  /** Injectable clock for tests. */
  now?: () => number;
}

/** A transient problem the hook is working around. */
export interface RetryInfo {
  code: string;
  message: string;
  /** 1 for the first retry. */
  attempt: number;
  /** When the next attempt is due, epoch ms (initiate only; polls retry on their own schedule). */
  nextAt?: number;
}

export interface UseDownloadResult {
  status: DownloadStatus;
  jobId?: string;
  /** 0..100; 100 when completed. That of the current worker attempt: a retry starts again from 0. */
  progress: number;
  /**
   * processing only: the worker attempt the progress belongs to, 1 for the first (as the facade
   * reports it; older facades do not).
   */
  attempts?: number;
  bytesDone?: number;
  bytesTotal?: number;
  etaSeconds?: number;
  /** completed only: the presigned storage URL, valid until expiresAt. */
  downloadUrl?: string;
  /**
   * completed only: the stable link (the facade's baseUrl + the document's archiveUrl), which
   * redirects to a freshly signed URL whenever it is followed while the job exists. Prefer it
   * to downloadUrl, which runs out; undefined with a facade that does not offer it.
   */
  archiveUrl?: string;
  /** When downloadUrl stops working (the stable link keeps working while the job exists). */
  expiresAt?: string;
  /** completed only: when archiveUrl stops working (the job and its archive are deleted then). */
  archiveExpiresAt?: string;
  /**
   * completed only: when the link to offer (archiveUrl, else downloadUrl) stops working:
   * archiveExpiresAt with a stable link, expiresAt without one (or from a facade that does not
   * say). The status turns 'expired' then.
   */
  linkExpiresAt?: string;
  size?: number;
  sha256?: string;
  /** completed only: requested ids left out because they do not exist (missingFiles 'skip'). */
  skippedFileIds?: number[];
  /** Why the job failed (failed), or why it could not be asked for. */
  error?: ErrorBody;
  /** Something worth telling the user that is not an error (a saved job that no longer exists). */
  notice?: string;
  /** Set while requests fail and are retried with backoff. */
  retrying?: RetryInfo;
  /** The job was found in storage rather than started here. */
  resumed: boolean;
  /** A cancel request is in flight. */
  cancelling: boolean;
  /** How the job is followed right now. */
  transport: 'sse' | 'polling' | 'none';
  /** Initiate a new job, unless one is already being prepared (then it does nothing). */
  start: () => void;
  /** Cancel the job being prepared (or the initiate being retried). */
  cancel: () => Promise<void>;
  /** Start over with a new job: after a failure, a cancel or an expiry. */
  retry: () => void;
  /** Call once the archive was downloaded: the job is then forgotten by this browser. */
  markDownloaded: () => void;
}

type Phase = 'idle' | 'initiating' | 'tracking' | 'failed' | 'cancelled' | 'expired';

interface State {
  key: string;
  phase: Phase;
  idempotencyKey?: string;
  jobId?: string;
  createdAt: number;
  resumed: boolean;
  initialEta?: number;
  error?: ErrorBody;
  notice?: string;
  retrying?: RetryInfo;
  cancelling: boolean;
}

const EVENT_SOURCE_CLOSED = 2;

let fallbackClient: QueryClient | undefined;

function useClient(explicit?: QueryClient): QueryClient {
  const fromContext = useContext(QueryClientContext);
  if (explicit) return explicit;
  if (fromContext) return fromContext;
  if (!fallbackClient) {
    fallbackClient = new QueryClient();
    fallbackClient.mount();
  }
  return fallbackClient;
}

function initialState(
  key: string,
  ids: number[],
  missingFiles: 'skip' | undefined,
  storage: Storage | null,
  autoStart: boolean,
  now: number,
): State {
  const stored = loadJob(storage, ids, missingFiles);
  const base = { key, createdAt: now, resumed: false, cancelling: false };
  if (stored?.jobId) {
    return { ...base, phase: 'tracking', jobId: stored.jobId, idempotencyKey: stored.idempotencyKey, createdAt: stored.createdAt, resumed: true };
  }
  if (stored) {
    // The page went away while the initiate was in flight: replay it with the same key.
    return { ...base, phase: 'initiating', idempotencyKey: stored.idempotencyKey, createdAt: stored.createdAt, resumed: true };
  }
  if (autoStart) return { ...base, phase: 'initiating', idempotencyKey: randomId() };
  return { ...base, phase: 'idle' };
}

/**
 * The order of a job's states; a document never replaces a newer one (a slow poll racing an
 * event). While processing, a later worker attempt is newer whatever its bytesDone (a retry
 * starts again from 0); within one attempt bytes only grow, so fewer means an older document.
 * A document without attempts counts as the first (the facade leaves it out before the first
 * worker starts, and an older facade never sends it: then bytes alone decide, as they did).
 */
function isNewer(prev: StatusDocument | undefined, next: StatusDocument): boolean {
  if (!prev || prev.jobId !== next.jobId) return true;
  const rank = (d: StatusDocument) => (isTerminal(d) ? 2 : d.status === 'processing' ? 1 : 0);
  if (rank(next) !== rank(prev)) return rank(next) > rank(prev);
  if (next.status !== 'processing') return true;
  const attempt = (d: StatusDocument) => d.attempts ?? 1;
  if (attempt(next) !== attempt(prev)) return attempt(next) > attempt(prev);
  return (next.bytesDone ?? 0) >= (prev.bytesDone ?? 0);
}

function errorBody(e: unknown): ErrorBody {
  if (e instanceof ApiError) return { code: e.code, message: e.message };
  return { code: 'Error', message: e instanceof Error ? e.message : String(e) };
}

export function statusQueryKey(baseUrl: string | undefined, jobId: string | undefined) {
  return ['download-operator', 'status', baseUrl ?? '', jobId ?? ''] as const;
}

/**
 * Prepares one archive of fileIds and follows it to the end: initiates (with an
 * Idempotency-Key, so retries never create two jobs), then follows the status through SSE when
 * the browser can and polls every 3 s otherwise, backing off on errors. The job is remembered
 * in localStorage under the sorted ids, so a reload or another tab resumes it.
 */
export function useDownload(fileIds: readonly number[], options: UseDownloadOptions = {}): UseDownloadResult {
  const {
    autoStart = true,
    pollIntervalMs = 3000,
    ssePollIntervalMs = 30_000,
    sse = true,
    maxNotFoundRetries = 3,
    maxInitiateRetries = 8,
  } = options;
  const storage = options.storage === undefined ? defaultStorage() : options.storage;
  const client = useClient(options.queryClient);

  // Everything below depends on the ids' canonical form (and the policy), not on the array's identity.
  const missingFiles = skipMissing(options.missingFiles);
  const key = storageKey(fileIds, missingFiles);
  const ids = useMemo(() => normalizeFileIds(fileIds), [key]); // eslint-disable-line react-hooks/exhaustive-deps

  // The latest options, for callbacks and effects that should not restart when they change.
  const opts = useRef(options);
  opts.current = options;
  const api: ApiConfig = useMemo(
    () => ({
      baseUrl: options.baseUrl,
      fetch: (...args) => (opts.current.fetch ?? globalThis.fetch)(...args),
      headers: () => opts.current.headers?.() ?? {},
      // Read per request, so that a traceparent that changes (a new page span) is the one sent.
      traceparent: () => resolveTraceparent(opts.current.traceparent),
    }),
    [options.baseUrl],
  );
  const now = useCallback(() => (opts.current.now ?? Date.now)(), []);
  const backoff = useCallback(
    (attempt: number, retryAfterMs?: number) => backoffDelay(attempt, retryAfterMs, opts.current.backoff),
    [],
  );

  const [state, setState] = useState<State>(() => initialState(key, ids, missingFiles, storage, autoStart, now()));
  let current = state;
  if (state.key !== key) {
    // New ids: start from what is remembered for them (React re-renders at once).
    current = initialState(key, ids, missingFiles, storage, autoStart, now());
    setState(current);
  }
  const { phase, jobId } = current;
  const stateRef = useRef(current);
  stateRef.current = current;
  const same = (s: State, k = key) => s.key === k;

  // ---- initiate ----------------------------------------------------------------------------
  const cancelRequested = useRef(false);
  const initiateCancel = useRef<AbortController | null>(null);

  useEffect(() => {
    if (phase !== 'initiating' || !current.idempotencyKey) return;
    const idem = current.idempotencyKey;
    const createdAt = current.createdAt;
    // Remembered before the request leaves: a reload in between replays the same key.
    saveJob(storage, { fileIds: ids, missingFiles, idempotencyKey: idem, createdAt });
    const unmount = new AbortController();
    const cancelSleep = new AbortController();
    initiateCancel.current = cancelSleep;
    const mine = (s: State) => same(s) && s.phase === 'initiating' && s.idempotencyKey === idem;
    const finishCancelled = () => {
      clearJob(storage, ids, missingFiles);
      setState((s) => (mine(s) ? { ...s, phase: 'cancelled', cancelling: false, retrying: undefined } : s));
    };

    void (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          const resp = await initiate(api, ids, idem, unmount.signal, missingFiles);
          if (unmount.signal.aborted) return;
          if (cancelRequested.current) {
            // Cancelled while the request was in flight: the job exists, so remove it.
            await cancelJob(api, resp.jobId).catch(() => undefined);
            finishCancelled();
            return;
          }
          saveJob(storage, { fileIds: ids, missingFiles, idempotencyKey: idem, createdAt, jobId: resp.jobId });
          setState((s) =>
            mine(s)
              ? { ...s, phase: 'tracking', jobId: resp.jobId, resumed: false, initialEta: resp.etaSeconds, retrying: undefined }
              : s,
          );
          return;
        } catch (e) {
          if (unmount.signal.aborted || isAbortError(e)) return;
          if (cancelRequested.current) {
            finishCancelled();
            return;
          }
          if (!isRetryable(e) || attempt > maxInitiateRetries) {
            clearJob(storage, ids, missingFiles);
            setState((s) => (mine(s) ? { ...s, phase: 'failed', error: errorBody(e), retrying: undefined } : s));
            return;
          }
          const delay = backoff(attempt, e instanceof ApiError ? e.retryAfterMs : undefined);
          const info = errorBody(e);
          setState((s) => (mine(s) ? { ...s, retrying: { ...info, attempt, nextAt: now() + delay } } : s));
          try {
            await sleep(delay, anySignal(unmount.signal, cancelSleep.signal));
          } catch {
            if (!unmount.signal.aborted && cancelRequested.current) finishCancelled();
            return;
          }
        }
      }
    })();
    return () => {
      unmount.abort();
      if (initiateCancel.current === cancelSleep) initiateCancel.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [phase, current.idempotencyKey, key, api, storage]);

  // ---- status: React Query polls, SSE pushes into the same cache entry --------------------
  const [sseState, setSseState] = useState<{ jobId?: string; state: 'connecting' | 'live' | 'failed' }>({
    state: 'connecting',
  });
  const sseLive = sseState.jobId === jobId && sseState.state === 'live';
  const sseFailed = sseState.jobId === jobId && sseState.state === 'failed';
  const queryKey = statusQueryKey(options.baseUrl, jobId);
  const tracking = phase === 'tracking' && !!jobId;
  const resumedRef = useRef(current.resumed);
  resumedRef.current = current.resumed;

  const query = useQuery(
    {
      queryKey,
      enabled: tracking,
      queryFn: async ({ signal }) => {
        const doc = await getStatus(api, jobId as string, signal);
        const prev = client.getQueryData<StatusDocument>(queryKey);
        return isNewer(prev, doc) ? doc : (prev as StatusDocument);
      },
      refetchInterval: (q) => (isTerminal(q.state.data) ? false : sseLive ? ssePollIntervalMs : pollIntervalMs),
      refetchIntervalInBackground: true,
      refetchOnWindowFocus: (q) => !isTerminal(q.state.data),
      refetchOnReconnect: (q) => !isTerminal(q.state.data),
      networkMode: 'always',
      retry: (failureCount, error) => {
        if (isRetryable(error)) return true;
        // The facade waits for its cache before answering an initiate, but another replica's
        // cache may lag: a job created here a moment ago is worth a few more looks.
        const fresh = !resumedRef.current && client.getQueryData(queryKey) === undefined;
        return error instanceof ApiError && error.status === 404 && fresh && failureCount < maxNotFoundRetries;
      },
      retryDelay: (failureCount, error) => backoff(failureCount + 1, error instanceof ApiError ? error.retryAfterMs : undefined),
    },
    client,
  );
  const doc = tracking && query.data?.jobId === jobId ? query.data : undefined;
  const terminal = isTerminal(doc);

  // Server-Sent Events, once the first status document proved the job exists.
  const sseWanted = sse && opts.current.EventSource !== null;
  useEffect(() => {
    if (!sseWanted || !tracking || !jobId || !doc || terminal || sseFailed) return;
    const ES = opts.current.EventSource === undefined ? globalThis.EventSource : opts.current.EventSource;
    if (typeof ES !== 'function') return;
    let es: EventSource;
    try {
      es = new ES(eventsUrl(api, jobId));
    } catch {
      setSseState({ jobId, state: 'failed' });
      return;
    }
    setSseState({ jobId, state: 'connecting' });
    es.onopen = () => setSseState({ jobId, state: 'live' });
    es.onmessage = (ev: MessageEvent) => {
      let next: StatusDocument;
      try {
        next = JSON.parse(String(ev.data)) as StatusDocument;
      } catch {
        return;
      }
      if (!next || next.jobId !== jobId) return;
      client.setQueryData<StatusDocument>(statusQueryKey(opts.current.baseUrl, jobId), (prev) =>
        isNewer(prev, next) ? next : prev,
      );
      if (isTerminal(next)) es.close();
    };
    es.onerror = () => {
      // CONNECTING: the browser reconnects by itself, polls cover the gap. CLOSED: the server
      // refused the stream (404, 429, a proxy without SSE…): poll from now on.
      if (es.readyState === EVENT_SOURCE_CLOSED) {
        es.close();
        setSseState({ jobId, state: 'failed' });
      } else {
        setSseState({ jobId, state: 'connecting' });
      }
    };
    return () => es.close();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [sseWanted, tracking, jobId, !!doc, terminal, sseFailed, api, client]);

  // A request that failed for good.
  useEffect(() => {
    if (!tracking || query.status !== 'error') return;
    const e = query.error;
    const gone = e instanceof ApiError && (e.status === 404 || e.status === 400);
    const last = query.data?.jobId === jobId ? query.data : undefined;
    client.removeQueries({ queryKey, exact: true });
    clearJob(storage, ids, missingFiles);
    if (gone && current.resumed && !last) {
      // The remembered job no longer exists (expired, cancelled elsewhere): start afresh.
      setState((s) =>
        same(s) && s.jobId === jobId
          ? {
              ...s,
              phase: 'initiating',
              idempotencyKey: randomId(),
              jobId: undefined,
              createdAt: now(),
              resumed: false,
              notice: `The saved job ${jobId} no longer exists, so a new one was started.`,
            }
          : s,
      );
    } else if (gone && cancelRequested.current) {
      setState((s) => (same(s) && s.jobId === jobId ? { ...s, phase: 'cancelled', cancelling: false } : s));
    } else if (gone && last?.status === 'completed') {
      setState((s) =>
        same(s) && s.jobId === jobId ? { ...s, phase: 'expired', notice: 'The archive has expired and was removed.' } : s,
      );
    } else {
      const error = gone
        ? { code: 'NotFound', message: 'This job no longer exists: it was cancelled or has expired.' }
        : errorBody(e);
      setState((s) => (same(s) && s.jobId === jobId ? { ...s, phase: 'failed', error } : s));
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [tracking, query.status, query.error, jobId]);

  // Cancelled by someone else (another tab, a DELETE with the jobId): forget it here too.
  const cancelledElsewhere = doc?.status === 'failed' && doc.error?.code === CODE_CANCELLED;
  useEffect(() => {
    if (cancelledElsewhere) clearJob(storage, ids, missingFiles);
  }, [cancelledElsewhere, storage, ids, missingFiles]);

  // A completed job's link expires: look again when it does (the controller refreshes the
  // presigned URL while the archive is kept), and call it expired if the link is still out of
  // date. The stable link works until the archive is deleted, well past any presigned URL.
  const expiresAt = linkExpiry(api, doc);
  useEffect(() => {
    if (!expiresAt) return;
    const at = Date.parse(expiresAt);
    if (Number.isNaN(at)) return;
    let live = true;
    const expire = () => {
      if (!live) return;
      clearJob(storage, ids, missingFiles);
      setState((s) => (same(s) && s.jobId === jobId ? { ...s, phase: 'expired' } : s));
    };
    const fire = async () => {
      const r = await query.refetch();
      const next = r.data;
      const end = linkExpiry(api, next);
      if (r.isSuccess && next?.status === 'completed' && (!end || Date.parse(end) <= now())) expire();
    };
    const delay = at - now();
    if (delay <= 0) {
      void fire();
      return () => {
        live = false;
      };
    }
    const t = setTimeout(() => void fire(), Math.min(delay, 2_147_000_000));
    return () => {
      live = false;
      clearTimeout(t);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [expiresAt, jobId]);

  // Another tab started (or restarted) this job: follow it rather than offer a second one.
  useEffect(() => {
    if (!storage || typeof window === 'undefined') return;
    const onStorage = (e: StorageEvent) => {
      if (e.key !== key) return;
      const stored = loadJob(storage, ids, missingFiles);
      const now = stateRef.current;
      if (!stored?.jobId || now.phase === 'initiating' || now.phase === 'tracking') return;
      cancelRequested.current = false;
      setState((s) =>
        same(s) && s.phase !== 'initiating' && s.phase !== 'tracking' && s.jobId !== stored.jobId
          ? { ...s, phase: 'tracking', jobId: stored.jobId, resumed: true, error: undefined, notice: undefined }
          : s,
      );
    };
    window.addEventListener('storage', onStorage);
    return () => window.removeEventListener('storage', onStorage);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [storage, key]);

  // ---- actions -----------------------------------------------------------------------------
  const retry = useCallback(() => {
    const s = stateRef.current;
    if (s.phase === 'initiating' || (s.phase === 'tracking' && !isTerminal(client.getQueryData(statusQueryKey(opts.current.baseUrl, s.jobId))))) {
      return;
    }
    cancelRequested.current = false;
    if (s.jobId) client.removeQueries({ queryKey: statusQueryKey(opts.current.baseUrl, s.jobId), exact: true });
    clearJob(storage, ids, missingFiles);
    setState((prev) =>
      same(prev)
        ? {
            key,
            phase: 'initiating',
            idempotencyKey: randomId(),
            createdAt: now(),
            resumed: false,
            cancelling: false,
          }
        : prev,
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, storage, ids, key]);

  const cancel = useCallback(async () => {
    const s = stateRef.current;
    if (s.phase === 'initiating') {
      cancelRequested.current = true;
      setState((p) => (same(p) ? { ...p, cancelling: true } : p));
      // Stops a backoff wait at once; a request in flight is let finish and its job removed.
      initiateCancel.current?.abort();
      return;
    }
    if (s.phase !== 'tracking' || !s.jobId) return;
    const id = s.jobId;
    const qk = statusQueryKey(opts.current.baseUrl, id);
    if (isTerminal(client.getQueryData(qk))) return;
    cancelRequested.current = true;
    setState((p) => (same(p) && p.jobId === id ? { ...p, cancelling: true, notice: undefined } : p));
    for (let attempt = 1; ; attempt++) {
      try {
        await cancelJob(api, id);
        break;
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) break; // gone already
        if (isRetryable(e) && attempt < 3) {
          await sleep(backoff(attempt, e instanceof ApiError ? e.retryAfterMs : undefined));
          continue;
        }
        cancelRequested.current = false;
        setState((p) =>
          same(p) && p.jobId === id ? { ...p, cancelling: false, notice: `Could not cancel: ${errorBody(e).message}` } : p,
        );
        return;
      }
    }
    clearJob(storage, ids, missingFiles);
    await client.cancelQueries({ queryKey: qk, exact: true });
    setState((p) => (same(p) && p.jobId === id ? { ...p, phase: 'cancelled', cancelling: false } : p));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, client, storage, ids, key]);

  // Starting and retrying are the same: both do nothing while a job is being prepared.
  const start = retry;

  const markDownloaded = useCallback(() => clearJob(storage, ids, missingFiles), [storage, ids, missingFiles]);

  // ---- what the caller sees ----------------------------------------------------------------
  let status: DownloadStatus;
  let error = current.error;
  if (phase !== 'tracking') status = phase;
  else if (!doc) status = 'pending';
  else if (doc.status === 'failed') {
    status = doc.error?.code === CODE_CANCELLED ? 'cancelled' : 'failed';
    error = doc.error ?? { code: 'Failed', message: 'the download failed' };
  } else status = doc.status;

  let retrying = current.retrying;
  if (tracking && query.failureCount > 0 && query.fetchStatus === 'fetching' && query.failureReason) {
    retrying = { ...errorBody(query.failureReason), attempt: query.failureCount };
  }

  const completed = status === 'completed' ? doc : undefined;
  return {
    status,
    jobId,
    progress: status === 'completed' ? 100 : status === 'processing' ? clamp(doc?.progress ?? 0) : 0,
    attempts: status === 'processing' ? doc?.attempts : undefined,
    bytesDone: status === 'processing' ? doc?.bytesDone : completed?.size,
    bytesTotal: status === 'processing' ? doc?.bytesTotal : completed?.size,
    etaSeconds:
      status === 'processing' ? doc?.etaSeconds : status === 'pending' || status === 'initiating' ? current.initialEta : undefined,
    downloadUrl: completed?.downloadUrl,
    archiveUrl: archiveLink(api, completed?.archiveUrl),
    expiresAt: completed?.expiresAt,
    archiveExpiresAt: completed?.archiveExpiresAt,
    linkExpiresAt: linkExpiry(api, completed),
    size: completed?.size,
    sha256: completed?.sha256,
    skippedFileIds: completed?.skippedFileIds,
    error: status === 'failed' ? error : undefined,
    notice: current.notice,
    retrying: status === 'initiating' || status === 'pending' || status === 'processing' ? retrying : undefined,
    resumed: current.resumed,
    cancelling: current.cancelling,
    transport: tracking && !terminal ? (sseLive ? 'sse' : 'polling') : 'none',
    start,
    cancel,
    retry,
    markDownloaded,
  };
}

/**
 * When the link a completed document offers stops working: the stable link's archiveExpiresAt,
 * or the presigned URL's expiresAt when there is no stable link to follow (or no
 * archiveExpiresAt, from an older facade). Undefined for any other document.
 */
export function linkExpiry(cfg: Pick<ApiConfig, 'baseUrl'>, doc: StatusDocument | undefined): string | undefined {
  if (doc?.status !== 'completed') return undefined;
  if (archiveLink(cfg, doc.archiveUrl)) return doc.archiveExpiresAt ?? doc.expiresAt;
  return doc.expiresAt;
}

function clamp(n: number): number {
  return Math.max(0, Math.min(100, Math.round(n)));
}

/** An AbortSignal that aborts with whichever of signals aborts first. */
function anySignal(...signals: AbortSignal[]): AbortSignal {
  const ac = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      ac.abort();
      break;
    }
    s.addEventListener('abort', () => ac.abort(), { once: true });
  }
  return ac.signal;
}
