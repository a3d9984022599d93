// The VM tab's half of the `/apps/<name>/` request bridge. The `/apps/` service worker
// (src/server/app_bridge/service_worker.js, served at /apps-sw.js) forwards each request for
// an app to an open page of this site that runs the app's VM; this module is that page's
// end: it answers the worker's probes and hands each request to the Rust side, which speaks
// HTTP to the guest and streams the answer back through the `reply` given here.
//
// Message protocol (worker ⇄ this tab), each exchange on its own MessageChannel whose port
// arrives with the first message (event.ports[0]):
//
//   probe    worker → tab  {type: "webvm-bridge-probe", app}
//            tab → worker  {ok: boolean}       (canServe(app) === true; the worker waits 1.5 s)
//   request  worker → tab  {type: "webvm-bridge-request", app, method, target, headers, body,
//                           host, proto, credit}
//              target: the path under /apps/<app> with its query, starting with "/";
//              headers: [[name, value], ...]; body: an ArrayBuffer (transferred, maybe empty,
//              at most 64 MiB); host: the page's host; proto: "http" | "https";
//              credit: the body bytes that may be posted before the first credit message.
//            worker → tab  {type: "credit", bytes}  this many more body bytes may be posted
//                                                   (as the page reads)
//            worker → tab  {type: "cancel"}         the page went away: stop, drop the rest
//            tab → worker  {type: "head", status, reason, headers: [[name, value], ...]}
//            tab → worker  {type: "chunk", bytes: ArrayBuffer}   (within the credit)
//            tab → worker  {type: "end"} | {type: "error", status?, message}
//            tab → worker  {type: "not-here"}   this tab does not run the app (the worker
//                                               asked it without a probe; it looks again)
//
// Exports:
//   installAppBridge(canServe, onRequest) -> undefined
//     canServe(app: string) -> boolean: whether this tab runs that app now;
//     onRequest(request, reply): request = {app, method, target, headers, body: Uint8Array,
//       host, proto}; reply = {head(status, reason, headers), chunk(bytes) -> boolean, end(),
//       fail(status, message), cancelled() -> boolean, buffered() -> number}.
//     Registers /apps-sw.js with scope /apps/ (so links opened from here are answered at
//     once); a second call only replaces the two callbacks. A no-op without service workers.
//   appBridgeSupported() -> boolean

const WORKER_SCRIPT = "/apps-sw.js";
const WORKER_SCOPE = "/apps/";
// A reply that has this much waiting for credit gives up: the page is not reading.
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

let handlers = null;
let installed = false;
let registrationLogged = false;

// Whether this page can serve apps at all: a browser with service workers, in a secure
// context (http on localhost counts; plain http elsewhere does not).
export function appBridgeSupported() {
  return (
    typeof navigator !== "undefined" &&
    !!navigator.serviceWorker &&
    typeof MessageChannel === "function" &&
    globalThis.isSecureContext !== false
  );
}

export function installAppBridge(canServe, onRequest) {
  handlers = { canServe, onRequest };
  if (installed || !appBridgeSupported()) return;
  installed = true;
  const container = navigator.serviceWorker;
  container.addEventListener("message", onWorkerMessage);
  // Messages from the worker wait in a queue until the page says it listens.
  if (typeof container.startMessages === "function") container.startMessages();
  container.register(WORKER_SCRIPT, { scope: WORKER_SCOPE }).catch((error) => {
    if (registrationLogged) return;
    registrationLogged = true;
    console.warn(`the /apps/ bridge's service worker could not be registered: ${(error && error.message) || error}`);
  });
}

function onWorkerMessage(event) {
  const data = event.data;
  const port = event.ports && event.ports[0];
  if (!data || typeof data !== "object" || !port) return;
  if (data.type === "webvm-bridge-probe") {
    port.postMessage({ ok: canServe(data.app) });
    port.close();
  } else if (data.type === "webvm-bridge-request") {
    serve(data, port);
  }
}

function canServe(app) {
  if (!handlers || typeof app !== "string") return false;
  try {
    return handlers.canServe(app) === true;
  } catch (error) {
    console.warn(`the /apps/ bridge's canServe(${app}) failed: ${(error && error.message) || error}`);
    return false;
  }
}

function serve(data, port) {
  const reply = new Reply(port);
  const request = {
    app: String(data.app),
    method: String(data.method || "GET"),
    target: typeof data.target === "string" && data.target.startsWith("/") ? data.target : "/",
    headers: Array.isArray(data.headers) ? data.headers.map((pair) => [String(pair[0]), String(pair[1])]) : [],
    body: data.body instanceof ArrayBuffer ? new Uint8Array(data.body) : new Uint8Array(0),
    host: String(data.host || ""),
    proto: data.proto === "https" ? "https" : "http",
  };
  if (Number.isFinite(data.credit) && data.credit > 0) reply.credit = data.credit;
  if (!canServe(request.app)) {
    // The worker asked this tab without a probe (it served the app last): let it look again.
    reply.done = true;
    port.postMessage({ type: "not-here" });
    port.close();
    return;
  }
  try {
    const outcome = handlers.onRequest(request, reply);
    if (outcome && typeof outcome.then === "function") {
      outcome.then(undefined, (error) => reply.fail(500, `the app bridge failed: ${(error && error.message) || error}`));
    }
  } catch (error) {
    reply.fail(500, `the app bridge failed: ${(error && error.message) || error}`);
  }
}

// One request's answer, posted on its port within the worker's credit.
class Reply {
  constructor(port) {
    this.port = port;
    this.credit = 0;
    this.queue = []; // Uint8Arrays (each its own buffer) waiting for credit
    this.queued = 0;
    this.headSent = false;
    this.ending = false; // end() called while chunks wait
    this.done = false; // end, error or cancel: nothing more is posted
    this.wasCancelled = false;
    port.onmessage = (event) => {
      const message = event.data || {};
      if (message.type === "credit" && Number.isFinite(message.bytes) && message.bytes > 0) {
        this.credit += message.bytes;
        this.flush();
      } else if (message.type === "cancel") {
        this.wasCancelled = true;
        this.finish();
      }
    };
  }

  // The status line and headers ([[name, value], ...]); once, before any chunk.
  head(status, reason, headers) {
    if (this.done || this.headSent) return;
    this.headSent = true;
    const list = [];
    for (const pair of headers || []) {
      if (pair && pair.length >= 2) list.push([String(pair[0]), String(pair[1])]);
    }
    this.post({ type: "head", status: Number(status), reason: String(reason || ""), headers: list });
    this.flush();
  }

  // Queues body bytes (copied: a view into wasm memory may be passed); false once the page
  // cancelled, or when more than 64 MiB wait for credit (then the reply is failed).
  chunk(bytes) {
    if (this.done || this.ending) return false;
    const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes || 0);
    if (view.byteLength === 0) return true;
    this.queue.push(view.slice());
    this.queued += view.byteLength;
    this.flush();
    if (this.queued > MAX_QUEUED_BYTES) {
      this.fail(502, "the page stopped reading the app's answer (more than 64 MiB waited)");
      return false;
    }
    return true;
  }

  // The body is complete (posted once the queued chunks are).
  end() {
    if (this.done) return;
    this.ending = true;
    this.flush();
  }

  // The answer failed: before the head the page shows `status` and `message`, after it the
  // body is cut off.
  fail(status, message) {
    if (this.done) return;
    this.post({ type: "error", status: Number(status) || 502, message: String(message || "") });
    this.finish();
  }

  // Whether the page went away (its request was cancelled).
  cancelled() {
    return this.wasCancelled;
  }

  // Body bytes queued here, waiting for credit.
  buffered() {
    return this.queued;
  }

  flush() {
    if (this.done || !this.headSent) return;
    while (this.queue.length > 0 && this.credit > 0) {
      let part = this.queue[0];
      if (part.byteLength > this.credit) {
        const rest = part.slice(this.credit);
        part = part.slice(0, this.credit);
        this.queue[0] = rest;
      } else {
        this.queue.shift();
      }
      this.credit -= part.byteLength;
      this.queued -= part.byteLength;
      this.post({ type: "chunk", bytes: part.buffer }, [part.buffer]);
      if (this.done) return;
    }
    if (this.ending && this.queue.length === 0) {
      this.post({ type: "end" });
      this.finish();
    }
  }

  post(message, transfer) {
    try {
      this.port.postMessage(message, transfer || []);
    } catch (error) {
      console.warn(`the /apps/ bridge could not answer the worker: ${(error && error.message) || error}`);
      this.finish();
    }
  }

  finish() {
    if (this.done) return;
    this.done = true;
    this.queue = [];
    this.queued = 0;
    this.port.onmessage = null;
    this.port.close();
  }
}
