//! The page's runtime packages: the server's catalog with this browser's install state, and
//! the actions install and remove, which carry out `domain::package_install` plans in the VM.
//!
//! ```text
//! Install ─ validate (conflicts, dependencies, disk) ─ confirm dependencies ─┐
//!   for each runtime, dependencies first:                                    │
//!   available ─▶ downloading: fetch every .deb (byte progress) + SHA-256 (WebCrypto)
//!             │    a mismatch ends here: error, nothing touched the VM
//!             ▶ installing: push into the guest (9p), dpkg --install per step,
//!             │    dpkg --configure -a, install and post-install scripts
//!             │    a failure: repair the guest (configure, roll back), error
//!             ▶ installed (installDate, installDuration) ─▶ VM checkpoint saved
//! Remove ─ blocked while an installed runtime or an application needs it ─
//!   removing: pre-remove script, dpkg --remove ─▶ available ─▶ VM checkpoint saved
//! ```
//!
//! The record ([`PackageBook`]) lives in IndexedDB and is written at every step, so a reload
//! in the middle of an operation is noticed on the next load: the operation failed, the
//! runtime is `error`, and the guest is repaired once the VM is ready. After each finished
//! operation the VM state is saved (a checkpoint), so a reload resumes a VM that has the
//! runtimes the record says. The guest side sits behind [`RuntimeInstaller`]; dpkg in the
//! emulated guest is today's implementation. In the server build the manager is an inert
//! twin.

use std::collections::BTreeSet;

use leptos::prelude::*;
use uuid::Uuid;

use crate::api::{PackageCatalogEntry, RuntimeCatalog};
use crate::client::vm_controller::VmController;
use crate::domain::graph::PackageGraph;
use crate::domain::package_install::PackageBook;
use crate::domain::validation::ValidationRules;
use crate::model::{
    Application, ApplicationServerSettings, PackageId, PackageStatus, RuntimePackage,
    SystemResources, ValidationResult,
};

/// What an operation in progress shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Activity {
    /// The operation.
    pub operation: Option<Uuid>,
    /// Its runtime.
    pub package_id: Option<PackageId>,
    /// 0–100.
    pub percent: u8,
    /// What is happening, in words.
    pub detail: String,
}

/// What installing a runtime takes, checked before anything starts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstallCheck {
    /// The domain's verdict: errors block, warnings and suggestions inform.
    pub validation: ValidationResult,
    /// What will be installed, dependencies first and the runtime itself last.
    pub to_install: Vec<PackageId>,
}

impl InstallCheck {
    /// Runtime dependencies that get installed first (need the user's confirmation).
    pub fn dependencies(&self) -> &[PackageId] {
        self.to_install
            .split_last()
            .map_or(&[], |(_, dependencies)| dependencies)
    }
}

/// The page's runtime packages (see the module docs). `Copy`: signals only.
#[derive(Clone, Copy)]
pub struct PackageManager {
    /// This browser's record: statuses, install data, operation history.
    pub book: RwSignal<PackageBook>,
    /// The server's catalog.
    pub catalog: RwSignal<Vec<PackageCatalogEntry>>,
    /// Prefix of the `.deb` URLs.
    pub files_base_url: RwSignal<String>,
    /// The workspace's applications (removal is blocked while one requires a runtime);
    /// `None` until they are loaded.
    pub applications: RwSignal<Option<Vec<Application>>>,
    /// The operation in progress.
    pub activity: RwSignal<Activity>,
    /// A message about the last action that did not start or that needs attention.
    pub notice: RwSignal<Option<String>>,
    /// The record has been read from storage.
    pub loaded: RwSignal<bool>,
    /// Reading the record has begun (set at once, so the page starts it only once).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    started: RwSignal<bool>,
    /// The guest is being repaired, checked or saved: no operation may start meanwhile.
    pub maintenance: RwSignal<bool>,
    /// The page's VM, which the runtimes are installed into (used by the browser build).
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    vm: VmController,
}

impl PackageManager {
    fn new(vm: VmController) -> Self {
        PackageManager {
            vm,
            book: RwSignal::new(PackageBook::default()),
            catalog: RwSignal::new(Vec::new()),
            files_base_url: RwSignal::new(String::new()),
            applications: RwSignal::new(None),
            activity: RwSignal::new(Activity::default()),
            notice: RwSignal::new(None),
            loaded: RwSignal::new(false),
            started: RwSignal::new(false),
            maintenance: RwSignal::new(false),
        }
    }

    /// Creates the manager and provides it as context (once, in `App`).
    pub fn provide() -> Self {
        let manager = PackageManager::new(VmController::use_or_provide());
        provide_context(manager);
        #[cfg(feature = "hydrate")]
        browser::install_hook(manager);
        manager
    }

    /// The provided manager, or a new one provided here.
    pub fn use_or_provide() -> Self {
        use_context::<PackageManager>().unwrap_or_else(PackageManager::provide)
    }

    /// Takes the server's catalog (from the `package_catalog` server function).
    pub fn set_catalog(&self, catalog: RuntimeCatalog) {
        self.files_base_url.set(catalog.files_base_url);
        self.catalog.set(catalog.entries);
    }

    /// The catalog entry of a runtime.
    pub fn entry(&self, id: &PackageId) -> Option<PackageCatalogEntry> {
        self.catalog.with_untracked(|catalog| {
            catalog
                .iter()
                .find(|entry| &entry.package.id == id)
                .cloned()
        })
    }

    /// The catalog's packages with this browser's statuses (tracked).
    pub fn packages(&self) -> Vec<RuntimePackage> {
        let catalog: Vec<RuntimePackage> = self
            .catalog
            .with(|catalog| catalog.iter().map(|entry| entry.package.clone()).collect());
        self.book.with(|book| book.apply_to(&catalog))
    }

    /// What installing `id` needs and whether it may go ahead, with `resources` the VM's
    /// last sample (for the disk check).
    pub fn check_install(&self, id: &PackageId, resources: &SystemResources) -> InstallCheck {
        let packages = self.packages();
        let applications = self.applications.get_untracked().unwrap_or_default();
        let settings = ApplicationServerSettings::default();
        let rules = ValidationRules::new(packages.iter(), &applications, resources, &settings);
        let mut validation = rules.validate_package_installation(id.as_str());
        if let Some(reason) = self
            .entry(id)
            .and_then(|entry| entry.catalog_error)
            .filter(|_| {
                self.book.with_untracked(|book| book.status(id)) != PackageStatus::Installed
            })
        {
            validation.error(format!("{id} is unavailable on this server: {reason}"));
        }
        let installed: BTreeSet<PackageId> = packages
            .iter()
            .filter(|package| package.status == PackageStatus::Installed)
            .map(|package| package.id.clone())
            .collect();
        let graph = PackageGraph::from_packages(packages.iter()).graph;
        let to_install = graph.install_plan([id], &installed).unwrap_or_default();
        for dependency in to_install.iter().filter(|step| *step != id) {
            if let Some(reason) = self.entry(dependency).and_then(|entry| entry.catalog_error) {
                validation.error(format!(
                    "{id} needs {dependency}, which is unavailable on this server: {reason}"
                ));
            }
        }
        InstallCheck {
            validation,
            to_install,
        }
    }

    /// Whether `id` may be removed: blocked while an installed runtime or an application
    /// requires it (the errors say who).
    pub fn check_removal(&self, id: &PackageId) -> ValidationResult {
        let Some(applications) = self.applications.get_untracked() else {
            let mut result = ValidationResult::ok();
            result.error("the workspace's applications have not loaded yet, so it is not known whether one needs it; try again in a moment");
            return result;
        };
        let packages = self.packages();
        let settings = ApplicationServerSettings::default();
        let resources = SystemResources::default();
        ValidationRules::new(packages.iter(), &applications, &resources, &settings)
            .validate_package_removal(id.as_str())
    }

    /// Whether an operation may not start now: one is running, the guest is being repaired,
    /// checked or saved, or the record has not been read yet (tracked).
    pub fn busy(&self) -> bool {
        self.book.with(|book| book.running().is_some())
            || self.maintenance.get()
            || !self.loaded.get()
    }
}

#[cfg(not(feature = "hydrate"))]
impl PackageManager {
    /// Reads the record and repairs after an interrupted operation (browser only).
    pub fn start(&self) {}
    /// Installs a runtime and its dependencies (browser only).
    pub fn install(&self, _id: PackageId) {}
    /// Removes a runtime (browser only).
    pub fn remove(&self, _id: PackageId) {}
}

#[cfg(feature = "hydrate")]
pub use browser::{DpkgInstaller, Reporter, RuntimeInstaller};

#[cfg(feature = "hydrate")]
mod browser {
    //! The browser half: downloads, verification, the dpkg installer and the record.

    use std::collections::BTreeMap;
    use std::rc::Rc;

    use chrono::Utc;
    use futures::future::LocalBoxFuture;
    use futures::StreamExt;
    use js_sys::Uint8Array;
    use leptos::prelude::*;
    use uuid::Uuid;
    use wasm_bindgen::prelude::*;

    use super::{Activity, PackageManager, VmController};
    use crate::client::vm::{ExecCommand, ExitStatus, ProcessEvent, VmError};
    use crate::domain::package_install::{
        parse_dpkg_status, plan_install, plan_removal, verify_checksum, DpkgState, InstallPlan,
        PackageBook, Phase, RemovalPlan, GUEST_DEB_PREFIX,
    };
    use crate::model::{PackageId, PackageOperationKind, PackageStatus, WebVMState};

    #[wasm_bindgen(module = "/js/package_io.js")]
    extern "C" {
        #[wasm_bindgen(js_name = fetchBytes, catch)]
        async fn fetch_bytes(url: &str, on_progress: &js_sys::Function)
            -> Result<JsValue, JsValue>;
        #[wasm_bindgen(js_name = recordGet, catch)]
        async fn record_get(key: &str) -> Result<JsValue, JsValue>;
        #[wasm_bindgen(js_name = recordPut, catch)]
        async fn record_put(key: &str, text: &str) -> Result<JsValue, JsValue>;
    }

    /// The IndexedDB key of the package record.
    const BOOK_KEY: &str = "packages";
    /// Where the 9p share is mounted in the guest.
    const GUEST_SHARE: &str = "/mnt/host";
    /// A dpkg call or script may run this long.
    const STEP_TIMEOUT_MS: u64 = 30 * 60 * 1000;
    /// The environment of everything the installer runs.
    const GUEST_ENV: [(&str, &str); 3] = [
        ("DEBIAN_FRONTEND", "noninteractive"),
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("LANG", "C.UTF-8"),
    ];
    /// Keeps maintainer scripts from starting services (there is no init system to manage
    /// them; the app supervisor starts what it needs).
    const POLICY_RC_D: &str = "[ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d; }";

    fn js_text(error: &JsValue) -> String {
        crate::client::vm::bridge::js_message(error)
    }

    fn mib(bytes: u64) -> String {
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
    }

    /// Where an operation reports its log lines and progress.
    #[derive(Clone)]
    pub struct Reporter {
        log: Rc<dyn Fn(String)>,
        phase: Rc<dyn Fn(Phase, String)>,
    }

    impl Reporter {
        /// Appends a line to the operation's log.
        pub fn log(&self, line: impl Into<String>) {
            (self.log)(line.into());
        }

        /// Moves the progress bar.
        pub fn phase(&self, phase: Phase, detail: impl Into<String>) {
            (self.phase)(phase, detail.into());
        }
    }

    /// Carries install and removal plans out in the guest. dpkg inside the emulated guest
    /// ([`DpkgInstaller`]) is today's implementation; a faster one (pre-built runtime layers)
    /// can replace it without touching the rest.
    pub trait RuntimeInstaller {
        /// Installs verified files (`(name, bytes)`, in plan order) as the plan says.
        fn install<'a>(
            &'a self,
            operation: Uuid,
            plan: &'a InstallPlan,
            files: Vec<(String, Vec<u8>)>,
            report: &'a Reporter,
        ) -> LocalBoxFuture<'a, Result<(), String>>;
        /// Removes what the plan says.
        fn remove<'a>(
            &'a self,
            plan: &'a RemovalPlan,
            report: &'a Reporter,
        ) -> LocalBoxFuture<'a, Result<(), String>>;
        /// Brings the package database back to a consistent state; `roll_back` lists Debian
        /// packages to take out if they are left half-installed or were new in a failed
        /// install.
        fn repair<'a>(
            &'a self,
            roll_back: &'a [String],
            report: &'a Reporter,
        ) -> LocalBoxFuture<'a, Result<(), String>>;
        /// The state of these Debian packages in the guest.
        fn query<'a>(
            &'a self,
            names: &'a [String],
        ) -> LocalBoxFuture<'a, Result<BTreeMap<String, DpkgState>, String>>;
    }

    /// dpkg inside the guest, through the guest agent.
    #[derive(Clone, Copy)]
    pub struct DpkgInstaller {
        vm: VmController,
    }

    impl DpkgInstaller {
        /// The installer of the page's VM.
        pub fn new(vm: VmController) -> Self {
            DpkgInstaller { vm }
        }

        fn command(program: &str, args: Vec<String>) -> ExecCommand {
            let mut command = ExecCommand::new(program, args);
            command.env = GUEST_ENV
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect();
            command.timeout_ms = Some(STEP_TIMEOUT_MS);
            command
        }

        /// Runs a command, streaming its output into the log; Ok when it exits with 0.
        async fn run(&self, command: ExecCommand, report: &Reporter) -> Result<(), String> {
            use futures::channel::mpsc;
            let label = {
                let text = command.argv().join(" ");
                if text.chars().count() > 200 {
                    format!("{}…", text.chars().take(200).collect::<String>())
                } else {
                    text
                }
            };
            report.log(format!("$ {label}"));
            let (sender, mut events) = mpsc::unbounded::<ProcessEvent>();
            let listener = Rc::new(move |event: ProcessEvent| {
                let _ = sender.unbounded_send(event);
            });
            self.vm
                .spawn_process(command, listener)
                .await
                .map_err(|error| format!("`{label}` could not start: {error}"))?;
            let mut pending = [Vec::<u8>::new(), Vec::<u8>::new()];
            let mut last_error_line = String::new();
            let mut emit = |stream: usize, bytes: &[u8], flush: bool, last: &mut String| {
                pending[stream].extend_from_slice(bytes);
                while let Some(end) = pending[stream].iter().position(|byte| *byte == b'\n') {
                    let line: Vec<u8> = pending[stream].drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line).trim_end().to_string();
                    if !line.is_empty() {
                        if stream == 1 {
                            *last = line.clone();
                        }
                        report.log(line);
                    }
                }
                if flush && !pending[stream].is_empty() {
                    let line = String::from_utf8_lossy(&pending[stream])
                        .trim_end()
                        .to_string();
                    pending[stream].clear();
                    if stream == 1 {
                        *last = line.clone();
                    }
                    report.log(line);
                }
            };
            while let Some(event) = events.next().await {
                match event {
                    ProcessEvent::Stdout(bytes) => emit(0, &bytes, false, &mut last_error_line),
                    ProcessEvent::Stderr(bytes) => emit(1, &bytes, false, &mut last_error_line),
                    ProcessEvent::Exited(exit) => {
                        emit(0, &[], true, &mut last_error_line);
                        emit(1, &[], true, &mut last_error_line);
                        let why = match exit.status {
                            ExitStatus::Code(0) if !exit.timed_out => return Ok(()),
                            _ if exit.timed_out => "it took too long and was stopped".to_string(),
                            ExitStatus::Code(code) => format!("exit code {code}"),
                            ExitStatus::Signal { signal, .. } => {
                                format!("killed by signal {signal}")
                            }
                        };
                        let detail = if last_error_line.is_empty() {
                            String::new()
                        } else {
                            format!(": {last_error_line}")
                        };
                        return Err(format!("`{label}` failed ({why}){detail}"));
                    }
                    ProcessEvent::Lost(reason) => {
                        return Err(format!("`{label}` was lost: {reason}"));
                    }
                }
            }
            Err(format!("`{label}` was lost: the VM stopped"))
        }

        async fn shell(&self, script: &str, report: &Reporter) -> Result<(), String> {
            self.run(
                Self::command("sh", vec!["-c".into(), script.to_string()]),
                report,
            )
            .await
        }

        async fn install_inner(
            &self,
            operation: Uuid,
            plan: &InstallPlan,
            files: Vec<(String, Vec<u8>)>,
            report: &Reporter,
        ) -> Result<(), String> {
            let path = |file: &str| format!("{GUEST_SHARE}/{GUEST_DEB_PREFIX}{operation}-{file}");
            let total = files.len();
            for (done, (name, bytes)) in files.into_iter().enumerate() {
                report.phase(
                    Phase::Pushing { done, total },
                    format!("Copying {name} into the VM"),
                );
                self.vm
                    .push_file(path(&name), bytes)
                    .await
                    .map_err(|error| format!("could not copy {name} into the VM: {error}"))?;
            }
            report.log(format!(
                "{total} files copied into the VM ({GUEST_SHARE}/{GUEST_DEB_PREFIX}{operation}-*)"
            ));
            self.shell(POLICY_RC_D, report).await?;
            let steps = plan.dpkg_steps.len();
            for (done, step) in plan.dpkg_steps.iter().enumerate() {
                let names: Vec<&str> = step
                    .iter()
                    .filter_map(|file| crate::domain::package_install::debian_package_name(file))
                    .collect();
                report.phase(
                    Phase::Installing { done, total: steps },
                    format!("dpkg {}/{steps}: {}", done + 1, names.join(", ")),
                );
                // The guest's disk lives in this page's memory and is made durable by VM
                // snapshots, so dpkg's fsync calls buy nothing here and cost a lot in an
                // emulated disk.
                let mut args = vec!["--force-unsafe-io".to_string(), "--install".to_string()];
                args.extend(step.iter().map(|file| path(file)));
                self.run(Self::command("dpkg", args), report).await?;
            }
            report.phase(
                Phase::Installing {
                    done: steps,
                    total: steps,
                },
                "Configuring",
            );
            self.run(
                Self::command("dpkg", vec!["--configure".into(), "-a".into()]),
                report,
            )
            .await?;
            for (label, script) in [
                ("install script", plan.install_script.as_deref()),
                ("post-install script", plan.post_install_script.as_deref()),
            ] {
                if let Some(script) = script {
                    report.phase(Phase::Scripts, format!("Running the {label}"));
                    self.shell(script, report)
                        .await
                        .map_err(|error| format!("the {label} failed: {error}"))?;
                }
            }
            Ok(())
        }
    }

    impl RuntimeInstaller for DpkgInstaller {
        fn install<'a>(
            &'a self,
            operation: Uuid,
            plan: &'a InstallPlan,
            files: Vec<(String, Vec<u8>)>,
            report: &'a Reporter,
        ) -> LocalBoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                let result = self.install_inner(operation, plan, files, report).await;
                // The copies are not needed any more, whatever happened.
                let pattern = format!("{GUEST_SHARE}/{GUEST_DEB_PREFIX}{operation}-*");
                let _ = self
                    .vm
                    .exec(Self::command(
                        "sh",
                        vec!["-c".into(), format!("rm -f {pattern}")],
                    ))
                    .await;
                result
            })
        }

        fn remove<'a>(
            &'a self,
            plan: &'a RemovalPlan,
            report: &'a Reporter,
        ) -> LocalBoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                if let Some(script) = &plan.pre_remove_script {
                    report.phase(Phase::PreRemove, "Running the pre-remove script");
                    if let Err(error) = self.shell(script, report).await {
                        report.log(format!(
                            "warning: the pre-remove script failed ({error}); removing anyway"
                        ));
                    }
                }
                if plan.debian_packages.is_empty() {
                    report.log("no Debian packages to remove (all are shared with other runtimes)");
                    return Ok(());
                }
                report.phase(
                    Phase::Removing,
                    format!("dpkg --remove {}", plan.debian_packages.join(" ")),
                );
                let mut args = vec!["--remove".to_string()];
                args.extend(plan.debian_packages.iter().cloned());
                self.run(Self::command("dpkg", args), report).await
            })
        }

        fn repair<'a>(
            &'a self,
            roll_back: &'a [String],
            report: &'a Reporter,
        ) -> LocalBoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                report.log("repairing the package database in the VM");
                let _ = self
                    .run(
                        Self::command("dpkg", vec!["--configure".into(), "-a".into()]),
                        report,
                    )
                    .await;
                let states = self.query(roll_back).await?;
                let present: Vec<String> = roll_back
                    .iter()
                    .filter(|name| {
                        states
                            .get(*name)
                            .is_some_and(|state| state.installed || state.broken)
                    })
                    .cloned()
                    .collect();
                if !present.is_empty() {
                    report.log(format!("rolling back: {}", present.join(", ")));
                    let mut args = vec![
                        "--purge".to_string(),
                        "--force-depends".into(),
                        "--force-remove-reinstreq".into(),
                    ];
                    args.extend(present);
                    self.run(Self::command("dpkg", args), report).await?;
                }
                self.run(
                    Self::command("dpkg", vec!["--configure".into(), "-a".into()]),
                    report,
                )
                .await?;
                let audit = self
                    .vm
                    .exec(Self::command("dpkg", vec!["--audit".into()]))
                    .await
                    .map_err(|error| error.to_string())?;
                let findings = String::from_utf8_lossy(&audit.stdout).trim().to_string();
                if findings.is_empty() {
                    report.log("the package database is consistent (dpkg --audit is clean)");
                    Ok(())
                } else {
                    Err(format!("dpkg --audit still reports: {findings}"))
                }
            })
        }

        fn query<'a>(
            &'a self,
            names: &'a [String],
        ) -> LocalBoxFuture<'a, Result<BTreeMap<String, DpkgState>, String>> {
            Box::pin(async move {
                if names.is_empty() {
                    return Ok(BTreeMap::new());
                }
                let mut args = vec![
                    "-W".to_string(),
                    "-f".into(),
                    "${Package} ${db:Status-Abbrev}\\n".into(),
                ];
                args.extend(names.iter().cloned());
                // Exit code 1 only means some names are unknown.
                let result = self
                    .vm
                    .exec(Self::command("dpkg-query", args))
                    .await
                    .map_err(|error| format!("could not ask dpkg: {error}"))?;
                Ok(parse_dpkg_status(&String::from_utf8_lossy(&result.stdout)))
            })
        }
    }

    /// Adds to `window.webvm` (tests, the browser console): `packageBook()` → the record as
    /// JSON, `checkpoint()` → saves the VM state (bytes).
    pub fn install_hook(manager: PackageManager) {
        use js_sys::{Object, Promise, Reflect};
        use wasm_bindgen_futures::future_to_promise;
        let Some(window) = web_sys::window() else {
            return;
        };
        let hook = Reflect::get(&window, &JsValue::from_str("webvm"))
            .ok()
            .filter(|value| value.is_object())
            .unwrap_or_else(|| {
                let object: JsValue = Object::new().into();
                let _ = Reflect::set(&window, &JsValue::from_str("webvm"), &object);
                object
            });
        let book = Closure::<dyn Fn() -> JsValue>::new(move || {
            manager
                .book
                .try_with_untracked(|book| serde_json::to_string(book).ok())
                .flatten()
                .and_then(|text| js_sys::JSON::parse(&text).ok())
                .unwrap_or(JsValue::NULL)
        });
        let _ = Reflect::set(
            &hook,
            &JsValue::from_str("packageBook"),
            &book.into_js_value(),
        );
        let checkpoint = Closure::<dyn Fn() -> Promise>::new(move || {
            future_to_promise(async move {
                manager
                    .vm()
                    .checkpoint()
                    .await
                    .map(|size| JsValue::from_f64(size as f64))
                    .map_err(|error| js_sys::Error::new(&error.to_string()).into())
            })
        });
        let _ = Reflect::set(
            &hook,
            &JsValue::from_str("checkpoint"),
            &checkpoint.into_js_value(),
        );
    }

    fn reason(error: &VmError) -> String {
        error.to_string()
    }

    impl PackageManager {
        fn vm(&self) -> VmController {
            self.vm
        }

        async fn persist(&self) {
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

        fn reporter(&self, operation: Uuid, package_id: &PackageId) -> Reporter {
            let manager = *self;
            let manager_for_phase = *self;
            let package_id = package_id.clone();
            let started = crate::client::vm::bridge::now_ms();
            Reporter {
                log: Rc::new(move |line| {
                    // Seconds since the operation (re)started, so slow steps stand out.
                    let elapsed = (crate::client::vm::bridge::now_ms() - started).max(0.0) / 1000.0;
                    let line = format!("[{elapsed:6.1}s] {line}");
                    manager.book.try_update(|book| book.log(operation, line));
                }),
                phase: Rc::new(move |phase, detail| {
                    // Byte progress is frequent; every other step is worth saving, so that a
                    // reload keeps the log up to there.
                    if !matches!(phase, Phase::Downloading { .. }) {
                        wasm_bindgen_futures::spawn_local(async move {
                            manager_for_phase.persist().await;
                        });
                    }
                    manager_for_phase.activity.try_set(Activity {
                        operation: Some(operation),
                        package_id: Some(package_id.clone()),
                        percent: phase.percent(),
                        detail,
                    });
                }),
            }
        }

        /// Reads the record; an operation a reload interrupted is marked failed, and the
        /// guest is repaired (and installed runtimes checked) once the VM is ready.
        pub fn start(&self) {
            if self.started.get_untracked() {
                return;
            }
            self.started.set(true);
            let manager = *self;
            wasm_bindgen_futures::spawn_local(async move {
                let mut book = match record_get(BOOK_KEY).await {
                    Ok(value) => match value.as_string() {
                        Some(text) => match serde_json::from_str::<PackageBook>(&text) {
                            Ok(book) => book,
                            Err(error) => {
                                // Keep the unreadable text, so nothing is lost for good.
                                let backup =
                                    format!("{BOOK_KEY}.unreadable.{}", Utc::now().timestamp());
                                let kept = record_put(&backup, &text).await.is_ok();
                                manager.notice.try_set(Some(format!(
                                    "The saved package record was unreadable ({error}) and was started afresh{}",
                                    if kept { format!("; the old one is kept in IndexedDB as “{backup}”") } else { String::new() }
                                )));
                                PackageBook::default()
                            }
                        },
                        None => PackageBook::default(),
                    },
                    Err(error) => {
                        // Without the record, writing one would overwrite it: stay read-only.
                        manager.notice.try_set(Some(format!(
                            "The package record could not be read from this browser ({}); reload the page to try again. Installing and removing are off until then.",
                            js_text(&error)
                        )));
                        manager.maintenance.try_set(true);
                        return;
                    }
                };
                let interrupted = book.recover_interrupted(Utc::now());
                manager.book.try_set(book);
                manager.loaded.try_set(true);
                if !interrupted.is_empty() {
                    manager.persist().await;
                }
                manager.after_vm_ready(interrupted).await;
            });
        }

        /// Waits for the VM, then repairs after interrupted operations; and each time the
        /// VM (re)starts, checks that the installed runtimes are really in it.
        async fn after_vm_ready(&self, interrupted: Vec<PackageId>) {
            let vm = self.vm();
            let installer = DpkgInstaller::new(vm);
            let mut interrupted = Some(interrupted);
            let mut checked_boot = None;
            loop {
                let ready =
                    vm.state() == WebVMState::Ready && vm.view.with_untracked(|v| v.busy.is_none());
                let boot = vm.status.with_untracked(|status| status.boot_time);
                let idle = self.book.with_untracked(|book| book.running().is_none())
                    && !self.maintenance.get_untracked();
                let catalog_known = self.catalog.with_untracked(|catalog| !catalog.is_empty());
                if ready && idle && catalog_known && boot != checked_boot {
                    checked_boot = boot;
                    self.maintenance.try_set(true);
                    if let Some(interrupted) = interrupted.take() {
                        self.repair_interrupted(&installer, interrupted).await;
                    }
                    self.verify_installed(&installer).await;
                    self.maintenance.try_set(false);
                }
                crate::client::vm::bridge::sleep(1_000).await;
            }
        }

        async fn repair_interrupted(&self, installer: &DpkgInstaller, interrupted: Vec<PackageId>) {
            for id in interrupted {
                let Some(entry) = self.entry(&id) else {
                    continue;
                };
                let Some(operation) = self.book.with_untracked(|book| {
                    book.operations
                        .iter()
                        .rev()
                        .find(|operation| operation.package_id == id)
                        .map(|operation| operation.id)
                }) else {
                    continue;
                };
                let report = self.reporter(operation, &id);
                let names: Vec<String> = entry
                    .package
                    .deb_packages
                    .iter()
                    .filter_map(|file| crate::domain::package_install::debian_package_name(file))
                    .map(str::to_string)
                    .collect();
                let states = installer.query(&names).await.unwrap_or_default();
                let broken: Vec<String> = names
                    .iter()
                    .filter(|name| states.get(*name).is_some_and(|state| state.broken))
                    .cloned()
                    .collect();
                match installer.repair(&broken, &report).await {
                    Ok(()) => report.log(format!("the VM was repaired after the interrupted operation; install {id} again to retry")),
                    Err(error) => report.log(format!("repair failed: {error}")),
                }
                self.persist().await;
            }
        }

        /// Runtimes recorded as installed whose Debian packages are not in this VM (it
        /// started from a fresh image) become `error`, with the reason.
        async fn verify_installed(&self, installer: &DpkgInstaller) {
            let installed: Vec<(PackageId, Vec<String>)> = self.book.with_untracked(|book| {
                book.records
                    .iter()
                    .filter(|(_, record)| record.status == PackageStatus::Installed)
                    .map(|(id, record)| {
                        (
                            id.clone(),
                            record
                                .installed_files
                                .iter()
                                .filter_map(|file| {
                                    crate::domain::package_install::debian_package_name(file)
                                })
                                .map(str::to_string)
                                .collect(),
                        )
                    })
                    .collect()
            });
            let mut changed = false;
            for (id, names) in installed {
                let Ok(states) = installer.query(&names).await else {
                    continue;
                };
                let missing: Vec<&String> = names
                    .iter()
                    .filter(|name| !states.get(*name).is_some_and(|state| state.installed))
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                let reason = format!(
                    "not in this VM any more (it started from a fresh image): {} missing; install it again",
                    missing.iter().map(|name| name.as_str()).collect::<Vec<_>>().join(", ")
                );
                self.book.try_update(|book| {
                    if let Some(record) = book
                        .records
                        .get_mut(&id)
                        .filter(|record| record.status == PackageStatus::Installed)
                    {
                        record.status = PackageStatus::Error;
                        record.error = Some(reason.clone());
                    }
                });
                changed = true;
            }
            if changed {
                self.persist().await;
            }
        }

        /// Why `action` (install, remove) on `id` can't start now, if it can't: the record is
        /// not read yet, the guest is being repaired, checked or saved, or the VM isn't ready.
        fn not_now(&self, action: &str, id: &PackageId) -> Option<String> {
            if self.maintenance.get_untracked() || !self.loaded.get_untracked() {
                return Some(format!(
                    "The VM's packages are being checked or saved; {action} {id} in a moment."
                ));
            }
            let state = self.vm().state();
            (state != WebVMState::Ready).then(|| {
                format!("The VM is {state}; start it (Dashboard) and wait until it is ready to {action} {id}.")
            })
        }

        /// Installs `id` after its runtime dependencies (the UI has shown them and the user
        /// confirmed). Refused with a notice when validation fails.
        pub fn install(&self, id: PackageId) {
            let manager = *self;
            wasm_bindgen_futures::spawn_local(async move {
                let vm = manager.vm();
                if let Some(refusal) = manager.not_now("install", &id) {
                    manager.notice.try_set(Some(refusal));
                    return;
                }
                let resources = vm
                    .status
                    .with_untracked(|status| status.system_resources.clone());
                let check = manager.check_install(&id, &resources);
                if !check.validation.valid {
                    manager.notice.try_set(Some(format!(
                        "{id} can't be installed: {}",
                        check.validation.errors.join("; ")
                    )));
                    return;
                }
                manager.notice.try_set(None);
                for step in check.to_install {
                    if manager.install_one(&step).await.is_err() {
                        break;
                    }
                }
            });
        }

        fn fail(&self, operation: Uuid, reason: &str) {
            self.book.try_update(|book| {
                let _ = book.fail(operation, reason, Utc::now());
            });
            self.activity.try_update(|activity| {
                activity.detail = format!("Failed: {reason}");
            });
        }

        async fn install_one(&self, id: &PackageId) -> Result<(), String> {
            let Some(entry) = self.entry(id) else {
                let reason = format!("{id} is not in the catalog");
                self.notice.try_set(Some(reason.clone()));
                return Err(reason);
            };
            let operation = Uuid::new_v4();
            let begun = self
                .book
                .try_update(|book| {
                    book.begin(operation, id, PackageOperationKind::Install, Utc::now())
                })
                .unwrap_or(Ok(()));
            if let Err(error) = begun {
                self.notice.try_set(Some(error.to_string()));
                return Err(error.to_string());
            }
            let report = self.reporter(operation, id);
            report.phase(
                Phase::Preparing,
                format!("Preparing {}", entry.package.name),
            );
            self.persist().await;
            let started = crate::client::vm::bridge::now_ms();
            let result = self
                .install_steps(operation, &entry, &report, started)
                .await;
            if let Err(reason) = &result {
                self.fail(operation, reason);
            }
            self.persist().await;
            result
        }

        async fn install_steps(
            &self,
            operation: Uuid,
            entry: &crate::api::PackageCatalogEntry,
            report: &Reporter,
            started: f64,
        ) -> Result<(), String> {
            let id = &entry.package.id;
            let present = self
                .book
                .with_untracked(|book| book.files_of_others(Some(id)));
            let plan = plan_install(
                &entry.package,
                entry.catalog_error.as_deref(),
                &entry.details.install_steps,
                &entry.details.file_sizes,
                &present,
            )
            .map_err(|error| error.to_string())?;
            let total = plan.download_bytes();
            report.log(format!(
                "installing {} {}: {} files to download ({}), {} dpkg calls",
                entry.package.name,
                entry.package.version,
                plan.files.len(),
                mib(total),
                plan.dpkg_steps.len()
            ));
            let skipped = entry.package.deb_packages.len() - plan.files.len();
            if skipped > 0 {
                report.log(format!(
                    "{skipped} files are already in the VM (installed by another runtime)"
                ));
            }

            // 1. Download and verify everything before anything touches the VM.
            let mut said_no_web_crypto = false;
            let base = self.files_base_url.get_untracked();
            let download_started = crate::client::vm::bridge::now_ms();
            let mut downloaded = 0u64;
            let mut verified = Vec::with_capacity(plan.files.len());
            for file in &plan.files {
                let before = downloaded;
                let name = file.name.clone();
                let progress_report = report.clone();
                let on_progress =
                    Closure::<dyn FnMut(f64, f64)>::new(move |loaded: f64, _: f64| {
                        let done = before + loaded.max(0.0) as u64;
                        progress_report.phase(
                            Phase::Downloading {
                                done,
                                total: total.max(done),
                            },
                            format!(
                                "Downloading {name} ({} of {})",
                                mib(done),
                                mib(total.max(done))
                            ),
                        );
                    });
                let url = format!("{base}{}", file.name);
                let bytes = fetch_bytes(&url, on_progress.as_ref().unchecked_ref())
                    .await
                    .map_err(|error| js_text(&error))?;
                drop(on_progress);
                let bytes: Uint8Array = bytes.unchecked_into();
                let web_crypto = crate::client::vm::bridge::sha256_hex(&bytes)
                    .await
                    .map_err(|error| format!("could not hash {}: {}", file.name, js_text(&error)))?
                    .as_string();
                let hash = match web_crypto {
                    Some(hash) => hash,
                    None => {
                        if !said_no_web_crypto {
                            said_no_web_crypto = true;
                            report.log("WebCrypto is not available here (the page is not in a secure context); verifying with the built-in SHA-256");
                        }
                        use sha2::Digest;
                        hex::encode(sha2::Sha256::digest(bytes.to_vec()))
                    }
                };
                verify_checksum(&file.name, &file.sha256, &hash)?;
                let size = u64::from(bytes.length());
                downloaded += size;
                report.log(format!(
                    "{}: {} downloaded, SHA-256 verified ({}…)",
                    file.name,
                    mib(size),
                    &hash[..16.min(hash.len())]
                ));
                verified.push((file.name.clone(), bytes.to_vec()));
            }
            let seconds =
                ((crate::client::vm::bridge::now_ms() - download_started) / 1000.0).max(0.001);
            report.log(format!(
                "all {} files verified: {} in {seconds:.1} s ({:.1} MiB/s)",
                verified.len(),
                mib(downloaded),
                downloaded as f64 / (1024.0 * 1024.0) / seconds
            ));

            // 2. Into the guest.
            self.book
                .try_update(|book| book.set_status(id, PackageStatus::Installing))
                .transpose()
                .map_err(|error| error.to_string())?;
            self.persist().await;
            let vm = self.vm();
            if vm.state() != WebVMState::Ready {
                return Err(format!(
                    "the VM is {}, so nothing was installed",
                    vm.state()
                ));
            }
            let installer = DpkgInstaller::new(vm);
            report.phase(
                Phase::Pushing {
                    done: 0,
                    total: plan.files.len(),
                },
                "Checking what the VM already has",
            );
            // What is there already must never be rolled back: without knowing it, stop here.
            let before = installer
                .query(&plan.debian_packages)
                .await
                .map_err(|error| format!("{error}, so nothing was installed"))?;
            let others: std::collections::BTreeSet<String> = self.book.with_untracked(|book| {
                book.files_kept_by_others(id)
                    .iter()
                    .filter_map(|file| crate::domain::package_install::debian_package_name(file))
                    .map(str::to_string)
                    .collect()
            });
            if let Err(error) = installer.install(operation, &plan, verified, report).await {
                let new_ones: Vec<String> = plan
                    .debian_packages
                    .iter()
                    .filter(|name| !before.get(*name).is_some_and(|state| state.installed))
                    .filter(|name| !others.contains(*name))
                    .cloned()
                    .collect();
                report.log(format!("install failed: {error}"));
                if let Err(repair) = installer.repair(&new_ones, report).await {
                    report.log(format!("repair failed: {repair}"));
                }
                return Err(error);
            }
            let took = (crate::client::vm::bridge::now_ms() - started).max(0.0);
            report.log(format!(
                "{} installed in {:.1} s",
                entry.package.name,
                took / 1000.0
            ));
            self.book
                .try_update(|book| {
                    book.finish_install(
                        operation,
                        &entry.package.version,
                        entry.package.deb_packages.clone(),
                        Utc::now(),
                    )
                })
                .transpose()
                .map_err(|error| error.to_string())?;
            report.phase(Phase::Done, format!("{} is installed", entry.package.name));
            self.persist().await;
            self.checkpoint(report).await;
            Ok(())
        }

        /// Saves the VM so that a reload resumes with this change.
        async fn checkpoint(&self, report: &Reporter) {
            self.maintenance.try_set(true);
            report.phase(Phase::Done, "Saving the VM state in this browser");
            let saved = self.vm().checkpoint().await;
            self.maintenance.try_set(false);
            match saved {
                Ok(size) => report.log(format!(
                    "VM state saved in this browser ({}), so a reload keeps this change",
                    mib(size)
                )),
                Err(error) => {
                    let message = format!(
                        "the VM state could not be saved ({}); after a reload this change must be made again",
                        reason(&error)
                    );
                    report.log(format!("warning: {message}"));
                    self.notice.try_set(Some(message));
                }
            }
            self.persist().await;
        }

        /// Removes `id`: blocked (with the reason) while something requires it.
        pub fn remove(&self, id: PackageId) {
            let manager = *self;
            wasm_bindgen_futures::spawn_local(async move {
                let vm = manager.vm();
                if let Some(refusal) = manager.not_now("remove", &id) {
                    manager.notice.try_set(Some(refusal));
                    return;
                }
                let check = manager.check_removal(&id);
                if !check.valid {
                    manager.notice.try_set(Some(format!(
                        "{id} can't be removed: {}",
                        check.errors.join("; ")
                    )));
                    return;
                }
                let Some(entry) = manager.entry(&id) else {
                    manager
                        .notice
                        .try_set(Some(format!("{id} is not in the catalog")));
                    return;
                };
                let (installed_files, kept) = manager.book.with_untracked(|book| {
                    (
                        book.records
                            .get(&id)
                            .map(|record| record.installed_files.clone())
                            .unwrap_or_default(),
                        book.files_kept_by_others(&id),
                    )
                });
                let installed_files = if installed_files.is_empty() {
                    entry.package.deb_packages.clone()
                } else {
                    installed_files
                };
                let operation = Uuid::new_v4();
                let begun = manager
                    .book
                    .try_update(|book| {
                        book.begin(operation, &id, PackageOperationKind::Remove, Utc::now())
                    })
                    .unwrap_or(Ok(()));
                if let Err(error) = begun {
                    manager.notice.try_set(Some(error.to_string()));
                    return;
                }
                manager.notice.try_set(None);
                let report = manager.reporter(operation, &id);
                report.phase(Phase::PreRemove, format!("Removing {}", entry.package.name));
                manager.persist().await;
                let plan = plan_removal(&entry.package, &installed_files, &kept);
                let installer = DpkgInstaller::new(vm);
                match installer.remove(&plan, &report).await {
                    Ok(()) => {
                        report.log(format!("{} removed", entry.package.name));
                        let _ = manager
                            .book
                            .try_update(|book| book.finish_removal(operation, Utc::now()));
                        report.phase(Phase::Done, format!("{} was removed", entry.package.name));
                        manager.persist().await;
                        manager.checkpoint(&report).await;
                    }
                    Err(error) => {
                        if let Err(repair) = installer.repair(&[], &report).await {
                            report.log(format!("repair failed: {repair}"));
                        }
                        manager.fail(operation, &error);
                        manager.persist().await;
                    }
                }
            });
        }
    }
}
