//! The package record ([`PackageBook`]) in IndexedDB (`js/idb_store.js`): read once when
//! the page starts (older formats upgraded), written at every step of an operation.

use leptos::prelude::*;

use super::PackageManager;
use crate::client::stored_record::{self, Loaded};
use crate::domain::package_install::PackageBook;

/// The IndexedDB key of the package record.
pub(crate) const BOOK_KEY: &str = "packages";

impl PackageManager {
    /// Reads the record: a fresh one when there is none, or when it is unreadable (its text
    /// is kept under another key); `None` when storage can't be read at all or a newer
    /// program wrote it, and then the manager stays read-only (writing would overwrite it).
    pub(super) async fn load_record(&self) -> Option<PackageBook> {
        match stored_record::load(BOOK_KEY, PackageBook::from_json).await {
            Loaded::Ready(book) => Some(book),
            Loaded::Reset {
                fresh,
                error,
                kept_as,
            } => {
                self.notice.try_set(Some(format!(
                    "{}; the package record was started afresh",
                    Loaded::<PackageBook>::reset_note(&error, &kept_as)
                )));
                Some(fresh)
            }
            Loaded::Newer(error) => {
                self.notice.try_set(Some(format!(
                    "{error}. Installing and removing are off until then."
                )));
                self.maintenance.try_set(true);
                None
            }
            Loaded::Unavailable(message) => {
                self.notice.try_set(Some(format!(
                    "The package record could not be read from this browser ({message}); reload the page to try again. Installing and removing are off until then."
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
        if let Err(error) = stored_record::store(BOOK_KEY, &text).await {
            leptos::logging::warn!("packages: could not save the record: {error}");
            self.notice.try_set(Some(format!(
                "The package record could not be saved in this browser: {error}"
            )));
        }
    }
}
