//! The browser side: `js/app_sources.js`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures::StreamExt;
use js_sys::Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::*;
use crate::client::apps::sources::browser::{
    field, file_bytes, listing_within, number_field, text_field, Turns,
};
use crate::client::apps::sources::check_listing;
use crate::client::vm::bridge::{js_error, js_message, sleep};

#[wasm_bindgen(module = "/js/app_sources.js")]
extern "C" {
    #[wasm_bindgen(js_name = directoryPickerSupported)]
    fn directory_picker_supported_js() -> bool;

    #[wasm_bindgen(js_name = pickDirectory, catch)]
    async fn pick_directory(app_id: &str) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = storedDirectory, catch)]
    async fn stored_directory(app_id: &str) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = forgetDirectory, catch)]
    async fn forget_directory(app_id: &str) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = directoryName)]
    fn directory_name(handle: &JsValue) -> String;

    #[wasm_bindgen(js_name = directoryPermission, catch)]
    async fn directory_permission(handle: &JsValue, request: bool) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = scanDirectory, catch)]
    async fn scan_directory(
        handle: &JsValue,
        max_files: u32,
        max_bytes: f64,
    ) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = observeDirectory, catch)]
    async fn observe_directory(
        handle: &JsValue,
        on_change: &Closure<dyn FnMut()>,
    ) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = unobserve)]
    fn unobserve(observer: &JsValue);

    #[wasm_bindgen(js_name = useOpfsFolder, catch)]
    async fn use_opfs_folder_js(app_id: &str, name: &str) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = opfsWrite, catch)]
    async fn opfs_write_js(
        name: &str,
        path: &str,
        bytes: js_sys::Uint8Array,
    ) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = opfsDelete, catch)]
    async fn opfs_delete_js(name: &str, path: &str) -> Result<JsValue, JsValue>;
}

pub(super) fn directory_picker_supported() -> bool {
    directory_picker_supported_js()
}

fn browser_error(error: JsValue) -> SyncError {
    SyncError::Browser(js_message(&error))
}

fn folder(handle: JsValue) -> Folder {
    Folder {
        name: directory_name(&handle),
        handle,
    }
}

/// Asks the user for a folder (read only; call from a click) and keeps it for the app.
pub async fn pick_folder(app_id: ApplicationId) -> Result<Folder, SyncError> {
    if !directory_picker_supported() {
        return Err(SyncError::Unsupported);
    }
    match pick_directory(&app_id.to_string()).await {
        Ok(handle) => Ok(folder(handle)),
        Err(error) => match js_error(&error) {
            (name, _) if name == "AbortError" => Err(SyncError::Cancelled),
            (_, message) => Err(SyncError::Browser(message)),
        },
    }
}

/// The folder kept for the app, if any, and whether it may be read now.
pub async fn stored_folder(
    app_id: ApplicationId,
) -> Result<Option<(Folder, Permission)>, SyncError> {
    let handle = stored_directory(&app_id.to_string())
        .await
        .map_err(browser_error)?;
    if handle.is_null() || handle.is_undefined() {
        return Ok(None);
    }
    let permission = directory_permission(&handle, false)
        .await
        .map_err(browser_error)?;
    Ok(Some((
        folder(handle),
        Permission::parse(&permission.as_string().unwrap_or_default()),
    )))
}

/// Asks again for permission to read the app's folder (after a reload; call from a
/// click).
pub async fn reconnect(app_id: ApplicationId) -> Result<Folder, SyncError> {
    let Some((folder, permission)) = stored_folder(app_id).await? else {
        return Err(SyncError::NoFolder);
    };
    if permission == Permission::Granted {
        return Ok(folder);
    }
    let asked = directory_permission(&folder.handle, true)
        .await
        .map_err(browser_error)?;
    match Permission::parse(&asked.as_string().unwrap_or_default()) {
        Permission::Granted => Ok(folder),
        Permission::Prompt => Err(SyncError::PermissionNeeded {
            name: folder.name.clone(),
        }),
        Permission::Denied => Err(SyncError::Denied {
            name: folder.name.clone(),
        }),
    }
}

/// The app's folder when it may be read now, else why not.
pub async fn connected_folder(app_id: ApplicationId) -> Result<Folder, SyncError> {
    match stored_folder(app_id).await? {
        None => Err(SyncError::NoFolder),
        Some((folder, Permission::Granted)) => Ok(folder),
        Some((folder, Permission::Prompt)) => Err(SyncError::PermissionNeeded {
            name: folder.name.clone(),
        }),
        Some((folder, Permission::Denied)) => Err(SyncError::Denied {
            name: folder.name.clone(),
        }),
    }
}

/// Forgets the app's folder (when the app is deleted or its source changes).
pub async fn forget_folder(app_id: ApplicationId) -> Result<(), SyncError> {
    forget_directory(&app_id.to_string())
        .await
        .map(drop)
        .map_err(browser_error)
}

/// A scan: the snapshot and each file's `File` (to read what changed).
struct Scan {
    snapshot: FolderSnapshot,
    files: BTreeMap<String, JsValue>,
}

async fn scan(folder: &Folder, limits: &DeployLimits) -> Result<Scan, SyncError> {
    let listing = scan_directory(
        &folder.handle,
        limits.max_files,
        limits.max_total_bytes as f64,
    )
    .await
    .map_err(|error| match js_error(&error) {
        (name, _) if name == "NotAllowedError" || name == "SecurityError" => {
            SyncError::PermissionNeeded {
                name: folder.name.clone(),
            }
        }
        (name, message) if name == "NotFoundError" => SyncError::Browser(format!(
            "the folder '{}' or something in it is gone ({message})",
            folder.name
        )),
        (_, message) => SyncError::Browser(message),
    })?;
    listing_within(&listing, limits)?;
    let listed: Array = field(&listing, "files").unchecked_into();
    let mut scan = Scan {
        snapshot: FolderSnapshot::default(),
        files: BTreeMap::new(),
    };
    for entry in listed.iter() {
        let path = text_field(&entry, "path");
        if is_transient(&path) {
            continue;
        }
        let stamp = FileStamp {
            size: number_field(&entry, "size").max(0.0) as u64,
            modified: number_field(&entry, "modified") as i64,
        };
        scan.snapshot.0.insert(path.clone(), stamp);
        scan.files.insert(path, field(&entry, "file"));
    }
    check_listing(scan.snapshot.0.len(), scan.snapshot.total_bytes(), limits)?;
    Ok(scan)
}

/// Reads the app's whole folder (the initial sync), when it may be read now.
pub async fn read_folder(
    app_id: ApplicationId,
    limits: DeployLimits,
    progress: impl Fn(ReadProgress),
) -> Result<FolderRead, SyncError> {
    let folder = connected_folder(app_id).await?;
    let scan = scan(&folder, &limits).await?;
    let mut state = ReadProgress {
        files_done: 0,
        files_total: scan.files.len(),
        bytes_done: 0,
        bytes_total: scan.snapshot.total_bytes(),
    };
    progress(state);
    let mut turns = Turns::new();
    let mut files = Vec::with_capacity(scan.files.len());
    for (path, file) in &scan.files {
        let bytes = file_bytes(file, path).await?;
        state.files_done += 1;
        state.bytes_done += bytes.len() as u64;
        check_listing(state.files_done, state.bytes_done, &limits)?;
        files.push(SourceFile {
            path: path.clone(),
            bytes,
            executable: false,
        });
        progress(state);
        turns.take().await;
    }
    Ok(FolderRead {
        material: SourceMaterial::Files(files),
        folder,
        snapshot: scan.snapshot,
    })
}

pub(super) struct WatchState {
    pub stopped: Cell<bool>,
    pub observed: Cell<bool>,
}

/// Watches the folder from `baseline` (what the guest has) and calls `on_change` with
/// each change set, or with an error (once, until the folder reads again). Runs until
/// the handle is stopped or dropped.
pub fn watch(
    folder: Folder,
    baseline: FolderSnapshot,
    limits: DeployLimits,
    on_change: impl Fn(Result<ChangeSet, SyncError>) + 'static,
) -> WatchHandle {
    let state = Rc::new(WatchState {
        stopped: Cell::new(false),
        observed: Cell::new(false),
    });
    let task_state = state.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let state = task_state;
        let (wake, mut woken) = futures::channel::mpsc::unbounded::<()>();
        let on_observed = Closure::<dyn FnMut()>::new(move || {
            let _ = wake.unbounded_send(());
        });
        let observer = observe_directory(&folder.handle, &on_observed)
            .await
            .unwrap_or(JsValue::NULL);
        let observed = !observer.is_null() && !observer.is_undefined();
        state.observed.set(observed);
        let mut baseline = baseline;
        let last_error: RefCell<Option<SyncError>> = RefCell::new(None);
        while !state.stopped.get() {
            if observed {
                let timer = std::pin::pin!(sleep(OBSERVED_POLL_MS));
                let _ = futures::future::select(woken.next(), timer).await;
                sleep(SETTLE_MS).await;
                while woken.try_recv().is_ok() {}
            } else {
                sleep(POLL_MS).await;
            }
            if state.stopped.get() {
                break;
            }
            match changes(&folder, &baseline, &limits).await {
                Ok(None) => {
                    last_error.replace(None);
                }
                Ok(Some((set, next))) => {
                    last_error.replace(None);
                    baseline = next;
                    if !state.stopped.get() {
                        on_change(Ok(set));
                    }
                }
                Err(error) => {
                    let repeated = last_error.borrow().as_ref() == Some(&error);
                    if !repeated && !state.stopped.get() {
                        last_error.replace(Some(error.clone()));
                        on_change(Err(error));
                    }
                }
            }
        }
        if observed {
            unobserve(&observer);
        }
        drop(on_observed);
    });
    WatchHandle { state }
}

/// Compares the folder with `baseline`: the change set and the new baseline, or `None`
/// when nothing changed. A changed file that can't be read now (it is being written)
/// keeps its old stamp, so the next comparison picks it up.
async fn changes(
    folder: &Folder,
    baseline: &FolderSnapshot,
    limits: &DeployLimits,
) -> Result<Option<(ChangeSet, FolderSnapshot)>, SyncError> {
    let scan = scan(folder, limits).await?;
    let difference = compare(baseline, &scan.snapshot);
    if difference.is_empty() {
        return Ok(None);
    }
    let mut next = scan.snapshot;
    let mut changed = Vec::with_capacity(difference.changed.len());
    for path in difference.changed {
        let Some(file) = scan.files.get(&path) else {
            continue;
        };
        match file_bytes(file, &path).await {
            Ok(bytes) => changed.push(SourceFile {
                path,
                bytes,
                executable: false,
            }),
            Err(_) => match baseline.0.get(&path) {
                Some(stamp) => {
                    next.0.insert(path, *stamp);
                }
                None => {
                    next.0.remove(&path);
                }
            },
        }
    }
    let set = ChangeSet {
        changed,
        deleted: difference.deleted,
        emptied_dirs: difference.emptied_dirs,
    };
    if set.is_empty() {
        return Ok(None);
    }
    Ok(Some((set, next)))
}

/// Keeps the OPFS folder `name` (created if needed) as the app's picked folder (tests).
pub async fn use_opfs_folder(app_id: ApplicationId, name: &str) -> Result<Folder, SyncError> {
    use_opfs_folder_js(&app_id.to_string(), name)
        .await
        .map(folder)
        .map_err(browser_error)
}

/// Writes a file in the OPFS folder `name` (folders on the way created; tests).
pub async fn opfs_write(name: &str, path: &str, bytes: &[u8]) -> Result<(), SyncError> {
    opfs_write_js(name, path, js_sys::Uint8Array::from(bytes))
        .await
        .map(drop)
        .map_err(browser_error)
}

/// Deletes a file or folder in the OPFS folder `name` (tests).
pub async fn opfs_delete(name: &str, path: &str) -> Result<(), SyncError> {
    opfs_delete_js(name, path)
        .await
        .map(drop)
        .map_err(browser_error)
}
