#!/usr/bin/env node
// Runtime package benchmark: prints figures, asserts nothing (not part of the test suite).
// From the server's boot snapshot, in a fresh browser profile for each runtime, it installs
// busybox-httpd, nginx and python-311 through the Packages page (download, WebCrypto
// SHA-256, dpkg in the guest) and reports, per runtime: click → installed, the recorded
// installDuration, and the download-and-verify throughput the installer logged. Then it
// measures raw in-browser download + SHA-256 throughput over every .deb of the catalog.
// Run it with scripts/bench-packages.sh (which sources scripts/setup.sh for the environment).
import { launchChromium, newPage, paths, seconds, startServer, waitForState } from '../../scripts/lib/webvm-harness.mjs';

const RUNTIMES = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const TARGETS = RUNTIMES.length > 0 ? RUNTIMES : ['busybox-httpd', 'nginx', 'python-311'];

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

async function install(browser, base, id) {
  const { context, page } = await newPage(browser, base, { quiet: true });
  try {
    const ready = await openPackages(page);
    figure(`${id}: page load → VM ready`, seconds(ready));
    const card = page.locator(`li.package-card[data-package="${id}"]`);
    const started = Date.now();
    await card.locator('button[data-action="install"]').click();
    const confirm = card.locator('button[data-action="confirm-install"]');
    if (await confirm.isVisible().catch(() => false)) await confirm.click();
    await page.waitForFunction(
      (pkg) => {
        const record = window.webvm.packageBook().records[pkg];
        return record && (record.status === 'installed' || record.status === 'error');
      },
      id,
      { timeout: 900_000, polling: 500 },
    );
    const book = await page.evaluate(() => window.webvm.packageBook());
    const record = book.records[id];
    if (record.status !== 'installed') {
      figure(`${id}: FAILED`, record.error ?? 'unknown error');
      return;
    }
    figure(`${id}: click → installed (incl. VM checkpoint)`, seconds(Date.now() - started));
    figure(`${id}: installDuration (download → dpkg → scripts)`, seconds(record.installDuration ?? 0));
    const operation = [...book.operations].reverse().find((op) => op.packageId === id && op.operation === 'install');
    const verified = operation?.logs.find((line) => line.includes('files verified'));
    if (verified) figure(`${id}: download + verify`, verified.replace(/^\[\s*[\d.]+s\] all /, ''));
    const saved = operation?.logs.find((line) => line.startsWith('VM state saved'));
    if (saved) figure(`${id}: checkpoint`, saved);
  } finally {
    await context.close();
  }
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
const server = await startServer(p);
const browser = await launchChromium();
try {
  for (const id of TARGETS) await install(browser, server.base, id);
  await rawThroughput(browser, server.base);
} finally {
  await browser.close();
  await server.stop();
}
console.log(`\nPackage figures:\n  ${figures.join('\n  ')}`);
