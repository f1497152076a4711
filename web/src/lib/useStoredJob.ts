import { useMemo } from 'react';
import { clearJob, loadJob, normalizeFileIds, saveJob, skipMissing, storageKey, type StoredJob } from './storage';
import type { MissingFilesPolicy } from './types';

/** The job this browser remembers for one set of ids and policy (see storage.ts). */
export interface StoredJobHandle {
  /** The storage key: the sorted ids, and the policy when it is not the default. */
  key: string;
  /** The sorted, de-duplicated ids. */
  fileIds: number[];
  missingFiles?: 'skip';
  /** What is remembered for these ids, if anything. */
  load: () => StoredJob | undefined;
  /** Remembers the job: before its initiate leaves (so a reload replays it), and again with its jobId. */
  save: (job: Pick<StoredJob, 'idempotencyKey' | 'createdAt' | 'jobId'>) => void;
  /** Forgets it: downloaded, cancelled, expired, failed or gone. */
  clear: () => void;
  /** Calls onJob with the jobId whenever another tab remembers one for these ids; returns the unsubscribe. */
  watch: (onJob: (jobId: string) => void) => () => void;
}

function storedJob(storage: Storage | null, fileIds: readonly number[], missingFiles?: MissingFilesPolicy): StoredJobHandle {
  const ids = normalizeFileIds(fileIds);
  const skip = skipMissing(missingFiles);
  const key = storageKey(ids, skip);
  return {
    key,
    fileIds: ids,
    missingFiles: skip,
    load: () => loadJob(storage, ids, skip),
    save: (job) => saveJob(storage, { ...job, fileIds: ids, missingFiles: skip }),
    clear: () => clearJob(storage, ids, skip),
    watch: (onJob) => {
      if (!storage || typeof window === 'undefined') return () => undefined;
      const onStorage = (e: StorageEvent) => {
        if (e.key !== key) return;
        const jobId = loadJob(storage, ids, skip)?.jobId;
        if (jobId) onJob(jobId);
      };
      window.addEventListener('storage', onStorage);
      return () => window.removeEventListener('storage', onStorage);
    },
  };
}

/**
 * The localStorage resume of useDownload: one handle per set of ids and policy, the same object
 * for as long as they (and the storage) stay the same, whatever array the caller passes.
 */
export function useStoredJob(storage: Storage | null, fileIds: readonly number[], missingFiles?: MissingFilesPolicy): StoredJobHandle {
  const skip = skipMissing(missingFiles);
  // The ids' canonical form, not the array's identity, decides when the handle changes.
  const canonical = normalizeFileIds(fileIds).join(',');
  return useMemo(() => storedJob(storage, canonical === '' ? [] : canonical.split(',').map(Number), skip), [storage, canonical, skip]);
}
