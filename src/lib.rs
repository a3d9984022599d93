//! webvm-appserver: an application server whose Debian Linux runs inside the web page.

// Leptos view types nest deeply; the release wasm build needs more than the default 128.
#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod client;
pub mod domain;
pub mod error;
pub mod guest_protocol;
pub mod model;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod host;
#[cfg(feature = "ssr")]
pub mod server;

/// Browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
