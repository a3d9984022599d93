//! Runtime compatibility of an application with the installed packages, using semver.
//!
//! `minimumVersions`/`recommendedVersions` keys are runtime *families* (`nodejs`) matched
//! to package ids by prefix (`nodejs-20`, see [`PackageId::is_in_family`]). Package
//! versions are Debian-ish (`1:18.19.0+dfsg-6~deb12u2`) and are read leniently as semver.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use semver::{Version, VersionReq};

use crate::model::{
    ApplicationRuntime, MismatchSeverity, PackageId, PackageStatus, RuntimeCompatibility,
    RuntimePackage, VersionMismatch,
};

/// Why a version requirement could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompatError {
    #[error("'{text}' is not a version or version range: {reason}")]
    InvalidConstraint { text: String, reason: String },
}

/// Reads a version leniently: drops an epoch (`1:`), a leading `v`, and everything after
/// the leading dotted numbers (`+dfsg`, `-6~deb12u2`, `~rc1`); pads to three components.
/// `18.19.0+dfsg-6~deb12u2` → `18.19.0`, `3.11` → `3.11.0`. `None` without a leading number.
pub fn coerce_version(text: &str) -> Option<Version> {
    let text = text.trim();
    let without_epoch = match text.split_once(':') {
        Some((epoch, rest)) if epoch.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => text,
    };
    let without_v = without_epoch
        .strip_prefix(['v', 'V'])
        .unwrap_or(without_epoch);
    let numeric_end = without_v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(without_v.len());
    let mut parts = [0u64; 3];
    let mut count = 0;
    for component in without_v[..numeric_end].split('.').take(3) {
        match component.parse::<u64>() {
            Ok(number) => {
                parts[count] = number;
                count += 1;
            }
            Err(_) => break,
        }
    }
    (count > 0).then(|| Version::new(parts[0], parts[1], parts[2]))
}

/// A version requirement as written in `minimumVersions`/`recommendedVersions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionConstraint {
    /// A bare version (`18`, `18.0.0`) means "this version or later".
    AtLeast(Version),
    /// A semver range (`>=18, <22`, `^20.11`, `~3.11`).
    Range(VersionReq),
}

impl VersionConstraint {
    /// Parses a bare version or a semver range.
    pub fn parse(text: &str) -> Result<Self, CompatError> {
        let trimmed = text.trim();
        let is_bare_version = trimmed.starts_with(|c: char| c.is_ascii_digit())
            && trimmed.chars().all(|c| c.is_ascii_digit() || c == '.');
        if is_bare_version {
            if let Some(version) = coerce_version(trimmed) {
                return Ok(VersionConstraint::AtLeast(version));
            }
        }
        VersionReq::parse(trimmed)
            .map(VersionConstraint::Range)
            .map_err(|error| CompatError::InvalidConstraint {
                text: text.to_owned(),
                reason: error.to_string(),
            })
    }

    /// True when `version` meets the requirement.
    pub fn matches(&self, version: &Version) -> bool {
        match self {
            VersionConstraint::AtLeast(minimum) => version >= minimum,
            VersionConstraint::Range(range) => range.matches(version),
        }
    }

    /// The lowest version named by a bare-version requirement.
    pub fn floor(&self) -> Option<&Version> {
        match self {
            VersionConstraint::AtLeast(minimum) => Some(minimum),
            VersionConstraint::Range(_) => None,
        }
    }
}

impl fmt::Display for VersionConstraint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionConstraint::AtLeast(minimum) => write!(formatter, ">={minimum}"),
            VersionConstraint::Range(range) => write!(formatter, "{range}"),
        }
    }
}

/// Computes an application's [`RuntimeCompatibility`] at `now`.
///
/// `packages` is everything known: the catalog and/or the installed packages; only those
/// with status `installed` count as installed (an installed entry wins over a catalog
/// entry with the same id). Catalog entries are used to learn conflicts of runtimes that
/// are not installed and to recommend an upgrade.
pub fn check_compatibility<'a>(
    runtime: &ApplicationRuntime,
    packages: impl IntoIterator<Item = &'a RuntimePackage>,
    now: DateTime<Utc>,
) -> RuntimeCompatibility {
    let known = known_packages(packages);
    let installed: Vec<&RuntimePackage> = known
        .values()
        .copied()
        .filter(|package| package.status == PackageStatus::Installed)
        .collect();
    let is_installed = |id: &PackageId| installed.iter().any(|package| package.id == *id);

    let mut compatibility = RuntimeCompatibility {
        last_checked: now,
        ..RuntimeCompatibility::default()
    };
    for required in unique(&runtime.required_runtimes) {
        if !is_installed(required) {
            compatibility.missing_runtimes.push(required.clone());
            compatibility
                .issues
                .push(format!("required runtime {required} is not installed"));
        }
    }
    for optional in unique(&runtime.optional_runtimes) {
        if !is_installed(optional) && !runtime.required_runtimes.contains(optional) {
            compatibility.issues.push(format!(
                "optional runtime {optional} is not installed; some features are unavailable"
            ));
        }
    }
    for required in unique(&runtime.required_runtimes) {
        for other in &installed {
            let conflicts = other.id != *required
                && (other.conflicts.contains(required)
                    || known
                        .get(required)
                        .is_some_and(|package| package.conflicts.contains(&other.id)));
            if conflicts && !compatibility.conflicting_runtimes.contains(&other.id) {
                compatibility.conflicting_runtimes.push(other.id.clone());
                compatibility.issues.push(format!(
                    "installed {} conflicts with required runtime {required}",
                    other.id
                ));
            }
        }
    }

    let context = MismatchContext {
        runtime,
        known: &known,
        installed: &installed,
    };
    for (family, text) in &runtime.minimum_versions {
        context.check(family, text, MismatchSeverity::Error, &mut compatibility);
    }
    for (family, text) in &runtime.recommended_versions {
        let already_failing = compatibility.version_mismatches.iter().any(|mismatch| {
            mismatch.severity == MismatchSeverity::Error
                && runtime_in_family(&mismatch.runtime, family)
        });
        if !already_failing {
            context.check(family, text, MismatchSeverity::Warning, &mut compatibility);
        }
    }

    compatibility.can_start = compatibility.missing_runtimes.is_empty()
        && compatibility.conflicting_runtimes.is_empty()
        && compatibility
            .version_mismatches
            .iter()
            .all(|mismatch| mismatch.severity != MismatchSeverity::Error);
    compatibility
}

/// Packages by id; an `installed` entry wins over another entry with the same id.
pub(crate) fn known_packages<'a>(
    packages: impl IntoIterator<Item = &'a RuntimePackage>,
) -> BTreeMap<&'a PackageId, &'a RuntimePackage> {
    let mut known: BTreeMap<&PackageId, &RuntimePackage> = BTreeMap::new();
    for package in packages {
        let replace = known
            .get(&package.id)
            .is_none_or(|existing| existing.status != PackageStatus::Installed);
        if replace {
            known.insert(&package.id, package);
        }
    }
    known
}

fn unique(ids: &[PackageId]) -> impl Iterator<Item = &PackageId> {
    ids.iter()
        .enumerate()
        .filter(|(index, id)| !ids[..*index].contains(id))
        .map(|(_, id)| id)
}

fn runtime_in_family(runtime: &str, family: &str) -> bool {
    PackageId::parse(runtime).is_ok_and(|id| id.is_in_family(family))
}

struct MismatchContext<'r, 'p> {
    runtime: &'r ApplicationRuntime,
    known: &'r BTreeMap<&'p PackageId, &'p RuntimePackage>,
    installed: &'r [&'p RuntimePackage],
}

impl MismatchContext<'_, '_> {
    /// Compares the best installed runtime of `family` against the requirement `text`.
    fn check(
        &self,
        family: &str,
        text: &str,
        severity: MismatchSeverity,
        compatibility: &mut RuntimeCompatibility,
    ) {
        let kind = match severity {
            MismatchSeverity::Error => "minimum",
            MismatchSeverity::Warning => "recommended",
        };
        let constraint = match VersionConstraint::parse(text) {
            Ok(constraint) => constraint,
            Err(error) => {
                compatibility
                    .issues
                    .push(format!("{kind} version for {family}: {error}"));
                return;
            }
        };
        let Some((package, version)) = self.best_installed(family, compatibility) else {
            if !self.names_family(family) {
                compatibility.issues.push(format!(
                    "no installed {family} runtime to check the {kind} version {constraint} against"
                ));
            }
            return;
        };
        if constraint.matches(&version) {
            return;
        }
        let recommendation = match self.best_available(family, &constraint) {
            Some(candidate) => format!(
                "install {} ({}) to meet {family} {constraint}",
                candidate.id, candidate.version
            ),
            None => format!(
                "no package in the catalog provides {family} {constraint}; lower the {kind} version or add a newer package"
            ),
        };
        compatibility.issues.push(format!(
            "{} {} is below the {kind} {family} version {constraint}",
            package.id, package.version
        ));
        compatibility.version_mismatches.push(VersionMismatch {
            runtime: package.id.to_string(),
            required: constraint.to_string(),
            installed: package.version.clone(),
            severity,
            recommendation,
        });
    }

    /// True when the app lists `id` as required or optional.
    fn names(&self, id: &PackageId) -> bool {
        self.runtime.required_runtimes.contains(id) || self.runtime.optional_runtimes.contains(id)
    }

    /// True when the app lists some package of `family`.
    fn names_family(&self, family: &str) -> bool {
        self.runtime
            .required_runtimes
            .iter()
            .chain(&self.runtime.optional_runtimes)
            .any(|id| id.is_in_family(family))
    }

    /// The installed package of `family` with the highest readable version. When the app
    /// names packages of the family, only those count.
    fn best_installed(
        &self,
        family: &str,
        compatibility: &mut RuntimeCompatibility,
    ) -> Option<(&RuntimePackage, Version)> {
        let names_family = self.names_family(family);
        let candidates = self.installed.iter().copied().filter(|package| {
            package.id.is_in_family(family) && (!names_family || self.names(&package.id))
        });
        let mut best: Option<(&RuntimePackage, Version)> = None;
        for package in candidates {
            match coerce_version(&package.version) {
                Some(version) => {
                    if best
                        .as_ref()
                        .is_none_or(|(_, best_version)| version > *best_version)
                    {
                        best = Some((package, version));
                    }
                }
                None => compatibility.issues.push(format!(
                    "version '{}' of {} cannot be read",
                    package.version, package.id
                )),
            }
        }
        best
    }

    /// The catalog package of `family` with the highest version that meets `constraint`.
    fn best_available(
        &self,
        family: &str,
        constraint: &VersionConstraint,
    ) -> Option<&RuntimePackage> {
        self.known
            .values()
            .copied()
            .filter(|package| package.id.is_in_family(family))
            .filter_map(|package| coerce_version(&package.version).map(|v| (package, v)))
            .filter(|(_, version)| constraint.matches(version))
            .max_by(|(_, a), (_, b)| a.cmp(b))
            .map(|(package, _)| package)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RuntimeCategory;

    fn id(text: &str) -> PackageId {
        PackageId::parse(text).expect("valid id")
    }

    fn package(text: &str, version: &str, status: PackageStatus) -> RuntimePackage {
        let mut package = RuntimePackage::new(id(text), text, RuntimeCategory::Runtime, version);
        package.status = status;
        package
    }

    #[test]
    fn coerce_version_table() {
        let cases = [
            ("18.19.0+dfsg-6~deb12u2", Some((18, 19, 0))),
            ("1:2.39.2-1.1", Some((2, 39, 2))),
            ("3.11", Some((3, 11, 0))),
            ("v20", Some((20, 0, 0))),
            ("1.22.1-9", Some((1, 22, 1))),
            ("5.2.15.4", Some((5, 2, 15))),
            ("1.0~rc1", Some((1, 0, 0))),
            ("abc", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let expected = expected.map(|(a, b, c)| Version::new(a, b, c));
            assert_eq!(coerce_version(text), expected, "{text}");
        }
    }

    #[test]
    fn constraint_table() {
        let cases = [
            ("18.0.0", "18.19.0", true, ">=18.0.0"),
            ("18", "17.9.9", false, ">=18.0.0"),
            (">=18, <21", "20.11.1", true, ">=18, <21"),
            (">=18, <21", "21.0.0", false, ">=18, <21"),
            ("^3.11", "3.12.0", true, "^3.11"),
            ("~3.11", "3.12.0", false, "~3.11"),
        ];
        for (text, version, matches, shown) in cases {
            let constraint = VersionConstraint::parse(text).expect("valid");
            let version = coerce_version(version).expect("valid");
            assert_eq!(constraint.matches(&version), matches, "{text} vs {version}");
            assert_eq!(constraint.to_string(), shown);
        }
        assert!(VersionConstraint::parse("latest").is_err());
        assert!(VersionConstraint::parse("").is_err());
        assert_eq!(
            VersionConstraint::parse("18")
                .ok()
                .as_ref()
                .and_then(VersionConstraint::floor),
            Some(&Version::new(18, 0, 0))
        );
        assert_eq!(
            VersionConstraint::parse("^1")
                .ok()
                .as_ref()
                .and_then(VersionConstraint::floor),
            None
        );
    }

    struct Case {
        name: &'static str,
        required: &'static [&'static str],
        optional: &'static [&'static str],
        minimum: &'static [(&'static str, &'static str)],
        recommended: &'static [(&'static str, &'static str)],
        can_start: bool,
        missing: &'static [&'static str],
        conflicting: &'static [&'static str],
        mismatches: &'static [(&'static str, MismatchSeverity)],
        issue_fragments: &'static [&'static str],
    }

    fn catalog() -> Vec<RuntimePackage> {
        let mut node18 = package(
            "nodejs-18",
            "18.19.0+dfsg-6~deb12u2",
            PackageStatus::Installed,
        );
        node18.conflicts = vec![id("nodejs-20")];
        let node20 = package("nodejs-20", "20.11.1", PackageStatus::Available);
        let python = package("python-311", "3.11.2-1+b1", PackageStatus::Installed);
        let nginx = package("nginx", "1.22.1-9", PackageStatus::Installed);
        let weird = package("weird", "unknown", PackageStatus::Installed);
        let mut redis = package("redis", "7.0.15", PackageStatus::Available);
        redis.conflicts = vec![id("nginx")];
        vec![node18, node20, python, nginx, weird, redis]
    }

    #[test]
    fn compatibility_table() {
        let cases = [
            Case {
                name: "all installed, versions fine",
                required: &["python-311", "nginx"],
                optional: &[],
                minimum: &[("python", "3.9")],
                recommended: &[("python", "3.11.0")],
                can_start: true,
                missing: &[],
                conflicting: &[],
                mismatches: &[],
                issue_fragments: &[],
            },
            Case {
                name: "missing and conflicting runtime",
                required: &["nodejs-20"],
                optional: &[],
                minimum: &[],
                recommended: &[],
                can_start: false,
                missing: &["nodejs-20"],
                conflicting: &["nodejs-18"],
                mismatches: &[],
                issue_fragments: &[
                    "nodejs-20 is not installed",
                    "installed nodejs-18 conflicts",
                ],
            },
            Case {
                name: "conflict known only from the catalog entry of the required runtime",
                required: &["redis"],
                optional: &[],
                minimum: &[],
                recommended: &[],
                can_start: false,
                missing: &["redis"],
                conflicting: &["nginx"],
                mismatches: &[],
                issue_fragments: &["installed nginx conflicts with required runtime redis"],
            },
            Case {
                name: "below minimum is an error with an upgrade recommendation",
                required: &["nodejs-18"],
                optional: &[],
                minimum: &[("nodejs", "20.0.0")],
                recommended: &[("nodejs", "20.11.0")],
                can_start: false,
                missing: &[],
                conflicting: &[],
                mismatches: &[("nodejs-18", MismatchSeverity::Error)],
                issue_fragments: &["below the minimum nodejs version >=20.0.0"],
            },
            Case {
                name: "below recommended is a warning",
                required: &["nodejs-18"],
                optional: &["python-311"],
                minimum: &[("nodejs", ">=18, <21")],
                recommended: &[("nodejs", "20.11.0"), ("python", "3.12")],
                can_start: true,
                missing: &[],
                conflicting: &[],
                mismatches: &[
                    ("nodejs-18", MismatchSeverity::Warning),
                    ("python-311", MismatchSeverity::Warning),
                ],
                issue_fragments: &[
                    "python-311 3.11.2-1+b1 is below the recommended python version >=3.12.0",
                ],
            },
            Case {
                name: "optional missing, unreadable constraint and version, unknown family",
                required: &["weird"],
                optional: &["nodejs-20"],
                minimum: &[("weird", "1.0"), ("ruby", "3"), ("nginx", "latest")],
                recommended: &[],
                can_start: true,
                missing: &[],
                conflicting: &[],
                mismatches: &[],
                issue_fragments: &[
                    "optional runtime nodejs-20 is not installed",
                    "version 'unknown' of weird cannot be read",
                    "no installed ruby runtime",
                    "minimum version for nginx: 'latest' is not a version",
                ],
            },
            Case {
                name: "missing required family is not reported twice",
                required: &["nodejs-20", "nodejs-20"],
                optional: &["nodejs-20"],
                minimum: &[("nodejs", "20")],
                recommended: &[],
                can_start: false,
                missing: &["nodejs-20"],
                conflicting: &["nodejs-18"],
                mismatches: &[],
                issue_fragments: &[],
            },
        ];
        let packages = catalog();
        let now = DateTime::<Utc>::default();
        for case in cases {
            let runtime = ApplicationRuntime {
                required_runtimes: case.required.iter().map(|s| id(s)).collect(),
                optional_runtimes: case.optional.iter().map(|s| id(s)).collect(),
                minimum_versions: case
                    .minimum
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                recommended_versions: case
                    .recommended
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            };
            let result = check_compatibility(&runtime, &packages, now);
            assert_eq!(result.can_start, case.can_start, "{}", case.name);
            let missing: Vec<&str> = result
                .missing_runtimes
                .iter()
                .map(PackageId::as_str)
                .collect();
            assert_eq!(missing, case.missing, "{}", case.name);
            let conflicting: Vec<&str> = result
                .conflicting_runtimes
                .iter()
                .map(PackageId::as_str)
                .collect();
            assert_eq!(conflicting, case.conflicting, "{}", case.name);
            let mismatches: Vec<(&str, MismatchSeverity)> = result
                .version_mismatches
                .iter()
                .map(|m| (m.runtime.as_str(), m.severity))
                .collect();
            assert_eq!(mismatches, case.mismatches, "{}", case.name);
            assert!(result
                .version_mismatches
                .iter()
                .all(|m| !m.recommendation.is_empty()));
            for fragment in case.issue_fragments {
                assert!(
                    result.issues.iter().any(|issue| issue.contains(fragment)),
                    "{}: no issue contains '{fragment}' in {:?}",
                    case.name,
                    result.issues
                );
            }
            assert_eq!(result.last_checked, now);
        }
    }

    #[test]
    fn recommendation_names_a_catalog_package_that_fits() {
        let packages = catalog();
        let runtime = ApplicationRuntime {
            required_runtimes: vec![id("nodejs-18")],
            minimum_versions: BTreeMap::from([("nodejs".to_owned(), "20".to_owned())]),
            ..ApplicationRuntime::default()
        };
        let result = check_compatibility(&runtime, &packages, DateTime::<Utc>::default());
        assert_eq!(
            result.version_mismatches[0].recommendation,
            "install nodejs-20 (20.11.1) to meet nodejs >=20.0.0"
        );
        assert_eq!(
            result.version_mismatches[0].installed,
            "18.19.0+dfsg-6~deb12u2"
        );
    }

    #[test]
    fn installed_entry_wins_over_catalog_entry() {
        let available = package("nginx", "1.22.1", PackageStatus::Available);
        let installed = package("nginx", "1.22.1", PackageStatus::Installed);
        let later = package("nginx", "1.22.1", PackageStatus::Available);
        let known = known_packages([&available, &installed, &later]);
        assert_eq!(
            known.get(&id("nginx")).map(|p| p.status),
            Some(PackageStatus::Installed)
        );
    }
}
