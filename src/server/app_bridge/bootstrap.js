// The script of the server's "Opening <name>…" page (served at /apps-bootstrap.js;
// src/server/app_bridge/). That page is what /apps/<name>/… returns when no service worker
// answered it: a first visit, or a bookmark in a fresh browser. This script installs the
// `/apps/` service worker (/apps-sw.js, scope /apps/), waits until it is active and controls
// this page, then reloads, so the worker answers the same address from the app's VM tab.
//
// Protocol with the page (no messages): it reads and fills these elements of the page:
//   #bridge-status       what is happening ("Installing…", or the reason it can't); hidden
//                        until this script fills it in
//   #bridge-unsupported  shown (the `hidden` attribute removed) when this browser or this
//                        address can't run service workers (plain http on a host other than
//                        localhost, or a browser without them)
//   #bridge-stuck        shown when the worker is installed but the reload did not reach it
// A reload loop is impossible: sessionStorage counts this tab's reloads of the address, and
// after two within 20 seconds the page stops and says so.
(function () {
  "use strict";

  const SCRIPT = "/apps-sw.js";
  const SCOPE = "/apps/";
  const CONTROL_WAIT_MS = 3000;
  const LOOP_WINDOW_MS = 20000;
  const LOOP_LIMIT = 2;
  const LOOP_KEY = "webvm-apps-bootstrap:" + location.pathname + location.search;

  function element(id) {
    return document.getElementById(id);
  }

  function say(text) {
    const status = element("bridge-status");
    if (!status) return;
    status.textContent = text;
    status.hidden = false;
  }

  function show(id) {
    const node = element(id);
    if (node) node.hidden = false;
  }

  // How many times this tab reloaded this address within the loop window, counting this one.
  function recentReloads() {
    try {
      const raw = sessionStorage.getItem(LOOP_KEY);
      const previous = raw ? JSON.parse(raw) : null;
      const now = Date.now();
      const count =
        previous && typeof previous.at === "number" && now - previous.at < LOOP_WINDOW_MS
          ? (previous.count || 0) + 1
          : 1;
      sessionStorage.setItem(LOOP_KEY, JSON.stringify({ at: now, count }));
      return count;
    } catch (_) {
      return 1; // no sessionStorage: never stuck on its account
    }
  }

  function forgetReloads() {
    try {
      sessionStorage.removeItem(LOOP_KEY);
    } catch (_) {
      // nothing to forget
    }
  }

  function unsupported(reason) {
    say(reason);
    show("bridge-unsupported");
  }

  function controlled() {
    return new Promise((resolve) => {
      if (navigator.serviceWorker.controller) {
        resolve(true);
        return;
      }
      const timer = setTimeout(() => resolve(!!navigator.serviceWorker.controller), CONTROL_WAIT_MS);
      navigator.serviceWorker.addEventListener("controllerchange", () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  async function start() {
    if (!window.isSecureContext) {
      unsupported(
        "This address is not a secure context (plain http on a host other than localhost), so the browser " +
          "does not run the service worker that carries the app's requests.",
      );
      return;
    }
    if (!("serviceWorker" in navigator) || !navigator.serviceWorker) {
      unsupported("This browser does not run service workers, which carry the app's requests.");
      return;
    }
    if (recentReloads() > LOOP_LIMIT) {
      forgetReloads();
      say("The app bridge is installed, but this page still reached the server instead of it.");
      show("bridge-stuck");
      return;
    }
    say("Installing the app bridge in this browser…");
    try {
      await navigator.serviceWorker.register(SCRIPT, { scope: SCOPE });
    } catch (error) {
      unsupported("The browser refused the app bridge's service worker: " + ((error && error.message) || error));
      return;
    }
    await navigator.serviceWorker.ready;
    say("Opening the app…");
    // Claimed by the worker's activate step, or (a reload that bypassed it) at the next load.
    await controlled();
    location.reload();
  }

  start().catch((error) => {
    unsupported("The app bridge could not start: " + ((error && error.message) || error));
  });
})();
