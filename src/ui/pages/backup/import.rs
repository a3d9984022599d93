//! The Backup page's import: pick a backup file; every problem is listed by place and field,
//! or a preview shows what importing changes (added, replaced, kept, runtimes to install,
//! secrets to enter again); applying writes the record in one step.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos::web_sys::HtmlInputElement;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use super::legacy::{LegacyDone, LegacyFiles};
use crate::client::apps::bundle::SourceMaterial;
use crate::client::apps::sources::{read_picked, Picked};
use crate::client::apps::{
    is_archive, is_legacy_export, AppManager, ArchivePreview, ArchiveProgress, ImportPreview,
    LegacyOutcome, LegacyPreview, MAX_BACKUP_BYTES,
};
use crate::domain::backup::{BackupError, Finding};
use crate::model::{AppName, PackageId};
use crate::ui::components::ProgressBar;
use crate::ui::format::{megabytes, timestamp};

/// Where the import is.
#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Idle,
    Reading,
    /// The file could not be read, or the backup was refused.
    Refused {
        file: String,
        error: BackupError,
    },
    /// Read, checked and planned; waiting for the user.
    Ready(ImportPreview),
    Applying(ImportPreview),
    Applied {
        count: usize,
        runtimes: Vec<PackageId>,
        needing_files: Vec<AppName>,
        sealed_elsewhere: Vec<String>,
    },
    /// Reading the file or applying failed.
    Failed(String),
    /// A backup archive being read and checked.
    Checking(ArchiveProgress),
    /// An archive that passed every check; waiting for the user.
    ArchiveReady(ArchivePreview),
    /// An archive being restored (the page reloads at the end).
    Restoring(ArchivePreview, ArchiveProgress),
    /// A legacy hosting export that passed every check; waiting for the user.
    LegacyReady(LegacyPreview),
    /// Its apps saved; the files of the app named being deployed.
    Migrating(LegacyPreview, String),
    Migrated(LegacyOutcome),
}

impl Stage {
    /// Whether something is under way (the file input and buttons wait).
    fn busy(&self) -> bool {
        matches!(
            self,
            Stage::Reading
                | Stage::Applying(_)
                | Stage::Checking(_)
                | Stage::Restoring(..)
                | Stage::Migrating(..)
        )
    }
}

#[component]
pub fn BackupImport() -> impl IntoView {
    let manager = AppManager::expect();
    let stage = RwSignal::new(Stage::Idle);
    let pick = move |picked: Picked| {
        stage.set(Stage::Reading);
        spawn_local(async move {
            if is_legacy_export(&picked.file_name()) {
                let file = picked.file_name();
                let limits = manager.settings().deploy_limits;
                let next = match read_picked(picked, limits, |_| ()).await {
                    Ok(SourceMaterial::Archive { name, bytes }) => {
                        match manager.preview_legacy(name.clone(), &bytes).await {
                            Ok(preview) => Stage::LegacyReady(preview),
                            Err(error) => Stage::Refused { file: name, error },
                        }
                    }
                    Ok(SourceMaterial::Files(_)) => {
                        Stage::Failed(format!("“{file}” could not be read as one ZIP file"))
                    }
                    Err(error) => Stage::Failed(error.to_string()),
                };
                stage.try_set(next);
                return;
            }
            if is_archive(&picked).await {
                let file = picked.file_name();
                let checked = manager
                    .preview_archive(&picked, |progress| {
                        stage.try_set(Stage::Checking(progress));
                    })
                    .await;
                stage.try_set(match checked {
                    Ok(preview) => Stage::ArchiveReady(preview),
                    Err(error) => Stage::Refused { file, error },
                });
                return;
            }
            let next = match picked.single_text(MAX_BACKUP_BYTES).await {
                Err(error) => Stage::Failed(error.to_string()),
                Ok((file, text)) => match manager.preview_import(file.clone(), &text).await {
                    Ok(preview) => Stage::Ready(preview),
                    Err(error) => Stage::Refused { file, error },
                },
            };
            stage.try_set(next);
        });
    };
    let apply = move |preview: ImportPreview| {
        stage.set(Stage::Applying(preview.clone()));
        spawn_local(async move {
            let next = match manager.apply_import(&preview).await {
                Ok(count) => Stage::Applied {
                    count,
                    runtimes: preview.plan.runtimes_to_install.clone(),
                    needing_files: preview.plan.needing_files.clone(),
                    sealed_elsewhere: preview.sealed_elsewhere.clone(),
                },
                Err(error) => Stage::Failed(format!("Nothing was imported: {error}")),
            };
            stage.try_set(next);
        });
    };
    let migrate = move |preview: LegacyPreview| {
        stage.set(Stage::Migrating(preview.clone(), String::new()));
        spawn_local(async move {
            let shown = preview.clone();
            let outcome = manager
                .apply_legacy(&preview, move |name| {
                    stage.try_set(Stage::Migrating(shown.clone(), name.to_string()));
                })
                .await;
            stage.try_set(match outcome {
                Ok(outcome) => Stage::Migrated(outcome),
                Err(error) => Stage::Failed(format!("Nothing was migrated: {error}")),
            });
        });
    };
    let restore = move |preview: ArchivePreview| {
        let first = ArchiveProgress {
            step: "Starting".into(),
            done: 0,
            total: 1,
        };
        stage.set(Stage::Restoring(preview.clone(), first));
        spawn_local(async move {
            let shown = preview.clone();
            let outcome = manager
                .apply_archive(&preview, move |progress| {
                    stage.try_set(Stage::Restoring(shown.clone(), progress));
                })
                .await;
            if let Err(error) = outcome {
                stage.try_set(Stage::Failed(format!("Nothing was restored: {error}")));
            }
        });
    };
    let writable = manager.writable;
    let ready = move || writable.get() && manager.catalog_loaded();
    // The server's copy of this workspace (what it mirrors), imported like a file: after a
    // device link (`?from=server`), or for a browser whose own data is gone.
    let import_server_copy = move || {
        stage.set(Stage::Reading);
        spawn_local(async move {
            let file = "the server's copy".to_string();
            let next = match crate::api::server_backup().await {
                Err(error) => {
                    Stage::Failed(format!("The server's copy could not be read: {error}"))
                }
                Ok(backup) => match serde_json::to_string(&backup) {
                    Err(error) => Stage::Failed(error.to_string()),
                    Ok(text) => match manager.preview_import(file.clone(), &text).await {
                        Ok(preview) => Stage::Ready(preview),
                        Err(error) => Stage::Refused { file, error },
                    },
                },
            };
            stage.try_set(next);
        });
    };
    let from_server = use_query_map().read_untracked().get("from").as_deref() == Some("server");
    Effect::new(move |started: Option<bool>| {
        if started == Some(true) {
            return true;
        }
        if !from_server || !ready() {
            return false;
        }
        import_server_copy();
        true
    });
    view! {
        <section class="card backup-import" aria-labelledby="backup-import" data-testid="backup-import">
            <h2 id="backup-import">"Import a backup"</h2>
            <p class="muted">
                "A JSON backup from this program or another implementation of the same data model, a backup with the VM (.tar), or a legacy app hosting export (.zip). "
                "Nothing changes until you have seen what it would change."
            </p>
            <div class="field">
                <label for="backup-import-file">"Backup file"</label>
                <input
                    id="backup-import-file"
                    data-testid="backup-import-file"
                    type="file"
                    accept=".json,.tar,.zip,application/json,application/x-tar,application/zip"
                    disabled=move || !ready() || stage.with(Stage::busy)
                    on:change=move |event| pick(Picked::from_input(&event_target::<HtmlInputElement>(&event)))
                />
                <Show when=move || !ready()>
                    <span class="field-hint">"Waiting for this browser's record and the runtime catalog…"</span>
                </Show>
            </div>
            <button
                type="button"
                class="button button--secondary"
                data-testid="backup-import-server"
                disabled=move || !ready() || stage.with(Stage::busy)
                on:click=move |_| import_server_copy()
            >
                "Import the server's copy"
            </button>
            {move || match stage.get() {
                Stage::Idle => ().into_any(),
                Stage::Reading => view! { <p role="status" class="muted">"Reading and checking the backup…"</p> }.into_any(),
                Stage::Refused { file, error } => view! { <Refused file error /> }.into_any(),
                Stage::Failed(message) => view! { <p class="inline-error" role="alert" data-testid="backup-import-failed">{message}</p> }.into_any(),
                Stage::Ready(preview) => {
                    let chosen = preview.clone();
                    view! {
                        <Preview preview />
                        <div class="package-actions">
                            <button type="button" class="button" data-testid="backup-import-apply" on:click=move |_| apply(chosen.clone())>
                                "Import"
                            </button>
                            <button type="button" class="button button--secondary" on:click=move |_| stage.set(Stage::Idle)>
                                "Cancel"
                            </button>
                        </div>
                    }
                    .into_any()
                }
                Stage::Applying(preview) => view! {
                    <Preview preview />
                    <p role="status" class="muted">"Importing…"</p>
                }
                .into_any(),
                Stage::Checking(progress) => view! {
                    <div role="status" data-testid="backup-import-checking">
                        <ProgressBar label="Checking the backup archive" percent=progress.percent() detail=progress.step />
                    </div>
                }
                .into_any(),
                Stage::ArchiveReady(preview) => {
                    let chosen = preview.clone();
                    view! {
                        <ArchiveSummary preview />
                        <div class="package-actions">
                            <button type="button" class="button" data-testid="backup-import-restore" on:click=move |_| restore(chosen.clone())>
                                "Restore this VM"
                            </button>
                            <button type="button" class="button button--secondary" on:click=move |_| stage.set(Stage::Idle)>
                                "Cancel"
                            </button>
                        </div>
                    }
                    .into_any()
                }
                Stage::Restoring(preview, progress) => view! {
                    <ArchiveSummary preview />
                    <div role="status" data-testid="backup-import-restoring">
                        <ProgressBar label="Restoring the VM" percent=progress.percent() detail=progress.step />
                    </div>
                }
                .into_any(),
                Stage::LegacyReady(preview) => {
                    let chosen = preview.clone();
                    view! {
                        <Preview preview=preview.import.clone() with_files=true />
                        <LegacyFiles preview />
                        <div class="package-actions">
                            <button type="button" class="button" data-testid="backup-legacy-migrate" on:click=move |_| migrate(chosen.clone())>
                                "Migrate"
                            </button>
                            <button type="button" class="button button--secondary" on:click=move |_| stage.set(Stage::Idle)>
                                "Cancel"
                            </button>
                        </div>
                    }
                    .into_any()
                }
                Stage::Migrating(preview, app) => view! {
                    <LegacyFiles preview />
                    <p role="status" class="muted" data-testid="backup-legacy-migrating">
                        {if app.is_empty() {
                            "Saving the migrated apps…".to_string()
                        } else {
                            format!("Deploying the files of {app} into the VM…")
                        }}
                    </p>
                }
                .into_any(),
                Stage::Migrated(outcome) => view! { <LegacyDone outcome /> }.into_any(),
                Stage::Applied { count, runtimes, needing_files, sealed_elsewhere } => view! {
                    <Applied count runtimes needing_files sealed_elsewhere />
                }
                .into_any(),
            }}
        </section>
    }
}

/// A refused backup: every problem, each with its place and field.
#[component]
fn Refused(file: String, error: BackupError) -> impl IntoView {
    let body = match error {
        BackupError::Invalid { problems } => view! {
            <p role="alert">{format!("“{file}” was not imported: {} problem(s). Nothing was changed.", problems.len())}</p>
            <FindingList findings=problems test_id="backup-import-problems" />
        }
        .into_any(),
        other => view! {
            <p role="alert">{format!("“{file}” was not imported: {other}. Nothing was changed.")}</p>
        }
        .into_any(),
    };
    view! { <div class="inline-error backup-import__refused" data-testid="backup-import-refused">{body}</div> }
}

#[component]
fn FindingList(findings: Vec<Finding>, test_id: &'static str) -> impl IntoView {
    view! {
        <ul class="findings" data-testid=test_id>
            {findings.into_iter().map(|finding| {
                let place = finding.place.to_string();
                view! {
                    <li>
                        <strong>{place}</strong>
                        {(!finding.field.is_empty()).then(|| view! { " " <code>{finding.field.clone()}</code> })}
                        " "
                        <span>{finding.message.clone()}</span>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

/// What applying the backup changes.
#[component]
fn Preview(
    preview: ImportPreview,
    /// The files come with it (a legacy export): nothing is left to pick.
    #[prop(optional)]
    with_files: bool,
) -> impl IntoView {
    let plan = preview.plan;
    let names = |names: &[AppName]| {
        names
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let replaced: Vec<String> = plan
        .replaced
        .iter()
        .map(|replacement| {
            if replacement.same_id {
                replacement.name.to_string()
            } else {
                format!(
                    "{} (replaces your {})",
                    replacement.name, replacement.previous
                )
            }
        })
        .collect();
    let runtimes = plan
        .runtimes_to_install
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let warnings = plan.warnings.clone();
    view! {
        <div class="backup-import__preview" data-testid="backup-import-preview">
            <h3>{format!("What importing “{}” changes", preview.file_name)}</h3>
            <dl class="stats">
                <div class="stat"><dt>"Added"</dt><dd><span class="stat__value" data-testid="backup-import-added">{plan.added.len()}</span></dd></div>
                <div class="stat"><dt>"Replaced"</dt><dd><span class="stat__value" data-testid="backup-import-replaced">{plan.replaced.len()}</span></dd></div>
                <div class="stat"><dt>"Yours kept as they are"</dt><dd><span class="stat__value">{plan.kept}</span></dd></div>
            </dl>
            <ul class="backup-import__changes">
                {(!plan.added.is_empty()).then(|| view! { <li>"Adds: " {names(&plan.added)}</li> })}
                {(!replaced.is_empty()).then(|| view! { <li>"Replaces: " {replaced.join(", ")}</li> })}
                <li data-testid="backup-import-runtimes">
                    {if runtimes.is_empty() {
                        "Runtimes: everything it needs is installed here.".to_string()
                    } else {
                        format!("Runtimes to install from the catalog: {runtimes}")
                    }}
                </li>
                {(!with_files).then(|| view! {
                    <li data-testid="backup-import-snapshot">
                        "VM snapshot: not in this backup (JSON). Each application arrives as a draft: deploy it again, from its URL or GitHub source or with its files."
                    </li>
                })}
                {(!with_files && !plan.needing_files.is_empty()).then(|| view! {
                    <li>"Needing their files (uploads and local folders): " {names(&plan.needing_files)}</li>
                })}
                {(!preview.sealed_elsewhere.is_empty()).then(|| view! {
                    <li data-testid="backup-import-secrets">
                        "Sealed by another browser, to enter again after the import: "
                        {preview.sealed_elsewhere.join(", ")}
                    </li>
                })}
            </ul>
            {(!warnings.is_empty()).then(|| {
                let count = warnings.len();
                view! {
                    <details class="backup-import__warnings">
                        <summary>{format!("{count} warning(s)")}</summary>
                        <FindingList findings=warnings test_id="backup-import-warnings" />
                    </details>
                }
            })}
        </div>
    }
}

#[component]
fn Applied(
    count: usize,
    runtimes: Vec<PackageId>,
    needing_files: Vec<AppName>,
    sealed_elsewhere: Vec<String>,
) -> impl IntoView {
    let install = (!runtimes.is_empty()).then(|| {
        let ids = runtimes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let href = format!("/packages?install={ids}&return=/applications");
        view! {
            <A href=href attr:class="button" attr:data-testid="backup-import-install">
                {format!("Install the runtimes ({})", ids.replace(',', ", "))}
            </A>
        }
    });
    view! {
        <div class="backup-import__applied" role="status" data-testid="backup-imported">
            <p>{format!("Imported {count} application(s). Each is a draft until it is deployed again.")}</p>
            {(!needing_files.is_empty()).then(|| view! {
                <p class="muted">
                    "Pick their files when you deploy: "
                    {needing_files.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")}
                </p>
            })}
            {(!sealed_elsewhere.is_empty()).then(|| view! {
                <p class="muted">"Enter these secrets again: " {sealed_elsewhere.join(", ")}</p>
            })}
            <div class="package-actions">
                {install}
                <A href="/applications" attr:class="button button--secondary">"Your applications"</A>
            </div>
        </div>
    }
}

/// What restoring a backup archive changes: the whole VM is replaced.
#[component]
fn ArchiveSummary(preview: ArchivePreview) -> impl IntoView {
    let join = |names: Vec<String>| {
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let restored = join(
        preview
            .applications
            .iter()
            .map(ToString::to_string)
            .collect(),
    );
    let replaced = preview
        .replaced_here
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    let runtimes = join(preview.runtimes.iter().map(ToString::to_string).collect());
    let warnings = preview.warnings.clone();
    view! {
        <div class="backup-import__preview" data-testid="backup-archive-preview">
            <h3>{format!("What restoring “{}” changes", preview.file_name)}</h3>
            <dl class="stats">
                <div class="stat"><dt>"Applications"</dt><dd><span class="stat__value" data-testid="backup-archive-apps">{preview.applications.len()}</span></dd></div>
                <div class="stat"><dt>"With their files"</dt><dd><span class="stat__value">{preview.releases}</span></dd></div>
                <div class="stat"><dt>"VM snapshot"</dt><dd><span class="stat__value">{megabytes(preview.snapshot_bytes as f64 / 1_048_576.0)}</span></dd></div>
            </dl>
            <ul class="backup-import__changes">
                <li data-testid="backup-archive-snapshot">
                    {format!("VM snapshot: included, saved {}. Every part matches the archive's SHA-256 manifest.", timestamp(&preview.saved_at))}
                </li>
                <li>"Restores: " {restored}</li>
                <li data-testid="backup-archive-runtimes">"Runtimes installed in it: " {runtimes}</li>
                <li data-testid="backup-archive-replaces">
                    {if replaced.is_empty() {
                        "This browser has no applications; nothing of yours is replaced.".to_string()
                    } else {
                        format!("Replaces this browser's VM and its {} application(s): {}", replaced.len(), replaced.join(", "))
                    }}
                </li>
                {(!preview.sealed_elsewhere.is_empty()).then(|| view! {
                    <li data-testid="backup-import-secrets">
                        "Sealed by another browser, to enter again after the import: "
                        {preview.sealed_elsewhere.join(", ")}
                    </li>
                })}
            </ul>
            {(!warnings.is_empty()).then(|| {
                let count = warnings.len();
                view! {
                    <details class="backup-import__warnings">
                        <summary>{format!("{count} warning(s)")}</summary>
                        <FindingList findings=warnings test_id="backup-import-warnings" />
                    </details>
                }
            })}
        </div>
    }
}
