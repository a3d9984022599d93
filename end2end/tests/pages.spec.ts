// Every page, server-rendered without JavaScript, and hydration proven by client-side navigation.
import { test, expect, type Page } from '@playwright/test';
import * as fs from 'node:fs';

const SCREENSHOTS = 'screenshots';
fs.mkdirSync(SCREENSHOTS, { recursive: true });

type PageCase = { name: string; path: string; heading: RegExp; text: RegExp; status: number };

const PAGES: PageCase[] = [
  { name: 'dashboard', path: '/', heading: /Dashboard/, text: /Getting started/, status: 200 },
  { name: 'packages', path: '/packages', heading: /Packages/, text: /catalog is empty|packages/, status: 200 },
  { name: 'applications', path: '/applications', heading: /Applications/, text: /No applications yet/, status: 200 },
  { name: 'application-missing', path: '/applications/no-such-app', heading: /Not found/, text: /was not found/, status: 404 },
  { name: 'settings', path: '/settings', heading: /Settings/, text: /Defaults/, status: 200 },
  { name: 'backup', path: '/backup', heading: /Backup/, text: /Nothing to back up yet/, status: 200 },
  { name: 'status-invalid', path: '/status/not-a-token', heading: /Not found/, text: /invalid, has expired or has been revoked/, status: 404 },
  { name: 'not-found', path: '/no/such/page', heading: /This page does not exist/, text: /mistyped/, status: 404 },
];

async function screenshotBoth(page: Page, name: string) {
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: `${SCREENSHOTS}/${name}-${width}.png`, fullPage: true });
  }
}

test.describe('server-rendered pages without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  for (const pageCase of PAGES) {
    test(`${pageCase.name} renders on the server`, async ({ page }) => {
      const response = await page.goto(pageCase.path);
      expect(response?.status()).toBe(pageCase.status);
      await expect(page.getByRole('heading', { level: 1 }).or(page.getByRole('heading', { level: 2 })).first()).toContainText(pageCase.heading);
      await expect(page.locator('main')).toContainText(pageCase.text);
      await expect(page.locator('.loading')).toHaveCount(0);
      await screenshotBoth(page, `${pageCase.name}-nojs`);
    });
  }

  test('the package search works as a plain form', async ({ page }) => {
    await page.goto('/packages');
    await page.getByLabel('Search').fill('nginx');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect(page).toHaveURL(/\/packages\?q=nginx/);
    await expect(page.getByLabel('Search')).toHaveValue('nginx');
  });
});

test.describe('hydrated app', () => {
  test('navigates on the client without a full page load, with no console errors', async ({ page }) => {
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(error.message));

    await page.goto('/');
    await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
    await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'same-document'));

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Packages' }).click();
    await expect(page).toHaveURL(/\/packages$/);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Packages');
    await expect(page.getByRole('link', { name: 'Packages' })).toHaveAttribute('aria-current', 'page');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await expect(page).toHaveURL(/\/settings$/);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Settings');

    const marker = await page.evaluate(() => (window as unknown as { marker?: string }).marker);
    expect(marker).toBe('same-document');
    expect(errors).toEqual([]);
  });

  test('every page hydrates and looks right at desktop and phone widths', async ({ page }) => {
    for (const pageCase of PAGES) {
      await page.goto(pageCase.path);
      await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
      await screenshotBoth(page, pageCase.name);
    }
  });
});
