// Local sync with watch, end to end in the real guest (issue 10, scenario 5): a local-sync
// application whose folder is an origin-private (OPFS) folder, which has the same interface
// as a picked one (a headless browser can't show the picker). The user deploys it from the
// Deploy tab; then a file edited in the folder, a file added in a new subfolder and a file
// deleted each show in the guest's `current/` within seconds, and the tab says so. Latencies
// are printed, never asserted.
import { test, expect, type Page } from '@playwright/test';
import * as fs from 'node:fs';

const SCREENSHOTS = 'screenshots';
fs.mkdirSync(SCREENSHOTS, { recursive: true });

type ExecResult = { exitCode: number | null; stdout: string; stderr: string };
type Operation = { id: string; status: string; logs: string[]; error?: string };
type SyncStatus = { folder: string; changesApplied: number; lastChange?: string; error?: string } | null;

/** The part of `window.webvm` this file uses (cast per call: the spec files each describe
 * their own part, so none declares the global). */
type Hook = {
  state(): string;
  exec(command: string, args?: string[]): Promise<ExecResult>;
  appBook(): { applications: Record<string, { name: string }>; deployments: Record<string, Operation[]> };
  newDraft(preset: string): Record<string, any>;
  saveApp(application: object): Promise<Record<string, any>>;
  useOpfsFolder(name: string, folder: string): Promise<string>;
  opfsWrite(folder: string, path: string, data: string | Uint8Array): Promise<void>;
  opfsDelete(folder: string, path: string): Promise<void>;
  syncStatus(name: string): SyncStatus;
};

const APP = 'synced-site';
const FOLDER = 'e2e-synced-site';
const CURRENT = `/srv/apps/${APP}/current`;
const VM_READY_MS = 300_000;

let page: Page;
const pageErrors: string[] = [];

async function guestFile(path: string): Promise<string | null> {
  const result = await page.evaluate((p) => (window as unknown as { webvm: Hook }).webvm.exec('cat', [p]), path);
  return result.exitCode === 0 ? result.stdout : null;
}

/** Seconds until `check` holds, polled every 100 ms (fails after 30 s). */
async function secondsUntil(check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  await expect.poll(check, { timeout: 30_000, intervals: [100] }).toBe(true);
  return (Date.now() - started) / 1000;
}

test.describe.serial('local sync with watch', () => {
  test.beforeAll(async ({ browser }) => {
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(String(error)));
  });

  test.afterAll(async () => {
    await page.close();
  });

  test('a watched folder keeps the guest in step', async () => {
    test.setTimeout(VM_READY_MS + 240_000);
    await page.goto('/applications');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');

    // The application: a static site whose source is a local folder, watched.
    await expect
      .poll(
        async () =>
          page.evaluate(async (name) => {
            const draft = (window as unknown as { webvm: Hook }).webvm.newDraft('static-busybox');
            draft.name = name;
            draft.deployment.deploymentPath = `/srv/apps/${name}`;
            draft.deployment.sourceType = 'local-sync';
            draft.deployment.sourceConfig = { localPath: 'e2e-synced-site', watchEnabled: true };
            try {
              await (window as unknown as { webvm: Hook }).webvm.saveApp(draft);
              return 'saved';
            } catch (error) {
              return String(error);
            }
          }, APP),
        { timeout: 60_000, intervals: [1000] },
      )
      .toBe('saved');
    await page.evaluate(
      async ([name, folder]) => {
        await (window as unknown as { webvm: Hook }).webvm.useOpfsFolder(name, folder);
        await (window as unknown as { webvm: Hook }).webvm.opfsWrite(folder, 'index.html', '<h1>version one</h1>');
        await (window as unknown as { webvm: Hook }).webvm.opfsWrite(folder, 'old.txt', 'to be deleted');
      },
      [APP, FOLDER],
    );

    // The user deploys it from the Deploy tab, once the VM is up.
    await page.goto(`/applications/${APP}?tab=deploy`);
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await expect
      .poll(async () => page.evaluate(() => (window as unknown as { webvm: Hook }).webvm.state()), { timeout: VM_READY_MS, intervals: [1000] })
      .toBe('ready');
    await expect(page.getByText(`Connected folder: ${FOLDER}`)).toBeVisible();
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    await expect(page.getByTestId('sync-status')).toContainText(`Watching '${FOLDER}'`, { timeout: 120_000 });
    expect(await guestFile(`${CURRENT}/index.html`)).toBe('<h1>version one</h1>');
    await page.screenshot({ path: `${SCREENSHOTS}/apps-sync-1-deployed.png`, fullPage: true });

    // An edit.
    await page.evaluate((folder) => (window as unknown as { webvm: Hook }).webvm.opfsWrite(folder, 'index.html', '<h1>version two!</h1>'), FOLDER);
    const edited = await secondsUntil(async () => (await guestFile(`${CURRENT}/index.html`)) === '<h1>version two!</h1>');
    console.log(`[sync figure] edit → in the guest: ${edited.toFixed(2)} s`);

    // A new file in a new folder (its folder is not stripped) and a deletion.
    await page.evaluate(async (folder) => {
      await (window as unknown as { webvm: Hook }).webvm.opfsWrite(folder, 'css/site.css', 'h1 { color: teal }');
      await (window as unknown as { webvm: Hook }).webvm.opfsDelete(folder, 'old.txt');
    }, FOLDER);
    const added = await secondsUntil(
      async () =>
        (await guestFile(`${CURRENT}/css/site.css`)) === 'h1 { color: teal }' &&
        (await guestFile(`${CURRENT}/old.txt`)) === null,
    );
    console.log(`[sync figure] add + delete → in the guest: ${added.toFixed(2)} s`);

    await expect(page.getByTestId('sync-status')).toContainText('applied');
    const status = await page.evaluate((name) => (window as unknown as { webvm: Hook }).webvm.syncStatus(name), APP);
    expect(status?.error ?? null).toBeNull();
    expect(status?.changesApplied ?? 0).toBeGreaterThanOrEqual(2);
    await page.screenshot({ path: `${SCREENSHOTS}/apps-sync-2-changes-applied.png`, fullPage: true });

    // The deployment log says what each change did.
    const logs = await page.evaluate((name) => {
      const book = (window as unknown as { webvm: Hook }).webvm.appBook();
      const id = Object.keys(book.applications).find((key) => book.applications[key].name === name) ?? '';
      return (book.deployments[id] ?? []).flatMap((operation) => operation.logs);
    }, APP);
    expect(logs.some((line) => line.startsWith('sync: ') && line.includes('css/site.css'))).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});
