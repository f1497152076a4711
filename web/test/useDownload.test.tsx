import { QueryClient } from '@tanstack/react-query';
import { renderHook } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { storageKey } from '../src/lib/storage';
import { statusQueryKey, useDownload, type UseDownloadOptions } from '../src/lib/useDownload';
import {
  advance,
  attempt,
  completed,
  fakeFetch,
  FakeEventSource,
  JOB,
  JOB2,
  newClient,
  onFakeClock,
  processing,
  wrapper,
  type Handler,
  type Reply,
} from './helpers';

const IDS = [70007, 70000];
const KEY = storageKey(IDS);

/** Answers in turn; the last one repeats. */
function sequence(...replies: Reply[]) {
  let i = 0;
  return () => replies[Math.min(i++, replies.length - 1)];
}

/** A facade: initiate answers with `jobId`, status with the next of `statuses`. */
function facade(opts: { initiate?: () => Reply; status: () => Reply; del?: () => Reply; jobId?: string }): Handler {
  return (req) => {
    if (req.method === 'POST' && req.path === '/v1/download/initiate') {
      return opts.initiate?.() ?? { status: 202, body: { jobId: opts.jobId ?? JOB, status: 'pending', etaSeconds: 12, totalFileIds: 2 } };
    }
    if (req.method === 'GET' && req.path.startsWith('/v1/download/status/')) return opts.status();
    if (req.method === 'DELETE') return opts.del?.() ?? { status: 202, body: { jobId: JOB, status: 'cancelled' } };
    return undefined;
  };
}

function setup(handler: Handler, options: UseDownloadOptions = {}, ids = IDS) {
  const server = fakeFetch(handler);
  const client = newClient();
  const hook = renderHook((p: { ids: number[] }) => useDownload(p.ids, { fetch: server.fetch, EventSource: null, backoff: { random: () => 0 }, ...options }), {
    wrapper: wrapper(client),
    initialProps: { ids },
  });
  return { ...server, ...hook, client };
}

onFakeClock(() => {
  localStorage.clear();
  FakeEventSource.reset();
});

describe('useDownload: state transitions', () => {
  it('initiates once with sorted ids and an Idempotency-Key, then polls every 3 s to completion', async () => {
    const t = setup(
      facade({
        status: sequence(
          { status: 200, body: { jobId: JOB, status: 'pending' } },
          { status: 200, body: processing(25) },
          { status: 200, body: processing(60) },
          { status: 200, body: completed() },
        ),
      }),
    );
    expect(t.result.current.status).toBe('initiating');
    await advance(0);
    const posts = t.seen.filter((s) => s.method === 'POST');
    expect(posts).toHaveLength(1);
    expect(posts[0].body).toEqual({ file_ids: [70000, 70007] });
    expect(posts[0].headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(localStorage.getItem(KEY)!)).toMatchObject({ jobId: JOB, fileIds: [70000, 70007] });
    expect(t.result.current.status).toBe('pending');
    expect(t.result.current.jobId).toBe(JOB);
    expect(t.count('GET', '/v1/download/status/')).toBe(1);

    await advance(2999);
    expect(t.count('GET', '/v1/download/status/')).toBe(1);
    await advance(1);
    expect(t.count('GET', '/v1/download/status/')).toBe(2);
    expect(t.result.current).toMatchObject({ status: 'processing', progress: 25, bytesTotal: 100 * 1024 * 1024, transport: 'polling' });

    await advance(3000);
    expect(t.result.current.progress).toBe(60);
    expect(t.result.current.etaSeconds).toBe(5);

    await advance(3000);
    expect(t.result.current).toMatchObject({
      status: 'completed',
      progress: 100,
      downloadUrl: completed().downloadUrl,
      sha256: 'a'.repeat(64),
      size: 12345,
      transport: 'none',
    });
    // Terminal: no more polls.
    const polls = t.count('GET', '/v1/download/status/');
    await advance(30_000);
    expect(t.count('GET', '/v1/download/status/')).toBe(polls);
    // Finished but not downloaded yet: still remembered; downloaded: forgotten.
    expect(localStorage.getItem(KEY)).not.toBeNull();
    t.result.current.markDownloaded();
    expect(localStorage.getItem(KEY)).toBeNull();
  });

  it('waits for a click when autoStart is false', async () => {
    const t = setup(facade({ status: () => ({ status: 200, body: processing(10) }) }), { autoStart: false });
    await advance(5000);
    expect(t.result.current.status).toBe('idle');
    expect(t.seen).toHaveLength(0);
    t.result.current.start();
    await advance(0);
    expect(t.count('POST', '/v1/download/initiate')).toBe(1);
    expect(t.result.current.status).toBe('processing');
  });

  it('reports a failed job with its reason, and retry starts a new job with a new key', async () => {
    let failed = true;
    const t = setup(
      facade({
        status: () =>
          failed
            ? { status: 200, body: { jobId: JOB, status: 'failed', error: { code: 'SourceNotFound', message: 'file 99999 does not exist' } } }
            : { status: 200, body: processing(5, JOB2) },
        jobId: undefined,
      }),
      {},
      [99999],
    );
    await advance(0);
    expect(t.result.current.status).toBe('failed');
    expect(t.result.current.error).toEqual({ code: 'SourceNotFound', message: 'file 99999 does not exist' });
    const firstKey = t.seen[0].headers['idempotency-key'];
    const polls = t.count('GET', '/v1/download/status/');
    await advance(9000);
    expect(t.count('GET', '/v1/download/status/')).toBe(polls);

    failed = false;
    t.result.current.retry();
    await advance(0);
    const posts = t.seen.filter((s) => s.method === 'POST');
    expect(posts).toHaveLength(2);
    expect(posts[1].headers['idempotency-key']).not.toBe(firstKey);
  });

  it('reports a 400 on initiate as failed without retrying', async () => {
    const t = setup(
      facade({
        initiate: () => ({ status: 400, body: { error: { code: 'BadRequest', message: 'file_ids: 5 is out of range' } } }),
        status: () => ({ status: 500 }),
      }),
    );
    await advance(60_000);
    expect(t.count('POST', '/v1/download/initiate')).toBe(1);
    expect(t.result.current.status).toBe('failed');
    expect(t.result.current.error?.code).toBe('BadRequest');
    expect(localStorage.getItem(KEY)).toBeNull();
  });

  it('retries a 404 right after its own initiate (a lagging cache) instead of failing', async () => {
    const t = setup(
      facade({ status: sequence({ status: 404, body: { error: { code: 'NotFound', message: 'no job' } } }, { status: 200, body: processing(30) }) }),
    );
    await advance(0);
    expect(t.result.current.status).toBe('pending');
    await advance(1000);
    expect(t.result.current.status).toBe('processing');
    expect(t.count('POST', '/v1/download/initiate')).toBe(1);
  });

  it('stops polling when unmounted', async () => {
    const t = setup(facade({ status: () => ({ status: 200, body: processing(10) }) }));
    await advance(0);
    await advance(3000);
    const polls = t.count('GET', '/v1/download/status/');
    expect(polls).toBe(2);
    t.unmount();
    await advance(30_000);
    expect(t.count('GET', '/v1/download/status/')).toBe(polls);
  });
});

describe('useDownload: backoff', () => {
  it('backs off exponentially (with jitter) on 503 without Retry-After', async () => {
    // random() = 0: equal jitter gives exactly half of 1 s, 2 s, 4 s …
    const t = setup(
      facade({
        status: sequence(
          { status: 200, body: processing(10) },
          { status: 503, body: { error: { code: 'Unavailable', message: 'cannot read job state' } } },
          { status: 503, body: { error: { code: 'Unavailable', message: 'cannot read job state' } } },
          { status: 503, body: { error: { code: 'Unavailable', message: 'cannot read job state' } } },
          { status: 200, body: processing(50) },
        ),
      }),
    );
    await advance(0);
    const t0 = Date.now();
    await advance(3000); // the poll that fails
    expect(t.result.current.retrying).toMatchObject({ code: 'Unavailable', attempt: 1 });
    await advance(500);
    await advance(1000);
    await advance(2000);
    const times = t.seen.filter((s) => s.method === 'GET').map((s) => s.at - t0);
    expect(times).toEqual([0, 3000, 3500, 4500, 6500]);
    expect(t.result.current.progress).toBe(50);
    expect(t.result.current.retrying).toBeUndefined();
  });

  it('uses the jitter: delays spread between half and all of the exponential step', async () => {
    const t = setup(
      facade({
        status: sequence(
          { status: 200, body: processing(10) },
          'network-error',
          { status: 200, body: processing(20) },
        ),
      }),
      { backoff: { random: () => 0.999 } },
    );
    await advance(0);
    await advance(3000);
    const failedAt = Date.now();
    await advance(998);
    expect(t.count('GET', '/v1/download/status/')).toBe(2);
    await advance(2);
    expect(t.count('GET', '/v1/download/status/')).toBe(3);
    expect(Date.now() - failedAt).toBe(1000);
    expect(t.result.current.progress).toBe(20);
  });

  it('honours Retry-After on a 429 of a status poll', async () => {
    const t = setup(
      facade({
        status: sequence(
          { status: 200, body: processing(10) },
          { status: 429, headers: { 'Retry-After': '7' }, body: { error: { code: 'RateLimited', message: 'too many requests' } } },
          { status: 200, body: processing(40) },
        ),
      }),
    );
    await advance(0);
    await advance(3000);
    expect(t.result.current.retrying?.code).toBe('RateLimited');
    await advance(6999);
    expect(t.count('GET', '/v1/download/status/')).toBe(2);
    await advance(1);
    expect(t.count('GET', '/v1/download/status/')).toBe(3);
    expect(t.result.current.progress).toBe(40);
  });

  it('honours Retry-After on a 429 of the initiate, replaying the same Idempotency-Key', async () => {
    const t = setup(
      facade({
        initiate: sequence(
          {
            status: 429,
            headers: { 'Retry-After': '5' },
            body: { error: { code: 'TooManyActiveDownloads', message: '10 downloads of yours are still being prepared' } },
          },
          { status: 202, body: { jobId: JOB, status: 'pending', etaSeconds: 3, totalFileIds: 2 } },
        ),
        status: () => ({ status: 200, body: processing(10) }),
      }),
    );
    const t0 = Date.now();
    await advance(0);
    expect(t.result.current.status).toBe('initiating');
    expect(t.result.current.retrying).toMatchObject({ code: 'TooManyActiveDownloads', attempt: 1, nextAt: t0 + 5000 });
    await advance(4999);
    expect(t.count('POST', '/v1/download/initiate')).toBe(1);
    await advance(1);
    const posts = t.seen.filter((s) => s.method === 'POST');
    expect(posts).toHaveLength(2);
    expect(posts[1].headers['idempotency-key']).toBe(posts[0].headers['idempotency-key']);
    expect(t.result.current.status).toBe('processing');
  });
});

describe('useDownload: Server-Sent Events', () => {
  it('follows events instead of polling while the stream is live, and closes it at the end', async () => {
    const t = setup(facade({ status: () => ({ status: 200, body: processing(5) }) }), { EventSource: FakeEventSource as unknown as typeof EventSource });
    await advance(0);
    const es = FakeEventSource.latest()!;
    expect(es.url).toBe(`/v1/download/events/${JOB}`);
    await es.open();
    expect(t.result.current.transport).toBe('sse');
    const polls = t.count('GET', '/v1/download/status/');
    await es.emit(processing(33));
    expect(t.result.current.progress).toBe(33);
    await es.emit(processing(66));
    await advance(12_000);
    expect(t.count('GET', '/v1/download/status/')).toBe(polls); // no 3 s polls while live
    expect(t.result.current.progress).toBe(66);
    await es.emit(completed());
    expect(t.result.current.status).toBe('completed');
    expect(es.readyState).toBe(FakeEventSource.CLOSED);
    expect(FakeEventSource.instances).toHaveLength(1);
  });

  it('ignores an older document that arrives after a newer one', async () => {
    const t = setup(facade({ status: sequence({ status: 200, body: processing(5) }, { status: 200, body: processing(10) }) }), {
      EventSource: FakeEventSource as unknown as typeof EventSource,
    });
    await advance(0);
    const es = FakeEventSource.latest()!;
    await es.emit(processing(50));
    await advance(3000); // the stream is not open yet, so a poll runs and answers 10 %
    expect(t.result.current.progress).toBe(50);
  });

  it('falls back to polling when the stream is refused, and never reopens it for that job', async () => {
    const t = setup(
      facade({ status: sequence({ status: 200, body: processing(5) }, { status: 200, body: processing(20) }, { status: 200, body: processing(40) }) }),
      { EventSource: FakeEventSource as unknown as typeof EventSource },
    );
    await advance(0);
    const es = FakeEventSource.latest()!;
    await es.open();
    expect(t.result.current.transport).toBe('sse');
    await es.fail(true);
    expect(t.result.current.transport).toBe('polling');
    const polls = t.count('GET', '/v1/download/status/');
    await advance(3000);
    expect(t.count('GET', '/v1/download/status/')).toBeGreaterThan(polls);
    await advance(3000);
    expect(t.result.current.progress).toBe(40);
    expect(FakeEventSource.instances).toHaveLength(1);
  });

  it('polls while the browser reconnects the stream, and stops again once it is back', async () => {
    const t = setup(facade({ status: () => ({ status: 200, body: processing(5) }) }), { EventSource: FakeEventSource as unknown as typeof EventSource });
    await advance(0);
    const es = FakeEventSource.latest()!;
    await es.open();
    await es.fail(false);
    expect(t.result.current.transport).toBe('polling');
    const polls = t.count('GET', '/v1/download/status/');
    await advance(3000);
    expect(t.count('GET', '/v1/download/status/')).toBe(polls + 1);
    await es.open();
    expect(t.result.current.transport).toBe('sse');
    await advance(9000);
    expect(t.count('GET', '/v1/download/status/')).toBe(polls + 1);
  });

  it('polls when the browser has no EventSource', async () => {
    vi.stubGlobal('EventSource', undefined);
    const t = setup(facade({ status: () => ({ status: 200, body: processing(5) }) }), { EventSource: undefined });
    await advance(0);
    await advance(6000);
    expect(t.count('GET', '/v1/download/status/')).toBe(3);
    expect(t.result.current.transport).toBe('polling');
    vi.unstubAllGlobals();
  });
});

describe('useDownload: worker retries', () => {
  it('shows a retried worker\'s progress from 0, and still drops an older document of the same attempt', async () => {
    const t = setup(facade({ status: () => ({ status: 200, body: attempt(1, 40) }) }), {
      EventSource: FakeEventSource as unknown as typeof EventSource,
    });
    await advance(0);
    const es = FakeEventSource.latest()!;
    await es.open();
    await es.emit(attempt(1, 80));
    expect(t.result.current).toMatchObject({ progress: 80, bytesDone: 80, attempts: 1 });
    // The worker failed and its retry started over: the new attempt is shown, not the old high-water mark.
    await es.emit(attempt(2, 10));
    expect(t.result.current).toMatchObject({ status: 'processing', progress: 10, bytesDone: 10, attempts: 2 });
    // A late document of the same attempt with fewer bytes is older: dropped, as before.
    await es.emit(attempt(2, 5));
    expect(t.result.current).toMatchObject({ progress: 10, bytesDone: 10, attempts: 2 });
    // So is one of the failed attempt, however far it had got.
    await es.emit(attempt(1, 90));
    expect(t.result.current).toMatchObject({ progress: 10, bytesDone: 10, attempts: 2 });
    await es.emit(attempt(2, 30));
    expect(t.result.current).toMatchObject({ progress: 30, bytesDone: 30, attempts: 2 });
  });

  it('does the same when polling, where a lagging replica may answer with an older document', async () => {
    const t = setup(
      facade({
        status: sequence(
          { status: 200, body: attempt(1, 80) },
          { status: 200, body: attempt(2, 10) },
          { status: 200, body: attempt(2, 5) },
          { status: 200, body: attempt(1, 95) },
          { status: 200, body: attempt(2, 20) },
        ),
      }),
    );
    await advance(0);
    expect(t.result.current).toMatchObject({ progress: 80, attempts: 1 });
    await advance(3000);
    expect(t.result.current).toMatchObject({ progress: 10, bytesDone: 10, attempts: 2 });
    await advance(3000);
    expect(t.result.current).toMatchObject({ progress: 10, attempts: 2 });
    await advance(3000);
    expect(t.result.current).toMatchObject({ progress: 10, attempts: 2 });
    await advance(3000);
    expect(t.result.current).toMatchObject({ progress: 20, attempts: 2 });
    expect(t.count('GET', '/v1/download/status/')).toBe(5);
  });

  it('counts a document without attempts as the first attempt', async () => {
    const { attempts: _, ...firstWithout } = attempt(1, 70);
    const t = setup(facade({ status: sequence({ status: 200, body: firstWithout }, { status: 200, body: attempt(2, 15) }) }));
    await advance(0);
    expect(t.result.current).toMatchObject({ progress: 70, attempts: undefined });
    await advance(3000);
    expect(t.result.current).toMatchObject({ progress: 15, attempts: 2 });
  });

  it('still drops fewer bytes from a facade that does not report attempts', async () => {
    const t = setup(facade({ status: sequence({ status: 200, body: processing(60) }, { status: 200, body: processing(20) }) }));
    await advance(0);
    await advance(3000);
    expect(t.count('GET', '/v1/download/status/')).toBe(2);
    expect(t.result.current.progress).toBe(60);
    expect(t.result.current.attempts).toBeUndefined();
  });
});

describe('useDownload: missing files and the stable link', () => {
  const SKIP_KEY = storageKey(IDS, 'skip');

  it('sends missing_files "skip" when asked, and exposes the skipped ids and the stable link', async () => {
    const t = setup(
      facade({
        status: () => ({
          status: 200,
          body: completed(JOB, undefined, { archiveUrl: `/v1/download/${JOB}/archive`, skippedFileIds: [70007] }),
        }),
      }),
      { missingFiles: 'skip', baseUrl: 'http://facade.test/' },
    );
    await advance(0);
    const [post] = t.seen.filter((s) => s.method === 'POST');
    expect(post.body).toEqual({ file_ids: [70000, 70007], missing_files: 'skip' });
    expect(t.result.current).toMatchObject({
      status: 'completed',
      skippedFileIds: [70007],
      archiveUrl: `http://facade.test/v1/download/${JOB}/archive`,
      downloadUrl: completed().downloadUrl,
    });
    // Remembered apart from a default-policy job of the same ids.
    expect(SKIP_KEY).toBe('download-operator:job:70000,70007:skip');
    expect(JSON.parse(localStorage.getItem(SKIP_KEY)!)).toMatchObject({ jobId: JOB, missingFiles: 'skip' });
    expect(localStorage.getItem(KEY)).toBeNull();
    t.result.current.markDownloaded();
    expect(localStorage.getItem(SKIP_KEY)).toBeNull();
  });

  it('sends no missing_files by default or for "fail" (older facades refuse unknown fields), and has no stable link from them', async () => {
    for (const missingFiles of [undefined, 'fail'] as const) {
      localStorage.clear();
      const t = setup(facade({ status: () => ({ status: 200, body: completed() }) }), { missingFiles });
      await advance(0);
      expect(t.seen.find((s) => s.method === 'POST')?.body).toEqual({ file_ids: [70000, 70007] });
      expect(t.result.current.status).toBe('completed');
      expect(t.result.current.archiveUrl).toBeUndefined();
      expect(t.result.current.skippedFileIds).toBeUndefined();
      expect(JSON.parse(localStorage.getItem(KEY)!).jobId).toBe(JOB);
      t.unmount();
    }
  });

  it('does not resume the same ids\' default-policy job when skipping, nor the other way round', async () => {
    localStorage.setItem(KEY, JSON.stringify({ fileIds: [70000, 70007], idempotencyKey: 'k-fail', jobId: JOB2, createdAt: 1 }));
    const t = setup(facade({ status: () => ({ status: 200, body: processing(5) }) }), { missingFiles: 'skip' });
    await advance(0);
    expect(t.result.current.resumed).toBe(false);
    expect(t.result.current.jobId).toBe(JOB);
    expect(t.count('POST', '/v1/download/initiate')).toBe(1);
    expect(JSON.parse(localStorage.getItem(KEY)!).jobId).toBe(JOB2);
    t.unmount();

    const again = setup(facade({ status: () => ({ status: 200, body: processing(5, JOB2) }) }));
    await advance(0);
    expect(again.result.current).toMatchObject({ resumed: true, jobId: JOB2 });
    expect(again.count('POST', '/v1/download/initiate')).toBe(0);
  });
});

describe('useDownload: resume', () => {
  function remember(jobId: string | undefined, idempotencyKey = 'key-1') {
    localStorage.setItem(KEY, JSON.stringify({ fileIds: [70000, 70007], idempotencyKey, jobId, createdAt: 1 }));
  }

  it('resumes a remembered job instead of starting another', async () => {
    remember(JOB);
    const t = setup(facade({ status: () => ({ status: 200, body: processing(45) }) }));
    expect(t.result.current.resumed).toBe(true);
    await advance(0);
    expect(t.count('POST', '/v1/download/initiate')).toBe(0);
    expect(t.seen[0].path).toBe(`/v1/download/status/${JOB}`);
    expect(t.result.current).toMatchObject({ status: 'processing', progress: 45, jobId: JOB });
  });

  it('whatever order the ids come in', async () => {
    remember(JOB);
    const t = setup(facade({ status: () => ({ status: 200, body: processing(45) }) }), {}, [70000, 70007, 70000]);
    await advance(0);
    expect(t.count('POST', '/v1/download/initiate')).toBe(0);
    expect(t.result.current.jobId).toBe(JOB);
  });

  it('replays an initiate that a reload interrupted, with the remembered key', async () => {
    remember(undefined, 'key-interrupted');
    const t = setup(facade({ status: () => ({ status: 200, body: processing(5) }) }));
    await advance(0);
    const posts = t.seen.filter((s) => s.method === 'POST');
    expect(posts).toHaveLength(1);
    expect(posts[0].headers['idempotency-key']).toBe('key-interrupted');
    expect(JSON.parse(localStorage.getItem(KEY)!).jobId).toBe(JOB);
  });

  it('starts afresh, with a message, when the remembered job answers 404', async () => {
    remember(JOB);
    const t = setup((req) => {
      // The old job is gone; the new one exists.
      if (req.path === `/v1/download/status/${JOB}`) return { status: 404, body: { error: { code: 'NotFound', message: `no job ${JOB}` } } };
      return facade({ jobId: JOB2, status: () => ({ status: 200, body: processing(5, JOB2) }) })(req);
    });
    await advance(0);
    await advance(0);
    expect(t.seen.filter((s) => s.path === `/v1/download/status/${JOB}`)).toHaveLength(1); // no retries of a resumed 404
    expect(t.count('POST', '/v1/download/initiate')).toBe(1);
    expect(t.result.current.notice).toMatch(/no longer exists/);
    expect(t.result.current.jobId).toBe(JOB2);
    expect(t.result.current.status).toBe('processing');
    expect(JSON.parse(localStorage.getItem(KEY)!).jobId).toBe(JOB2);
  });

  it('forgets a completed job whose link has expired', async () => {
    remember(JOB);
    const t = setup(facade({ status: () => ({ status: 200, body: completed(JOB, '2025-12-31T23:00:00Z') }) }));
    await advance(0);
    await advance(0);
    expect(t.result.current.status).toBe('expired');
    expect(localStorage.getItem(KEY)).toBeNull();
  });

  it('keeps a completed job whose presigned URL expired while its stable link has not, until archiveExpiresAt', async () => {
    remember(JOB);
    const archiveUrl = `/v1/download/${JOB}/archive`;
    const body = completed(JOB, '2025-12-31T23:00:00Z', { archiveUrl, archiveExpiresAt: '2026-01-01T00:00:20Z' });
    const t = setup(facade({ status: () => ({ status: 200, body }) }), { baseUrl: 'http://facade.test' });
    await advance(0);
    await advance(0);
    expect(t.result.current).toMatchObject({
      status: 'completed',
      archiveUrl: `http://facade.test${archiveUrl}`,
      expiresAt: '2025-12-31T23:00:00Z',
      archiveExpiresAt: '2026-01-01T00:00:20Z',
      linkExpiresAt: '2026-01-01T00:00:20Z',
    });
    await advance(10_000);
    expect(t.result.current.status).toBe('completed');
    expect(JSON.parse(localStorage.getItem(KEY)!).jobId).toBe(JOB);
    // The job is deleted with its archive then; a facade still answering completed is out of date.
    await advance(11_000);
    expect(t.result.current.status).toBe('expired');
    expect(localStorage.getItem(KEY)).toBeNull();
  });

  it('falls back to expiresAt for a stable link without archiveExpiresAt (older facades)', async () => {
    remember(JOB);
    const body = completed(JOB, '2025-12-31T23:00:00Z', { archiveUrl: `/v1/download/${JOB}/archive` });
    const t = setup(facade({ status: () => ({ status: 200, body }) }));
    await advance(0);
    await advance(0);
    expect(t.result.current.status).toBe('expired');
  });

  it('ignores archiveExpiresAt when there is no stable link to follow', async () => {
    remember(JOB);
    const body = completed(JOB, '2025-12-31T23:00:00Z', { archiveExpiresAt: '2026-01-01T02:00:00Z' });
    const t = setup(facade({ status: () => ({ status: 200, body }) }));
    await advance(0);
    await advance(0);
    expect(t.result.current.status).toBe('expired');
  });

  it('keeps a completed job whose link is refreshed before it expires', async () => {
    let expires = '2026-01-01T00:00:10Z';
    const t = setup(facade({ status: () => ({ status: 200, body: completed(JOB, expires) }) }));
    await advance(0);
    expect(t.result.current.status).toBe('completed');
    expires = '2026-01-01T00:15:10Z';
    await advance(10_000);
    expect(t.result.current.status).toBe('completed');
    expect(t.result.current.expiresAt).toBe(expires);
  });

  it('picks up a job that another tab started', async () => {
    const t = setup(facade({ status: () => ({ status: 200, body: processing(70) }) }), { autoStart: false });
    await advance(0);
    expect(t.result.current.status).toBe('idle');
    remember(JOB);
    window.dispatchEvent(new StorageEvent('storage', { key: KEY }));
    await advance(0);
    expect(t.result.current).toMatchObject({ status: 'processing', jobId: JOB, progress: 70 });
    expect(t.count('POST', '/v1/download/initiate')).toBe(0);
  });
});

describe('useDownload: cancel', () => {
  it('DELETEs the job, forgets it and stops polling', async () => {
    const t = setup(facade({ status: () => ({ status: 200, body: processing(20) }) }));
    await advance(0);
    expect(t.result.current.status).toBe('processing');
    await t.result.current.cancel();
    await advance(0);
    const del = t.seen.filter((s) => s.method === 'DELETE');
    expect(del.map((d) => d.path)).toEqual([`/v1/download/${JOB}`]);
    expect(t.result.current.status).toBe('cancelled');
    expect(localStorage.getItem(KEY)).toBeNull();
    const polls = t.count('GET', '/v1/download/status/');
    await advance(30_000);
    expect(t.count('GET', '/v1/download/status/')).toBe(polls);
  });

  it('counts a 404 on DELETE as cancelled (it is gone already)', async () => {
    const t = setup(
      facade({ status: () => ({ status: 200, body: processing(20) }), del: () => ({ status: 404, body: { error: { code: 'NotFound', message: 'no job' } } }) }),
    );
    await advance(0);
    await t.result.current.cancel();
    await advance(0);
    expect(t.result.current.status).toBe('cancelled');
  });

  it('retries a DELETE that hit a 503, then gives up with a notice and keeps following the job', async () => {
    const t = setup(
      facade({ status: () => ({ status: 200, body: processing(20) }), del: () => ({ status: 503, headers: { 'Retry-After': '1' }, body: { error: { code: 'Unavailable', message: 'cannot cancel right now' } } }) }),
    );
    await advance(0);
    const p = t.result.current.cancel();
    await advance(5000);
    await p;
    await advance(0);
    expect(t.count('DELETE', '/v1/download/')).toBe(3);
    expect(t.result.current.status).toBe('processing');
    expect(t.result.current.notice).toMatch(/Could not cancel/);
    expect(t.result.current.cancelling).toBe(false);
  });

  it('stops an initiate that is waiting out a Retry-After', async () => {
    const t = setup(
      facade({
        initiate: () => ({ status: 429, headers: { 'Retry-After': '30' }, body: { error: { code: 'RateLimited', message: 'slow down' } } }),
        status: () => ({ status: 500 }),
      }),
    );
    await advance(0);
    expect(t.result.current.status).toBe('initiating');
    await t.result.current.cancel();
    await advance(0);
    expect(t.result.current.status).toBe('cancelled');
    await advance(60_000);
    expect(t.count('POST', '/v1/download/initiate')).toBe(1);
    expect(localStorage.getItem(KEY)).toBeNull();
  });

  it('deletes the job of an initiate that was in flight when cancelled, once its id is known', async () => {
    let answer: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (answer = resolve));
    const server = fakeFetch(facade({ status: () => ({ status: 200, body: processing(20) }) }));
    const slowInitiate: typeof fetch = async (input, init) => {
      if (init?.method === 'POST') await held;
      return server.fetch(input, init);
    };
    const t = setup(() => undefined, { fetch: slowInitiate });
    await advance(0);
    expect(t.result.current.status).toBe('initiating');
    await t.result.current.cancel();
    await advance(0);
    expect(t.result.current.status).toBe('cancelled');
    expect(localStorage.getItem(KEY)).toBeNull();
    expect(server.count('DELETE', '/v1/download/')).toBe(0);
    answer();
    await advance(0);
    expect(server.seen.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/download/initiate', `DELETE /v1/download/${JOB}`]);
    expect(t.result.current.status).toBe('cancelled');
    expect(localStorage.getItem(KEY)).toBeNull();
  });

  it('stops retrying the initiate when unmounted (a mutation would outlive the component)', async () => {
    const t = setup(facade({ initiate: () => ({ status: 503, body: { error: { code: 'Unavailable', message: 'later' } } }), status: () => ({ status: 500 }) }));
    await advance(0);
    expect(t.result.current.retrying?.attempt).toBe(1);
    t.unmount();
    await advance(120_000);
    expect(t.count('POST', '/v1/download/initiate')).toBe(1);
    // The key stays remembered: mounting again replays it rather than starting a second job.
    expect(JSON.parse(localStorage.getItem(KEY)!).idempotencyKey).toBe(t.seen[0].headers['idempotency-key']);
  });

  it('reports a job cancelled elsewhere as cancelled, and forgets it', async () => {
    const t = setup(
      facade({
        status: sequence(
          { status: 200, body: processing(20) },
          { status: 200, body: { jobId: JOB, status: 'failed', error: { code: 'Cancelled', message: 'the download was cancelled' } } },
        ),
      }),
    );
    await advance(0);
    await advance(3000);
    expect(t.result.current.status).toBe('cancelled');
    expect(localStorage.getItem(KEY)).toBeNull();
  });
});

describe('useDownload: React Query client', () => {
  it('throws, saying what to do, without a QueryClientProvider or options.queryClient', () => {
    // React reports the error it rethrows too: keep the test output for real failures.
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const server = fakeFetch(facade({ status: () => ({ status: 200, body: processing(5) }) }));
    expect(() => renderHook(() => useDownload(IDS, { fetch: server.fetch, EventSource: null }))).toThrow(
      /wrap the app in <QueryClientProvider.*options\.queryClient/,
    );
    expect(server.seen).toHaveLength(0);
  });

  it('uses options.queryClient without a provider', async () => {
    const server = fakeFetch(facade({ status: () => ({ status: 200, body: completed() }) }));
    const client = new QueryClient();
    const t = renderHook(() => useDownload(IDS, { fetch: server.fetch, EventSource: null, queryClient: client }));
    await advance(0);
    expect(t.result.current.status).toBe('completed');
    expect(client.getQueryData(statusQueryKey(undefined, JOB))).toMatchObject({ jobId: JOB, status: 'completed' });
    t.unmount();
  });
});
