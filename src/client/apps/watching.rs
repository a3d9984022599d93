//! Local sync with watch (browser build): after a local-sync deploy with `watchEnabled`, the
//! picked folder is watched (`local_sync::watch`) and each change set goes into that
//! release in place, one at a time, as one archive and one EXEC (`deploy::apply_sync`).
//! An app whose build is enabled is deployed again instead, since its output must be
//! rebuilt. A new deploy, a roll back or deleting the app ends the watch; so does a reload
//! (the folder needs a click to be read again): deploy again to resume.

use futures::channel::mpsc;
use futures::StreamExt;
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use super::deploy;
use super::local_sync::{self, ChangeSet, Folder, FolderSnapshot, SyncError};
use super::{AppManager, DeployInput, SyncStatus};
use crate::model::{ApplicationId, WebVMState};

/// What a completed local-sync deploy hands to its watch.
pub(super) struct WatchStart {
    pub folder: Folder,
    /// The folder as deployed.
    pub snapshot: FolderSnapshot,
    /// The single top-level folder the deploy stripped (changes lose it too).
    pub stripped_folder: Option<String>,
}

impl AppManager {
    /// Watches `start.folder` and keeps the release `release` of `id` in step with it.
    pub(super) fn start_watch(&self, id: ApplicationId, release: Uuid, start: WatchStart) {
        self.stop_watch(id);
        let manager = *self;
        let limits = self.settings().deploy_limits;
        let (sender, mut changes) = mpsc::unbounded::<Result<ChangeSet, SyncError>>();
        let folder = start.folder.name().to_string();
        let handle = local_sync::watch(start.folder, start.snapshot, limits, move |change| {
            let _ = sender.unbounded_send(change);
        });
        self.watches.update_value(|watches| {
            watches.insert(id, handle);
        });
        self.sync.update(|states| {
            states.insert(id, SyncStatus::watching(folder, release));
        });
        let stripped = start.stripped_folder;
        spawn_local(async move {
            // Ends when the watch does (its sender is dropped with it).
            while let Some(change) = changes.next().await {
                if !manager.watching(id, release) {
                    break;
                }
                let outcome = match change {
                    Ok(set) => {
                        manager
                            .apply_change(id, release, set, stripped.as_deref())
                            .await
                    }
                    Err(error) => Err(error.to_string()),
                };
                let Some(outcome) = outcome.transpose() else {
                    // Deployed again instead: that deploy watches on.
                    break;
                };
                if let Ok(line) = &outcome {
                    manager.log_line(id, release, format!("sync: {line}"));
                }
                manager.sync.try_update(|states| {
                    if let Some(state) = states.get_mut(&id).filter(|s| s.release == release) {
                        state.record(outcome);
                    }
                });
            }
        });
    }

    /// Ends the watch of `id`'s folder, if any.
    pub(super) fn stop_watch(&self, id: ApplicationId) {
        self.watches.update_value(|watches| {
            if let Some(handle) = watches.remove(&id) {
                handle.stop();
            }
        });
        self.sync.try_update(|states| states.remove(&id));
    }

    fn watching(&self, id: ApplicationId, release: Uuid) -> bool {
        self.sync
            .with_untracked(|states| states.get(&id).is_some_and(|s| s.release == release))
    }

    /// Applies one change set: what it did (`Ok(None)` when the app was deployed again
    /// instead), or why it could not.
    async fn apply_change(
        &self,
        id: ApplicationId,
        release: Uuid,
        set: ChangeSet,
        stripped: Option<&str>,
    ) -> Result<Option<String>, String> {
        let app = self
            .book
            .with_untracked(|book| book.applications.get(&id).cloned())
            .ok_or_else(|| "the application was deleted".to_string())?;
        if self.vm.state() != WebVMState::Ready {
            return Err(
                "the VM is not running: the change is applied when you deploy again".into(),
            );
        }
        if app
            .deployment
            .build_config
            .as_ref()
            .is_some_and(|build| build.enabled)
        {
            // Its output comes from the build: a full deploy rebuilds it (and watches on).
            let manager = *self;
            spawn_local(async move {
                if let Err(error) = manager.deploy(id, DeployInput::Saved).await {
                    manager.notice.try_set(Some(format!(
                        "'{}' changed, but deploying it again failed: {error}",
                        app.name
                    )));
                }
            });
            return Ok(None);
        }
        let plan = set.plan(stripped).map_err(|error| error.to_string())?;
        let names: Vec<String> = plan
            .files
            .iter()
            .map(|file| file.path.clone())
            .chain(plan.delete.iter().map(|path| format!("-{path}")))
            .take(5)
            .collect();
        let limits = self.settings().deploy_limits;
        let applied = deploy::apply_sync(self.vm, &app, release, plan, &limits)
            .await
            .map_err(|error| error.to_string())?;
        Ok(Some(format!(
            "{} written ({} bytes), {} deleted: {}",
            applied.written,
            applied.bytes,
            applied.deleted,
            names.join(", ")
        )))
    }
}
