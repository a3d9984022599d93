// Playwright: Debian's Chromium (never a downloaded browser) against the release server.
import { defineConfig } from '@playwright/test';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';

const port = Number(process.env.E2E_PORT ?? 3000);
const baseURL = `http://127.0.0.1:${port}`;
// The local origin of the url and github deploy tests (fixtures/source-server.mjs).
const sourcePort = Number(process.env.E2E_SOURCE_PORT ?? 3917);
const SOURCE_ORIGIN = `http://127.0.0.1:${sourcePort}`;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webvm-e2e-'));
const root = path.resolve(__dirname, '..');

// The guest image the server serves (tests/vm.spec.ts boots it): WEBVM_GUEST_DIR if set,
// else whatever guest/build.sh prints as its last line (instant when the image is cached; a
// build needs root and a few minutes). Stored in the environment so Playwright's workers,
// which load this file again, reuse it.
function guestDir(): string {
  const given = process.env.WEBVM_GUEST_DIR;
  if (given && fs.existsSync(path.join(given, 'manifest.json'))) return given;
  try {
    const out = execFileSync('bash', [path.join(root, 'guest', 'build.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 20 * 60_000,
    });
    const dir = out.trim().split('\n').pop() ?? '';
    if (dir && fs.existsSync(path.join(dir, 'manifest.json'))) {
      process.env.WEBVM_GUEST_DIR = dir;
      return dir;
    }
    console.warn(`guest/build.sh printed no image directory (${dir}); the VM tests will fail`);
  } catch (error) {
    console.warn(`guest/build.sh failed (${error}); the VM tests will fail`);
  }
  return '';
}

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  outputDir: 'test-results',
  use: {
    baseURL,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
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
    },
  },
  webServer: [
  {
    command: `node fixtures/source-server.mjs ${sourcePort}`,
    url: `${SOURCE_ORIGIN}/site.tar.gz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
  },
  {
    // scripts/test.sh exports WEBVM_SERVER_BIN (the release build in the cached target dir).
    command: process.env.WEBVM_SERVER_BIN ?? '../target/release/webvm-appserver',
    url: `${baseURL}/healthz`,
    reuseExistingServer: true,
    timeout: 60_000,
    stdout: 'pipe',
    env: {
      WEBVM_ADDR: `127.0.0.1:${port}`,
      WEBVM_DATA_DIR: dataDir,
      LEPTOS_SITE_ROOT: '../target/site',
      RUST_LOG: 'info',
      WEBVM_GUEST_DIR: guestDir(),
      WEBVM_V86_DIR: path.join(root, 'node_modules', 'v86', 'build'),
      WEBVM_XTERM_DIR: path.join(root, 'node_modules', '@xterm'),
      // The tampered-demo runtime (catalog/test-fixtures.toml) that tests/packages.spec.ts installs.
      WEBVM_TEST_FIXTURES: '1',
      // The deploy tests' local origin: allowed by the fetch policy (nothing else on
      // loopback is), GitHub's API served by it, and a 1 MiB cap for the oversized test.
      WEBVM_FETCH_ALLOW_HOSTS: `127.0.0.1:${sourcePort}`,
      WEBVM_GITHUB_API_URL: `${SOURCE_ORIGIN}/github`,
      WEBVM_FETCH_MAX_BYTES: '1048576',
    },
  },
  ],
});
