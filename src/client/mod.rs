//! Browser-side code: the VM engines and guest-agent client, the page's VM controller, the
//! snapshot store in IndexedDB and small settings in localStorage.
//!
//! Everything that touches browser APIs is compiled for the `hydrate` build only; what the
//! server build sees are the pure parts (types, protocol state machines, option builders)
//! and no-op twins, so both builds compile and the pure parts are tested natively.

pub mod apps;
pub mod packages;
pub mod secrets;
pub mod settings;
pub mod vm;
pub mod vm_controller;

#[cfg(feature = "hydrate")]
pub mod snapshot_store;
#[cfg(feature = "hydrate")]
pub mod stored_record;
#[cfg(feature = "hydrate")]
mod test_hook;
