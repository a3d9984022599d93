//! The server's boot snapshot (a machine saved right after a cold boot): whether it fits
//! this page's machine, and its download with progress and SHA-256 check.

use leptos::logging::warn;
use leptos::prelude::*;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::JsCast;

use super::runtime::now_ms;
use super::{VmController, VmViewStoreFields};
use crate::client::vm::image::{BootSnapshotChoice, BootSnapshotEntry, GuestManifest};
use crate::client::vm::{bridge, Snapshot, VmError};

/// Share of the progress bar the boot snapshot's download takes (the emulator's own
/// files take the rest).
pub(super) const DOWNLOAD_SHARE: u8 = 85;
const MIB: f64 = 1_048_576.0;

impl VmController {
    /// The server's boot snapshot if it fits this page's machine; why not is logged and
    /// shown.
    pub(super) fn fitting_boot_snapshot(
        &self,
        manifest: &GuestManifest,
    ) -> Option<BootSnapshotEntry> {
        let runtime = self.runtime()?;
        match manifest.boot_snapshot(&runtime.settings) {
            BootSnapshotChoice::Fits(entry) => Some(entry),
            BootSnapshotChoice::None => {
                leptos::logging::log!(
                    "VM: the server has no boot snapshot of image {}; booting cold",
                    manifest.hash
                );
                None
            }
            BootSnapshotChoice::Unfit(reason) => {
                self.notice(format!(
                    "The server's boot snapshot was ignored and the VM boots fresh (about a minute): {reason}."
                ));
                None
            }
        }
    }

    /// Downloads the server's boot snapshot (progress in the first [`DOWNLOAD_SHARE`] %)
    /// and checks it against its SHA-256.
    pub(super) async fn download_boot_snapshot(
        &self,
        generation: u64,
        entry: &BootSnapshotEntry,
    ) -> Result<Snapshot, VmError> {
        let controller = *self;
        let on_progress = Closure::<dyn FnMut(f64, f64)>::new(move |loaded: f64, total: f64| {
            if !controller.is_current(generation) || total <= 0.0 {
                return;
            }
            let percent = ((loaded / total) * f64::from(DOWNLOAD_SHARE))
                .clamp(0.0, f64::from(DOWNLOAD_SHARE)) as u8;
            controller
                .status
                .try_update(|status| status.load_progress = percent);
            controller.view.detail().try_set(format!(
                "Downloading a ready-booted VM: {:.0} of {:.0} MB",
                loaded / MIB,
                total / MIB
            ));
        });
        let started = now_ms();
        let buffer = bridge::fetch_state(&entry.url, entry.meta.size as f64, &on_progress)
            .await
            .map_err(|error| {
                VmError::Load(format!(
                    "downloading it failed: {}",
                    bridge::js_message(&error)
                ))
            })?;
        let buffer = buffer
            .dyn_into::<js_sys::ArrayBuffer>()
            .map_err(|_| VmError::Load("the download gave no bytes".into()))?;
        let downloaded_ms = (now_ms() - started).max(0.0) as u64;
        self.view
            .detail()
            .try_set("Checking the ready-booted VM".into());
        match bridge::sha256_hex(&buffer).await {
            Ok(digest) => match digest.as_string() {
                Some(digest) if digest.eq_ignore_ascii_case(entry.sha256.as_str()) => {}
                Some(digest) => {
                    return Err(VmError::Load(format!(
                        "it is corrupt: its SHA-256 is {digest}, its record says {}",
                        entry.sha256
                    )))
                }
                None => leptos::logging::log!(
                    "VM: no WebCrypto here (plain HTTP?), so the boot snapshot is not verified"
                ),
            },
            Err(error) => warn!(
                "VM: the boot snapshot could not be verified: {}",
                bridge::js_message(&error)
            ),
        }
        leptos::logging::log!(
            "VM boot snapshot: {} bytes downloaded in {downloaded_ms} ms, checked in {} ms",
            entry.meta.size,
            ((now_ms() - started).max(0.0) as u64).saturating_sub(downloaded_ms)
        );
        Ok(Snapshot {
            size: u64::from(buffer.byte_length()),
            agent_instance: entry.meta.agent_instance.clone(),
            buffer,
        })
    }
}
