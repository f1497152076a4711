import { skipToken, useQuery, type QueryClient } from '@tanstack/react-query';
import { useCallback, useEffect, useState } from 'react';
import { errorBodyOf, eventsUrl, getStatus, isNotFound, isRetryable, retryDelay, type ApiConfig } from './api';
import type { BackoffOptions } from './backoff';
import { newerStatus, type RetryInfo, type Transport } from './downloadReducer';
import { isTerminal, type StatusDocument } from './types';

/** Where React Query keeps a job's latest status document. */
export function statusQueryKey(baseUrl: string | undefined, jobId: string | undefined) {
  return ['download-operator', 'status', baseUrl ?? '', jobId ?? ''] as const;
}

export interface StatusStreamOptions {
  /** The job to follow; undefined follows nothing. */
  jobId?: string;
  /** The job was remembered rather than created here: a 404 is final at once. */
  resumed: boolean;
  /** How often the status is polled without a live event stream. */
  pollIntervalMs: number;
  /** How often the status is still polled while the event stream is live, as a safety net. */
  ssePollIntervalMs: number;
  /** The EventSource to follow the job with, or null to poll only. */
  eventSource: typeof EventSource | null;
  /** How often a 404 of a job this client just created is retried (another replica's cache catching up). */
  maxNotFoundRetries: number;
  backoff?: BackoffOptions;
}

export interface StatusStream {
  /** The latest status document of the job. */
  doc?: StatusDocument;
  transport: Transport;
  /** Set while a status read fails and is retried. */
  retrying?: RetryInfo;
  /** Why the status can no longer be read, once the retries are spent; null while it can. */
  failure: Error | null;
  /** Reads the status now: the document, or undefined when the read failed. */
  refetch: () => Promise<StatusDocument | undefined>;
  /** Drops a job's document from the cache. */
  forget: (jobId: string) => void;
  /** Cancels a read of a job's status in flight. */
  cancelFetch: (jobId: string) => Promise<void>;
}

type SseState = 'connecting' | 'live' | 'failed';

const EVENT_SOURCE_CLOSED = 2;

function parseDocument(data: unknown): StatusDocument | undefined {
  try {
    return (JSON.parse(String(data)) as StatusDocument | null) ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * Follows a job's status. React Query polls it; once the first document proved the job exists,
 * Server-Sent Events push every later one into the same cache entry, and the polls slow down to a
 * safety net while the stream is live. Either way a document never replaces a newer one.
 * Polling and the stream stop in a terminal state and when the component unmounts.
 */
export function useStatusStream(api: ApiConfig, client: QueryClient, options: StatusStreamOptions): StatusStream {
  const { jobId, resumed, pollIntervalMs, ssePollIntervalMs, eventSource, maxNotFoundRetries, backoff } = options;
  const [sse, setSse] = useState<{ jobId?: string; state: SseState }>({ state: 'connecting' });
  const sseLive = sse.jobId === jobId && sse.state === 'live';
  const sseFailed = sse.jobId === jobId && sse.state === 'failed';
  const queryKey = statusQueryKey(api.baseUrl, jobId);

  const query = useQuery(
    {
      queryKey,
      queryFn:
        jobId === undefined
          ? skipToken
          : async ({ signal }) => newerStatus(client.getQueryData<StatusDocument>(queryKey), await getStatus(api, jobId, signal)),
      refetchInterval: (q) => (isTerminal(q.state.data) ? false : sseLive ? ssePollIntervalMs : pollIntervalMs),
      refetchIntervalInBackground: true,
      refetchOnWindowFocus: (q) => !isTerminal(q.state.data),
      refetchOnReconnect: (q) => !isTerminal(q.state.data),
      networkMode: 'always',
      retry: (failures, error) => {
        if (isRetryable(error)) return true;
        // The facade waits for its cache before answering an initiate, but another replica's
        // cache may lag: a job created here a moment ago is worth a few more looks.
        const fresh = !resumed && client.getQueryData(queryKey) === undefined;
        return isNotFound(error) && fresh && failures < maxNotFoundRetries;
      },
      retryDelay: (failures, error) => retryDelay(failures, error, backoff),
    },
    client,
  );
  const doc = jobId !== undefined && query.data?.jobId === jobId ? query.data : undefined;
  const exists = doc !== undefined;
  const terminal = isTerminal(doc);

  useEffect(() => {
    if (!eventSource || jobId === undefined || !exists || terminal || sseFailed) return;
    let es: EventSource;
    try {
      es = new eventSource(eventsUrl(api, jobId));
    } catch {
      setSse({ jobId, state: 'failed' });
      return;
    }
    setSse({ jobId, state: 'connecting' });
    es.onopen = () => setSse({ jobId, state: 'live' });
    es.onmessage = (ev: MessageEvent) => {
      const next = parseDocument(ev.data);
      if (next?.jobId !== jobId) return;
      client.setQueryData<StatusDocument>(statusQueryKey(api.baseUrl, jobId), (prev) => newerStatus(prev, next));
      if (isTerminal(next)) es.close();
    };
    es.onerror = () => {
      // CONNECTING: the browser reconnects by itself, polls cover the gap. CLOSED: the server
      // refused the stream (404, 429, a proxy without SSE…): poll from now on.
      if (es.readyState === EVENT_SOURCE_CLOSED) {
        es.close();
        setSse({ jobId, state: 'failed' });
      } else {
        setSse({ jobId, state: 'connecting' });
      }
    };
    return () => es.close();
  }, [eventSource, jobId, exists, terminal, sseFailed, api, client]);

  const { refetch: refetchQuery } = query;
  const refetch = useCallback(async () => {
    const r = await refetchQuery();
    return r.isSuccess ? r.data : undefined;
  }, [refetchQuery]);
  const forget = useCallback(
    (id: string) => client.removeQueries({ queryKey: statusQueryKey(api.baseUrl, id), exact: true }),
    [client, api.baseUrl],
  );
  const cancelFetch = useCallback(
    (id: string) => client.cancelQueries({ queryKey: statusQueryKey(api.baseUrl, id), exact: true }),
    [client, api.baseUrl],
  );

  const retrying =
    query.failureCount > 0 && query.fetchStatus === 'fetching' && query.failureReason
      ? { ...errorBodyOf(query.failureReason), attempt: query.failureCount }
      : undefined;
  return {
    doc,
    transport: jobId !== undefined && !terminal ? (sseLive ? 'sse' : 'polling') : 'none',
    retrying,
    failure: jobId !== undefined && query.status === 'error' ? query.error : null,
    refetch,
    forget,
    cancelFetch,
  };
}
