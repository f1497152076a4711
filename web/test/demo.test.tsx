import { fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { App } from '../src/demo/App';
import { storageKey } from '../src/lib/storage';
import { advance, completed, fakeFetch, JOB, newClient, onFakeClock, wrapper } from './helpers';

onFakeClock(() => {
  localStorage.clear();
  // The demo page uses the browser's fetch; without EventSource the buttons poll.
  vi.stubGlobal('EventSource', undefined);
});

afterEach(() => {
  vi.unstubAllGlobals();
});

function page(skipped: number[] | undefined) {
  const s = fakeFetch((req) => {
    if (req.method === 'POST') return { status: 202, body: { jobId: JOB, status: 'pending', etaSeconds: 3, totalFileIds: 2 } };
    if (req.method === 'GET') {
      return { status: 200, body: completed(JOB, undefined, { archiveUrl: `/v1/download/${JOB}/archive`, skippedFileIds: skipped }) };
    }
    return undefined;
  });
  vi.stubGlobal('fetch', s.fetch);
  const Wrapper = wrapper(newClient());
  const view = render(
    <Wrapper>
      <App />
    </Wrapper>,
  );
  const request = async (ids: string, skip: boolean) => {
    fireEvent.change(screen.getByLabelText('File ids'), { target: { value: ids } });
    const box = screen.getByRole('checkbox', { name: /Skip missing files/ }) as HTMLInputElement;
    if (box.checked !== skip) fireEvent.click(box);
    fireEvent.click(screen.getByRole('button', { name: 'Prepare' }));
    await advance(0);
  };
  return { ...s, ...view, request };
}

describe('demo page', () => {
  it('asks to skip missing files when ticked, and shows the skipped ids once ready', async () => {
    const p = page([99999]);
    await p.request('70000, 99999', true);
    expect(p.seen.find((r) => r.method === 'POST')?.body).toEqual({ file_ids: [70000, 99999], missing_files: 'skip' });
    const item = p.container.querySelector('li[data-file-ids="70000,99999"][data-missing-files="skip"]') as HTMLElement;
    expect(item.querySelector('.dlo')?.getAttribute('data-state')).toBe('ready');
    expect(item.querySelector('.demo__skipped')?.textContent).toBe('Left out, not found: 99999');
    expect(item.textContent).toContain('(skipping missing files)');
    expect(localStorage.getItem(storageKey([70000, 99999], 'skip'))).not.toBeNull();
  });

  it('says nothing was left out when every file was found', async () => {
    const p = page([]);
    await p.request('70000', true);
    expect(p.container.querySelector('.demo__skipped')?.textContent).toBe('Every requested file was found.');
  });

  it('sends no missing_files when not ticked, and keeps the two policies as separate jobs', async () => {
    const p = page(undefined);
    await p.request('70000, 99999', false);
    expect(p.seen.filter((r) => r.method === 'POST').map((r) => r.body)).toEqual([{ file_ids: [70000, 99999] }]);
    expect(p.container.querySelector('.demo__skipped')).toBeNull();
    await p.request('70000, 99999', true);
    expect(p.seen.filter((r) => r.method === 'POST').map((r) => r.body)).toEqual([
      { file_ids: [70000, 99999] },
      { file_ids: [70000, 99999], missing_files: 'skip' },
    ]);
    expect(p.container.querySelectorAll('li[data-file-ids="70000,99999"]')).toHaveLength(2);
  });
});
