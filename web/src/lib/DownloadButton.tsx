import { useEffect, useId, useRef } from 'react';
import { formatBytes, formatDuration, formatEta } from './format';
import { useDownload, type UseDownloadOptions, type UseDownloadResult } from './useDownload';

/** What the button shows; data-state on its root element carries the same word. */
export type DownloadButtonState = 'idle' | 'preparing' | 'ready' | 'failed' | 'cancelled' | 'expired';

export interface DownloadButtonProps {
  fileIds: readonly number[];
  /** Start preparing on mount (a remembered job is always resumed). Default false: wait for a click. */
  autoStart?: boolean;
  /** The idle button's text. */
  label?: string;
  /** Passed on to useDownload (baseUrl, storage, intervals, …). */
  options?: Omit<UseDownloadOptions, 'autoStart'>;
  className?: string;
  /** Called when the shown state changes. */
  onStateChange?: (state: DownloadButtonState, download: UseDownloadResult) => void;
}

export function buttonState(status: UseDownloadResult['status']): DownloadButtonState {
  switch (status) {
    case 'idle':
      return 'idle';
    case 'initiating':
    case 'pending':
    case 'processing':
      return 'preparing';
    case 'completed':
      return 'ready';
    default:
      return status;
  }
}

/**
 * One archive of fileIds, from the request to the browser's download: idle → preparing (a
 * progress bar with bytes and ETA, and Cancel) → ready (the stable link to the archive, which
 * the facade signs afresh on each click, so a page left open for hours still downloads);
 * failed shows the reason and Retry. The box keeps its size in every state; style it with the
 * --dlo-* custom properties (see style.css).
 */
export function DownloadButton({ fileIds, autoStart = false, label, options, className, onStateChange }: DownloadButtonProps) {
  const d = useDownload(fileIds, { ...options, autoStart });
  const state = buttonState(d.status);
  const id = useId();
  const rootRef = useRef<HTMLDivElement>(null);
  const actionRef = useRef<HTMLButtonElement & HTMLAnchorElement>(null);

  // The focused control is replaced when the state changes (Cancel → Retry, Prepare → Cancel):
  // keep keyboard users on the new one instead of dropping focus to the page.
  const prevState = useRef(state);
  const hadFocus = useRef(false);
  if (prevState.current !== state && typeof document !== 'undefined') {
    hadFocus.current = !!rootRef.current?.contains(document.activeElement);
  }
  useEffect(() => {
    if (prevState.current === state) return;
    prevState.current = state;
    if (hadFocus.current) actionRef.current?.focus();
    hadFocus.current = false;
  }, [state]);

  const onChange = useRef(onStateChange);
  onChange.current = onStateChange;
  const dRef = useRef(d);
  dRef.current = d;
  const reported = useRef<DownloadButtonState | undefined>(undefined);
  useEffect(() => {
    if (reported.current === state) return;
    reported.current = state;
    onChange.current?.(state, dRef.current);
  }, [state]);

  const retried = d.attempts !== undefined && d.attempts > 1;
  const n = new Set(fileIds).size;
  const files = `${n} file${n === 1 ? '' : 's'}`;
  let title: string;
  let detail = '';
  switch (d.status) {
    case 'idle':
      title = `Download ${files}`;
      detail = 'The archive is prepared on the server first.';
      break;
    case 'initiating':
      title = 'Requesting…';
      break;
    case 'pending':
      title = 'Waiting to start…';
      detail = d.etaSeconds ? `ready in about ${formatDuration(d.etaSeconds)}` : '';
      break;
    case 'processing':
      // A retried worker starts again from 0: say so, or the bar going back looks like a bug.
      // In the title, an aria-live region, so the restart is announced once.
      title = retried ? `Preparing archive, attempt ${d.attempts}…` : 'Preparing archive…';
      detail = [
        d.bytesTotal !== undefined ? `${formatBytes(d.bytesDone ?? 0)} of ${formatBytes(d.bytesTotal)}` : '',
        formatEta(d.etaSeconds),
      ]
        .filter(Boolean)
        .join(' · ');
      break;
    case 'completed':
      title = 'Ready';
      detail = [formatBytes(d.size), d.linkExpiresAt ? `link valid until ${formatTime(d.linkExpiresAt)}` : '']
        .filter(Boolean)
        .join(' · ');
      break;
    case 'failed':
      title = `Failed: ${d.error?.code ?? 'unknown reason'}`;
      detail = d.error?.message ?? '';
      break;
    case 'cancelled':
      title = 'Cancelled';
      detail = 'Stopped; nothing is kept.';
      break;
    case 'expired':
      title = 'Link expired';
      detail = 'Prepare the archive again to download it.';
      break;
  }
  if (state === 'preparing' && d.retrying) {
    const wait = d.retrying.nextAt ? formatDuration(Math.max(0, (d.retrying.nextAt - Date.now()) / 1000)) : '';
    detail = `${d.retrying.message}; retrying${wait ? ` in ${wait}` : ''}…`;
  }
  if (d.cancelling) title = 'Cancelling…';

  const percent = state === 'ready' ? 100 : d.progress;
  const valueText =
    d.status === 'processing'
      ? [
          `${percent}%`,
          d.bytesTotal !== undefined ? `${formatBytes(d.bytesDone ?? 0)} of ${formatBytes(d.bytesTotal)}` : '',
          retried ? `attempt ${d.attempts}` : '',
          formatEta(d.etaSeconds),
        ]
          .filter(Boolean)
          .join(', ')
      : `${percent}%, ${title.replace(/…$/, '')}`;

  // Files left out are worth a word (it is announced); the checksum is not.
  const skipped = state === 'ready' ? d.skippedFileIds ?? [] : [];
  const notice = d.notice ?? (skipped.length ? `Left out, not found: ${skipped.join(', ')}` : undefined);
  const readyNote = state === 'ready' && d.sha256 ? `sha256 ${d.sha256.slice(0, 16)}…` : '';

  let action;
  switch (state) {
    case 'idle':
      action = (
        <button type="button" ref={actionRef} className="dlo__button dlo__button--primary" onClick={d.start}>
          {label ?? 'Prepare download'}
        </button>
      );
      break;
    case 'preparing':
      action = (
        <button
          type="button"
          ref={actionRef}
          className="dlo__button"
          onClick={() => void d.cancel()}
          disabled={d.cancelling}
          aria-describedby={`${id}-title`}
        >
          Cancel
        </button>
      );
      break;
    case 'ready':
      action = (
        <a
          ref={actionRef}
          className="dlo__button dlo__button--primary"
          href={d.archiveUrl ?? d.downloadUrl}
          download={d.jobId ? `download-${d.jobId}.zip` : true}
          rel="noopener"
          onClick={d.markDownloaded}
        >
          Save ZIP
        </a>
      );
      break;
    default:
      action = (
        <button type="button" ref={actionRef} className="dlo__button" onClick={d.retry}>
          {state === 'failed' ? 'Retry' : 'Start again'}
        </button>
      );
  }

  return (
    <div
      ref={rootRef}
      className={['dlo', className].filter(Boolean).join(' ')}
      data-state={state}
      data-status={d.status}
      data-job-id={d.jobId ?? ''}
      data-transport={d.transport}
      role="group"
      aria-labelledby={`${id}-title`}
    >
      <div className="dlo__head">
        <span className="dlo__title" id={`${id}-title`} aria-live="polite">
          {title}
        </span>
        <span className="dlo__percent" aria-hidden="true">
          {state === 'preparing' || state === 'ready' ? `${percent}%` : ''}
        </span>
      </div>
      {state === 'preparing' ? (
        <div
          className="dlo__track"
          role="progressbar"
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={percent}
          aria-valuetext={valueText}
          aria-labelledby={`${id}-title`}
        >
          <div className="dlo__fill" style={{ width: `${percent}%` }} />
        </div>
      ) : (
        <div className="dlo__track" aria-hidden="true">
          <div className="dlo__fill" style={{ width: `${state === 'ready' ? 100 : 0}%` }} />
        </div>
      )}
      <div className="dlo__foot">
        <span className="dlo__detail" title={detail}>
          {detail}
        </span>
        {action}
      </div>
      <div className="dlo__notice" role={notice ? 'status' : undefined} title={notice ?? (readyNote ? d.sha256 : undefined)}>
        {notice ?? readyNote}
      </div>
    </div>
  );
}

function formatTime(iso: string): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  return t.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}
