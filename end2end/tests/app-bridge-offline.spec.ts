// The /apps/ request bridge when no tab runs the app's VM: a fresh browser opening
// /apps/hello/ gets the server's "Opening hello…" page, whose script installs the /apps/
// service worker and reloads; from then on the worker answers every /apps/hello/ address
// itself, with its "No tab is running this app's VM" page, without reaching the server.
import { test, expect } from '@playwright/test';

const NO_TAB = "No tab is running this app's VM.";

test.describe('the /apps/ bridge without a VM tab', () => {
  test('a first visit installs the worker, which then answers by itself', async ({ page, context }) => {
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // Playwright gives each test a fresh context: no worker, no other tab.
    expect(context.serviceWorkers()).toHaveLength(0);

    const first = await page.goto('/apps/hello/');
    // The server's bootstrap page (no worker controlled this navigation)…
    expect(first?.status()).toBe(200);
    expect(first?.fromServiceWorker()).toBe(false);
    // …which installs the worker and reloads into the worker's own answer.
    await expect(page.getByText(NO_TAB)).toBeVisible();
    await expect(page).toHaveTitle('hello is not running');
    await expect(page).toHaveURL(/\/apps\/hello\/$/);
    await expect(page.locator('main')).toContainText('start hello, then reload this page');
    await expect(page.getByRole('link', { name: 'webvm-appserver' })).toHaveAttribute('href', '/');
    expect(
      await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL ?? null),
    ).toMatch(/\/apps-sw\.js$/);
    expect(
      await page.evaluate(async () => (await navigator.serviceWorker.getRegistration('/apps/'))?.scope ?? null),
    ).toMatch(/\/apps\/$/);

    // A second address of the app: answered by the worker directly.
    const second = await page.goto('/apps/hello/other?x=1');
    expect(second?.fromServiceWorker()).toBe(true);
    expect(second?.status()).toBe(503);
    expect(second?.headers()['cache-control']).toBe('no-store');
    await expect(page.getByText(NO_TAB)).toBeVisible();
    await expect(page).toHaveURL(/\/apps\/hello\/other\?x=1$/);
    expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);

    // Without its slash, the worker redirects to the app's home, query kept.
    await page.goto('/apps/hello?y=2');
    await expect(page).toHaveURL(/\/apps\/hello\/\?y=2$/);
    await expect(page.getByText(NO_TAB)).toBeVisible();

    // The site's own pages stay the server's (outside the worker's scope).
    const health = await page.goto('/healthz');
    expect(health?.fromServiceWorker()).toBe(false);
    expect(health?.status()).toBe(200);

    expect(pageErrors).toEqual([]);
  });
});

test.describe('the /apps/ bridge without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the bootstrap page explains what the app needs', async ({ page }) => {
    const response = await page.goto('/apps/hello/');
    expect(response?.status()).toBe(200);
    await expect(page).toHaveTitle('Opening hello…');
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Opening hello…');
    // Playwright's text matching skips <noscript>; innerText is what the reader sees.
    await expect(page.locator('main')).toContainText('Both need JavaScript, which is off for this page', {
      useInnerText: true,
    });
    await expect(page.locator('#bridge-status')).toBeHidden();
    await expect(page.locator('#bridge-unsupported')).toBeHidden();
    await expect(page.getByRole('link', { name: 'webvm-appserver' }).first()).toHaveAttribute('href', '/');
  });
});
