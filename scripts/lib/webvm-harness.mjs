// Shared by scripts/build-boot-snapshot.mjs and end2end/bench/vm-bench.mjs: starts the release
// server on a free loopback port with a temporary data directory, launches Debian's Chromium
// through Playwright (from end2end/node_modules, never a downloaded browser) and drives the
// page's VM through its `window.webvm` hook.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where the build put things, from the environment scripts/setup.sh exports. */
export function paths() {
  const target = process.env.CARGO_TARGET_DIR ?? path.join(os.homedir(), '.cache', 'webvm-appserver', 'target');
  const guestDir = process.env.WEBVM_GUEST_DIR ?? '';
  if (!guestDir || !fs.existsSync(path.join(guestDir, 'manifest.json'))) {
    throw new Error('WEBVM_GUEST_DIR does not name a guest image: source scripts/setup.sh first');
  }
  const serverBin = process.env.WEBVM_SERVER_BIN ?? path.join(target, 'release', 'webvm-appserver');
  if (!fs.existsSync(serverBin)) {
    throw new Error(`no server binary at ${serverBin}: run cargo leptos build --release first`);
  }
  // cargo-leptos writes the site under the project (site-root in Cargo.toml), not the target dir.
  const siteRoot = process.env.LEPTOS_SITE_ROOT ?? path.join(ROOT, 'target', 'site');
  if (!fs.existsSync(path.join(siteRoot, 'pkg'))) {
    throw new Error(`no built site at ${siteRoot}: run cargo leptos build --release first`);
  }
  const v86Dir = process.env.WEBVM_V86_DIR ?? path.join(ROOT, 'node_modules', 'v86', 'build');
  return {
    guestDir,
    serverBin,
    siteRoot,
    v86Dir,
    xtermDir: process.env.WEBVM_XTERM_DIR ?? path.join(ROOT, 'node_modules', '@xterm'),
    packagesDir: process.env.WEBVM_PACKAGES_DIR,
  };
}

/** The v86 version the server serves (package.json without build metadata). */
export function v86Version(v86Dir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(v86Dir, '..', 'package.json'), 'utf8'));
  return String(pkg.version).split('+')[0];
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts the release server; resolves once /healthz answers. `stop()` ends it. */
export async function startServer(p, { log = false, env: extra = {} } = {}) {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webvm-harness-'));
  const env = {
    ...process.env,
    WEBVM_ADDR: `127.0.0.1:${port}`,
    WEBVM_DATA_DIR: dataDir,
    LEPTOS_SITE_ROOT: p.siteRoot,
    WEBVM_GUEST_DIR: p.guestDir,
    WEBVM_V86_DIR: p.v86Dir,
    WEBVM_XTERM_DIR: p.xtermDir,
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
  };
  if (p.packagesDir) env.WEBVM_PACKAGES_DIR = p.packagesDir;
  Object.assign(env, extra);
  const child = spawn(p.serverBin, [], { env, stdio: ['ignore', log ? 'inherit' : 'ignore', 'inherit'] });
  let exited = null;
  child.on('exit', (code) => (exited = code ?? -1));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== null) throw new Error(`the server exited with ${exited} while starting`);
    try {
      const response = await fetch(`${base}/healthz`);
      if (response.ok) break;
    } catch (_) {
      // not up yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error('the server did not answer /healthz within 60 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    base,
    async stop() {
      if (exited === null) {
        child.kill('SIGTERM');
        await new Promise((resolve) => {
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, 5_000);
          child.on('exit', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium through Playwright's API, from end2end/node_modules. */
export async function launchChromium() {
  const require = createRequire(path.join(ROOT, 'end2end', 'package.json'));
  const { chromium } = require('@playwright/test');
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** A new page in its own context (its own IndexedDB); page errors and VM logs are printed. */
export async function newPage(browser, base, { autoboot = true, quiet = false } = {}) {
  const context = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  if (!autoboot) {
    await context.addInitScript(() => localStorage.setItem('webvm.autoboot', 'off'));
  }
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));
  if (!quiet) {
    page.on('console', (message) => {
      if (message.text().startsWith('VM')) console.log(`[page] ${message.text()}`);
    });
  }
  return { context, page };
}

/** Opens the dashboard and waits for hydration and the hook. */
export async function openDashboard(page) {
  await page.goto('/');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 60_000 });
  await page.waitForFunction(() => !!window.webvm, null, { timeout: 30_000 });
}

/** Waits until the VM is in `wanted`; an `error` state throws with its message. */
export async function waitForState(page, wanted, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await page.evaluate(() => window.webvm.status());
    if (status.state === wanted) return;
    if (status.state === 'error') throw new Error(`the VM failed: ${status.errorMessage}`);
    if (Date.now() > deadline) throw new Error(`the VM is ${status.state}, not ${wanted}, after ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export function exec(page, command, args = [], options = {}) {
  return page.evaluate(([c, a, o]) => window.webvm.exec(c, a, o), [command, args, options]);
}

/** `data-source` of the VM panel: cold, hibernation or boot-snapshot. */
export function vmSource(page) {
  return page.locator('section.vm-panel').getAttribute('data-source');
}

export const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
export const mebibytes = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;
