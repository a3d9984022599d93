//! The local-sync source: a folder on the user's disk, picked with the File System Access API
//! (`showDirectoryPicker`), deployed once in full and then, with `watchEnabled`, kept in sync.
//!
//! - The folder's handle is kept in IndexedDB per application (`js/idb_store.js`); after a
//!   reload the browser asks for permission again, which needs a click: [`reconnect`].
//! - [`read_folder`] reads it all (the initial sync) and gives the [`FolderSnapshot`] that
//!   [`watch`] compares against once those files are in the guest: a `FileSystemObserver` wakes it where the browser has one
//!   (with a slow poll as a safety net), elsewhere it polls every second; either way it
//!   compares size and modification time per path and reports a [`ChangeSet`] with the
//!   changed files' bytes and the deleted paths.
//! - [`ChangeSet::plan`] is the pure part that turns a change set into the files to pack and
//!   the paths to delete, relative to the release (the top-level folder the initial deploy
//!   stripped is stripped here too), deletions first.
//! - Browsers without the API ([`directory_picker_supported`] is false) use a directory
//!   `<input>` through `sources`, without watch.
//! - Tests use an origin-private (OPFS) folder, which has the same interface:
//!   [`use_opfs_folder`], [`opfs_write`], [`opfs_delete`].

use std::collections::{BTreeMap, BTreeSet};

use crate::client::apps::bundle::{SourceFile, SourceMaterial};
use crate::client::apps::sources::SourceError;

#[cfg(feature = "hydrate")]
use crate::client::apps::sources::ReadProgress;
#[cfg(feature = "hydrate")]
use crate::model::{ApplicationId, DeployLimits};

/// How often a folder is compared when the browser cannot tell us it changed.
pub const POLL_MS: u64 = 1000;
/// How often a folder is compared anyway when a `FileSystemObserver` watches it.
pub const OBSERVED_POLL_MS: u64 = 5000;
/// How long a burst of observed changes is let settle before the folder is compared.
pub const SETTLE_MS: u64 = 50;

/// Why a local folder could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("this browser cannot open local folders (it lacks the File System Access API): upload the folder instead; changes are then not watched")]
    Unsupported,
    #[error("no folder has been picked for this application")]
    NoFolder,
    #[error("no folder was picked")]
    Cancelled,
    #[error("reading the folder '{name}' needs your permission again: press Reconnect")]
    PermissionNeeded { name: String },
    #[error("reading the folder '{name}' was not allowed")]
    Denied { name: String },
    #[error("'{path}' is not a path inside the folder ({rule})")]
    BadPath { path: String, rule: &'static str },
    /// The folder no longer has the single top-level folder the release was made from
    /// (stripped then): only a full deploy can lay it out again.
    #[error("'{path}' is outside '{folder}', the single top-level folder the release was made from: deploy the whole folder again")]
    LayoutChanged { path: String, folder: String },
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("the browser failed: {0}")]
    Browser(String),
    #[error("this needs the page's JavaScript")]
    BrowserOnly,
}

/// Whether this browser can pick a folder to sync (`showDirectoryPicker`).
pub fn directory_picker_supported() -> bool {
    #[cfg(feature = "hydrate")]
    {
        browser::directory_picker_supported()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        false
    }
}

/// Whether `path` is a file browsers and editors only hold while writing another: Chromium's
/// `.crswap` swap files (the File System Access API's `createWritable`), editor swap and
/// backup files. They are never deployed, and a watch does not see them come and go.
pub fn is_transient(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".crswap")
        || name.ends_with(".swp")
        || name.ends_with('~')
        || name.starts_with(".#")
}

/// What is known of one file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub size: u64,
    /// `lastModified`, milliseconds since the epoch.
    pub modified: i64,
}

/// Every file of a folder by path (`/`-separated, relative to the folder), with its stamp.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FolderSnapshot(pub BTreeMap<String, FileStamp>);

impl FolderSnapshot {
    pub fn total_bytes(&self) -> u64 {
        self.0.values().map(|stamp| stamp.size).sum()
    }
}

/// What differs between two snapshots of a folder, by path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Difference {
    /// New files, and files whose size or modification time changed.
    pub changed: Vec<String>,
    /// Files that are gone.
    pub deleted: Vec<String>,
    /// Folders that held a deleted file and hold no file any more, or became a file (topmost
    /// only).
    pub emptied_dirs: Vec<String>,
}

impl Difference {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.deleted.is_empty()
    }
}

/// Compares two snapshots of the same folder.
pub fn compare(old: &FolderSnapshot, new: &FolderSnapshot) -> Difference {
    let changed = new
        .0
        .iter()
        .filter(|(path, stamp)| old.0.get(*path) != Some(*stamp))
        .map(|(path, _)| path.clone())
        .collect();
    let deleted: Vec<String> = old
        .0
        .keys()
        .filter(|path| !new.0.contains_key(*path))
        .cloned()
        .collect();
    let live_dirs: BTreeSet<&str> = new.0.keys().flat_map(|path| ancestors(path)).collect();
    let mut emptied = BTreeSet::new();
    for path in &deleted {
        // The topmost ancestor that holds no file now (ancestors run from the top down); it
        // may have become a file, which is written after the folder is deleted.
        if let Some(dir) = ancestors(path).find(|dir| !live_dirs.contains(dir)) {
            emptied.insert(dir.to_string());
        }
    }
    Difference {
        changed,
        deleted,
        emptied_dirs: emptied.into_iter().collect(),
    }
}

/// The folders a path is in, from the top down (`a/b/c` → `a`, `a/b`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .map(move |(index, _)| &path[..index])
}

/// What changed in a watched folder since the last report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeSet {
    /// New and modified files, with their bytes.
    pub changed: Vec<SourceFile>,
    /// Files that were deleted.
    pub deleted: Vec<String>,
    /// Folders left with no file (topmost only); mirrored by deleting them.
    pub emptied_dirs: Vec<String>,
}

/// A change set as the guest applies it, every path relative to the release: first delete
/// `delete` (files and whole folders; `rm -rf --` each), then extract `files` over the
/// release exactly where they say (packed without stripping a top-level folder again).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncPlan {
    pub files: Vec<SourceFile>,
    pub delete: Vec<String>,
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.deleted.is_empty() && self.emptied_dirs.is_empty()
    }

    /// The bytes the changed files bring.
    pub fn changed_bytes(&self) -> u64 {
        self.changed
            .iter()
            .map(|file| file.bytes.len() as u64)
            .sum()
    }

    /// The plan for the guest. `stripped_folder` is the single top-level folder the initial
    /// deploy stripped (`Bundle::stripped_folder`): paths lose it too, and a path outside it
    /// is [`SyncError::LayoutChanged`]. Every path is checked to stay inside the release;
    /// deletions come sorted and without what an emptied folder's deletion already covers.
    /// A path both deleted and changed (a file that became a folder, or back) is deleted
    /// and then written, which is why deletions run first.
    pub fn plan(self, stripped_folder: Option<&str>) -> Result<SyncPlan, SyncError> {
        for path in self
            .changed
            .iter()
            .map(|file| file.path.as_str())
            .chain(self.deleted.iter().map(String::as_str))
            .chain(self.emptied_dirs.iter().map(String::as_str))
        {
            check_relative(path)?;
        }
        let release_path = |path: &str| -> Result<String, SyncError> {
            match stripped_folder {
                None => Ok(path.to_string()),
                Some(folder) => path
                    .strip_prefix(folder)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .map(str::to_string)
                    .ok_or_else(|| SyncError::LayoutChanged {
                        path: path.to_string(),
                        folder: folder.to_string(),
                    }),
            }
        };
        let dirs: BTreeSet<&str> = self.emptied_dirs.iter().map(String::as_str).collect();
        let covered = |path: &str| ancestors(path).any(|dir| dirs.contains(dir));
        let mut delete = BTreeSet::new();
        for path in self
            .emptied_dirs
            .iter()
            .chain(&self.deleted)
            .filter(|path| !covered(path))
        {
            delete.insert(release_path(path)?);
        }
        let files = self
            .changed
            .into_iter()
            .map(|file| {
                Ok(SourceFile {
                    path: release_path(&file.path)?,
                    ..file
                })
            })
            .collect::<Result<Vec<_>, SyncError>>()?;
        Ok(SyncPlan {
            files,
            delete: delete.into_iter().collect(),
        })
    }
}

/// A path relative to the folder: non-empty segments, none `.` or `..`, no NUL, not absolute.
fn check_relative(path: &str) -> Result<(), SyncError> {
    let bad = |rule| {
        Err(SyncError::BadPath {
            path: path.to_string(),
            rule,
        })
    };
    if path.is_empty() {
        return bad("it is empty");
    }
    if path.starts_with('/') {
        return bad("it is absolute");
    }
    if path.contains('\0') {
        return bad("it contains a NUL character");
    }
    if path.split('/').any(|segment| segment.is_empty()) {
        return bad("it has an empty segment");
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return bad("it has a '.' or '..' segment");
    }
    Ok(())
}

/// Whether reading a stored folder is allowed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Granted,
    /// The browser will ask the user (after a click: [`reconnect`]).
    Prompt,
    Denied,
}

impl Permission {
    /// `PermissionState` as the File System Access API gives it.
    pub fn parse(text: &str) -> Self {
        match text {
            "granted" => Permission::Granted,
            "prompt" => Permission::Prompt,
            _ => Permission::Denied,
        }
    }
}

/// A picked folder (its `FileSystemDirectoryHandle`).
#[derive(Clone)]
pub struct Folder {
    name: String,
    #[cfg(feature = "hydrate")]
    handle: wasm_bindgen::JsValue,
}

impl Folder {
    /// The folder's own name (what the browser shows; not a full path).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for Folder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "Folder({})", self.name)
    }
}

/// A folder read in full: the files to deploy, and the folder and snapshot to [`watch`] from
/// once they are in the guest.
#[derive(Debug)]
pub struct FolderRead {
    pub material: SourceMaterial,
    pub folder: Folder,
    pub snapshot: FolderSnapshot,
}

/// Ends a [`watch`] when stopped or dropped.
pub struct WatchHandle {
    #[cfg(feature = "hydrate")]
    state: std::rc::Rc<browser::WatchState>,
}

impl WatchHandle {
    /// Stops watching (the folder is compared no more; a report under way is dropped).
    pub fn stop(&self) {
        #[cfg(feature = "hydrate")]
        self.state.stopped.set(true);
    }

    /// Whether a `FileSystemObserver` wakes the watch (false while polling, or before the
    /// observer is set up).
    pub fn observed(&self) -> bool {
        #[cfg(feature = "hydrate")]
        {
            self.state.observed.get()
        }
        #[cfg(not(feature = "hydrate"))]
        {
            false
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(feature = "hydrate")]
pub use browser::{
    connected_folder, forget_folder, opfs_delete, opfs_write, pick_folder, read_folder, reconnect,
    stored_folder, use_opfs_folder, watch,
};

#[cfg(not(feature = "hydrate"))]
pub use ssr::{
    connected_folder, forget_folder, opfs_delete, opfs_write, pick_folder, read_folder, reconnect,
    stored_folder, use_opfs_folder, watch,
};

#[cfg(not(feature = "hydrate"))]
mod ssr {
    //! The server build's twins: nothing to pick, every call an error.

    use super::*;
    use crate::client::apps::sources::ReadProgress;
    use crate::model::{ApplicationId, DeployLimits};

    pub async fn pick_folder(app_id: ApplicationId) -> Result<Folder, SyncError> {
        let _ = app_id;
        Err(SyncError::BrowserOnly)
    }

    pub async fn stored_folder(
        app_id: ApplicationId,
    ) -> Result<Option<(Folder, Permission)>, SyncError> {
        let _ = app_id;
        Err(SyncError::BrowserOnly)
    }

    pub async fn reconnect(app_id: ApplicationId) -> Result<Folder, SyncError> {
        let _ = app_id;
        Err(SyncError::BrowserOnly)
    }

    pub async fn connected_folder(app_id: ApplicationId) -> Result<Folder, SyncError> {
        let _ = app_id;
        Err(SyncError::BrowserOnly)
    }

    pub async fn forget_folder(app_id: ApplicationId) -> Result<(), SyncError> {
        let _ = app_id;
        Err(SyncError::BrowserOnly)
    }

    pub async fn read_folder(
        app_id: ApplicationId,
        limits: DeployLimits,
        progress: impl Fn(ReadProgress),
    ) -> Result<FolderRead, SyncError> {
        let _ = (app_id, limits, progress);
        Err(SyncError::BrowserOnly)
    }

    pub fn watch(
        folder: Folder,
        baseline: FolderSnapshot,
        limits: DeployLimits,
        on_change: impl Fn(Result<ChangeSet, SyncError>) + 'static,
    ) -> WatchHandle {
        let _ = (folder, baseline, limits, on_change);
        WatchHandle {}
    }

    pub async fn use_opfs_folder(app_id: ApplicationId, name: &str) -> Result<Folder, SyncError> {
        let _ = (app_id, name);
        Err(SyncError::BrowserOnly)
    }

    pub async fn opfs_write(name: &str, path: &str, bytes: &[u8]) -> Result<(), SyncError> {
        let _ = (name, path, bytes);
        Err(SyncError::BrowserOnly)
    }

    pub async fn opfs_delete(name: &str, path: &str) -> Result<(), SyncError> {
        let _ = (name, path);
        Err(SyncError::BrowserOnly)
    }
}

#[cfg(feature = "hydrate")]
mod browser;

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(entries: &[(&str, u64, i64)]) -> FolderSnapshot {
        FolderSnapshot(
            entries
                .iter()
                .map(|(path, size, modified)| {
                    (
                        path.to_string(),
                        FileStamp {
                            size: *size,
                            modified: *modified,
                        },
                    )
                })
                .collect(),
        )
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn transient_files_are_skipped() {
        for (path, transient) in [
            ("index.html.crswap", true),
            ("css/site.css.crswap", true),
            ("src/.main.rs.swp", true),
            ("notes.txt~", true),
            ("src/.#main.rs", true),
            ("index.html", false),
            ("crswap/index.html", false),
            (".env", false),
            (".github/workflows/ci.yml", false),
        ] {
            assert_eq!(is_transient(path), transient, "{path}");
        }
    }

    #[test]
    fn comparisons() {
        struct Case {
            name: &'static str,
            old: &'static [(&'static str, u64, i64)],
            new: &'static [(&'static str, u64, i64)],
            changed: &'static [&'static str],
            deleted: &'static [&'static str],
            emptied: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "nothing changed",
                old: &[("index.html", 10, 1)],
                new: &[("index.html", 10, 1)],
                changed: &[],
                deleted: &[],
                emptied: &[],
            },
            Case {
                name: "modified time",
                old: &[("index.html", 10, 1)],
                new: &[("index.html", 10, 2)],
                changed: &["index.html"],
                deleted: &[],
                emptied: &[],
            },
            Case {
                name: "size",
                old: &[("a.css", 10, 1)],
                new: &[("a.css", 11, 1)],
                changed: &["a.css"],
                deleted: &[],
                emptied: &[],
            },
            Case {
                name: "added and deleted",
                old: &[("a", 1, 1), ("b", 1, 1)],
                new: &[("b", 1, 1), ("c", 1, 1)],
                changed: &["c"],
                deleted: &["a"],
                emptied: &[],
            },
            Case {
                name: "a folder removed with its subfolder",
                old: &[
                    ("css/a.css", 1, 1),
                    ("css/vendor/b.css", 1, 1),
                    ("index.html", 1, 1),
                ],
                new: &[("index.html", 1, 1)],
                changed: &[],
                deleted: &["css/a.css", "css/vendor/b.css"],
                emptied: &["css"],
            },
            Case {
                name: "a subfolder emptied, its parent still used",
                old: &[("css/a.css", 1, 1), ("css/vendor/b.css", 1, 1)],
                new: &[("css/a.css", 1, 1)],
                changed: &[],
                deleted: &["css/vendor/b.css"],
                emptied: &["css/vendor"],
            },
            Case {
                name: "one file of a folder deleted",
                old: &[("css/a.css", 1, 1), ("css/b.css", 1, 1)],
                new: &[("css/a.css", 1, 1)],
                changed: &[],
                deleted: &["css/b.css"],
                emptied: &[],
            },
            Case {
                name: "a folder replaced by a file of its name",
                old: &[("docs/a.md", 1, 1)],
                new: &[("docs", 5, 2)],
                changed: &["docs"],
                deleted: &["docs/a.md"],
                emptied: &["docs"],
            },
            Case {
                name: "a file replaced by a folder of its name",
                old: &[("docs", 5, 2)],
                new: &[("docs/a.md", 1, 1)],
                changed: &["docs/a.md"],
                deleted: &["docs"],
                emptied: &[],
            },
        ];
        for case in cases {
            let difference = compare(&snapshot(case.old), &snapshot(case.new));
            assert_eq!(difference.changed, strings(case.changed), "{}", case.name);
            assert_eq!(difference.deleted, strings(case.deleted), "{}", case.name);
            assert_eq!(
                difference.emptied_dirs,
                strings(case.emptied),
                "{}",
                case.name
            );
        }
    }

    fn file(path: &str) -> SourceFile {
        SourceFile {
            path: path.to_string(),
            bytes: path.as_bytes().to_vec(),
            executable: false,
        }
    }

    #[test]
    fn plans() {
        struct Case {
            name: &'static str,
            stripped: Option<&'static str>,
            changed: &'static [&'static str],
            deleted: &'static [&'static str],
            emptied: &'static [&'static str],
            /// The files' and deletions' release paths, or the error.
            plan: Result<(&'static [&'static str], &'static [&'static str]), &'static str>,
        }
        let cases = [
            Case {
                name: "a change only",
                stripped: None,
                changed: &["index.html"],
                deleted: &[],
                emptied: &[],
                plan: Ok((&["index.html"], &[])),
            },
            Case {
                name: "a lone change in a subfolder keeps its folder",
                stripped: None,
                changed: &["css/site.css"],
                deleted: &[],
                emptied: &[],
                plan: Ok((&["css/site.css"], &[])),
            },
            Case {
                name: "files under an emptied folder go with it",
                stripped: None,
                changed: &[],
                deleted: &["css/a.css", "css/vendor/b.css", "old.txt"],
                emptied: &["css"],
                plan: Ok((&[], &["css", "old.txt"])),
            },
            Case {
                name: "a file that became a folder is deleted, then written",
                stripped: None,
                changed: &["docs/a.md"],
                deleted: &["docs"],
                emptied: &[],
                plan: Ok((&["docs/a.md"], &["docs"])),
            },
            Case {
                name: "the stripped top folder is stripped from every path",
                stripped: Some("site"),
                changed: &["site/index.html"],
                deleted: &["site/css/a.css", "site/old.txt"],
                emptied: &["site/css"],
                plan: Ok((&["index.html"], &["css", "old.txt"])),
            },
            Case {
                name: "a new file beside the stripped folder",
                stripped: Some("site"),
                changed: &["README.md"],
                deleted: &[],
                emptied: &[],
                plan: Err("'README.md' is outside 'site', the single top-level folder the release was made from: deploy the whole folder again"),
            },
            Case {
                name: "the stripped folder itself removed",
                stripped: Some("site"),
                changed: &[],
                deleted: &["site/index.html"],
                emptied: &["site"],
                plan: Err("'site' is outside 'site', the single top-level folder the release was made from: deploy the whole folder again"),
            },
            Case {
                name: "a folder whose name starts like the stripped one",
                stripped: Some("site"),
                changed: &["site2/index.html"],
                deleted: &[],
                emptied: &[],
                plan: Err("'site2/index.html' is outside 'site', the single top-level folder the release was made from: deploy the whole folder again"),
            },
            Case {
                name: "an escaping deletion",
                stripped: None,
                changed: &[],
                deleted: &["../etc/passwd"],
                emptied: &[],
                plan: Err("'../etc/passwd' is not a path inside the folder (it has a '.' or '..' segment)"),
            },
            Case {
                name: "an absolute change",
                stripped: None,
                changed: &["/etc/passwd"],
                deleted: &[],
                emptied: &[],
                plan: Err("'/etc/passwd' is not a path inside the folder (it is absolute)"),
            },
            Case {
                name: "an empty segment",
                stripped: None,
                changed: &[],
                deleted: &[],
                emptied: &["a//b"],
                plan: Err("'a//b' is not a path inside the folder (it has an empty segment)"),
            },
        ];
        for case in cases {
            let set = ChangeSet {
                changed: case.changed.iter().map(|path| file(path)).collect(),
                deleted: strings(case.deleted),
                emptied_dirs: strings(case.emptied),
            };
            let planned = set.clone().plan(case.stripped);
            match case.plan {
                Ok((files, delete)) => {
                    let plan = planned.unwrap_or_else(|error| panic!("{}: {error}", case.name));
                    let paths: Vec<String> =
                        plan.files.iter().map(|file| file.path.clone()).collect();
                    assert_eq!(paths, strings(files), "{}", case.name);
                    assert_eq!(plan.delete, strings(delete), "{}", case.name);
                    for (planned, original) in plan.files.iter().zip(&set.changed) {
                        assert_eq!(planned.bytes, original.bytes, "{}", case.name);
                    }
                }
                Err(message) => {
                    assert_eq!(
                        planned.map(|_| ()).unwrap_err().to_string(),
                        message,
                        "{}",
                        case.name
                    );
                }
            }
        }
    }

    #[test]
    fn permissions() {
        let cases = [
            ("granted", Permission::Granted),
            ("prompt", Permission::Prompt),
            ("denied", Permission::Denied),
            ("", Permission::Denied),
        ];
        for (text, expected) in cases {
            assert_eq!(Permission::parse(text), expected, "{text}");
        }
    }
}
