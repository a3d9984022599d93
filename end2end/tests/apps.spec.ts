// Applications, end to end (issue 10), as a user does it on the Applications pages, in one
// page whose VM boots once (from the server's boot snapshot) and runs across client-side
// navigation:
//   1. a static site from uploaded files (index.html, css/site.css) → a completed release,
//      served from /srv/apps/<name>/current in the guest;
//   2. a ZIP with a zip-slip entry (../evil.txt) is refused naming the entry, nothing written;
//   3. a URL deploy of the local source server's site.tar.gz works; its 3 MiB big.tar.gz is
//      refused as over the server's 1 MiB cap; http://[::1]:<port>/ is refused (loopback);
//   4. a GitHub deploy (private repository, token e2e-token) against the GitHub-shaped API of
//      fixtures/source-server.mjs records the fixture's commit SHA;
//   6. a build `sleep 100` with a 2 s timeout fails ("build timed out after 2 s") and the
//      previous release stays `current`;
//   7. "Roll back" after two deploys switches `current` to the previous release;
//   8. invalid names and a duplicate port show their rule next to the field, and Save says why;
//   9. screenshots of each step at 1280 px, the list and an app's page at 390 px.
// (5, local-sync watch, is its own suite.) The guest is checked through window.webvm.exec and
// the registry read through window.webvm.appBook(); everything else is clicks and typing.
// Figures are printed, never asserted.
import { test, expect, type Page, type BrowserContext, type Locator } from '@playwright/test';
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { zipSync, type Zippable } from 'fflate';

const SCREENSHOTS = 'screenshots';
fs.mkdirSync(SCREENSHOTS, { recursive: true });

// fixtures/source-server.mjs (started by playwright.config.ts; not imported: importing it
// would start a second server).
const SOURCE_PORT = Number(process.env.E2E_SOURCE_PORT ?? 3917);
const SOURCE_ORIGIN = `http://127.0.0.1:${SOURCE_PORT}`;
const FIXTURE_TOKEN = 'e2e-token';
const FIXTURE_SHA = 'd6cd1e2bd19e03a81132a23b2025920577f84e37';
/** The server's fetch cap in the e2e run (WEBVM_FETCH_MAX_BYTES). */
const FETCH_MAX_BYTES = 1048576;

const APP_AREA = '/srv/apps';
const SITE = 'e2e-site';
const URL_APP = 'e2e-url';
const GITHUB_APP = 'e2e-github';
/** The app of the backup written by "another implementation" (test 12). */
const FOREIGN_APP = 'e2e-foreign';

const VM_READY_MS = 300_000;
/** One deployment in the emulator: tens of seconds, more on a busy machine. */
const DEPLOY_MS = 240_000;

// ---- the page's hook (window.webvm), as far as this suite reads it ----------------------

type ExecResult = { exitCode: number | null; stdout: string; stderr: string };
type Deployment = {
  id: string;
  applicationId: string;
  status: string;
  progress: number;
  logs: string[];
  startTime: string;
  endTime?: string;
  error?: string;
  sourceType?: string;
  commit?: string;
  servedDirectory?: string;
  fileCount?: number;
  totalBytes?: number;
  rollbackTo?: string;
};
type AppRecord = {
  id: string;
  name: string;
  status: string;
  execution: { port?: number | null; additionalPorts?: number[] | null };
  deployment: { deploymentPath: string; sourceType: string; sourceConfig: Record<string, unknown> };
};
type AppBook = {
  applications: Record<string, AppRecord>;
  deployments: Record<string, Deployment[]>;
  currentReleases: Record<string, string>;
};
type AppsHook = {
  state(): string;
  exec(command: string, args?: string[], options?: object): Promise<ExecResult>;
  appBook(): AppBook;
};
/** `window` with the hook (cast inside `page.evaluate`; the other specs declare their own). */
type HookWindow = { webvm?: AppsHook };

// ---- state shared by the serial tests ------------------------------------------------------

let context: BrowserContext;
let page: Page;
/** The backup test 11 exported (sealed secrets kept), which test 12 imports. */
let exportedBackup: Record<string, any> | undefined;
const pageErrors: string[] = [];
const figures: string[] = [];
const figure = (label: string, value: string) => {
  figures.push(`${label.padEnd(48)} ${value}`);
  console.log(`[apps figure] ${label}: ${value}`);
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The site's contents, version by version. */
const indexHtml = (version: string) =>
  `<!doctype html>\n<html><head><meta charset="utf-8"><title>e2e ${version}</title>` +
  `<link rel="stylesheet" href="css/site.css"></head><body><h1>e2e site ${version}</h1></body></html>\n`;
const SITE_CSS = 'body { font-family: sans-serif; color: #123; }\n';

// ---- a stored (uncompressed) ZIP, written with fflate ---------------------------------------

/** A ZIP of `entries`, each stored under its name as given — `../` included. */
function storedZip(entries: { path: string; data: Buffer }[]): Buffer {
  const files: Zippable = {};
  for (const entry of entries) files[entry.path] = [new Uint8Array(entry.data), { level: 0 }];
  return Buffer.from(zipSync(files));
}

// ---- helpers ---------------------------------------------------------------------------------

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: `${SCREENSHOTS}/apps-${name}-1280.png`, fullPage: true });
}

async function vmReady(): Promise<void> {
  await expect
    .poll(async () => page.evaluate(() => {
      const hook = (window as unknown as HookWindow).webvm;
      return hook ? hook.state() : 'no-hook';
    }), { timeout: VM_READY_MS, intervals: [500, 1000] })
    .toBe('ready');
}

function exec(command: string, args: string[] = []): Promise<ExecResult> {
  return page.evaluate(
    ([c, a]) => (window as unknown as HookWindow).webvm!.exec(c as string, a as string[]),
    [command, args] as const,
  );
}

/** A file's text in the guest (fails the test when it can't be read). */
async function guestFile(path: string): Promise<string> {
  const result = await exec('cat', [path]);
  expect(result.exitCode, `cat ${path}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

/** Where the app's `current` link points (relative to the app's folder), or "" without one. */
async function currentLink(name: string): Promise<string> {
  const result = await exec('readlink', [`${APP_AREA}/${name}/current`]);
  return result.exitCode === 0 ? result.stdout.trim() : '';
}

/** The folders in the app's releases/ (sorted). */
async function releaseFolders(name: string): Promise<string[]> {
  const result = await exec('ls', ['-1A', `${APP_AREA}/${name}/releases`]);
  return result.exitCode === 0 ? result.stdout.split('\n').filter(Boolean).sort() : [];
}

function book(): Promise<AppBook> {
  return page.evaluate(() => (window as unknown as HookWindow).webvm!.appBook());
}

async function appNamed(name: string): Promise<AppRecord> {
  const app = Object.values((await book()).applications).find((candidate) => candidate.name === name);
  if (!app) throw new Error(`this browser's record has no application named ${name}`);
  return app;
}

async function history(name: string): Promise<Deployment[]> {
  const app = await appNamed(name);
  return (await book()).deployments[app.id] ?? [];
}

/** The deployment id the record says `current` is (a roll back's target, not the roll back). */
async function recordedCurrent(name: string): Promise<string | undefined> {
  const app = await appNamed(name);
  return (await book()).currentReleases[app.id];
}

async function openApplications(): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Applications', exact: true }).click();
  await expect(page).toHaveURL(/\/applications$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Applications');
}

async function openApp(name: string): Promise<void> {
  await openApplications();
  await page.locator(`tr[data-app="${name}"]`).getByRole('link', { name: `Open ${name}` }).click();
  await expect(page).toHaveURL(new RegExp(`/applications/${name}$`));
  await expect(page.getByTestId('app-status')).toBeVisible();
}

type Tab = 'Overview' | 'Deploy' | 'Settings' | 'History';

async function openTab(tab: Tab): Promise<void> {
  await page.getByRole('navigation', { name: 'Application sections' }).getByRole('link', { name: tab, exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`[?&]tab=${tab.toLowerCase()}`));
}

/** The new-application form from the static-busybox preset. */
async function openNewForm(): Promise<Locator> {
  await openApplications();
  await page.getByRole('link', { name: 'New application', exact: true }).click();
  await expect(page).toHaveURL(/\/applications\/new/);
  await page.getByRole('link', { name: /Static site \(BusyBox httpd\)/ }).click();
  await expect(page).toHaveURL(/preset=static-busybox/);
  const form = page.getByRole('form', { name: 'New application' });
  await expect(form).toBeVisible();
  return form;
}

/** Creates an application from the static-busybox preset (no runtime is needed to deploy). */
async function createApp(name: string, configure?: (form: Locator) => Promise<void>): Promise<void> {
  const form = await openNewForm();
  await form.getByLabel('Application name', { exact: true }).fill(name);
  // A new app's default deployment path follows its name.
  await expect(form.getByLabel('Deployment path', { exact: true })).toHaveValue(`${APP_AREA}/${name}`);
  if (configure) await configure(form);
  await expect(page.getByTestId('save-blockers')).toHaveCount(0);
  await form.getByRole('button', { name: 'Create application' }).click();
  await expect(page).toHaveURL(new RegExp(`/applications/${name}$`), { timeout: 30_000 });
  await expect(page.getByTestId('app-status')).toBeVisible();
}

/** Changes the app's settings on its Settings tab and saves them. */
async function editSettings(change: (form: Locator) => Promise<void>): Promise<void> {
  await openTab('Settings');
  const form = page.getByRole('form', { name: 'Application settings' });
  await expect(form).toBeVisible();
  await change(form);
  await expect(page.getByTestId('save-blockers')).toHaveCount(0);
  await form.getByRole('button', { name: 'Save changes' }).click();
  await expect(form.locator('.save-outcome')).toContainText('Saved', { timeout: 30_000 });
}

/** Picks files in the Deploy tab's "Files to deploy" input. */
async function chooseFiles(files: { name: string; mimeType: string; buffer: Buffer }[]): Promise<void> {
  await page.getByLabel('Files to deploy', { exact: true }).setInputFiles(files);
  const chosen = files.length === 1 ? '1 item chosen.' : `${files.length} items chosen.`;
  await expect(page.getByText(chosen)).toBeVisible();
}

/** What the Deploy tab shows once a deploy from it has ended. */
function deployOutcome(): Locator {
  return page.locator('.deploy-panel .save-outcome, [data-testid="deploy-error"]');
}

/**
 * Runs `start` (a click), waits until the new deployment (or roll back) in the record has
 * ended, then until `ended` shows (the page has also saved the VM by then), and returns it.
 * `running` names a screenshot taken while the deployment's progress shows, if it does.
 */
async function deployAndWait(
  name: string,
  start: () => Promise<void>,
  options: { ended?: () => Promise<void>; running?: string; label?: string } = {},
): Promise<Deployment> {
  const before = new Set((await history(name)).map((operation) => operation.id));
  const clicked = Date.now();
  await start();
  if (options.running) {
    // Best effort: a quick deployment may end before its progress shows.
    try {
      const active = page.getByTestId('deployment-active');
      await active.waitFor({ state: 'visible', timeout: 10_000 });
      await active.getByRole('progressbar', { name: 'Deployment progress' }).waitFor({ timeout: 2_000 });
      await active.getByLabel('Deployment log', { exact: true }).waitFor({ timeout: 2_000 });
      await shot(options.running);
    } catch (error) {
      console.log(`[apps] ${options.running}: progress not captured (${String(error).split('\n')[0]})`);
    }
  }
  let found: Deployment | undefined;
  await expect
    .poll(
      async () => {
        found = (await history(name)).find((operation) => !before.has(operation.id));
        return found?.status ?? 'not started';
      },
      { timeout: DEPLOY_MS, intervals: [250, 500, 1000] },
    )
    .toMatch(/^(completed|failed)$/);
  if (options.ended) await options.ended();
  else await expect(deployOutcome()).toBeVisible({ timeout: 120_000 });
  const operation = found!;
  const recorded = operation.endTime ? Date.parse(operation.endTime) - Date.parse(operation.startTime) : NaN;
  const label = options.label ?? `${name} deploy`;
  figure(`${label} (${operation.status}, recorded)`, Number.isNaN(recorded) ? '—' : seconds(recorded));
  figure(`${label} (click to page done)`, seconds(Date.now() - clicked));
  return operation;
}

/** The History tab's row of a deployment. */
function historyRow(id: string): Locator {
  return page.locator(`tr[data-deployment="${id}"]`);
}

// ---- the suite -------------------------------------------------------------------------------

test.describe.serial('applications', () => {
  test.beforeAll(async ({ browser }) => {
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  test.afterAll(async () => {
    console.log(`\nApplication figures:\n  ${figures.join('\n  ')}`);
    await context?.close();
  });

  test('1. a static site from uploaded files deploys into the guest as the current release', async () => {
    test.setTimeout(VM_READY_MS + 2 * DEPLOY_MS);
    await page.goto('/applications');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await expect(page.getByText('No applications yet')).toBeVisible();
    await shot('list-empty');

    await createApp(SITE);
    await shot('created');
    const booting = Date.now();
    await vmReady();
    figure('VM ready on the app page', seconds(Date.now() - booting));

    await openTab('Deploy');
    await chooseFiles([
      { name: 'index.html', mimeType: 'text/html', buffer: Buffer.from(indexHtml('v1')) },
      { name: 'css/site.css', mimeType: 'text/css', buffer: Buffer.from(SITE_CSS) },
    ]);
    await shot('upload-chosen');
    const deployButton = page.getByRole('button', { name: 'Deploy files', exact: true });
    await expect(deployButton).toBeEnabled();
    const operation = await deployAndWait(SITE, () => deployButton.click(), { running: 'upload-deploying', label: 'upload 2 files' });
    expect(operation.status, operation.error).toBe('completed');
    expect(operation.fileCount).toBe(2);
    expect(operation.progress).toBe(100);
    expect(operation.sourceType).toBe('upload');
    await expect(deployOutcome()).toContainText('Deployed 2 files');
    await shot('upload-deployed');

    // The history row, marked current.
    await openTab('History');
    const row = historyRow(operation.id);
    await expect(row).toHaveAttribute('data-status', 'completed');
    await expect(row.locator('.release-current')).toHaveText('current');
    await expect(row).toContainText('2 files');
    await row.locator('summary').click();
    await expect(row.locator('pre.operation-log')).not.toBeEmpty();
    await shot('upload-history');

    // The guest serves it from current/.
    expect(await guestFile(`${APP_AREA}/${SITE}/current/index.html`)).toBe(indexHtml('v1'));
    expect(await guestFile(`${APP_AREA}/${SITE}/current/css/site.css`)).toBe(SITE_CSS);
    expect(await currentLink(SITE)).toBe(`releases/${operation.id}`);
    expect(await releaseFolders(SITE)).toEqual([operation.id]);
    expect(await recordedCurrent(SITE)).toBe(operation.id);
    await openTab('Overview');
    await expect(page.getByTestId('app-status')).not.toContainText('draft');
  });

  test('2. a ZIP with a zip-slip entry is refused, naming the entry, and nothing is written', async () => {
    test.setTimeout(DEPLOY_MS + 60_000);
    const releasesBefore = await releaseFolders(SITE);
    const currentBefore = await currentLink(SITE);
    const zip = storedZip([
      { path: 'index.html', data: Buffer.from(indexHtml('evil')) },
      { path: '../evil.txt', data: Buffer.from('this must never reach the guest\n') },
    ]);
    await openTab('Deploy');
    await chooseFiles([{ name: 'evil.zip', mimeType: 'application/zip', buffer: zip }]);
    const operation = await deployAndWait(SITE, () => page.getByRole('button', { name: 'Deploy files', exact: true }).click(), {
      label: 'zip-slip refusal',
    });
    expect(operation.status).toBe('failed');
    expect(operation.error).toContain("'../evil.txt'");
    expect(operation.error).toContain('zip-slip');
    await shot('zip-slip-deploy-tab');

    await openTab('History');
    const row = historyRow(operation.id);
    await expect(row).toHaveAttribute('data-status', 'failed');
    await expect(row.locator('.inline-error')).toContainText("entry '../evil.txt' escapes the app's folder (zip-slip)");
    await shot('zip-slip-refused');

    // Nothing was written: no new release, `current` unchanged, no evil.txt anywhere.
    expect(await releaseFolders(SITE)).toEqual(releasesBefore);
    expect(await currentLink(SITE)).toBe(currentBefore);
    expect(await guestFile(`${APP_AREA}/${SITE}/current/index.html`)).toBe(indexHtml('v1'));
    const evil = await exec('find', [APP_AREA, '-name', 'evil.txt']);
    expect(evil.stdout.trim()).toBe('');
  });

  test('3. a URL deploy fetches through the server; too large and loopback URLs are refused', async () => {
    test.setTimeout(4 * DEPLOY_MS);
    const siteUrl = `${SOURCE_ORIGIN}/site.tar.gz`;
    await createApp(URL_APP, async (form) => {
      await form.getByRole('combobox', { name: 'Source', exact: true }).selectOption('url');
      await form.getByLabel('Archive URL', { exact: true }).fill(siteUrl);
    });
    await vmReady();
    await openTab('Deploy');
    await expect(page.locator('.deploy-panel')).toContainText(`From ${siteUrl}`);
    const deploy = () => page.getByRole('button', { name: 'Deploy', exact: true }).click();
    const first = await deployAndWait(URL_APP, deploy, { running: 'url-deploying', label: 'url site.tar.gz' });
    expect(first.status, first.error).toBe('completed');
    expect(first.sourceType).toBe('url');
    // The tarball's single top-level folder `site/` is stripped.
    expect(await guestFile(`${APP_AREA}/${URL_APP}/current/index.html`)).toContain('Deployed from a URL');
    expect(await guestFile(`${APP_AREA}/${URL_APP}/current/about/index.html`)).toContain('About');
    expect(await guestFile(`${APP_AREA}/${URL_APP}/current/style.css`)).toContain('font-family');
    expect(await currentLink(URL_APP)).toBe(`releases/${first.id}`);
    await shot('url-deployed');

    // 3 MiB against the server's 1 MiB cap: refused before it is streamed.
    await editSettings((form) => form.getByLabel('Archive URL', { exact: true }).fill(`${SOURCE_ORIGIN}/big.tar.gz`));
    await openTab('Deploy');
    const big = await deployAndWait(URL_APP, deploy, { label: 'url big.tar.gz refusal' });
    expect(big.status).toBe('failed');
    expect(big.error).toContain(`over the limit of ${FETCH_MAX_BYTES} bytes`);
    await openTab('History');
    await expect(historyRow(big.id).locator('.inline-error')).toContainText('over the limit');
    await shot('url-too-large');

    // A loopback address the operator has not allowed (only 127.0.0.1:<port> is).
    const loopback = `http://[::1]:${SOURCE_PORT}/site.tar.gz`;
    await editSettings((form) => form.getByLabel('Archive URL', { exact: true }).fill(loopback));
    await openTab('Deploy');
    const refused = await deployAndWait(URL_APP, deploy, { label: 'url [::1] refusal' });
    expect(refused.status).toBe('failed');
    expect(refused.error).toContain('loopback');
    expect(refused.error).toContain('--fetch-allow-host');
    await openTab('History');
    await expect(historyRow(refused.id).locator('.inline-error')).toContainText('loopback');
    await shot('url-loopback-refused');

    // Both refusals left the first release current.
    expect(await currentLink(URL_APP)).toBe(`releases/${first.id}`);
    expect(await releaseFolders(URL_APP)).toEqual([first.id]);
    expect(await recordedCurrent(URL_APP)).toBe(first.id);
  });

  test('4. a GitHub deploy with a token records the commit it resolved to', async () => {
    test.setTimeout(2 * DEPLOY_MS);
    await createApp(GITHUB_APP, async (form) => {
      await form.getByRole('combobox', { name: 'Source', exact: true }).selectOption('github');
      await form.getByLabel('Repository', { exact: true }).fill('demo/site');
      await form.getByLabel('Branch', { exact: true }).fill('main');
      await form.getByLabel('GitHub token', { exact: true }).fill(FIXTURE_TOKEN);
    });
    // The token is sealed in this browser: never in the record in clear.
    const app = await appNamed(GITHUB_APP);
    expect(app.deployment.sourceConfig.token).toBeTruthy();
    expect(JSON.stringify(await book())).not.toContain(FIXTURE_TOKEN);

    await vmReady();
    await openTab('Deploy');
    await expect(page.locator('.deploy-panel')).toContainText('From GitHub demo/site at main');
    const operation = await deployAndWait(GITHUB_APP, () => page.getByRole('button', { name: 'Deploy', exact: true }).click(), {
      running: 'github-deploying',
      label: 'github demo/site@main',
    });
    expect(operation.status, operation.error).toBe('completed');
    expect(operation.sourceType).toBe('github');
    expect(operation.commit).toBe(FIXTURE_SHA);
    // The zipball's demo-site-<sha7>/ folder is stripped.
    expect(await guestFile(`${APP_AREA}/${GITHUB_APP}/current/index.html`)).toContain(`Deployed from GitHub ${FIXTURE_SHA.slice(0, 7)}`);

    await openTab('History');
    const commit = historyRow(operation.id).locator('code.commit');
    await expect(commit).toHaveAttribute('title', FIXTURE_SHA);
    await expect(commit).toHaveText(FIXTURE_SHA.slice(0, 8));
    await shot('github-deployed');
    expect(JSON.stringify(await book())).not.toContain(FIXTURE_TOKEN);
  });

  test('6. a build over its timeout fails and the previous release stays current', async () => {
    test.setTimeout(DEPLOY_MS + 120_000);
    await openApp(SITE);
    const previous = await recordedCurrent(SITE);
    expect(previous).toBeTruthy();
    const releasesBefore = await releaseFolders(SITE);
    await editSettings(async (form) => {
      await form.getByLabel('Run a build step', { exact: true }).check();
      await form.getByLabel('Build command', { exact: true }).fill('sleep 100');
      await form.getByLabel('Build timeout (s)', { exact: true }).fill('2');
    });
    await shot('build-settings');

    await openTab('Deploy');
    await chooseFiles([
      { name: 'index.html', mimeType: 'text/html', buffer: Buffer.from(indexHtml('v2')) },
      { name: 'css/site.css', mimeType: 'text/css', buffer: Buffer.from(SITE_CSS) },
    ]);
    const operation = await deployAndWait(SITE, () => page.getByRole('button', { name: 'Deploy files', exact: true }).click(), {
      running: 'build-running',
      label: 'build sleep 100, timeout 2 s',
    });
    expect(operation.status).toBe('failed');
    expect(operation.error).toContain('build timed out after 2 s');

    await openTab('History');
    const row = historyRow(operation.id);
    await expect(row).toHaveAttribute('data-status', 'failed');
    await expect(row.locator('.inline-error')).toContainText('build timed out after 2 s');
    await expect(historyRow(previous!).locator('.release-current')).toHaveText('current');
    await shot('build-timed-out');

    // `current` still points at the previous release; the partial one was removed.
    expect(await currentLink(SITE)).toBe(`releases/${previous}`);
    expect(await guestFile(`${APP_AREA}/${SITE}/current/index.html`)).toBe(indexHtml('v1'));
    expect(await releaseFolders(SITE)).toEqual(releasesBefore);
    expect(await recordedCurrent(SITE)).toBe(previous);
  });

  test('7. roll back switches current to the previous release', async () => {
    test.setTimeout(2 * DEPLOY_MS);
    const first = await recordedCurrent(SITE);
    expect(first).toBeTruthy();
    await editSettings((form) => form.getByLabel('Run a build step', { exact: true }).uncheck());
    await openTab('Deploy');
    await chooseFiles([
      { name: 'index.html', mimeType: 'text/html', buffer: Buffer.from(indexHtml('v2')) },
      { name: 'css/site.css', mimeType: 'text/css', buffer: Buffer.from(SITE_CSS) },
    ]);
    const second = await deployAndWait(SITE, () => page.getByRole('button', { name: 'Deploy files', exact: true }).click(), {
      label: 'upload v2',
    });
    expect(second.status, second.error).toBe('completed');
    expect(await currentLink(SITE)).toBe(`releases/${second.id}`);
    expect(await guestFile(`${APP_AREA}/${SITE}/current/index.html`)).toBe(indexHtml('v2'));
    expect(await releaseFolders(SITE)).toEqual([first!, second.id].sort());

    await openTab('Overview');
    const rollBack = page.getByRole('button', { name: 'Roll back', exact: true });
    await expect(rollBack).toBeEnabled();
    await shot('before-roll-back');
    const operation = await deployAndWait(SITE, () => rollBack.click(), {
      label: 'roll back',
      ended: () => expect(page.getByRole('button', { name: /Rolling back/ })).toHaveCount(0, { timeout: 120_000 }),
    });
    expect(operation.status, operation.error).toBe('completed');
    expect(operation.rollbackTo).toBe(first);
    await expect(page.locator('main [role="alert"]')).toHaveCount(0);

    expect(await currentLink(SITE)).toBe(`releases/${first}`);
    expect(await guestFile(`${APP_AREA}/${SITE}/current/index.html`)).toBe(indexHtml('v1'));
    expect(await recordedCurrent(SITE)).toBe(first);
    // Both releases are kept (a roll back is not a new release).
    expect(await releaseFolders(SITE)).toEqual([first!, second.id].sort());

    await openTab('History');
    await expect(historyRow(operation.id)).toHaveAttribute('data-status', 'completed');
    await expect(historyRow(operation.id)).toContainText(`roll back to ${first!.slice(0, 8)}`);
    await expect(historyRow(first!).locator('.release-current')).toHaveText('current');
    await expect(historyRow(second.id).locator('.release-current')).toHaveCount(0);
    await shot('rolled-back');
  });

  test('8. invalid names and a duplicate port show their rule next to the field and block saving', async () => {
    test.setTimeout(120_000);
    const site = await appNamed(SITE);
    const sitePort = site.execution.port;
    expect(sitePort).toBeTruthy();
    const form = await openNewForm();
    const name = form.getByLabel('Application name', { exact: true });
    const nameProblems = form.locator('#app-name-problems');
    const blockers = page.getByTestId('save-blockers');
    const create = form.getByRole('button', { name: 'Create application' });

    const invalid: [string, string][] = [
      ['ab', "application name 'ab' has 2 characters; it must have 3 to 50"],
      ['Admin', "application name 'Admin' is reserved by the router"],
      ['apps', "application name 'apps' is reserved by the router"],
      ['healthz', "application name 'healthz' is reserved by the router"],
      ['my site', "application name 'my site' contains ' '"],
      ['-site', "application name '-site' must start and end with a letter or digit"],
    ];
    for (const [text, rule] of invalid) {
      await name.fill(text);
      await expect(nameProblems).toContainText(rule);
      await expect(name).toHaveAttribute('aria-invalid', 'true');
      await expect(blockers).toContainText(rule);
      await expect(create).toBeDisabled();
      if (text === 'ab' || text === 'Admin') await shot(`invalid-name-${text.toLowerCase()}`);
    }

    // Taken (names compare case-insensitively): the name parses, the name checks say why.
    await name.fill(SITE.toUpperCase());
    await expect(nameProblems).toHaveCount(0);
    const nameChecks = form.locator('[data-checks="name"]');
    await expect(nameChecks).toContainText('is already taken (names are compared case-insensitively)');
    await expect(blockers).toContainText('is already taken');
    await expect(create).toBeDisabled();
    await shot('duplicate-name');

    // A free name, then the first app's port.
    await name.fill('e2e-fresh');
    await expect(nameChecks.locator('.checks__list--error')).toHaveCount(0);
    await expect(blockers).toHaveCount(0);
    await expect(create).toBeEnabled();
    const port = form.getByLabel('Primary port', { exact: true });
    await port.fill(String(sitePort));
    const portChecks = form.locator('[data-checks="ports"]');
    await expect(portChecks).toContainText(`port ${sitePort} is already used by '${SITE}'`);
    await expect(portChecks).toContainText('the lowest free port');
    await expect(blockers).toContainText(`port ${sitePort} is already used by '${SITE}'`);
    await expect(create).toBeDisabled();
    await shot('duplicate-port');
    // Additional ports are allocated like the primary one: the lowest free ports, none
    // another app uses nor this form lists.
    await port.fill(String(sitePort + 500));
    await expect(blockers).toHaveCount(0);
    const additional = form.getByLabel('Additional ports', { exact: true });
    await form.getByTestId('app-add-port').click();
    await form.getByTestId('app-add-port').click();
    const allocated = (await additional.inputValue()).split(',').map((part) => Number(part.trim()));
    expect(allocated).toHaveLength(2);
    const used = Object.values((await book()).applications).flatMap((app) => [app.execution.port, ...(app.execution.additionalPorts ?? [])]);
    for (const allocatedPort of allocated) {
      expect(used).not.toContain(allocatedPort);
      expect(allocatedPort).not.toBe(sitePort + 500);
    }
    expect(allocated[0]).not.toBe(allocated[1]);
    await expect(portChecks.locator('.checks__list--error')).toHaveCount(0);
    await additional.fill('');
    // Outside 1024–65535: the field's own problem.
    await port.fill('80');
    await expect(form.locator('#app-port-problems')).toContainText('port 80 is outside 1024-65535');
    await expect(create).toBeDisabled();

    // Nothing was created.
    await openApplications();
    const names = Object.values((await book()).applications).map((app) => app.name).sort();
    expect(names).toEqual([GITHUB_APP, SITE, URL_APP].sort());
  });

  test('9. the list and an app page at phone width; the server mirrors the list; no page errors', async () => {
    test.setTimeout(120_000);
    await openApplications();
    for (const name of [SITE, URL_APP, GITHUB_APP]) {
      await expect(page.locator(`tr[data-app="${name}"]`)).toBeVisible();
    }
    await expect(page.locator(`tr[data-app="${SITE}"]`)).not.toContainText('never');
    await shot('list');
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await expect(page.locator(`tr[data-app="${SITE}"]`)).toBeVisible();
      await page.screenshot({ path: `${SCREENSHOTS}/apps-list-390.png`, fullPage: true });
      await page.locator(`tr[data-app="${SITE}"]`).getByRole('link', { name: `Open ${SITE}` }).click();
      await expect(page.getByTestId('app-status')).toBeVisible();
      await page.screenshot({ path: `${SCREENSHOTS}/apps-detail-390.png`, fullPage: true });
      await openTab('History');
      await expect(page.locator('tr[data-deployment]').first()).toBeVisible();
      await page.screenshot({ path: `${SCREENSHOTS}/apps-history-390.png`, fullPage: true });
      await openTab('Deploy');
      await page.screenshot({ path: `${SCREENSHOTS}/apps-deploy-390.png`, fullPage: true });
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }

    // The server's copy (what renders without JavaScript) lists the three apps.
    await expect
      .poll(async () => {
        const html = await (await page.request.get('/applications')).text();
        return [SITE, URL_APP, GITHUB_APP].filter((name) => html.includes(`data-app="${name}"`)).length;
      }, { timeout: 30_000 })
      .toBe(3);

    expect(await page.evaluate(() => (window as unknown as HookWindow).webvm!.state())).toBe('ready');
    expect(pageErrors).toEqual([]);
  });

  test('10. duplicate, rename and delete: the confirmation names the files, and they leave the guest', async () => {
    test.setTimeout(180_000);
    // Duplicate the URL app: a copy under a new name, folder and port, not deployed.
    await openApp(URL_APP);
    await page.getByRole('button', { name: `Duplicate ${URL_APP}`, exact: true }).click();
    const copy = `${URL_APP}-copy`;
    await expect(page).toHaveURL(new RegExp(`/applications/${copy}$`), { timeout: 30_000 });
    const copied = await appNamed(copy);
    expect(copied.deployment.deploymentPath).toBe(`${APP_AREA}/${copy}`);
    expect(copied.execution.port).not.toBe((await appNamed(URL_APP)).execution.port);
    await shot('duplicated');

    // Rename the copy on its Settings tab: the same record (same id) under the new name.
    const renamed = 'e2e-renamed';
    await openTab('Settings');
    const settings = page.getByRole('form', { name: 'Application settings' });
    await settings.getByLabel('Application name', { exact: true }).fill(renamed);
    await expect(page.getByTestId('save-blockers')).toHaveCount(0);
    await settings.getByRole('button', { name: 'Save changes' }).click();
    // The page follows the new name.
    await expect(page).toHaveURL(new RegExp(`/applications/${renamed}\\?tab=settings$`), { timeout: 30_000 });
    const after = await appNamed(renamed);
    expect(after.id).toBe(copied.id);
    await openApplications();
    await expect(page.locator(`tr[data-app="${renamed}"]`)).toBeVisible();
    await expect(page.locator(`tr[data-app="${copy}"]`)).toHaveCount(0);

    // Delete the deployed URL app: the confirmation names its folder in the VM.
    await openApp(URL_APP);
    expect((await exec('test', ['-d', `${APP_AREA}/${URL_APP}/releases`])).exitCode).toBe(0);
    await page.getByRole('button', { name: `Delete ${URL_APP}`, exact: true }).click();
    const dialog = page.getByRole('alertdialog');
    await expect(dialog).toContainText(`${APP_AREA}/${URL_APP}`);
    await expect(dialog).toContainText(`${APP_AREA}/${URL_APP}/current`);
    await shot('delete-confirm');
    await dialog.getByRole('button', { name: 'Delete permanently' }).click();
    await expect(page).toHaveURL(/\/applications$/, { timeout: 60_000 });
    await expect(page.locator(`tr[data-app="${URL_APP}"]`)).toHaveCount(0);
    expect((await exec('test', ['-e', `${APP_AREA}/${URL_APP}`])).exitCode).not.toBe(0);
    // The other apps' files are untouched.
    expect(await guestFile(`${APP_AREA}/${SITE}/current/index.html`)).toContain('e2e site');

    // The renamed copy kept its folder (renaming moves no files): the list's Delete names it.
    await page.locator(`tr[data-app="${renamed}"]`).getByRole('button', { name: `Delete ${renamed}`, exact: true }).click();
    await expect(page.getByRole('alertdialog')).toContainText(`${APP_AREA}/${copy}`);
    await page.getByRole('alertdialog').getByRole('button', { name: 'Delete permanently' }).click();
    await expect(page.locator(`tr[data-app="${renamed}"]`)).toHaveCount(0);
    await shot('deleted');
    const names = Object.values((await book()).applications).map((app) => app.name).sort();
    expect(names).toEqual([GITHUB_APP, SITE].sort());

    // The server's copy follows.
    await expect
      .poll(async () => {
        const html = await (await page.request.get('/applications')).text();
        return [URL_APP, renamed].some((name) => html.includes(`data-app="${name}"`));
      }, { timeout: 30_000 })
      .toBe(false);
    expect(pageErrors).toEqual([]);
  });
  test('11. the Backup page exports this browser\'s workspace as one JSON file; sealed secrets stay sealed or are left out', async () => {
    await page.goto('/backup');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await expect.poll(async () => Object.keys((await book()).applications).length, { timeout: 30_000 }).toBe(2);
    const download = async (): Promise<Record<string, any>> => {
      const [file] = await Promise.all([page.waitForEvent('download'), page.getByTestId('backup-download').click()]);
      expect(file.suggestedFilename()).toMatch(/^webvm-backup-\d{8}-\d{6}\.json$/);
      const text = fs.readFileSync(await file.path(), 'utf8');
      expect(text).not.toContain(FIXTURE_TOKEN);
      return JSON.parse(text);
    };
    const backup = await download();
    exportedBackup = backup;
    await expect(page.getByTestId('backup-exported')).toContainText('Exported 2 application(s)');
    expect(backup.version).toBe('2');
    expect(Number.isNaN(Date.parse(backup.timestamp))).toBe(false);
    expect(backup.applications.map((app: { name: string }) => app.name).sort()).toEqual([GITHUB_APP, SITE].sort());
    expect(backup.packages.every((pkg: { status: string }) => pkg.status === 'installed')).toBe(true);
    expect(['unloaded', 'loading', 'booting', 'ready', 'hibernating', 'error']).toContain(backup.webvmState.state);
    // History is left out unless asked for; the GitHub token stays sealed.
    expect(backup.applications.every((app: any) => app.metrics.recentLogs.length === 0)).toBe(true);
    const github = backup.applications.find((app: any) => app.name === GITHUB_APP);
    expect(github.deployment.sourceConfig.token).toBeTruthy();
    await page.screenshot({ path: `${SCREENSHOTS}/backup-export-1280.png`, fullPage: true });

    // For another browser: without the sealed values.
    await page.getByTestId('backup-include-secrets').uncheck();
    const portable = await download();
    expect(portable.applications.find((app: any) => app.name === GITHUB_APP).deployment.sourceConfig.token ?? null).toBeNull();
    // The token in clear is nowhere: not in the page's source, nor in the server's copy, nor in
    // the app page the server renders (the server log is checked by tests/log_redaction.rs).
    expect(await page.content()).not.toContain(FIXTURE_TOKEN);
    const serverCopy = await (await page.request.get('/api/server_backup')).text();
    expect(serverCopy).toContain(GITHUB_APP);
    expect(serverCopy).not.toContain(FIXTURE_TOKEN);
    expect(await (await page.request.get(`/applications/${GITHUB_APP}`)).text()).not.toContain(FIXTURE_TOKEN);
    expect(pageErrors).toEqual([]);
  });

  test('12. import: a corrupt backup lists each problem by place and field; another implementation\'s backup previews and imports; a fresh browser gets the apps back', async ({ browser }) => {
    test.setTimeout(300_000);
    expect(exportedBackup, 'test 11 exported a backup').toBeTruthy();
    const exported = exportedBackup!;
    await page.goto('/backup');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await expect.poll(async () => Object.keys((await book()).applications).length, { timeout: 30_000 }).toBe(2);
    const before = await book();
    const input = (target: Page) => target.getByTestId('backup-import-file');
    const importFile = async (target: Page, name: string, content: unknown) => {
      await expect(input(target)).toBeEnabled({ timeout: 60_000 });
      await input(target).setInputFiles({
        name,
        mimeType: 'application/json',
        buffer: Buffer.from(typeof content === 'string' ? content : JSON.stringify(content)),
      });
    };

    // A corrupt backup: a port that is not a number, a date that is not a date, and two more
    // copies of an app under one name (the name is one problem, on the later copy).
    const corrupt = structuredClone(exported);
    corrupt.applications[0].execution.port = 'http';
    corrupt.applications[1].createdAt = 'last week';
    for (const id of ['7c9e6679-7425-40de-944b-e07fc1f90ae7', '8d9e6679-7425-40de-944b-e07fc1f90ae8']) {
      corrupt.applications.push({ ...structuredClone(exported.applications[1]), id });
    }
    await importFile(page, 'corrupt.json', corrupt);
    const problems = page.getByTestId('backup-import-problems').locator('li');
    await expect(problems.first()).toBeVisible({ timeout: 30_000 });
    const texts = await problems.allInnerTexts();
    console.log(`[apps] corrupt backup problems:\n  ${texts.join('\n  ')}`);
    const name0 = exported.applications[0].name;
    const name1 = exported.applications[1].name;
    expect(texts.some((text) => text.includes(`applications[0] '${name0}'`) && text.includes('execution.port'))).toBe(true);
    expect(texts.some((text) => text.includes(`applications[1] '${name1}'`) && text.includes('createdAt') && text.includes('ISO 8601'))).toBe(true);
    const taken = texts.filter((text) => text.includes('is already taken'));
    expect(taken).toHaveLength(1);
    expect(taken[0]).toContain(`applications[3] '${name1}'`);
    await page.screenshot({ path: `${SCREENSHOTS}/backup-import-refused-1280.png`, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await page.screenshot({ path: `${SCREENSHOTS}/backup-import-refused-390.png`, fullPage: true });
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
    // A truncated file is refused as such.
    await importFile(page, 'truncated.json', JSON.stringify(exported).slice(0, 400));
    await expect(page.getByTestId('backup-import-refused')).toContainText('not valid JSON');
    expect(await book()).toEqual(before);

    // A backup written by another implementation of the seed's interfaces.
    const foreign = {
      version: '1.4.0',
      timestamp: '2026-11-30T12:00:00.000Z',
      exportedBy: 'another-app-server',
      webvmState: {
        state: 'ready', loadProgress: 100, installedRuntimes: [], runningApps: [],
        systemResources: { memoryUsed: 120, memoryTotal: 512, diskUsed: 300, diskTotal: 2000, cpuUsage: 3, processCount: 21 },
      },
      applications: [{
        id: '5b0f8a3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
        name: FOREIGN_APP,
        runtime: { requiredRuntimes: ['busybox-httpd'], optionalRuntimes: [], minimumVersions: {}, recommendedVersions: {} },
        runtimeStatus: { canStart: true, missingRuntimes: [], conflictingRuntimes: [], versionMismatches: [], lastChecked: '2026-11-30', issues: [] },
        status: 'running',
        deployment: { sourceType: 'upload', sourceConfig: {}, deploymentPath: `${APP_AREA}/${FOREIGN_APP}`, entryPoint: 'index.html' },
        execution: {
          command: 'busybox', arguments: ['httpd', '-f', '-p', '8097'], workingDirectory: `${APP_AREA}/${FOREIGN_APP}/current`, port: 8097,
          environment: {}, secretEnvironment: {}, autoRestart: true, restartPolicy: 'on-failure',
        },
        metrics: {
          memoryUsage: 3, cpuUsage: 0, diskUsage: 1, requestCount: 10, requestRate: 0, responseTime: 5, errorRate: 0,
          uptime: 100, restartCount: 0, healthStatus: 'healthy',
          recentLogs: [{ timestamp: '2026-11-30 11:59:00', level: 'info', message: 'started', source: 'system' }],
          performanceHistory: [],
        },
        createdAt: '2026-11-01T10:00:00Z',
        lastDeployed: '20261102T100000+0100',
        favourite: true,
      }],
      packages: [],
      settings: {},
    };
    await importFile(page, 'other-server.json', foreign);
    await expect(page.getByTestId('backup-import-preview')).toBeVisible({ timeout: 30_000 });
    await expect(page.getByTestId('backup-import-added')).toHaveText('1');
    await expect(page.getByTestId('backup-import-replaced')).toHaveText('0');
    await page.locator('.backup-import__warnings summary').click();
    const warnings = page.getByTestId('backup-import-warnings');
    await expect(warnings).toContainText("version '1.4.0'");
    await expect(warnings).toContainText('exportedBy');
    await expect(warnings).toContainText('favourite');
    await expect(warnings).toContainText('holds none of its files');
    await page.screenshot({ path: `${SCREENSHOTS}/backup-import-preview-1280.png`, fullPage: true });
    await page.getByTestId('backup-import-apply').click();
    await expect(page.getByTestId('backup-imported')).toContainText('Imported 1 application(s)');
    const after = await book();
    const imported = Object.values(after.applications).find((app) => app.name === FOREIGN_APP);
    expect(imported, 'the imported app is in the record').toBeTruthy();
    expect(['draft', 'runtime-missing']).toContain(imported!.status);
    expect(Object.keys(after.applications)).toHaveLength(3);
    await expect
      .poll(async () => (await (await page.request.get('/applications')).text()).includes(`data-app="${FOREIGN_APP}"`), { timeout: 30_000 })
      .toBe(true);

    // A fresh browser profile: the exported backup brings both apps back; the sealed token
    // (another browser's key) is named as one to enter again.
    const fresh = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const other = await fresh.newPage();
      const otherErrors: string[] = [];
      other.on('pageerror', (error) => otherErrors.push(error.message));
      await other.goto('/backup');
      await expect(other.locator('body')).toHaveAttribute('data-hydrated', 'true');
      await importFile(other, 'webvm-backup.json', exported);
      await expect(other.getByTestId('backup-import-preview')).toBeVisible({ timeout: 30_000 });
      await expect(other.getByTestId('backup-import-added')).toHaveText('2');
      await expect(other.getByTestId('backup-import-secrets')).toContainText(`'${GITHUB_APP}': the GitHub token`);
      await expect(other.getByTestId('backup-import-snapshot')).toContainText('not in this backup');
      await other.screenshot({ path: `${SCREENSHOTS}/backup-import-fresh-1280.png`, fullPage: true });
      await other.getByTestId('backup-import-apply').click();
      await expect(other.getByTestId('backup-imported')).toContainText('Imported 2 application(s)');
      const names = await other.evaluate(() =>
        Object.values((window as unknown as HookWindow).webvm!.appBook().applications).map((app) => app.name).sort());
      expect(names).toEqual([GITHUB_APP, SITE].sort());
      await other.getByRole('link', { name: 'Your applications' }).click();
      await expect(other.locator(`tr[data-app="${SITE}"]`)).toBeVisible();
      await other.reload();
      await expect(other.locator(`tr[data-app="${GITHUB_APP}"]`)).toBeVisible({ timeout: 30_000 });
      expect(otherErrors).toEqual([]);
    } finally {
      await fresh.close();
    }
    expect(pageErrors).toEqual([]);
  });

  test('13. the mirror queue: a change the server can\'t take waits in IndexedDB across a reload, then reaches the server', async () => {
    test.setTimeout(120_000);
    await page.goto('/applications');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    const indicator = page.getByTestId('sync-indicator');
    await expect(indicator).toHaveAttribute('data-state', 'synced', { timeout: 30_000 });
    // Saves can't reach the server.
    await page.route('**/api/apply_mirror_writes', (route) => route.abort('internetdisconnected'));
    const site = Object.values((await book()).applications).find((app) => app.name === SITE)!;
    const description = 'edited while the server was away';
    await page.evaluate((app) => (window as unknown as { webvm: { saveApp(app: unknown): Promise<unknown> } }).webvm.saveApp(app),
      { ...site, description });
    await expect(indicator).toHaveAttribute('data-state', 'offline', { timeout: 15_000 });
    await expect(indicator).toContainText('1 change(s) kept here');
    await page.screenshot({ path: `${SCREENSHOTS}/apps-sync-offline-1280.png` });
    // The tab reloads while the server is still away: the change waits in IndexedDB.
    await page.reload();
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await expect(indicator).toHaveAttribute('data-state', /offline|pending/, { timeout: 15_000 });
    const started = Date.now();
    await page.unroute('**/api/apply_mirror_writes');
    await expect(indicator).toHaveAttribute('data-state', 'synced', { timeout: 60_000 });
    figure('mirror caught up after the server came back', seconds(Date.now() - started));
    await expect
      .poll(async () => (await (await page.request.get(`/applications/${SITE}`)).text()).includes(description), { timeout: 15_000 })
      .toBe(true);
    expect(pageErrors).toEqual([]);
  });

  test('14. a device link opens the workspace in another browser once, which imports the server\'s copy', async ({ browser }) => {
    test.setTimeout(120_000);
    await page.goto('/backup');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await page.getByTestId('device-link-create').click();
    const field = page.getByTestId('device-link-new');
    await expect(field).toHaveValue(/\/join\/[0-9a-f]{64}$/);
    const url = await field.inputValue();
    await page.getByTestId('device-link').screenshot({ path: `${SCREENSHOTS}/device-link-1280.png` });
    const names = Object.values((await book()).applications).map((app) => app.name).sort();
    expect(names.length).toBeGreaterThan(0);

    const other = await browser.newContext({ viewport: { width: 390, height: 844 } });
    try {
      const tab = await other.newPage();
      const otherErrors: string[] = [];
      tab.on('pageerror', (error) => otherErrors.push(error.message));
      const joined = Date.now();
      await tab.goto(url);
      await expect(tab.locator('body')).toHaveAttribute('data-hydrated', 'true');
      await tab.screenshot({ path: `${SCREENSHOTS}/join-390.png`, fullPage: true });
      await tab.getByTestId('join-redeem').click();
      await expect(tab).toHaveURL(/\/backup\?from=server$/, { timeout: 30_000 });
      await expect(tab.getByTestId('backup-import-preview')).toBeVisible({ timeout: 60_000 });
      await expect(tab.getByTestId('backup-import-added')).toHaveText(String(names.length));
      await tab.getByTestId('backup-import-apply').click();
      await expect(tab.getByTestId('backup-imported')).toBeVisible({ timeout: 30_000 });
      figure('device link: open → apps imported in the other browser', seconds(Date.now() - joined));
      const imported = await tab.evaluate(() => Object.values((window as unknown as { webvm: { appBook(): { applications: Record<string, { name: string }> } } })
        .webvm.appBook().applications).map((app) => app.name).sort());
      expect(imported).toEqual(names);
      await tab.screenshot({ path: `${SCREENSHOTS}/join-imported-390.png`, fullPage: true });
      // The link worked once: a third browser is refused.
      const third = await browser.newContext();
      try {
        const late = await third.newPage();
        await late.goto(url);
        await expect(late.locator('body')).toHaveAttribute('data-hydrated', 'true');
        await late.getByTestId('join-redeem').click();
        await expect(late.getByTestId('join-error')).toContainText('has been used or has expired');
      } finally {
        await third.close();
      }
      expect(otherErrors).toEqual([]);
    } finally {
      await other.close();
    }
  });

  test('15. settings: refused with the reason, saved into the record, kept across a reload, used for a new app\'s port', async () => {
    test.setTimeout(120_000);
    await page.goto('/settings');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await expect(page.getByTestId('settings-port-start')).toHaveValue('8000', { timeout: 30_000 });
    await page.getByTestId('settings-port-start').fill('9100');
    await page.getByTestId('settings-port-end').fill('9000');
    await page.getByTestId('settings-releases-kept').fill('0');
    await page.getByTestId('settings-save').click();
    const refused = page.getByTestId('settings-refused');
    await expect(refused).toContainText('port range 9100–9000 ends before it starts');
    await expect(refused).toContainText('releases kept 0 must be 1 to 20');
    await page.screenshot({ path: `${SCREENSHOTS}/settings-refused-1280.png`, fullPage: true });
    await page.getByTestId('settings-port-start').fill('9000');
    await page.getByTestId('settings-port-end').fill('9100');
    await page.getByTestId('settings-releases-kept').fill('5');
    await page.getByTestId('settings-save').click();
    await expect(page.getByTestId('settings-saved')).toContainText('outside the new range');
    await page.reload();
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await expect(page.getByTestId('settings-port-start')).toHaveValue('9000', { timeout: 30_000 });
    await expect(page.getByTestId('settings-releases-kept')).toHaveValue('5');
    const settings = await page.evaluate(() => (window as unknown as { webvm: { appBook(): { settings: { portRange: { start: number } } } } }).webvm.appBook().settings);
    expect(settings.portRange.start).toBe(9000);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${SCREENSHOTS}/settings-390.png`, fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    // A new application's port comes from the new range.
    const form = await openNewForm();
    await expect(form.getByLabel('Primary port', { exact: true })).toHaveValue(/^90\d\d$/, { timeout: 30_000 });
    // Back to the defaults for whatever runs next.
    await page.goto('/settings');
    await expect(page.getByTestId('settings-port-start')).toHaveValue('9000', { timeout: 30_000 });
    await page.getByTestId('settings-port-start').fill('8000');
    await page.getByTestId('settings-port-end').fill('8999');
    await page.getByTestId('settings-releases-kept').fill('3');
    await page.getByTestId('settings-save').click();
    await expect(page.getByTestId('settings-saved')).toBeVisible();
    expect(pageErrors).toEqual([]);
  });

  test('16. a legacy app hosting export migrates: previewed, its files checked, saved, and deployed into the VM', async () => {
    test.setTimeout(DEPLOY_MS + 120_000);
    const legacyName = 'Legacy Site';
    const migrated = 'legacy-site';
    const files = [
      { path: 'index.html', data: Buffer.from('<!doctype html><title>legacy</title><h1>from the legacy host</h1>\n') },
      { path: 'img/logo.svg', data: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>\n') },
    ];
    const index = (tampered: boolean) => JSON.stringify({
      version: '1',
      timestamp: '2023-03-01T10:00:00Z',
      apps: [{
        name: legacyName,
        deployedAt: '2023-01-05T09:30:00Z',
        lastUpdated: '2023-02-20T18:00:00Z',
        files: files.map((file, position) => ({
          path: file.path,
          size: file.data.length,
          sha256: tampered && position === 1 ? '0'.repeat(64) : createHash('sha256').update(file.data).digest('hex'),
          blobId: '00000000-0000-4000-8000-00000000000' + position,
        })),
      }],
    });
    const exportZip = (tampered: boolean) => storedZip([
      { path: 'legacy-export.json', data: Buffer.from(index(tampered)) },
      ...files.map((file) => ({ path: `apps/${legacyName}/${file.path}`, data: file.data })),
    ]);
    await page.goto('/backup');
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    await vmReady();
    const input = page.getByTestId('backup-import-file');
    // A file that doesn't match its SHA-256 is named, with the app and the field.
    await input.setInputFiles({ name: 'legacy-tampered.zip', mimeType: 'application/zip', buffer: exportZip(true) });
    const problems = page.getByTestId('backup-import-problems');
    await expect(problems).toContainText(`applications[0] '${legacyName}'`, { timeout: 30_000 });
    await expect(problems).toContainText('files[1]');
    await expect(problems).toContainText('does not match its SHA-256');
    expect(Object.values((await book()).applications).some((app) => app.name === migrated)).toBe(false);
    // The real export: previewed, then migrated with its files.
    await input.setInputFiles({ name: 'legacy-export.zip', mimeType: 'application/zip', buffer: exportZip(false) });
    await expect(page.getByTestId('backup-import-preview')).toContainText(migrated, { timeout: 30_000 });
    await expect(page.getByTestId('backup-legacy-files')).toContainText('2 file(s) for 1 app(s)');
    await shot('legacy-preview');
    const started = Date.now();
    await page.getByTestId('backup-legacy-migrate').click();
    await expect(page.getByTestId('backup-legacy-done')).toBeVisible({ timeout: DEPLOY_MS });
    figure('legacy export migrated and deployed', seconds(Date.now() - started));
    await expect(page.getByTestId('backup-legacy-deployed')).toContainText(migrated);
    await shot('legacy-migrated');
    const app = Object.values((await book()).applications).find((app) => app.name === migrated)!;
    expect(app.deployment.sourceType).toBe('upload');
    expect(await guestFile(`${APP_AREA}/${migrated}/current/index.html`)).toContain('from the legacy host');
    expect(await guestFile(`${APP_AREA}/${migrated}/current/img/logo.svg`)).toContain('<svg');
    expect(pageErrors).toEqual([]);
  });
});
