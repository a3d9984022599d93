//! The package record ([`PackageBook`]) in IndexedDB (`js/idb_store.js`): read once when
//! the page starts, written at every step of an operation.

use chrono::Utc;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use super::{js_text, PackageManager};
use crate::domain::package_install::PackageBook;

#[wasm_bindgen(module = "/js/idb_store.js")]
extern "C" {
    #[wasm_bindgen(js_name = recordGet, catch)]
    async fn record_get(key: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = recordPut, catch)]
    async fn record_put(key: &str, text: &str) -> Result<JsValue, JsValue>;
}

/// The IndexedDB key of the package record.
pub(crate) const BOOK_KEY: &str = "packages";

impl PackageManager {
    /// Reads the record: a fresh one when there is none, or when it is unreadable (its text
    /// is kept under another key); `None` when storage can't be read at all, and then the
    /// manager stays read-only (writing would overwrite the record).
    pub(super) async fn load_record(&self) -> Option<PackageBook> {
        match record_get(BOOK_KEY).await {
            Ok(value) => match value.as_string() {
                Some(text) => match serde_json::from_str::<PackageBook>(&text) {
                    Ok(book) => Some(book),
                    Err(error) => {
                        // Keep the unreadable text, so nothing is lost for good.
                        let backup = format!("{BOOK_KEY}.unreadable.{}", Utc::now().timestamp());
                        let kept = record_put(&backup, &text).await.is_ok();
                        self.notice.try_set(Some(format!(
                            "The saved package record was unreadable ({error}) and was started afresh{}",
                            if kept { format!("; the old one is kept in IndexedDB as “{backup}”") } else { String::new() }
                        )));
                        Some(PackageBook::default())
                    }
                },
                None => Some(PackageBook::default()),
            },
            Err(error) => {
                // Without the record, writing one would overwrite it: stay read-only.
                self.notice.try_set(Some(format!(
                    "The package record could not be read from this browser ({}); reload the page to try again. Installing and removing are off until then.",
                    js_text(&error)
                )));
                self.maintenance.try_set(true);
                None
            }
        }
    }

    /// Writes the record; a failure is logged and shown as a notice.
    pub(super) async fn persist(&self) {
        let Some(text) = self
            .book
            .try_with_untracked(|book| serde_json::to_string(book).ok())
            .flatten()
        else {
            return;
        };
        if let Err(error) = record_put(BOOK_KEY, &text).await {
            leptos::logging::warn!("packages: could not save the record: {}", js_text(&error));
            self.notice.try_set(Some(format!(
                "The package record could not be saved in this browser: {}",
                js_text(&error)
            )));
        }
    }
}
