//! The runtime catalog: the operator's TOML file (`catalog/runtimes.toml`) turned into the
//! seed's `RuntimePackage`s, with each runtime's `.deb` closure, install order, sizes and
//! checksums resolved against the repository.
//!
//! A runtime whose closure can't be built (a missing or unreadable `.deb`, an unmet
//! dependency, a conflict, a dependency on a runtime that is itself unavailable) gets
//! status `error` and a `catalogError` reason; the others are unaffected.
//! Scripts (`installScript`, `postInstallScript`, `preRemoveScript`) come only from this
//! file, which belongs to the operator: nothing a user sends can change them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::base::BaseImage;
use super::control::is_package_name;
use super::repository::BrokenFile;
use super::resolve::{conflicting, resolve, Candidate, ResolveError, Universe};
use crate::domain::graph::{EdgeKind, Graph};
use crate::model::catalog::{CatalogDetails, PackageCatalogEntry};
use crate::model::{PackageId, PackageStatus, RuntimeCategory, RuntimePackage, Sha256};
use crate::server::config::Config;

/// The catalog shipped with the server (used when no file is configured and the default
/// path does not exist).
pub const BUILTIN_CATALOG: &str = include_str!("../../../catalog/runtimes.toml");
/// Runtimes only the tests use (the tampered demo): added after the operator's catalog with
/// `--test-fixtures`, never otherwise.
pub const TEST_FIXTURE_CATALOG: &str = include_str!("../../../catalog/test-fixtures.toml");
/// Where the catalog is looked for when none is configured.
pub const DEFAULT_CATALOG_PATH: &str = "catalog/runtimes.toml";

const MIB: f64 = 1024.0 * 1024.0;

/// Why the catalog file can't be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalog {path} is unreadable: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the catalog {path} is not valid TOML for a catalog: {reason}")]
    Syntax { path: String, reason: String },
    #[error("the catalog {path} has problems: {}", .problems.join("; "))]
    Invalid { path: String, problems: Vec<String> },
}

/// Where the operator's catalog comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogOrigin {
    /// An operator's file.
    File(PathBuf),
    /// The copy built into the binary.
    Builtin,
}

impl CatalogOrigin {
    /// The configured file; else [`DEFAULT_CATALOG_PATH`] if it exists; else the built-in copy.
    pub fn from_config(configured: Option<&Path>) -> Self {
        match configured {
            Some(path) => Self::File(path.to_path_buf()),
            None if Path::new(DEFAULT_CATALOG_PATH).is_file() => {
                Self::File(PathBuf::from(DEFAULT_CATALOG_PATH))
            }
            None => Self::Builtin,
        }
    }

    /// A name for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Builtin => "the built-in catalog".to_string(),
        }
    }

    /// The catalog's text; `None` when a configured file does not exist.
    fn text(&self) -> Result<Option<String>, CatalogError> {
        match self {
            Self::Builtin => Ok(Some(BUILTIN_CATALOG.to_string())),
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => Ok(Some(text)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(CatalogError::Unreadable {
                    path: path.display().to_string(),
                    source,
                }),
            },
        }
    }
}

/// The catalog the server uses: the operator's and, when the tests ask for them
/// (`--test-fixtures`), the runtimes of [`TEST_FIXTURE_CATALOG`] after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogSource {
    pub origin: CatalogOrigin,
    pub test_fixtures: bool,
}

impl CatalogSource {
    /// The catalog `config` names (`--catalog`, `--test-fixtures`).
    pub fn from_config(config: &Config) -> Self {
        Self {
            origin: CatalogOrigin::from_config(config.catalog.as_deref()),
            test_fixtures: config.test_fixtures,
        }
    }

    /// A name for messages.
    pub fn describe(&self) -> String {
        let origin = self.origin.describe();
        if self.test_fixtures {
            format!("{origin} with the test fixtures")
        } else {
            origin
        }
    }

    /// The catalog's text: the operator's, then the test fixtures' when asked for (the two
    /// hold only `[[runtime]]` tables, so one follows the other). `None` when a configured
    /// file does not exist and no fixtures are asked for.
    pub fn text(&self) -> Result<Option<String>, CatalogError> {
        let operator = self.origin.text()?;
        if !self.test_fixtures {
            return Ok(operator);
        }
        let mut text = operator.unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(TEST_FIXTURE_CATALOG);
        Ok(Some(text))
    }

    /// Reads and validates the catalog. A configured file that does not exist is an empty
    /// catalog (`Ok(None)`), so a server without one starts with nothing to offer.
    pub fn load(&self) -> Result<Option<Catalog>, CatalogError> {
        match self.text()? {
            Some(text) => Catalog::parse(&text, &self.describe()).map(Some),
            None => Ok(None),
        }
    }
}

/// A root package of a runtime, optionally with the SHA-256 its file must have.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RootSpec {
    Name(String),
    Pinned {
        package: String,
        #[serde(default)]
        sha256: Option<String>,
    },
}

impl RootSpec {
    /// The Debian package name.
    pub fn package(&self) -> &str {
        match self {
            Self::Name(name) => name,
            Self::Pinned { package, .. } => package,
        }
    }

    /// The pinned SHA-256, if any.
    pub fn sha256(&self) -> Option<&str> {
        match self {
            Self::Name(_) => None,
            Self::Pinned { sha256, .. } => sha256.as_deref(),
        }
    }
}

/// Packages that `fill-packages` makes itself instead of downloading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fixture {
    /// [`super::fixture::tampered_deb`], written as `tampered-demo_1.0_i386.deb`.
    Tampered,
}

/// One `[[runtime]]` table of the catalog file (keys are the seed's camelCase names).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeSpec {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The category as the file spells it: [`Catalog::parse`] reads it into `category`, so
    /// that an unknown one is listed with the catalog's other problems.
    #[serde(rename = "category")]
    category_text: String,
    /// Set by [`Catalog::parse`].
    #[serde(skip)]
    pub category: RuntimeCategory,
    pub version: String,
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub conflicts: Vec<String>,
    #[serde(default)]
    pub service_names: Option<Vec<String>>,
    #[serde(default)]
    pub install_script: Option<String>,
    #[serde(default)]
    pub post_install_script: Option<String>,
    #[serde(default)]
    pub pre_remove_script: Option<String>,
    /// Root Debian packages: names, or `{ package = "…", sha256 = "…" }`.
    pub roots: Vec<RootSpec>,
    #[serde(default)]
    pub fixture: Option<Fixture>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    runtime: Vec<RuntimeSpec>,
}

/// A validated catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub runtimes: Vec<RuntimeSpec>,
}

impl Catalog {
    /// Parses and validates catalog text; `origin` names it in errors. Every problem is
    /// listed at once.
    pub fn parse(text: &str, origin: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|error| CatalogError::Syntax {
            path: origin.to_string(),
            reason: error.to_string(),
        })?;
        let mut problems = Vec::new();
        let mut ids = BTreeSet::new();
        let mut categories = Vec::new();
        for runtime in &file.runtime {
            let id = &runtime.id;
            if let Err(error) = PackageId::parse(id) {
                problems.push(error.to_string());
            }
            if !ids.insert(id.as_str()) {
                problems.push(format!("runtime '{id}' appears twice"));
            }
            match runtime.category_text.parse::<RuntimeCategory>() {
                Ok(category) => categories.push(category),
                Err(_) => {
                    problems.push(format!(
                        "{id}: unknown category '{}'",
                        runtime.category_text
                    ));
                    categories.push(RuntimeCategory::default());
                }
            }
            if runtime.name.trim().is_empty() || runtime.version.trim().is_empty() {
                problems.push(format!("{id}: name and version must not be empty"));
            }
            for other in runtime.dependencies.iter().chain(&runtime.conflicts) {
                if let Err(error) = PackageId::parse(other) {
                    problems.push(format!("{id}: {error}"));
                }
            }
            if runtime.roots.is_empty() {
                problems.push(format!("{id}: at least one root package is required"));
            }
            for root in &runtime.roots {
                if !is_package_name(root.package()) {
                    problems.push(format!(
                        "{id}: '{}' is not a Debian package name",
                        root.package()
                    ));
                }
                if let Some(sha) = root.sha256() {
                    if Sha256::parse(sha).is_err() {
                        problems.push(format!(
                            "{id}: the sha256 of {} is not 64 lowercase hex digits",
                            root.package()
                        ));
                    }
                }
            }
        }
        for runtime in &file.runtime {
            for dependency in &runtime.dependencies {
                if !ids.contains(dependency.as_str()) {
                    problems.push(format!(
                        "{}: depends on unknown runtime '{dependency}'",
                        runtime.id
                    ));
                }
            }
        }
        if problems.is_empty() {
            let runtimes = file
                .runtime
                .into_iter()
                .zip(categories)
                .map(|(runtime, category)| RuntimeSpec {
                    category,
                    ..runtime
                })
                .collect();
            Ok(Catalog { runtimes })
        } else {
            Err(CatalogError::Invalid {
                path: origin.to_string(),
                problems,
            })
        }
    }

    /// Every root package of every runtime made by `fill-packages` itself.
    pub fn fixture_roots(&self) -> Vec<(&RuntimeSpec, Fixture)> {
        self.runtimes
            .iter()
            .filter_map(|runtime| runtime.fixture.map(|fixture| (runtime, fixture)))
            .collect()
    }
}

/// Rounds to two decimals (sizes in MiB).
fn mib(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The catalog entries for `catalog`, resolved against the repository's packages.
/// `broken` lists unreadable files, to name them in the reasons.
pub fn build(
    catalog: &Catalog,
    universe: &Universe,
    broken: &[BrokenFile],
    base: &BaseImage,
) -> Vec<PackageCatalogEntry> {
    // Runtime-level order: a runtime after the runtimes it depends on.
    let mut graph: Graph<String> = Graph::new();
    let mut refused: BTreeMap<String, String> = BTreeMap::new();
    for runtime in &catalog.runtimes {
        graph.add_node(runtime.id.clone());
        for dependency in &runtime.dependencies {
            if let Err(error) =
                graph.add_dependency(runtime.id.clone(), dependency.clone(), EdgeKind::Depends)
            {
                refused.insert(runtime.id.clone(), error.to_string());
            }
        }
    }
    let by_id: BTreeMap<&str, &RuntimeSpec> = catalog
        .runtimes
        .iter()
        .map(|runtime| (runtime.id.as_str(), runtime))
        .collect();
    let mut closures: BTreeMap<String, BTreeMap<String, Candidate>> = BTreeMap::new();
    let mut entries: BTreeMap<String, PackageCatalogEntry> = BTreeMap::new();
    for id in graph.full_install_order() {
        let Some(runtime) = by_id.get(id.as_str()) else {
            continue;
        };
        let Ok(package_id) = PackageId::parse(&runtime.id) else {
            continue; // refused by `Catalog::parse` already
        };
        let (entry, closure) = build_entry(
            package_id, runtime, &graph, &refused, &closures, &entries, universe, broken, base,
        );
        if let Some(closure) = closure {
            closures.insert(id.clone(), closure);
        }
        entries.insert(id, entry);
    }
    add_detected_conflicts(&mut entries, &closures);
    // Catalog file order.
    catalog
        .runtimes
        .iter()
        .filter_map(|runtime| entries.remove(&runtime.id))
        .collect()
}

/// One runtime's entry, and its closure when it resolved.
#[allow(clippy::too_many_arguments)]
fn build_entry(
    id: PackageId,
    runtime: &RuntimeSpec,
    graph: &Graph<String>,
    refused: &BTreeMap<String, String>,
    closures: &BTreeMap<String, BTreeMap<String, Candidate>>,
    entries: &BTreeMap<String, PackageCatalogEntry>,
    universe: &Universe,
    broken: &[BrokenFile],
    base: &BaseImage,
) -> (PackageCatalogEntry, Option<BTreeMap<String, Candidate>>) {
    let mut package = RuntimePackage::new(id, &runtime.name, runtime.category, &runtime.version);
    package.description = runtime.description.clone();
    package.dependencies = runtime
        .dependencies
        .iter()
        .filter_map(|id| PackageId::parse(id).ok())
        .collect();
    package.conflicts = runtime
        .conflicts
        .iter()
        .filter_map(|id| PackageId::parse(id).ok())
        .collect();
    package.service_names = runtime.service_names.clone();
    package.install_script = runtime.install_script.clone();
    package.post_install_script = runtime.post_install_script.clone();
    package.pre_remove_script = runtime.pre_remove_script.clone();
    let mut details = CatalogDetails::default();
    let fail = |mut package: RuntimePackage, details: CatalogDetails, reason: String| {
        package.status = PackageStatus::Error;
        (
            PackageCatalogEntry {
                package,
                catalog_error: Some(reason),
                details,
            },
            None,
        )
    };

    if let Some(reason) = refused.get(&runtime.id) {
        return fail(package, details, format!("runtime dependencies: {reason}"));
    }
    // Everything the runtimes it depends on (transitively) install.
    let mut installed: BTreeMap<String, Candidate> = BTreeMap::new();
    let dependencies = graph.install_order([&runtime.id]).unwrap_or_default();
    for dependency in dependencies.iter().filter(|id| **id != runtime.id) {
        if let Some(reason) = entries
            .get(dependency)
            .and_then(|e| e.catalog_error.as_ref())
        {
            return fail(
                package,
                details,
                format!("it needs runtime {dependency}, which is unavailable: {reason}"),
            );
        }
        if let Some(closure) = closures.get(dependency) {
            installed.extend(closure.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    let roots: Vec<String> = runtime
        .roots
        .iter()
        .map(|root| root.package().to_string())
        .collect();
    let resolution = match resolve(universe, base, &installed, &roots) {
        Ok(resolution) => resolution,
        Err(error) => {
            let reason = explain(&error, broken);
            return fail(package, details, reason);
        }
    };
    let mut size = 0u64;
    let mut installed_kib = 0u64;
    for candidate in resolution.candidates() {
        size += candidate.size_bytes;
        installed_kib += candidate.control.installed_size_kib;
        package.deb_packages.push(candidate.file_name.clone());
        details
            .file_sizes
            .insert(candidate.file_name.clone(), candidate.size_bytes);
        package
            .checksums
            .insert(candidate.file_name.clone(), candidate.sha256.clone());
    }
    for root in &runtime.roots {
        let (Some(pinned), Some(candidate)) =
            (root.sha256(), resolution.packages.get(root.package()))
        else {
            continue;
        };
        // The pin is the operator's trust anchor: it is what the browser checks against.
        package
            .checksums
            .insert(candidate.file_name.clone(), pinned.to_string());
        if pinned != candidate.sha256 {
            details.warnings.push(format!(
                "{} on disk does not match its pinned SHA-256; browsers will refuse it",
                candidate.file_name
            ));
        }
    }
    package.size = mib(size as f64 / MIB);
    package.extracted_size = mib(installed_kib as f64 / 1024.0);
    details.install_steps = resolution
        .steps
        .iter()
        .map(|step| {
            step.iter()
                .filter_map(|name| resolution.packages.get(name))
                .map(|candidate| candidate.file_name.clone())
                .collect()
        })
        .collect();
    (
        PackageCatalogEntry {
            package,
            catalog_error: None,
            details,
        },
        Some(resolution.packages),
    )
}

/// A resolution error as the reason shown in the catalog, naming unreadable files.
fn explain(error: &ResolveError, broken: &[BrokenFile]) -> String {
    let missing = match error {
        ResolveError::MissingRoot(name) => Some(name.as_str()),
        ResolveError::Unsatisfiable { dependency, .. } => dependency.split([' ', '|', ':']).next(),
        _ => None,
    };
    if let Some(file) =
        missing.and_then(|name| broken.iter().find(|file| file.package_hint() == name))
    {
        return format!(
            "{} is unreadable: {} ({error})",
            file.file_name, file.reason
        );
    }
    match error {
        ResolveError::MissingRoot(_) => format!("{error}; run `webvm-appserver fill-packages`"),
        _ => error.to_string(),
    }
}

/// Adds conflicts between runtimes whose closures conflict at the Debian level.
fn add_detected_conflicts(
    entries: &mut BTreeMap<String, PackageCatalogEntry>,
    closures: &BTreeMap<String, BTreeMap<String, Candidate>>,
) {
    let mut found: Vec<(String, String)> = Vec::new();
    for (a, closure_a) in closures {
        for (b, closure_b) in closures {
            if a >= b {
                continue;
            }
            let hits = |from: &BTreeMap<String, Candidate>, to: &BTreeMap<String, Candidate>| {
                from.values().any(|candidate| {
                    let control = &candidate.control;
                    control
                        .conflicts
                        .iter()
                        .chain(&control.breaks)
                        .any(|relation| conflicting(relation, to, &control.package).is_some())
                })
            };
            if hits(closure_a, closure_b) || hits(closure_b, closure_a) {
                found.push((a.clone(), b.clone()));
            }
        }
    }
    for (a, b) in found {
        for (one, other) in [(&a, &b), (&b, &a)] {
            let (Some(entry), Ok(other_id)) = (entries.get_mut(one), PackageId::parse(other))
            else {
                continue;
            };
            if !entry.package.conflicts.contains(&other_id) {
                entry.package.conflicts.push(other_id);
                entry.package.conflicts.sort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::packages::control::Control;

    fn candidate(control: &str, size: u64) -> Candidate {
        let control = Control::parse(control).expect("control");
        Candidate {
            file_name: format!(
                "{}_{}_{}.deb",
                control.package, control.version, control.architecture
            ),
            size_bytes: size,
            sha256: format!("{:064x}", size),
            control,
        }
    }

    const CATALOG: &str = r#"
[[runtime]]
id = "web"
name = "Web"
description = "a web server"
category = "web-server"
version = "1.0"
serviceNames = ["web"]
postInstallScript = "web --version"
roots = ["web"]

[[runtime]]
id = "app"
name = "App"
description = "an app runtime"
category = "runtime"
version = "2.0"
dependencies = ["web"]
roots = [{ package = "app", sha256 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" }]

[[runtime]]
id = "rival"
name = "Rival"
description = "conflicts with web"
category = "web-server"
version = "1.0"
roots = ["rival"]

[[runtime]]
id = "ghost"
name = "Ghost"
description = "nothing on disk"
category = "tool"
version = "1.0"
roots = ["ghost"]

[[runtime]]
id = "haunted"
name = "Haunted"
description = "needs ghost"
category = "tool"
version = "1.0"
dependencies = ["ghost"]
roots = ["web"]
"#;

    fn universe() -> Universe {
        Universe::new([
            candidate("Package: web\nVersion: 1.0\nArchitecture: i386\nInstalled-Size: 2048\nDepends: libweb\n", 1_048_576),
            candidate("Package: libweb\nVersion: 1.0\nArchitecture: i386\nInstalled-Size: 1024\n", 524_288),
            candidate("Package: app\nVersion: 2.0\nArchitecture: all\nDepends: web, libweb\n", 100),
            candidate("Package: rival\nVersion: 1.0\nArchitecture: i386\nConflicts: web\n", 10),
        ])
    }

    #[test]
    fn entries_have_closures_sizes_checksums_and_errors() {
        let catalog = Catalog::parse(CATALOG, "test").expect("valid");
        let broken = vec![BrokenFile {
            file_name: "ghost_1.0_i386.deb".into(),
            reason: "not a Debian package".into(),
        }];
        let base = BaseImage::minbase("test".into());
        let entries = build(&catalog, &universe(), &broken, &base);
        let ids: Vec<&str> = entries.iter().map(|e| e.package.id.as_str()).collect();
        assert_eq!(ids, vec!["web", "app", "rival", "ghost", "haunted"]);

        let web = &entries[0];
        assert_eq!(web.catalog_error, None);
        assert_eq!(web.package.status, PackageStatus::Available);
        assert_eq!(
            web.package.deb_packages,
            vec!["libweb_1.0_i386.deb", "web_1.0_i386.deb"]
        );
        assert_eq!(web.package.size, 1.5);
        assert_eq!(web.package.extracted_size, 3.0);
        assert_eq!(web.package.checksums.len(), 2);
        assert_eq!(
            web.details.install_steps,
            vec![vec![
                "libweb_1.0_i386.deb".to_string(),
                "web_1.0_i386.deb".to_string()
            ]]
        );
        assert_eq!(
            web.package.post_install_script.as_deref(),
            Some("web --version")
        );
        assert_eq!(
            web.package
                .conflicts
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
            vec!["rival"]
        );

        let app = &entries[1];
        assert_eq!(
            app.package.deb_packages,
            vec!["app_2.0_all.deb"],
            "web's packages are not shipped again"
        );
        assert_eq!(
            app.package.checksums["app_2.0_all.deb"],
            "a".repeat(64),
            "the pin is advertised"
        );
        assert_eq!(app.details.warnings.len(), 1);

        let rival = &entries[2];
        assert_eq!(
            rival
                .package
                .conflicts
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
            vec!["web"]
        );

        let ghost = &entries[3];
        assert_eq!(ghost.package.status, PackageStatus::Error);
        let reason = ghost.catalog_error.as_deref().unwrap_or_default();
        assert!(
            reason.contains("ghost_1.0_i386.deb is unreadable"),
            "{reason}"
        );

        let haunted = &entries[4];
        assert_eq!(haunted.package.status, PackageStatus::Error);
        assert!(haunted
            .catalog_error
            .as_deref()
            .unwrap_or_default()
            .contains("needs runtime ghost"));
    }

    #[test]
    fn invalid_catalogs_list_every_problem() {
        let text = r#"
[[runtime]]
id = "Bad Id"
name = ""
description = "x"
category = "toys"
version = "1"
dependencies = ["nowhere"]
roots = [{ package = "ok-name", sha256 = "xyz" }, "Not_A_Package"]

[[runtime]]
id = "empty"
name = "Empty"
description = "x"
category = "tool"
version = "1"
roots = []
"#;
        let Err(CatalogError::Invalid { problems, .. }) = Catalog::parse(text, "t") else {
            panic!("expected problems");
        };
        assert_eq!(problems.len(), 7, "{problems:?}");
        assert!(matches!(
            Catalog::parse("[[runtime]]\nid = 1\n", "t"),
            Err(CatalogError::Syntax { .. })
        ));
        assert!(matches!(
            Catalog::parse("[[runtime]]\nid = \"x1\"\nname = \"x\"\ndescription = \"\"\ncategory = \"tool\"\nversion = \"1\"\nroots = [\"x1\"]\nsurprise = true\n", "t"),
            Err(CatalogError::Syntax { .. })
        ));
    }

    fn ids(catalog: &Catalog) -> BTreeSet<&str> {
        catalog.runtimes.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn the_builtin_catalog_is_valid_and_complete() {
        let required = [
            "busybox-httpd",
            "nginx",
            "python-311",
            "nodejs-18",
            "sqlite",
            "git",
            "curl",
        ];
        let catalog = Catalog::parse(BUILTIN_CATALOG, "builtin").expect("valid");
        for id in required {
            assert!(ids(&catalog).contains(id), "{id}");
        }
        assert!(!ids(&catalog).contains("tampered-demo"));
        assert_eq!(catalog.fixture_roots().len(), 0);

        let source = CatalogSource {
            origin: CatalogOrigin::Builtin,
            test_fixtures: true,
        };
        let with_fixtures = source.load().expect("valid").expect("a catalog");
        for id in required.into_iter().chain(["tampered-demo"]) {
            assert!(ids(&with_fixtures).contains(id), "{id}");
        }
        assert_eq!(with_fixtures.fixture_roots().len(), 1);
    }

    #[test]
    fn sources_resolve_files_defaults_and_the_builtin_copy() {
        assert_eq!(
            CatalogOrigin::from_config(Some(Path::new("/x.toml"))),
            CatalogOrigin::File("/x.toml".into())
        );
        let source = |origin: CatalogOrigin, test_fixtures: bool| CatalogSource {
            origin,
            test_fixtures,
        };
        let absent = || CatalogOrigin::File("/nonexistent/catalog.toml".into());
        assert!(matches!(source(absent(), false).load(), Ok(None)));
        let fixtures_only = source(absent(), true).load().expect("valid").expect("some");
        assert_eq!(ids(&fixtures_only), BTreeSet::from(["tampered-demo"]));
        assert!(matches!(
            source(CatalogOrigin::Builtin, false).load(),
            Ok(Some(_))
        ));
        assert_eq!(
            source(CatalogOrigin::Builtin, false).describe(),
            "the built-in catalog"
        );
        assert_eq!(
            source(CatalogOrigin::Builtin, true).describe(),
            "the built-in catalog with the test fixtures"
        );
    }
}
