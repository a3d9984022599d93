#!/usr/bin/env node
// Builds the guest image's boot snapshot: boots the image once in headless Chromium (the real
// page, served by the release server), lets the guest settle, hibernates it, and stores the
// v86 state gzip-compressed next to the image, with a JSON record:
//
//   $WEBVM_GUEST_DIR/boot-snapshot-v86-<v86 version>-<memory>m.bin.gz
//   $WEBVM_GUEST_DIR/boot-snapshot-v86-<v86 version>-<memory>m.json
//
// The image directory is keyed by the image's content hash, so the snapshot is keyed by image
// hash + v86 version + machine options. The page's options always carry
// `preserve_mac_from_state_image: true`, so the network keeps working after a restore. The
// server offers the snapshot in /guest/manifest.json; first visits restore it in seconds
// instead of cold-booting for about a minute.
//
// Before saving, guest/warm-snapshot.sh runs in the guest, so the snapshot's page cache holds
// what a first runtime install reads (the record keeps the script's SHA-256: a changed script
// rebuilds the snapshot).
//
// Skips the build when the snapshot exists (use --force to rebuild). After a build, restores
// the snapshot once in a fresh browser context to check it; a snapshot that fails that check
// is deleted and the script exits non-zero.
//
// Usage: node scripts/build-boot-snapshot.mjs [--force]
// Environment (scripts/setup.sh exports these): WEBVM_GUEST_DIR, WEBVM_SERVER_BIN or
// CARGO_TARGET_DIR, LEPTOS_SITE_ROOT (default target/site in the project), WEBVM_V86_DIR.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

import {
  exec,
  launchChromium,
  mebibytes,
  newPage,
  openDashboard,
  paths,
  seconds,
  startServer,
  v86Version,
  vmSource,
  waitForState,
} from './lib/webvm-harness.mjs';

/** Guest RAM of the page's machine (`V86Settings::default()` in src/client/vm/image.rs). */
const MEMORY_MB = 256;
/** How long the guest runs after its agent said hello, so boot-time work has finished. */
const SETTLE_MS = 5_000;
const COLD_BOOT_TIMEOUT_MS = 360_000;

const log = (message) => console.error(`[boot-snapshot] ${message}`);
const WARM_UP_SCRIPT = fs.readFileSync(new URL('../guest/warm-snapshot.sh', import.meta.url), 'utf8');

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Saves the page's hibernation snapshot (IndexedDB `webvm-snapshots`, key `hibernate`,
 * see js/idb_store.js) through a download; returns its metadata record. */
async function downloadHibernation(page, file) {
  const [download, metaJson] = await Promise.all([
    page.waitForEvent('download', { timeout: 120_000 }),
    page.evaluate(async () => {
      const db = await new Promise((resolve, reject) => {
        const request = indexedDB.open('webvm-snapshots');
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      const get = (store, key = 'hibernate') =>
        new Promise((resolve, reject) => {
          const request = db.transaction(store).objectStore(store).get(key);
          request.onsuccess = () => resolve(request.result);
          request.onerror = () => reject(request.error);
        });
      const meta = await get('meta');
      const head = await get('data');
      // The state is stored in parts ({ parts, size } under the key, `hibernate#<n>` each).
      const parts = [];
      if (head instanceof ArrayBuffer) parts.push(head);
      else if (head) for (let n = 0; n < head.parts; n++) parts.push(await get('data', `hibernate#${n}`));
      db.close();
      if (!meta || parts.length === 0 || parts.some((part) => !part)) throw new Error('no hibernation snapshot in IndexedDB');
      const link = document.createElement('a');
      link.href = URL.createObjectURL(new Blob(parts, { type: 'application/octet-stream' }));
      link.download = 'boot-snapshot.bin';
      document.body.appendChild(link);
      link.click();
      return meta;
    }),
  ]);
  await download.saveAs(file);
  return JSON.parse(metaJson);
}

async function build(p, server, browser, expected) {
  const { context, page } = await newPage(browser, server.base, { autoboot: false });
  try {
    await openDashboard(page);
    const started = Date.now();
    await page.evaluate(() => window.webvm.boot());
    await waitForState(page, 'ready', COLD_BOOT_TIMEOUT_MS);
    const info = await page.evaluate(() => window.webvm.info());
    log(`cold boot to ready: ${seconds(Date.now() - started)} (engine ${seconds(info.bootMs ?? 0)})`);
    await page.waitForTimeout(SETTLE_MS);
    const uname = await exec(page, 'uname', ['-m']);
    if (uname.exitCode !== 0 || uname.stdout.trim() !== 'i686') {
      throw new Error(`the guest does not answer as expected: ${JSON.stringify(uname)}`);
    }
    const warmUp = await exec(page, 'sh', ['-c', WARM_UP_SCRIPT], { timeoutMs: 300_000 });
    if (warmUp.exitCode !== 0) throw new Error(`guest/warm-snapshot.sh failed (${warmUp.exitCode}): ${warmUp.stderr}`);
    log(warmUp.stdout.trim());
    await exec(page, 'sync');

    const savedAt = Date.now();
    await page.evaluate(() => window.webvm.hibernate());
    await waitForState(page, 'hibernating', 60_000);
    await page.waitForFunction(() => {
      const info = window.webvm.info();
      return info.saved !== null && info.busy === null;
    }, null, { timeout: 180_000, polling: 250 });
    const notice = (await page.evaluate(() => window.webvm.info())).notice;
    if (notice && /hibernate/i.test(notice)) throw new Error(notice);
    log(`hibernated in ${seconds(Date.now() - savedAt)}`);

    const rawFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'webvm-snapshot-')), 'state.bin');
    try {
      const meta = await downloadHibernation(page, rawFile);
      if (meta.v86Version !== expected.v86Version || meta.memoryMb !== expected.memoryMb) {
        throw new Error(
          `the page saved v86 ${meta.v86Version} with ${meta.memoryMb} MiB, the file name says v86 ${expected.v86Version} with ${expected.memoryMb} MiB: update MEMORY_MB or the page's V86_VERSION`,
        );
      }
      const raw = fs.readFileSync(rawFile);
      if (raw.length !== meta.size) throw new Error(`the download has ${raw.length} bytes, the record ${meta.size}`);
      const gzipStarted = Date.now();
      const encoded = await promisify(zlib.gzip)(raw, { level: 9 });
      log(`state ${mebibytes(raw.length)}, gzip ${mebibytes(encoded.length)} (in ${seconds(Date.now() - gzipStarted)})`);
      return {
        ...meta,
        sha256: sha256(raw),
        file: expected.file,
        encoding: 'gzip',
        encodedSize: encoded.length,
        encodedSha256: sha256(encoded),
        builtWith: { coldBootMs: info.bootMs, settleMs: SETTLE_MS, warmUp: warmUp.stdout.trim() },
        warmUpSha256: sha256(WARM_UP_SCRIPT),
        encoded,
      };
    } finally {
      fs.rmSync(path.dirname(rawFile), { recursive: true, force: true });
    }
  } finally {
    await context.close();
  }
}

/** Restores the snapshot on a first visit (fresh context) and runs a command in it. */
async function verify(server, browser) {
  const { context, page } = await newPage(browser, server.base);
  try {
    const started = Date.now();
    await openDashboard(page);
    await waitForState(page, 'ready', 120_000);
    const source = await vmSource(page);
    if (source !== 'boot-snapshot') {
      const info = await page.evaluate(() => window.webvm.info());
      throw new Error(`the page started from ${source}, not the boot snapshot (${info.notice ?? 'no notice'})`);
    }
    const uname = await exec(page, 'uname', ['-m']);
    if (uname.stdout.trim() !== 'i686') throw new Error(`the restored guest answered ${JSON.stringify(uname)}`);
    log(`check: a first visit restored it and ran a command; page load to ready ${seconds(Date.now() - started)}`);
  } finally {
    await context.close();
  }
}

async function main() {
  const force = process.argv.includes('--force');
  const p = paths();
  const version = v86Version(p.v86Dir);
  const stem = `boot-snapshot-v86-${version}-${MEMORY_MB}m`;
  const expected = { v86Version: version, memoryMb: MEMORY_MB, file: `${stem}.bin.gz` };
  const recordPath = path.join(p.guestDir, `${stem}.json`);
  const filePath = path.join(p.guestDir, expected.file);
  if (!force && fs.existsSync(recordPath)) {
    const record = JSON.parse(fs.readFileSync(recordPath, 'utf8'));
    const sameWarmUp = record.warmUpSha256 === sha256(WARM_UP_SCRIPT);
    if (sameWarmUp && fs.existsSync(filePath) && fs.statSync(filePath).size === record.encodedSize) {
      log(`cached: ${filePath}`);
      return;
    }
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(p.guestDir, 'manifest.json'), 'utf8'));
  log(`building the boot snapshot of image ${manifest.hash} with v86 ${version}, ${MEMORY_MB} MiB`);
  const started = Date.now();
  fs.rmSync(recordPath, { force: true });
  fs.rmSync(filePath, { force: true });
  const server = await startServer(p);
  const browser = await launchChromium();
  try {
    const { encoded, ...record } = await build(p, server, browser, expected);
    if (record.imageHash !== manifest.hash) {
      throw new Error(`the page booted image ${record.imageHash}, the guest directory holds ${manifest.hash}`);
    }
    record.buildSeconds = Math.round((Date.now() - started) / 1000);
    // The file first, the record last: a record only ever names a complete file.
    fs.writeFileSync(`${filePath}.tmp`, encoded);
    fs.renameSync(`${filePath}.tmp`, filePath);
    fs.writeFileSync(`${recordPath}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
    fs.renameSync(`${recordPath}.tmp`, recordPath);
    try {
      await verify(server, browser);
    } catch (error) {
      fs.rmSync(recordPath, { force: true });
      fs.rmSync(filePath, { force: true });
      throw new Error(`the new boot snapshot did not restore, so it was deleted: ${error.message}`);
    }
    log(`built in ${seconds(Date.now() - started)}: ${filePath} (${mebibytes(record.size)} raw, ${mebibytes(record.encodedSize)} gzip)`);
  } finally {
    await browser.close();
    await server.stop();
  }
}

main().catch((error) => {
  log(`failed: ${error.message}`);
  process.exit(1);
});
