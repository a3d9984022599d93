// Browser side of the v86 smoke test: boots the guest image in v86, talks to
// the guest agent (WV1, guest/PROTOCOL.md) over COM2 and measures a
// save_state / restore round trip. Driven by run.mjs through window.smoke.
"use strict";

const enc = new TextEncoder();
const dec = new TextDecoder();

function sum32(bytes) {
  let s = 0;
  for (const b of bytes) s = (s + b) >>> 0;
  return s;
}
function b64(u8) {
  let s = "";
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  return btoa(s);
}
function unb64(t) {
  const s = atob(t);
  const u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return u;
}
function encodeFrame(kind, id, fields = []) {
  const body = `~WV1 ${kind} ${id}` + fields.map(([k, v]) => ` ${k}=${v}`).join("");
  return enc.encode(`${body} *${sum32(enc.encode(body)).toString(16).padStart(8, "0")}\n`);
}
function parseFrame(line) {
  const at = line.indexOf("~WV1 ");
  if (at < 0) return null;
  line = line.slice(at).replace(/\r$/, "");
  const m = /^(.*) \*([0-9a-f]{8})$/.exec(line);
  if (!m || parseInt(m[2], 16) !== sum32(enc.encode(m[1]))) return { bad: line };
  const [, kind, id, ...rest] = m[1].split(" ");
  const fields = rest.map((t) => {
    const i = t.indexOf("=");
    return [t.slice(0, i), t.slice(i + 1)];
  });
  return { kind, id: Number(id), fields, get: (k) => (fields.find(([fk]) => fk === k) || [])[1] };
}

class Agent {
  constructor(emulator) {
    this.emu = emulator;
    this.line = [];
    this.nextId = 1;
    this.calls = new Map();
    this.hello = null;
    this.helloWaiters = [];
    this.badFrames = 0;
    emulator.add_listener("serial1-output-byte", (b) => this.onByte(b));
  }
  onByte(b) {
    if (b !== 10) {
      this.line.push(b);
      return;
    }
    const text = dec.decode(new Uint8Array(this.line));
    this.line = [];
    const f = parseFrame(text);
    if (!f) return;
    if (f.bad) {
      this.badFrames++;
      return;
    }
    if (f.kind === "HELLO") {
      const restarted = this.hello && this.hello.get("instance") !== f.get("instance");
      this.hello = f;
      this.helloWaiters.splice(0).forEach((w) => w(f));
      if (restarted) for (const c of this.calls.values()) c.reject(new Error("agent restarted"));
      return;
    }
    const c = this.calls.get(f.id);
    if (c) c.onFrame(f);
  }
  waitHello(timeoutMs) {
    if (this.hello) return Promise.resolve(this.hello);
    return new Promise((resolve, reject) => {
      this.helloWaiters.push(resolve);
      setTimeout(() => reject(new Error("no HELLO")), timeoutMs);
    });
  }
  call(kind, fields, timeoutMs, isDone) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const st = { frames: [], stdout: [], stderr: [] };
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new Error(`${kind} ${id} timed out`));
      }, timeoutMs);
      this.calls.set(id, {
        reject: (e) => {
          clearTimeout(timer);
          this.calls.delete(id);
          reject(e);
        },
        onFrame: (f) => {
          st.frames.push(f);
          if (f.kind === "OUT") st.stdout.push(unb64(f.get("data")));
          if (f.kind === "ERR") st.stderr.push(unb64(f.get("data")));
          if (isDone(f)) {
            clearTimeout(timer);
            this.calls.delete(id);
            resolve(st);
          }
        },
      });
      this.emu.serial_send_bytes(1, encodeFrame(kind, id, fields));
    });
  }
  async ping(timeoutMs = 10000) {
    const st = await this.call("PING", [], timeoutMs, (f) => f.kind === "PONG" || f.kind === "ERROR");
    return st.frames.at(-1).get("instance");
  }
  async exec(argv, timeoutMs = 60000) {
    const fields = argv.map((a) => ["argv", b64(enc.encode(a))]);
    const st = await this.call("EXEC", fields, timeoutMs, (f) => f.kind === "EXIT" || f.kind === "ERROR");
    const last = st.frames.at(-1);
    const cat = (parts) => dec.decode(new Uint8Array(parts.flatMap((p) => [...p])));
    return {
      code: last.get("code") !== undefined ? Number(last.get("code")) : null,
      signal: last.get("signal") !== undefined ? Number(last.get("signal")) : null,
      error: last.kind === "ERROR" ? dec.decode(unb64(last.get("msg") || "")) : null,
      stdout: cat(st.stdout),
      stderr: cat(st.stderr),
    };
  }
  // Starts a process and resolves once it runs (no wait for its exit).
  async spawn(argv, timeoutMs = 30000) {
    const fields = argv.map((a) => ["argv", b64(enc.encode(a))]);
    const st = await this.call("EXEC", fields, timeoutMs, (f) => f.kind === "STARTED" || f.kind === "ERROR");
    return st.frames.at(-1).get("pid");
  }
}

const smoke = {
  emulator: null,
  agent: null,
  consoleText: "",
  saved: null,
  cfg: null,

  options(cfg) {
    return {
      wasm_path: "/v86/v86.wasm",
      memory_size: cfg.memoryMiB * 1024 * 1024,
      vga_memory_size: 2 * 1024 * 1024,
      bios: { url: "/image/seabios.bin" },
      vga_bios: { url: "/image/vgabios.bin" },
      bzimage: { url: "/image/vmlinuz" },
      initrd: { url: "/image/initrd.img" },
      cmdline: cfg.cmdline,
      hda: { url: "/image/rootfs.ext4", async: true, size: cfg.diskSize, fixed_chunk_size: cfg.chunkSize },
      filesystem: {},
      uart1: true,
      net_device: { type: "virtio", relay_url: "fetch" },
      autostart: true,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    };
  },

  attach(emulator) {
    // Request ids must not restart after a restore: the restored agent still
    // knows the exec ids of processes started before the snapshot.
    const nextId = this.agent ? this.agent.nextId : 1;
    this.emulator = emulator;
    this.consoleText = "";
    let pending = [];
    emulator.add_listener("serial0-output-byte", (b) => {
      if (b === 10) {
        const line = dec.decode(new Uint8Array(pending)).replace(/\r$/, "");
        pending = [];
        this.consoleText += line + "\n";
        console.log("[ttyS0] " + line);
      } else {
        pending.push(b);
      }
    });
    this.agent = new Agent(emulator);
    this.agent.nextId = nextId;
  },

  boot(cfg) {
    this.cfg = cfg;
    const t0 = performance.now();
    this.attach(new V86(this.options(cfg)));
    return t0;
  },

  async waitConsole(needle, timeoutMs) {
    const t0 = performance.now();
    while (!this.consoleText.includes(needle)) {
      if (performance.now() - t0 > timeoutMs) throw new Error(`no ${needle} on the console`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.consoleText.split("\n").find((l) => l.includes(needle));
  },

  async coldBoot(cfg) {
    const t0 = performance.now();
    this.boot(cfg);
    const marker = await this.waitConsole("webvm-ready", cfg.bootTimeoutMs);
    const tReady = performance.now();
    const hello = await this.agent.waitHello(30000);
    return {
      readyMs: Math.round(tReady - t0),
      helloMs: Math.round(performance.now() - t0),
      marker,
      instance: hello.get("instance"),
    };
  },

  async exec(argv, timeoutMs) {
    const t0 = performance.now();
    const r = await this.agent.exec(argv, timeoutMs);
    r.ms = Math.round(performance.now() - t0);
    return r;
  },

  async spawn(argv) {
    return this.agent.spawn(argv);
  },

  tcpGet(port, timeoutMs = 20000) {
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const chunks = [];
      const conn = this.emulator.network_adapter.connect(port);
      const done = () => {
        const text = dec.decode(new Uint8Array(chunks.flatMap((c) => [...c])));
        resolve({ ms: Math.round(performance.now() - t0), text });
      };
      conn.on("connect", () => conn.write(enc.encode("GET / HTTP/1.0\r\nHost: webvm\r\n\r\n")));
      conn.on("data", (d) => chunks.push(new Uint8Array(d)));
      conn.on("close", done);
      conn.on("shutdown", done);
      setTimeout(() => (chunks.length ? done() : reject(new Error("tcp timeout"))), timeoutMs);
    });
  },

  async push9p(path, text) {
    await this.emulator.create_file(path, enc.encode(text));
  },

  async save() {
    const t0 = performance.now();
    this.saved = await this.emulator.save_state();
    const ms = Math.round(performance.now() - t0);
    const gz = await new Response(
      new Blob([this.saved]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer();
    return { bytes: this.saved.byteLength, gzipBytes: gz.byteLength, ms };
  },

  async destroy() {
    await this.emulator.destroy();
    this.emulator = null;
  },

  // Restores the saved state into a fresh emulator built with the same options.
  async restore() {
    const t0 = performance.now();
    const opts = this.options(this.cfg);
    opts.initial_state = { buffer: this.saved };
    opts.preserve_mac_from_state_image = true;
    const emulator = new V86(opts);
    const started = new Promise((r) => emulator.add_listener("emulator-started", r));
    this.attach(emulator);
    await started;
    const startedMs = Math.round(performance.now() - t0);
    // The HELLO was sent before the snapshot: the restored agent answers PING.
    let instance = null;
    while (!instance) {
      try {
        instance = await this.agent.ping(300);
      } catch (e) {
        if (performance.now() - t0 > 60000) throw e;
      }
    }
    return { ms: Math.round(performance.now() - t0), startedMs, instance };
  },
};

window.smoke = smoke;
