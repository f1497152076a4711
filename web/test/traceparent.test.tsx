import { renderHook } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { resolveTraceparent } from '../src/lib/api';
import { useDownload, type UseDownloadOptions } from '../src/lib/useDownload';
import { advance, completed, fakeFetch, FakeEventSource, JOB, newClient, onFakeClock, processing, wrapper, type Handler } from './helpers';

const TP1 = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const TP2 = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/** Initiate answers with JOB; status is processing twice, then completed. */
function facade(): Handler {
  let polls = 0;
  return (req) => {
    if (req.method === 'POST' && req.path === '/v1/download/initiate') {
      return { status: 202, body: { jobId: JOB, status: 'pending', etaSeconds: 12, totalFileIds: 1 } };
    }
    if (req.method === 'GET' && req.path.startsWith('/v1/download/status/')) {
      polls++;
      return { status: 200, body: polls < 3 ? processing(polls * 30) : completed() };
    }
    if (req.method === 'DELETE') return { status: 202, body: { jobId: JOB, status: 'cancelled' } };
    return undefined;
  };
}

function setup(options: UseDownloadOptions) {
  const server = fakeFetch(facade());
  const hook = renderHook(() => useDownload([70000], { fetch: server.fetch, EventSource: null, storage: null, ...options }), {
    wrapper: wrapper(newClient()),
  });
  return { ...server, ...hook };
}

onFakeClock(() => FakeEventSource.reset());

describe('useDownload: traceparent', () => {
  it('sends a fixed traceparent on initiate and on every status request', async () => {
    const t = setup({ traceparent: TP1 });
    await advance(0);
    await advance(6000);
    expect(t.result.current.status).toBe('completed');
    const methods = t.seen.map((r) => r.method);
    expect(methods).toContain('POST');
    expect(methods.filter((m) => m === 'GET').length).toBeGreaterThanOrEqual(3);
    for (const r of t.seen) expect(r.headers.traceparent, `${r.method} ${r.path}`).toBe(TP1);
  });

  it('asks a function before each request and sends what it returns at that moment', async () => {
    let current: string | undefined = TP1;
    const source = vi.fn(() => current);
    const t = setup({ traceparent: source });
    await advance(0);
    const first = t.seen.length;
    expect(first).toBeGreaterThanOrEqual(2); // initiate and the first status
    current = TP2;
    await advance(3000);
    current = undefined;
    await advance(3000);

    const sent = t.seen.map((r) => r.headers.traceparent);
    expect(sent.slice(0, first)).toEqual(Array(first).fill(TP1));
    expect(sent[first]).toBe(TP2);
    expect(sent[sent.length - 1]).toBeUndefined();
    expect(source.mock.calls.length).toBeGreaterThanOrEqual(t.seen.length);
  });

  it('sends it when cancelling too', async () => {
    const t = setup({ traceparent: TP1 });
    await advance(0);
    await t.result.current.cancel();
    const del = t.seen.find((r) => r.method === 'DELETE');
    expect(del?.headers.traceparent).toBe(TP1);
  });

  it('sends no traceparent without one, or with a malformed one', async () => {
    for (const traceparent of [undefined, '', 'not-a-traceparent', () => null]) {
      const t = setup({ traceparent });
      await advance(0);
      expect(t.seen.length).toBeGreaterThan(0);
      for (const r of t.seen) expect('traceparent' in r.headers, `${String(traceparent)}: ${r.method} ${r.path}`).toBe(false);
      t.unmount();
    }
  });
});

describe('resolveTraceparent', () => {
  it('accepts version-00 traceparents, normalised to lower case', () => {
    expect(resolveTraceparent(TP1)).toBe(TP1);
    expect(resolveTraceparent(` ${TP1.toUpperCase()} `)).toBe(TP1);
    expect(resolveTraceparent(() => TP2)).toBe(TP2);
    expect(resolveTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')).toBe(
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00',
    );
  });

  it('rejects missing, malformed and all-zero ids', () => {
    for (const bad of [
      undefined,
      '',
      'garbage',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
    ]) {
      expect(resolveTraceparent(bad), String(bad)).toBeUndefined();
    }
    expect(resolveTraceparent(() => undefined)).toBeUndefined();
  });
});
