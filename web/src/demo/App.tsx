import { useEffect, useRef, useState, type FormEvent } from 'react';
import { DownloadButton, type DownloadButtonState } from '../lib/DownloadButton';
import { clearJob, defaultStorage, listJobs, STORAGE_PREFIX, storageKey } from '../lib/storage';
import { parseIds } from './parseIds';

interface Entry {
  key: string;
  fileIds: number[];
  /** 'skip': ids that do not exist are left out instead of failing the archive. */
  missingFiles?: 'skip';
  /** Added on this page just now (starts at once); otherwise it came from localStorage and resumes. */
  autoStart: boolean;
}

/** What each job's button last reported: its state and, once ready, the ids it left out. */
interface Shown {
  state: DownloadButtonState;
  skippedFileIds?: number[];
}

const EXAMPLES: { ids: string; note: string }[] = [
  { ids: '70000, 70007', note: '96 MiB' },
  { ids: '14000', note: '1 MiB' },
  { ids: '21000', note: '128 MiB' },
  { ids: '70014', note: '512 MiB' },
  { ids: '99999', note: 'missing: fails' },
  { ids: '70000, 99999', note: 'one missing: tick “Skip missing files”' },
];

/** As the job is remembered: the same ids with another missing-files policy are another archive. */
const entryKey = storageKey;

function storedEntries(): Entry[] {
  return listJobs(defaultStorage()).map((j) => ({
    key: entryKey(j.fileIds, j.missingFiles),
    fileIds: j.fileIds,
    missingFiles: j.missingFiles,
    autoStart: false,
  }));
}

export function App() {
  const [text, setText] = useState('');
  const [skipMissing, setSkipMissing] = useState(false);
  const [formError, setFormError] = useState<string | undefined>();
  const [entries, setEntries] = useState<Entry[]>(storedEntries);
  const [shown, setShown] = useState<Record<string, Shown>>({});
  const [highlight, setHighlight] = useState<string | undefined>();
  const inputRef = useRef<HTMLInputElement>(null);

  // Jobs started in other tabs show up here too.
  useEffect(() => {
    const onStorage = (e: StorageEvent) => {
      if (e.key !== null && !e.key.startsWith(STORAGE_PREFIX)) return;
      const fresh = storedEntries();
      setEntries((prev) => [...prev, ...fresh.filter((f) => !prev.some((p) => p.key === f.key))]);
    };
    window.addEventListener('storage', onStorage);
    return () => window.removeEventListener('storage', onStorage);
  }, []);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const parsed = parseIds(text);
    if ('error' in parsed) {
      setFormError(parsed.error);
      inputRef.current?.focus();
      return;
    }
    setFormError(undefined);
    const missingFiles = skipMissing ? ('skip' as const) : undefined;
    const key = entryKey(parsed.ids, missingFiles);
    setHighlight(key);
    if (!entries.some((x) => x.key === key)) {
      setEntries((prev) => [...prev, { key, fileIds: parsed.ids, missingFiles, autoStart: true }]);
    }
    setText('');
  };

  const remove = (entry: Entry) => {
    clearJob(defaultStorage(), entry.fileIds, entry.missingFiles);
    setEntries((prev) => prev.filter((x) => x.key !== entry.key));
    inputRef.current?.focus();
  };

  return (
    <main className="demo">
      <header className="demo__header">
        <h1>download-operator</h1>
        <p>
          Ask for a ZIP of source files; a Kubernetes Job prepares it while this page follows its progress. Jobs are
          remembered by this browser: reload, or open another tab, and they carry on.
        </p>
        <nav aria-label="API">
          <a href="./api.html">API reference</a> · <a href="/openapi.json">openapi.json</a>
        </nav>
      </header>

      <section aria-labelledby="new-heading" className="demo__card">
        <h2 id="new-heading">New archive</h2>
        <form onSubmit={submit} noValidate className="demo__form">
          <label htmlFor="file-ids">File ids</label>
          <div className="demo__row">
            <input
              id="file-ids"
              ref={inputRef}
              name="fileIds"
              type="text"
              inputMode="numeric"
              autoComplete="off"
              placeholder="70000, 70007"
              value={text}
              onChange={(e) => setText(e.target.value)}
              aria-invalid={formError ? true : undefined}
              aria-describedby={formError ? 'file-ids-error file-ids-hint' : 'file-ids-hint'}
            />
            <button type="submit" className="demo__button">
              Prepare
            </button>
          </div>
          <label className="demo__check">
            <input type="checkbox" checked={skipMissing} onChange={(e) => setSkipMissing(e.target.checked)} />
            Skip missing files (leave out ids that do not exist instead of failing)
          </label>
          <p id="file-ids-hint" className="demo__hint">
            Separate ids with commas or spaces. Examples:{' '}
            {EXAMPLES.map((ex, i) => (
              <span key={ex.ids}>
                {i > 0 && ', '}
                <button
                  type="button"
                  className="demo__link"
                  onClick={() => {
                    setText(ex.ids);
                    inputRef.current?.focus();
                  }}
                >
                  {ex.ids}
                </button>{' '}
                ({ex.note})
              </span>
            ))}
          </p>
          <p id="file-ids-error" className="demo__error" role="alert">
            {formError}
          </p>
        </form>
      </section>

      <section aria-labelledby="jobs-heading" className="demo__card">
        <h2 id="jobs-heading">Jobs on this browser</h2>
        {entries.length === 0 ? (
          <p className="demo__hint">None yet.</p>
        ) : (
          <ul className="demo__jobs">
            {entries.map((entry) => {
              const { state, skippedFileIds } = shown[entry.key] ?? {};
              const ids = entry.fileIds.join(', ');
              return (
                <li
                  key={entry.key}
                  className="demo__job"
                  data-file-ids={entry.fileIds.join(',')}
                  data-missing-files={entry.missingFiles}
                  data-highlight={highlight === entry.key ? 'true' : undefined}
                >
                  <div className="demo__job-label">
                    <span>
                      Files {ids}
                      {entry.missingFiles && ' (skipping missing files)'}
                    </span>
                    {state !== 'preparing' && (
                      <button
                        type="button"
                        className="demo__link"
                        onClick={() => remove(entry)}
                        aria-label={`Remove files ${ids}${entry.missingFiles ? ' (skipping missing files)' : ''} from this list`}
                      >
                        Remove
                      </button>
                    )}
                  </div>
                  <DownloadButton
                    fileIds={entry.fileIds}
                    autoStart={entry.autoStart}
                    options={entry.missingFiles ? { missingFiles: entry.missingFiles } : undefined}
                    onStateChange={(s, d) =>
                      setShown((prev) => ({
                        ...prev,
                        [entry.key]: { state: s, skippedFileIds: s === 'ready' ? d.skippedFileIds : undefined },
                      }))
                    }
                  />
                  {state === 'ready' && entry.missingFiles && (
                    <p className="demo__skipped">
                      {skippedFileIds?.length
                        ? `Left out, not found: ${skippedFileIds.join(', ')}`
                        : 'Every requested file was found.'}
                    </p>
                  )}
                </li>
              );
            })}
          </ul>
        )}
      </section>
    </main>
  );
}
