//! Rules on an application's identity and runtime requirements (business rule 1).

use std::collections::BTreeSet;

use super::{slugify, unique_name, ValidationRules};
use crate::domain::compat::VersionConstraint;
use crate::model::{
    AppName, ApplicationId, ApplicationRuntime, PackageId, ParseError, ValidationResult,
};

impl ValidationRules<'_> {
    /// Business rule 1: URL-safe, 3 to 50 characters, not reserved by the router, and
    /// unique among the applications compared case-insensitively. `own_id` is the
    /// application being renamed, which may keep its own name.
    pub fn validate_application_name(
        &self,
        name: &str,
        own_id: Option<ApplicationId>,
    ) -> ValidationResult {
        let mut result = ValidationResult::ok();
        let problems = AppName::problems(name);
        for problem in &problems {
            result.error(problem.to_string());
        }
        let lowercase = name.to_ascii_lowercase();
        let taken = |candidate: &str| {
            self.names
                .get(&candidate.to_ascii_lowercase())
                .is_some_and(|ids| {
                    ids.iter().any(|id| match own_id {
                        Some(own) => self.conflicts_with(own, *id),
                        None => true,
                    })
                })
        };
        if taken(&lowercase) {
            result.error(format!(
                "application name '{name}' is already taken (names are compared case-insensitively)"
            ));
        }
        if !result.valid {
            let base = if problems.is_empty() {
                lowercase.clone()
            } else {
                slugify(name)
            };
            result.suggest(format!("try '{}'", unique_name(&base, taken)));
        } else if name != lowercase {
            result.warn(format!(
                "'{name}' has capitals; the app is reached at /apps/{lowercase}/ as well"
            ));
        }
        if problems
            .iter()
            .any(|problem| matches!(problem, ParseError::AppNameReserved { .. }))
        {
            result.suggest("names used by the server's own pages cannot be app names");
        }
        result
    }

    /// Runtime ids known to the catalog, version requirements that parse, and the state of
    /// the required runtimes (installed? conflicting?), with install suggestions.
    pub fn validate_runtime_requirements(&self, runtime: &ApplicationRuntime) -> ValidationResult {
        let mut result = ValidationResult::ok();
        let mut seen: BTreeSet<&PackageId> = BTreeSet::new();
        let listed = runtime
            .required_runtimes
            .iter()
            .map(|id| (id, "required"))
            .chain(runtime.optional_runtimes.iter().map(|id| (id, "optional")));
        for (id, kind) in listed {
            if !seen.insert(id) {
                result.warn(format!("runtime {id} is listed more than once"));
                continue;
            }
            if self.package(id).is_none() {
                result.error(format!(
                    "{kind} runtime '{id}' is not in the package catalog"
                ));
                if let Some(suggestion) = self.did_you_mean(id.as_str()) {
                    result.suggest(suggestion);
                }
            }
        }
        self.check_required_are_installable(runtime, &mut result);
        self.check_version_requirements(runtime, &mut result);
        result
    }

    fn check_required_are_installable(
        &self,
        runtime: &ApplicationRuntime,
        result: &mut ValidationResult,
    ) {
        let required: BTreeSet<PackageId> = runtime
            .required_runtimes
            .iter()
            .filter(|id| self.package(id).is_some())
            .cloned()
            .collect();
        for (first, second) in self.graph.conflicts_among(&required) {
            result.error(format!(
                "required runtimes {first} and {second} conflict; an app cannot require both"
            ));
        }
        for id in &required {
            if self.is_installed(id) {
                continue;
            }
            result.warn(format!(
                "required runtime {id} is not installed; the app cannot start until it is"
            ));
            let plan = self
                .graph
                .install_plan([id], &self.installed)
                .unwrap_or_default();
            for step in &plan {
                result.suggest(format!("install {step} first"));
            }
            for step in &plan {
                for installed in self
                    .graph
                    .conflicts_of(step)
                    .filter(|c| self.is_installed(c))
                {
                    result.warn(format!("{step} conflicts with installed {installed}"));
                    result.suggest(format!("remove {installed} first"));
                }
            }
        }
    }

    fn check_version_requirements(
        &self,
        runtime: &ApplicationRuntime,
        result: &mut ValidationResult,
    ) {
        let named: Vec<&PackageId> = runtime
            .required_runtimes
            .iter()
            .chain(&runtime.optional_runtimes)
            .collect();
        let tables = [
            ("minimumVersions", &runtime.minimum_versions),
            ("recommendedVersions", &runtime.recommended_versions),
        ];
        for (table, versions) in tables {
            for (family, text) in versions {
                if family.trim().is_empty() {
                    result.error(format!("{table} has an empty runtime name"));
                    continue;
                }
                if let Err(error) = VersionConstraint::parse(text) {
                    result.error(format!("{table}.{family}: {error}"));
                    result.suggest("write a version like '18.0.0' or a range like '>=18, <22'");
                }
                if !named.iter().any(|id| id.is_in_family(family)) {
                    result.warn(format!(
                        "{table}.{family} matches none of the app's runtimes"
                    ));
                }
            }
        }
        for (family, recommended) in &runtime.recommended_versions {
            let floors = runtime.minimum_versions.get(family).map(|minimum| {
                (
                    VersionConstraint::parse(minimum),
                    VersionConstraint::parse(recommended),
                )
            });
            if let Some((Ok(minimum), Ok(recommended))) = floors {
                if let (Some(low), Some(high)) = (minimum.floor(), recommended.floor()) {
                    if high < low {
                        result.warn(format!(
                            "recommended {family} version {high} is below the minimum {low}"
                        ));
                    }
                }
            }
        }
    }
}
