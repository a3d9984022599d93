//! Pure business rules on the model; no IO.
//!
//! Every seed business rule lives here once and is called by both the server and the
//! browser. Nothing here reads a clock, a random source or storage: time and ids are
//! passed in.

pub mod app_logs;
pub mod app_registry;
pub mod app_usage;
pub mod archive;
pub mod backup;
pub mod compat;
pub mod fetch_policy;
pub mod graph;
pub mod health;
pub mod http_bridge;
pub mod launch;
pub mod lifecycle;
pub mod metrics;
pub mod mirror_queue;
pub mod package_install;
pub mod ports;
pub mod presets;
pub mod release;
pub mod restart;
pub mod runtime_layer;
pub mod status_page;
pub mod stored_record;
pub mod validation;
pub mod vm_events;
pub mod vm_record;

#[cfg(test)]
mod testing;
