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
  /** processing only */
  progress?: number;
  bytesDone?: number;
  bytesTotal?: number;
  etaSeconds?: number;
  /** completed only */
  downloadUrl?: string;
  expiresAt?: string;
  size?: number;
  sha256?: string;
  /** failed only: the Failed condition's reason (e.g. SourceNotFound) or Cancelled */
  error?: ErrorBody;
}

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
