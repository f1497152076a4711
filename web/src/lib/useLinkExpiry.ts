import { useEffect } from 'react';
import type { ApiConfig } from './api';
import { isLinkExpired, linkExpiry } from './downloadReducer';
import type { StatusDocument } from './types';

// setTimeout fires at once for delays past 2^31 - 1 ms (about 24.8 days).
const MAX_TIMEOUT_MS = 2_147_000_000;

/**
 * Calls onExpired when the link of a completed job has run out. At linkExpiresAt the status is
 * read again first: the controller refreshes the presigned URL while the archive is kept, so only
 * a document whose link is still out of date counts (a 404 is the status query's to report). The
 * stable link works until the archive is deleted, well past any presigned URL.
 */
export function useLinkExpiry(
  cfg: Pick<ApiConfig, 'baseUrl'>,
  doc: StatusDocument | undefined,
  refetch: () => Promise<StatusDocument | undefined>,
  now: () => number,
  onExpired: () => void,
): void {
  const expiresAt = linkExpiry(cfg, doc);
  useEffect(() => {
    const at = expiresAt === undefined ? NaN : Date.parse(expiresAt);
    if (Number.isNaN(at)) return;
    let live = true;
    const recheck = async () => {
      const fresh = await refetch();
      if (live && fresh && isLinkExpired(cfg, fresh, now())) onExpired();
    };
    const timer = setTimeout(() => void recheck(), Math.min(Math.max(0, at - now()), MAX_TIMEOUT_MS));
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [expiresAt, cfg, refetch, now, onExpired]);
}
