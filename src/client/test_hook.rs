//! `window.webvm`: a small scripting hook on the page's VM and runtime packages (browser
//! build only), used by the end-to-end tests through `page.evaluate` and handy in the
//! browser console. Only this module defines it, once, for both contexts.
//!
//! ```js
//! await webvm.exec("uname", ["-m"], { env: { A: "1" }, cwd: "/tmp", timeoutMs: 5000 })
//!   // → { exitCode, signal, timedOut, stdout, stderr, truncated, durationMs }
//! await webvm.spawn("sleep", ["1000"])          // → { id, pid }
//! await webvm.kill(id, 15); await webvm.wait(id, 10000)
//! await webvm.pushFile("/root/a.txt", "text or Uint8Array"); await webvm.pullFile(path)
//! await webvm.tcpRequest(8080, "GET / HTTP/1.0\r\n\r\n", 5000)   // page → guest TCP
//! webvm.state(); webvm.status(); webvm.info(); webvm.consoleText()
//!   // info().source: "cold" | "hibernation" | "boot-snapshot"
//!   // info().ownership: "owner" | "other-tab" | "taking-over" | … (VmOwnership::key)
//! await webvm.settled(ms); webvm.boot(); webvm.hibernate(); webvm.resume(); webvm.restart()
//! webvm.packageBook()   // the package record, as stored
//! webvm.appBook()       // the application record, as stored (applications, deployments)
//! webvm.newDraft("static-busybox")        // a draft Application from a preset (not saved)
//! await webvm.saveApp(application)         // → the saved Application, or rejects with the rules
//! await webvm.deployFiles(name, [{ path, data /* string | Uint8Array */, executable }])
//! await webvm.deployArchive(name, "site.zip", bytes); await webvm.deploySaved(name)
//!   // each → the ended DeploymentOperation (status completed | failed)
//! await webvm.useOpfsFolder(name, "site")   // local sync: an origin-private folder as picked
//! await webvm.opfsWrite("site", "css/a.css", data); await webvm.opfsDelete("site", "old")
//! webvm.syncStatus(name)   // { folder, release, changesApplied, lastChange, error } | null
//! await webvm.checkpoint()   // saves the VM state → bytes
//! await webvm.startApp(name); await webvm.stopApp(name); await webvm.restartApp(name)
//!   // start: once spawned (then watch appBook().applications[id].status); stop: once ended
//! ```

use std::rc::Rc;

use js_sys::{Object, Promise, Reflect, Uint8Array};
use leptos::prelude::*;
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use super::apps::bundle::{SourceFile, SourceMaterial};
use super::apps::{local_sync, AppManager, AppsError, DeployInput};
use super::packages::PackageManager;
use super::vm::{bridge, Capabilities, ExecCommand, ExitStatus, ProcessEvent, VmError};
use super::vm_controller::VmController;
use crate::domain::presets::PresetId;
use crate::model::{Application, ApplicationId};
use futures::future::LocalBoxFuture;

/// A Rust value as the JS value `JSON.parse` would give for its JSON (maps as objects,
/// `None` as `null`).
fn to_js(value: &impl Serialize) -> JsValue {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .unwrap_or(JsValue::NULL)
}

/// A JS value as JSON (`null` for what has none).
fn from_js(value: &JsValue) -> Value {
    if value.is_undefined() || value.is_null() {
        return Value::Null;
    }
    serde_wasm_bindgen::from_value(value.clone()).unwrap_or(Value::Null)
}

fn js_err(error: VmError) -> JsValue {
    js_sys::Error::new(&error.to_string()).into()
}

/// `exec`'s answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecAnswer {
    exit_code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
    truncated: bool,
    duration_ms: u64,
}

/// `spawn`'s answer.
#[derive(Serialize)]
struct SpawnAnswer {
    id: u64,
    pid: u32,
}

/// `wait`'s answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WaitAnswer {
    exit_code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
}

/// A saved hibernation state in `info`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SavedAnswer {
    saved_at: chrono::DateTime<chrono::Utc>,
    size: u64,
}

/// `info`'s answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InfoAnswer {
    engine: &'static str,
    capabilities: Capabilities,
    detail: String,
    busy: Option<String>,
    notice: Option<String>,
    boot_ms: Option<u64>,
    restored: bool,
    source: Option<&'static str>,
    ownership: &'static str,
    saved: Option<SavedAnswer>,
    last_hibernate_ms: Option<u64>,
    last_hibernate_bytes: Option<u64>,
}

/// `(command, args, options)` → [`ExecCommand`].
fn command(command: &JsValue, args: &JsValue, options: &JsValue) -> Result<ExecCommand, JsValue> {
    let command = command
        .as_string()
        .ok_or_else(|| JsValue::from(js_sys::Error::new("command must be a string")))?;
    let args = match from_js(args) {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(text) => text,
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let options = from_js(options);
    let env = options
        .get("env")
        .and_then(Value::as_object)
        .map(|env| {
            env.iter()
                .map(|(key, value)| {
                    (
                        key.clone(),
                        value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ExecCommand {
        command,
        args,
        env,
        cwd: options
            .get("cwd")
            .and_then(Value::as_str)
            .map(str::to_string),
        timeout_ms: options.get("timeoutMs").and_then(Value::as_u64),
    })
}

fn set(object: &Object, name: &str, function: JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(name), &function);
}

/// `(exit code, signal)` of an exit status.
fn code_and_signal(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    match status {
        ExitStatus::Code(code) => (Some(code), None),
        ExitStatus::Signal { signal, .. } => (None, Some(signal)),
    }
}

/// Installs `window.webvm` for the page's VM and runtime packages (once, from `App`).
pub fn install(controller: VmController, packages: PackageManager) {
    let hook = Object::new();
    install_vm(&hook, controller);
    install_packages(&hook, controller, packages);
    bridge::set_global("webvm", &hook.into());
}

/// Adds the applications' part to `window.webvm` (from `AppManager::provide`, after
/// [`install`]).
pub fn install_apps(apps: AppManager) {
    let Ok(hook) = Reflect::get(&js_sys::global(), &JsValue::from_str("webvm")) else {
        return;
    };
    let Ok(hook) = hook.dyn_into::<Object>() else {
        return;
    };
    let book = Closure::<dyn Fn() -> JsValue>::new(move || {
        apps.book.try_with_untracked(to_js).unwrap_or(JsValue::NULL)
    });
    set(&hook, "appBook", book.into_js_value());

    let draft =
        Closure::<dyn Fn(JsValue) -> Result<JsValue, JsValue>>::new(move |preset: JsValue| {
            let preset = preset
                .as_string()
                .and_then(|text| text.parse::<PresetId>().ok())
                .ok_or_else(|| apps_err("unknown preset"))?;
            apps.new_draft(preset)
                .map(|draft| to_js(&draft))
                .map_err(apps_err)
        });
    set(&hook, "newDraft", draft.into_js_value());

    let save = Closure::<dyn Fn(JsValue) -> Promise>::new(move |application: JsValue| {
        future_to_promise(async move {
            let application: Application = serde_json::from_value(from_js(&application))
                .map_err(|error| apps_err(format!("not an application: {error}")))?;
            let saved = apps.save(application).await.map_err(apps_err)?;
            Ok(to_js(&saved))
        })
    });
    set(&hook, "saveApp", save.into_js_value());

    let files = Closure::<dyn Fn(JsValue, JsValue) -> Promise>::new(
        move |name: JsValue, files: JsValue| {
            future_to_promise(async move {
                let id = app_id(apps, &name)?;
                let material = SourceMaterial::Files(source_files(&files)?);
                deployed(apps.deploy(id, DeployInput::Upload(material)).await)
            })
        },
    );
    set(&hook, "deployFiles", files.into_js_value());

    let archive = Closure::<dyn Fn(JsValue, JsValue, JsValue) -> Promise>::new(
        move |name: JsValue, file_name: JsValue, bytes: JsValue| {
            future_to_promise(async move {
                let id = app_id(apps, &name)?;
                let material = SourceMaterial::Archive {
                    name: file_name.as_string().unwrap_or_default(),
                    bytes: Uint8Array::new(&bytes).to_vec(),
                };
                deployed(apps.deploy(id, DeployInput::Upload(material)).await)
            })
        },
    );
    set(&hook, "deployArchive", archive.into_js_value());

    let saved = Closure::<dyn Fn(JsValue) -> Promise>::new(move |name: JsValue| {
        future_to_promise(async move {
            let id = app_id(apps, &name)?;
            deployed(apps.deploy(id, DeployInput::Saved).await)
        })
    });
    set(&hook, "deploySaved", saved.into_js_value());
    install_folder_hooks(&hook, apps);
    install_run_hooks(&hook, apps);
}

/// Start, stop and restart an application by name; each resolves once the supervisor
/// accepted (start: the process was spawned; stop: it ended) or rejects with the reason.
fn install_run_hooks(hook: &Object, apps: AppManager) {
    type Action = fn(AppManager, ApplicationId) -> LocalBoxFuture<'static, Result<(), AppsError>>;
    let actions: [(&str, Action); 3] = [
        ("startApp", |apps, id| {
            Box::pin(async move { apps.start_app(id).await })
        }),
        ("stopApp", |apps, id| {
            Box::pin(async move { apps.stop_app(id).await })
        }),
        ("restartApp", |apps, id| {
            Box::pin(async move { apps.restart_app(id).await })
        }),
    ];
    for (name, action) in actions {
        let closure = Closure::<dyn Fn(JsValue) -> Promise>::new(move |app: JsValue| {
            future_to_promise(async move {
                let id = app_id(apps, &app)?;
                action(apps, id).await.map_err(apps_err)?;
                Ok(JsValue::UNDEFINED)
            })
        });
        set(hook, name, closure.into_js_value());
    }
}

/// Local sync without a picker: an origin-private folder stands in for a picked one.
fn install_folder_hooks(hook: &Object, apps: AppManager) {
    let use_folder = Closure::<dyn Fn(JsValue, JsValue) -> Promise>::new(
        move |name: JsValue, folder: JsValue| {
            future_to_promise(async move {
                let id = app_id(apps, &name)?;
                let folder = folder.as_string().unwrap_or_default();
                let picked = local_sync::use_opfs_folder(id, &folder)
                    .await
                    .map_err(apps_err)?;
                Ok(JsValue::from_str(picked.name()))
            })
        },
    );
    set(hook, "useOpfsFolder", use_folder.into_js_value());

    let write = Closure::<dyn Fn(JsValue, JsValue, JsValue) -> Promise>::new(
        move |folder: JsValue, path: JsValue, data: JsValue| {
            future_to_promise(async move {
                let bytes = match data.as_string() {
                    Some(text) => text.into_bytes(),
                    None => Uint8Array::new(&data).to_vec(),
                };
                let (folder, path) = (folder.as_string(), path.as_string());
                local_sync::opfs_write(
                    &folder.unwrap_or_default(),
                    &path.unwrap_or_default(),
                    &bytes,
                )
                .await
                .map_err(apps_err)?;
                Ok(JsValue::UNDEFINED)
            })
        },
    );
    set(hook, "opfsWrite", write.into_js_value());

    let delete = Closure::<dyn Fn(JsValue, JsValue) -> Promise>::new(
        move |folder: JsValue, path: JsValue| {
            future_to_promise(async move {
                let (folder, path) = (folder.as_string(), path.as_string());
                local_sync::opfs_delete(&folder.unwrap_or_default(), &path.unwrap_or_default())
                    .await
                    .map_err(apps_err)?;
                Ok(JsValue::UNDEFINED)
            })
        },
    );
    set(hook, "opfsDelete", delete.into_js_value());

    let status =
        Closure::<dyn Fn(JsValue) -> Result<JsValue, JsValue>>::new(move |name: JsValue| {
            let id = app_id(apps, &name)?;
            let state = apps.sync.with_untracked(|states| states.get(&id).cloned());
            Ok(state.map_or(JsValue::NULL, |state| to_js(&state)))
        });
    set(hook, "syncStatus", status.into_js_value());
}

fn apps_err(error: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&error.to_string()).into()
}

/// The id of the application named by a JS string.
fn app_id(apps: AppManager, name: &JsValue) -> Result<uuid::Uuid, JsValue> {
    let name = name.as_string().unwrap_or_default();
    apps.book
        .with_untracked(|book| book.by_name(&name).map(|app| app.id))
        .ok_or_else(|| apps_err(format!("there is no application named '{name}'")))
}

/// `[{ path, data, executable }]` → source files (`data` a string or a `Uint8Array`).
fn source_files(files: &JsValue) -> Result<Vec<SourceFile>, JsValue> {
    let list: js_sys::Array = files
        .clone()
        .dyn_into()
        .map_err(|_| apps_err("files must be an array"))?;
    list.iter()
        .map(|item| {
            let field = |name: &str| {
                Reflect::get(&item, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
            };
            let path = field("path")
                .as_string()
                .ok_or_else(|| apps_err("each file needs a path"))?;
            let data = field("data");
            let bytes = match data.as_string() {
                Some(text) => text.into_bytes(),
                None => Uint8Array::new(&data).to_vec(),
            };
            Ok(SourceFile {
                path,
                bytes,
                executable: field("executable").is_truthy(),
            })
        })
        .collect()
}

/// A deployment's end as the hook answers it.
fn deployed(
    result: Result<crate::model::DeploymentOperation, AppsError>,
) -> Result<JsValue, JsValue> {
    result.map(|operation| to_js(&operation)).map_err(apps_err)
}

/// The VM's part of the hook.
fn install_vm(hook: &Object, controller: VmController) {
    let exec = Closure::<dyn Fn(JsValue, JsValue, JsValue) -> Promise>::new(
        move |cmd: JsValue, args: JsValue, options: JsValue| {
            future_to_promise(async move {
                let command = command(&cmd, &args, &options)?;
                let result = controller.exec(command).await.map_err(js_err)?;
                Ok(to_js(&ExecAnswer {
                    exit_code: result.exit_code(),
                    signal: result.signal(),
                    timed_out: result.timed_out,
                    stdout: String::from_utf8_lossy(&result.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
                    truncated: result.truncated,
                    duration_ms: result.duration_ms,
                }))
            })
        },
    );
    set(hook, "exec", exec.into_js_value());

    let spawn = Closure::<dyn Fn(JsValue, JsValue, JsValue) -> Promise>::new(
        move |cmd: JsValue, args: JsValue, options: JsValue| {
            future_to_promise(async move {
                let command = command(&cmd, &args, &options)?;
                let label = command.command.clone();
                let listener = Rc::new(move |event: ProcessEvent| {
                    if let ProcessEvent::Exited(exit) = event {
                        leptos::logging::log!("webvm: background {label} ended: {:?}", exit.status);
                    }
                });
                let handle = controller
                    .spawn_process(command, listener)
                    .await
                    .map_err(js_err)?;
                Ok(to_js(&SpawnAnswer {
                    id: handle.id,
                    pid: handle.pid,
                }))
            })
        },
    );
    set(hook, "spawn", spawn.into_js_value());

    let kill =
        Closure::<dyn Fn(JsValue, JsValue) -> Promise>::new(move |id: JsValue, signal: JsValue| {
            future_to_promise(async move {
                let id = id.as_f64().unwrap_or(0.0) as u64;
                let signal = signal.as_f64().unwrap_or(15.0).clamp(0.0, 64.0) as u8;
                controller.signal(id, signal).await.map_err(js_err)?;
                Ok(JsValue::TRUE)
            })
        });
    set(hook, "kill", kill.into_js_value());

    let wait = Closure::<dyn Fn(JsValue, JsValue) -> Promise>::new(
        move |id: JsValue, timeout: JsValue| {
            future_to_promise(async move {
                let id = id.as_f64().unwrap_or(0.0) as u64;
                let timeout = timeout.as_f64().unwrap_or(60_000.0).max(0.0) as u64;
                let exit = controller.wait(id, timeout).await.map_err(js_err)?;
                let (exit_code, signal) = code_and_signal(exit.status);
                Ok(to_js(&WaitAnswer {
                    exit_code,
                    signal,
                    timed_out: exit.timed_out,
                }))
            })
        },
    );
    set(hook, "wait", wait.into_js_value());

    let push =
        Closure::<dyn Fn(JsValue, JsValue) -> Promise>::new(move |path: JsValue, data: JsValue| {
            future_to_promise(async move {
                let path = path
                    .as_string()
                    .ok_or_else(|| JsValue::from(js_sys::Error::new("path must be a string")))?;
                let bytes = match data.as_string() {
                    Some(text) => text.into_bytes(),
                    None => data
                        .dyn_into::<Uint8Array>()
                        .map(|bytes| bytes.to_vec())
                        .map_err(|_| {
                            JsValue::from(js_sys::Error::new("data must be a string or Uint8Array"))
                        })?,
                };
                controller.push_file(path, bytes).await.map_err(js_err)?;
                Ok(JsValue::TRUE)
            })
        });
    set(hook, "pushFile", push.into_js_value());

    let pull = Closure::<dyn Fn(JsValue) -> Promise>::new(move |path: JsValue| {
        future_to_promise(async move {
            let path = path
                .as_string()
                .ok_or_else(|| JsValue::from(js_sys::Error::new("path must be a string")))?;
            let bytes = controller.pull_file(path).await.map_err(js_err)?;
            Ok(bridge::to_js_bytes(&bytes).into())
        })
    });
    set(hook, "pullFile", pull.into_js_value());

    let tcp = Closure::<dyn Fn(JsValue, JsValue, JsValue) -> Promise>::new(
        move |port: JsValue, request: JsValue, timeout: JsValue| {
            future_to_promise(async move {
                let port = port.as_f64().unwrap_or(0.0).clamp(0.0, 65535.0) as u16;
                let request = request.as_string().unwrap_or_default().into_bytes();
                let timeout = timeout.as_f64().unwrap_or(10_000.0).max(0.0) as u64;
                let answer = controller
                    .tcp_exchange(port, request, timeout)
                    .await
                    .map_err(js_err)?;
                Ok(JsValue::from_str(&String::from_utf8_lossy(&answer)))
            })
        },
    );
    set(hook, "tcpRequest", tcp.into_js_value());

    let state =
        Closure::<dyn Fn() -> JsValue>::new(move || JsValue::from_str(controller.state().as_str()));
    set(hook, "state", state.into_js_value());

    let status = Closure::<dyn Fn() -> JsValue>::new(move || {
        controller
            .status
            .try_with_untracked(to_js)
            .unwrap_or(JsValue::NULL)
    });
    set(hook, "status", status.into_js_value());

    let info = Closure::<dyn Fn() -> JsValue>::new(move || {
        let Some(view) = controller.view.try_get_untracked() else {
            return JsValue::NULL;
        };
        to_js(&InfoAnswer {
            engine: view.engine.as_str(),
            capabilities: view.capabilities(),
            restored: view.restored(),
            source: view.source.map(|source| source.key()),
            ownership: view.ownership.key(),
            saved: view.saved.as_ref().map(|saved| SavedAnswer {
                saved_at: saved.saved_at,
                size: saved.size,
            }),
            last_hibernate_ms: view.last_hibernate.map(|(ms, _)| ms),
            last_hibernate_bytes: view.last_hibernate.map(|(_, bytes)| bytes),
            detail: view.detail,
            busy: view.busy,
            notice: view.notice,
            boot_ms: view.boot_ms,
        })
    });
    set(hook, "info", info.into_js_value());

    let console_text =
        Closure::<dyn Fn() -> JsValue>::new(move || JsValue::from_str(&controller.console_text()));
    set(hook, "consoleText", console_text.into_js_value());

    let settled = Closure::<dyn Fn(JsValue) -> Promise>::new(move |timeout: JsValue| {
        future_to_promise(async move {
            let timeout = timeout.as_f64().unwrap_or(300_000.0).max(0.0) as u64;
            let state = controller.settled(timeout).await;
            Ok(JsValue::from_str(state.as_str()))
        })
    });
    set(hook, "settled", settled.into_js_value());

    for (name, action) in [
        ("boot", VmController::boot as fn(&VmController)),
        ("hibernate", VmController::hibernate),
        ("resume", VmController::resume),
        ("restart", VmController::restart),
    ] {
        let function = Closure::<dyn Fn()>::new(move || action(&controller));
        set(hook, name, function.into_js_value());
    }
}

/// The runtime packages' part of the hook: `packageBook()` → the record as stored,
/// `checkpoint()` → saves the VM state (bytes).
fn install_packages(hook: &Object, controller: VmController, packages: PackageManager) {
    let book = Closure::<dyn Fn() -> JsValue>::new(move || {
        packages
            .book
            .try_with_untracked(to_js)
            .unwrap_or(JsValue::NULL)
    });
    set(hook, "packageBook", book.into_js_value());

    let checkpoint = Closure::<dyn Fn() -> Promise>::new(move || {
        future_to_promise(async move {
            controller
                .checkpoint()
                .await
                .map(|size| JsValue::from_f64(size as f64))
                .map_err(|error| js_sys::Error::new(&error.to_string()).into())
        })
    });
    set(hook, "checkpoint", checkpoint.into_js_value());
}
