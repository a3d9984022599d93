//! wasm-bindgen imports of the JavaScript glue in `js/` (browser build only), and small
//! helpers to turn JavaScript errors into messages.

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::VmError;

#[wasm_bindgen(module = "/js/v86_bridge.js")]
extern "C" {
    /// Loads a classic script once; resolves when `global_name` exists on `window`.
    #[wasm_bindgen(js_name = loadScript, catch)]
    pub async fn load_script(src: &str, global_name: &str) -> Result<JsValue, JsValue>;

    /// GET as text; rejects with a readable message on network errors and non-2xx answers.
    #[wasm_bindgen(js_name = fetchText, catch)]
    pub async fn fetch_text(url: &str) -> Result<JsValue, JsValue>;

    /// Downloads a machine state of `expected_size` (unpacked) bytes into an `ArrayBuffer`;
    /// `on_progress(loaded, total)` follows the download.
    #[wasm_bindgen(js_name = fetchState, catch)]
    pub async fn fetch_state(
        url: &str,
        expected_size: f64,
        on_progress: &Closure<dyn FnMut(f64, f64)>,
    ) -> Result<JsValue, JsValue>;

    /// SHA-256 of an `ArrayBuffer`, hex; `null` without WebCrypto.
    #[wasm_bindgen(js_name = sha256Hex, catch)]
    pub async fn sha256_hex(buffer: &JsValue) -> Result<JsValue, JsValue>;

    /// Sets (or with `null`, deletes) a property of `window`.
    #[wasm_bindgen(js_name = setGlobal)]
    pub fn set_global(name: &str, value: &JsValue);

    /// One v86 emulator with batched serial output.
    pub type V86Machine;

    #[wasm_bindgen(constructor, catch)]
    pub fn new(
        options_json: &str,
        initial_state: &JsValue,
        on_serial: &Closure<dyn FnMut(u32, Uint8Array)>,
        on_progress: &Closure<dyn FnMut(String, f64, f64)>,
        on_event: &Closure<dyn FnMut(String, String)>,
    ) -> Result<V86Machine, JsValue>;

    /// Writes bytes to serial port `port` (read synchronously; a view is fine).
    #[wasm_bindgen(method)]
    pub fn send(this: &V86Machine, port: u32, bytes: &[u8]);

    #[wasm_bindgen(method, js_name = isRunning)]
    pub fn is_running(this: &V86Machine) -> bool;

    /// `save_state()`: an `ArrayBuffer`.
    #[wasm_bindgen(method, js_name = saveState, catch)]
    pub async fn save_state(this: &V86Machine) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method, catch)]
    pub async fn stop(this: &V86Machine) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method, catch)]
    pub async fn run(this: &V86Machine) -> Result<JsValue, JsValue>;

    /// 9p: creates a file relative to the shared directory (`/mnt/host` in the guest).
    #[wasm_bindgen(method, js_name = createFile, catch)]
    pub async fn create_file(
        this: &V86Machine,
        path: &str,
        bytes: Uint8Array,
    ) -> Result<JsValue, JsValue>;

    /// 9p: reads a file relative to the shared directory: a `Uint8Array`.
    #[wasm_bindgen(method, js_name = readFile, catch)]
    pub async fn read_file(this: &V86Machine, path: &str) -> Result<JsValue, JsValue>;

    /// Page → guest TCP; `on_event(kind, bytes)` with kind `connect`, `data` or `close`.
    #[wasm_bindgen(method, catch)]
    pub fn connect(
        this: &V86Machine,
        port: u16,
        on_event: &Closure<dyn FnMut(String, JsValue)>,
    ) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method)]
    pub async fn destroy(this: &V86Machine) -> JsValue;

    #[wasm_bindgen(js_name = connectionWrite)]
    pub fn connection_write(connection: &JsValue, bytes: Uint8Array);

    #[wasm_bindgen(js_name = connectionClose)]
    pub fn connection_close(connection: &JsValue);
}

#[wasm_bindgen(module = "/js/idb_store.js")]
extern "C" {
    /// The JSON metadata stored under `key`, or `null`.
    #[wasm_bindgen(js_name = snapshotMeta, catch)]
    pub async fn snapshot_meta(key: &str) -> Result<JsValue, JsValue>;

    /// The state `ArrayBuffer` stored under `key`, or `null`.
    #[wasm_bindgen(js_name = snapshotData, catch)]
    pub async fn snapshot_data(key: &str) -> Result<JsValue, JsValue>;

    /// Stores both in one transaction; rejects with name `QuotaExceededError` when full.
    #[wasm_bindgen(js_name = snapshotPut, catch)]
    pub async fn snapshot_put(
        key: &str,
        meta_json: &str,
        buffer: &JsValue,
    ) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = snapshotDelete, catch)]
    pub async fn snapshot_delete(key: &str) -> Result<JsValue, JsValue>;

    /// Moves the snapshot under `from` to `to` in one transaction; whether `from` existed.
    #[wasm_bindgen(js_name = snapshotPromote, catch)]
    pub async fn snapshot_promote(from: &str, to: &str) -> Result<JsValue, JsValue>;

    /// The workspace record under `key` (JSON text), or `null`.
    #[wasm_bindgen(js_name = recordGet, catch)]
    pub async fn workspace_record(key: &str) -> Result<JsValue, JsValue>;

    /// Writes `[key, text | null]` pairs to the workspace records in one transaction.
    #[wasm_bindgen(js_name = recordsPut, catch)]
    pub async fn workspace_records_put(entries: &js_sys::Array) -> Result<JsValue, JsValue>;

    /// `navigator.storage.persist()`, never rejecting.
    #[wasm_bindgen(js_name = persistStorage)]
    pub async fn persist_storage() -> JsValue;
}

#[wasm_bindgen(module = "/js/terminal.js")]
extern "C" {
    /// An open console (xterm.js, or the plain fallback).
    pub type ConsoleHandle;

    /// Opens a console in `element`; `on_data` gets what the user types, `on_resize` the
    /// size in characters (debounced).
    #[wasm_bindgen(js_name = openTerminal)]
    pub async fn open_terminal(
        element: &web_sys::HtmlElement,
        on_data: &Closure<dyn FnMut(Uint8Array)>,
        on_resize: &Closure<dyn FnMut(u32, u32)>,
    ) -> JsValue;

    /// Shows bytes (copied by the terminal before it queues them).
    #[wasm_bindgen(method)]
    pub fn write(this: &ConsoleHandle, bytes: &[u8]);

    #[wasm_bindgen(method)]
    pub fn focus(this: &ConsoleHandle);

    #[wasm_bindgen(method)]
    pub fn dispose(this: &ConsoleHandle);

    /// `xterm` or `plain`.
    #[wasm_bindgen(method, getter)]
    pub fn kind(this: &ConsoleHandle) -> String;
}

#[wasm_bindgen(module = "/js/cheerpx_bridge.js")]
extern "C" {
    /// A CheerpX Linux with the mounts the engine needs.
    pub type CheerpXMachine;

    /// Loads CheerpX from `cdn_url` (ES module) and creates the machine.
    #[wasm_bindgen(static_method_of = CheerpXMachine, catch)]
    pub async fn create(
        cdn_url: &str,
        disk_url: &str,
        disk_kind: &str,
        cache_id: &str,
        on_console: &Closure<dyn FnMut(Uint8Array)>,
    ) -> Result<JsValue, JsValue>;

    /// `cx.run(path, args, {env, cwd})`: the exit status.
    #[wasm_bindgen(method, catch)]
    pub async fn run(
        this: &CheerpXMachine,
        path: &str,
        args: js_sys::Array,
        env: js_sys::Array,
        cwd: &str,
    ) -> Result<JsValue, JsValue>;

    /// Writes a file into the DataDevice mounted at `/mnt/host`.
    #[wasm_bindgen(method, js_name = writeData, catch)]
    pub async fn write_data(
        this: &CheerpXMachine,
        name: &str,
        bytes: Uint8Array,
    ) -> Result<JsValue, JsValue>;

    /// Reads a file from the IDBDevice mounted at `/mnt/out`: a `Uint8Array`.
    #[wasm_bindgen(method, js_name = readOut, catch)]
    pub async fn read_out(this: &CheerpXMachine, name: &str) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method, js_name = consoleSend)]
    pub fn console_send(this: &CheerpXMachine, bytes: &[u8]);

    /// Runs the user's login shell on the console (again whenever it exits), with `env`.
    #[wasm_bindgen(method, js_name = startShell)]
    pub fn start_shell(this: &CheerpXMachine, env: js_sys::Array);

    #[wasm_bindgen(method)]
    pub fn destroy(this: &CheerpXMachine);
}

/// Resolves after `ms` milliseconds (`setTimeout`, through gloo-timers; at most about 24
/// days, the longest timeout browsers keep).
pub async fn sleep(ms: u64) {
    let ms = u32::try_from(ms.min(i32::MAX as u64)).unwrap_or(i32::MAX as u32);
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// `performance.now()`: milliseconds since the page started, monotonic (`Date.now()` where
/// there is no `Performance`).
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or_else(js_sys::Date::now, |performance| performance.now())
}

/// The `name` and `message` of a JavaScript error (or the value's text).
pub fn js_error(value: &JsValue) -> (String, String) {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return (String::from(error.name()), String::from(error.message()));
    }
    let text = value
        .as_string()
        .or_else(|| {
            js_sys::JSON::stringify(value)
                .ok()
                .and_then(|text| text.as_string())
        })
        .unwrap_or_else(|| "unknown JavaScript error".to_string());
    (String::new(), text)
}

/// The message of a JavaScript error.
pub fn js_message(value: &JsValue) -> String {
    js_error(value).1
}

/// A JavaScript call that gives nothing back, its failure as a [`VmError::Js`].
pub fn js_done(result: Result<JsValue, JsValue>) -> Result<(), VmError> {
    result
        .map(drop)
        .map_err(|error| VmError::Js(js_message(&error)))
}

/// The bytes of a JavaScript call that gives a `Uint8Array`; `source` names the source in
/// the error when it gives something else.
pub fn js_bytes(result: Result<JsValue, JsValue>, source: &str) -> Result<Vec<u8>, VmError> {
    result
        .map_err(|error| VmError::Js(js_message(&error)))?
        .dyn_into::<Uint8Array>()
        .map(|bytes| bytes.to_vec())
        .map_err(|_| VmError::Js(format!("{source} returned no bytes")))
}

/// Copies bytes into a new JavaScript `Uint8Array` (safe to keep after wasm memory grows).
pub fn to_js_bytes(bytes: &[u8]) -> Uint8Array {
    Uint8Array::from(bytes)
}
