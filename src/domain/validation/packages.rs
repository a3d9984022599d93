//! Rules on installing and removing runtime packages (business rules 2 and 5).

use super::{quoted_list, ValidationRules};
use crate::domain::graph::GraphError;
use crate::model::{PackageId, PackageStatus, ValidationResult};

/// Share of the disk that should stay free after an install, in percent.
const DISK_HEADROOM_PERCENT: u64 = 10;

impl ValidationRules<'_> {
    /// Business rule 5: refused on a conflict with anything installed, a dependency that
    /// can't be met (unknown, or part of a cycle), or too little disk. Dependencies that are
    /// available are installed first and named in the suggestions.
    pub fn validate_package_installation(&self, package_id: &str) -> ValidationResult {
        let mut result = ValidationResult::ok();
        let Some(id) = self.known_package_id(package_id, &mut result) else {
            return result;
        };
        if let Some(package) = self.package(&id) {
            match package.status {
                PackageStatus::Installed => {
                    result.warn(format!("{id} is already installed"));
                    return result;
                }
                PackageStatus::Downloading | PackageStatus::Installing => {
                    result.error(format!("{id} is already being installed"));
                }
                PackageStatus::Removing => {
                    result.error(format!("{id} is being removed; wait until that finishes"));
                }
                PackageStatus::Available | PackageStatus::Error => {}
            }
        }
        let plan = self
            .graph
            .install_plan([&id], &self.installed)
            .unwrap_or_default();
        for step in &plan {
            self.check_install_step(&id, step, &mut result);
        }
        let plan_set = plan.iter().cloned().collect();
        for (first, second) in self.graph.conflicts_among(&plan_set) {
            result.error(format!(
                "{first} and {second} conflict and cannot be installed together"
            ));
        }
        self.check_disk(&plan, &mut result);
        result
    }

    /// Blocked while an installed package or an application requires the package; the
    /// errors name who requires it.
    pub fn validate_package_removal(&self, package_id: &str) -> ValidationResult {
        let mut result = ValidationResult::ok();
        let Some(id) = self.known_package_id(package_id, &mut result) else {
            return result;
        };
        if !self.is_installed(&id) {
            result.error(format!("{id} is not installed"));
            return result;
        }
        let dependents: Vec<&PackageId> = self
            .graph
            .dependents_of(&id)
            .filter(|dependent| self.is_installed(dependent))
            .collect();
        if !dependents.is_empty() {
            result.error(format!(
                "{id} is required by installed package {}",
                quoted_list(&dependents)
            ));
            for dependent in dependents {
                result.suggest(format!("remove {dependent} first"));
            }
        }
        let requiring: Vec<&str> = self
            .applications
            .iter()
            .filter(|app| app.runtime.required_runtimes.contains(&id))
            .map(|app| app.name.as_str())
            .collect();
        if !requiring.is_empty() {
            result.error(format!(
                "{id} is required by application {}",
                quoted_list(&requiring)
            ));
            result.suggest(format!(
                "delete application {} or remove {id} from its required runtimes first",
                quoted_list(&requiring)
            ));
        }
        let optional: Vec<&str> = self
            .applications
            .iter()
            .filter(|app| app.runtime.optional_runtimes.contains(&id))
            .map(|app| app.name.as_str())
            .collect();
        if !optional.is_empty() {
            result.warn(format!(
                "application {} uses {id} optionally; some features will stop working",
                quoted_list(&optional)
            ));
        }
        result
    }

    /// The installed set itself: no cycles in the catalog, no two installed packages in
    /// conflict, every installed package's dependencies installed.
    pub fn validate_installed_packages(&self) -> ValidationResult {
        let mut result = ValidationResult::ok();
        for refused in &self.refused_edges {
            result.error(format!("package catalog: {refused}"));
        }
        for (first, second) in self.graph.conflicts_among(&self.installed) {
            result.error(format!("installed packages {first} and {second} conflict"));
        }
        for id in &self.installed {
            for (_, dependency) in self.graph.dependencies_of(id) {
                if !self.is_installed(dependency) {
                    result.error(format!(
                        "installed package {id} depends on {dependency}, which is not installed"
                    ));
                    result.suggest(format!("install {dependency}"));
                }
            }
        }
        result
    }

    /// Parses `text` as a package id known to the catalog, or records why not.
    fn known_package_id(&self, text: &str, result: &mut ValidationResult) -> Option<PackageId> {
        let id = match PackageId::parse(text) {
            Ok(id) => id,
            Err(error) => {
                result.error(error.to_string());
                return None;
            }
        };
        if self.package(&id).is_none() {
            result.error(format!("package '{id}' is not in the catalog"));
            if let Some(suggestion) = self.did_you_mean(id.as_str()) {
                result.suggest(suggestion);
            }
            return None;
        }
        Some(id)
    }

    /// One package of an install plan: known, not in a cycle, not in conflict with
    /// anything installed.
    fn check_install_step(
        &self,
        target: &PackageId,
        step: &PackageId,
        result: &mut ValidationResult,
    ) {
        if step != target {
            if self.package(step).is_some() {
                result.warn(format!("{target} needs {step}, which is not installed yet"));
                result.suggest(format!("install {step} first"));
            } else {
                result.error(format!(
                    "dependency {step} of {target} is not in the catalog, so it can't be met"
                ));
            }
        }
        for refused in &self.refused_edges {
            let GraphError::Cycle { cycle } = refused else {
                continue;
            };
            if cycle.first().is_some_and(|first| first == step.as_str()) {
                result.error(format!("{step} can't be installed: {refused}"));
            }
        }
        for installed in self
            .graph
            .conflicts_of(step)
            .filter(|c| self.is_installed(c))
        {
            result.error(format!("{step} conflicts with installed {installed}"));
            result.suggest(format!("remove {installed} first"));
        }
    }

    /// Errors when the plan's installed size does not fit on the disk.
    fn check_disk(&self, plan: &[PackageId], result: &mut ValidationResult) {
        let needed: f64 = plan
            .iter()
            .filter_map(|id| self.package(id))
            .map(|package| package.extracted_size.max(0.0))
            .sum();
        let total = self.resources.disk_total;
        if total == 0 {
            result.warn("disk size is not known yet; space was not checked");
            return;
        }
        let free = self.resources.disk_free() as f64;
        if needed > free {
            result.error(format!(
                "needs {needed:.1} MB of disk but only {free:.0} MB is free"
            ));
            result.suggest("remove unused packages or applications to free disk space");
        } else if (free - needed) * 100.0 < (total * DISK_HEADROOM_PERCENT) as f64 {
            result.warn(format!(
                "after installing, less than {DISK_HEADROOM_PERCENT}% of the disk will be free"
            ));
        }
    }
}
