//! The seed's `ValidationRules`: every rule returns errors (blocking), warnings and
//! suggestions, as a [`ValidationResult`].
//!
//! [`ValidationRules`] is built once over a snapshot of the state (packages, applications,
//! VM resources, settings) and indexes it, so validating many applications stays linear.

mod application;
mod deployment;
mod packages;
mod suggest;
mod system;

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use deployment::looks_secret;
pub use suggest::{closest_match, edit_distance, slugify, unique_name};

use super::compat::known_packages;
use super::graph::{GraphError, PackageGraph};
use crate::model::{
    Application, ApplicationId, ApplicationServerSettings, PackageId, PackageStatus, Port,
    RuntimePackage, SystemResources, ValidationResult,
};

/// One application's validation, by the part of the form each result concerns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApplicationChecks {
    /// Business rule 1: format, reserved names, uniqueness.
    pub name: ValidationResult,
    /// Required and optional runtimes, version requirements, what is installed.
    pub runtime: ValidationResult,
    /// Source, paths, entry point, build.
    pub deployment: ValidationResult,
    /// Command, environment, limits (rule 4: memory within the VM), health, restarts.
    pub execution: ValidationResult,
    /// Business rule 3: ports unique across the applications.
    pub ports: ValidationResult,
}

impl ApplicationChecks {
    /// No group has an error.
    pub fn valid(&self) -> bool {
        self.groups().iter().all(|(_, result)| result.valid)
    }

    /// Each group with its name, in form order.
    pub fn groups(&self) -> [(&'static str, &ValidationResult); 5] {
        [
            ("name", &self.name),
            ("runtime", &self.runtime),
            ("deployment", &self.deployment),
            ("execution", &self.execution),
            ("ports", &self.ports),
        ]
    }

    /// Every error of every group.
    pub fn errors(&self) -> Vec<String> {
        self.groups()
            .iter()
            .flat_map(|(_, result)| result.errors.iter().cloned())
            .collect()
    }
}

/// The validation rules over one snapshot of the application server's state.
#[derive(Debug, Clone)]
pub struct ValidationRules<'a> {
    /// Every known package by id; an installed entry wins over a catalog entry.
    packages: BTreeMap<&'a PackageId, &'a RuntimePackage>,
    installed: BTreeSet<PackageId>,
    graph: PackageGraph,
    refused_edges: Vec<GraphError>,
    applications: &'a [Application],
    /// Lowercase name → ids of the apps with that name.
    names: HashMap<String, Vec<ApplicationId>>,
    /// Port → the applications that use it (an app twice if it lists the port twice).
    port_users: HashMap<Port, Vec<&'a Application>>,
    /// Absolute deployment folder → the applications deployed there.
    deployment_paths: BTreeMap<String, Vec<&'a Application>>,
    /// Set by [`ValidationRules::in_order`]: each application's position, so a conflict
    /// between two is reported on the later one only.
    order: Option<HashMap<ApplicationId, usize>>,
    resources: &'a SystemResources,
    settings: &'a ApplicationServerSettings,
}

impl<'a> ValidationRules<'a> {
    /// Indexes the state. `packages` is the catalog and/or the installed packages; those
    /// with status `installed` are the installed ones.
    pub fn new(
        packages: impl IntoIterator<Item = &'a RuntimePackage>,
        applications: &'a [Application],
        resources: &'a SystemResources,
        settings: &'a ApplicationServerSettings,
    ) -> Self {
        let packages = known_packages(packages);
        let installed = packages
            .values()
            .filter(|package| package.status == PackageStatus::Installed)
            .map(|package| package.id.clone())
            .collect();
        let built = PackageGraph::from_packages(packages.values().copied());
        let mut names: HashMap<String, Vec<ApplicationId>> = HashMap::new();
        let mut port_users: HashMap<Port, Vec<&Application>> = HashMap::new();
        let mut deployment_paths: BTreeMap<String, Vec<&Application>> = BTreeMap::new();
        for application in applications {
            deployment_paths
                .entry(deployment::absolute_deployment_path(
                    &application.deployment.deployment_path,
                ))
                .or_default()
                .push(application);
            names
                .entry(application.name.normalized())
                .or_default()
                .push(application.id);
            for port in application.execution.all_ports() {
                port_users.entry(port).or_default().push(application);
            }
        }
        ValidationRules {
            packages,
            installed,
            graph: built.graph,
            refused_edges: built.refused,
            applications,
            names,
            port_users,
            deployment_paths,
            order: None,
            resources,
            settings,
        }
    }

    /// Reports a conflict between two applications (the same name, port or deployment
    /// folder) only on the one that comes later in `applications`, as a list of records
    /// (an import) wants: each conflict once, at the record that brought it.
    pub fn in_order(mut self) -> Self {
        let order = self
            .applications
            .iter()
            .enumerate()
            .map(|(index, application)| (application.id, index))
            .rev()
            .collect();
        self.order = Some(order);
        self
    }

    /// Whether `other` counts against `own` in a conflict check: a different application
    /// and, [`in order`](Self::in_order), an earlier one.
    fn conflicts_with(&self, own: ApplicationId, other: ApplicationId) -> bool {
        if own == other {
            return false;
        }
        match &self.order {
            None => true,
            Some(order) => match (order.get(&other), order.get(&own)) {
                (Some(other), Some(own)) => other < own,
                (Some(_), None) => true,
                (None, _) => false,
            },
        }
    }

    /// One application's checks grouped by the part of the form they concern, for showing
    /// each next to its field as the user types. Together they are
    /// [`ValidationRules::validate_application`].
    pub fn check_application(&self, application: &Application) -> ApplicationChecks {
        ApplicationChecks {
            name: self.validate_application_name(application.name.as_str(), Some(application.id)),
            runtime: self.validate_runtime_requirements(&application.runtime),
            deployment: {
                let mut result = self.validate_deployment_config(&application.deployment);
                result.merge(self.validate_deployment_path_unique(application));
                result
            },
            execution: self.validate_execution_config(&application.execution),
            ports: self.validate_application_ports(application),
        }
    }

    /// Everything about one application: name, runtime requirements, deployment and
    /// execution configuration, and its ports against the other applications.
    pub fn validate_application(&self, application: &Application) -> ValidationResult {
        let mut result = self.validate_application_config(application);
        result.merge(self.validate_deployment_path_unique(application));
        result.merge(self.validate_application_ports(application));
        result
    }

    /// The whole state: every application's own configuration, the network configuration,
    /// system resources, the installed package set and the settings. Used to check an import.
    pub fn validate_all(&self) -> ValidationResult {
        let mut result = ValidationResult::ok();
        for application in self.applications {
            result.merge_with_context(
                &format!("application '{}'", application.name),
                self.validate_application_config(application),
            );
        }
        result.merge(self.validate_network_configuration());
        result.merge(self.validate_system_resources());
        result.merge(self.validate_installed_packages());
        result.merge(self.validate_settings());
        result
    }

    /// One application's own configuration (no cross-application port checks).
    fn validate_application_config(&self, application: &Application) -> ValidationResult {
        let mut result =
            self.validate_application_name(application.name.as_str(), Some(application.id));
        result.merge(self.validate_runtime_requirements(&application.runtime));
        result.merge(self.validate_deployment_config(&application.deployment));
        result.merge(self.validate_execution_config(&application.execution));
        result
    }

    fn package(&self, id: &PackageId) -> Option<&'a RuntimePackage> {
        self.packages.get(id).copied()
    }

    fn is_installed(&self, id: &PackageId) -> bool {
        self.installed.contains(id)
    }

    /// Suggestion text for an unknown package id, if a known one is close.
    fn did_you_mean(&self, unknown: &str) -> Option<String> {
        closest_match(unknown, self.packages.keys().map(|id| id.as_str()))
            .map(|known| format!("did you mean {known}?"))
    }

    /// Every port in use, plus `extra`.
    fn ports_in_use_with(&self, extra: impl IntoIterator<Item = Port>) -> BTreeSet<Port> {
        self.port_users.keys().copied().chain(extra).collect()
    }

    /// VM memory in MB: what the VM reports, or the configured size before it has booted.
    fn vm_memory(&self) -> u64 {
        if self.resources.memory_total > 0 {
            self.resources.memory_total
        } else {
            self.settings.vm_memory_mb
        }
    }
}

/// Joins names as `'a'`, `'a' and 'b'`, `'a', 'b' and 'c'`.
fn quoted_list<T: std::fmt::Display>(items: &[T]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("'{item}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
