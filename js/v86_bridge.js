// Glue between the Rust v86 engine (src/client/vm/v86.rs) and v86's libv86.js, which the
// server serves from /vendor/v86/ (npm v86, BSD-2).
//
// v86 reports serial output one byte per event. Calling into wasm once per byte is slow, so
// bytes are buffered here and handed over once per microtask (after the emulator's current
// time slice), one Uint8Array per port.

const scripts = new Map();

// Loads a classic script once; resolves when `globalName` exists.
export function loadScript(src, globalName) {
  if (globalName && globalThis[globalName]) return Promise.resolve();
  let pending = scripts.get(src);
  if (!pending) {
    pending = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = () => {
        if (globalName && !globalThis[globalName]) {
          reject(new Error(`${src} loaded but did not define ${globalName}`));
        } else {
          resolve();
        }
      };
      script.onerror = () => {
        scripts.delete(src);
        script.remove();
        reject(new Error(`could not load ${src}`));
      };
      document.head.appendChild(script);
    });
    scripts.set(src, pending);
  }
  return pending;
}

// GET `url` as text. Rejects with a readable message for network errors and non-2xx
// answers (using the `error` field of a JSON body when there is one).
export async function fetchText(url) {
  let response;
  try {
    response = await fetch(url, { cache: "no-cache" });
  } catch (error) {
    throw new Error(`could not reach the server (${error.message})`);
  }
  const text = await response.text();
  if (!response.ok) {
    let detail = text.slice(0, 300);
    try {
      const body = JSON.parse(text);
      if (body && typeof body.error === "string") detail = body.error;
    } catch (_) {
      // not JSON: keep the text
    }
    throw new Error(`${url} answered ${response.status}: ${detail}`);
  }
  return text;
}

// Downloads a saved machine state (the server's boot snapshot) into one ArrayBuffer of
// `expectedSize` bytes. The server sends it with Content-Encoding: gzip, so the bytes read here
// are already unpacked; onProgress(loaded, expectedSize) follows them. Rejects when the
// answer is not 2xx or its length differs from expectedSize.
export async function fetchState(url, expectedSize, onProgress) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`could not reach the server (${error.message})`);
  }
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  if (!response.body) throw new Error("this browser can't stream downloads");
  const bytes = new Uint8Array(expectedSize);
  const reader = response.body.getReader();
  let loaded = 0;
  let reported = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.byteLength > expectedSize) {
      await reader.cancel();
      throw new Error(`it is larger than the ${expectedSize} bytes its record names`);
    }
    bytes.set(value, loaded);
    loaded += value.byteLength;
    if (loaded - reported >= 262144) {
      reported = loaded;
      onProgress(loaded, expectedSize);
    }
  }
  if (loaded !== expectedSize) {
    throw new Error(`it has ${loaded} bytes, its record names ${expectedSize}`);
  }
  onProgress(loaded, expectedSize);
  return bytes.buffer;
}

// SHA-256 of an ArrayBuffer as hex, or null where the browser offers no WebCrypto (pages
// served over plain HTTP from a host other than localhost).
export async function sha256Hex(buffer) {
  if (!globalThis.crypto || !crypto.subtle) return null;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// One emulator. Callbacks: onSerial(port, Uint8Array), onProgress(fileName, loaded, total),
// onEvent(name, detail) for emulator-loaded/-ready/-started/-stopped and download-error.
export class V86Machine {
  constructor(optionsJson, initialState, onSerial, onProgress, onEvent) {
    if (typeof globalThis.V86 !== "function") throw new Error("libv86.js is not loaded");
    const options = JSON.parse(optionsJson);
    if (initialState) options.initial_state = { buffer: initialState };
    this.onSerial = onSerial;
    this.buffers = [[], [], [], []];
    this.flushQueued = false;
    this.destroyed = false;
    const emulator = new globalThis.V86(options);
    this.emulator = emulator;
    for (let port = 0; port < 2; port++) {
      emulator.add_listener(`serial${port}-output-byte`, (byte) => this.push(port, byte));
    }
    emulator.add_listener("download-progress", (e) =>
      onProgress(String(e.file_name || ""), Number(e.loaded) || 0, Number(e.total) || 0),
    );
    emulator.add_listener("download-error", (e) => onEvent("download-error", String(e.file_name || "")));
    for (const name of ["emulator-loaded", "emulator-ready", "emulator-started", "emulator-stopped"]) {
      emulator.add_listener(name, () => onEvent(name, ""));
    }
  }

  push(port, byte) {
    this.buffers[port].push(byte);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  flush() {
    this.flushQueued = false;
    if (this.destroyed) return;
    for (let port = 0; port < this.buffers.length; port++) {
      const bytes = this.buffers[port];
      if (bytes.length) {
        this.buffers[port] = [];
        this.onSerial(port, Uint8Array.from(bytes));
      }
    }
  }

  send(port, bytes) {
    if (!this.destroyed) this.emulator.serial_send_bytes(port, bytes);
  }

  isRunning() {
    return !this.destroyed && this.emulator.is_running();
  }

  async saveState() {
    return await this.emulator.save_state();
  }

  async stop() {
    await this.emulator.stop();
  }

  async run() {
    await this.emulator.run();
  }

  // 9p: the guest mounts tag host9p at /mnt/host; paths here are relative to it.
  async createFile(path, bytes) {
    await this.emulator.create_file(path, bytes);
  }

  async readFile(path) {
    return await this.emulator.read_file(path);
  }

  // Page -> guest TCP through v86's fetch network adapter. onEvent(kind, bytes|null) with
  // kind "connect", "data" or "close".
  connect(port, onEvent) {
    const adapter = this.emulator.network_adapter;
    if (!adapter || typeof adapter.connect !== "function") {
      throw new Error("this machine has no page-to-guest network (net_device relay_url fetch)");
    }
    const connection = adapter.connect(port);
    deliverDataWithFin(connection);
    let closed = false;
    const close = () => {
      if (!closed) {
        closed = true;
        onEvent("close", null);
      }
    };
    connection.on("connect", () => onEvent("connect", null));
    connection.on("data", (data) => onEvent("data", new Uint8Array(data)));
    connection.on("close", close);
    connection.on("shutdown", close);
    return connection;
  }

  async destroy() {
    this.destroyed = true;
    try {
      await this.emulator.destroy();
    } catch (error) {
      console.warn("v86 destroy:", error);
    }
  }
}

// v86's TCPConnection.process (src/browser/fake_network.js, as of 0.5) handles a segment
// that carries FIN as a FIN only: its payload is acknowledged by nobody and never emitted.
// A server that sends its last bytes with its FIN (busybox httpd does, for a body that ends
// mid-segment) then loses them: a 1 MiB answer arrived 360 bytes short. This hands the
// payload on first, in order, and lets v86 take the FIN (its ack then counts both).
function deliverDataWithFin(connection) {
  const process = connection.process;
  if (typeof process !== "function") return;
  connection.process = function (packet) {
    const tcp = packet && packet.tcp;
    const data = packet && packet.tcp_data;
    if (tcp && tcp.fin && data && data.length > 0 && this.ack === tcp.seq && this.state !== "closed") {
      this.ack += data.length;
      this.emit("data", data);
    }
    return process.call(this, packet);
  };
}

export function connectionWrite(connection, bytes) {
  connection.write(bytes);
}

export function connectionClose(connection) {
  connection.close();
}

// Sets or deletes a property of window (the test hook window.webvm).
export function setGlobal(name, value) {
  if (value === undefined || value === null) delete globalThis[name];
  else globalThis[name] = value;
}
