#!/usr/bin/env node
// Runtime package benchmark: prints figures, asserts nothing (not part of the test suite).
// From the server's boot snapshot, in a fresh browser profile for each install, it installs
// each runtime (busybox-httpd, nginx, python-311 and flask by default; flask on top of
// python) through the Packages page, on both paths side by side: the prebuilt layer (a
// server with WEBVM_LAYERS_DIR) and dpkg in the guest (a server with no layers). Per runtime
// and path: click → installed (the median of --runs, default 3), the recorded
// installDuration, download + verify, the time spent in the guest, the VM checkpoint and the
// snapshot size. Then raw in-browser download + SHA-256 throughput over the catalog's .debs.
// Options: --runs=N, --paths=layer,dpkg, --log (print each install's operation log),
// --prepare='<shell>' (a command run in the guest once it is ready, before the click: for trying
// a guest setting, e.g. a sysctl, without rebuilding the image); other arguments name the runtimes.
// Run it with scripts/bench-packages.sh (which sources scripts/setup.sh for the environment).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { exec, launchChromium, newPage, paths, seconds, startServer, waitForState } from '../../scripts/lib/webvm-harness.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => args.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const RUNS = Number(option('runs', '3'));
const PRINT_LOG = args.includes('--log');
const PATHS = option('paths', 'layer,dpkg').split(',');
const PREPARE = args.find((arg) => arg.startsWith('--prepare='))?.slice('--prepare='.length);
const RUNTIMES = args.filter((arg) => !arg.startsWith('-'));
const TARGETS = RUNTIMES.length > 0 ? RUNTIMES : ['busybox-httpd', 'nginx', 'python-311', 'flask'];
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
/** `[  12.3s] text` → seconds since the operation started. */
const stamp = (line) => Number(/^\[\s*([\d.]+)s\]/.exec(line ?? '')?.[1] ?? NaN);

const figures = [];
const figure = (label, value) => {
  figures.push(`${label.padEnd(48)} ${value}`);
  console.log(`[package bench] ${label}: ${value}`);
};

async function openPackages(page) {
  const started = Date.now();
  await page.goto('/packages');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 60_000 });
  await page.waitForFunction(() => !!window.webvm && !!window.webvm.packageBook, null, { timeout: 30_000 });
  await waitForState(page, 'ready', 360_000);
  return Date.now() - started;
}

/** One install of `id` (its dependencies confirmed too) in a fresh profile: its figures. */
async function installOnce(browser, base, id) {
  const { context, page } = await newPage(browser, base, { quiet: true });
  try {
    const ready = await openPackages(page);
    if (PREPARE) {
      const prepared = await exec(page, 'sh', ['-c', PREPARE]);
      if (prepared.exitCode !== 0) throw new Error(`--prepare failed (${prepared.exitCode}): ${prepared.stderr}`);
    }
    const card = page.locator(`li.package-card[data-package="${id}"]`);
    const started = Date.now();
    await card.locator('button[data-action="install"]').click();
    const confirm = card.locator('button[data-action="confirm-install"]');
    if (await confirm.isVisible().catch(() => false)) await confirm.click();
    await page.waitForFunction(
      (pkg) => {
        const book = window.webvm.packageBook();
        const record = book.records[pkg];
        const saved = [...book.operations].reverse().find((op) => op.packageId === pkg && op.operation === 'install');
        const checkpointed = saved?.logs.some((line) => /VM state saved|could not be saved/.test(line));
        return record && (record.status === 'error' || (record.status === 'installed' && checkpointed));
      },
      id,
      { timeout: 1_800_000, polling: 250 },
    );
    const clickToInstalled = Date.now() - started;
    const book = await page.evaluate(() => window.webvm.packageBook());
    const record = book.records[id];
    if (record.status !== 'installed') return { error: record.error ?? 'unknown error' };
    const operation = [...book.operations].reverse().find((op) => op.packageId === id && op.operation === 'install');
    const logs = operation?.logs ?? [];
    if (PRINT_LOG) console.log(`[package bench] ${id} operation log:\n  ${logs.join('\n  ')}`);
    const verified = logs.find((line) => line.includes('files verified'));
    const route = logs.some((line) => line.includes('installed from the prebuilt layer')) ? 'layer' : 'dpkg';
    const guestStart = stamp(logs.find((line) => line.includes('Checking what the VM') || line.includes('copied into the VM') || line.includes('$ ')));
    const guestEnd = stamp(logs.find((line) => line.includes(' installed in ')));
    const savedLine = logs.find((line) => line.includes('VM state saved'));
    const savedAt = stamp(savedLine);
    return {
      ready,
      clickToInstalled,
      installDuration: record.installDuration ?? 0,
      route,
      verified: verified?.replace(/^\[\s*[\d.]+s\] all /, ''),
      guest: Number.isFinite(guestEnd - guestStart) ? (guestEnd - guestStart) * 1000 : NaN,
      checkpoint: Number.isFinite(savedAt - guestEnd) ? (savedAt - guestEnd) * 1000 : NaN,
      snapshot: /\(([\d.]+ MiB)\)/.exec(savedLine ?? '')?.[1] ?? '?',
    };
  } finally {
    await context.close();
  }
}

async function install(browser, base, id, route) {
  const results = [];
  for (let run = 0; run < RUNS; run += 1) {
    const result = await installOnce(browser, base, id);
    if (result.error) {
      figure(`${id} [${route}]: FAILED`, result.error);
      return;
    }
    results.push(result);
  }
  const last = results[results.length - 1];
  const label = `${id} [${route}${last.route === route ? '' : `, took ${last.route}`}]`;
  figure(`${label}: click → installed, median of ${results.length}`, `${seconds(median(results.map((r) => r.clickToInstalled)))} (${results.map((r) => seconds(r.clickToInstalled)).join(', ')})`);
  figure(`${label}: installDuration (download → guest → scripts)`, seconds(median(results.map((r) => r.installDuration))));
  if (last.verified) figure(`${label}: download + verify`, last.verified);
  figure(`${label}: in the guest`, seconds(median(results.map((r) => r.guest))));
  figure(`${label}: VM checkpoint`, `${seconds(median(results.map((r) => r.checkpoint)))}, snapshot ${last.snapshot}`);
  figure(`${label}: page load → VM ready`, seconds(median(results.map((r) => r.ready))));
}

async function rawThroughput(browser, base) {
  const { context, page } = await newPage(browser, base, { autoboot: false, quiet: true });
  try {
    await page.goto('/packages');
    await page.waitForSelector('body[data-hydrated="true"]', { timeout: 60_000 });
    const catalog = await (await fetch(`${base}/api/package_catalog`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' })).json();
    const files = [...new Set(catalog.entries.flatMap((entry) => entry.debPackages))];
    const result = await page.evaluate(
      async ([prefix, names]) => {
        let bytes = 0;
        let downloadMs = 0;
        let hashMs = 0;
        for (const name of names) {
          const t0 = performance.now();
          const buffer = await (await fetch(prefix + name, { cache: 'no-store' })).arrayBuffer();
          const t1 = performance.now();
          await crypto.subtle.digest('SHA-256', buffer);
          const t2 = performance.now();
          bytes += buffer.byteLength;
          downloadMs += t1 - t0;
          hashMs += t2 - t1;
        }
        return { bytes, downloadMs, hashMs, files: names.length };
      },
      [catalog.filesBaseUrl, files],
    );
    const mib = result.bytes / 1048576;
    figure('raw download (all catalog .debs)', `${result.files} files, ${mib.toFixed(1)} MiB in ${seconds(result.downloadMs)} (${(mib / (result.downloadMs / 1000)).toFixed(1)} MiB/s)`);
    figure('raw WebCrypto SHA-256', `${mib.toFixed(1)} MiB in ${seconds(result.hashMs)} (${(mib / (result.hashMs / 1000)).toFixed(0)} MiB/s)`);
  } finally {
    await context.close();
  }
}

const p = paths();
const browser = await launchChromium();
const noLayers = fs.mkdtempSync(path.join(os.tmpdir(), 'webvm-no-layers-'));
try {
  for (const route of PATHS) {
    const env = route === 'dpkg' ? { WEBVM_LAYERS_DIR: noLayers } : {};
    const server = await startServer(p, { env });
    try {
      for (const id of TARGETS) await install(browser, server.base, id, route);
      if (route === PATHS[PATHS.length - 1]) await rawThroughput(browser, server.base);
    } finally {
      await server.stop();
    }
  }
} finally {
  await browser.close();
}
console.log(`\nPackage figures:\n  ${figures.join('\n  ')}`);
