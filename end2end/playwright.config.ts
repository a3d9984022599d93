// Playwright: Debian's Chromium (never a downloaded browser) against the release server.
import { defineConfig } from '@playwright/test';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';

const port = Number(process.env.E2E_PORT ?? 3000);
const baseURL = `http://127.0.0.1:${port}`;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webvm-e2e-'));

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
  webServer: {
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
    },
  },
});
