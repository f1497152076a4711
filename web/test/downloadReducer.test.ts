import { describe, expect, it } from 'vitest';
import { ApiError } from '../src/lib/api';
import {
  downloadReducer,
  downloadView,
  isLinkExpired,
  linkExpiry,
  loadState,
  newerStatus,
  type DownloadAction,
  type DownloadState,
  type LoadAction,
} from '../src/lib/downloadReducer';
import type { StatusDocument } from '../src/lib/types';
import { attempt, completed, JOB, JOB2, processing } from './helpers';

const KEY = 'download-operator:job:70000,70007';
const T0 = Date.parse('2026-01-01T00:00:00Z');

function load(extra: Partial<LoadAction> = {}): LoadAction {
  return { type: 'load', key: KEY, autoStart: true, idempotencyKey: 'fresh-key', at: T0, ...extra };
}

const idle = loadState(load({ autoStart: false }));
const initiating = loadState(load());
const tracking: DownloadState = downloadReducer(initiating, { type: 'initiated', idempotencyKey: 'fresh-key', jobId: JOB, etaSeconds: 12 });
const resumed = loadState(load({ stored: { fileIds: [70000, 70007], idempotencyKey: 'old-key', jobId: JOB, createdAt: 1 } }));

function run(state: DownloadState, ...actions: DownloadAction[]): DownloadState {
  return actions.reduce(downloadReducer, state);
}

const notFound = new ApiError(404, { code: 'NotFound', message: 'no job' });
const unavailable = new ApiError(503, { code: 'Unavailable', message: 'cannot read job state' });
const doc = (body: object) => body as StatusDocument;

describe('downloadReducer: loading a set of ids', () => {
  it('resumes a remembered job, replays a remembered initiate, else starts or waits', () => {
    expect(resumed).toMatchObject({ phase: 'tracking', jobId: JOB, idempotencyKey: 'old-key', createdAt: 1, resumed: true });
    const replay = loadState(load({ stored: { fileIds: [70000, 70007], idempotencyKey: 'old-key', createdAt: 1 } }));
    expect(replay).toMatchObject({ phase: 'initiating', idempotencyKey: 'old-key', resumed: true });
    expect(replay.jobId).toBeUndefined();
    expect(initiating).toMatchObject({ phase: 'initiating', idempotencyKey: 'fresh-key', createdAt: T0, resumed: false });
    expect(idle).toEqual({ key: KEY, phase: 'idle', createdAt: T0, resumed: false, cancelling: false });
  });

  it('replaces whatever state it had with that of the new ids', () => {
    const other = run(tracking, load({ key: `${KEY}:skip`, autoStart: false }));
    expect(other).toEqual({ key: `${KEY}:skip`, phase: 'idle', createdAt: T0, resumed: false, cancelling: false });
  });
});

describe('downloadReducer: initiate', () => {
  it('follows the job the initiate answered with, and keeps its estimate', () => {
    expect(tracking).toMatchObject({ phase: 'tracking', jobId: JOB, initialEta: 12, resumed: false });
  });

  it('fails with the reason of an initiate that failed for good', () => {
    const s = run(initiating, { type: 'initiateFailed', idempotencyKey: 'fresh-key', error: new ApiError(400, { code: 'BadRequest', message: 'bad ids' }) });
    expect(s).toMatchObject({ phase: 'failed', error: { code: 'BadRequest', message: 'bad ids' } });
  });

  it('is cancelled at once', () => {
    expect(run(initiating, { type: 'initiateCancelled', idempotencyKey: 'fresh-key' })).toMatchObject({ phase: 'cancelled', cancelling: false });
  });

  it('ignores answers about another initiate (the user started over since)', () => {
    for (const a of [
      { type: 'initiated', idempotencyKey: 'stale-key', jobId: JOB2 },
      { type: 'initiateFailed', idempotencyKey: 'stale-key', error: unavailable },
      { type: 'initiateCancelled', idempotencyKey: 'stale-key' },
    ] satisfies DownloadAction[]) {
      expect(run(initiating, a), a.type).toBe(initiating);
    }
  });
});

describe('downloadReducer: start and retry', () => {
  const restart = (jobFinished: boolean): DownloadAction => ({ type: 'start', jobFinished, idempotencyKey: 'new-key', at: T0 + 1000 });

  it('does nothing while a job is being prepared', () => {
    expect(run(initiating, restart(false))).toBe(initiating);
    expect(run(tracking, restart(false))).toBe(tracking);
  });

  it('starts a new initiate, with a new key, from idle, a finished job, a failure, a cancel or an expiry', () => {
    const failed = run(initiating, { type: 'initiateFailed', idempotencyKey: 'fresh-key', error: unavailable });
    const cancelled = run(tracking, { type: 'cancelRequested', jobId: JOB }, { type: 'cancelled', jobId: JOB });
    const expired = run(tracking, { type: 'linkExpired', jobId: JOB });
    for (const [name, s, finished] of [
      ['idle', idle, false],
      ['completed', tracking, true],
      ['failed', failed, false],
      ['cancelled', cancelled, false],
      ['expired', expired, false],
    ] as const) {
      expect(run(s, restart(finished)), name).toEqual({
        key: KEY,
        phase: 'initiating',
        idempotencyKey: 'new-key',
        createdAt: T0 + 1000,
        resumed: false,
        cancelling: false,
      });
    }
  });
});

describe('downloadReducer: cancel', () => {
  const requested = run(tracking, { type: 'cancelRequested', jobId: JOB });

  it('is cancelling while the DELETE is in flight, then cancelled', () => {
    expect(requested).toMatchObject({ phase: 'tracking', cancelling: true });
    expect(run(requested, { type: 'cancelled', jobId: JOB })).toMatchObject({ phase: 'cancelled', cancelling: false });
  });

  it('keeps following the job with a notice when the DELETE failed', () => {
    const s = run(requested, { type: 'cancelFailed', jobId: JOB, error: unavailable });
    expect(s).toMatchObject({ phase: 'tracking', cancelling: false, notice: 'Could not cancel: cannot read job state' });
    // A new cancel clears the notice.
    expect(run(s, { type: 'cancelRequested', jobId: JOB }).notice).toBeUndefined();
  });

  it('ignores a cancel of a job it no longer follows', () => {
    expect(run(tracking, { type: 'cancelRequested', jobId: JOB2 })).toBe(tracking);
    expect(run(tracking, { type: 'cancelled', jobId: JOB2 })).toBe(tracking);
  });
});

describe('downloadReducer: a status that cannot be read', () => {
  const failed = (s: DownloadState, error: unknown, last?: StatusDocument['status']) =>
    run(s, { type: 'statusFailed', jobId: JOB, error, last, idempotencyKey: 'restart-key', at: T0 + 5000 });

  it('starts afresh, saying so, when a remembered job is gone before any document was read', () => {
    expect(failed(resumed, notFound)).toMatchObject({
      phase: 'initiating',
      idempotencyKey: 'restart-key',
      jobId: undefined,
      createdAt: T0 + 5000,
      resumed: false,
      notice: `The saved job ${JOB} no longer exists, so a new one was started.`,
    });
  });

  it('counts a job gone during its cancel as cancelled', () => {
    const s = failed(run(tracking, { type: 'cancelRequested', jobId: JOB }), notFound, 'processing');
    expect(s).toMatchObject({ phase: 'cancelled', cancelling: false });
  });

  it('counts a completed job gone as expired', () => {
    expect(failed(tracking, notFound, 'completed')).toMatchObject({ phase: 'expired', notice: 'The archive has expired and was removed.' });
  });

  it('fails otherwise: a job of its own gone (400 too), or an error that outlasted the retries', () => {
    const gone = { code: 'NotFound', message: 'This job no longer exists: it was cancelled or has expired.' };
    expect(failed(tracking, notFound, 'processing')).toMatchObject({ phase: 'failed', error: gone });
    expect(failed(tracking, new ApiError(400, { code: 'BadRequest', message: 'bad id' }))).toMatchObject({ phase: 'failed', error: gone });
    // A remembered job that answered before is not restarted: it was seen, so it failed.
    expect(failed(resumed, notFound, 'processing')).toMatchObject({ phase: 'failed', error: gone });
    expect(failed(tracking, unavailable)).toMatchObject({ phase: 'failed', error: { code: 'Unavailable', message: 'cannot read job state' } });
  });

  it('ignores a failure of a job it no longer follows', () => {
    expect(run(tracking, { type: 'statusFailed', jobId: JOB2, error: notFound, idempotencyKey: 'k', at: 0 })).toBe(tracking);
  });
});

describe('downloadReducer: expiry and other tabs', () => {
  it('expires the followed job only', () => {
    expect(run(tracking, { type: 'linkExpired', jobId: JOB })).toMatchObject({ phase: 'expired', jobId: JOB });
    expect(run(tracking, { type: 'linkExpired', jobId: JOB2 })).toBe(tracking);
  });

  it('follows a job another tab started when it has none in hand, and forgets what went before', () => {
    const failed = run(initiating, { type: 'initiateFailed', idempotencyKey: 'fresh-key', error: unavailable });
    expect(run(failed, { type: 'adopted', jobId: JOB2 })).toMatchObject({
      phase: 'tracking',
      jobId: JOB2,
      resumed: true,
      error: undefined,
      notice: undefined,
    });
    expect(run(idle, { type: 'adopted', jobId: JOB2 })).toMatchObject({ phase: 'tracking', jobId: JOB2 });
  });

  it('keeps its own initiate or job rather than another tab\'s', () => {
    expect(run(initiating, { type: 'adopted', jobId: JOB2 })).toBe(initiating);
    expect(run(tracking, { type: 'adopted', jobId: JOB2 })).toBe(tracking);
  });
});

describe('newerStatus', () => {
  const keep = (prev: object | undefined, next: object) => newerStatus(prev as StatusDocument | undefined, doc(next));

  it('orders pending, processing and the terminal states, whatever arrives first', () => {
    const pending = { jobId: JOB, status: 'pending' };
    expect(keep(undefined, pending)).toEqual(pending);
    expect(keep(pending, processing(10))).toEqual(processing(10));
    expect(keep(processing(10), pending)).toEqual(processing(10));
    expect(keep(completed(), processing(90))).toEqual(completed());
    expect(keep(processing(90), completed())).toEqual(completed());
  });

  it('restarts progress with each worker attempt, and drops older documents of one attempt', () => {
    expect(keep(attempt(1, 80), attempt(2, 10))).toEqual(attempt(2, 10));
    expect(keep(attempt(2, 10), attempt(1, 90))).toEqual(attempt(2, 10));
    expect(keep(attempt(2, 10), attempt(2, 5))).toEqual(attempt(2, 10));
    expect(keep(attempt(2, 10), attempt(2, 30))).toEqual(attempt(2, 30));
    // Without attempts, a document is of the first: bytes alone decide, as with older facades.
    const { attempts: _, ...first } = attempt(1, 70);
    expect(keep(first, attempt(2, 15))).toEqual(attempt(2, 15));
    expect(keep(processing(60), processing(20))).toEqual(processing(60));
  });

  it('takes any document of another job', () => {
    expect(keep(completed(JOB), processing(5, JOB2))).toEqual(processing(5, JOB2));
  });
});

describe('link expiry', () => {
  const stable = { archiveUrl: `/v1/download/${JOB}/archive` };

  it('is archiveExpiresAt with a stable link, expiresAt without one or from an older facade', () => {
    const presigned = '2025-12-31T23:00:00Z';
    const archive = '2026-01-01T02:00:00Z';
    expect(linkExpiry({}, doc(completed(JOB, presigned, { ...stable, archiveExpiresAt: archive })))).toBe(archive);
    expect(linkExpiry({}, doc(completed(JOB, presigned, { archiveExpiresAt: archive })))).toBe(presigned);
    expect(linkExpiry({}, doc(completed(JOB, presigned, stable)))).toBe(presigned);
    expect(linkExpiry({}, doc(processing(50)))).toBeUndefined();
  });

  it('has run out at that time, or when the document does not say', () => {
    const expiring = doc(completed(JOB, '2026-01-01T00:00:10Z'));
    expect(isLinkExpired({}, expiring, T0 + 9_999)).toBe(false);
    expect(isLinkExpired({}, expiring, T0 + 10_000)).toBe(true);
    expect(isLinkExpired({}, doc({ ...completed(), expiresAt: undefined }), T0)).toBe(true);
    expect(isLinkExpired({}, doc(processing(50)), T0)).toBe(false);
  });
});

describe('downloadView', () => {
  const view = (s: DownloadState, d?: object, retrying = { code: 'Unavailable', message: 'later', attempt: 1 }) =>
    downloadView(s, d as StatusDocument | undefined, { baseUrl: 'https://facade.test' }, { retrying, transport: 'polling' });

  it('reports the phase, and the job\'s status while tracking it', () => {
    expect(view(idle).status).toBe('idle');
    expect(view(initiating)).toMatchObject({ status: 'initiating', progress: 0, etaSeconds: undefined });
    expect(view(tracking)).toMatchObject({ status: 'pending', jobId: JOB, etaSeconds: 12 });
    expect(view(tracking, processing(40))).toMatchObject({ status: 'processing', progress: 40, etaSeconds: 7, bytesTotal: 100 * 1024 * 1024 });
    // A document of another job (the cache of an earlier one) says nothing of this one.
    expect(view(tracking, processing(40, JOB2)).status).toBe('pending');
  });

  it('shows the worker attempt and its own progress while processing only', () => {
    expect(view(tracking, attempt(2, 10))).toMatchObject({ progress: 10, bytesDone: 10, attempts: 2 });
    expect(view(tracking, completed()).attempts).toBeUndefined();
  });

  it('reports a completed job with its stable link and when that stops working', () => {
    const d = completed(JOB, '2026-01-01T00:10:00Z', { archiveUrl: `/v1/download/${JOB}/archive`, archiveExpiresAt: '2026-01-01T02:00:00Z', skippedFileIds: [70007] });
    expect(view(tracking, d)).toMatchObject({
      status: 'completed',
      progress: 100,
      bytesDone: 12345,
      archiveUrl: `https://facade.test/v1/download/${JOB}/archive`,
      linkExpiresAt: '2026-01-01T02:00:00Z',
      skippedFileIds: [70007],
      retrying: undefined,
      etaSeconds: undefined,
    });
  });

  it('tells a job cancelled elsewhere from a failed one, and says why a job failed', () => {
    const failedDoc = (code: string) => ({ jobId: JOB, status: 'failed', error: { code, message: code } });
    expect(view(tracking, failedDoc('Cancelled'))).toMatchObject({ status: 'cancelled', error: undefined });
    expect(view(tracking, failedDoc('SourceNotFound'))).toMatchObject({ status: 'failed', error: { code: 'SourceNotFound' } });
    expect(view(tracking, { jobId: JOB, status: 'failed' }).error).toEqual({ code: 'Failed', message: 'the download failed' });
    const initiateFailed = run(initiating, { type: 'initiateFailed', idempotencyKey: 'fresh-key', error: unavailable });
    expect(view(initiateFailed)).toMatchObject({ status: 'failed', error: { code: 'Unavailable' } });
  });

  it('reports retries while a job is being prepared only', () => {
    expect(view(initiating).retrying?.attempt).toBe(1);
    expect(view(tracking, processing(5)).retrying?.attempt).toBe(1);
    expect(view(tracking, completed()).retrying).toBeUndefined();
    expect(view(idle).retrying).toBeUndefined();
  });
});
