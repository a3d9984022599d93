// The server mirror across a real server outage (issue 12, end to end 2): a server of this
// suite's own (the release binary on its own port and SQLite file) takes a browser's edits,
// is stopped (SIGTERM) while the user goes on creating, editing and deleting apps, and is
// started again on the same data. The page keeps every change in IndexedDB meanwhile, the
// indicator says so, and once the server is back its copy equals the browser's record for
// record. No VM is involved: the Applications pages don't start one, and drafts need none.
import { test, expect, type Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SERVER_BIN, serverEnv } from '../fixtures/server-env';

const PORT = Number(process.env.E2E_RESTART_PORT ?? 3921);
const ORIGIN = `http://127.0.0.1:${PORT}`;
const SCREENSHOTS = 'screenshots';
fs.mkdirSync(SCREENSHOTS, { recursive: true });

type AppRecord = { id: string; name: string; description?: string };
type Hook = {
  webvm: {
    appBook(): { applications: Record<string, AppRecord> };
    newDraft(preset: string): AppRecord & Record<string, unknown>;
    saveApp(app: unknown): Promise<AppRecord>;
  };
};

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webvm-e2e-restart-'));
let server: ChildProcess | undefined;
let serverLog = '';

async function startServer(): Promise<void> {
  server = spawn(SERVER_BIN, [], {
    env: { ...process.env, ...serverEnv(PORT, dataDir, process.env.WEBVM_GUEST_DIR ?? '') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout?.on('data', (chunk) => (serverLog += chunk));
  server.stderr?.on('data', (chunk) => (serverLog += chunk));
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${ORIGIN}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || server.exitCode !== null) {
      throw new Error(`the server did not come up:\n${serverLog.slice(-4000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function stopServer(): Promise<void> {
  const running = server;
  server = undefined;
  if (!running || running.exitCode !== null) return;
  const exited = new Promise((resolve) => running.once('exit', resolve));
  running.kill('SIGTERM');
  await exited;
}

test.afterAll(async () => {
  await stopServer();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Saves a new draft from the BusyBox preset under `name` (and `description`). */
async function createApp(page: Page, name: string, description: string): Promise<AppRecord> {
  return page.evaluate(
    ([name, description]) => {
      const hook = (window as unknown as Hook).webvm;
      const draft = hook.newDraft('static-busybox') as { deployment: Record<string, unknown> };
      return hook.saveApp({ ...draft, name, description, deployment: { ...draft.deployment, deploymentPath: `/srv/apps/${name}` } });
    },
    [name, description],
  );
}

async function editApp(page: Page, name: string, description: string): Promise<void> {
  await page.evaluate(
    ([name, description]) => {
      const hook = (window as unknown as Hook).webvm;
      const app = Object.values(hook.appBook().applications).find((app) => app.name === name);
      return hook.saveApp({ ...app, description });
    },
    [name, description],
  );
}

/** The browser's apps and the server's copy (its JSON backup), as comparable lists. */
async function bothSides(page: Page) {
  const mine = await page.evaluate(() => Object.values((window as unknown as Hook).webvm.appBook().applications));
  const response = await page.request.get(`${ORIGIN}/api/server_backup`);
  expect(response.ok()).toBe(true);
  const theirs: AppRecord[] = (await response.json()).applications;
  const key = (apps: AppRecord[]) =>
    apps.map((app) => ({ id: app.id, name: app.name, description: app.description ?? '' })).sort((a, b) => a.id.localeCompare(b.id));
  return { browser: key(mine), server: key(theirs) };
}

test('2. the server stopped during edits: nothing is lost, and once it is back its copy equals the browser record for record', async ({ page }) => {
  test.setTimeout(240_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  await startServer();
  await page.goto(`${ORIGIN}/applications`);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  const indicator = page.getByTestId('sync-indicator');

  // Two apps while the server is up: mirrored.
  await createApp(page, 'outage-kept', 'made before the outage');
  await createApp(page, 'outage-doomed', 'deleted during the outage');
  await expect(indicator).toHaveAttribute('data-state', 'synced', { timeout: 30_000 });
  expect((await bothSides(page)).server.map((app) => app.name).sort()).toEqual(['outage-doomed', 'outage-kept']);

  // The server goes away; the user goes on: two new apps, an edit and a delete.
  await stopServer();
  await createApp(page, 'outage-new-1', 'made while the server was down');
  await createApp(page, 'outage-new-2', 'made while the server was down');
  await editApp(page, 'outage-kept', 'edited while the server was down');
  // The tab is reloaded while the server is down: the browser shows its error page, and the
  // changes wait in IndexedDB. The user comes back once the server is up again.
  await page.reload().catch(() => undefined);
  await startServer();
  await page.goto(`${ORIGIN}/applications`);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.locator('tr[data-app="outage-doomed"]').getByRole('button', { name: 'Delete outage-doomed', exact: true }).click();
  await page.getByRole('alertdialog').getByRole('button', { name: 'Delete permanently' }).click();
  await expect(page.locator('tr[data-app="outage-doomed"]')).toHaveCount(0);

  // The rest of the outage: the server stops again with changes queued.
  await stopServer();
  await editApp(page, 'outage-new-1', 'edited twice while the server was down');
  await expect(indicator).toHaveAttribute('data-state', 'offline', { timeout: 30_000 });
  await expect(indicator).toContainText(/change\(s\) kept here/);
  await page.screenshot({ path: `${SCREENSHOTS}/mirror-restart-offline-1280.png` });

  // Back: the queue drains by itself, and the two sides agree record for record.
  const started = Date.now();
  await startServer();
  await expect(indicator).toHaveAttribute('data-state', 'synced', { timeout: 120_000 });
  console.log(`[mirror figure] caught up after the server came back: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const { browser, server: mirrored } = await bothSides(page);
  expect(browser.map((app) => app.name).sort()).toEqual(['outage-kept', 'outage-new-1', 'outage-new-2']);
  expect(mirrored).toEqual(browser);
  expect(browser.find((app) => app.name === 'outage-new-1')?.description).toBe('edited twice while the server was down');
  await page.screenshot({ path: `${SCREENSHOTS}/mirror-restart-synced-1280.png` });
  expect(pageErrors).toEqual([]);
});
