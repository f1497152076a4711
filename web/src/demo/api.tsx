import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import './demo.css';

/** The parts of an OpenAPI 3 document this page shows. */
interface Operation {
  operationId?: string;
  summary?: string;
  description?: string;
  parameters?: { name?: string; in?: string; required?: boolean; description?: string; $ref?: string }[];
  responses?: Record<string, { description?: string; $ref?: string }>;
}
interface OpenAPI {
  info?: { title?: string; version?: string; description?: string };
  paths?: Record<string, Record<string, Operation>>;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

function refName(ref: string | undefined): string {
  return ref ? ref.split('/').pop() ?? ref : '';
}

function ApiDocs() {
  const [doc, setDoc] = useState<OpenAPI | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    fetch('/openapi.json', { headers: { Accept: 'application/json' } })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`the server answered ${r.status}`))))
      .then((d: OpenAPI) => setDoc(d))
      .catch((e: Error) => setError(e.message));
  }, []);

  return (
    <main className="demo">
      <header className="demo__header">
        <h1>{doc?.info?.title ?? 'API'}</h1>
        <p>{doc?.info?.description}</p>
        <nav aria-label="Pages">
          <a href="./">Demo</a> · <a href="/openapi.json">openapi.json</a> (the full contract)
        </nav>
      </header>
      {error && (
        <p className="demo__error" role="alert">
          Cannot load /openapi.json: {error}
        </p>
      )}
      {!doc && !error && <p className="demo__hint">Loading…</p>}
      {doc?.paths &&
        Object.entries(doc.paths).flatMap(([path, ops]) =>
          METHODS.filter((m) => ops[m]).map((m) => {
            const op = ops[m];
            return (
              <section key={`${m} ${path}`} className="demo__card" aria-label={`${m.toUpperCase()} ${path}`}>
                <h2>
                  <code>
                    {m.toUpperCase()} {path}
                  </code>
                </h2>
                {op.summary && <p>{op.summary}</p>}
                {op.description && <p className="demo__hint">{op.description}</p>}
                {op.parameters && op.parameters.length > 0 && (
                  <p className="demo__hint">
                    Parameters:{' '}
                    {op.parameters
                      .map((p) => (p.$ref ? refName(p.$ref) : `${p.name} (${p.in}${p.required ? ', required' : ''})`))
                      .join('; ')}
                  </p>
                )}
                {op.responses && (
                  <p className="demo__hint">
                    Responses:{' '}
                    {Object.entries(op.responses)
                      .map(([code, r]) => `${code} ${r.description ?? refName(r.$ref)}`)
                      .join(' · ')}
                  </p>
                )}
              </section>
            );
          }),
        )}
    </main>
  );
}

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <ApiDocs />
  </StrictMode>,
);
