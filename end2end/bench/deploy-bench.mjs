#!/usr/bin/env node
// Deploy benchmark: prints figures, asserts nothing (not part of the test suite). From the
// server's boot snapshot, in one browser context, it creates one draft per case from the
// static-busybox preset (window.webvm.newDraft → saveApp; no runtime is installed, a deploy
// does not need one) and deploys into the guest through the page's test hooks:
//   one   one 1 MiB file (random bytes)                      webvm.deployFiles
//   many  1,000 files of about 1 KiB in nested folders        webvm.deployFiles
//   zip   a 20 MiB stored ZIP written here (40 entries: half   webvm.deployArchive
//         random bytes, half random-hex text, so the tar.gz the page packs stays large)
//   sync  local-sync latency (change → file in the guest), only when the page has a hook
// Per deploy it prints the total (hook call → resolved, which includes the VM checkpoint the
// deploy ends with), MiB/s over the files' bytes, and the phase split read from the
// deployment's log as it grows (polled every 20 ms in the page, so each phase is known to
// about ±20 ms): pack (check + tar.gz), copy (push over 9p), extract (one EXEC), switch
// (`current`), record + VM checkpoint. The goals are printed beside the figures.
//
// Payloads are generated in node and served to the page on its own origin through Playwright's
// routing; the page fetches them before the clock starts.
//
// Usage: scripts/bench-deploy.sh [one|many|zip|sync ...] [--runs=N]
//        node end2end/bench/deploy-bench.mjs --write-zip=FILE   (writes the ZIP, no browser)
//
// Local sync: with window.webvm's `useOpfsFolder(appName, folderName)` and
// `opfsWrite(folderName, path, data)`, the sync case deploys an origin-private folder with
// watchEnabled, then times opfsWrite → new content readable in the guest.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';

import { zipSync } from 'fflate';

import {
  exec,
  launchChromium,
  mebibytes,
  newPage,
  openDashboard,
  paths,
  seconds,
  startServer,
  vmSource,
  waitForState,
} from '../../scripts/lib/webvm-harness.mjs';

const MiB = 1024 * 1024;
const GOALS = { many: 10_000, zip: 15_000, sync: 2_000 };
const GOAL_TEXT = '1,000 files ≤ 10 s; 20 MiB ZIP ≤ 15 s; local-sync ≤ 2 s';
const ALL_CASES = ['one', 'many', 'zip', 'sync'];

const args = process.argv.slice(2);
const option = (name) => args.find((arg) => arg.startsWith(`--${name}=`))?.split('=').slice(1).join('=');
const picked = args.filter((arg) => !arg.startsWith('-'));
const CASES = picked.length > 0 ? picked : ALL_CASES;
const RUNS = Math.max(1, Number.parseInt(option('runs') ?? '1', 10) || 1);
for (const name of CASES) {
  if (!ALL_CASES.includes(name)) throw new Error(`unknown case '${name}' (cases: ${ALL_CASES.join(', ')})`);
}

const figures = [];
const figure = (label, value) => {
  figures.push(`${label.padEnd(52)} ${value}`);
  console.log(`[deploy bench] ${label}: ${value}`);
};
const goalNote = (ms, goal) =>
  goal === undefined ? '' : `   [goal ≤ ${goal / 1000} s: ${ms <= goal ? 'within' : 'over'}]`;
const rate = (bytes, ms) => (ms > 0 ? `${(bytes / MiB / (ms / 1000)).toFixed(2)} MiB/s` : '– MiB/s');

// ---- payloads ------------------------------------------------------------------------------

/** Random lowercase hex text of about `size` bytes, in lines (compresses to about half). */
function hexText(size, prefix = '') {
  const lines = [];
  let length = 0;
  let index = 0;
  while (length < size) {
    const line = `${prefix}export const v${index++} = "${randomBytes(24).toString('hex')}";\n`;
    lines.push(line);
    length += line.length;
  }
  return lines.join('').slice(0, size);
}

/** A ZIP of `entries` ({ path, data: Buffer }) with every entry stored, written by fflate. */
function storedZip(entries) {
  const files = {};
  for (const entry of entries) files[entry.path] = [new Uint8Array(entry.data), { level: 0 }];
  return Buffer.from(zipSync(files));
}

/** The 20 MiB site: index.html + 20 "images" (random) + 19 "scripts" (hex text), 512 KiB each. */
function zipSite() {
  const chunk = 512 * 1024;
  const entries = [
    { path: 'index.html', data: Buffer.from('<!doctype html><title>bench-zip</title><p>deploy bench</p>\n') },
  ];
  for (let i = 0; i < 39; i++) {
    const id = String(i).padStart(2, '0');
    entries.push(
      i % 2 === 0
        ? { path: `img/photo-${id}.jpg`, data: randomBytes(chunk) }
        : { path: `js/chunk-${id}.js`, data: Buffer.from(hexText(chunk)) },
    );
  }
  const used = entries.reduce((sum, entry) => sum + entry.data.length, 0);
  // Top up to 20 MiB of file bytes exactly (the headers add a few KiB).
  entries.push({ path: 'img/filler.bin', data: randomBytes(20 * MiB - used) });
  return { bytes: storedZip(entries), fileCount: entries.length, fileBytes: 20 * MiB };
}

/** 1,000 files of about 1 KiB: index.html + 999 under assets/dNN/sN/ (10 × 10 folders). */
function manyFiles() {
  const files = [{ path: 'index.html', data: '<!doctype html><title>bench-many</title><p>deploy bench</p>\n' }];
  for (let i = 1; i < 1000; i++) {
    const top = String(i % 10).padStart(2, '0');
    const sub = Math.floor(i / 10) % 10;
    files.push({ path: `assets/d${top}/s${sub}/file-${String(i).padStart(4, '0')}.txt`, data: hexText(1024, `// ${i}\n`) });
  }
  const fileBytes = files.reduce((sum, file) => sum + Buffer.byteLength(file.data), 0);
  return { json: JSON.stringify(files), fileCount: files.length, fileBytes };
}

/** Serves `payloads` (name → { body, type }) to the page at `<origin>/__bench/<name>`, through
 * Playwright's routing: the page's own origin, so its CSP (connect-src 'self') lets it fetch. */
async function routePayloads(context, origin, payloads) {
  await context.route(`${origin}/__bench/*`, (route) => {
    const name = decodeURIComponent(new URL(route.request().url()).pathname.replace('/__bench/', ''));
    const payload = payloads.get(name);
    if (!payload) return route.fulfill({ status: 404, body: '' });
    return route.fulfill({ status: 200, contentType: payload.type, body: payload.body, headers: { 'cache-control': 'no-store' } });
  });
  return `${origin}/__bench`;
}

// ---- page side -----------------------------------------------------------------------------

/** Waits until the record and the catalog are in (saveApp refuses before), then saves. */
async function createApp(page, name, change = {}) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const outcome = await page.evaluate(
      async ([appName, extra]) => {
        const draft = window.webvm.newDraft('static-busybox');
        const oldPath = draft.deployment.deploymentPath;
        const newPath = `/srv/apps/${appName}`;
        const swap = (text) => text.split(oldPath).join(newPath);
        draft.name = appName;
        draft.deployment.deploymentPath = newPath;
        draft.execution.workingDirectory = swap(draft.execution.workingDirectory);
        draft.execution.arguments = draft.execution.arguments.map(swap);
        if (extra.sourceType) draft.deployment.sourceType = extra.sourceType;
        if (extra.sourceConfig) draft.deployment.sourceConfig = extra.sourceConfig;
        try {
          const saved = await window.webvm.saveApp(draft);
          return { saved: { id: saved.id, name: saved.name, port: saved.execution.port, path: saved.deployment.deploymentPath } };
        } catch (error) {
          return { error: String(error?.message ?? error) };
        }
      },
      [name, change],
    );
    if (outcome.saved) return outcome.saved;
    // Before the record is read or the catalog is loaded, saving is refused: wait for them.
    const early = /not in the package catalog|could not be read in this page/.test(outcome.error);
    if (!early || Date.now() > deadline) throw new Error(`saving ${name} failed: ${outcome.error}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * In the page: fetches the payload, then (clock started) calls the deploy hook while polling
 * the record every 20 ms for the new deployment's log lines and statuses (first seen, ms).
 */
async function deployInPage({ name, kind, url, filePath }) {
  const hook = window.webvm;
  const response = url ? await fetch(url, { cache: 'no-store' }) : null;
  if (response && !response.ok) throw new Error(`payload ${url}: HTTP ${response.status}`);
  let call;
  if (kind === 'file') {
    const data = new Uint8Array(await response.arrayBuffer());
    call = () => hook.deployFiles(name, [{ path: filePath, data, executable: false }]);
  } else if (kind === 'files') {
    const files = await response.json();
    call = () => hook.deployFiles(name, files);
  } else if (kind === 'archive') {
    const bytes = new Uint8Array(await response.arrayBuffer());
    call = () => hook.deployArchive(name, filePath, bytes);
  } else {
    call = () => hook.deploySaved(name);
  }
  const before = hook.appBook();
  const app = Object.values(before.applications).find((candidate) => candidate.name === name);
  if (!app) throw new Error(`there is no application named ${name}`);
  const known = new Set((before.deployments[app.id] ?? []).map((operation) => operation.id));
  const lines = [];
  const statuses = {};
  let t0 = 0;
  const poll = () => {
    const now = performance.now() - t0;
    const operation = (hook.appBook()?.deployments?.[app.id] ?? []).find((op) => !known.has(op.id));
    if (!operation) return;
    for (let i = lines.length; i < operation.logs.length; i++) lines.push({ line: operation.logs[i], ms: now });
    if (!(operation.status in statuses)) statuses[operation.status] = now;
  };
  const timer = setInterval(poll, 20);
  t0 = performance.now();
  let result = null;
  let error = null;
  try {
    result = await call();
  } catch (thrown) {
    error = String(thrown?.message ?? thrown);
  }
  const total = performance.now() - t0;
  clearInterval(timer);
  poll();
  return { total, lines, statuses, result, error };
}

// ---- figures -------------------------------------------------------------------------------

const PHASES = [
  ['prepare + pack', /^\d+ files, \d+ bytes, packed into \d+ bytes/],
  ['copy', /^copied .* into the VM/],
  ['extract', /^unpacked \d+ files/],
  ['switch', /\/current -> /],
];

/** The phase split from the log lines' first-seen times. */
function phaseSplit(run) {
  const at = (pattern) => run.lines.find((entry) => pattern.test(entry.line))?.ms;
  const parts = [];
  let previous = 0;
  for (const [label, pattern] of PHASES) {
    const ms = at(pattern);
    if (ms === undefined) {
      parts.push(`${label} ?`);
      continue;
    }
    parts.push(`${label} ${seconds(ms - previous)}`);
    previous = ms;
  }
  parts.push(`record + checkpoint ${seconds(run.total - previous)}`);
  const live = at(PHASES[PHASES.length - 1][1]);
  const copied = at(PHASES[1][1]);
  const packedAt = at(PHASES[0][1]);
  const packedLine = run.lines.find((entry) => PHASES[0][1].test(entry.line))?.line ?? '';
  const packedBytes = Number(/packed into (\d+) bytes/.exec(packedLine)?.[1] ?? 0);
  return {
    text: parts.join(' · '),
    live,
    packedBytes,
    copyMs: copied !== undefined && packedAt !== undefined ? copied - packedAt : undefined,
  };
}

async function runDeploy(page, payloadBase, spec, runIndex) {
  await waitForState(page, 'ready', 120_000);
  const label = RUNS > 1 ? `${spec.label} (run ${runIndex + 1})` : spec.label;
  const run = await page.evaluate(deployInPage, {
    name: spec.app,
    kind: spec.kind,
    url: `${payloadBase}/${spec.payload}`,
    filePath: spec.filePath,
  });
  const operation = run.result;
  if (run.error || operation?.status !== 'completed') {
    figure(`${label}: FAILED`, run.error ?? operation?.error ?? `status ${operation?.status}`);
    for (const entry of run.lines.slice(-8)) console.log(`    ${entry.line}`);
    return;
  }
  const split = phaseSplit(run);
  const bytes = operation.totalBytes ?? spec.fileBytes;
  figure(
    `${label}: total (call → resolved)`,
    `${seconds(run.total)}, ${rate(bytes, run.total)}${goalNote(run.total, spec.goal)}`,
  );
  figure(
    `${label}: files`,
    `${operation.fileCount ?? spec.fileCount} files, ${mebibytes(bytes)}, packed ${mebibytes(split.packedBytes)}`,
  );
  figure(`${label}: phases`, split.text);
  if (split.live !== undefined) figure(`${label}: live (current switched)`, `${seconds(split.live)}, ${rate(bytes, split.live)}`);
  if (split.copyMs !== undefined) figure(`${label}: 9p copy of the tar.gz`, rate(split.packedBytes, split.copyMs));
  const check = await exec(page, 'sh', ['-c', spec.check]);
  const found = check.stdout.trim();
  figure(`${label}: guest check`, found === String(spec.expect) ? `ok (${found})` : `MISMATCH: ${found || check.stderr.trim()} (expected ${spec.expect})`);
}

async function localSync(page) {
  const hooked = await page.evaluate(
    () => typeof window.webvm.useOpfsFolder === 'function' && typeof window.webvm.opfsWrite === 'function',
  );
  if (!hooked) {
    figure('local-sync latency', 'not measured (no hook)');
    return;
  }
  const name = 'bench-sync';
  const folder = 'bench-sync-folder';
  try {
    const app = await createApp(page, name, {
      sourceType: 'local-sync',
      sourceConfig: { localPath: folder, watchEnabled: true },
    });
    console.log(`[deploy bench] ${name}: port ${app.port}, ${app.path}`);
    await page.evaluate(
      async ([appName, folderName]) => {
        await window.webvm.useOpfsFolder(appName, folderName);
        await window.webvm.opfsWrite(folderName, 'index.html', 'sync 0\n');
      },
      [name, folder],
    );
    const first = await page.evaluate(deployInPage, { name, kind: 'saved', url: null, filePath: '' });
    if (first.error || first.result?.status !== 'completed') {
      figure('local-sync latency', `not measured (the first deploy failed: ${first.error ?? first.result?.error})`);
      return;
    }
    figure('local-sync: first deploy (saved source)', seconds(first.total));
    const times = [];
    for (let i = 1; i <= 5; i++) {
      const content = `sync ${i} ${Date.now()}\n`;
      const started = Date.now();
      await page.evaluate(([folderName, text]) => window.webvm.opfsWrite(folderName, 'index.html', text), [folder, content]);
      const deadline = started + 30_000;
      for (;;) {
        const read = await exec(page, 'cat', [`${app.path}/current/index.html`]);
        if (read.stdout === content) break;
        if (Date.now() > deadline) throw new Error(`change ${i} did not reach the guest within 30 s`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      times.push(Date.now() - started);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    figure(
      'local-sync latency (change → file in guest), median of 5',
      `${seconds(median)} (min ${seconds(times[0])}, max ${seconds(times[times.length - 1])})${goalNote(median, GOALS.sync)}`,
    );
  } catch (error) {
    figure('local-sync latency', `not measured (the hook failed: ${error.message})`);
  }
}

// ---- main ----------------------------------------------------------------------------------

async function main() {
  const zipTo = option('write-zip');
  if (zipTo) {
    const zip = zipSite();
    fs.writeFileSync(zipTo, zip.bytes);
    console.log(`[deploy bench] wrote ${zipTo}: ${zip.fileCount} entries, ${mebibytes(zip.bytes.length)}`);
    return;
  }

  const payloads = new Map();
  const specs = [];
  if (CASES.includes('one')) {
    payloads.set('one.bin', { body: randomBytes(MiB), type: 'application/octet-stream' });
    specs.push({
      label: '1 MiB file', app: 'bench-one', kind: 'file', payload: 'one.bin', filePath: 'payload.bin',
      fileCount: 1, fileBytes: MiB,
      check: 'wc -c < /srv/apps/bench-one/current/payload.bin', expect: MiB,
    });
  }
  if (CASES.includes('many')) {
    const many = manyFiles();
    payloads.set('many.json', { body: Buffer.from(many.json), type: 'application/json' });
    specs.push({
      label: '1,000 small files', app: 'bench-many', kind: 'files', payload: 'many.json',
      fileCount: many.fileCount, fileBytes: many.fileBytes, goal: GOALS.many,
      check: 'find /srv/apps/bench-many/current/ -type f | wc -l', expect: many.fileCount,
    });
  }
  if (CASES.includes('zip')) {
    const zip = zipSite();
    payloads.set('site.zip', { body: zip.bytes, type: 'application/zip' });
    specs.push({
      label: `${mebibytes(zip.bytes.length)} ZIP`, app: 'bench-zip', kind: 'archive', payload: 'site.zip', filePath: 'site.zip',
      fileCount: zip.fileCount, fileBytes: zip.fileBytes, goal: GOALS.zip,
      check: 'find /srv/apps/bench-zip/current/ -type f | wc -l', expect: zip.fileCount,
    });
  }

  const p = paths();
  const server = await startServer(p);
  const browser = await launchChromium();
  try {
    console.log(`[deploy bench] server ${server.base}`);
    console.log(`[deploy bench] goals: ${GOAL_TEXT}`);
    const { context, page } = await newPage(browser, server.base, { quiet: true });
    const payloadBase = await routePayloads(context, server.base, payloads);
    try {
      const started = Date.now();
      await openDashboard(page);
      await page.waitForFunction(
        () => typeof window.webvm?.deployFiles === 'function' && typeof window.webvm?.appBook === 'function',
        null,
        { timeout: 30_000 },
      );
      await waitForState(page, 'ready', 360_000);
      figure('page load → VM ready', `${seconds(Date.now() - started)} (from ${await vmSource(page)})`);
      for (const spec of specs) {
        const app = await createApp(page, spec.app);
        console.log(`[deploy bench] ${spec.app}: port ${app.port}, ${app.path}`);
      }
      for (const spec of specs) {
        for (let i = 0; i < RUNS; i++) await runDeploy(page, payloadBase, spec, i);
      }
      if (CASES.includes('sync')) await localSync(page);
    } finally {
      await context.close();
    }
  } finally {
    await browser.close();
    await server.stop();
  }
  console.log(`\nDeploy figures (goals: ${GOAL_TEXT}):\n  ${figures.join('\n  ')}`);
}

main().catch((error) => {
  console.error(`[deploy bench] failed: ${error.message}`);
  process.exit(1);
});
