#!/usr/bin/env node
// VM benchmark: prints figures, asserts nothing (not part of the test suite). Starts the
// release server on a free port and drives Debian's Chromium headless:
//   1. cold boot to ready (Boot button path, autoboot off)
//   2. first visit restoring the server's boot snapshot, page load to ready
//   3. hibernate: time and snapshot size
//   4. reload to ready (resume from this browser's hibernation snapshot)
//   5. exec round trip, median of 20
//   6. a first visit again in the same profile with its site data cleared but its HTTP cache
//      kept: page load to ready from the boot snapshot on a warm HTTP cache
// Run it with scripts/bench-vm.sh (which sources scripts/setup.sh for the environment).
import {
  exec,
  launchChromium,
  mebibytes,
  newPage,
  openDashboard,
  paths,
  seconds,
  startServer,
  vmSource,
  waitForState,
} from '../../scripts/lib/webvm-harness.mjs';

const figures = [];
const figure = (label, value) => {
  figures.push(`${label.padEnd(48)} ${value}`);
  console.log(`[vm bench] ${label}: ${value}`);
};

async function coldBoot(browser, base) {
  const { context, page } = await newPage(browser, base, { autoboot: false, quiet: true });
  try {
    await openDashboard(page);
    const started = Date.now();
    await page.evaluate(() => window.webvm.boot());
    await waitForState(page, 'ready', 360_000);
    const info = await page.evaluate(() => window.webvm.info());
    figure('cold boot to ready (Boot click → ready)', seconds(Date.now() - started));
    figure('cold boot to ready (engine)', seconds(info.bootMs ?? 0));
  } finally {
    await context.close();
  }
}

async function fromBootSnapshot(browser, base) {
  const { context, page } = await newPage(browser, base, { quiet: true });
  try {
    const manifest = await (await fetch(`${base}/guest/manifest.json`)).json();
    if (!manifest.bootSnapshot) {
      figure('boot snapshot', 'none on this server (run scripts/build-boot-snapshot.mjs)');
      return;
    }
    figure('boot snapshot size (raw / gzip on the wire)', `${mebibytes(manifest.bootSnapshot.size)} / ${mebibytes(manifest.bootSnapshot.encodedSize)}`);
    const started = Date.now();
    await openDashboard(page);
    await waitForState(page, 'ready', 180_000);
    const loadToReady = Date.now() - started;
    const source = await vmSource(page);
    const info = await page.evaluate(() => window.webvm.info());
    figure('first visit, cold HTTP cache: page load to ready', `${seconds(loadToReady)} (from ${source})`);
    figure('first visit: download + restore (engine side)', seconds(info.bootMs ?? 0));

    const times = [];
    for (let i = 0; i < 20; i++) {
      const t0 = Date.now();
      const result = await exec(page, 'true');
      if (result.exitCode !== 0) throw new Error(`true exited ${result.exitCode}`);
      times.push(Date.now() - t0);
    }
    times.sort((a, b) => a - b);
    figure('exec round trip, median of 20', `${times[10]} ms (min ${times[0]}, max ${times[19]})`);

    await exec(page, 'sh', ['-c', 'echo bench > /root/bench.txt']);
    await page.evaluate(() => window.webvm.hibernate());
    await page.waitForFunction(() => {
      const info = window.webvm.info();
      return window.webvm.state() === 'hibernating' && info.busy === null && info.lastHibernateMs !== null;
    }, null, { timeout: 180_000, polling: 100 });
    const saved = await page.evaluate(() => window.webvm.info());
    figure('hibernate (save_state + IndexedDB)', `${seconds(saved.lastHibernateMs ?? 0)}, ${mebibytes(saved.lastHibernateBytes ?? 0)}`);

    const reloaded = Date.now();
    await page.reload();
    await page.waitForFunction(() => !!window.webvm, null, { timeout: 60_000 });
    await waitForState(page, 'ready', 180_000);
    const resumed = await page.evaluate(() => window.webvm.info());
    figure('reload to ready (resume from IndexedDB)', `${seconds(Date.now() - reloaded)} (engine ${seconds(resumed.bootMs ?? 0)}, from ${await vmSource(page)})`);
    const check = await exec(page, 'cat', ['/root/bench.txt']);
    if (check.stdout !== 'bench\n') throw new Error('the file written before hibernating is gone');

    // Site data gone (IndexedDB, service worker), HTTP cache kept: the page, its wasm and the
    // boot snapshot come from the cache.
    await page.goto('about:blank');
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.clearDataForOrigin', {
      origin: new URL(base).origin,
      storageTypes: 'indexeddb,local_storage,service_workers,cache_storage',
    });
    const revisited = Date.now();
    await openDashboard(page);
    await waitForState(page, 'ready', 180_000);
    const warm = await page.evaluate(() => window.webvm.info());
    figure('first visit, warm HTTP cache: page load to ready', `${seconds(Date.now() - revisited)} (engine ${seconds(warm.bootMs ?? 0)}, from ${await vmSource(page)})`);
  } finally {
    await context.close();
  }
}

async function main() {
  const p = paths();
  const server = await startServer(p);
  const browser = await launchChromium();
  try {
    console.log(`[vm bench] server ${server.base}, guest ${p.guestDir}`);
    if (!process.argv.includes('--no-cold')) await coldBoot(browser, server.base);
    await fromBootSnapshot(browser, server.base);
  } finally {
    await browser.close();
    await server.stop();
  }
  console.log(`\nVM figures:\n  ${figures.join('\n  ')}`);
}

main().catch((error) => {
  console.error(`[vm bench] failed: ${error.message}`);
  process.exit(1);
});
