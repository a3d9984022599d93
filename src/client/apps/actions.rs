//! What the page does with its applications (browser build): start-up (record, workspace,
//! catalog, interrupted deployments), save, duplicate, delete, deploy and roll back, and
//! the server mirror's writes.

use chrono::Utc;
use leptos::prelude::*;
use leptos::task::spawn_local;
use uuid::Uuid;

use super::bundle::Bundle;
use super::deploy::{self, DeployReporter};
use super::local_sync::{Folder, FolderSnapshot};
use super::watching::WatchStart;
use super::{AppManager, AppsError, DeployInput};
use crate::client::vm::bridge;
use crate::domain::app_registry::{Interrupted, RegistryError, ReleaseFacts};
use crate::domain::compat::check_compatibility;
use crate::domain::mirror_queue::MirrorWrite;
use crate::domain::ports::{allocate_additional, allocate_port, ports_in_use};
use crate::domain::validation::unique_name;
use crate::model::{
    AppName, Application, ApplicationId, ApplicationStatus, DeploymentOperation, DeploymentSource,
    DeploymentStatus, RuntimeCompatibility, WebVMState,
};

/// A local-sync folder as read for a deploy: watched from that snapshot once it is live.
type WatchedFolder = (Folder, FolderSnapshot);

impl From<RegistryError> for AppsError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::UnknownApplication(id) => AppsError::NotFound(id),
            RegistryError::DeploymentRunning { .. } => AppsError::Busy(error.to_string()),
            other => AppsError::Invalid(vec![other.to_string()]),
        }
    }
}

impl AppManager {
    /// Reads the record, fails deployments a reload interrupted (their partial releases are
    /// removed once the VM is ready), opens the workspace on the server, loads the catalog
    /// and keeps every application's runtime status up to date.
    pub(super) fn start(&self) {
        let manager = *self;
        // The installed runtimes decide each app's runtime status: read their record too.
        self.runtimes.start();
        self.supervise();
        self.serve_bridge();
        self.run_mirror();
        spawn_local(async move {
            if let Some(mut book) = manager.load_record().await {
                let interrupted = book.recover_interrupted(Utc::now());
                manager.book.try_set(book);
                manager.writable.try_set(true);
                if !interrupted.is_empty() {
                    let names: Vec<String> =
                        interrupted.iter().map(|found| found.name.clone()).collect();
                    manager.notice.try_set(Some(format!(
                        "A deployment of {} was interrupted when the page closed; the previous release was kept and the partial one is removed once the VM is ready.",
                        names.join(", ")
                    )));
                    if let Err(error) = manager.flush().await {
                        leptos::logging::warn!(
                            "webvm: saving the recovered record failed: {error}"
                        );
                    }
                    manager.clean_when_ready(interrupted);
                }
            }
            manager.loaded.try_set(true);
        });
        let server = self.server.get_value();
        let opened = server.open_workspace();
        spawn_local(async move {
            if let Err(error) = opened.await {
                leptos::logging::warn!("webvm: opening the workspace failed: {error}");
            }
        });
        let catalog = server.catalog();
        spawn_local(async move {
            match catalog.await {
                Ok(catalog) => {
                    manager.catalog.try_set(Some(catalog));
                }
                Err(error) => {
                    leptos::logging::warn!("webvm: the runtime catalog could not load: {error}")
                }
            }
        });
        // Runtime status follows what is installed (once both the record and the catalog are in).
        Effect::new(move |_| {
            let ready = manager.loaded.get() && manager.catalog.with(Option::is_some);
            let packages = manager.packages.get();
            if !ready {
                return;
            }
            let now = Utc::now();
            let stale = manager.book.with_untracked(|book| {
                let mut probe = book.clone();
                probe.apply_compatibility(|app| {
                    check_compatibility(&app.runtime, packages.iter(), now)
                })
            });
            if stale {
                spawn_local(async move {
                    let packages = manager.packages.get_untracked();
                    let result = manager
                        .change(|book| {
                            book.apply_compatibility(|app| {
                                check_compatibility(&app.runtime, packages.iter(), Utc::now())
                            });
                            Ok(())
                        })
                        .await;
                    if let Err(error) = result {
                        leptos::logging::warn!("webvm: recording runtime status failed: {error}");
                    }
                });
            }
        });
    }

    /// Removes the partial releases of interrupted deployments once the VM is ready.
    fn clean_when_ready(&self, interrupted: Vec<Interrupted>) {
        let manager = *self;
        let pending = StoredValue::new(Some(interrupted));
        Effect::new(move |_| {
            if manager.vm.live_state.get() != WebVMState::Ready {
                return;
            }
            let Some(list) = pending.try_update_value(Option::take).flatten() else {
                return;
            };
            spawn_local(async move {
                for found in list {
                    let Some(app) = manager
                        .book
                        .with_untracked(|book| book.applications.get(&found.application).cloned())
                    else {
                        continue;
                    };
                    let current = manager
                        .book
                        .with_untracked(|book| book.current_release(app.id).cloned());
                    if let Err(error) = deploy::clean_interrupted(
                        manager.vm,
                        &app,
                        found.deployment,
                        current.as_ref(),
                    )
                    .await
                    {
                        manager.notice.try_set(Some(format!(
                            "The partial release of '{}' could not be removed from the VM: {error}",
                            found.name
                        )));
                    }
                }
            });
        });
    }

    /// The runtime compatibility of `runtime` now.
    fn compatibility(&self, app: &Application) -> RuntimeCompatibility {
        self.packages.with_untracked(|packages| {
            check_compatibility(&app.runtime, packages.iter(), Utc::now())
        })
    }

    /// Creates or updates (renames included) an application: validated by the domain,
    /// written to IndexedDB, then mirrored (a failed mirror write shows in
    /// [`AppManager::mirror`]; the record stays safe in this browser).
    pub async fn save(&self, mut draft: Application) -> Result<Application, AppsError> {
        let checks = self.check(&draft);
        if !checks.valid() {
            return Err(AppsError::Invalid(checks.errors()));
        }
        draft.runtime_status = self.compatibility(&draft);
        let packages = self.packages.get_untracked();
        let id = draft.id;
        let previous = self
            .book
            .with_untracked(|book| book.applications.get(&id).cloned());
        let saved = self
            .change(move |book| {
                if book.active_deployment(draft.id).is_some_and(|_| {
                    book.applications
                        .get(&draft.id)
                        .is_some_and(|old| old.name != draft.name)
                }) {
                    return Err(AppsError::Busy(format!(
                        "'{}' is being deployed; rename it once the deployment has ended",
                        draft.name
                    )));
                }
                book.save(draft);
                book.apply_compatibility(|app| {
                    check_compatibility(&app.runtime, packages.iter(), Utc::now())
                });
                book.applications
                    .get(&id)
                    .cloned()
                    .ok_or(AppsError::NotFound(id))
            })
            .await;
        match saved {
            Ok(saved) => {
                self.mirror_save(saved.clone());
                Ok(saved)
            }
            Err(error @ AppsError::Storage(_)) => {
                // Not stored: the page must not show it as saved either.
                self.book.try_update(|book| match previous {
                    Some(previous) => {
                        book.applications.insert(id, previous);
                    }
                    None => {
                        book.remove(id);
                    }
                });
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Saves a copy under a new unique name and a free port: a draft, not deployed.
    pub async fn duplicate(&self, id: ApplicationId) -> Result<Application, AppsError> {
        let settings = self.settings();
        let copy = self
            .book
            .with_untracked(|book| -> Result<Application, AppsError> {
                let original = book.applications.get(&id).ok_or(AppsError::NotFound(id))?;
                let taken = |candidate: &str| book.by_name(candidate).is_some();
                let base: String = original.name.as_str().chars().take(45).collect();
                let name = AppName::parse(&unique_name(&format!("{base}-copy"), taken))
                    .map_err(|error| AppsError::Invalid(vec![error.to_string()]))?;
                let mut copy = Application::new(
                    Uuid::new_v4(),
                    name.clone(),
                    original.deployment.clone(),
                    original.execution.clone(),
                    Utc::now(),
                );
                copy.description = original.description.clone();
                copy.runtime = original.runtime.clone();
                copy.deployment.deployment_path =
                    crate::model::DeploymentConfig::default_path(&name);
                copy.execution.working_directory = original.execution.working_directory.replace(
                    &original.deployment.deployment_path,
                    &copy.deployment.deployment_path,
                );
                let in_use = ports_in_use(book.applications.values());
                let invalid = |error: crate::domain::ports::PortError| {
                    AppsError::Invalid(vec![error.to_string()])
                };
                if copy.execution.port.is_some() {
                    copy.execution.port =
                        Some(allocate_port(settings.port_range, &in_use).map_err(invalid)?);
                }
                // As many additional ports as the original has, each newly allocated.
                let count = original
                    .execution
                    .additional_ports
                    .as_ref()
                    .map_or(0, Vec::len);
                let own: Vec<_> = copy.execution.port.into_iter().collect();
                let additional = allocate_additional(settings.port_range, &in_use, &own, count)
                    .map_err(invalid)?;
                copy.execution.additional_ports = (!additional.is_empty()).then_some(additional);
                Ok(copy)
            })?;
        self.save(copy).await
    }

    /// Deletes the application: its files in the guest (the VM must be running when it was
    /// ever deployed), then its record, then its mirror.
    pub async fn delete(&self, id: ApplicationId) -> Result<(), AppsError> {
        let (app, deployed) = self.book.with_untracked(|book| {
            (
                book.applications.get(&id).cloned(),
                !book.history(id).is_empty(),
            )
        });
        let app = app.ok_or(AppsError::NotFound(id))?;
        if self
            .book
            .with_untracked(|book| book.active_deployment(id).is_some())
        {
            return Err(AppsError::Busy(format!(
                "'{}' is being deployed; delete it once the deployment has ended",
                app.name
            )));
        }
        self.stop_watch(id);
        // Its process goes first (a pending restart too), as `docker rm -f` does.
        if matches!(
            app.status,
            ApplicationStatus::Starting | ApplicationStatus::Running | ApplicationStatus::Error
        ) {
            self.stop_app(id).await?;
        }
        if deployed {
            if self.vm.state() != WebVMState::Ready {
                return Err(AppsError::Deploy(format!(
                    "start the VM first: '{}' has files in it that deleting removes",
                    app.name
                )));
            }
            deploy::remove_application_files(self.vm, &app)
                .await
                .map_err(|error| AppsError::Deploy(error.to_string()))?;
            self.save_checkpoint().await;
        }
        self.change(|book| {
            book.remove(id);
            Ok(())
        })
        .await?;
        if app.deployment.source_type == DeploymentSource::LocalSync {
            // The stored folder handle goes with the app (nothing to forget is fine).
            let _ = super::local_sync::forget_folder(id).await;
        }
        self.mirror_delete(id, app.name.to_string());
        Ok(())
    }

    /// Deploys the application from `input`; returns once the deployment has ended. Its
    /// progress and log show in [`AppManager::deployments`] meanwhile.
    pub async fn deploy(
        &self,
        id: ApplicationId,
        input: DeployInput,
    ) -> Result<DeploymentOperation, AppsError> {
        let app = self
            .book
            .with_untracked(|book| book.applications.get(&id).cloned())
            .ok_or(AppsError::NotFound(id))?;
        if self.vm.state() != WebVMState::Ready {
            return Err(AppsError::Deploy(
                "the VM is not running: start it, then deploy".to_owned(),
            ));
        }
        let mut operation = DeploymentOperation::new(Uuid::new_v4(), id, Utc::now());
        operation.source_type = Some(match input {
            DeployInput::Upload(_) => DeploymentSource::Upload,
            DeployInput::Saved => app.deployment.source_type,
        });
        let deployment = operation.id;
        self.change(move |book| Ok(book.begin_deployment(operation)?))
            .await?;
        // A new release replaces what a watched folder was syncing into.
        self.stop_watch(id);
        let reporter = Reporter {
            manager: *self,
            application: id,
            deployment,
        };
        let outcome = self
            .run_deployment(&app, deployment, input, &reporter)
            .await;
        let now = Utc::now();
        let compatibility = self.compatibility(&app);
        let result = match outcome {
            Ok((facts, watch)) => {
                let completed = self
                    .change(move |book| {
                        Ok(book.complete_deployment(id, deployment, facts, compatibility, now)?)
                    })
                    .await;
                if let (Ok(_), Some(watch)) = (&completed, watch) {
                    reporter.log(&format!(
                        "watching the folder '{}': its changes go into this release",
                        watch.folder.name()
                    ));
                    self.start_watch(id, deployment, watch);
                }
                completed
            }
            Err(error) => {
                let reason = error.to_string();
                self.change(move |book| Ok(book.fail_deployment(id, deployment, &reason, now)?))
                    .await
            }
        };
        result?;
        self.save_checkpoint().await;
        if let Some(saved) = self
            .book
            .with_untracked(|book| book.applications.get(&id).cloned())
        {
            self.mirror_save(saved);
        }
        self.book
            .with_untracked(|book| {
                book.history(id)
                    .iter()
                    .find(|op| op.id == deployment)
                    .cloned()
            })
            .ok_or(AppsError::NotFound(id))
    }

    /// The deployment's steps: the source's files, the bundle (every archive rule checked
    /// before the VM is touched), then the release in the guest.
    async fn run_deployment(
        &self,
        app: &Application,
        deployment: Uuid,
        input: DeployInput,
        reporter: &Reporter,
    ) -> Result<(ReleaseFacts, Option<WatchStart>), AppsError> {
        let fail = |error: String| AppsError::Deploy(error);
        reporter.step(DeploymentStatus::Preparing, 2, "collecting the files");
        let (material, watched) = match input {
            DeployInput::Upload(material) => (material, None),
            DeployInput::Saved => self.fetch_source(app, reporter).await?,
        };
        let limits = self.settings().deploy_limits;
        // Packing a large archive takes a while: the page gets a turn every few MiB.
        let bundle = Bundle::pack(material, &limits, |packed| {
            let percent = (packed.done_bytes * 4)
                .checked_div(packed.total_bytes)
                .map_or(25, |share| 25 + share as u8);
            reporter.step(DeploymentStatus::Preparing, percent, "checking and packing");
            bridge::sleep(0)
        })
        .await
        .map_err(|error| fail(error.to_string()))?;
        reporter.log(&format!(
            "{} files, {} bytes, packed into {} bytes",
            bundle.file_count,
            bundle.total_bytes,
            bundle.tar_gz.len()
        ));
        let history = self
            .book
            .with_untracked(|book| book.history(app.id).to_vec());
        let current = self
            .book
            .with_untracked(|book| book.current_releases.get(&app.id).copied());
        let retention = deploy::Retention {
            history: &history,
            current,
            releases_kept: self.settings().releases_kept,
        };
        let watch = watched.map(|(folder, snapshot)| WatchStart {
            folder,
            snapshot,
            stripped_folder: bundle.stripped_folder.clone(),
        });
        let release = deploy::run(self.vm, app, deployment, bundle, retention, reporter)
            .await
            .map_err(|error| fail(error.to_string()))?;
        let facts = ReleaseFacts {
            served_directory: release.served_directory,
            file_count: release.file_count,
            total_bytes: release.total_bytes,
        };
        Ok((facts, watch))
    }

    /// The files of the application's saved source (url, github, local-sync), and the
    /// folder to watch once they are deployed (local-sync with `watchEnabled`).
    async fn fetch_source(
        &self,
        app: &Application,
        reporter: &Reporter,
    ) -> Result<(super::bundle::SourceMaterial, Option<WatchedFolder>), AppsError> {
        let source = &app.deployment.source_config;
        let progress = |received: u64, total: Option<u64>| {
            let percent = total
                .filter(|total| *total > 0)
                .map_or(5, |total| 2 + (received.min(total) * 23 / total) as u8);
            reporter.step(DeploymentStatus::Preparing, percent, "downloading");
        };
        let fail = |error: String| AppsError::Deploy(error);
        match app.deployment.source_type {
            DeploymentSource::Upload => Err(AppsError::Invalid(vec![
                "an upload deploy needs files: pick or drop them".to_owned(),
            ])),
            DeploymentSource::Url => {
                let url = source.url.clone().unwrap_or_default();
                reporter.log(&format!("fetching {url} through the server"));
                let material = super::sources::fetch_url(&url, progress)
                    .await
                    .map_err(|error| fail(error.to_string()))?;
                Ok((material, None))
            }
            DeploymentSource::Github => {
                let repository = source.repository.clone().unwrap_or_default();
                reporter.log(&format!(
                    "fetching {repository} from GitHub through the server"
                ));
                let (material, commit) = super::sources::fetch_github(
                    &repository,
                    source.branch.as_deref(),
                    source.commit.as_deref(),
                    source.token.as_ref(),
                    progress,
                )
                .await
                .map_err(|error| fail(error.to_string()))?;
                reporter.log(&format!("commit {commit}"));
                let (id, deployment) = (reporter.application, reporter.deployment);
                self.book.try_update_untracked(|book| {
                    if let Some(op) = book
                        .deployments
                        .get_mut(&id)
                        .and_then(|history| history.iter_mut().find(|op| op.id == deployment))
                    {
                        op.commit = Some(commit);
                    }
                });
                Ok((material, None))
            }
            DeploymentSource::LocalSync => {
                let limits = self.settings().deploy_limits;
                let read = super::local_sync::read_folder(app.id, limits, |read| {
                    let percent = (read.bytes_done * 23)
                        .checked_div(read.bytes_total)
                        .map_or(5, |share| 2 + share as u8);
                    reporter.step(DeploymentStatus::Preparing, percent, "reading the folder");
                })
                .await
                .map_err(|error| fail(error.to_string()))?;
                let watched =
                    (source.watch_enabled == Some(true)).then_some((read.folder, read.snapshot));
                Ok((read.material, watched))
            }
        }
    }

    /// Switches `current` back to the previous kept release, as a deployment of its own in
    /// the history.
    pub async fn roll_back(&self, id: ApplicationId) -> Result<DeploymentOperation, AppsError> {
        let settings = self.settings();
        let (app, target) = self.book.with_untracked(|book| {
            let app = book.applications.get(&id).cloned();
            let current = book.current_releases.get(&id).copied();
            let target = crate::domain::release::rollback_target(
                book.history(id),
                current,
                settings.releases_kept,
            )
            .map(|op| {
                (
                    op.id,
                    op.served_directory.clone().unwrap_or_default(),
                    op.file_count,
                    op.total_bytes,
                )
            });
            (app, target)
        });
        let app = app.ok_or(AppsError::NotFound(id))?;
        let (target, served_directory, file_count, total_bytes) =
            target.map_err(|error| AppsError::Invalid(vec![error.to_string()]))?;
        if self.vm.state() != WebVMState::Ready {
            return Err(AppsError::Deploy(
                "the VM is not running: start it, then roll back".to_owned(),
            ));
        }
        let mut operation = DeploymentOperation::new(Uuid::new_v4(), id, Utc::now());
        operation.rollback_to = Some(target);
        operation.source_type = Some(app.deployment.source_type);
        let deployment = operation.id;
        self.change(move |book| Ok(book.begin_deployment(operation)?))
            .await?;
        // The watched folder synced into the release being left.
        self.stop_watch(id);
        let reporter = Reporter {
            manager: *self,
            application: id,
            deployment,
        };
        reporter.step(DeploymentStatus::Deploying, 50, "switching current");
        reporter.log(&format!("rolling back to release {target}"));
        let switched = deploy::switch_to(self.vm, &app, target, &served_directory).await;
        let now = Utc::now();
        let compatibility = self.compatibility(&app);
        match switched {
            Ok(()) => {
                let facts = ReleaseFacts {
                    served_directory,
                    file_count: file_count.unwrap_or_default(),
                    total_bytes: total_bytes.unwrap_or_default(),
                };
                self.change(move |book| {
                    Ok(book.complete_deployment(id, deployment, facts, compatibility, now)?)
                })
                .await?;
            }
            Err(error) => {
                let reason = error.to_string();
                self.change(move |book| Ok(book.fail_deployment(id, deployment, &reason, now)?))
                    .await?;
            }
        }
        self.save_checkpoint().await;
        self.book
            .with_untracked(|book| {
                book.history(id)
                    .iter()
                    .find(|op| op.id == deployment)
                    .cloned()
            })
            .ok_or(AppsError::NotFound(id))
    }

    /// Saves the VM so a reload keeps what changed in the guest; a failure is shown.
    async fn save_checkpoint(&self) {
        if let Err(error) = self.vm.checkpoint().await {
            self.notice.try_set(Some(format!(
                "The VM could not be saved after the change ({error}); a reload may lose it."
            )));
        }
    }

    /// Queues the application's deletion for the server mirror.
    pub(super) fn mirror_delete(&self, id: ApplicationId, name: String) {
        self.enqueue_mirror([(id, MirrorWrite::Delete { name })]);
    }

    /// Queues the application for the server mirror (written after IndexedDB, retried until
    /// the server has it; see `mirror`).
    pub(super) fn mirror_save(&self, app: Application) {
        self.enqueue_mirror([(app.id, save_write(app))]);
    }
}

/// The mirror's write of `app`.
pub(super) fn save_write(app: Application) -> MirrorWrite {
    MirrorWrite::Save {
        application: Box::new(app),
    }
}

/// Carries a deployment's progress into the record: steps are committed (so a reload sees
/// them), log lines go in without waking the record (only `log_written`).
struct Reporter {
    manager: AppManager,
    application: ApplicationId,
    deployment: Uuid,
}

impl DeployReporter for Reporter {
    fn step(&self, status: DeploymentStatus, progress: u8, detail: &str) {
        let (manager, id, deployment) = (self.manager, self.application, self.deployment);
        let moved = manager.book.try_update(|book| {
            let changed = book
                .history(id)
                .iter()
                .find(|op| op.id == deployment)
                .is_some_and(|op| op.status != status);
            book.advance(id, deployment, status, progress)
                .map(|_| changed)
        });
        if let Some(Ok(true)) = moved {
            manager.log_line(id, deployment, format!("{status}: {detail}"));
            spawn_local(async move {
                if let Err(error) = manager.flush().await {
                    leptos::logging::warn!("webvm: saving deployment progress failed: {error}");
                }
            });
        }
    }

    fn log(&self, line: &str) {
        self.manager
            .log_line(self.application, self.deployment, line.to_owned());
    }
}

impl AppManager {
    /// Appends a line to a deployment's log without waking the record.
    pub(super) fn log_line(&self, application: ApplicationId, deployment: Uuid, line: String) {
        self.book
            .try_update_untracked(|book| book.log(application, deployment, line));
        self.log_written.notify();
    }
}
