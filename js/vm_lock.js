// One VM per browser profile: the tab that holds the Web Lock "webvm-appserver:vm" runs the
// VM; every other tab of the site shows that and can ask for it (src/client/vm_controller/
// ownership.rs drives this). Two VMs would write the same saved state in IndexedDB and answer
// the same /apps/<name>/ requests, so there is never more than one.
//
// Hand-over protocol, on the BroadcastChannel "webvm-appserver:vm":
//   taker → all    {type: "handover-request"}
//   owner → all    {type: "handover-started"}            it is saving the VM
//   owner → all    {type: "handover-refused", reason}    it could not save; it keeps the VM
//   The owner saves the VM, marks its own reload as handed over (sessionStorage), releases
//   the lock and reloads. The taker watches the lock (navigator.locks.query) and, once it is
//   free, reloads marked as taking over; that load waits for the lock instead of giving up
//   when it is held, so the tab reloaded from a hand-over never races it.
//   A forced take-over steals the lock (an owner that does not answer); the robbed tab learns
//   it from its lock request failing and reloads as handed over.
//
// Exports:
//   vmLockSupported() -> boolean
//   reloadMark() -> "take-over" | "handed-over" | "": why this load happened (read once)
//   acquireVmLock(wait: boolean, onLost: () => void) -> Promise<boolean>
//   stealVmLock(onLost) -> Promise<boolean>
//   vmLockHeld() -> Promise<boolean>: whether any tab holds the lock now
//   listenForHandover(onMessage: (type, reason) => void)
//   postHandover(type, reason?)
//   releaseAndReload(mark): releases the lock (if held) and reloads with the mark

const LOCK_NAME = "webvm-appserver:vm";
const CHANNEL_NAME = "webvm-appserver:vm";
const MARK_KEY = "webvm.vmReload";

let releaseHeld = null;
let channel = null;

export function vmLockSupported() {
  return (
    typeof navigator !== "undefined" &&
    !!navigator.locks &&
    typeof navigator.locks.request === "function" &&
    typeof BroadcastChannel === "function"
  );
}

export function reloadMark() {
  try {
    const mark = sessionStorage.getItem(MARK_KEY) || "";
    sessionStorage.removeItem(MARK_KEY);
    return mark;
  } catch (_error) {
    return "";
  }
}

function request(options, onLost) {
  return new Promise((resolve) => {
    let granted = false;
    navigator.locks
      .request(LOCK_NAME, options, (lock) => {
        if (!lock) {
          resolve(false);
          return undefined;
        }
        granted = true;
        resolve(true);
        return new Promise((release) => {
          releaseHeld = release;
        });
      })
      .catch((error) => {
        // A lock held here and then stolen by another tab ends with an AbortError.
        releaseHeld = null;
        if (granted) onLost(String((error && error.message) || error));
        else resolve(false);
      });
  });
}

export function acquireVmLock(wait, onLost) {
  return request(wait ? {} : { ifAvailable: true }, onLost);
}

export function stealVmLock(onLost) {
  return request({ steal: true }, onLost);
}

export async function vmLockHeld() {
  const state = await navigator.locks.query();
  return (state.held || []).some((lock) => lock.name === LOCK_NAME);
}

function ensureChannel() {
  if (!channel) channel = new BroadcastChannel(CHANNEL_NAME);
  return channel;
}

export function listenForHandover(onMessage) {
  ensureChannel().onmessage = (event) => {
    const data = event.data;
    if (data && typeof data.type === "string") onMessage(data.type, String(data.reason || ""));
  };
}

export function postHandover(type, reason) {
  ensureChannel().postMessage({ type, reason: reason || "" });
}

export function releaseAndReload(mark) {
  try {
    sessionStorage.setItem(MARK_KEY, mark);
  } catch (_error) {
    // Without sessionStorage the reloaded tab simply tries for the lock.
  }
  if (releaseHeld) {
    releaseHeld();
    releaseHeld = null;
  }
  window.location.reload();
}
