import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { act } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, beforeEach, vi } from 'vitest';

/** One request the fake server saw. */
export interface Seen {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: unknown;
  at: number;
}

export type Reply = { status: number; body?: unknown; headers?: Record<string, string> } | 'network-error';
export type Handler = (req: Seen) => Reply | undefined;

/**
 * A fetch that answers from a handler and records every request, with the fake clock's time.
 * Unhandled requests answer 500, so a test notices them.
 */
export function fakeFetch(handler: Handler) {
  const seen: Seen[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input), 'http://facade.test');
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => (headers[k.toLowerCase()] = v));
    const req: Seen = {
      method: init?.method ?? 'GET',
      path: url.pathname,
      headers,
      body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined,
      at: Date.now(),
    };
    seen.push(req);
    if (init?.signal?.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
    const reply = handler(req) ?? { status: 500, body: { error: { code: 'Unhandled', message: `${req.method} ${req.path}` } } };
    if (reply === 'network-error') throw new TypeError('Failed to fetch');
    // A plain object rather than a Response: reading a real body takes real time, which a fake
    // clock does not wait for.
    const body = reply.body;
    return {
      ok: reply.status >= 200 && reply.status < 300,
      status: reply.status,
      headers: new Headers({ 'Content-Type': 'application/json', ...reply.headers }),
      json: async () => {
        if (body === undefined) throw new SyntaxError('Unexpected end of JSON input');
        return JSON.parse(JSON.stringify(body));
      },
    } as Response;
  });
  const count = (method: string, prefix: string) => seen.filter((s) => s.method === method && s.path.startsWith(prefix)).length;
  return { fetch: fn as unknown as typeof fetch, seen, count };
}

/** An EventSource the test drives by hand. */
export class FakeEventSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  static instances: FakeEventSource[] = [];

  readonly url: string;
  readyState = FakeEventSource.CONNECTING;
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;

  constructor(url: string | URL) {
    this.url = String(url);
    FakeEventSource.instances.push(this);
  }

  close() {
    this.readyState = FakeEventSource.CLOSED;
  }

  /** The server answered 200 text/event-stream. */
  async open() {
    await act(async () => {
      this.readyState = FakeEventSource.OPEN;
      this.onopen?.(new Event('open'));
    });
  }

  /** One event whose data is a status document. */
  async emit(doc: unknown) {
    await act(async () => {
      this.onmessage?.(new MessageEvent('message', { data: JSON.stringify(doc) }));
    });
  }

  /** The connection failed; closed: the browser gave up (a non-200 answer), else it reconnects. */
  async fail(closed: boolean) {
    await act(async () => {
      this.readyState = closed ? FakeEventSource.CLOSED : FakeEventSource.CONNECTING;
      this.onerror?.(new Event('error'));
    });
  }

  static reset() {
    FakeEventSource.instances = [];
  }

  static latest(): FakeEventSource | undefined {
    return FakeEventSource.instances[FakeEventSource.instances.length - 1];
  }
}

export function newClient() {
  return new QueryClient({ defaultOptions: { queries: { gcTime: Infinity } } });
}

export function wrapper(client: QueryClient) {
  return function Wrapper({ children }: { children: ReactNode }) {
    return <QueryClientProvider client={client}>{children}</QueryClientProvider>;
  };
}

/**
 * Runs every test of the calling file on a fake clock that starts at the same instant, after
 * setUp (which resets what the tests share), and gives the real clock back after each.
 */
export function onFakeClock(setUp: () => void) {
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    setUp();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
}

/**
 * Lets the fake clock run ms, in steps, so that React renders (and effects start timers) along
 * the way as it would in a browser; then settles responses, React Query's batched
 * notifications, renders and their effects, which each take a turn.
 */
export async function advance(ms = 0, step = 100) {
  let left = ms;
  while (left > 0) {
    const d = Math.min(step, left);
    left -= d;
    await act(async () => {
      await vi.advanceTimersByTimeAsync(d);
    });
  }
  for (let i = 0; i < 6; i++) {
    await act(async () => {
      await vi.advanceTimersByTimeAsync(0);
    });
  }
}

export const JOB = '123e4567-e89b-42d3-a456-426614174000';
export const JOB2 = '223e4567-e89b-42d3-a456-426614174000';

export function processing(progress: number, jobId = JOB) {
  const total = 100 * 1024 * 1024;
  return {
    jobId,
    status: 'processing',
    progress,
    bytesDone: Math.round((total * progress) / 100),
    bytesTotal: total,
    etaSeconds: Math.round(((100 - progress) / 100) * 12),
  };
}

/**
 * A processing document of worker attempt `attempts` with bytesDone of 100 bytes done (so
 * progress is bytesDone too).
 */
export function attempt(attempts: number, bytesDone: number, jobId = JOB) {
  return { jobId, status: 'processing', attempts, progress: bytesDone, bytesDone, bytesTotal: 100, etaSeconds: 10 };
}

/** A completed document as a facade without the stable link (or skipped ids) writes it; extra adds fields. */
export function completed(jobId = JOB, expiresAt = '2099-01-01T00:00:00Z', extra: Record<string, unknown> = {}) {
  return {
    jobId,
    status: 'completed',
    downloadUrl: `http://storage.test/${jobId}.zip?sig=1`,
    expiresAt,
    size: 12345,
    sha256: 'a'.repeat(64),
    ...extra,
  };
}
