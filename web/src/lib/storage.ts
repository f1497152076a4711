/**
 * Remembers each browser's jobs in localStorage, keyed by the sorted file ids (and the
 * missing-files policy when it is not the default), so that a reload or another tab resumes the
 * job instead of starting a second one.
 */
import type { MissingFilesPolicy } from './types';

export const STORAGE_PREFIX = 'download-operator:job:';

/** What is kept for one set of file ids. */
export interface StoredJob {
  fileIds: number[];
  /** Sent with every initiate of this job: a reload during the initiate replays, never duplicates. */
  idempotencyKey: string;
  /** Set once the facade answered the initiate. */
  jobId?: string;
  /** Epoch milliseconds of the initiate. */
  createdAt: number;
  /** 'skip' when missing ids are left out; absent for the default, 'fail'. */
  missingFiles?: 'skip';
}

/** Sorted, de-duplicated ids: the canonical form of a request. */
export function normalizeFileIds(fileIds: readonly number[]): number[] {
  return Array.from(new Set(fileIds)).sort((a, b) => a - b);
}

/** 'skip' or undefined: 'fail' is the facade's default, so it is the same request as none. */
export function skipMissing(missingFiles: MissingFilesPolicy | undefined): 'skip' | undefined {
  return missingFiles === 'skip' ? 'skip' : undefined;
}

/**
 * The ids, plus ':skip' when missing ids are skipped: the same ids with another policy are
 * another archive, and must not resume this one. Default-policy keys are those of older versions.
 */
export function storageKey(fileIds: readonly number[], missingFiles?: MissingFilesPolicy): string {
  const suffix = skipMissing(missingFiles) ? ':skip' : '';
  return STORAGE_PREFIX + normalizeFileIds(fileIds).join(',') + suffix;
}

/** window.localStorage when it can be used (it throws in some private modes), else null. */
export function defaultStorage(): Storage | null {
  try {
    const s = globalThis.localStorage;
    return s ?? null;
  } catch {
    return null;
  }
}

function parse(raw: string | null): StoredJob | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<StoredJob>;
    if (!Array.isArray(v.fileIds) || typeof v.idempotencyKey !== 'string') return undefined;
    if (v.jobId !== undefined && typeof v.jobId !== 'string') return undefined;
    return {
      fileIds: v.fileIds.filter((x): x is number => Number.isInteger(x)),
      idempotencyKey: v.idempotencyKey,
      jobId: v.jobId,
      createdAt: typeof v.createdAt === 'number' ? v.createdAt : 0,
      ...(v.missingFiles === 'skip' ? { missingFiles: 'skip' as const } : {}),
    };
  } catch {
    return undefined;
  }
}

export function loadJob(
  storage: Storage | null,
  fileIds: readonly number[],
  missingFiles?: MissingFilesPolicy,
): StoredJob | undefined {
  try {
    return parse(storage?.getItem(storageKey(fileIds, missingFiles)) ?? null);
  } catch {
    return undefined;
  }
}

export function saveJob(storage: Storage | null, job: StoredJob): void {
  try {
    // JSON leaves out an undefined missingFiles: default-policy entries are as they always were.
    storage?.setItem(storageKey(job.fileIds, job.missingFiles), JSON.stringify({ ...job, fileIds: normalizeFileIds(job.fileIds) }));
  } catch {
    // Full or forbidden: resuming is a convenience, the download still works.
  }
}

export function clearJob(storage: Storage | null, fileIds: readonly number[], missingFiles?: MissingFilesPolicy): void {
  try {
    storage?.removeItem(storageKey(fileIds, missingFiles));
  } catch {
    // see saveJob
  }
}

/** Every job this browser remembers, oldest first. */
export function listJobs(storage: Storage | null): StoredJob[] {
  const out: StoredJob[] = [];
  if (!storage) return out;
  try {
    for (let i = 0; i < storage.length; i++) {
      const k = storage.key(i);
      if (!k?.startsWith(STORAGE_PREFIX)) continue;
      const job = parse(storage.getItem(k));
      if (job) out.push(job);
    }
  } catch {
    return out;
  }
  return out.sort((a, b) => a.createdAt - b.createdAt);
}
