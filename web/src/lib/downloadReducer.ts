/**
 * The download's state machine, free of React, timers and requests. The reducer keeps where this
 * client is with one set of ids (idle, initiating, tracking a job, or finished with it); the job's
 * own states come from its latest status document, which lives in React Query's cache, and
 * downloadView combines the two into what useDownload reports.
 */
import { ApiError, archiveLink, errorBodyOf, isNotFound, type ApiConfig } from './api';
import type { StoredJob } from './storage';
import { CODE_CANCELLED, isTerminal, type ErrorBody, type JobStatus, type StatusDocument } from './types';

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

/** A transient problem the hook is working around. */
export interface RetryInfo {
  code: string;
  message: string;
  /** 1 for the first retry. */
  attempt: number;
  /** When the next attempt is due, epoch ms (initiate only; polls retry on their own schedule). */
  nextAt?: number;
}

/** How the job is followed. */
export type Transport = 'sse' | 'polling' | 'none';

/** What useDownload reports, apart from its actions. */
export interface DownloadView {
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
  transport: Transport;
}

/** Where this client is; 'tracking' covers pending through completed, which the document tells apart. */
export type Phase = 'idle' | 'initiating' | 'tracking' | 'failed' | 'cancelled' | 'expired';

export interface DownloadState {
  /** The storage key of the ids (and policy) this state is about. */
  key: string;
  phase: Phase;
  /** Sent with every initiate of this job, so that a replay never creates a second one. */
  idempotencyKey?: string;
  jobId?: string;
  /** Epoch ms of the initiate. */
  createdAt: number;
  resumed: boolean;
  /** The initiate's estimate, shown until the job reports its own. */
  initialEta?: number;
  error?: ErrorBody;
  notice?: string;
  /** tracking only: a DELETE of the job is in flight. */
  cancelling: boolean;
}

/** The state for a set of ids: what is remembered for them, else a new initiate or idle. */
export interface LoadAction {
  type: 'load';
  key: string;
  stored?: StoredJob;
  autoStart: boolean;
  /** For a new initiate: a fresh Idempotency-Key and the time. */
  idempotencyKey: string;
  at: number;
}

export type DownloadAction =
  | LoadAction
  /** Start over with a new job; ignored while one is being prepared (see canStart). */
  | { type: 'start'; jobFinished: boolean; idempotencyKey: string; at: number }
  | { type: 'initiated'; idempotencyKey: string; jobId: string; etaSeconds?: number }
  | { type: 'initiateFailed'; idempotencyKey: string; error: unknown }
  | { type: 'initiateCancelled'; idempotencyKey: string }
  | { type: 'cancelRequested'; jobId: string }
  | { type: 'cancelFailed'; jobId: string; error: unknown }
  | { type: 'cancelled'; jobId: string }
  /**
   * The status could not be read for good. `last` is the status of the last document read;
   * idempotencyKey and at start a new job when a remembered one turns out to be gone.
   */
  | { type: 'statusFailed'; jobId: string; error: unknown; last?: JobStatus; idempotencyKey: string; at: number }
  | { type: 'linkExpired'; jobId: string }
  /** Another tab remembered a job for these ids. */
  | { type: 'adopted'; jobId: string };

export function loadState({ key, stored, autoStart, idempotencyKey, at }: LoadAction): DownloadState {
  const base = { key, createdAt: at, resumed: false, cancelling: false };
  if (stored?.jobId) {
    return { ...base, phase: 'tracking', jobId: stored.jobId, idempotencyKey: stored.idempotencyKey, createdAt: stored.createdAt, resumed: true };
  }
  if (stored) {
    // The page went away while the initiate was in flight: replay it with the same key.
    return { ...base, phase: 'initiating', idempotencyKey: stored.idempotencyKey, createdAt: stored.createdAt, resumed: true };
  }
  if (autoStart) return { ...base, phase: 'initiating', idempotencyKey };
  return { ...base, phase: 'idle' };
}

/** Starting (or retrying) does nothing while a job is being prepared: initiating, or followed and not finished. */
export function canStart(state: DownloadState, jobFinished: boolean): boolean {
  return state.phase !== 'initiating' && (state.phase !== 'tracking' || jobFinished);
}

const GONE_MESSAGE = 'This job no longer exists: it was cancelled or has expired.';

// An answer about an initiate or a job counts only while it is still the one in hand: the ids
// may have changed, or the user started over, since it was asked for.
const initiating = (s: DownloadState, idempotencyKey: string) => s.phase === 'initiating' && s.idempotencyKey === idempotencyKey;
const following = (s: DownloadState, jobId: string) => s.phase === 'tracking' && s.jobId === jobId;

export function downloadReducer(s: DownloadState, a: DownloadAction): DownloadState {
  switch (a.type) {
    case 'load':
      return loadState(a);
    case 'start':
      if (!canStart(s, a.jobFinished)) return s;
      return { key: s.key, phase: 'initiating', idempotencyKey: a.idempotencyKey, createdAt: a.at, resumed: false, cancelling: false };
    case 'initiated':
      return initiating(s, a.idempotencyKey) ? { ...s, phase: 'tracking', jobId: a.jobId, resumed: false, initialEta: a.etaSeconds } : s;
    case 'initiateFailed':
      return initiating(s, a.idempotencyKey) ? { ...s, phase: 'failed', error: errorBodyOf(a.error) } : s;
    case 'initiateCancelled':
      return initiating(s, a.idempotencyKey) ? { ...s, phase: 'cancelled' } : s;
    case 'cancelRequested':
      return following(s, a.jobId) ? { ...s, cancelling: true, notice: undefined } : s;
    case 'cancelFailed':
      return following(s, a.jobId) ? { ...s, cancelling: false, notice: `Could not cancel: ${errorBodyOf(a.error).message}` } : s;
    case 'cancelled':
      return following(s, a.jobId) ? { ...s, phase: 'cancelled', cancelling: false } : s;
    case 'linkExpired':
      return following(s, a.jobId) ? { ...s, phase: 'expired', cancelling: false } : s;
    case 'statusFailed':
      return following(s, a.jobId) ? statusFailed(s, a) : s;
    case 'adopted':
      if (s.phase === 'initiating' || s.phase === 'tracking' || s.jobId === a.jobId) return s;
      return { ...s, phase: 'tracking', jobId: a.jobId, resumed: true, error: undefined, notice: undefined, cancelling: false };
  }
}

function statusFailed(s: DownloadState, a: Extract<DownloadAction, { type: 'statusFailed' }>): DownloadState {
  const gone = isNotFound(a.error) || (a.error instanceof ApiError && a.error.status === 400);
  const left = { ...s, cancelling: false };
  if (gone && s.resumed && a.last === undefined) {
    // The remembered job no longer exists (expired, cancelled elsewhere): start afresh.
    return {
      ...left,
      phase: 'initiating',
      idempotencyKey: a.idempotencyKey,
      jobId: undefined,
      createdAt: a.at,
      resumed: false,
      notice: `The saved job ${a.jobId} no longer exists, so a new one was started.`,
    };
  }
  if (gone && s.cancelling) return { ...left, phase: 'cancelled' };
  if (gone && a.last === 'completed') return { ...left, phase: 'expired', notice: 'The archive has expired and was removed.' };
  return { ...left, phase: 'failed', error: gone ? { code: 'NotFound', message: GONE_MESSAGE } : errorBodyOf(a.error) };
}

/**
 * Whether `next` should replace `prev`: a document never replaces a newer one (a slow poll
 * racing an event). While processing, a later worker attempt is newer whatever its bytesDone (a
 * retry starts again from 0); within one attempt bytes only grow, so fewer means an older
 * document. A document without attempts counts as the first (the facade leaves it out before the
 * first worker starts, and an older facade never sends it: then bytes alone decide).
 */
function isNewer(prev: StatusDocument, next: StatusDocument): boolean {
  if (prev.jobId !== next.jobId) return true;
  const rank = (d: StatusDocument) => (isTerminal(d) ? 2 : d.status === 'processing' ? 1 : 0);
  if (rank(next) !== rank(prev)) return rank(next) > rank(prev);
  if (next.status !== 'processing') return true;
  const attempt = (d: StatusDocument) => d.attempts ?? 1;
  if (attempt(next) !== attempt(prev)) return attempt(next) > attempt(prev);
  return (next.bytesDone ?? 0) >= (prev.bytesDone ?? 0);
}

/** The document to keep of the one held (if any) and one just read or pushed. */
export function newerStatus(prev: StatusDocument | undefined, next: StatusDocument): StatusDocument {
  return prev && !isNewer(prev, next) ? prev : next;
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

/** A completed document whose link has run out (or that says nothing of when it does) at `now`. */
export function isLinkExpired(cfg: Pick<ApiConfig, 'baseUrl'>, doc: StatusDocument, now: number): boolean {
  if (doc.status !== 'completed') return false;
  const end = linkExpiry(cfg, doc);
  return !end || Date.parse(end) <= now;
}

/** The job's status as the caller sees it: the phase, or the document's while tracking. */
function statusOf(state: DownloadState, doc: StatusDocument | undefined): DownloadStatus {
  if (state.phase !== 'tracking') return state.phase;
  if (!doc) return 'pending';
  if (doc.status === 'failed') return doc.error?.code === CODE_CANCELLED ? 'cancelled' : 'failed';
  return doc.status;
}

/**
 * What useDownload reports. `doc` is the latest status document of state.jobId (ignored unless
 * tracking it); `retrying` is the initiate's or the polls' retry in progress.
 */
export function downloadView(
  state: DownloadState,
  doc: StatusDocument | undefined,
  cfg: Pick<ApiConfig, 'baseUrl'>,
  follow: { retrying?: RetryInfo; transport: Transport },
): DownloadView {
  const current = state.phase === 'tracking' && doc?.jobId === state.jobId ? doc : undefined;
  const status = statusOf(state, current);
  const processing = status === 'processing' ? current : undefined;
  const completed = status === 'completed' ? current : undefined;
  const preparing = status === 'initiating' || status === 'pending' || status === 'processing';
  let error: ErrorBody | undefined;
  if (status === 'failed') error = current ? (current.error ?? { code: 'Failed', message: 'the download failed' }) : state.error;
  return {
    status,
    jobId: state.jobId,
    progress: completed ? 100 : clamp(processing?.progress ?? 0),
    attempts: processing?.attempts,
    bytesDone: processing ? processing.bytesDone : completed?.size,
    bytesTotal: processing ? processing.bytesTotal : completed?.size,
    etaSeconds: processing ? processing.etaSeconds : status === 'pending' || status === 'initiating' ? state.initialEta : undefined,
    downloadUrl: completed?.downloadUrl,
    archiveUrl: archiveLink(cfg, completed?.archiveUrl),
    expiresAt: completed?.expiresAt,
    archiveExpiresAt: completed?.archiveExpiresAt,
    linkExpiresAt: linkExpiry(cfg, completed),
    size: completed?.size,
    sha256: completed?.sha256,
    skippedFileIds: completed?.skippedFileIds,
    error,
    notice: state.notice,
    retrying: preparing ? follow.retrying : undefined,
    resumed: state.resumed,
    cancelling: state.cancelling,
    transport: follow.transport,
  };
}

function clamp(n: number): number {
  return Math.max(0, Math.min(100, Math.round(n)));
}
