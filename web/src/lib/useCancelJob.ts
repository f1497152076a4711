import { useMutation, type QueryClient } from '@tanstack/react-query';
import { cancelJob, isNotFound, isRetryable, retryDelay, type ApiConfig } from './api';
import type { BackoffOptions } from './backoff';

/** A cancel is for a user who is waiting: a few quick retries, then say it did not work. */
const MAX_CANCEL_RETRIES = 2;

/**
 * DELETE /v1/download/{jobId} as a React Query mutation, retried twice on answers that may
 * succeed later (honouring Retry-After). A 404 counts as done: the job is gone already. The
 * returned function rejects with the last error when the job could not be cancelled.
 */
export function useCancelJob(api: ApiConfig, client: QueryClient, backoff?: BackoffOptions): (jobId: string) => Promise<void> {
  const { mutateAsync } = useMutation<void, Error, string>(
    {
      mutationFn: async (jobId) => {
        try {
          await cancelJob(api, jobId);
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      },
      retry: (failures, error) => isRetryable(error) && failures < MAX_CANCEL_RETRIES,
      retryDelay: (failures, error) => retryDelay(failures, error, backoff),
      networkMode: 'always',
    },
    client,
  );
  return mutateAsync;
}
