//! Small browser settings in localStorage (gloo-storage's typed `get` and `set`): the chosen
//! VM engine, whether the VM boots when the page opens, and the CheerpX sources; and
//! [`StoredSetting`], the reactive hook a component shows and changes one with. The server
//! build sees the defaults.

use leptos::prelude::*;

use super::vm::EngineKind;

/// Which engine runs the guest: `v86` (default) or `cheerpx`.
pub const ENGINE_KEY: &str = "webvm.engine";
/// `off` keeps the VM from booting by itself when the dashboard opens (a saved VM state is
/// still resumed).
pub const AUTOBOOT_KEY: &str = "webvm.autoboot";
/// URL of CheerpX's `cx.esm.js`.
pub const CHEERPX_CDN_KEY: &str = "webvm.cheerpx.cdn";
/// URL of the ext2 root disk CheerpX boots.
pub const CHEERPX_DISK_KEY: &str = "webvm.cheerpx.disk";

/// A stored text: the JSON string gloo-storage writes, or plain text written by hand
/// (`localStorage.setItem("webvm.autoboot", "off")`, as `scripts/lib/webvm-harness.mjs`
/// does), which is not JSON.
#[cfg(feature = "hydrate")]
fn read(key: &str) -> Option<String> {
    use gloo_storage::errors::StorageError;
    use gloo_storage::{LocalStorage, Storage};
    let value = match LocalStorage::get::<String>(key) {
        Ok(value) => value,
        Err(StorageError::SerdeError(_)) => LocalStorage::raw().get_item(key).ok().flatten()?,
        Err(_) => return None,
    };
    Some(value.trim().to_string()).filter(|value| !value.is_empty())
}

#[cfg(not(feature = "hydrate"))]
fn read(_key: &str) -> Option<String> {
    None
}

/// Stores a setting (browser only; a full or disabled storage is reported).
#[cfg(feature = "hydrate")]
pub fn write(key: &str, value: &str) -> Result<(), String> {
    use gloo_storage::Storage;
    gloo_storage::LocalStorage::set(key, value).map_err(|error| error.to_string())
}

/// Stores a setting (browser only; the server has no browser storage).
#[cfg(not(feature = "hydrate"))]
pub fn write(_key: &str, _value: &str) -> Result<(), String> {
    Err("settings are stored in the browser".into())
}

/// Reads a stored engine name, forgiving case and spaces; anything unknown means the
/// default engine.
fn engine_from_text(text: &str) -> EngineKind {
    text.trim().to_ascii_lowercase().parse().unwrap_or_default()
}

/// The chosen engine.
pub fn engine() -> EngineKind {
    read(ENGINE_KEY)
        .map(|value| engine_from_text(&value))
        .unwrap_or_default()
}

/// Chooses the engine (takes effect at the next boot). The choice is also put in a cookie,
/// so the server sends the cross-origin isolation headers CheerpX needs, and only then.
pub fn set_engine(kind: EngineKind) -> Result<(), String> {
    write(ENGINE_KEY, kind.as_str())?;
    set_engine_cookie(kind)
}

#[cfg(feature = "hydrate")]
fn set_engine_cookie(kind: EngineKind) -> Result<(), String> {
    let document = web_sys::window()
        .and_then(|window| window.document())
        .ok_or("this page has no document")?;
    let cookie = format!(
        "{}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        crate::model::ENGINE_COOKIE,
        kind.as_str()
    );
    js_sys::Reflect::set(&document, &"cookie".into(), &cookie.into())
        .map(|_| ())
        .map_err(|_| "the browser refused the engine cookie".to_string())
}

#[cfg(not(feature = "hydrate"))]
fn set_engine_cookie(_kind: EngineKind) -> Result<(), String> {
    Ok(())
}

/// Whether the VM boots when the dashboard opens.
pub fn autoboot() -> bool {
    !matches!(
        read(AUTOBOOT_KEY)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("off" | "false" | "0" | "no")
    )
}

/// CheerpX sources: `(cdn_url, disk_url)` when set.
pub fn cheerpx_sources() -> (Option<String>, Option<String>) {
    (read(CHEERPX_CDN_KEY), read(CHEERPX_DISK_KEY))
}

/// A setting as reactive state for a component. It holds the default on the server and in
/// the first hydrated render, so hydration matches the server's HTML, and the stored value
/// once the page has hydrated; [`StoredSetting::set`] stores a new value.
pub struct StoredSetting<T: Send + Sync + 'static> {
    value: RwSignal<T>,
    store: fn(T) -> Result<(), String>,
}

impl<T: Send + Sync + 'static> Clone for StoredSetting<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for StoredSetting<T> {}

impl<T: Clone + Default + Send + Sync + 'static> StoredSetting<T> {
    /// A setting read with `load` and written with `store`.
    pub fn new(load: fn() -> T, store: fn(T) -> Result<(), String>) -> Self {
        let value = RwSignal::new(T::default());
        // Effects run in the browser only, after hydration; `load` reads no signal, so once.
        Effect::new(move |_| value.set(load()));
        StoredSetting { value, store }
    }

    /// The value (tracked).
    pub fn get(&self) -> T {
        self.value.get()
    }

    /// Shows and stores `value`; an error says why it could not be stored.
    pub fn set(&self, value: T) -> Result<(), String> {
        self.value.set(value.clone());
        (self.store)(value)
    }
}

/// The chosen engine, for the engine selector.
pub fn use_engine_setting() -> StoredSetting<EngineKind> {
    StoredSetting::new(engine, set_engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_hold_on_the_server() {
        assert_eq!(engine(), EngineKind::V86);
        assert!(autoboot());
        assert!(write(ENGINE_KEY, "v86").is_err());
    }

    #[test]
    fn engine_names_round_trip_and_default_to_v86() {
        for kind in EngineKind::ALL {
            assert_eq!(engine_from_text(kind.as_str()), *kind);
        }
        assert_eq!(engine_from_text("CheerpX "), EngineKind::Cheerpx);
        assert_eq!(engine_from_text(""), EngineKind::V86);
        assert_eq!(engine_from_text("qemu"), EngineKind::V86);
    }
}
