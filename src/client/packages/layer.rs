//! [`LayerInstaller`]: installs a runtime from its prebuilt, verified layer in one agent
//! call (`domain::runtime_layer::apply_script`). A guest that is not the one the layer was
//! built on answers [`InstallerError::LayerMismatch`] before anything changes, and the
//! caller installs with dpkg instead; removal, repair and queries are dpkg's.

use std::collections::BTreeMap;

use futures::future::LocalBoxFuture;
use uuid::Uuid;

use super::dpkg::GUEST_SHARE;
use super::{DpkgInstaller, InstallerError, Reporter, RuntimeInstaller};
use crate::client::vm_controller::VmController;
use crate::domain::package_install::{DpkgState, InstallPlan, Phase, RemovalPlan};
use crate::domain::runtime_layer::{
    apply_script, INSTALL_SCRIPT_FAILED, POST_INSTALL_SCRIPT_FAILED, PRECONDITION_FAILED,
};
use crate::model::catalog::RuntimeLayer;

/// A runtime's layer, applied in the guest.
pub struct LayerInstaller {
    vm: VmController,
    layer: RuntimeLayer,
    dpkg: DpkgInstaller,
}

impl LayerInstaller {
    /// The installer of `layer` in the page's VM.
    pub fn new(vm: VmController, layer: RuntimeLayer) -> Self {
        LayerInstaller {
            vm,
            layer,
            dpkg: DpkgInstaller::new(vm),
        }
    }

    async fn apply(
        &self,
        operation: Uuid,
        plan: &InstallPlan,
        bytes: Vec<u8>,
        report: &Reporter,
    ) -> Result<(), InstallerError> {
        let path = format!("{GUEST_SHARE}/webvm-layer-{operation}.tar.gz");
        report.phase(
            Phase::Pushing { done: 0, total: 1 },
            format!("Copying the layer {} into the VM", self.layer.file),
        );
        self.vm
            .push_file(path.clone(), bytes)
            .await
            .map_err(|reason| InstallerError::Copy {
                file: self.layer.file.clone(),
                reason,
            })?;
        report.phase(
            Phase::Installing { done: 0, total: 1 },
            format!(
                "Unpacking the prebuilt layer ({} Debian packages)",
                self.layer.packages.len()
            ),
        );
        let script = apply_script(
            &self.layer,
            &path,
            plan.install_script.as_deref(),
            plan.post_install_script.as_deref(),
        );
        let command = DpkgInstaller::command("sh", vec!["-c".into(), script]);
        let label = format!(
            "apply layer {} (check, extract, merge {} status stanzas{}, scripts)",
            self.layer.file,
            self.layer.packages.len(),
            if self.layer.triggers.is_empty() {
                String::new()
            } else {
                format!(", {}", self.layer.triggers.join(", "))
            }
        );
        let result = self.dpkg.run_labelled(command, label, report).await;
        // The script deletes the tar; a read-only share (CheerpX's) keeps it until discarded.
        let _ = self.vm.discard_pushed_file(&path).await;
        match result {
            Err(InstallerError::Failed {
                code: Some(code),
                detail,
                ..
            }) if code == PRECONDITION_FAILED => Err(InstallerError::LayerMismatch(
                detail.trim_start_matches(": ").to_string(),
            )),
            Err(
                error @ InstallerError::Failed {
                    code: Some(code), ..
                },
            ) if code == INSTALL_SCRIPT_FAILED || code == POST_INSTALL_SCRIPT_FAILED => {
                Err(InstallerError::Script {
                    label: if code == INSTALL_SCRIPT_FAILED {
                        "install script"
                    } else {
                        "post-install script"
                    },
                    source: Box::new(error),
                })
            }
            other => other,
        }
    }
}

impl RuntimeInstaller for LayerInstaller {
    /// `files` is the verified layer alone.
    fn install<'a>(
        &'a self,
        operation: Uuid,
        plan: &'a InstallPlan,
        files: Vec<(String, Vec<u8>)>,
        report: &'a Reporter,
    ) -> LocalBoxFuture<'a, Result<(), InstallerError>> {
        Box::pin(async move {
            let Some((_, bytes)) = files.into_iter().find(|(name, _)| *name == self.layer.file)
            else {
                return Err(InstallerError::LayerMismatch(format!(
                    "the layer {} was not downloaded",
                    self.layer.file
                )));
            };
            self.apply(operation, plan, bytes, report).await
        })
    }

    fn remove<'a>(
        &'a self,
        plan: &'a RemovalPlan,
        report: &'a Reporter,
    ) -> LocalBoxFuture<'a, Result<(), InstallerError>> {
        self.dpkg.remove(plan, report)
    }

    fn repair<'a>(
        &'a self,
        roll_back: &'a [String],
        report: &'a Reporter,
    ) -> LocalBoxFuture<'a, Result<(), InstallerError>> {
        self.dpkg.repair(roll_back, report)
    }

    fn query<'a>(
        &'a self,
        names: &'a [String],
    ) -> LocalBoxFuture<'a, Result<BTreeMap<String, DpkgState>, InstallerError>> {
        self.dpkg.query(names)
    }
}
