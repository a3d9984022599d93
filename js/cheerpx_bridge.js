// Glue for the optional CheerpX engine (src/client/vm/cheerpx.rs), written against CheerpX's
// documented API: CheerpX.Linux.create({mounts}), CloudDevice / HttpBytesDevice for the root
// disk, IDBDevice for its writable overlay (OverlayDevice), DataDevice for files pushed from
// the page, cx.run(path, args, {env, cwd, uid, gid}) and cx.setCustomConsole(write, cols,
// rows). CheerpX loads from its vendor's CDN and needs a cross-origin isolated page
// (COOP/COEP); neither is available in this project's test environment, so this path is
// untested here.

export class CheerpXMachine {
  constructor(cx, dataDevice, outDevice) {
    this.cx = cx;
    this.dataDevice = dataDevice;
    this.outDevice = outDevice;
    this.consoleInput = null;
    this.destroyed = false;
  }

  // cdnUrl: the cx.esm.js module URL; diskKind: "cloud" (wss:// or https:// CloudDevice) or
  // "bytes" (HttpBytesDevice over plain HTTP Range requests). The root disk must hold an
  // ext2 file system.
  static async create(cdnUrl, diskUrl, diskKind, cacheId, onConsole) {
    if (!globalThis.crossOriginIsolated) {
      throw new Error(
        "CheerpX needs a cross-origin isolated page (Cross-Origin-Opener-Policy and Cross-Origin-Embedder-Policy headers)",
      );
    }
    let CheerpX;
    try {
      CheerpX = await import(/* @vite-ignore */ cdnUrl);
    } catch (error) {
      throw new Error(`could not load CheerpX from ${cdnUrl}: ${error.message}`);
    }
    const base =
      diskKind === "bytes"
        ? await CheerpX.HttpBytesDevice.create(diskUrl)
        : await CheerpX.CloudDevice.create(diskUrl);
    const overlay = await CheerpX.OverlayDevice.create(base, await CheerpX.IDBDevice.create(`${cacheId}-overlay`));
    const dataDevice = await CheerpX.DataDevice.create();
    const outDevice = await CheerpX.IDBDevice.create(`${cacheId}-out`);
    const cx = await CheerpX.Linux.create({
      mounts: [
        { type: "ext2", path: "/", dev: overlay },
        { type: "dir", path: "/mnt/host", dev: dataDevice },
        { type: "dir", path: "/mnt/out", dev: outDevice },
        { type: "devs", path: "/dev" },
        { type: "devpts", path: "/dev/pts" },
        { type: "proc", path: "/proc" },
        { type: "sys", path: "/sys" },
      ],
    });
    const machine = new CheerpXMachine(cx, dataDevice, outDevice);
    machine.consoleInput = cx.setCustomConsole(
      (buffer, vt) => {
        if (vt === 1 && !machine.destroyed) onConsole(new Uint8Array(buffer));
      },
      80,
      24,
    );
    return machine;
  }

  // Runs a program to its end; resolves to its exit status.
  async run(path, args, env, cwd) {
    const result = await this.cx.run(path, Array.from(args), {
      env: Array.from(env),
      cwd: cwd || "/",
      uid: 0,
      gid: 0,
    });
    return result && typeof result.status === "number" ? result.status : -1;
  }

  async writeData(name, bytes) {
    await this.dataDevice.writeFile(`/${name}`, bytes);
  }

  async readOut(name) {
    const blob = await this.outDevice.readFileAsBlob(`/${name}`);
    return new Uint8Array(await blob.arrayBuffer());
  }

  consoleSend(bytes) {
    if (!this.consoleInput) return;
    for (const byte of bytes) this.consoleInput(byte);
  }

  // The user's shell on the console, started again whenever it exits; env: "KEY=value"s.
  startShell(env) {
    const loop = async () => {
      while (!this.destroyed) {
        try {
          await this.cx.run("/bin/bash", ["--login"], {
            env: Array.from(env),
            cwd: "/root",
            uid: 0,
            gid: 0,
          });
        } catch (error) {
          console.warn("CheerpX shell:", error);
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }
    };
    loop();
  }

  destroy() {
    this.destroyed = true;
    // CheerpX has no documented teardown; dropping the references is all we can do.
    this.cx = null;
  }
}
