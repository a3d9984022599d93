//! The `.deb` closure of a runtime and its install order (pure: no IO).
//!
//! **Closure.** Start from the runtime's root packages (always shipped, even when the base
//! image has them, so every runtime has something to verify and install). For every
//! Pre-Depends and Depends group of every chosen package: if any alternative is already
//! satisfied — by a chosen package, by a package of a runtime this one depends on, or by
//! the base image (by name and version, or by a Provides) — nothing is added; otherwise the
//! first alternative the repository can satisfy (by name, then by a provider) is chosen.
//!
//! **Order.** dpkg must have a package's Pre-Depends *configured* before it even unpacks
//! the package, while Depends only have to be configured together. Debian has real Depends
//! cycles (libc6 ↔ libgcc-s1, perl ↔ perl-modules, …). So the edges go into
//! [`Graph`] Pre-Depends first, then Depends; a Depends edge that would close a cycle is
//! dropped (and reported), a Pre-Depends edge never is: a Pre-Depends cycle is an error.
//!
//! **Steps.** The members of a dependency cycle (a strongly connected component over all
//! edges, dropped ones included) must be installed by one `dpkg -i` call, and a package must
//! not share a call with its Pre-Depends. [`Resolution::steps`] groups the closure into the
//! fewest such calls, in order: each step is one `dpkg -i` of all its files. (A cycle with a
//! Pre-Depends inside it can't be installed by `dpkg -i` calls alone; it is split at that
//! Pre-Depends, and the earlier part stays unconfigured until `dpkg --configure -a`.)

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::base::BaseImage;
use super::control::{format_alternatives, Control, Relation, GUEST_ARCH};
use super::version;
use crate::domain::graph::{EdgeKind, Graph, GraphError};

/// One installable package version and the file it comes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub control: Control,
    pub file_name: String,
    pub size_bytes: u64,
    pub sha256: String,
}

impl Candidate {
    /// The package name.
    pub fn name(&self) -> &str {
        &self.control.package
    }
}

/// Why a closure could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("root package '{0}' has no i386 .deb in the repository")]
    MissingRoot(String),
    #[error("{package} needs '{dependency}', which neither the base image nor the repository has")]
    Unsatisfiable { package: String, dependency: String },
    #[error("{package} needs '{dependency}', but {chosen} is already part of the closure")]
    VersionClash {
        package: String,
        dependency: String,
        chosen: String,
    },
    #[error("Pre-Depends cycle: {}", .0.join(" -> "))]
    PreDependsCycle(Vec<String>),
    #[error("{package} conflicts with {other} ({relation}), both in the closure")]
    Conflict {
        package: String,
        other: String,
        relation: String,
    },
    #[error("{package} conflicts with {other} ({relation}) of the base image")]
    ConflictsWithBase {
        package: String,
        other: String,
        relation: String,
    },
}

/// Every package version the repository offers for the guest's architecture.
#[derive(Debug, Clone, Default)]
pub struct Universe {
    /// Name → candidates, highest version first.
    by_name: BTreeMap<String, Vec<Candidate>>,
    /// Provided name → (provider name, provider version, provided version).
    providers: BTreeMap<String, Vec<(String, String, Option<String>)>>,
}

impl Universe {
    /// Indexes the candidates that fit the guest (`i386` or `all`); others are ignored.
    pub fn new(candidates: impl IntoIterator<Item = Candidate>) -> Self {
        let mut universe = Universe::default();
        for candidate in candidates {
            if !candidate.control.fits_guest() {
                continue;
            }
            for provided in &candidate.control.provides {
                universe
                    .providers
                    .entry(provided.name.clone())
                    .or_default()
                    .push((
                        candidate.control.package.clone(),
                        candidate.control.version.clone(),
                        provided.version.as_ref().map(|(_, v)| v.clone()),
                    ));
            }
            let versions = universe
                .by_name
                .entry(candidate.control.package.clone())
                .or_default();
            if !versions
                .iter()
                .any(|c| c.control.version == candidate.control.version)
            {
                versions.push(candidate);
            }
        }
        for versions in universe.by_name.values_mut() {
            versions.sort_by(|a, b| version::compare(&b.control.version, &a.control.version));
        }
        for providers in universe.providers.values_mut() {
            providers.sort();
        }
        universe
    }

    /// Number of distinct package names.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when the repository offers nothing.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The highest version of `name`.
    pub fn best(&self, name: &str) -> Option<&Candidate> {
        self.by_name.get(name).and_then(|versions| versions.first())
    }

    /// The best candidate satisfying `relation`: the highest acceptable version of the
    /// name itself, else the first provider (by name) whose provided version is acceptable.
    pub fn find(&self, relation: &Relation) -> Option<&Candidate> {
        if let Some(found) = self.by_name.get(&relation.name).and_then(|versions| {
            versions
                .iter()
                .find(|c| relation.accepts(Some(&c.control.version)))
        }) {
            return Some(found);
        }
        self.providers
            .get(&relation.name)?
            .iter()
            .filter(|(_, _, provided)| relation.accepts(provided.as_deref()))
            .find_map(|(name, version, _)| {
                self.by_name
                    .get(name)?
                    .iter()
                    .find(|c| &c.control.version == version)
            })
    }
}

/// A resolved closure: what to install, in which order and in which `dpkg -i` steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The chosen packages by name.
    pub packages: BTreeMap<String, Candidate>,
    /// `dpkg -i` calls in order; each lists package names.
    pub steps: Vec<Vec<String>>,
    /// Depends edges dropped to break cycles: (dependent, dependency).
    pub broken_edges: Vec<(String, String)>,
}

impl Resolution {
    /// Package names in install order (the steps, flattened).
    pub fn order(&self) -> Vec<String> {
        self.steps.iter().flatten().cloned().collect()
    }

    /// Candidates in install order.
    pub fn candidates(&self) -> Vec<&Candidate> {
        self.order()
            .iter()
            .filter_map(|name| self.packages.get(name))
            .collect()
    }
}

/// The first member of `set` satisfying `relation` (by name, else by a Provides).
fn satisfier<'a>(relation: &Relation, set: &'a BTreeMap<String, Candidate>) -> Option<&'a str> {
    if let Some(candidate) = set.get(&relation.name) {
        if relation.accepts(Some(&candidate.control.version)) {
            return Some(candidate.name());
        }
    }
    set.values().find_map(|candidate| {
        candidate
            .control
            .provides
            .iter()
            .any(|provided| {
                provided.name == relation.name
                    && relation.accepts(provided.version.as_ref().map(|(_, v)| v.as_str()))
            })
            .then(|| candidate.name())
    })
}

/// The groups of a package's Pre-Depends then Depends that apply to the guest.
fn groups(control: &Control) -> impl Iterator<Item = (EdgeKind, Vec<&Relation>)> {
    let pre = control
        .pre_depends
        .iter()
        .map(|g| (EdgeKind::PreDepends, g));
    let dep = control.depends.iter().map(|g| (EdgeKind::Depends, g));
    pre.chain(dep)
        .map(|(kind, group)| {
            let applicable: Vec<&Relation> =
                group.iter().filter(|r| r.applies_to(GUEST_ARCH)).collect();
            (kind, applicable)
        })
        .filter(|(_, group)| !group.is_empty())
}

/// Resolves the closure of `roots` against the repository, minus what the base image and
/// the packages of the runtimes this one depends on (`installed`) already provide.
pub fn resolve(
    universe: &Universe,
    base: &BaseImage,
    installed: &BTreeMap<String, Candidate>,
    roots: &[String],
) -> Result<Resolution, ResolveError> {
    let mut chosen: BTreeMap<String, Candidate> = BTreeMap::new();
    let mut queue = VecDeque::new();
    for root in roots {
        let candidate = universe
            .best(root)
            .ok_or_else(|| ResolveError::MissingRoot(root.clone()))?;
        if chosen.insert(root.clone(), candidate.clone()).is_none() {
            queue.push_back(root.clone());
        }
    }
    while let Some(name) = queue.pop_front() {
        let Some(control) = chosen.get(&name).map(|c| c.control.clone()) else {
            continue;
        };
        for (_, group) in groups(&control) {
            let satisfied = group.iter().any(|relation| {
                satisfier(relation, &chosen).is_some()
                    || satisfier(relation, installed).is_some()
                    || base.satisfies(relation)
            });
            if satisfied {
                continue;
            }
            let dependency =
                format_alternatives(&group.iter().map(|r| (*r).clone()).collect::<Vec<_>>());
            let Some(pick) = group.iter().find_map(|relation| universe.find(relation)) else {
                return Err(ResolveError::Unsatisfiable {
                    package: name.clone(),
                    dependency,
                });
            };
            if let Some(existing) = chosen.get(pick.name()) {
                return Err(ResolveError::VersionClash {
                    package: name.clone(),
                    dependency,
                    chosen: format!("{} {}", existing.name(), existing.control.version),
                });
            }
            queue.push_back(pick.name().to_string());
            chosen.insert(pick.name().to_string(), pick.clone());
        }
    }
    check_conflicts(&chosen, base)?;
    let (steps, broken_edges) = order(&chosen)?;
    Ok(Resolution {
        packages: chosen,
        steps,
        broken_edges,
    })
}

/// Conflicts and Breaks within the closure and against the base image.
fn check_conflicts(
    chosen: &BTreeMap<String, Candidate>,
    base: &BaseImage,
) -> Result<(), ResolveError> {
    for candidate in chosen.values() {
        let control = &candidate.control;
        for relation in control.conflicts.iter().chain(&control.breaks) {
            if !relation.applies_to(GUEST_ARCH) {
                continue;
            }
            if let Some(other) = conflicting(relation, chosen, control.package.as_str()) {
                return Err(ResolveError::Conflict {
                    package: control.package.clone(),
                    other,
                    relation: relation.to_string(),
                });
            }
            let is_conflicts = control.conflicts.contains(relation);
            if let Some(version) = base.packages.get(&relation.name) {
                // Unknown base versions only meet unversioned Conflicts.
                let hits = match version {
                    Some(version) => relation.accepts(Some(version)),
                    None => is_conflicts && relation.version.is_none(),
                };
                let replaced = chosen.contains_key(&relation.name);
                if hits && !replaced && relation.name != control.package {
                    return Err(ResolveError::ConflictsWithBase {
                        package: control.package.clone(),
                        other: relation.name.clone(),
                        relation: relation.to_string(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The member of `set` (other than `own`) that `relation` (a Conflicts or Breaks) hits.
pub fn conflicting(
    relation: &Relation,
    set: &BTreeMap<String, Candidate>,
    own: &str,
) -> Option<String> {
    if relation.name == own {
        return None;
    }
    if let Some(candidate) = set.get(&relation.name) {
        if relation.accepts(Some(&candidate.control.version)) {
            return Some(candidate.name().to_string());
        }
    }
    set.values()
        .filter(|candidate| candidate.name() != own)
        .find(|candidate| {
            candidate.control.provides.iter().any(|provided| {
                provided.name == relation.name
                    && relation.accepts(provided.version.as_ref().map(|(_, v)| v.as_str()))
            })
        })
        .map(|candidate| candidate.name().to_string())
}

type Edges = BTreeSet<(String, String)>;
/// Install steps, and the Depends edges dropped to break cycles.
type Ordered = (Vec<Vec<String>>, Vec<(String, String)>);

/// The install steps of a closure and the Depends edges dropped to break cycles.
fn order(chosen: &BTreeMap<String, Candidate>) -> Result<Ordered, ResolveError> {
    let mut pre_edges = Edges::new();
    let mut dep_edges = Edges::new();
    for (name, candidate) in chosen {
        for (kind, group) in groups(&candidate.control) {
            let target = group
                .iter()
                .find_map(|relation| satisfier(relation, chosen))
                .filter(|target| target != name);
            if let Some(target) = target {
                let edge = (name.clone(), target.to_string());
                match kind {
                    EdgeKind::PreDepends => pre_edges.insert(edge),
                    EdgeKind::Depends => dep_edges.insert(edge),
                };
            }
        }
    }
    dep_edges.retain(|edge| !pre_edges.contains(edge));

    // Member level: Pre-Depends first (never dropped), then Depends (dropped on a cycle).
    let mut graph: Graph<String> = Graph::new();
    for name in chosen.keys() {
        graph.add_node(name.clone());
    }
    for (from, to) in &pre_edges {
        graph
            .add_dependency(from.clone(), to.clone(), EdgeKind::PreDepends)
            .map_err(|error| match error {
                GraphError::Cycle { cycle } => ResolveError::PreDependsCycle(cycle),
                GraphError::UnknownNode(node) => ResolveError::PreDependsCycle(vec![node]),
            })?;
    }
    let mut broken = Vec::new();
    for (from, to) in &dep_edges {
        if graph
            .add_dependency(from.clone(), to.clone(), EdgeKind::Depends)
            .is_err()
        {
            broken.push((from.clone(), to.clone()));
        }
    }
    let member_order = graph.full_install_order();
    let position: BTreeMap<&String, usize> = member_order
        .iter()
        .enumerate()
        .map(|(index, name)| (name, index))
        .collect();

    // Strongly connected components over every edge (dropped ones included).
    let mut adjacency: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (from, to) in pre_edges.iter().chain(&dep_edges) {
        adjacency.entry(from).or_default().push(to);
    }
    let reach = |start: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::from([start.clone()]);
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            for next in adjacency.get(node).into_iter().flatten() {
                if seen.insert((*next).clone()) {
                    stack.push(next);
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        chosen.keys().map(|name| (name, reach(name))).collect();
    let mut component_of: BTreeMap<String, String> = BTreeMap::new();
    let mut components: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in chosen.keys() {
        if component_of.contains_key(name) {
            continue;
        }
        let mut members: Vec<String> = reachable
            .get(name)
            .into_iter()
            .flatten()
            .filter(|other| reachable.get(other).is_some_and(|r| r.contains(name)))
            .cloned()
            .collect();
        members.sort_by_key(|member| position.get(member).copied().unwrap_or(usize::MAX));
        // `name` is the smallest member (keys are visited in order), so it names the component.
        for member in &members {
            component_of.insert(member.clone(), name.clone());
        }
        components.insert(name.clone(), members);
    }

    // Component level: an acyclic graph by construction.
    let mut condensed: Graph<String> = Graph::new();
    for key in components.keys() {
        condensed.add_node(key.clone());
    }
    let mut add = |edges: &Edges, kind: EdgeKind| {
        for (from, to) in edges {
            let (Some(a), Some(b)) = (component_of.get(from), component_of.get(to)) else {
                continue;
            };
            if a != b {
                let _ = condensed.add_dependency(a.clone(), b.clone(), kind);
            }
        }
    };
    add(&pre_edges, EdgeKind::PreDepends);
    add(&dep_edges, EdgeKind::Depends);

    let mut steps: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let pre_depends_in = |member: &String, step: &[String]| {
        pre_edges
            .range((member.clone(), String::new())..)
            .take_while(|(from, _)| from == member)
            .any(|(_, to)| step.contains(to))
    };
    for key in condensed.full_install_order() {
        let Some(members) = components.get(&key) else {
            continue;
        };
        if members
            .iter()
            .any(|member| pre_depends_in(member, &current))
            && !current.is_empty()
        {
            steps.push(std::mem::take(&mut current));
        }
        for member in members {
            // Only a Pre-Depends inside the cycle itself can split it.
            if pre_depends_in(member, &current) {
                steps.push(std::mem::take(&mut current));
            }
            current.push(member.clone());
        }
    }
    if !current.is_empty() {
        steps.push(current);
    }
    Ok((steps, broken))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::packages::control::Control;
    use proptest::prelude::*;

    fn candidate(control: &str) -> Candidate {
        let control = Control::parse(control).expect("valid control");
        Candidate {
            file_name: format!(
                "{}_{}_{}.deb",
                control.package,
                version::without_epoch(&control.version),
                control.architecture
            ),
            size_bytes: 1000,
            sha256: "0".repeat(64),
            control,
        }
    }

    fn pkg(name: &str, extra: &str) -> Candidate {
        candidate(&format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: i386\n{extra}"
        ))
    }

    fn base(names: &[(&str, &str)]) -> BaseImage {
        let json = serde_json::json!({
            "debianPackages": names.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()
        });
        BaseImage::from_manifest_json(&json.to_string()).expect("manifest")
    }

    fn run(
        universe: &[Candidate],
        base: &BaseImage,
        roots: &[&str],
    ) -> Result<Resolution, ResolveError> {
        let universe = Universe::new(universe.iter().cloned());
        let roots: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
        resolve(&universe, base, &BTreeMap::new(), &roots)
    }

    #[test]
    fn closures_skip_the_base_image_and_pick_alternatives() {
        let universe = [
            pkg(
                "app",
                "Depends: libfoo (>= 1.0), libc6 (>= 2.34), mta | default-mta, awk\n",
            ),
            pkg("libfoo", "Depends: libc6\n"),
            pkg("default-mta", ""),
            pkg("libc6", ""),
            candidate("Package: amd64-only\nVersion: 1\nArchitecture: amd64\n"),
        ];
        let base = base(&[("libc6", "2.36-9"), ("mawk", "1.3.4")]);
        let resolution = run(&universe, &base, &["app"]).expect("resolves");
        assert_eq!(resolution.order(), vec!["default-mta", "libfoo", "app"]);
        assert_eq!(resolution.steps.len(), 1, "no Pre-Depends: one dpkg call");
        assert!(resolution.broken_edges.is_empty());
        assert_eq!(resolution.candidates().len(), 3);
    }

    #[test]
    fn a_too_old_base_package_is_shipped() {
        let universe = [
            pkg("app", "Depends: libc6 (>= 2.40)\n"),
            candidate("Package: libc6\nVersion: 2.41\nArchitecture: i386\n"),
        ];
        let resolution = run(&universe, &base(&[("libc6", "2.36-9")]), &["app"]).expect("resolves");
        assert_eq!(resolution.order(), vec!["libc6", "app"]);
    }

    #[test]
    fn pre_depends_get_their_own_earlier_step() {
        let universe = [
            pkg("app", "Pre-Depends: helper\nDepends: lib\n"),
            pkg("helper", "Depends: lib\n"),
            pkg("lib", ""),
        ];
        let resolution = run(&universe, &base(&[("dpkg", "1.21")]), &["app"]).expect("resolves");
        assert_eq!(
            resolution.steps,
            vec![
                vec!["lib".to_string(), "helper".to_string()],
                vec!["app".to_string()]
            ]
        );
    }

    #[test]
    fn depends_cycles_are_broken_and_installed_in_one_step() {
        let universe = [
            pkg(
                "perl",
                "Pre-Depends: perl-base\nDepends: perl-modules, libperl\n",
            ),
            pkg("perl-modules", "Depends: perl\n"),
            pkg("libperl", "Depends: perl-modules\n"),
            pkg("perl-base", ""),
        ];
        let resolution = run(&universe, &base(&[("dpkg", "1")]), &["perl"]).expect("resolves");
        assert_eq!(resolution.broken_edges.len(), 1);
        assert_eq!(resolution.steps.len(), 2);
        assert_eq!(resolution.steps[0], vec!["perl-base".to_string()]);
        let cycle: BTreeSet<&String> = resolution.steps[1].iter().collect();
        assert_eq!(cycle.len(), 3);
        assert_eq!(resolution.order().len(), 4);
    }

    #[test]
    fn pre_depends_cycles_are_errors() {
        let universe = [
            pkg("a1", "Pre-Depends: b1\n"),
            pkg("b1", "Pre-Depends: a1\n"),
        ];
        assert!(matches!(
            run(&universe, &base(&[("dpkg", "1")]), &["a1"]),
            Err(ResolveError::PreDependsCycle(_))
        ));
    }

    #[test]
    fn problems_are_reported() {
        let b = base(&[("dpkg", "1"), ("oldlib", "1.0")]);
        let cases: Vec<(Vec<Candidate>, &str, &str)> = vec![
            (vec![], "nothing", "root package 'nothing'"),
            (
                vec![pkg("app", "Depends: ghost (>= 2) | phantom\n")],
                "app",
                "ghost (>= 2) | phantom",
            ),
            (
                vec![
                    pkg("app", "Depends: x1, y1\n"),
                    pkg("x1", ""),
                    pkg("y1", "Conflicts: x1\n"),
                ],
                "app",
                "y1 conflicts with x1",
            ),
            (
                vec![pkg("app", "Breaks: oldlib (<< 2)\n")],
                "app",
                "of the base image",
            ),
            (
                vec![
                    pkg("app", "Depends: z1, w1\n"),
                    pkg("z1", ""),
                    pkg("w1", "Depends: z1 (>= 5)\n"),
                ],
                "app",
                "needs 'z1 (>= 5)'",
            ),
        ];
        for (universe, root, expected) in cases {
            let error = run(&universe, &b, &[root]).expect_err(expected);
            assert!(
                error.to_string().contains(expected),
                "{error} should contain {expected}"
            );
        }
    }

    #[test]
    fn virtual_packages_resolve_through_provides() {
        let universe = [
            pkg("app", "Depends: httpd-cgi (>= 1), awk\n"),
            pkg("server", "Provides: httpd-cgi (= 2)\n"),
            pkg("gawk", "Provides: awk\n"),
        ];
        let resolution = run(&universe, &base(&[("dpkg", "1")]), &["app"]).expect("resolves");
        assert_eq!(resolution.order(), vec!["gawk", "server", "app"]);
        let universe = Universe::new(universe.iter().cloned());
        assert_eq!(universe.len(), 3);
        assert!(!universe.is_empty());
        let unversioned = parse("httpd-cgi (>= 3)");
        assert!(universe.find(&unversioned).is_none());
    }

    #[test]
    fn packages_of_dependency_runtimes_are_not_shipped_again() {
        let universe = [pkg("app", "Depends: python3\n"), pkg("python3", "")];
        let universe_index = Universe::new(universe.iter().cloned());
        let installed = BTreeMap::from([("python3".to_string(), universe[1].clone())]);
        let resolution = resolve(
            &universe_index,
            &base(&[("dpkg", "1")]),
            &installed,
            &["app".into()],
        )
        .expect("resolves");
        assert_eq!(resolution.order(), vec!["app"]);
    }

    #[test]
    fn the_highest_version_is_chosen() {
        let universe = [
            candidate("Package: lib1\nVersion: 1.0\nArchitecture: i386\n"),
            candidate("Package: lib1\nVersion: 1.10\nArchitecture: i386\n"),
            candidate("Package: lib1\nVersion: 1.9\nArchitecture: i386\n"),
        ];
        let universe = Universe::new(universe);
        assert_eq!(
            universe.best("lib1").map(|c| c.control.version.as_str()),
            Some("1.10")
        );
        assert_eq!(
            universe
                .find(&parse("lib1 (<< 1.5)"))
                .map(|c| c.control.version.as_str()),
            Some("1.0")
        );
    }

    fn parse(text: &str) -> Relation {
        crate::server::packages::control::parse_relations("Depends", text).expect("valid")[0][0]
            .clone()
    }

    /// Random graphs with Pre-Depends only from higher to lower index (so no Pre-Depends
    /// cycle) and Depends in any direction (so Depends cycles happen).
    fn random_universe() -> impl Strategy<Value = Vec<Candidate>> {
        (2usize..25).prop_flat_map(|size| {
            let edge = (0..size, 0..size, any::<bool>());
            proptest::collection::vec(edge, 0..60).prop_map(move |edges| {
                (0..size)
                    .map(|index| {
                        let pre: Vec<String> = edges
                            .iter()
                            .filter(|(from, to, pre)| *pre && *from == index && to < from)
                            .map(|(_, to, _)| format!("p{to:02}"))
                            .collect();
                        let dep: Vec<String> = edges
                            .iter()
                            .filter(|(from, to, pre)| !*pre && *from == index && to != from)
                            .map(|(_, to, _)| format!("p{to:02}"))
                            .collect();
                        let mut extra = String::new();
                        if !pre.is_empty() {
                            extra.push_str(&format!("Pre-Depends: {}\n", pre.join(", ")));
                        }
                        if !dep.is_empty() {
                            extra.push_str(&format!("Depends: {}\n", dep.join(", ")));
                        }
                        pkg(&format!("p{index:02}"), &extra)
                    })
                    .collect()
            })
        })
    }

    proptest! {
        #[test]
        fn steps_honour_pre_depends_and_cover_the_closure(universe in random_universe()) {
            let resolution = run(&universe, &base(&[("dpkg", "1")]), &["p00", "p01"]).expect("no Pre-Depends cycle");
            let order = resolution.order();
            let unique: BTreeSet<&String> = order.iter().collect();
            prop_assert_eq!(unique.len(), order.len());
            prop_assert_eq!(order.len(), resolution.packages.len());
            let step_of: BTreeMap<&String, usize> = resolution
                .steps
                .iter()
                .enumerate()
                .flat_map(|(index, step)| step.iter().map(move |name| (name, index)))
                .collect();
            let position: BTreeMap<&String, usize> = order.iter().enumerate().map(|(i, n)| (n, i)).collect();
            for (name, candidate) in &resolution.packages {
                for group in &candidate.control.pre_depends {
                    let target = &group[0].name;
                    prop_assert!(step_of[target] < step_of[name], "{} pre-depends on {}", name, target);
                }
                for group in &candidate.control.depends {
                    let target = &group[0].name;
                    let broken = resolution.broken_edges.contains(&(name.clone(), target.clone()));
                    let pre = candidate.control.pre_depends.iter().any(|g| &g[0].name == target);
                    prop_assert!(
                        broken || pre || position[target] < position[name],
                        "{} depends on {}", name, target
                    );
                }
            }
        }
    }
}
