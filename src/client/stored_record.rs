//! Reading one of this browser's versioned records from IndexedDB (`js/idb_store.js`): the
//! application, package and VM records all load the same way, so a manager only words what
//! happened (see `domain::stored_record` for the formats).

use chrono::Utc;
use wasm_bindgen::prelude::*;

use crate::client::vm::bridge::js_message as js_text;
use crate::domain::stored_record::RecordError;

#[wasm_bindgen(module = "/js/idb_store.js")]
extern "C" {
    #[wasm_bindgen(js_name = recordGet, catch)]
    async fn record_get(key: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = recordPut, catch)]
    async fn record_put(key: &str, text: &str) -> Result<JsValue, JsValue>;
}

/// What reading a record found.
#[derive(Debug)]
pub enum Loaded<T> {
    /// The stored record, or a fresh one when none was stored.
    Ready(T),
    /// The stored text could not be read: a fresh record, and the old text kept under
    /// `kept_as` when that could be written, so nothing is lost for good.
    Reset {
        fresh: T,
        error: RecordError,
        kept_as: Option<String>,
    },
    /// A newer program wrote it: the manager stays read-only (writing would lose data).
    Newer(RecordError),
    /// Storage could not be read at all: read-only too; the message says why.
    Unavailable(String),
}

impl<T> Loaded<T> {
    /// What to tell the user about a reset record: `"{error}; … kept as “key”"`.
    pub fn reset_note(error: &RecordError, kept_as: &Option<String>) -> String {
        match kept_as {
            Some(key) => format!("{error}; the old one is kept in IndexedDB as “{key}”"),
            None => error.to_string(),
        }
    }
}

/// Reads the record stored under `key` with `read` (a format's reader).
pub async fn load<T: Default>(
    key: &str,
    read: impl Fn(&str) -> Result<T, RecordError>,
) -> Loaded<T> {
    let text = match record_get(key).await {
        Ok(value) => value.as_string(),
        Err(error) => return Loaded::Unavailable(js_text(&error)),
    };
    let Some(text) = text else {
        return Loaded::Ready(T::default());
    };
    match read(&text) {
        Ok(record) => Loaded::Ready(record),
        Err(error @ RecordError::Newer { .. }) => Loaded::Newer(error),
        Err(error @ RecordError::Unreadable { .. }) => {
            let backup = format!("{key}.unreadable.{}", Utc::now().timestamp());
            let kept_as = record_put(&backup, &text).await.is_ok().then_some(backup);
            Loaded::Reset {
                fresh: T::default(),
                error,
                kept_as,
            }
        }
    }
}

/// Writes `text` under `key`.
pub async fn store(key: &str, text: &str) -> Result<(), String> {
    record_put(key, text)
        .await
        .map(|_| ())
        .map_err(|error| js_text(&error))
}
