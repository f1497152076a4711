/** The `status` of a status document, as the facade reports it. */
export type JobStatus = 'pending' | 'processing' | 'completed' | 'failed';

/** The facade's error body: `{"error":{"code","message"}}`, and a failed job's `error`. */
export interface ErrorBody {
  code: string;
  message: string;
}

/** GET /v1/download/status/{jobId}, and the data of every SSE event. */
export interface StatusDocument {
  jobId: string;
  status: JobStatus;
  /**
   * processing only. The worker attempt the progress belongs to (1 for the first): a retried
   * worker starts again from 0 bytes, so bytesDone and progress may go down when this goes up.
   */
  attempts?: number;
  /** processing only */
  progress?: number;
  bytesDone?: number;
  bytesTotal?: number;
  etaSeconds?: number;
  /** completed only: a presigned storage URL, valid until expiresAt */
  downloadUrl?: string;
  expiresAt?: string;
  size?: number;
  sha256?: string;
  /**
   * completed only: the stable link to the archive, relative to the facade (e.g.
   * `/v1/download/{jobId}/archive`). It answers 302 to a freshly signed URL whenever it is
   * called while the job exists, unlike downloadUrl, which expires. Older facades omit it.
   */
  archiveUrl?: string;
  /**
   * completed only: when archiveUrl stops working, because the job and its archive are deleted
   * then (ttlSecondsAfterFinished after completion); never before expiresAt. Older facades omit it.
   */
  archiveExpiresAt?: string;
  /** completed only: requested ids left out because they do not exist (missing_files "skip"). */
  skippedFileIds?: number[];
  /** failed only: the Failed condition's reason (e.g. SourceNotFound) or Cancelled */
  error?: ErrorBody;
}

/**
 * What an archive does about requested ids that do not exist: `fail` (the facade's default)
 * fails the whole job with SourceNotFound; `skip` leaves them out and lists them in
 * skippedFileIds (the job still fails when every id is missing).
 */
export type MissingFilesPolicy = 'skip' | 'fail';

/** The 202 answer of POST /v1/download/initiate. */
export interface InitiateResponse {
  jobId: string;
  status: JobStatus;
  etaSeconds: number;
  totalFileIds: number;
}

/** The 202 answer of DELETE /v1/download/{jobId}. */
export interface CancelResponse {
  jobId: string;
  status: 'cancelled';
}

/** The facade's error code for a job whose Download was deleted before it finished. */
export const CODE_CANCELLED = 'Cancelled';

export function isTerminal(doc: Pick<StatusDocument, 'status'> | undefined | null): boolean {
  return doc?.status === 'completed' || doc?.status === 'failed';
}
