// Running applications, end to end (issue 11), in the real guest, in one page whose VM comes
// from the server's boot snapshot:
//   1. a static site on busybox-httpd, started from its page, opens at /apps/hello/ in a new
//      tab through the service worker: the page, a binary image, and a POST to a CGI script;
//   2. `sh -c 'exit 3'` under on-failure with 3 retries restarts with growing delays
//      (100, 200, 400 ms), then stays down, failed, with the count shown;
//   3. a health path that starts failing turns the app unhealthy after `retries` probes, and
//      with "restart when unhealthy" on, the supervisor restarts it;
//   4. a shell that allocates past its 16 MB limit (cgroup v2 memory.max) is OOM-killed, and
//      lastError says so;
//   5. a reload (the VM resumes from this browser's checkpoint) adopts the running app: same
//      start time, no restart, still served;
//   5b. a second tab leaves the VM to the first (one tab runs it: a Web Lock), then takes it
//      over: the first saves and lets go, the second resumes with hello still running;
//   6. the metrics count the requests this test made through the bridge; memory, CPU and
//      disk are sampled in the guest and drawn in SVG charts;
//   6c. a backup with the VM (the archive) is refused when tampered, and restored into a
//      fresh browser profile: runtimes, files and the running app come back, and it serves;
//   7. the Logs tab follows and filters by source and text;
//   9. screenshots at 1280 and 390 px.
// Apps are created and deployed through window.webvm (the deploy UI has its own suite);
// starting, stopping and reading the results are clicks and the page. Figures are printed.
import { test, expect, type Page, type BrowserContext } from '@playwright/test';
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';

const SCREENSHOTS = 'screenshots';
fs.mkdirSync(SCREENSHOTS, { recursive: true });

const VM_READY_MS = 300_000;
const INSTALL_MS = 240_000;
const START_MS = 120_000;

type LogEntry = { timestamp: string; level: string; message: string; source: string };
type AppRecord = {
  id: string;
  name: string;
  status: string;
  lastStarted?: string;
  healthCheck?: { status: string; failingStreak: number; log: { outcome: string; output: string }[] };
  execution: Record<string, any>;
  metrics: {
    restartCount: number; lastError?: string; requestCount: number; recentLogs: LogEntry[]; healthStatus: string;
    memoryUsage: number; cpuUsage: number; diskUsage: number;
  };
};
type Hook = {
  state(): string;
  exec(command: string, args?: string[]): Promise<{ exitCode: number | null; stdout: string; stderr: string }>;
  appBook(): { applications: Record<string, AppRecord> };
  newDraft(preset: string): Record<string, any>;
  saveApp(application: object): Promise<Record<string, any>>;
  deployFiles(name: string, files: { path: string; data: string | Uint8Array; executable?: boolean }[]): Promise<{ status: string; error?: string }>;
  startApp(name: string): Promise<void>;
  stopApp(name: string): Promise<void>;
};
type HookWindow = { webvm: Hook };

let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];
const figures: string[] = [];
const figure = (label: string, value: string) => {
  figures.push(`${label.padEnd(52)} ${value}`);
  console.log(`[run figure] ${label}: ${value}`);
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

// A 1×1 PNG (binary through the bridge).
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);
// 300 KiB and a bit of bytes that are not text (an odd size: the last segment is partial).
const BLOB = Buffer.from(Array.from({ length: 300 * 1024 + 123 }, (_, i) => (i * 131 + 7) % 256));
const BLOB_SHA256 = createHash('sha256').update(BLOB).digest('hex');
const INDEX = '<!doctype html><html><head><meta charset="utf-8"><title>hello</title></head>' +
  '<body><h1>Hello from the VM</h1><img id="logo" src="logo.png" alt="logo"></body></html>\n';
// busybox httpd passes a CGI's output through when it starts with a status line.
const ECHO_CGI = '#!/bin/sh\nprintf "HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n"\n' +
  'echo "method=$REQUEST_METHOD"\nhead -c "${CONTENT_LENGTH:-0}"\n';
const HEALTH_CGI = '#!/bin/sh\nif [ -e /tmp/e2e-sick ]; then\n' +
  '  printf "HTTP/1.0 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nsick\\n"\n' +
  'else\n  printf "HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nok\\n"\nfi\n';

async function vmReady(): Promise<void> {
  await expect
    .poll(async () => page.evaluate(() => (window as unknown as Partial<HookWindow>).webvm?.state() ?? 'no-hook'),
      { timeout: VM_READY_MS, intervals: [500, 1000] })
    .toBe('ready');
}

async function app(name: string): Promise<AppRecord> {
  const found = await page.evaluate(
    (wanted) => Object.values((window as unknown as HookWindow).webvm.appBook().applications).find((a) => a.name === wanted),
    name,
  );
  if (!found) throw new Error(`no application named ${name}`);
  return found as AppRecord;
}

async function waitForStatus(name: string, wanted: RegExp, timeout = START_MS): Promise<AppRecord> {
  let last: AppRecord | undefined;
  await expect
    .poll(async () => {
      last = await app(name);
      return last.status;
    }, { timeout, intervals: [250, 500, 1000] })
    .toMatch(wanted);
  return last!;
}

/** Creates a busybox-httpd app named `name` from the preset and deploys `files` into it. */
async function createAndDeploy(
  name: string,
  files: { path: string; data: string | Uint8Array; executable?: boolean }[],
  execution: Record<string, unknown> = {},
): Promise<void> {
  const saved = await page.evaluate(
    async ([wanted, patch]) => {
      const hook = (window as unknown as HookWindow).webvm;
      const draft = hook.newDraft('static-busybox');
      draft.name = wanted;
      draft.deployment.deploymentPath = `/srv/apps/${wanted}`;
      const current = `/srv/apps/${wanted}/current`;
      draft.execution.workingDirectory = current;
      draft.execution.arguments = ['httpd', '-f', '-p', String(draft.execution.port), '-h', current];
      Object.assign(draft.execution, patch);
      try {
        await hook.saveApp(draft);
        return 'saved';
      } catch (error) {
        return String(error);
      }
    },
    [name, execution] as const,
  );
  expect(saved).toBe('saved');
  const deployed = await page.evaluate(
    async ([wanted, list]) => (window as unknown as HookWindow).webvm.deployFiles(wanted as string, (list as any[]).map((file) => ({
      ...file,
      data: typeof file.data === 'string' ? file.data : new Uint8Array(file.data),
    }))),
    [name, files.map((file) => ({ ...file, data: typeof file.data === 'string' ? file.data : Array.from(file.data) }))] as const,
  );
  expect(deployed.status, deployed.error).toBe('completed');
}

/** Opens the app's page (a page load: the VM resumes from this browser's checkpoint). */
async function openApp(name: string, tab = 'overview'): Promise<void> {
  await page.goto(`/applications/${name}?tab=${tab}`);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await vmReady();
}

test.describe.serial('running applications', () => {
  test.beforeAll(async ({ browser }) => {
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  test.afterAll(async () => {
    console.log(`\nRun figures:\n  ${figures.join('\n  ')}`);
    await context?.close();
  });

  test('1. a static site starts and opens at /apps/hello/ in a new tab: page, image and a CGI POST', async () => {
    test.setTimeout(VM_READY_MS + INSTALL_MS + 3 * START_MS);
    await page.goto('/packages');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await vmReady();
    const card = page.locator('li.package-card[data-package="busybox-httpd"]');
    if ((await card.getAttribute('data-status')) !== 'installed') {
      await card.locator('button[data-action="install"]').click();
      await expect(card).toHaveAttribute('data-status', 'installed', { timeout: INSTALL_MS });
    }
    await createAndDeploy('hello', [
      { path: 'index.html', data: INDEX },
      { path: 'logo.png', data: new Uint8Array(PNG) },
      { path: 'cgi-bin/echo', data: ECHO_CGI, executable: true },
      { path: 'blob.bin', data: new Uint8Array(BLOB) },
    ]);

    await openApp('hello');
    const started = Date.now();
    await page.getByTestId('app-start').click();
    await expect(page.getByTestId('run-status')).toContainText(/starting|running/);
    await waitForStatus('hello', /^running$/);
    figure('hello: click Start → running', seconds(Date.now() - started));
    await expect(page.getByTestId('run-status')).toContainText('running');
    await expect(page.getByTestId('app-open')).toBeVisible();
    await page.screenshot({ path: `${SCREENSHOTS}/run-hello-running-1280.png`, fullPage: true });

    // A new tab, as a user opening the link: the bootstrap page installs the worker, reloads,
    // and the worker forwards to this tab's VM.
    const tab = await context.newPage();
    const opened = Date.now();
    await tab.goto('/apps/hello/');
    await expect(tab.getByRole('heading', { level: 1 })).toHaveText('Hello from the VM', { timeout: 60_000 });
    figure('new tab /apps/hello/ → page shown', seconds(Date.now() - opened));
    await expect.poll(() => tab.evaluate(() => {
      const image = document.getElementById('logo') as HTMLImageElement | null;
      return image ? image.complete && image.naturalWidth : -1;
    }), { timeout: 30_000 }).toBe(1);
    const image = await tab.evaluate(async () => {
      const response = await fetch('/apps/hello/logo.png');
      return { status: response.status, type: response.headers.get('content-type'), bytes: (await response.arrayBuffer()).byteLength };
    });
    expect(image.status).toBe(200);
    expect(image.bytes).toBe(PNG.length);
    // A larger binary, byte for byte: its last bytes come in the segment that carries the
    // server's FIN (v86 dropped those; js/v86_bridge.js hands them on).
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const blob = await tab.evaluate(async () => {
        const response = await fetch('/apps/hello/blob.bin', { cache: 'no-store' });
        const bytes = new Uint8Array(await response.arrayBuffer());
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
        return { status: response.status, length: bytes.length, sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('') };
      });
      expect(blob).toEqual({ status: 200, length: BLOB.length, sha256: BLOB_SHA256 });
    }
    const posted = await tab.evaluate(async () => {
      const response = await fetch('/apps/hello/cgi-bin/echo', { method: 'POST', body: 'name=webvm&x=1' });
      return { status: response.status, text: await response.text() };
    });
    expect(posted.status).toBe(200);
    expect(posted.text).toContain('method=POST');
    expect(posted.text).toContain('name=webvm&x=1');
    await tab.screenshot({ path: `${SCREENSHOTS}/run-hello-bridge-1280.png`, fullPage: true });

    // Latency of a small GET through the bridge (printed, not asserted).
    const timings = await tab.evaluate(async () => {
      const times: number[] = [];
      for (let i = 0; i < 5; i += 1) {
        const start = performance.now();
        await (await fetch('/apps/hello/index.html', { cache: 'no-store' })).text();
        times.push(performance.now() - start);
      }
      return times.sort((a, b) => a - b);
    });
    figure('GET /apps/hello/index.html through the bridge (median of 5)', `${timings[2].toFixed(0)} ms`);
    await tab.close();

    // 6. The requests counted (index + logo + the fetches above: at least 9).
    await expect.poll(async () => (await app('hello')).metrics.requestCount, { timeout: 15_000 }).toBeGreaterThanOrEqual(9);
    await expect(page.getByTestId('app-requests')).not.toContainText(/^Requests0$/);
  });

  test('2. exit 3 under on-failure:3 restarts with growing delays, then stays down with the count', async () => {
    test.setTimeout(3 * START_MS);
    await createAndDeploy('crashy', [{ path: 'index.html', data: 'x' }], {
      command: 'sh',
      arguments: ['-c', 'echo about to fail; exit 3'],
      restartPolicy: 'on-failure',
      autoRestart: true,
      maxRetries: 3,
      healthCheckConfig: null,
    });
    await openApp('crashy');
    await page.getByTestId('app-start').click();
    const record = await waitForStatus('crashy', /^failed$/);
    expect(record.metrics.restartCount).toBe(3);
    expect(record.metrics.lastError).toContain('exited with code 3');
    expect(record.metrics.lastError).toContain('gave up after 3 restarts');
    const delays = record.metrics.recentLogs
      .map((entry) => /restarting in (\d+) ms/.exec(entry.message)?.[1])
      .filter(Boolean)
      .map(Number);
    expect(delays).toEqual([100, 200, 400]);
    expect(record.metrics.recentLogs.filter((entry) => entry.source === 'application').map((e) => e.message)).toContain('about to fail');
    await expect(page.getByTestId('run-status')).toContainText('failed');
    await expect(page.getByTestId('app-restarts')).toContainText('3');
    await expect(page.getByTestId('app-last-error')).toContainText('gave up after 3 restarts');
    await page.screenshot({ path: `${SCREENSHOTS}/run-crashy-failed-1280.png`, fullPage: true });
  });

  test('3. a failing health path turns unhealthy after its retries and, opted in, restarts', async () => {
    test.setTimeout(4 * START_MS);
    await page.evaluate(() => (window as unknown as HookWindow).webvm.exec('rm', ['-f', '/tmp/e2e-sick']));
    await createAndDeploy('sick', [
      { path: 'index.html', data: 'ok' },
      { path: 'cgi-bin/health', data: HEALTH_CGI, executable: true },
    ], {
      healthCheckConfig: {
        enabled: true, path: '/cgi-bin/health', interval: 2, timeout: 5, retries: 2, startPeriod: 0,
        startInterval: 1, restartOnUnhealthy: true,
      },
    });
    await openApp('sick');
    await page.getByTestId('app-start').click();
    let record = await waitForStatus('sick', /^running$/);
    expect(record.healthCheck?.status).toBe('healthy');
    const firstStart = record.lastStarted;
    await page.evaluate(() => (window as unknown as HookWindow).webvm.exec('touch', ['/tmp/e2e-sick']));
    // Unhealthy after 2 failed probes, then restarted by the policy.
    await expect.poll(async () => {
      record = await app('sick');
      return record.metrics.recentLogs.some((entry) => entry.message === 'health: unhealthy');
    }, { timeout: START_MS, intervals: [500, 1000] }).toBe(true);
    expect(record.healthCheck?.log.some((probe) => probe.outcome === 'failed' && probe.output.includes('500'))).toBe(true);
    await page.evaluate(() => (window as unknown as HookWindow).webvm.exec('rm', ['-f', '/tmp/e2e-sick']));
    await expect.poll(async () => {
      record = await app('sick');
      return record.status === 'running' && record.lastStarted !== firstStart;
    }, { timeout: START_MS, intervals: [500, 1000] }).toBe(true);
    expect(record.metrics.restartCount).toBe(1);
    await page.screenshot({ path: `${SCREENSHOTS}/run-sick-restarted-1280.png`, fullPage: true });
    await page.getByTestId('app-stop').click();
    await waitForStatus('sick', /^stopped$/);
  });

  test('4. a process that allocates past its memory limit is killed, and the page says so', async () => {
    test.setTimeout(2 * START_MS);
    await createAndDeploy('hog', [{ path: 'index.html', data: 'x' }], {
      command: 'sh',
      // Doubles a shell string until the 16 MB group's limit stops it.
      arguments: ['-c', 'x=0123456789abcdef; while :; do x="$x$x"; done'],
      restartPolicy: 'never',
      memoryLimit: 16,
      healthCheckConfig: null,
      // The limit, not the startup timeout, must end it: on a slow or busy machine the
      // doubling took longer than the default 20 s (seconds).
      timeout: 90,
    });
    await openApp('hog');
    await page.getByTestId('app-start').click();
    const record = await waitForStatus('hog', /^error$/);
    expect(record.metrics.lastError).toContain('out of memory');
    expect(record.metrics.lastError).toContain('16 MB');
    await expect(page.getByTestId('app-last-error')).toContainText('out of memory');
    await page.screenshot({ path: `${SCREENSHOTS}/run-hog-oom-1280.png`, fullPage: true });
  });

  test('5. a reload resumes the VM with hello still running: adopted, not restarted, and it serves', async () => {
    test.setTimeout(START_MS);
    const before = await app('hello');
    expect(before.status).toBe('running');
    await openApp('hello');
    const after = await waitForStatus('hello', /^running$/);
    expect(after.lastStarted).toBe(before.lastStarted);
    expect(after.metrics.recentLogs.some((entry) => entry.message.startsWith('adopted: the VM resumed with it running'))).toBe(true);
    // 9. the VM's events are in the app's log, as `webvm` entries.
    expect(after.metrics.recentLogs.some((entry) => entry.source === 'webvm' && entry.message.startsWith('VM ready: restored from'))).toBe(true);
    const tab = await context.newPage();
    await tab.goto('/apps/hello/');
    await expect(tab.getByRole('heading', { level: 1 })).toHaveText('Hello from the VM', { timeout: 60_000 });
    await tab.close();
  });

  test('5b. a second tab leaves the VM to the first, then takes it over: hello runs on there', async () => {
    const before = await app('hello');
    expect(before.status).toBe('running');
    const second = await context.newPage();
    second.on('pageerror', (error) => pageErrors.push(error.message));
    await second.goto('/applications/hello?tab=overview');
    await expect(second.locator('body')).toHaveAttribute('data-hydrated', 'true');
    const banner = second.getByTestId('vm-elsewhere');
    await expect(banner).toHaveAttribute('data-ownership', 'other-tab', { timeout: 30_000 });
    await expect(banner).toContainText('The VM runs in another tab');
    expect(await second.evaluate(() => (window as unknown as HookWindow).webvm.state())).toBe('unloaded');
    await expect(page.getByTestId('vm-elsewhere')).toHaveCount(0);
    await second.screenshot({ path: `${SCREENSHOTS}/run-second-tab-1280.png`, fullPage: true });

    // Take over: the first tab saves its VM and reloads without it; the second resumes it.
    const asked = Date.now();
    await second.getByTestId('vm-take-over').click();
    await expect(page.getByTestId('vm-elsewhere')).toHaveAttribute('data-ownership', 'other-tab', { timeout: 120_000 });
    const first = page;
    page = second;
    await vmReady();
    figure('take-over click → VM ready in the second tab', seconds(Date.now() - asked));
    const after = await waitForStatus('hello', /^running$/);
    expect(after.lastStarted).toBe(before.lastStarted);
    expect(await first.evaluate(() => (window as unknown as HookWindow).webvm.state())).toBe('unloaded');
    await expect(second.getByTestId('vm-elsewhere')).toHaveCount(0);
    const tab = await context.newPage();
    await tab.goto('/apps/hello/');
    await expect(tab.getByRole('heading', { level: 1 })).toHaveText('Hello from the VM', { timeout: 60_000 });
    await tab.close();
    await first.screenshot({ path: `${SCREENSHOTS}/run-handed-over-1280.png`, fullPage: true });
    await first.close();
  });

  test('6. the metrics panel: memory, CPU and disk sampled in the guest, traffic through the bridge, live charts', async () => {
    test.setTimeout(START_MS);
    // The page still shows hello's Overview (the tab that took the VM over in 5b).
    await expect(page.getByTestId('app-metrics')).toBeVisible();
    const tab = await context.newPage();
    await tab.goto('/apps/hello/');
    await expect(tab.getByRole('heading', { level: 1 })).toHaveText('Hello from the VM', { timeout: 60_000 });
    const before = (await app('hello')).metrics.requestCount;
    const statuses = await tab.evaluate(async () => {
      const out: number[] = [];
      for (let i = 0; i < 5; i += 1) out.push((await fetch(`/apps/hello/index.html?n=${i}`)).status);
      return out;
    });
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    await tab.close();
    await expect.poll(async () => (await app('hello')).metrics.requestCount, { timeout: 15_000 }).toBeGreaterThanOrEqual(before + 5);
    // Usage comes every 15 s: httpd's resident set is well above zero, its folder too.
    await expect.poll(async () => (await app('hello')).metrics.memoryUsage, { timeout: 45_000, intervals: [1000] }).toBeGreaterThan(0.1);
    await expect.poll(async () => (await app('hello')).metrics.diskUsage, { timeout: 45_000, intervals: [1000] }).toBeGreaterThan(0);
    const metrics = (await app('hello')).metrics;
    figure('hello memory / CPU / disk (guest sample)', `${metrics.memoryUsage.toFixed(2)} MB / ${metrics.cpuUsage.toFixed(1)} % / ${metrics.diskUsage.toFixed(3)} MB`);
    await expect(page.getByTestId('app-memory')).not.toContainText('—');
    await expect(page.getByTestId('app-request-rate')).not.toContainText(/^Request rate0\/min/, { timeout: 15_000 });
    await expect(page.getByTestId('app-response-time')).toContainText('p95');
    const chart = page.getByTestId('chart-live-memory');
    await expect.poll(async () => Number(await chart.getAttribute('data-points')), { timeout: 45_000 }).toBeGreaterThanOrEqual(1);
    await expect(chart.locator('path.chart__line')).toHaveAttribute('d', /^M[\d.]+,[\d.]+ L/);
    await expect(page.getByTestId('chart-history-requests')).toBeVisible();
    await page.getByTestId('app-metrics').screenshot({ path: `${SCREENSHOTS}/run-metrics-1280.png` });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByTestId('app-metrics').screenshot({ path: `${SCREENSHOTS}/run-metrics-390.png` });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test('6b. a public status page: made on the app page, read without JavaScript in another browser, revoked', async ({ browser }) => {
    test.setTimeout(START_MS + 60_000);
    await openApp('hello');
    await page.getByTestId('status-link-expiry').selectOption({ label: '7 days' });
    await page.getByTestId('status-link-create').click();
    const link = page.getByTestId('status-link-new');
    await expect(link).toHaveValue(/\/status\/[0-9a-f]{64}$/);
    const url = await link.inputValue();
    await expect(page.locator('[data-testid="status-links"] li[data-state="live"]')).toHaveCount(1);
    await page.getByTestId('status-links-panel').screenshot({ path: `${SCREENSHOTS}/run-status-links-1280.png` });
    const visitor = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
    try {
      const reader = await visitor.newPage();
      // The VM's tab reports every minute; the page says "up" once a report has come.
      const started = Date.now();
      await expect
        .poll(async () => {
          await reader.goto(url);
          return reader.getByTestId('status-page').getAttribute('data-availability');
        }, { timeout: 90_000, intervals: [3000] })
        .toBe('up');
      figure('status page up after the link was made', `${((Date.now() - started) / 1000).toFixed(1)} s`);
      await expect(reader.getByTestId('status-summary')).toHaveText('The app is running and answering.');
      await expect(reader.getByTestId('status-uptime')).toContainText('24 h');
      await expect(reader.getByTestId('status-last-deploy')).toContainText('Last deployed');
      const html = await reader.content();
      for (const secretish of ['busybox', 'environment', 'secretEnvironment', 'recentLogs']) {
        expect(html, `the public page shows no ${secretish}`).not.toContain(secretish);
      }
      await reader.screenshot({ path: `${SCREENSHOTS}/status-page-1280.png`, fullPage: true });
      await reader.setViewportSize({ width: 390, height: 844 });
      await reader.screenshot({ path: `${SCREENSHOTS}/status-page-390.png`, fullPage: true });
      const response = await reader.request.get(url);
      expect(response.headers()['referrer-policy']).toBe('no-referrer');
      expect(response.headers()['x-robots-tag']).toContain('noindex');
      // Revoked on the app page: the link answers 404 at once.
      await page.getByTestId('status-link-revoke').click();
      await expect(page.locator('[data-testid="status-links"] li[data-state="revoked"]')).toHaveCount(1);
      const gone = await reader.goto(url);
      expect(gone?.status()).toBe(404);
    } finally {
      await visitor.close();
    }
  });

  test('6c. a backup with the VM: exported with hello running, refused when tampered, restored into a fresh browser where hello serves again', async ({ browser }) => {
    test.setTimeout(VM_READY_MS + 3 * START_MS);
    await page.goto('/backup');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await vmReady();
    const exportStarted = Date.now();
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: START_MS }),
      page.getByTestId('backup-archive-download').click(),
    ]);
    await expect(page.getByTestId('backup-archive-written')).toContainText('with their files');
    figure('backup with the VM: click → file offered', seconds(Date.now() - exportStarted));
    const archivePath = test.info().outputPath('webvm-backup.tar');
    await download.saveAs(archivePath);
    const archive = fs.readFileSync(archivePath);
    figure('backup with the VM: archive size', `${(archive.length / 1048576).toFixed(1)} MiB`);
    // A plain tar: the manifest first, then the backup, the records, the releases, the VM.
    expect(archive.subarray(0, 13).toString()).toBe('manifest.json');
    expect(archive.includes(Buffer.from('Hello from the VM'))).toBe(true); // hello's release, readable by any tar

    // Tampered copies: one byte of the snapshot changed; an entry renamed to escape; cut short.
    const flipped = Buffer.from(archive);
    flipped[flipped.length - 4096] ^= 0xff;
    const renamed = Buffer.from(archive);
    const manifestSize = parseInt(renamed.subarray(124, 136).toString().replace(/\0.*$/, '').trim(), 8);
    const second = 512 + Math.ceil(manifestSize / 512) * 512;
    renamed.fill(0, second, second + 100);
    renamed.write('../../etc/passwd', second);
    renamed.fill(0x20, second + 148, second + 156);
    let sum = 0;
    for (let i = second; i < second + 512; i += 1) sum += renamed[i];
    renamed.write(`${sum.toString(8).padStart(6, '0')}\0 `, second + 148);
    const truncated = archive.subarray(0, Math.floor(archive.length / 2));

    const fresh = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    try {
      const other = await fresh.newPage();
      const otherErrors: string[] = [];
      other.on('pageerror', (error) => otherErrors.push(error.message));
      await other.goto('/backup');
      await expect(other.locator('body')).toHaveAttribute('data-hydrated', 'true');
      const input = other.getByTestId('backup-import-file');
      await expect(input).toBeEnabled({ timeout: VM_READY_MS });
      for (const [name, bytes, expected] of [
        ['flipped.tar', flipped, /'vm\/state\.bin' has SHA-256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}/],
        ['renamed.tar', renamed, /'\.\.\/\.\.\/etc\/passwd', which no backup archive has/],
        ['truncated.tar', truncated, /cut short/],
      ] as const) {
        // Playwright takes at most 50 MB as a buffer: larger files go by path.
        const tamperedPath = test.info().outputPath(name);
        fs.writeFileSync(tamperedPath, bytes);
        await input.setInputFiles(tamperedPath);
        await expect(other.getByTestId('backup-import-refused')).toContainText(expected, { timeout: START_MS });
        await expect(other.getByTestId('backup-import-refused')).toContainText('Nothing was changed');
      }
      await other.getByTestId('backup-import-refused').screenshot({ path: `${SCREENSHOTS}/backup-archive-refused-1280.png` });
      const checked = Date.now();
      await input.setInputFiles(archivePath);
      const preview = other.getByTestId('backup-archive-preview');
      await expect(preview).toBeVisible({ timeout: START_MS });
      figure('backup with the VM: file picked → preview (all SHA-256s checked)', seconds(Date.now() - checked));
      await expect(other.getByTestId('backup-archive-snapshot')).toContainText('SHA-256 manifest');
      await expect(other.getByTestId('backup-archive-runtimes')).toContainText('busybox-httpd');
      await expect(other.getByTestId('backup-archive-replaces')).toContainText('nothing of yours is replaced');
      await expect(preview).toContainText('hello');
      await other.screenshot({ path: `${SCREENSHOTS}/backup-archive-preview-1280.png`, fullPage: true });
      await other.setViewportSize({ width: 390, height: 844 });
      await other.screenshot({ path: `${SCREENSHOTS}/backup-archive-preview-390.png`, fullPage: true });
      await other.setViewportSize({ width: 1280, height: 900 });

      const restoring = Date.now();
      await Promise.all([
        other.waitForEvent('load', { timeout: START_MS }),
        other.getByTestId('backup-import-restore').click(),
      ]);
      await expect(other.locator('body')).toHaveAttribute('data-hydrated', 'true');
      await expect
        .poll(() => other.evaluate(() => (window as unknown as Partial<HookWindow>).webvm?.state() ?? 'no-hook'),
          { timeout: VM_READY_MS, intervals: [500, 1000] })
        .toBe('ready');
      const restored = await expect
        .poll(() => other.evaluate(() => Object.values((window as unknown as HookWindow).webvm.appBook().applications)
          .find((a) => a.name === 'hello')?.status ?? 'absent'), { timeout: START_MS, intervals: [500, 1000] })
        .toBe('running');
      void restored;
      figure('backup with the VM: Restore → VM ready with hello running', seconds(Date.now() - restoring));
      const served = await fresh.newPage();
      await served.goto('/apps/hello/');
      await expect(served.getByRole('heading', { level: 1 })).toHaveText('Hello from the VM', { timeout: 60_000 });
      await served.close();
      await other.goto('/packages');
      await expect(other.locator('li.package-card[data-package="busybox-httpd"]')).toHaveAttribute('data-status', 'installed', { timeout: START_MS });
      expect(otherErrors).toEqual([]);
    } finally {
      await fresh.close();
    }
  });

  test('7. the Logs tab follows and filters; 9. the app page at 390 px', async () => {
    test.setTimeout(START_MS);
    await openApp('hello', 'logs');
    const log = page.getByTestId('app-log');
    await expect(log).toContainText('running: listening on port');
    await page.getByTestId('log-source').selectOption('system');
    await expect(log.locator('.log-line[data-source="application"]')).toHaveCount(0);
    await expect(log.locator('.log-line[data-source="system"]').first()).toBeVisible();
    await page.getByTestId('log-text').fill('listening on port');
    await expect(log.locator('.log-line')).toHaveCount(1);
    await page.screenshot({ path: `${SCREENSHOTS}/run-logs-1280.png`, fullPage: true });
    // Stop, from the Overview: the log follows.
    await page.getByTestId('log-text').fill('');
    await openApp('hello');
    await page.getByTestId('app-stop').click();
    await waitForStatus('hello', /^stopped$/);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${SCREENSHOTS}/run-hello-stopped-390.png`, fullPage: true });
    await openApp('hello', 'logs');
    await expect(page.getByTestId('app-log')).toContainText('stopped');
    await page.screenshot({ path: `${SCREENSHOTS}/run-logs-390.png`, fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(pageErrors).toEqual([]);
  });
});
