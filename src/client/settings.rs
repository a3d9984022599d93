//! Small browser settings in localStorage (gloo-storage): the chosen VM engine, whether the
//! VM boots when the page opens, and the CheerpX sources. The server build sees the
//! defaults.

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

/// A stored value without the JSON quotes gloo-storage writes around strings.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn unquote(raw: &str) -> String {
    raw.trim().trim_matches('"').to_string()
}

#[cfg(feature = "hydrate")]
fn read(key: &str) -> Option<String> {
    use gloo_storage::Storage;
    gloo_storage::LocalStorage::raw()
        .get_item(key)
        .ok()
        .flatten()
        .map(|raw| unquote(&raw))
        .filter(|value| !value.is_empty())
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

/// The chosen engine.
pub fn engine() -> EngineKind {
    read(ENGINE_KEY)
        .map(|value| EngineKind::from_key(&value))
        .unwrap_or_default()
}

/// Chooses the engine (takes effect at the next boot). The choice is also put in a cookie,
/// so the server sends the cross-origin isolation headers CheerpX needs, and only then.
pub fn set_engine(kind: EngineKind) -> Result<(), String> {
    write(ENGINE_KEY, kind.key())?;
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
        kind.key()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_removed_and_defaults_hold_on_the_server() {
        assert_eq!(unquote("\"cheerpx\""), "cheerpx");
        assert_eq!(unquote(" v86 "), "v86");
        assert_eq!(engine(), EngineKind::V86);
        assert!(autoboot());
        assert!(write(ENGINE_KEY, "v86").is_err());
    }
}
