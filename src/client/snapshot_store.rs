//! Hibernation snapshots in IndexedDB (browser build only; `js/idb_store.js`): the state
//! `ArrayBuffer` and its [`SnapshotMeta`] under one key, written in one transaction. The
//! state never passes through wasm memory.

use wasm_bindgen::JsCast;

use super::vm::bridge;
use super::vm::image::SnapshotMeta;
use super::vm::{Snapshot, VmError};

/// The key of the hibernation snapshot (one per browser profile and origin).
pub const HIBERNATE_KEY: &str = "hibernate";
/// Where an imported snapshot waits until the import's records are written.
const STAGED_KEY: &str = "import-staged";
/// The workspace record written with an import's records: its staged snapshot is to
/// become the hibernation snapshot.
pub const IMPORT_MARKER: &str = "vm-import";

fn storage_error(error: &wasm_bindgen::JsValue) -> VmError {
    let (name, message) = bridge::js_error(error);
    if name == "QuotaExceededError" {
        VmError::QuotaExceeded(message)
    } else {
        VmError::Storage(message)
    }
}

/// The stored snapshot's metadata, if there is a snapshot.
pub async fn load_meta() -> Result<Option<SnapshotMeta>, VmError> {
    let value = bridge::snapshot_meta(HIBERNATE_KEY)
        .await
        .map_err(|error| storage_error(&error))?;
    let Some(text) = value.as_string() else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| VmError::Storage(format!("the saved VM record is unreadable: {error}")))
}

/// The stored snapshot itself.
pub async fn load(meta: &SnapshotMeta) -> Result<Option<Snapshot>, VmError> {
    let value = bridge::snapshot_data(HIBERNATE_KEY)
        .await
        .map_err(|error| storage_error(&error))?;
    if value.is_null() || value.is_undefined() {
        return Ok(None);
    }
    let buffer = value
        .dyn_into::<js_sys::ArrayBuffer>()
        .map_err(|_| VmError::Storage("the saved VM state is not an ArrayBuffer".into()))?;
    Ok(Some(Snapshot {
        size: u64::from(buffer.byte_length()),
        agent_instance: meta.agent_instance.clone(),
        buffer,
    }))
}

/// Stores a snapshot, replacing the previous one. A full storage gives
/// [`VmError::QuotaExceeded`]; the previous snapshot then stays.
pub async fn save(meta: &SnapshotMeta, snapshot: &Snapshot) -> Result<(), VmError> {
    let text = serde_json::to_string(meta).map_err(|error| VmError::Storage(error.to_string()))?;
    bridge::snapshot_put(HIBERNATE_KEY, &text, &snapshot.buffer)
        .await
        .map(|_| ())
        .map_err(|error| storage_error(&error))
}

/// Deletes the stored snapshot.
pub async fn delete() -> Result<(), VmError> {
    bridge::snapshot_delete(HIBERNATE_KEY)
        .await
        .map(|_| ())
        .map_err(|error| storage_error(&error))
}

/// Asks the browser to keep our storage under pressure; whether it agreed.
pub async fn persist() -> bool {
    bridge::persist_storage().await.as_bool().unwrap_or(false)
}

/// Stores an imported snapshot beside the hibernation one, which it replaces only once the
/// import's records are written (see [`finish_pending_import`]).
pub async fn stage(meta: &SnapshotMeta, buffer: &js_sys::ArrayBuffer) -> Result<(), VmError> {
    let text = serde_json::to_string(meta).map_err(|error| VmError::Storage(error.to_string()))?;
    bridge::snapshot_put(STAGED_KEY, &text, buffer)
        .await
        .map(|_| ())
        .map_err(|error| storage_error(&error))
}

/// Drops a staged snapshot whose import did not write its records.
pub async fn discard_staged() {
    let _ = bridge::snapshot_delete(STAGED_KEY).await;
}

/// Ends an import: after its records (with [`IMPORT_MARKER`]) are written, the staged
/// snapshot becomes the hibernation snapshot and the marker goes. Called by the import and
/// again before every restore, so an import interrupted between the two is finished on the
/// next load; a staged snapshot without the marker is the leftover of an import that never
/// wrote its records, and is dropped.
pub async fn finish_pending_import() -> Result<(), VmError> {
    let marker = bridge::workspace_record(IMPORT_MARKER)
        .await
        .map_err(|error| storage_error(&error))?;
    if marker.is_null() || marker.is_undefined() {
        if bridge::snapshot_meta(STAGED_KEY)
            .await
            .is_ok_and(|meta| !meta.is_null())
        {
            discard_staged().await;
        }
        return Ok(());
    }
    bridge::snapshot_promote(STAGED_KEY, HIBERNATE_KEY)
        .await
        .map_err(|error| storage_error(&error))?;
    let clear = js_sys::Array::of1(&js_sys::Array::of2(
        &IMPORT_MARKER.into(),
        &wasm_bindgen::JsValue::NULL,
    ));
    bridge::workspace_records_put(&clear)
        .await
        .map(|_| ())
        .map_err(|error| storage_error(&error))
}
