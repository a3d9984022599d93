//! The application record ([`AppBook`]) in IndexedDB (`js/idb_store.js`): read once when the
//! page starts, written after every change, before the server mirror hears of it.

use chrono::Utc;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use super::{AppManager, AppsError};
use crate::client::vm::bridge::js_message;
use crate::domain::app_registry::{AppBook, RecordError};

#[wasm_bindgen(module = "/js/idb_store.js")]
extern "C" {
    #[wasm_bindgen(js_name = recordGet, catch)]
    pub(super) async fn record_get(key: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = recordPut, catch)]
    pub(super) async fn record_put(key: &str, text: &str) -> Result<JsValue, JsValue>;
}

/// The IndexedDB key of the application record.
pub(super) const BOOK_KEY: &str = "applications";

impl AppManager {
    /// Reads the record: an empty one when there is none, or when it is unreadable (its
    /// text is kept under another key first). `None` when storage can't be read at all or
    /// the record is newer than this program: the registry then stays read-only, since
    /// writing would overwrite it.
    pub(super) async fn load_record(&self) -> Option<AppBook> {
        let text = match record_get(BOOK_KEY).await {
            Ok(value) => value.as_string(),
            Err(error) => {
                self.notice.try_set(Some(format!(
                    "Your applications could not be read from this browser's storage ({}); reload the page to try again. Changes are off until then.",
                    js_message(&error)
                )));
                return None;
            }
        };
        let Some(text) = text else {
            return Some(AppBook::default());
        };
        match AppBook::from_json(&text) {
            Ok(book) => Some(book),
            Err(error @ RecordError::Newer { .. }) => {
                self.notice
                    .try_set(Some(format!("{error}. Changes are off until then.")));
                None
            }
            Err(error @ RecordError::Unreadable(_)) => {
                let backup = format!("{BOOK_KEY}.unreadable.{}", Utc::now().timestamp());
                let kept = record_put(&backup, &text).await.is_ok();
                self.notice.try_set(Some(format!(
                    "{error}; the registry was started afresh{}",
                    if kept {
                        format!(" and the old record is kept in IndexedDB as “{backup}”")
                    } else {
                        String::new()
                    }
                )));
                Some(AppBook::default())
            }
        }
    }

    /// Applies `change` to the record: first to a copy, so a refused change leaves nothing;
    /// then (with no await in between, so no other change can interleave) to the page's
    /// record, which is then written to IndexedDB. On a storage error the page's record
    /// holds the change but IndexedDB may not: the caller undoes what must not stay.
    pub(super) async fn change<T>(
        &self,
        change: impl FnOnce(&mut AppBook) -> Result<T, AppsError>,
    ) -> Result<T, AppsError> {
        if !self.writable.get_untracked() {
            return Err(AppsError::Storage(
                "the application record could not be read in this page, so it can't be changed"
                    .to_owned(),
            ));
        }
        let mut book = self.book.get_untracked();
        let value = change(&mut book)?;
        self.book.try_set(book);
        self.flush().await?;
        Ok(value)
    }

    /// Writes the page's record as it is now to IndexedDB. Writes run one at a time, and
    /// each writes the latest record, so none is lost or reordered.
    pub(super) async fn flush(&self) -> Result<(), AppsError> {
        let lock = self.writes.get_value();
        let _turn = lock.lock().await;
        let text = self
            .book
            .try_with_untracked(serde_json::to_string)
            .ok_or_else(|| AppsError::Storage("the page is closing".to_owned()))?
            .map_err(|error| AppsError::Storage(error.to_string()))?;
        record_put(BOOK_KEY, &text)
            .await
            .map_err(|error| AppsError::Storage(js_message(&error)))?;
        Ok(())
    }
}
