#!/usr/bin/env node
// Request-bridge benchmark: prints figures, asserts nothing (not part of the test suite).
// From the server's boot snapshot it creates and deploys a small static site (busybox httpd,
// which the guest image carries), starts it through window.webvm.startApp, opens a second tab
// at /apps/bench-bridge/ (the service worker forwards to the first tab's VM), then prints:
//   - the median latency of a small GET through /apps/<name>/, the raw page → guest request
//     over connect(port) in the same run (window.webvm.tcpRequest, taken in turns with the
//     bridged ones), and their ratio (goal ≤ 2×);
//   - the throughput of a 1 MiB response through the bridge;
//   - 10 concurrent small GETs: the wall time for all of them.
// Usage: scripts/bench-bridge.sh [--runs=N]   (N small GETs per side, default 30)
import { randomBytes } from 'node:crypto';

import { launchChromium, newPage, openDashboard, paths, startServer, vmSource, seconds, waitForState } from '../../scripts/lib/webvm-harness.mjs';

const args = process.argv.slice(2);
const RUNS = Math.max(5, Number.parseInt(args.find((a) => a.startsWith('--runs='))?.split('=')[1] ?? '30', 10) || 30);
const APP = 'bench-bridge';
const MiB = 1024 * 1024;

const figures = [];
const figure = (label, value) => {
  figures.push(`${label.padEnd(56)} ${value}`);
  console.log(`[bridge bench] ${label}: ${value}`);
};
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

async function main() {
  const p = paths();
  const server = await startServer(p);
  const browser = await launchChromium();
  try {
    const { context, page } = await newPage(browser, server.base, { quiet: true });
    const big = randomBytes(MiB).toString('base64').slice(0, MiB);
    await context.route(`${server.base}/__bench/big.txt`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: big }));
    await openDashboard(page);
    await page.waitForFunction(() => typeof window.webvm?.startApp === 'function', null, { timeout: 30_000 });
    await waitForState(page, 'ready', 360_000);
    console.log(`[bridge bench] VM from ${await vmSource(page)}`);
    const port = await page.evaluate(async (name) => {
      for (let attempt = 0; ; attempt += 1) {
        const draft = window.webvm.newDraft('static-busybox');
        const current = `/srv/apps/${name}/current`;
        draft.name = name;
        draft.deployment.deploymentPath = `/srv/apps/${name}`;
        draft.execution.workingDirectory = current;
        draft.execution.arguments = ['httpd', '-f', '-p', String(draft.execution.port), '-h', current];
        // busybox is in the guest image: no runtime install needed for the bench.
        draft.runtime.requiredRuntimes = [];
        try {
          const saved = await window.webvm.saveApp(draft);
          return saved.execution.port;
        } catch (error) {
          if (attempt > 240) throw error;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    }, APP);
    const deployed = await page.evaluate(async (name) => {
      const bigText = await (await fetch('/__bench/big.txt')).text();
      return window.webvm.deployFiles(name, [
        { path: 'index.html', data: '<!doctype html><title>bench</title><p>small</p>\n' },
        { path: 'big.txt', data: bigText },
      ]);
    }, APP);
    if (deployed.status !== 'completed') throw new Error(`deploy failed: ${deployed.error}`);
    const startClicked = Date.now();
    await page.evaluate((name) => window.webvm.startApp(name), APP);
    await page.waitForFunction(
      (name) => Object.values(window.webvm.appBook().applications).find((a) => a.name === name)?.status === 'running',
      APP,
      { timeout: 120_000, polling: 250 },
    );
    figure('startApp → running (busybox httpd)', seconds(Date.now() - startClicked));

    const tab = await context.newPage();
    await tab.goto(`${server.base}/apps/${APP}/`);
    await tab.waitForFunction(() => document.body?.textContent?.includes('small'), null, { timeout: 60_000 });
    // Raw (page → guest over connect(port), in the VM tab) and bridged (a fetch in the app's
    // tab) in turns, so that both meet the same emulator load; each timed inside its page.
    const raw = [];
    const bridged = [];
    for (let i = 0; i < RUNS; i += 1) {
      raw.push(await page.evaluate(async (guestPort) => {
        const start = performance.now();
        await window.webvm.tcpRequest(guestPort, 'GET /index.html HTTP/1.0\r\nHost: bench\r\n\r\n', 10_000);
        return performance.now() - start;
      }, port));
      bridged.push(await tab.evaluate(async (name) => {
        const start = performance.now();
        await (await fetch(`/apps/${name}/index.html`, { cache: 'no-store' })).text();
        return performance.now() - start;
      }, APP));
    }
    const rawMedian = median(raw);
    const bridgedMedian = median(bridged);
    figure(`small GET, raw connect(port) (median of ${RUNS})`, `${rawMedian.toFixed(1)} ms`);
    figure(`small GET through /apps/${APP}/ (median of ${RUNS})`, `${bridgedMedian.toFixed(1)} ms`);
    const ratio = bridgedMedian / rawMedian;
    figure('bridge / raw', `${ratio.toFixed(2)}×   [goal ≤ 2×: ${ratio <= 2 ? 'within' : 'over'}]`);

    const big1 = await tab.evaluate(async (name) => {
      const results = [];
      for (let i = 0; i < 3; i += 1) {
        const start = performance.now();
        const bytes = (await (await fetch(`/apps/${name}/big.txt`, { cache: 'no-store' })).arrayBuffer()).byteLength;
        results.push({ bytes, ms: performance.now() - start });
      }
      return results;
    }, APP);
    const best = big1.reduce((a, b) => (a.ms < b.ms ? a : b));
    figure('1 MiB response through the bridge (best of 3)', `${best.ms.toFixed(0)} ms, ${(best.bytes / MiB / (best.ms / 1000)).toFixed(2)} MiB/s`);

    const concurrent = await tab.evaluate(async (name) => {
      const start = performance.now();
      const statuses = await Promise.all(Array.from({ length: 10 }, () => fetch(`/apps/${name}/index.html`, { cache: 'no-store' }).then((r) => r.status)));
      return { ms: performance.now() - start, ok: statuses.filter((s) => s === 200).length };
    }, APP);
    figure('10 concurrent small GETs (wall time, 200s)', `${concurrent.ms.toFixed(0)} ms, ${concurrent.ok}/10`);
    await tab.close();
    await context.close();
  } finally {
    await browser.close();
    await server.stop();
    console.log(`\nBridge figures:\n  ${figures.join('\n  ')}`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
