//! The application record ([`AppBook`]) in IndexedDB (`js/idb_store.js`): read once when the
//! page starts, written after every change, before the server mirror hears of it.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use super::{AppManager, AppsError};
use crate::client::stored_record::{self, Loaded};
use crate::client::vm::bridge::js_message;
use crate::domain::app_registry::AppBook;

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
        match stored_record::load(BOOK_KEY, AppBook::from_json).await {
            Loaded::Ready(book) => Some(book),
            Loaded::Reset {
                fresh,
                error,
                kept_as,
            } => {
                self.notice.try_set(Some(format!(
                    "{}; the registry was started afresh",
                    Loaded::<AppBook>::reset_note(&error, &kept_as)
                )));
                Some(fresh)
            }
            Loaded::Newer(error) => {
                self.notice
                    .try_set(Some(format!("{error}. Changes are off until then.")));
                None
            }
            Loaded::Unavailable(message) => {
                self.notice.try_set(Some(format!(
                    "Your applications could not be read from this browser's storage ({message}); reload the page to try again. Changes are off until then."
                )));
                None
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
