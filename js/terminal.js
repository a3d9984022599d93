// The guest console terminal (src/ui/vm_panel.rs): xterm.js from npm @xterm/xterm, served
// by our server at /vendor/xterm/. When it can't be loaded, a plain text console (a <pre>
// and a line input) takes its place, so the console still works.

const loaded = new Map();

function loadOnce(url, make) {
  let pending = loaded.get(url);
  if (!pending) {
    pending = new Promise((resolve, reject) => {
      const element = make();
      element.onload = () => resolve();
      element.onerror = () => {
        loaded.delete(url);
        element.remove();
        reject(new Error(`could not load ${url}`));
      };
      document.head.appendChild(element);
    });
    loaded.set(url, pending);
  }
  return pending;
}

function loadScript(src) {
  return loadOnce(src, () => {
    const script = document.createElement("script");
    script.src = src;
    script.async = true;
    return script;
  });
}

function loadCss(href) {
  return loadOnce(href, () => {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    return link;
  });
}

const encoder = new TextEncoder();

class XtermConsole {
  constructor(element, onData, onResize) {
    this.kind = "xterm";
    this.term = new globalThis.Terminal({
      cursorBlink: true,
      convertEol: false,
      scrollback: 5000,
      fontSize: 14,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace",
      theme: { background: "#0f172a", foreground: "#e2e8f0", cursor: "#38bdf8" },
    });
    this.fit = new globalThis.FitAddon.FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(element);
    this.term.onData((text) => onData(encoder.encode(text)));
    this.term.onBinary((text) => onData(Uint8Array.from(text, (c) => c.charCodeAt(0) & 255)));
    // The guest learns the size (stty) once it settles, not on every step of a drag.
    let timer = null;
    let reported = "";
    this.term.onResize(({ cols, rows }) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const size = `${cols}x${rows}`;
        if (size !== reported) {
          reported = size;
          onResize(cols, rows);
        }
      }, 300);
    });
    this.resize = () => {
      try {
        this.fit.fit();
      } catch (_) {
        // hidden elements have no size
      }
    };
    this.observer = new ResizeObserver(this.resize);
    this.observer.observe(element);
    this.resize();
    reported = `${this.term.cols}x${this.term.rows}`;
    onResize(this.term.cols, this.term.rows);
  }

  write(bytes) {
    // The bytes may be a view of wasm memory: copy before xterm queues them.
    this.term.write(bytes.slice());
  }

  focus() {
    this.term.focus();
  }

  text() {
    const buffer = this.term.buffer.active;
    const lines = [];
    for (let i = 0; i < buffer.length; i++) {
      const line = buffer.getLine(i);
      if (line) lines.push(line.translateToString(true));
    }
    return lines.join("\n");
  }

  dispose() {
    this.observer.disconnect();
    this.term.dispose();
  }
}

// Strips terminal control sequences for the plain console.
const CONTROL = /\x1b\[[0-9;?]*[ -\/]*[@-~]|\x1b[\]P^_][^\x07\x1b]*(\x07|\x1b\\)?|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]/g;

class PlainConsole {
  constructor(element, onData) {
    this.kind = "plain";
    this.decoder = new TextDecoder();
    this.pre = document.createElement("pre");
    this.pre.className = "vm-terminal__plain";
    this.pre.setAttribute("aria-live", "polite");
    this.form = document.createElement("form");
    this.form.className = "vm-terminal__line";
    const label = document.createElement("label");
    label.textContent = "Command";
    label.className = "visually-hidden";
    this.input = document.createElement("input");
    this.input.type = "text";
    this.input.autocomplete = "off";
    this.input.spellcheck = false;
    this.input.id = `vm-console-input-${Math.random().toString(36).slice(2)}`;
    label.htmlFor = this.input.id;
    this.form.append(label, this.input);
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      onData(encoder.encode(`${this.input.value}\r`));
      this.input.value = "";
    });
    element.append(this.pre, this.form);
  }

  write(bytes) {
    const text = this.decoder.decode(bytes, { stream: true }).replace(/\r\n/g, "\n").replace(CONTROL, "");
    this.pre.textContent = (this.pre.textContent + text).slice(-200000);
    this.pre.scrollTop = this.pre.scrollHeight;
  }

  focus() {
    this.input.focus();
  }

  text() {
    return this.pre.textContent;
  }

  dispose() {
    this.pre.remove();
    this.form.remove();
  }
}

// Opens a console in `element`; onData(Uint8Array) gets what the user types, onResize(cols,
// rows) the terminal's size in characters.
export async function openTerminal(element, onData, onResize) {
  try {
    await loadCss("/vendor/xterm/xterm.css");
    await loadScript("/vendor/xterm/xterm.js");
    await loadScript("/vendor/xterm/addon-fit.js");
    if (typeof globalThis.Terminal !== "function" || !globalThis.FitAddon) {
      throw new Error("xterm.js did not define Terminal and FitAddon");
    }
    return new XtermConsole(element, onData, onResize);
  } catch (error) {
    console.warn(`xterm.js is unavailable (${error.message}); using the plain console`);
    return new PlainConsole(element, onData);
  }
}
