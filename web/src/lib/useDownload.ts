import { QueryClientContext, type QueryClient } from '@tanstack/react-query';
import { useCallback, useContext, useEffect, useMemo, useReducer, useRef } from 'react';
import { randomId, resolveTraceparent, type ApiConfig } from './api';
import type { BackoffOptions } from './backoff';
import { canStart, downloadReducer, downloadView, loadState, type DownloadView, type LoadAction } from './downloadReducer';
import { defaultStorage } from './storage';
import { CODE_CANCELLED, isTerminal, type MissingFilesPolicy } from './types';
import { useCancelJob } from './useCancelJob';
import { useInitiate } from './useInitiate';
import { useLinkExpiry } from './useLinkExpiry';
import { useStatusStream } from './useStatusStream';
import { useStoredJob, type StoredJobHandle } from './useStoredJob';

export type { DownloadStatus, RetryInfo } from './downloadReducer';
export { statusQueryKey } from './useStatusStream';

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
  /**
   * Used instead of the one from QueryClientProvider. The hook needs one or the other: without
   * either it throws.
   */
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

export interface UseDownloadResult extends DownloadView {
  /** Initiate a new job, unless one is already being prepared (then it does nothing). */
  start: () => void;
  /** Cancel the job being prepared (or the initiate being retried). */
  cancel: () => Promise<void>;
  /** Start over with a new job: after a failure, a cancel or an expiry. */
  retry: () => void;
  /** Call once the archive was downloaded: the job is then forgotten by this browser. */
  markDownloaded: () => void;
}

const MISSING_QUERY_CLIENT =
  'useDownload needs a React Query client: wrap the app in <QueryClientProvider client={queryClient}> ' +
  "(from '@tanstack/react-query'), or pass one as options.queryClient.";

function useRequiredQueryClient(explicit: QueryClient | undefined): QueryClient {
  const fromContext = useContext(QueryClientContext);
  const client = explicit ?? fromContext;
  if (!client) throw new Error(MISSING_QUERY_CLIENT);
  return client;
}

/**
 * The facade as the latest options describe it, and the clock. fetch, headers, traceparent and
 * now are read when used, so that callers may pass new functions on every render without
 * restarting requests, streams or timers; only a new baseUrl is a new facade.
 */
function useLatestApi(options: UseDownloadOptions): { api: ApiConfig; now: () => number } {
  const latest = useRef(options);
  latest.current = options;
  const { baseUrl } = options;
  const api: ApiConfig = useMemo(
    () => ({
      baseUrl,
      fetch: (...args) => (latest.current.fetch ?? globalThis.fetch)(...args),
      headers: () => latest.current.headers?.() ?? {},
      // Read per request, so that a traceparent that changes (a new page span) is the one sent.
      traceparent: () => resolveTraceparent(latest.current.traceparent),
    }),
    [baseUrl],
  );
  const now = useCallback(() => (latest.current.now ?? Date.now)(), []);
  return { api, now };
}

function loadAction(stored: StoredJobHandle, autoStart: boolean, at: number): LoadAction {
  return { type: 'load', key: stored.key, stored: stored.load(), autoStart, idempotencyKey: randomId(), at };
}

/**
 * Prepares one archive of fileIds and follows it to the end: initiates (with an
 * Idempotency-Key, so retries never create two jobs), then follows the status through SSE when
 * the browser can and polls every 3 s otherwise, backing off on errors. The job is remembered
 * in localStorage under the sorted ids, so a reload or another tab resumes it. Needs React
 * Query's QueryClientProvider (or options.queryClient).
 */
export function useDownload(fileIds: readonly number[], options: UseDownloadOptions = {}): UseDownloadResult {
  const { autoStart = true, pollIntervalMs = 3000, ssePollIntervalMs = 30_000, sse = true } = options;
  const { maxNotFoundRetries = 3, maxInitiateRetries = 8, backoff } = options;
  const client = useRequiredQueryClient(options.queryClient);
  const { api, now } = useLatestApi(options);
  const stored = useStoredJob(options.storage === undefined ? defaultStorage() : options.storage, fileIds, options.missingFiles);

  const [kept, dispatch] = useReducer(downloadReducer, undefined, () => loadState(loadAction(stored, autoStart, now())));
  let state = kept;
  if (kept.key !== stored.key) {
    // New ids: start from what is remembered for them (React renders again at once).
    const load = loadAction(stored, autoStart, now());
    state = downloadReducer(kept, load);
    dispatch(load);
  }
  const { phase, idempotencyKey, createdAt, jobId } = state;
  const tracked = phase === 'tracking' ? jobId : undefined;

  const { start: startInitiate, cancel: cancelInitiate, retrying: initiateRetrying } = useInitiate(api, client, {
    maxRetries: maxInitiateRetries,
    backoff,
    now,
  });
  useEffect(() => {
    if (phase !== 'initiating' || !idempotencyKey) return;
    // Remembered before the request leaves: a reload in between replays the same key.
    stored.save({ idempotencyKey, createdAt });
    return startInitiate(
      { fileIds: stored.fileIds, missingFiles: stored.missingFiles, idempotencyKey },
      {
        onInitiated: ({ jobId: id, etaSeconds }) => {
          stored.save({ idempotencyKey, createdAt, jobId: id });
          dispatch({ type: 'initiated', idempotencyKey, jobId: id, etaSeconds });
        },
        onFailed: (error) => {
          stored.clear();
          dispatch({ type: 'initiateFailed', idempotencyKey, error });
        },
      },
    );
  }, [phase, idempotencyKey, createdAt, stored, startInitiate]);

  const ES = options.EventSource === undefined ? globalThis.EventSource : options.EventSource;
  const { doc, failure, refetch, forget, cancelFetch, ...stream } = useStatusStream(api, client, {
    jobId: tracked,
    resumed: state.resumed,
    pollIntervalMs,
    ssePollIntervalMs,
    eventSource: sse && typeof ES === 'function' ? ES : null,
    maxNotFoundRetries,
    backoff,
  });
  const lastStatus = doc?.status;
  const jobFinished = isTerminal(doc);

  // A status read that failed for good: the reducer tells a gone job from a failure.
  useEffect(() => {
    if (tracked === undefined || !failure) return;
    forget(tracked);
    stored.clear();
    dispatch({ type: 'statusFailed', jobId: tracked, error: failure, last: lastStatus, idempotencyKey: randomId(), at: now() });
  }, [tracked, failure, lastStatus, forget, stored, now]);

  // Cancelled by someone else (another tab, a DELETE with the jobId): forget it here too.
  const cancelledElsewhere = lastStatus === 'failed' && doc?.error?.code === CODE_CANCELLED;
  useEffect(() => {
    if (cancelledElsewhere) stored.clear();
  }, [cancelledElsewhere, stored]);

  const expire = useCallback(() => {
    if (tracked === undefined) return;
    stored.clear();
    dispatch({ type: 'linkExpired', jobId: tracked });
  }, [tracked, stored]);
  useLinkExpiry(api, doc, refetch, now, expire);

  // Another tab started (or restarted) this job: follow it rather than offer a second one.
  useEffect(() => stored.watch((id) => dispatch({ type: 'adopted', jobId: id })), [stored]);

  // Starting and retrying are the same: both do nothing while a job is being prepared.
  const start = useCallback(() => {
    if (!canStart(state, jobFinished)) return;
    if (jobId) forget(jobId);
    stored.clear();
    dispatch({ type: 'start', jobFinished, idempotencyKey: randomId(), at: now() });
  }, [state, jobFinished, jobId, forget, stored, now]);

  const deleteJob = useCancelJob(api, client, backoff);
  const cancel = useCallback(async () => {
    if (phase === 'initiating' && idempotencyKey) {
      cancelInitiate();
      stored.clear();
      dispatch({ type: 'initiateCancelled', idempotencyKey });
      return;
    }
    if (tracked === undefined || jobFinished) return;
    dispatch({ type: 'cancelRequested', jobId: tracked });
    try {
      await deleteJob(tracked);
    } catch (error) {
      dispatch({ type: 'cancelFailed', jobId: tracked, error });
      return;
    }
    stored.clear();
    await cancelFetch(tracked);
    dispatch({ type: 'cancelled', jobId: tracked });
  }, [phase, idempotencyKey, tracked, jobFinished, cancelInitiate, deleteJob, cancelFetch, stored]);

  const view = downloadView(state, doc, api, {
    retrying: phase === 'initiating' ? initiateRetrying : stream.retrying,
    transport: stream.transport,
  });
  return { ...view, start, cancel, retry: start, markDownloaded: stored.clear };
}
