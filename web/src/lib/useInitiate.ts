import { useMutation, type QueryClient } from '@tanstack/react-query';
import { useCallback, useRef, useState } from 'react';
import { cancelJob, errorBodyOf, initiate, isRetryable, retryDelay, type ApiConfig } from './api';
import { abortError, type BackoffOptions } from './backoff';
import type { RetryInfo } from './downloadReducer';
import type { InitiateResponse } from './types';

export interface InitiateRequest {
  fileIds: number[];
  missingFiles?: 'skip';
  /** The same for every attempt, so that retries and replays never create a second job. */
  idempotencyKey: string;
}

export interface InitiateHandlers {
  onInitiated: (response: InitiateResponse) => void;
  /** The answer is final (a 400, say), or the retries are spent. */
  onFailed: (error: unknown) => void;
}

export interface InitiateSettings {
  /** How often a failed initiate is retried before it is reported failed. */
  maxRetries: number;
  backoff?: BackoffOptions;
  now: () => number;
}

export interface Initiate {
  /** Sends the initiate and retries it while that may help; returns what stops it (an effect's cleanup). */
  start: (request: InitiateRequest, handlers: InitiateHandlers) => () => void;
  /**
   * Stops the initiate at once: no more retries, no more handler calls. A request already in
   * flight is let finish, and the job it created is deleted as soon as its id is known.
   */
  cancel: () => void;
  /** Set while a failed attempt waits for its retry, or is being retried. */
  retrying?: RetryInfo;
}

/**
 * One initiate as far as this component still cares. React Query runs the attempts and cannot
 * cut a mutation short, so each attempt looks here first.
 */
interface Run {
  request: InitiateRequest;
  /** Send nothing more, and report nothing more. */
  stopped: boolean;
  /** Delete the job that a request in flight creates. */
  cancelled: boolean;
}

/**
 * POST /v1/download/initiate as a React Query mutation: network failures, 408, 429 and 5xx are
 * retried (maxRetries times) with backoff, waiting at least what a Retry-After asks.
 */
export function useInitiate(api: ApiConfig, client: QueryClient, { maxRetries, backoff, now }: InitiateSettings): Initiate {
  // React Query keeps the failure but not when the retry is due, which the button shows.
  const [nextAt, setNextAt] = useState<number>();
  const current = useRef<Run | null>(null);
  const { mutate, reset, isPending, failureCount, failureReason } = useMutation<InitiateResponse, Error, Run>(
    {
      mutationFn: async (run) => {
        if (run.stopped) throw abortError();
        const { fileIds, idempotencyKey, missingFiles } = run.request;
        const response = await initiate(api, fileIds, idempotencyKey, undefined, missingFiles);
        if (run.cancelled) {
          await cancelJob(api, response.jobId).catch(() => undefined);
          throw abortError();
        }
        return response;
      },
      retry: (failures, error) => isRetryable(error) && failures < maxRetries,
      retryDelay: (failures, error) => {
        const ms = retryDelay(failures, error, backoff);
        setNextAt(now() + ms);
        return ms;
      },
      networkMode: 'always',
    },
    client,
  );

  const start = useCallback(
    (request: InitiateRequest, handlers: InitiateHandlers) => {
      const run: Run = { request, stopped: false, cancelled: false };
      current.current = run;
      mutate(run, {
        onSuccess: (response) => {
          if (!run.stopped) handlers.onInitiated(response);
        },
        onError: (error) => {
          if (!run.stopped) handlers.onFailed(error);
        },
      });
      return () => {
        run.stopped = true;
        if (current.current !== run) return;
        current.current = null;
        // Detached, the mutation's failures are no longer this hook's to report.
        reset();
      };
    },
    [mutate, reset],
  );

  const cancel = useCallback(() => {
    const run = current.current;
    if (!run) return;
    run.stopped = true;
    run.cancelled = true;
  }, []);

  const retrying = isPending && failureCount > 0 && failureReason ? { ...errorBodyOf(failureReason), attempt: failureCount, nextAt } : undefined;
  return { start, cancel, retrying };
}
