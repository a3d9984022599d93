#!/usr/bin/env node
// Backup benchmark in the browser: prints figures, asserts nothing (not part of the test
// suite). In a fresh browser profile on its own server, as a user does it on the Backup page:
//   import   a seed-format backup of N apps (default 1,000) picked in the file input: read,
//            validated and previewed (file → preview shown), then applied (Import → done:
//            the record written to IndexedDB in one transaction)
//   replay   the N mirror writes that import queued, until the sync indicator says synced
//            (the real server, SQLite)
//   export   "Download backup": the workspace as one JSON file (click → download)
//   size     the exported bytes per app, against the seed's ~1 KB
// The apps are made from the page's own draft of the BusyBox preset (window.webvm.newDraft),
// each with its own id, name, folder and port. The VM is not started (autoboot off).
// Goals (issue 12): export + import ≤ 1 s together; mirror replay ≤ 5 s.
//
// With --profile, each timed step also prints the functions that took most of the page's CPU
// (a sampled CPU profile over the Chrome DevTools Protocol; wasm functions by their names).
//
// Usage: scripts/bench-backup.sh [--apps=N] [--profile]
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';

import { launchChromium, newPage, paths, startServer } from '../../scripts/lib/webvm-harness.mjs';

const args = process.argv.slice(2);
const option = (name) => args.find((arg) => arg.startsWith(`--${name}=`))?.split('=').slice(1).join('=');
const APPS = Math.max(1, Number.parseInt(option('apps') ?? '1000', 10) || 1000);
const PROFILE = args.includes('--profile');

/// Starts a sampled CPU profile of the page (with --profile); the returned function stops it
/// and prints the functions with the most self time.
async function profileStep(context, page, label) {
  if (!PROFILE) return async () => {};
  const cdp = await context.newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 250 });
  await cdp.send('Profiler.start');
  return async () => {
    const { profile } = await cdp.send('Profiler.stop');
    const selfMs = new Map();
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    for (let index = 0; index < profile.samples.length; index += 1) {
      const node = byId.get(profile.samples[index]);
      const frame = node.callFrame;
      const where = frame.url ? frame.url.split('/').pop() : '';
      const key = `${frame.functionName || '(anonymous)'} ${where}`.trim();
      selfMs.set(key, (selfMs.get(key) ?? 0) + (profile.timeDeltas[index] ?? 0) / 1000);
    }
    const top = [...selfMs.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15);
    console.log(`[backup bench] CPU profile of ${label}: the functions with the most self time`);
    for (const [name, spent] of top) console.log(`    ${spent.toFixed(0).padStart(6)} ms  ${name}`);
    await cdp.detach();
  };
}

const figures = [];
const figure = (label, value) => {
  figures.push(`${label.padEnd(52)} ${value}`);
  console.log(`[backup bench] ${label}: ${value}`);
};
const ms = (value) => `${value.toFixed(0)} ms`;

const p = paths();
const server = await startServer(p);
const browser = await launchChromium();
try {
  const { context, page } = await newPage(browser, server.base, { autoboot: false, quiet: true });
  page.on('crash', () => console.error('[backup bench] the page crashed'));
  await page.goto('/backup');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 60_000 });
  await page.waitForFunction(() => !!window.webvm, null, { timeout: 30_000 });
  const input = page.getByTestId('backup-import-file');
  await input.waitFor({ state: 'visible' });
  await page.waitForFunction(() => !document.querySelector('[data-testid="backup-import-file"]')?.disabled, null, { timeout: 60_000 });

  // N apps from the preset's draft, in the seed's backup format.
  const draft = await page.evaluate(() => window.webvm.newDraft('static-busybox'));
  const applications = Array.from({ length: APPS }, (_, index) => {
    const name = `bench-${String(index).padStart(4, '0')}`;
    return {
      ...draft,
      id: randomUUID(),
      name,
      description: `benchmark application ${index}`,
      deployment: { ...draft.deployment, deploymentPath: `/srv/apps/${name}` },
      execution: { ...draft.execution, port: 8000 + (index % 1000), additionalPorts: [] },
    };
  });
  const backup = {
    version: '2',
    timestamp: new Date().toISOString(),
    webvmState: { state: 'unloaded', loadProgress: 0, installedRuntimes: [], runningApps: [], systemResources: { memoryUsed: 0, memoryTotal: 0, diskUsed: 0, diskTotal: 0, cpuUsage: 0, processCount: 0 } },
    applications,
    packages: [],
    settings: {},
  };
  const text = JSON.stringify(backup);
  figure('backup file', `${APPS} apps, ${(text.length / 1024).toFixed(0)} KiB`);

  // Import: pick → preview, then Import → done.
  // The page's own time starts at the input's change event: Playwright's handing the file
  // to the page (base64 through the protocol) is not the app's.
  await page.evaluate(() => {
    document.querySelector('[data-testid="backup-import-file"]').addEventListener(
      'change', () => { window.__benchPicked = performance.now(); }, { capture: true });
  });
  let stopProfile = await profileStep(context, page, 'the import preview');
  let started = performance.now();
  await input.setInputFiles({ name: 'bench.json', mimeType: 'application/json', buffer: Buffer.from(text) });
  await page.getByTestId('backup-import-preview').waitFor({ timeout: 120_000 });
  const pickedMs = performance.now() - started;
  const previewMs = await page.evaluate(() => performance.now() - window.__benchPicked);
  figure(`import: file picked → preview shown (${APPS} apps)`, ms(previewMs));
  figure('  (with Playwright handing the file over)', ms(pickedMs));
  await stopProfile();
  stopProfile = await profileStep(context, page, 'applying the import');
  started = performance.now();
  await page.getByTestId('backup-import-apply').click();
  await page.getByTestId('backup-imported').waitFor({ timeout: 120_000 });
  const applyMs = performance.now() - started;
  figure(`import: apply (one IndexedDB write)`, ms(applyMs));
  await stopProfile();
  stopProfile = await profileStep(context, page, 'the mirror replay');

  // The mirror's replay of the N queued writes.
  started = performance.now();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="sync-indicator"]')?.getAttribute('data-state') === 'synced',
    null,
    { timeout: 600_000, polling: 50 },
  );
  const replayMs = performance.now() - started;
  figure(`mirror replay of ${APPS} queued writes`, `${ms(replayMs)}   [goal ≤ 5 s: ${replayMs <= 5000 ? 'within' : 'over'}]`);
  await stopProfile();
  const mirrored = await (await page.request.get('/api/server_backup')).json();
  figure('apps in the server copy afterwards', String(mirrored.applications.length));

  // Export: click → the downloaded file.
  stopProfile = await profileStep(context, page, 'the export');
  started = performance.now();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('backup-download').click()]);
  const exportMs = performance.now() - started;
  const exported = fs.readFileSync(await download.path());
  figure(`export (${APPS} apps, click → download starts)`, ms(exportMs));
  figure('  (until the file is on disk)', ms(performance.now() - started));
  await stopProfile();
  const perApp = exported.length / APPS;
  figure('exported bytes per app', `${perApp.toFixed(0)} B (seed: ~1 KB)`);
  const together = previewMs + applyMs + exportMs;
  figure('export + import together', `${ms(together)}   [goal ≤ 1 s: ${together <= 1000 ? 'within' : 'over'}]`);
  await context.close();
} finally {
  await browser.close();
  await server.stop();
}
console.log('\nbackup benchmark');
for (const line of figures) console.log(`  ${line}`);
