//! `window.webvm`: a small scripting hook on the page's VM (browser build only), used by the
//! end-to-end tests through `page.evaluate` and handy in the browser console.
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
//! await webvm.settled(ms); webvm.boot(); webvm.hibernate(); webvm.resume(); webvm.restart()
//! ```

use std::rc::Rc;

use js_sys::{Object, Promise, Reflect, Uint8Array};
use leptos::prelude::*;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::future_to_promise;

use super::vm::{bridge, ExecCommand, ProcessEvent, VmError};
use super::vm_controller::VmController;
use crate::ui::format::wire_name;

fn to_js(value: &Value) -> JsValue {
    js_sys::JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
}

fn from_js(value: &JsValue) -> Value {
    if value.is_undefined() || value.is_null() {
        return Value::Null;
    }
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|text| text.as_string())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null)
}

fn js_err(error: VmError) -> JsValue {
    js_sys::Error::new(&error.to_string()).into()
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

/// Installs `window.webvm` for `controller`.
pub fn install(controller: VmController) {
    let hook = Object::new();

    let exec = Closure::<dyn Fn(JsValue, JsValue, JsValue) -> Promise>::new(
        move |cmd: JsValue, args: JsValue, options: JsValue| {
            future_to_promise(async move {
                let command = command(&cmd, &args, &options)?;
                let result = controller.exec(command).await.map_err(js_err)?;
                Ok(to_js(&json!({
                    "exitCode": result.exit_code(),
                    "signal": result.signal(),
                    "timedOut": result.timed_out,
                    "stdout": String::from_utf8_lossy(&result.stdout),
                    "stderr": String::from_utf8_lossy(&result.stderr),
                    "truncated": result.truncated,
                    "durationMs": result.duration_ms,
                })))
            })
        },
    );
    set(&hook, "exec", exec.into_js_value());

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
                Ok(to_js(&json!({ "id": handle.id, "pid": handle.pid })))
            })
        },
    );
    set(&hook, "spawn", spawn.into_js_value());

    let kill =
        Closure::<dyn Fn(JsValue, JsValue) -> Promise>::new(move |id: JsValue, signal: JsValue| {
            future_to_promise(async move {
                let id = id.as_f64().unwrap_or(0.0) as u64;
                let signal = signal.as_f64().unwrap_or(15.0).clamp(0.0, 64.0) as u8;
                controller.signal(id, signal).await.map_err(js_err)?;
                Ok(JsValue::TRUE)
            })
        });
    set(&hook, "kill", kill.into_js_value());

    let wait = Closure::<dyn Fn(JsValue, JsValue) -> Promise>::new(
        move |id: JsValue, timeout: JsValue| {
            future_to_promise(async move {
                let id = id.as_f64().unwrap_or(0.0) as u64;
                let timeout = timeout.as_f64().unwrap_or(60_000.0).max(0.0) as u64;
                let exit = controller.wait(id, timeout).await.map_err(js_err)?;
                let (code, signal) = match exit.status {
                    crate::guest_protocol::ExitStatus::Code(code) => (Some(code), None),
                    crate::guest_protocol::ExitStatus::Signal { signal, .. } => {
                        (None, Some(signal))
                    }
                };
                Ok(to_js(
                    &json!({ "exitCode": code, "signal": signal, "timedOut": exit.timed_out }),
                ))
            })
        },
    );
    set(&hook, "wait", wait.into_js_value());

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
    set(&hook, "pushFile", push.into_js_value());

    let pull = Closure::<dyn Fn(JsValue) -> Promise>::new(move |path: JsValue| {
        future_to_promise(async move {
            let path = path
                .as_string()
                .ok_or_else(|| JsValue::from(js_sys::Error::new("path must be a string")))?;
            let bytes = controller.pull_file(path).await.map_err(js_err)?;
            Ok(bridge::to_js_bytes(&bytes).into())
        })
    });
    set(&hook, "pullFile", pull.into_js_value());

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
    set(&hook, "tcpRequest", tcp.into_js_value());

    let state = Closure::<dyn Fn() -> JsValue>::new(move || {
        JsValue::from_str(&wire_name(&controller.state()))
    });
    set(&hook, "state", state.into_js_value());

    let status = Closure::<dyn Fn() -> JsValue>::new(move || {
        controller
            .status
            .try_get_untracked()
            .and_then(|status| serde_json::to_value(status).ok())
            .map(|value| to_js(&value))
            .unwrap_or(JsValue::NULL)
    });
    set(&hook, "status", status.into_js_value());

    let info = Closure::<dyn Fn() -> JsValue>::new(move || {
        let Some(view) = controller.view.try_get_untracked() else {
            return JsValue::NULL;
        };
        to_js(&json!({
            "engine": view.engine.key(),
            "capabilities": view.capabilities,
            "detail": view.detail,
            "busy": view.busy,
            "notice": view.notice,
            "bootMs": view.boot_ms,
            "restored": view.restored,
            "source": view.source.map(|source| source.key()),
            "saved": view.saved.as_ref().map(|saved| json!({ "savedAt": saved.saved_at, "size": saved.size })),
            "lastHibernateMs": view.last_hibernate.map(|(ms, _)| ms),
            "lastHibernateBytes": view.last_hibernate.map(|(_, bytes)| bytes),
        }))
    });
    set(&hook, "info", info.into_js_value());

    let console_text =
        Closure::<dyn Fn() -> JsValue>::new(move || JsValue::from_str(&controller.console_text()));
    set(&hook, "consoleText", console_text.into_js_value());

    let settled = Closure::<dyn Fn(JsValue) -> Promise>::new(move |timeout: JsValue| {
        future_to_promise(async move {
            let timeout = timeout.as_f64().unwrap_or(300_000.0).max(0.0) as u64;
            let state = controller.settled(timeout).await;
            Ok(JsValue::from_str(&wire_name(&state)))
        })
    });
    set(&hook, "settled", settled.into_js_value());

    for (name, action) in [
        ("boot", VmController::boot as fn(&VmController)),
        ("hibernate", VmController::hibernate),
        ("resume", VmController::resume),
        ("restart", VmController::restart),
    ] {
        let function = Closure::<dyn Fn()>::new(move || action(&controller));
        set(&hook, name, function.into_js_value());
    }

    bridge::set_global("webvm", &hook.into());
}
