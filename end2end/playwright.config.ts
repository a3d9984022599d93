// Playwright: Debian's Chromium (never a downloaded browser) against the release server.
import { defineConfig } from '@playwright/test';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { ROOT, SERVER_BIN, SOURCE_ORIGIN, SOURCE_PORT, serverEnv } from './fixtures/server-env';

const port = Number(process.env.E2E_PORT ?? 3000);
const baseURL = `http://127.0.0.1:${port}`;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webvm-e2e-'));
const root = ROOT;

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
    command: `node fixtures/source-server.mjs ${SOURCE_PORT}`,
    url: `${SOURCE_ORIGIN}/site.tar.gz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
  },
  {
    // scripts/test.sh exports WEBVM_SERVER_BIN (the release build in the cached target dir).
    command: SERVER_BIN,
    url: `${baseURL}/healthz`,
    reuseExistingServer: true,
    timeout: 60_000,
    stdout: 'pipe',
    env: serverEnv(port, dataDir, guestDir()),
  },
  ],
});
