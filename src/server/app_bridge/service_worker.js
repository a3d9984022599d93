// The `/apps/` service worker (served at /apps-sw.js, scope /apps/; src/server/app_bridge/).
// It answers every same-origin request under /apps/<name>/ by forwarding it to a "VM tab":
// an open page of this site (outside /apps/) that runs the app's VM and speaks HTTP to the
// guest (js/app_bridge.js there, the Rust side behind it). Requests outside /apps/ are never
// touched; names that are not valid app names go to the network (the server answers 404).
//
// Message protocol (worker ⇄ VM tab), each exchange on its own MessageChannel whose second
// port travels with the first message (client.postMessage(message, [port, ...])):
//
//   probe    worker → tab  {type: "webvm-bridge-probe", app}
//            tab → worker  {ok: boolean}            (on the port; no answer in 1.5 s = no)
//   request  worker → tab  {type: "webvm-bridge-request", app, method, target, headers, body,
//                           host, proto, credit}
//              (to the tab that served the app last without a probe first; see knownVmTab)
//              target: the path under /apps/<app> with its query, starting with "/";
//              headers: [[name, value], ...] (what the browser lets a worker see: no Cookie,
//                       so the worker adds the app's own cookies, see below);
//              body: an ArrayBuffer (transferred; empty for GET and HEAD), at most 64 MiB;
//              host: location.host; proto: "http" | "https".
//              credit: the body bytes the tab may post before the next credit (1 MiB);
//            worker → tab  {type: "credit", bytes}  the tab may post that many more body bytes
//                                                   (more as the page reads)
//            worker → tab  {type: "cancel"}         the page went away: stop, drop the rest
//            tab → worker  {type: "head", status, reason, headers: [[name, value], ...]}
//            tab → worker  {type: "chunk", bytes: ArrayBuffer}   (any number, within credit)
//            tab → worker  {type: "end"} | {type: "error", status?, message}
//            tab → worker  {type: "not-here"}    this tab does not run the app (any more): the
//                                                worker probes the tabs and asks again
//
// Cookies: a Response made by a worker can't carry Set-Cookie (the Fetch standard drops it
// from a "response"-guarded Headers), and requests reach a worker without their Cookie
// header. So, where the Cookie Store API exists, the worker keeps each app's cookies itself
// (see "the apps' cookies" below) and sends them to the app in a Cookie header; the site's
// own cookies are never sent to an app.

"use strict";

// Filled in by the server from src/model/names.rs (AppName::parse) when it serves this file.
const NAME_RULES = { min: 3, max: 50, reserved: [] } /* NAME_RULES */;

const PROBE_TIMEOUT_MS = 1500;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const INITIAL_CREDIT = 1024 * 1024;
// Credit is granted in steps of at least this much (or whenever the tab has none left).
const CREDIT_STEP = 64 * 1024;
// How often a forwarded request checks that its VM tab is still open.
const WATCHDOG_MS = 5000;
// The explanatory 503 page reloads itself this often.
const RETRY_SECONDS = 10;
const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
]);

const reservedNames = new Set(NAME_RULES.reserved.map((name) => name.toLowerCase()));
// app → the id of the window client that served it last (a hint; re-probed before use).
const vmTabs = new Map();

self.addEventListener("install", () => {
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin) return;
  const route = appRoute(url.pathname);
  if (!route) return; // not ours: the network (and the server's 404) answers
  if (route.rest === null) {
    // /apps/<name> → /apps/<name>/, query kept (as the server does).
    const target = new URL(url.href);
    target.pathname = url.pathname + "/";
    event.respondWith(Response.redirect(target.href, 308));
    return;
  }
  let finished;
  const done = new Promise((resolve) => {
    finished = resolve;
  });
  event.waitUntil(done);
  event.respondWith(
    forward(event, route.app, route.rest + url.search, finished).catch((error) => {
      finished();
      return errorResponse(event.request, 502, "The app's VM tab could not answer", String((error && error.message) || error));
    }),
  );
});

// `/apps/<name>` → {app, rest: null}; `/apps/<name>/<rest>` → {app, rest: "/<rest>"}; else null.
function appRoute(pathname) {
  if (!pathname.startsWith("/apps/")) return null;
  const after = pathname.slice("/apps/".length);
  const slash = after.indexOf("/");
  const name = slash === -1 ? after : after.slice(0, slash);
  if (!isAppName(name)) return null;
  return { app: name, rest: slash === -1 ? null : after.slice(slash) };
}

// src/model/names.rs, AppName::parse: 3–50 of [A-Za-z0-9._-], a letter or digit at each end,
// not reserved by the router (case-insensitively).
function isAppName(name) {
  if (name.length < NAME_RULES.min || name.length > NAME_RULES.max) return false;
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(name)) return false;
  return !reservedNames.has(name.toLowerCase());
}

// ---- finding a VM tab ----

// Asks one window client whether it serves `app`; resolves to true or false (false after the
// timeout, or when the client can't be reached).
function probe(client, app) {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => {
      channel.port1.close();
      resolve(false);
    }, PROBE_TIMEOUT_MS);
    channel.port1.onmessage = (event) => {
      clearTimeout(timer);
      channel.port1.close();
      resolve(!!(event.data && event.data.ok === true));
    };
    try {
      client.postMessage({ type: "webvm-bridge-probe", app }, [channel.port2]);
    } catch (_) {
      clearTimeout(timer);
      resolve(false);
    }
  });
}

// The tab that served `app` last, if it is still open: asked directly, without a probe (a
// round trip through a main thread that the emulator keeps busy); a tab that can't serve
// any more answers "not-here" and the request is asked again with findVmTab.
async function knownVmTab(app) {
  const known = vmTabs.get(app);
  if (!known) return null;
  const client = await self.clients.get(known);
  if (!client) vmTabs.delete(app);
  return client || null;
}

// The window client (outside /apps/) that serves `app`, or null: the first of them to say
// yes when probed.
async function findVmTab(app) {
  const known = vmTabs.get(app);
  vmTabs.delete(app);
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const candidates = windows.filter((client) => {
    if (client.id === known) return false;
    try {
      const url = new URL(client.url);
      return url.origin === self.location.origin && !url.pathname.startsWith("/apps/");
    } catch (_) {
      return false;
    }
  });
  if (candidates.length === 0) return null;
  const found = await new Promise((resolve) => {
    let pending = candidates.length;
    for (const client of candidates) {
      probe(client, app).then((ok) => {
        if (ok) resolve(client);
        else if (--pending === 0) resolve(null);
      });
    }
  });
  if (found) vmTabs.set(app, found.id);
  return found;
}

// ---- forwarding ----

async function forward(event, app, target, finished) {
  const request = event.request;
  const [known, body, cookie] = await Promise.all([knownVmTab(app), readBody(request), appCookieHeader(app, target)]);
  if (body === null) {
    finished();
    return errorResponse(
      request,
      413,
      "This request is too large",
      `The app bridge carries request bodies of up to ${MAX_BODY_BYTES / (1024 * 1024)} MiB.`,
    );
  }
  const headers = [];
  for (const [name, value] of request.headers) headers.push([name, value]);
  if (cookie) headers.push(["cookie", cookie]);
  const message = {
    type: "webvm-bridge-request",
    app,
    method: request.method,
    target,
    headers,
    host: self.location.host,
    proto: self.location.protocol === "https:" ? "https" : "http",
    // The first credit: the tab may send this much before the page reads anything.
    credit: INITIAL_CREDIT,
  };
  if (known) {
    // The body is transferred; a copy stays for the second ask.
    const answer = await exchange(request, app, target, known, message, body.slice(0), finished);
    if (answer !== NOT_HERE) return answer;
  }
  const tab = await findVmTab(app);
  if (!tab) {
    finished();
    return noTabResponse(request, app);
  }
  const answer = await exchange(request, app, target, tab, message, body, finished);
  if (answer !== NOT_HERE) return answer;
  finished();
  return noTabResponse(request, app);
}

// What a tab that can't serve the app answers with (it went away between probe and request).
const NOT_HERE = Symbol("not-here");

// One request to one tab: resolves to the Response, or NOT_HERE when the tab does not run the
// app (then nothing was sent to the app, and `finished` is not called).
function exchange(request, app, target, tab, template, body, finished) {
  const channel = new MessageChannel();
  const port = channel.port1;
  tab.postMessage({ ...template, body }, [channel.port2, body]);
  vmTabs.set(app, tab.id);

  return new Promise((resolve) => {
    let state = "waiting"; // waiting → streaming → closed
    let controller = null;
    let granted = 0;
    let received = 0;
    let watchdog = null;

    const grant = (force) => {
      if (state === "closed") return;
      let queued = 0;
      if (controller) queued = Math.max(0, INITIAL_CREDIT - (controller.desiredSize || 0));
      const consumed = received - queued;
      const wanted = INITIAL_CREDIT + consumed - granted;
      if (wanted <= 0) return;
      if (force || wanted >= CREDIT_STEP || granted === received) {
        granted += wanted;
        port.postMessage({ type: "credit", bytes: wanted });
      }
    };
    const close = () => {
      if (state === "closed") return;
      state = "closed";
      if (watchdog) clearInterval(watchdog);
      port.onmessage = null;
      port.close();
      finished();
    };
    const cancelRequest = () => {
      if (state === "closed") return;
      try {
        port.postMessage({ type: "cancel" });
      } catch (_) {
        // the port is gone already
      }
      close();
    };
    const fail = (status, message) => {
      if (state === "waiting") {
        const code = Number.isInteger(status) && status >= 400 && status <= 599 ? status : 502;
        close();
        resolve(errorResponse(request, code, "The app could not answer", message || "The VM tab reported an error."));
      } else if (state === "streaming") {
        const stream = controller;
        close();
        try {
          stream.error(new Error(message || "the VM tab reported an error"));
        } catch (_) {
          // the reader is gone
        }
      }
    };

    if (request.signal) {
      if (request.signal.aborted) {
        cancelRequest();
        resolve(Response.error());
        return;
      }
      request.signal.addEventListener("abort", () => {
        if (state === "waiting") resolve(Response.error());
        cancelRequest();
      });
    }
    watchdog = setInterval(() => {
      self.clients.get(tab.id).then((client) => {
        if (!client) {
          vmTabs.delete(app);
          fail(502, "The VM tab was closed before the app finished answering.");
        }
      });
    }, WATCHDOG_MS);

    port.onmessage = (incoming) => {
      const data = incoming.data || {};
      if (data.type === "head" && state === "waiting") {
        const status = Number(data.status);
        if (!Number.isInteger(status) || status < 200 || status > 599) {
          fail(502, `The app answered with status ${data.status}, which a browser page can't be given.`);
          return;
        }
        const responseHeaders = new Headers();
        const cookies = [];
        const listed = new Set();
        for (const pair of data.headers || []) {
          if (Array.isArray(pair) && String(pair[0]).toLowerCase() === "connection") {
            for (const token of String(pair[1]).split(",")) listed.add(token.trim().toLowerCase());
          }
        }
        for (const pair of data.headers || []) {
          if (!Array.isArray(pair) || pair.length < 2) continue;
          const name = String(pair[0]);
          const lower = name.toLowerCase();
          const value = String(pair[1]);
          if (HOP_BY_HOP.has(lower) || listed.has(lower)) continue;
          if (lower === "set-cookie") cookies.push(value);
          try {
            // append, never set: repeated headers survive (a browser drops Set-Cookie here
            // anyway, hence the cookie store below)
            responseHeaders.append(name, value);
          } catch (_) {
            // a header a browser refuses (bad name or value): left out
          }
        }
        const storing = storeAppCookies(app, target, cookies);
        const init = { status, headers: responseHeaders };
        if (isStatusText(data.reason)) init.statusText = data.reason;
        const respond = (body) =>
          storing.then(() => {
            try {
              resolve(new Response(body, init));
            } catch (_) {
              delete init.statusText;
              resolve(new Response(body, init));
            }
          });
        state = "streaming";
        if (request.method === "HEAD" || NULL_BODY_STATUSES.has(status)) {
          // No body to carry: the tab is told to stop sending (its chunks would be dropped).
          cancelRequest();
          respond(null).catch(() => resolve(Response.error()));
          return;
        }
        const stream = new ReadableStream(
          {
            start(streamController) {
              controller = streamController;
            },
            pull() {
              grant(false);
            },
            cancel() {
              cancelRequest();
            },
          },
          new ByteLengthQueuingStrategy({ highWaterMark: INITIAL_CREDIT }),
        );
        respond(stream).catch(() => {
          cancelRequest();
          resolve(errorResponse(request, 502, "The app could not answer", "Its answer's headers are not valid in a browser."));
        });
      } else if (data.type === "chunk" && state === "streaming" && controller) {
        const bytes = data.bytes instanceof ArrayBuffer ? new Uint8Array(data.bytes) : null;
        if (!bytes) return;
        received += bytes.byteLength;
        try {
          controller.enqueue(bytes);
        } catch (_) {
          cancelRequest();
          return;
        }
        if (granted === received) grant(true);
      } else if (data.type === "end") {
        if (state === "waiting") {
          fail(502, "The VM tab ended the answer before sending its status line.");
        } else if (state === "streaming") {
          const stream = controller;
          close();
          if (stream) {
            try {
              stream.close();
            } catch (_) {
              // the reader is gone
            }
          }
        }
      } else if (data.type === "error") {
        fail(data.status, typeof data.message === "string" ? data.message : "");
      } else if (data.type === "not-here" && state === "waiting") {
        state = "closed";
        if (watchdog) clearInterval(watchdog);
        port.onmessage = null;
        port.close();
        if (vmTabs.get(app) === tab.id) vmTabs.delete(app);
        resolve(NOT_HERE);
      }
    };
    granted = template.credit;
  });
}

// A reason phrase the Response constructor takes (RFC 9112 reason-phrase).
function isStatusText(reason) {
  return typeof reason === "string" && reason.length <= 512 && /^[\t\x20-\x7e\x80-\xff]*$/.test(reason);
}

// The request's body as one ArrayBuffer (empty when it has none), or null when it is larger
// than MAX_BODY_BYTES.
async function readBody(request) {
  if (request.method === "GET" || request.method === "HEAD" || !request.body) {
    return new ArrayBuffer(0);
  }
  const declared = Number(request.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) return null;
  const reader = request.body.getReader();
  const parts = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_BODY_BYTES) {
      reader.cancel().catch(() => {});
      return null;
    }
    parts.push(value);
  }
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.byteLength;
  }
  return joined.buffer;
}

// ---- the apps' cookies (Cookie Store API, where there is one) ----
//
// Chromium lets a worker's cookieStore read only URLs that start with the worker's script URL
// (not its scope), so each app's jar lives under this script's path: `/apps-sw.js/<app>/…`,
// a path nothing ever requests, so those cookies never travel and no page script sees them
// (as HttpOnly cookies should not be seen). A cookie that is not HttpOnly is also kept under
// `/apps/<app>/…`, where the app's own pages read it with document.cookie; cookies that page
// scripts set themselves are not sent to the app (the worker can't read them).

const JAR_BASE = new URL(self.location.href).pathname;

// The cookie's path relative to the app: its Path attribute, else the request path's
// directory (RFC 6265 §5.1.4).
function cookieAppPath(path, target) {
  if (typeof path === "string" && path.startsWith("/")) return path;
  const requestPath = target.split("?")[0];
  const slash = requestPath.lastIndexOf("/");
  return slash <= 0 ? "/" : requestPath.slice(0, slash);
}

// Keeps the app's Set-Cookie values: in its jar, and where its pages see them.
async function storeAppCookies(app, target, values) {
  if (values.length === 0 || !self.cookieStore) return;
  for (const value of values) {
    const parsed = parseSetCookie(value);
    if (!parsed) continue;
    const path = cookieAppPath(parsed.path, target);
    const places = [`${JAR_BASE}/${app}${path}`];
    if (!parsed.httpOnly) places.push(`/apps/${app}${path}`);
    for (const place of places) {
      try {
        if (parsed.expires !== null && parsed.expires <= Date.now()) {
          await self.cookieStore.delete({ name: parsed.name, path: place });
        } else {
          // The Cookie Store API defaults to Strict; an HTTP cookie without SameSite is Lax.
          const options = { name: parsed.name, value: parsed.value, path: place, sameSite: parsed.sameSite || "lax" };
          if (parsed.expires !== null) options.expires = parsed.expires;
          await self.cookieStore.set(options);
        }
      } catch (_) {
        // refused (a name or value the API does not take): the app goes without it
      }
    }
  }
}

// `name=value; Path=/x; Max-Age=60; Expires=…; SameSite=Lax; HttpOnly` → its parts (the
// others, Domain and Secure included, are ignored: cookies stay on this host).
function parseSetCookie(text) {
  const parts = String(text).split(";");
  const pair = parts.shift() || "";
  const equals = pair.indexOf("=");
  if (equals <= 0) return null;
  const cookie = {
    name: pair.slice(0, equals).trim(),
    value: pair.slice(equals + 1).trim(),
    path: null,
    expires: null,
    sameSite: null,
    httpOnly: false,
  };
  if (!cookie.name) return null;
  let maxAge = null;
  for (const attribute of parts) {
    const at = attribute.indexOf("=");
    const key = (at === -1 ? attribute : attribute.slice(0, at)).trim().toLowerCase();
    const value = at === -1 ? "" : attribute.slice(at + 1).trim();
    if (key === "path") cookie.path = value;
    else if (key === "httponly") cookie.httpOnly = true;
    else if (key === "max-age" && /^-?\d+$/.test(value)) maxAge = Number(value);
    else if (key === "expires") {
      const when = Date.parse(value);
      if (Number.isFinite(when)) cookie.expires = when;
    } else if (key === "samesite") {
      const lower = value.toLowerCase();
      if (lower === "strict" || lower === "lax" || lower === "none") cookie.sameSite = lower;
    }
  }
  if (maxAge !== null) cookie.expires = Date.now() + maxAge * 1000;
  return cookie;
}

// The Cookie header for a request to the app: the cookies of its jar that match `target`.
async function appCookieHeader(app, target) {
  if (!self.cookieStore) return "";
  const jar = `${JAR_BASE}/${app}/`;
  try {
    const url = self.location.origin + `${JAR_BASE}/${app}` + target.split("?")[0];
    const cookies = await self.cookieStore.getAll({ url });
    return cookies
      .filter((cookie) => typeof cookie.path === "string" && (cookie.path + "/").startsWith(jar))
      .map((cookie) => `${cookie.name}=${cookie.value}`)
      .join("; ");
  } catch (_) {
    return "";
  }
}

// ---- answers of the worker itself ----

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function page(title, bodyHtml, extraHead) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${extraHead || ""}<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1f2328}h1{font-size:1.4rem}.hint{color:#59636e;font-size:.9rem}</style>
</head>
<body>
<main>
${bodyHtml}
</main>
</body>
</html>
`;
}

// An answer for a page (HTML) or for anything else (plain text).
function answer(request, status, title, html, text, extraHeaders, extraHead) {
  const headers = new Headers(extraHeaders || {});
  headers.set("Cache-Control", "no-store");
  if (request.mode === "navigate") {
    headers.set("Content-Type", "text/html; charset=utf-8");
    headers.set("Content-Security-Policy", PAGE_CSP);
    return new Response(request.method === "HEAD" ? null : page(title, html, extraHead), { status, headers });
  }
  headers.set("Content-Type", "text/plain; charset=utf-8");
  return new Response(request.method === "HEAD" ? null : text + "\n", { status, headers });
}

function noTabResponse(request, app) {
  const name = escapeHtml(app);
  const html = `<h1>${name} is not running in this browser</h1>
<p>No tab is running this app's VM. Open <a href="/" target="_blank">webvm-appserver</a> in another tab, start ${name}, then reload this page.</p>
<p class="hint">This page tries again by itself every ${RETRY_SECONDS} seconds.</p>`;
  const text = `No tab is running this app's VM. Open webvm-appserver (/) in another tab, start ${app}, then reload this page.`;
  return answer(
    request,
    503,
    `${app} is not running`,
    html,
    text,
    { "Retry-After": String(RETRY_SECONDS) },
    `<meta http-equiv="refresh" content="${RETRY_SECONDS}">\n`,
  );
}

function errorResponse(request, status, title, message) {
  const html = `<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(message)}</p>
<p class="hint">Reload this page to try again, or check the app in <a href="/" target="_blank">webvm-appserver</a>.</p>`;
  return answer(request, status, title, html, `${title}: ${message}`);
}
