import { describe, expect, it } from 'vitest';
import { ApiError, archiveLink, isRetryable, randomId } from '../src/lib/api';
import { backoffDelay, parseRetryAfter } from '../src/lib/backoff';
import { formatBytes, formatDuration, formatEta } from '../src/lib/format';
import { clearJob, listJobs, loadJob, normalizeFileIds, saveJob, storageKey } from '../src/lib/storage';
import { parseIds } from '../src/demo/parseIds';

describe('backoffDelay', () => {
  it('doubles from 1 s up to 30 s, jittered between half and all of each step', () => {
    const lo = [1, 2, 3, 4, 5, 6, 7, 10].map((n) => backoffDelay(n, undefined, { random: () => 0 }));
    const hi = [1, 2, 3, 4, 5, 6, 7, 10].map((n) => backoffDelay(n, undefined, { random: () => 1 }));
    expect(lo).toEqual([500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
    expect(hi).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it('takes Retry-After as the floor, with up to 10 % (at most 1 s) of jitter, and a cap', () => {
    expect(backoffDelay(1, 5000, { random: () => 0 })).toBe(5000);
    expect(backoffDelay(1, 5000, { random: () => 1 })).toBe(5500);
    expect(backoffDelay(6, 1000, { random: () => 0 })).toBe(1000);
    expect(backoffDelay(1, 60_000, { random: () => 1 })).toBe(61_000);
    expect(backoffDelay(1, 86_400_000, { random: () => 0 })).toBe(300_000);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', Date.parse('2026-01-01T00:00:00Z'))).toBe(10_000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('isRetryable', () => {
  it('retries network failures, 408, 429 and 5xx only', () => {
    const e = (status: number) => new ApiError(status, { code: 'X', message: 'x' });
    expect([0, 408, 429, 500, 503].map((s) => isRetryable(e(s)))).toEqual([true, true, true, true, true]);
    expect([400, 404, 409, 413, 415].map((s) => isRetryable(e(s)))).toEqual([false, false, false, false, false]);
    expect(isRetryable(Object.assign(new Error('x'), { name: 'AbortError' }))).toBe(false);
  });
});

describe('storage', () => {
  it('keys jobs by the sorted, unique ids', () => {
    expect(normalizeFileIds([70007, 70000, 70007])).toEqual([70000, 70007]);
    expect(storageKey([70007, 70000])).toBe(storageKey([70000, 70007, 70000]));
    expect(storageKey([70007, 70000])).toBe('download-operator:job:70000,70007');
    // Skipping missing ids is another request; 'fail' is the default, so the same as none.
    expect(storageKey([70007, 70000], 'skip')).toBe('download-operator:job:70000,70007:skip');
    expect(storageKey([70007, 70000], 'fail')).toBe(storageKey([70000, 70007]));
  });

  it('keeps a skip-policy job apart from the default one of the same ids', () => {
    localStorage.clear();
    saveJob(localStorage, { fileIds: [1e4], idempotencyKey: 'fail', jobId: 'j1', createdAt: 1 });
    saveJob(localStorage, { fileIds: [1e4], missingFiles: 'skip', idempotencyKey: 'skip', jobId: 'j2', createdAt: 2 });
    expect(loadJob(localStorage, [1e4])?.jobId).toBe('j1');
    expect(loadJob(localStorage, [1e4], 'fail')?.jobId).toBe('j1');
    expect(loadJob(localStorage, [1e4], 'skip')).toEqual({ fileIds: [1e4], missingFiles: 'skip', idempotencyKey: 'skip', jobId: 'j2', createdAt: 2 });
    expect(listJobs(localStorage).map((j) => [j.jobId, j.missingFiles])).toEqual([
      ['j1', undefined],
      ['j2', 'skip'],
    ]);
    clearJob(localStorage, [1e4], 'skip');
    expect(loadJob(localStorage, [1e4], 'skip')).toBeUndefined();
    expect(loadJob(localStorage, [1e4])?.jobId).toBe('j1');
  });

  it('saves, loads, lists and clears', () => {
    localStorage.clear();
    saveJob(localStorage, { fileIds: [2e4, 1e4], idempotencyKey: 'a', jobId: 'j', createdAt: 2 });
    saveJob(localStorage, { fileIds: [3e4], idempotencyKey: 'b', createdAt: 1 });
    localStorage.setItem('download-operator:job:junk', '{not json');
    localStorage.setItem('other', '1');
    expect(loadJob(localStorage, [1e4, 2e4])).toEqual({ fileIds: [1e4, 2e4], idempotencyKey: 'a', jobId: 'j', createdAt: 2 });
    expect(listJobs(localStorage).map((j) => j.idempotencyKey)).toEqual(['b', 'a']);
    clearJob(localStorage, [2e4, 1e4]);
    expect(loadJob(localStorage, [1e4, 2e4])).toBeUndefined();
    expect(loadJob(null, [1e4])).toBeUndefined();
  });

  it('survives a storage that throws', () => {
    const broken = {
      getItem: () => {
        throw new Error('denied');
      },
      setItem: () => {
        throw new Error('quota');
      },
      removeItem: () => {
        throw new Error('denied');
      },
      key: () => null,
      get length(): number {
        throw new Error('denied');
      },
      clear: () => undefined,
    } as unknown as Storage;
    expect(() => saveJob(broken, { fileIds: [1e4], idempotencyKey: 'a', createdAt: 0 })).not.toThrow();
    expect(loadJob(broken, [1e4])).toBeUndefined();
    expect(listJobs(broken)).toEqual([]);
    expect(() => clearJob(broken, [1e4])).not.toThrow();
  });
});

describe('format', () => {
  it('writes bytes in binary units', () => {
    expect([0, 1023, 1024, 1536, 33554432, 100663296, 536870912, 1099511627776].map(formatBytes)).toEqual([
      '0 B',
      '1023 B',
      '1 KiB',
      '1.5 KiB',
      '32 MiB',
      '96 MiB',
      '512 MiB',
      '1 TiB',
    ]);
    expect(formatBytes(undefined)).toBe('');
  });

  it('writes durations and ETAs', () => {
    expect([0, 12, 60, 75, 3600, 3720].map(formatDuration)).toEqual(['0 s', '12 s', '1 min', '1 min 15 s', '1 h', '1 h 2 min']);
    expect(formatEta(12)).toBe('about 12 s left');
    expect(formatEta(0)).toBe('almost done');
    expect(formatEta(undefined)).toBe('');
  });
});

describe('parseIds (the demo form)', () => {
  it('accepts commas and spaces, sorts and de-duplicates', () => {
    expect(parseIds('70007, 70000 70007')).toEqual({ ids: [70000, 70007] });
  });
  it('says what is wrong', () => {
    expect(parseIds('  ')).toEqual({ error: 'Enter at least one file id.' });
    expect('error' in parseIds('12a')).toBe(true);
    expect(parseIds('5')).toMatchObject({ error: expect.stringMatching(/out of range/) });
  });
});

describe('archiveLink', () => {
  it('puts the facade\'s base before a path, and follows nothing but paths and http(s) URLs', () => {
    const path = '/v1/download/123e4567-e89b-42d3-a456-426614174000/archive';
    expect(archiveLink({}, path)).toBe(path);
    expect(archiveLink({ baseUrl: 'https://facade.test/dl/' }, path)).toBe(`https://facade.test/dl${path}`);
    expect(archiveLink({ baseUrl: 'https://facade.test' }, 'https://other.test/a.zip')).toBe('https://other.test/a.zip');
    expect(archiveLink({ baseUrl: 'https://facade.test' }, '//other.test/a.zip')).toBeUndefined();
    expect(archiveLink({}, 'javascript:alert(1)')).toBeUndefined();
    expect(archiveLink({}, undefined)).toBeUndefined();
  });
});

describe('randomId', () => {
  it('makes UUID v4s', () => {
    expect(randomId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
