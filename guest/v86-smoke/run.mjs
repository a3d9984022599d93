// Boots the guest image in v86 inside Debian's headless Chromium and prints
// timings: cold boot, agent exec, page -> guest TCP, 9p, save_state size,
// restore time. Usage (after `npm ci` in this directory):
//
//   node run.mjs [IMAGE_DIR]          (default: the output of ../build.sh)
//
// Environment: WEBVM_V86_MEM_MIB (default 256), WEBVM_V86_CHUNK_KIB (default
// 256, the hda fixed_chunk_size), WEBVM_V86_BOOT_TIMEOUT_S (default 300),
// WEBVM_V86_EXTRA_CMDLINE (appended to the kernel command line, e.g.
// "initcall_debug"), WEBVM_V86_DMESG=FILE (save the guest's dmesg),
// WEBVM_V86_VERBOSE=1 (echo the page's console, i.e. the guest's ttyS0),
// WEBVM_V86_PROBES="cmd|cmd" (time shell commands after the restore).
// Serves everything from a local static server on 127.0.0.1 with HTTP Range
// support (hda async loading needs it). Never downloads a browser.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const imageDir =
  process.argv[2] ||
  execFileSync("bash", [path.join(here, "..", "build.sh")], { stdio: ["ignore", "pipe", "inherit"] })
    .toString()
    .trim()
    .split("\n")
    .pop();
const manifest = JSON.parse(fs.readFileSync(path.join(imageDir, "manifest.json"), "utf8"));
const v86Build = path.join(here, "node_modules", "v86", "build");

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };
const stats = { diskRequests: 0, diskBytes: 0 };

function resolvePath(urlPath) {
  if (urlPath === "/") return path.join(here, "index.html");
  if (urlPath === "/smoke.js") return path.join(here, "smoke.js");
  const v86 = urlPath.match(/^\/v86\/([\w.-]+)$/);
  if (v86) return path.join(v86Build, v86[1]);
  const img = urlPath.match(/^\/image\/([\w.-]+)$/);
  if (img && manifest.files[img[1]]) return path.join(imageDir, img[1]);
  return null;
}

const server = http.createServer((req, res) => {
  const file = resolvePath(new URL(req.url, "http://x").pathname);
  if (!file || !fs.existsSync(file)) {
    res.writeHead(404).end();
    return;
  }
  const size = fs.statSync(file).size;
  const headers = {
    "Content-Type": TYPES[path.extname(file)] || "application/octet-stream",
    "Accept-Ranges": "bytes",
    "Cache-Control": "no-store",
  };
  let start = 0;
  let end = size - 1;
  let status = 200;
  const range = req.headers.range && /^bytes=(\d+)-(\d*)$/.exec(req.headers.range);
  if (range) {
    start = Number(range[1]);
    end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    if (start > end) {
      res.writeHead(416, { "Content-Range": `bytes */${size}` }).end();
      return;
    }
    status = 206;
    headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
  }
  headers["Content-Length"] = end - start + 1;
  if (file.endsWith("rootfs.ext4")) {
    stats.diskRequests++;
    stats.diskBytes += end - start + 1;
  }
  res.writeHead(status, headers);
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  fs.createReadStream(file, { start, end }).pipe(res);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;

const cfg = {
  memoryMiB: Number(process.env.WEBVM_V86_MEM_MIB || 256),
  chunkSize: Number(process.env.WEBVM_V86_CHUNK_KIB || 256) * 1024,
  diskSize: manifest.files["rootfs.ext4"].size,
  cmdline: [manifest.kernelCmdline, process.env.WEBVM_V86_EXTRA_CMDLINE].filter(Boolean).join(" "),
  bootTimeoutMs: Number(process.env.WEBVM_V86_BOOT_TIMEOUT_S || 300) * 1000,
};

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
let failed = 0;
let passed = 0;
const t = (label, ms, extra = "") => console.log(`${label.padEnd(34)} ${String(ms).padStart(7)} ms  ${extra}`);
const expect = (cond, what) => {
  if (cond) passed++;
  else {
    failed++;
    console.log(`FAIL: ${what}`);
  }
};

try {
  const page = await browser.newPage();
  page.on("console", (m) => {
    if (process.env.WEBVM_V86_VERBOSE || m.type() === "error") console.log(`  page: ${m.text()}`);
  });
  page.on("pageerror", (e) => console.log(`  page error: ${e}`));
  await page.goto(base + "/");
  await page.waitForFunction(() => window.smoke && window.V86);
  console.log(`image ${manifest.hash} (${imageDir}), v86 memory ${cfg.memoryMiB} MiB, chunk ${cfg.chunkSize / 1024} KiB`);

  const boot = await page.evaluate((c) => window.smoke.coldBoot(c), cfg);
  t("cold boot to webvm-ready", boot.readyMs, boot.marker);
  t("cold boot to agent HELLO", boot.helloMs, `instance ${boot.instance.slice(0, 8)}…`);
  console.log(`  disk: ${stats.diskRequests} range requests, ${(stats.diskBytes / 1048576).toFixed(1)} MiB read during boot`);

  const times = await page.evaluate(() => window.smoke.exec(["cat", "/run/webvm/boot-times"]));
  console.log(`  guest boot stages (s since kernel start): ${times.stdout.trim().split("\n").join(", ")}`);

  if (process.env.WEBVM_V86_DMESG) {
    const dmesg = await page.evaluate(() => window.smoke.exec(["dmesg"]));
    fs.writeFileSync(process.env.WEBVM_V86_DMESG, dmesg.stdout);
    console.log(`  dmesg written to ${process.env.WEBVM_V86_DMESG}`);
  }

  const uname = await page.evaluate(() => window.smoke.exec(["uname", "-m"]));
  t("exec uname -m", uname.ms, JSON.stringify(uname.stdout));
  expect(uname.code === 0 && uname.stdout === "i686\n", "uname -m");
  const fls = await page.evaluate(() => window.smoke.exec(["false"]));
  t("exec false", fls.ms, `code ${fls.code}`);
  expect(fls.code === 1, "false exits 1");

  await page.evaluate(() => window.smoke.push9p("/hello.txt", "hi via 9p\n"));
  const cat = await page.evaluate(() => window.smoke.exec(["cat", "/mnt/host/hello.txt"]));
  t("9p push + cat", cat.ms, JSON.stringify(cat.stdout));
  expect(cat.stdout === "hi via 9p\n", "9p file visible in the guest");

  await page.evaluate(() =>
    window.smoke.exec(["sh", "-c", "mkdir -p /tmp/www && echo hello-from-guest > /tmp/www/index.html"]),
  );
  await page.evaluate(() => window.smoke.spawn(["busybox", "httpd", "-f", "-p", "8080", "-h", "/tmp/www"]));
  // Retry until httpd listens (a refused connection closes with no data).
  let http1 = { text: "", ms: 0 };
  for (let i = 0; i < 30 && !http1.text; i++) {
    await page.waitForTimeout(500);
    http1 = await page.evaluate(() => window.smoke.tcpGet(8080));
  }
  t("page -> guest TCP (connect 8080)", http1.ms, JSON.stringify(http1.text.split("\r\n")[0]));
  expect(http1.text.includes("hello-from-guest"), "page -> guest HTTP");

  const saved = await page.evaluate(() => window.smoke.save());
  t("save_state", saved.ms, `${(saved.bytes / 1048576).toFixed(1)} MiB snapshot, ${(saved.gzipBytes / 1048576).toFixed(1)} MiB gzipped`);
  await page.evaluate(() => window.smoke.destroy());

  const restored = await page.evaluate(() => window.smoke.restore());
  t("restore to emulator-started", restored.startedMs);
  t("restore to agent PONG", restored.ms, `instance ${restored.instance.slice(0, 8)}…`);
  expect(restored.instance === boot.instance, "same agent instance after restore");
  const uname2 = await page.evaluate(() => window.smoke.exec(["uname", "-m"]));
  t("exec uname -m after restore", uname2.ms, JSON.stringify(uname2.stdout));
  expect(uname2.code === 0 && uname2.stdout === "i686\n", "exec after restore");
  if (process.env.WEBVM_V86_PROBES) {
    // e.g. WEBVM_V86_PROBES="true|perl -e1|perl -c /usr/local/sbin/webvm-agent"
    for (const cmd of process.env.WEBVM_V86_PROBES.split("|")) {
      for (let i = 0; i < 3; i++) {
        const r = await page.evaluate((c) => window.smoke.exec(["sh", "-c", c]), cmd);
        t(`  probe: ${cmd}`.slice(0, 34), r.ms, `exit ${r.code}`);
      }
    }
  }
  const http2 = await page.evaluate(() => window.smoke.tcpGet(8080));
  t("page -> guest TCP after restore", http2.ms, JSON.stringify(http2.text.split("\r\n")[0]));
  expect(http2.text.includes("hello-from-guest"), "page -> guest HTTP after restore");
} catch (e) {
  failed++;
  console.log(`FAIL: ${e.stack || e}`);
} finally {
  await browser.close();
  server.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
