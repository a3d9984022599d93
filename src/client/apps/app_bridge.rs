//! The page's half of the `/apps/<name>/` request bridge: the service worker hands each
//! request to a tab that runs the VM (`js/app_bridge.js`); this module speaks HTTP/1.1 to
//! the app's guest port over `connect(port)` (framing and rewriting in
//! `domain::http_bridge`) and streams the response back, counting requests for the metrics.

use std::rc::Rc;

use chrono::Utc;
use futures::channel::mpsc;
use futures::future::{select, Either};
use futures::StreamExt;
use js_sys::{Reflect, Uint8Array};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::prelude::*;

use super::AppManager;
use crate::client::vm::{bridge, TcpEvent};
use crate::domain::http_bridge::{
    encode_request, rewrite_response_head, BridgeRequest, ForwardContext, ResponseEvent,
    ResponseParser,
};
use crate::model::{ApplicationId, ApplicationStatus, WebVMState};

/// A request that gets no byte from the app for this long is answered with an error.
const IDLE_TIMEOUT_MS: u64 = 60_000;

#[wasm_bindgen(module = "/js/app_bridge.js")]
extern "C" {
    #[wasm_bindgen(js_name = installAppBridge)]
    fn install_app_bridge(
        can_serve: &Closure<dyn Fn(String) -> bool>,
        on_request: &Closure<dyn Fn(JsValue, BridgeReply)>,
    );

    /// Where a request's response goes (see `js/app_bridge.js`).
    pub type BridgeReply;
    #[wasm_bindgen(method)]
    fn head(this: &BridgeReply, status: u16, reason: &str, headers: JsValue);
    #[wasm_bindgen(method)]
    fn chunk(this: &BridgeReply, bytes: &Uint8Array) -> bool;
    #[wasm_bindgen(method)]
    fn end(this: &BridgeReply);
    #[wasm_bindgen(method)]
    fn fail(this: &BridgeReply, status: u16, message: &str);
    #[wasm_bindgen(method)]
    fn cancelled(this: &BridgeReply) -> bool;
}

/// What the service worker sent.
struct Incoming {
    app: String,
    request: BridgeRequest,
    host: String,
    proto: String,
}

fn field(value: &JsValue, name: &str) -> String {
    Reflect::get(value, &JsValue::from_str(name))
        .ok()
        .and_then(|value| value.as_string())
        .unwrap_or_default()
}

fn incoming(value: &JsValue) -> Result<Incoming, String> {
    let headers = Reflect::get(value, &JsValue::from_str("headers"))
        .map_err(|_| "the request has no headers".to_owned())?;
    let headers: Vec<(String, String)> = serde_wasm_bindgen::from_value(headers)
        .map_err(|error| format!("the request's headers are malformed: {error}"))?;
    let body = Reflect::get(value, &JsValue::from_str("body"))
        .ok()
        .filter(|body| !body.is_undefined() && !body.is_null())
        .map(|body| Uint8Array::new(&body).to_vec())
        .unwrap_or_default();
    Ok(Incoming {
        app: field(value, "app"),
        request: BridgeRequest {
            method: field(value, "method"),
            target: field(value, "target"),
            headers,
            body,
        },
        host: field(value, "host"),
        proto: field(value, "proto"),
    })
}

/// How a forwarded request ended, for the metrics.
enum Outcome {
    /// The app answered with this status.
    Answered(u16),
    /// The bridge answered for it (not running, refused, malformed, timed out).
    Failed,
}

impl AppManager {
    /// Serves the bridge from this tab for as long as the page lives.
    pub(super) fn serve_bridge(&self) {
        let manager = *self;
        let can_serve = Closure::<dyn Fn(String) -> bool>::new(move |name: String| {
            manager.running_app(&name).is_some()
        });
        let on_request = Closure::<dyn Fn(JsValue, BridgeReply)>::new(
            move |request: JsValue, reply: BridgeReply| {
                spawn_local(async move { manager.forward(request, reply).await });
            },
        );
        install_app_bridge(&can_serve, &on_request);
        // They live as long as the page.
        can_serve.forget();
        on_request.forget();
    }

    /// The running application called `name`, with its guest port, when this tab's VM runs
    /// it (a tab whose VM is elsewhere or paused has the same record, but can't answer).
    fn running_app(&self, name: &str) -> Option<(ApplicationId, u16)> {
        if self.vm.state() != WebVMState::Ready {
            return None;
        }
        self.book.with_untracked(|book| {
            book.by_name(name)
                .filter(|app| app.status == ApplicationStatus::Running)
                .and_then(|app| Some((app.id, app.execution.port?.get())))
        })
    }

    async fn forward(&self, request: JsValue, reply: BridgeReply) {
        let started = bridge::now_ms();
        let incoming = match incoming(&request) {
            Ok(incoming) => incoming,
            Err(message) => return reply.fail(400, &message),
        };
        let Some((id, port)) = self.running_app(&incoming.app) else {
            let status = self
                .book
                .with_untracked(|book| book.by_name(&incoming.app).map(|app| app.status));
            let message = match status {
                None => format!(
                    "There is no application named “{}” in this browser's registry.",
                    incoming.app
                ),
                Some(status) => format!(
                    "“{}” is {status}, not running. Start it on its page, then reload this one.",
                    incoming.app
                ),
            };
            return reply.fail(503, &message);
        };
        let name = self
            .book
            .with_untracked(|book| book.applications.get(&id).map(|app| app.name.to_string()))
            .unwrap_or_default();
        let context = ForwardContext {
            prefix: format!("/apps/{name}"),
            host: incoming.host,
            proto: incoming.proto,
            guest_port: port,
        };
        let outcome = self.exchange(&incoming.request, &context, &reply).await;
        let elapsed = bridge::now_ms() - started;
        let is_error = match outcome {
            Outcome::Answered(status) => status >= 500,
            Outcome::Failed => true,
        };
        self.count_request(id, elapsed, is_error);
    }

    /// One request and its streamed response over a new connection to the guest port.
    async fn exchange(
        &self,
        request: &BridgeRequest,
        context: &ForwardContext,
        reply: &BridgeReply,
    ) -> Outcome {
        let bytes = match encode_request(request, context) {
            Ok(bytes) => bytes,
            Err(error) => {
                reply.fail(400, &error.to_string());
                return Outcome::Failed;
            }
        };
        let port = context.guest_port;
        let (sender, mut events) = mpsc::unbounded::<TcpEvent>();
        let stream = match self
            .vm
            .tcp_connect(
                port,
                Rc::new(move |event| {
                    let _ = sender.unbounded_send(event);
                }),
            )
            .await
        {
            Ok(stream) => stream,
            Err(error) => {
                reply.fail(502, &format!("the VM could not open port {port}: {error}"));
                return Outcome::Failed;
            }
        };
        let mut parser = ResponseParser::new(&request.method);
        let mut connected = false;
        let mut closed = false;
        let mut status = None;
        loop {
            let next = match select(events.next(), Box::pin(bridge::sleep(IDLE_TIMEOUT_MS))).await {
                Either::Left((event, _)) => event,
                Either::Right(_) => {
                    stream.close();
                    if status.is_none() {
                        reply.fail(
                            504,
                            &format!("the app sent nothing for {} s", IDLE_TIMEOUT_MS / 1000),
                        );
                    } else {
                        reply.fail(504, "the app stopped sending in the middle of its response");
                    }
                    return status.map_or(Outcome::Failed, Outcome::Answered);
                }
            };
            let parsed = match next {
                Some(TcpEvent::Connected) => {
                    connected = true;
                    stream.write(&bytes);
                    continue;
                }
                Some(TcpEvent::Data(data)) => parser.push(&data),
                Some(TcpEvent::Closed) | None => {
                    closed = true;
                    if !connected {
                        reply.fail(
                            502,
                            &format!("nothing is listening on port {port} in the VM"),
                        );
                        return Outcome::Failed;
                    }
                    let rest = parser.finish();
                    if rest.is_ok() && !parser.is_done() && status.is_none() {
                        reply.fail(502, "the app closed the connection without answering");
                        return Outcome::Failed;
                    }
                    rest
                }
            };
            let events_now = match parsed {
                Ok(events_now) => events_now,
                Err(error) => {
                    stream.close();
                    if status.is_none() {
                        reply.fail(
                            502,
                            &format!("the app's response is not valid HTTP: {error}"),
                        );
                        return Outcome::Failed;
                    }
                    // The head is out: cut the body off with an error, so the page does not
                    // take it as complete.
                    reply.fail(502, &format!("the app's response broke off: {error}"));
                    return status.map_or(Outcome::Failed, Outcome::Answered);
                }
            };
            for event in events_now {
                match event {
                    ResponseEvent::Head(mut head) => {
                        rewrite_response_head(&mut head, context);
                        status = Some(head.status);
                        let headers =
                            serde_wasm_bindgen::to_value(&head.headers).unwrap_or(JsValue::NULL);
                        reply.head(head.status, &head.reason, headers);
                    }
                    ResponseEvent::Body(body) => {
                        if !reply.chunk(&Uint8Array::from(body.as_slice())) {
                            stream.close();
                            return status.map_or(Outcome::Failed, Outcome::Answered);
                        }
                    }
                    ResponseEvent::End => {
                        stream.close();
                        reply.end();
                        return status.map_or(Outcome::Failed, Outcome::Answered);
                    }
                }
            }
            if reply.cancelled() {
                stream.close();
                return status.map_or(Outcome::Failed, Outcome::Answered);
            }
            if parser.is_done() || closed {
                stream.close();
                reply.end();
                return status.map_or(Outcome::Failed, Outcome::Answered);
            }
        }
    }

    /// Counts a bridged request in the app's one-minute window and total.
    fn count_request(&self, id: ApplicationId, elapsed_ms: f64, is_error: bool) {
        let runs = self.runs.get_value();
        let mut runs = runs.borrow_mut();
        let window = runs.windows.entry(id).or_default();
        self.book.update_untracked(|book| {
            if let Some(app) = book.applications.get_mut(&id) {
                window.record(&mut app.metrics, Utc::now(), elapsed_ms, is_error);
            }
        });
        drop(runs);
        self.flush_soon();
    }
}
