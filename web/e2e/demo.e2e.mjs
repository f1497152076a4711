// Browser end-to-end test of the demo page, as the facade serves it from web/dist.
//
//   npm run test:e2e          (after `npm run build` and `hack/demo/up`)
//
// Reads FACADE_URL, KUBECONFIG, KUBECTL and DEMO_NAMESPACE from ../.demo/env (override the
// path with DEMO_ENV; E2E_BASE_URL serves the page from elsewhere, e.g. `vite preview`).
// Drives Debian's Chromium (/usr/bin/chromium, or CHROMIUM) through playwright-core, in a
// fresh profile. Screenshots go to e2e/screenshots/ (ignored by git); the mid-download one is
// also copied to docs/progress.png for the README when that is missing or E2E_UPDATE_DOCS=1.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const webDir = resolve(here, '..');
const envPath = process.env.DEMO_ENV ?? resolve(webDir, '../.demo/env');
const shots = join(here, 'screenshots');
const downloads = join(here, 'downloads');
const run = promisify(execFile);

function readEnv(path) {
  assert.ok(existsSync(path), `${path} is missing: start the demo stack with hack/demo/up (or set DEMO_ENV)`);
  const out = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2].replace(/^['"]|['"]$/g, '');
  }
  return out;
}

const env = readEnv(envPath);
const BASE = (process.env.E2E_BASE_URL ?? env.FACADE_URL ?? '').replace(/\/$/, '');
const API = (env.FACADE_URL ?? BASE).replace(/\/$/, '');
const KUBECTL = env.KUBECTL || 'kubectl';
const NAMESPACE = env.DEMO_NAMESPACE || 'download-operator';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const STORAGE_PREFIX = 'download-operator:job:';

const t0 = Date.now();
const since = (t) => `${((Date.now() - t) / 1000).toFixed(1)} s`;
const log = (...a) => console.log(`[e2e +${since(t0)}]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function kubectl(...args) {
  const { stdout } = await run(KUBECTL, ['--kubeconfig', env.KUBECONFIG, '-n', NAMESPACE, ...args], { maxBuffer: 64 << 20 });
  return stdout;
}

/** Every Download: name, file ids, creation time. */
async function listDownloads() {
  const list = JSON.parse(await kubectl('get', 'downloads', '-o', 'json'));
  return list.items.map((d) => ({
    name: d.metadata.name,
    fileIds: [...(d.spec?.fileIds ?? [])].sort((a, b) => a - b),
    created: d.metadata.creationTimestamp,
  }));
}

async function downloadExists(name) {
  try {
    await kubectl('get', 'download', name, '-o', 'name');
    return true;
  } catch (e) {
    const msg = String(e.stderr ?? e.message);
    if (/NotFound|not found/i.test(msg)) return false;
    throw e;
  }
}

async function sha256File(path) {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk);
  return h.digest('hex');
}

let context;
let page;
let profile;
let before0 = new Set();
const report = { steps: {} };

/** The job box of one set of ids on the demo page. */
const job = (ids) => page.locator(`li[data-file-ids="${ids}"] .dlo`);

async function request(ids) {
  await page.fill('#file-ids', ids.replace(/,/g, ', '));
  await page.getByRole('button', { name: 'Prepare', exact: true }).click();
  const box = job(ids);
  await box.waitFor({ state: 'visible', timeout: 10_000 });
  await page.waitForFunction((el) => el.dataset.jobId !== '', await box.elementHandle(), { timeout: 20_000 });
  return box.getAttribute('data-job-id');
}

async function waitState(box, states, timeout) {
  const want = Array.isArray(states) ? states : [states];
  const handle = await box.elementHandle();
  await page.waitForFunction(([el, w]) => w.includes(el.dataset.state), [handle, want], { timeout, polling: 100 });
  return box.getAttribute('data-state');
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  rmSync(downloads, { recursive: true, force: true });
  mkdirSync(downloads, { recursive: true });
  assert.ok(BASE, 'FACADE_URL is not set');
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);

  const res = await fetch(`${BASE}/`);
  const html = await res.text();
  assert.ok(
    res.ok && html.includes('id="root"'),
    `${BASE}/ does not serve the demo page (${res.status}): run \`npm run build\` in web/, then hack/demo/up`,
  );
  before0 = new Set((await listDownloads()).map((d) => d.name));

  profile = mkdtempSync(join(tmpdir(), 'dlo-e2e-profile-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    acceptDownloads: true,
    downloadsPath: downloads,
    viewport: { width: 960, height: 640 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => log('page error:', e.message));
  await page.goto(`${BASE}/`);
  await page.getByRole('heading', { name: 'download-operator' }).waitFor();
  log(`Chromium ${context.browser()?.version() ?? ''} on ${BASE}, profile ${profile}`);
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  console.log(`[e2e] report ${JSON.stringify(report)}`);
});

const IDS = '70000,70007';
let jobId;
const seen = []; // [ms since request, aria-valuenow]
let requestedAt = 0;

/** Samples the progress bar until done() says stop; records each new value. */
async function watchProgress(box, done, timeout) {
  const start = Date.now();
  for (;;) {
    // One read of the state and the bar together: the bar leaves the page when the job ends, and
    // reading it after a separate state check could wait on a bar that is gone.
    const { state, value, text, transport } = await box.evaluate((el) => {
      const bar = el.querySelector('[role="progressbar"]');
      return {
        state: el.dataset.state,
        value: bar?.getAttribute('aria-valuenow'),
        text: bar?.getAttribute('aria-valuetext'),
        transport: el.dataset.transport,
      };
    });
    if (state === 'preparing' && value != null) {
      const v = Number(value);
      if (seen.length === 0 || seen[seen.length - 1][1] !== v) {
        seen.push([Date.now() - requestedAt, v]);
        log(`aria-valuenow=${v} (${text}) via ${transport}`);
      }
    }
    if (done(state)) return state;
    assert.ok(Date.now() - start < timeout, `progress did not get there in ${timeout} ms; saw ${JSON.stringify(seen)}`);
    await sleep(150);
  }
}

const distinct = () => new Set(seen.map(([, v]) => v));

test('1. requesting 70000 and 70007 shows a progress bar that rises through at least 3 values', async () => {
  const t = Date.now();
  requestedAt = t;
  jobId = await request(IDS);
  log(`jobId ${jobId}`);
  const box = job(IDS);
  let shot = false;
  await watchProgress(
    box,
    (state) => {
      if (state === 'ready' || state === 'failed') return true;
      return distinct().size >= 3;
    },
    60_000,
  );
  const values = seen.map(([, v]) => v);
  assert.ok(distinct().size >= 3, `only saw ${JSON.stringify(values)} before the job ended`);
  for (let i = 1; i < values.length; i++) assert.ok(values[i] >= values[i - 1], `progress went back: ${values}`);
  await page.screenshot({ path: join(shots, 'preparing.png') });
  // The README's picture is committed: refresh it only when asked to, or when it is missing.
  const docShot = join(webDir, 'docs', 'progress.png');
  if (process.env.E2E_UPDATE_DOCS === '1' || !existsSync(docShot)) {
    mkdirSync(dirname(docShot), { recursive: true });
    copyFileSync(join(shots, 'preparing.png'), docShot);
  }
  shot = true;
  // The bar carries percent, bytes and ETA for assistive technology.
  const text = await box.locator('[role="progressbar"]').getAttribute('aria-valuetext');
  assert.match(text ?? '', /%/);
  assert.equal(await box.locator('[role="progressbar"]').getAttribute('aria-valuemin'), '0');
  assert.equal(await box.locator('[role="progressbar"]').getAttribute('aria-valuemax'), '100');
  report.steps.progress = { seconds: (Date.now() - t) / 1000, values: [...values], screenshot: shot };
  log(`step 1 done in ${since(t)}: ${values.join(' → ')}`);
});

test('2. a reload mid-way resumes the same job, and creates no second Download', async () => {
  assert.ok(jobId, 'step 1 did not start a job');
  const t = Date.now();
  const stateBefore = await job(IDS).getAttribute('data-state');
  await page.reload();
  const box = job(IDS);
  await box.waitFor({ state: 'visible', timeout: 10_000 });
  await page.waitForFunction((el) => el.dataset.jobId !== '', await box.elementHandle(), { timeout: 10_000 });
  const resumed = await box.getAttribute('data-job-id');
  const stored = await page.evaluate((k) => JSON.parse(localStorage.getItem(k) ?? 'null'), `${STORAGE_PREFIX}${IDS}`);
  assert.equal(resumed, jobId, 'the page shows another job after the reload');
  assert.equal(stored?.jobId, jobId, 'localStorage does not hold the job');
  const stateAfter = await box.getAttribute('data-state');

  const mine = (await listDownloads()).filter((d) => !before0.has(d.name) && d.fileIds.join(',') === IDS);
  assert.deepEqual(
    mine.map((d) => d.name),
    [jobId],
    `expected exactly one new Download of ${IDS}, found ${JSON.stringify(mine)}`,
  );
  report.steps.reload = { seconds: (Date.now() - t) / 1000, stateBefore, stateAfter, downloadsOfTheseIds: mine.length };
  log(`step 2 done in ${since(t)}: ${stateBefore} → reload → ${stateAfter}, same jobId, ${mine.length} Download`);
});

test('3. the finished archive downloads, with the size and sha256 of the status document', async () => {
  const t = Date.now();
  const box = job(IDS);
  await watchProgress(box, (state) => state === 'ready' || state === 'failed' || state === 'expired', 90_000);
  assert.equal(await box.getAttribute('data-state'), 'ready', await box.textContent());
  await page.screenshot({ path: join(shots, 'ready.png'), fullPage: true });

  const doc = await (await fetch(`${API}/v1/download/status/${jobId}`)).json();
  assert.equal(doc.status, 'completed');
  // The button links to the stable link (signed afresh on each click), not the expiring one.
  assert.equal(doc.archiveUrl, `/v1/download/${jobId}/archive`);
  const href = await box.getByRole('link', { name: 'Save ZIP' }).getAttribute('href');
  assert.ok(href?.endsWith(doc.archiveUrl), `Save ZIP links to ${href}, not the stable link`);
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), box.getByRole('link', { name: 'Save ZIP' }).click()]);
  const file = join(downloads, download.suggestedFilename() || `${jobId}.zip`);
  await download.saveAs(file);
  const size = statSync(file).size;
  const sha = await sha256File(file);
  assert.equal(size, doc.size, 'size differs from the status document');
  assert.equal(sha, doc.sha256, 'sha256 differs from the status document');
  rmSync(file, { force: true });
  const stored = await page.evaluate((k) => localStorage.getItem(k), `${STORAGE_PREFIX}${IDS}`);
  assert.equal(stored, null, 'the job is still remembered after its download');
  const values = seen.map(([, v]) => v);
  report.steps.download = {
    seconds: (Date.now() - t) / 1000,
    file: download.suggestedFilename(),
    size,
    sha256: sha,
    progressValues: values,
    progressTimeline: seen,
  };
  log(`step 3 done in ${since(t)}: ${download.suggestedFilename()} ${size} bytes sha256 ${sha}; progress ${values.join(' → ')}`);
});

test('4. cancelling another job shows cancelled and deletes its Download', async () => {
  const t = Date.now();
  const ids = '21000';
  const id = await request(ids);
  const box = job(ids);
  assert.equal(await box.getAttribute('data-state'), 'preparing');
  assert.ok(await downloadExists(id), 'the Download was not created');
  await sleep(1500);
  await box.getByRole('button', { name: 'Cancel' }).click();
  await waitState(box, 'cancelled', 15_000);
  assert.match((await box.textContent()) ?? '', /Cancelled/);
  await page.screenshot({ path: join(shots, 'cancelled.png'), fullPage: true });
  const deadline = Date.now() + 60_000;
  let gone = false;
  while (Date.now() < deadline && !(gone = !(await downloadExists(id)))) await sleep(500);
  assert.ok(gone, `Download ${id} still exists 60 s after the cancel`);
  const res = await fetch(`${API}/v1/download/status/${id}`);
  assert.equal(res.status, 404);
  report.steps.cancel = { seconds: (Date.now() - t) / 1000, jobId: id };
  log(`step 4 done in ${since(t)}: ${id} cancelled, kubectl get → NotFound, status → 404`);
});

test('5. file 99999 shows the failure reason', async () => {
  const t = Date.now();
  const ids = '99999';
  const id = await request(ids);
  const box = job(ids);
  await waitState(box, 'failed', 180_000);
  const text = (await box.innerText()).replace(/\s+/g, ' ').trim();
  assert.match(text, /SourceNotFound/);
  assert.ok(await box.getByRole('button', { name: 'Retry' }).isVisible());
  await page.screenshot({ path: join(shots, 'failed.png'), fullPage: true });
  report.steps.failure = { seconds: (Date.now() - t) / 1000, jobId: id, text };
  log(`step 5 done in ${since(t)}: ${text}`);
});

test('6. with "Skip missing files", 14000 and 99999 completes and shows 99999 as left out', async () => {
  const t = Date.now();
  const ids = '14000,99999';
  const skip = page.getByRole('checkbox', { name: /Skip missing files/ });
  await skip.check();
  try {
    await page.fill('#file-ids', ids.replace(/,/g, ', '));
    await page.getByRole('button', { name: 'Prepare', exact: true }).click();
  } finally {
    await skip.uncheck();
  }
  const item = page.locator(`li[data-file-ids="${ids}"][data-missing-files="skip"]`);
  const box = item.locator('.dlo');
  await box.waitFor({ state: 'visible', timeout: 10_000 });
  const state = await waitState(box, ['ready', 'failed'], 180_000);
  assert.equal(state, 'ready', await box.textContent());
  const id = await box.getAttribute('data-job-id');
  const doc = await (await fetch(`${API}/v1/download/status/${id}`)).json();
  assert.deepEqual(doc.skippedFileIds, [99999]);
  const shown = (await item.locator('.demo__skipped').innerText()).trim();
  assert.equal(shown, 'Left out, not found: 99999');
  const stored = await page.evaluate((k) => localStorage.getItem(k), `${STORAGE_PREFIX}${ids}:skip`);
  assert.ok(stored, 'the skip-policy job is not remembered under its own key');
  await page.screenshot({ path: join(shots, 'skipped.png'), fullPage: true });
  report.steps.skipMissing = { seconds: (Date.now() - t) / 1000, jobId: id, shown };
  log(`step 6 done in ${since(t)}: ${id} ready, ${shown}`);
});
