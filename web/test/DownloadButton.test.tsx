import { act, fireEvent, render, screen } from '@testing-library/react';
import { StrictMode } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { DownloadButton } from '../src/lib/DownloadButton';
import { storageKey } from '../src/lib/storage';
import { advance, attempt, completed, fakeFetch, JOB, JOB2, newClient, onFakeClock, processing, wrapper, type Handler, type Reply } from './helpers';

const IDS = [70000, 70007];
const KEY = storageKey(IDS);

function server(status: () => Reply, extra?: Handler) {
  return fakeFetch((req) => {
    const r = extra?.(req);
    if (r) return r;
    if (req.method === 'POST') return { status: 202, body: { jobId: JOB, status: 'pending', etaSeconds: 12, totalFileIds: 2 } };
    if (req.method === 'GET') return status();
    if (req.method === 'DELETE') return { status: 202, body: { jobId: JOB, status: 'cancelled' } };
    return undefined;
  });
}

function mount(s: ReturnType<typeof fakeFetch>, props: Partial<Parameters<typeof DownloadButton>[0]> = {}) {
  const Wrapper = wrapper(newClient());
  const onStateChange = vi.fn();
  const view = render(
    <StrictMode>
      <Wrapper>
        <DownloadButton fileIds={IDS} options={{ fetch: s.fetch, EventSource: null, backoff: { random: () => 0 } }} onStateChange={onStateChange} {...props} />
      </Wrapper>
    </StrictMode>,
  );
  const root = () => view.container.querySelector('.dlo') as HTMLElement;
  return { ...view, root, onStateChange };
}

onFakeClock(() => localStorage.clear());

describe('<DownloadButton>', () => {
  it('goes idle → preparing (an accessible progress bar) → ready (a link to the archive)', async () => {
    let doc: Reply = { status: 200, body: { jobId: JOB, status: 'pending' } };
    const s = server(() => doc);
    const v = mount(s);
    await advance(0);
    expect(v.root().dataset.state).toBe('idle');
    expect(s.seen).toHaveLength(0);
    expect(screen.queryByRole('progressbar')).toBeNull();

    fireEvent.click(screen.getByRole('button', { name: 'Prepare download' }));
    await advance(0);
    expect(v.root().dataset.state).toBe('preparing');
    expect(v.root().dataset.jobId).toBe(JOB);
    const bar = screen.getByRole('progressbar');
    expect(bar.getAttribute('aria-valuemin')).toBe('0');
    expect(bar.getAttribute('aria-valuemax')).toBe('100');
    expect(bar.getAttribute('aria-valuenow')).toBe('0');
    expect(screen.getByRole('button', { name: 'Cancel' })).toBeTruthy();

    doc = { status: 200, body: processing(40) };
    await advance(3000);
    expect(bar.getAttribute('aria-valuenow')).toBe('40');
    expect(bar.getAttribute('aria-valuetext')).toBe('40%, 40 MiB of 100 MiB, about 7 s left');
    expect(v.root().textContent).toContain('40 MiB of 100 MiB · about 7 s left');
    expect(v.root().textContent).toContain('40%');

    doc = { status: 200, body: completed() };
    await advance(3000);
    expect(v.root().dataset.state).toBe('ready');
    expect(screen.queryByRole('progressbar')).toBeNull();
    const link = screen.getByRole('link', { name: 'Save ZIP' }) as HTMLAnchorElement;
    expect(link.getAttribute('href')).toBe(completed().downloadUrl);
    expect(link.hasAttribute('download')).toBe(true);
    expect(v.root().textContent).toContain('12.1 KiB');
    expect(v.onStateChange.mock.calls.map((c) => c[0])).toEqual(['idle', 'preparing', 'ready']);

    // Downloading forgets the job: a reload would start afresh.
    expect(localStorage.getItem(KEY)).not.toBeNull();
    link.addEventListener('click', (e) => e.preventDefault());
    fireEvent.click(link);
    expect(localStorage.getItem(KEY)).toBeNull();
  });

  it('keeps the same structure (and so its size) in every state', async () => {
    const s = server(() => ({ status: 200, body: processing(10) }));
    const v = mount(s);
    await advance(0);
    const parts = () => Array.from(v.root().children).map((c) => c.className);
    const idle = parts();
    fireEvent.click(screen.getByRole('button', { name: 'Prepare download' }));
    await advance(0);
    expect(parts()).toEqual(idle);
    expect(idle).toEqual(['dlo__head', 'dlo__track', 'dlo__foot', 'dlo__notice']);
  });

  it('shows the failure reason and retries with a new job', async () => {
    let failed = true;
    const s = server(() =>
      failed
        ? { status: 200, body: { jobId: JOB, status: 'failed', error: { code: 'SourceNotFound', message: 'file 99999 does not exist' } } }
        : { status: 200, body: processing(5, JOB2) },
    );
    const v = mount(s, { fileIds: [99999], autoStart: true });
    await advance(0);
    expect(v.root().dataset.state).toBe('failed');
    expect(v.root().textContent).toContain('Failed: SourceNotFound');
    expect(v.root().textContent).toContain('file 99999 does not exist');
    failed = false;
    fireEvent.click(screen.getByRole('button', { name: 'Retry' }));
    await advance(0);
    expect(v.root().dataset.state).toBe('preparing');
    const keys = new Set(s.seen.filter((r) => r.method === 'POST').map((r) => r.headers['idempotency-key']));
    expect(keys.size).toBe(2);
  });

  it('cancels, and keeps keyboard focus on the control that replaces the pressed one', async () => {
    const s = server(() => ({ status: 200, body: processing(30) }));
    const v = mount(s);
    await advance(0);
    const prepare = screen.getByRole('button', { name: 'Prepare download' });
    prepare.focus();
    fireEvent.click(prepare);
    await advance(0);
    const cancel = screen.getByRole('button', { name: 'Cancel' });
    expect(document.activeElement).toBe(cancel);
    await act(async () => {
      fireEvent.click(cancel);
    });
    await advance(0);
    expect(s.seen.filter((r) => r.method === 'DELETE').map((r) => r.path)).toEqual([`/v1/download/${JOB}`]);
    expect(v.root().dataset.state).toBe('cancelled');
    expect(v.root().textContent).toContain('Cancelled');
    expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Start again' }));
    expect(localStorage.getItem(KEY)).toBeNull();
  });

  it('resumes a remembered job on mount, without a click and without a new job', async () => {
    localStorage.setItem(KEY, JSON.stringify({ fileIds: IDS, idempotencyKey: 'k', jobId: JOB, createdAt: 1 }));
    const s = server(() => ({ status: 200, body: processing(55) }));
    const v = mount(s);
    await advance(0);
    expect(v.root().dataset.state).toBe('preparing');
    expect(screen.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('55');
    expect(s.seen.filter((r) => r.method === 'POST')).toHaveLength(0);
  });

  it('says so when a remembered job is gone, and starts a new one', async () => {
    localStorage.setItem(KEY, JSON.stringify({ fileIds: IDS, idempotencyKey: 'k', jobId: JOB2, createdAt: 1 }));
    const s = server(
      () => ({ status: 200, body: processing(3) }),
      (req) => (req.path.endsWith(JOB2) ? { status: 404, body: { error: { code: 'NotFound', message: 'no job' } } } : undefined),
    );
    const v = mount(s);
    await advance(0);
    await advance(0);
    expect(v.root().dataset.jobId).toBe(JOB);
    expect(screen.getByRole('status').textContent).toMatch(/saved job .* no longer exists/);
    expect(s.seen.filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('sends one Idempotency-Key however often StrictMode remounts it', async () => {
    const s = server(() => ({ status: 200, body: processing(3) }));
    mount(s, { autoStart: true });
    await advance(0);
    const keys = new Set(s.seen.filter((r) => r.method === 'POST').map((r) => r.headers['idempotency-key']));
    expect(keys.size).toBe(1);
  });

  it('shows a retry note while the server answers 503', async () => {
    let down = false;
    const s = server(() =>
      down ? { status: 503, body: { error: { code: 'Unavailable', message: 'cannot read job state' } } } : { status: 200, body: processing(20) },
    );
    const v = mount(s, { autoStart: true });
    await advance(0);
    down = true;
    await advance(3000);
    expect(v.root().textContent).toContain('cannot read job state; retrying');
    down = false;
    await advance(1000);
    expect(v.root().textContent).not.toContain('retrying');
  });

  it('links to the stable archive link when the facade offers one, and lists skipped ids', async () => {
    const s = server(() => ({
      status: 200,
      body: completed(JOB, undefined, { archiveUrl: `/v1/download/${JOB}/archive`, skippedFileIds: [70007] }),
    }));
    const v = mount(s, {
      autoStart: true,
      options: { fetch: s.fetch, EventSource: null, baseUrl: 'https://downloads.test', missingFiles: 'skip' },
    });
    await advance(0);
    expect(v.root().dataset.state).toBe('ready');
    const link = screen.getByRole('link', { name: 'Save ZIP' }) as HTMLAnchorElement;
    // Not the presigned URL, which may have expired by the time the user clicks.
    expect(link.getAttribute('href')).toBe(`https://downloads.test/v1/download/${JOB}/archive`);
    expect(link.getAttribute('download')).toBe(`download-${JOB}.zip`);
    expect(screen.getByRole('status').textContent).toBe('Left out, not found: 70007');
    expect(s.seen.find((r) => r.method === 'POST')?.body).toEqual({ file_ids: [70000, 70007], missing_files: 'skip' });
  });

  it('keeps the stable link past the presigned URL and says until when it works', async () => {
    // The presigned URL ran out an hour ago; the stable link works for two more hours.
    const presigned = '2025-12-31T23:00:00Z';
    const archiveExpiresAt = '2026-01-01T02:00:00Z';
    const s = server(() => ({
      status: 200,
      body: completed(JOB, presigned, { archiveUrl: `/v1/download/${JOB}/archive`, archiveExpiresAt }),
    }));
    const v = mount(s, { autoStart: true, options: { fetch: s.fetch, EventSource: null, baseUrl: 'https://downloads.test' } });
    await advance(0);
    await advance(0);
    expect(v.root().dataset.state).toBe('ready');
    const link = screen.getByRole('link', { name: 'Save ZIP' }) as HTMLAnchorElement;
    expect(link.getAttribute('href')).toBe(`https://downloads.test/v1/download/${JOB}/archive`);
    const hhmm = (iso: string) => new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
    expect(v.root().textContent).toContain(`link valid until ${hhmm(archiveExpiresAt)}`);
    expect(v.root().textContent).not.toContain(hhmm(presigned));
  });

  it('says which worker attempt the progress is of once the worker was retried, and shows its progress', async () => {
    let doc: Reply = { status: 200, body: attempt(1, 80) };
    const s = server(() => doc);
    const v = mount(s, { autoStart: true });
    await advance(0);
    const bar = screen.getByRole('progressbar');
    expect(bar.getAttribute('aria-valuenow')).toBe('80');
    expect(v.root().textContent).not.toContain('attempt');
    expect(bar.getAttribute('aria-valuetext')).not.toContain('attempt');

    doc = { status: 200, body: attempt(2, 10) };
    await advance(3000);
    expect(bar.getAttribute('aria-valuenow')).toBe('10');
    expect(bar.getAttribute('aria-valuetext')).toBe('10%, 10 B of 100 B, attempt 2, about 10 s left');
    // The title is the live region and names the bar: the restart is announced.
    const title = v.container.querySelector('.dlo__title') as HTMLElement;
    expect(title.textContent).toBe('Preparing archive, attempt 2…');
    expect(title.getAttribute('aria-live')).toBe('polite');
    expect(bar.getAttribute('aria-labelledby')).toBe(title.id);
  });
});
