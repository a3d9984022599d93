//! Dependency graph over packages and apps (business rule 2): cycle refusal that names the
//! cycle, install order with Pre-Depends first, conflicts, reverse dependencies, removal order.
//!
//! [`Graph`] is generic over its ids so it serves both the catalog level ([`PackageId`],
//! where every edge is [`EdgeKind::Depends`]) and the `.deb` level (Depends vs Pre-Depends).
//! The graph is acyclic by construction: [`Graph::add_dependency`] refuses an edge that would
//! close a cycle, so every order it computes exists.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::model::{self, Application, ApplicationId, PackageId, RuntimePackage};

/// How strongly one package needs another.
///
/// `PreDepends` sorts before `Depends`: dpkg must have a Pre-Depends configured before the
/// dependent package is even unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EdgeKind {
    PreDepends,
    Depends,
}

/// Why the graph refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The edge would close this cycle; the first and last element are the same package.
    #[error("dependency cycle: {}", .cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
    #[error("unknown package '{0}'")]
    UnknownNode(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node<Id> {
    /// Sorted by (kind, id): Pre-Depends first.
    dependencies: Vec<(EdgeKind, Id)>,
    dependents: BTreeSet<Id>,
    conflicts: BTreeSet<Id>,
}

impl<Id> Default for Node<Id> {
    fn default() -> Self {
        Node {
            dependencies: Vec::new(),
            dependents: BTreeSet::new(),
            conflicts: BTreeSet::new(),
        }
    }
}

/// An acyclic dependency graph with a symmetric conflict relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph<Id> {
    nodes: BTreeMap<Id, Node<Id>>,
}

impl<Id> Default for Graph<Id> {
    fn default() -> Self {
        Graph {
            nodes: BTreeMap::new(),
        }
    }
}

impl<Id: Ord + Clone + fmt::Display> Graph<Id> {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a package with no edges (nothing happens if it is present).
    pub fn add_node(&mut self, id: Id) {
        self.nodes.entry(id).or_default();
    }

    /// True when the package is in the graph.
    pub fn contains(&self, id: &Id) -> bool {
        self.nodes.contains_key(id)
    }

    /// Number of packages.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the graph has no packages.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every package, in id order.
    pub fn ids(&self) -> impl Iterator<Item = &Id> {
        self.nodes.keys()
    }

    /// Records that `dependent` needs `dependency`, adding both as needed. An edge that
    /// would close a cycle (including a self-edge) is refused and the graph stays as it was.
    /// A repeated edge keeps the stronger kind.
    pub fn add_dependency(
        &mut self,
        dependent: Id,
        dependency: Id,
        kind: EdgeKind,
    ) -> Result<(), GraphError> {
        if let Some(path) = self.path(&dependency, &dependent) {
            let mut cycle = vec![dependent.to_string()];
            cycle.extend(path.iter().map(ToString::to_string));
            return Err(GraphError::Cycle { cycle });
        }
        self.add_node(dependency.clone());
        let node = self.nodes.entry(dependent.clone()).or_default();
        match node
            .dependencies
            .iter()
            .position(|(_, id)| *id == dependency)
        {
            Some(index) if node.dependencies[index].0 <= kind => return Ok(()),
            Some(index) => {
                node.dependencies.remove(index);
            }
            None => {}
        }
        let slot = node
            .dependencies
            .partition_point(|(existing_kind, id)| (*existing_kind, id) < (kind, &dependency));
        node.dependencies.insert(slot, (kind, dependency.clone()));
        if let Some(target) = self.nodes.get_mut(&dependency) {
            target.dependents.insert(dependent);
        }
        Ok(())
    }

    /// Records that `first` and `second` cannot be installed together.
    pub fn add_conflict(&mut self, first: Id, second: Id) {
        self.nodes
            .entry(first.clone())
            .or_default()
            .conflicts
            .insert(second.clone());
        self.nodes
            .entry(second)
            .or_default()
            .conflicts
            .insert(first);
    }

    /// Direct dependencies of `id`, Pre-Depends first.
    pub fn dependencies_of(&self, id: &Id) -> impl Iterator<Item = (EdgeKind, &Id)> {
        self.nodes
            .get(id)
            .into_iter()
            .flat_map(|node| node.dependencies.iter().map(|(kind, id)| (*kind, id)))
    }

    /// Packages that directly depend on `id` (reverse dependencies), in id order.
    pub fn dependents_of(&self, id: &Id) -> impl Iterator<Item = &Id> {
        self.nodes
            .get(id)
            .into_iter()
            .flat_map(|node| node.dependents.iter())
    }

    /// Packages that `id` conflicts with, in id order.
    pub fn conflicts_of(&self, id: &Id) -> impl Iterator<Item = &Id> {
        self.nodes
            .get(id)
            .into_iter()
            .flat_map(|node| node.conflicts.iter())
    }

    /// A path `from → … → to` along dependency edges, both ends included.
    pub fn path(&self, from: &Id, to: &Id) -> Option<Vec<Id>> {
        let mut came_from: BTreeMap<&Id, &Id> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(current) = queue.pop_front() {
            if current == to {
                let mut path = vec![current.clone()];
                let mut step = current;
                while let Some(previous) = came_from.get(step) {
                    path.push((*previous).clone());
                    step = previous;
                }
                path.reverse();
                return Some(path);
            }
            for (_, next) in self.dependencies_of(current) {
                if seen.insert(next) {
                    came_from.insert(next, current);
                    queue.push_back(next);
                }
            }
        }
        None
    }

    /// The order in which to install `targets` and everything they need: each package
    /// after all its dependencies, and a package's Pre-Depends before its Depends.
    pub fn install_order<'a>(
        &self,
        targets: impl IntoIterator<Item = &'a Id>,
    ) -> Result<Vec<Id>, GraphError>
    where
        Id: 'a,
    {
        self.post_order(targets, |node| {
            Box::new(node.dependencies.iter().map(|(_, id)| id))
        })
    }

    /// Install order of the whole graph.
    pub fn full_install_order(&self) -> Vec<Id> {
        self.install_order(self.nodes.keys()).unwrap_or_default()
    }

    /// What to install, in order, to get `targets` when `installed` is already there.
    pub fn install_plan<'a>(
        &self,
        targets: impl IntoIterator<Item = &'a Id>,
        installed: &BTreeSet<Id>,
    ) -> Result<Vec<Id>, GraphError>
    where
        Id: 'a,
    {
        let mut order = self.install_order(targets)?;
        order.retain(|id| !installed.contains(id));
        Ok(order)
    }

    /// `targets` and everything that depends on them, in the order to remove them: each
    /// package before anything it depends on.
    pub fn removal_order<'a>(
        &self,
        targets: impl IntoIterator<Item = &'a Id>,
    ) -> Result<Vec<Id>, GraphError>
    where
        Id: 'a,
    {
        self.post_order(targets, |node| Box::new(node.dependents.iter()))
    }

    /// Everything that depends on `id`, directly or not.
    pub fn transitive_dependents(&self, id: &Id) -> Result<BTreeSet<Id>, GraphError> {
        let mut dependents: BTreeSet<Id> = self.removal_order([id])?.into_iter().collect();
        dependents.remove(id);
        Ok(dependents)
    }

    /// Every conflicting pair within `ids` (each pair once, smaller id first).
    pub fn conflicts_among(&self, ids: &BTreeSet<Id>) -> Vec<(Id, Id)> {
        ids.iter()
            .flat_map(|id| {
                self.conflicts_of(id)
                    .filter(move |other| *other > id && ids.contains(*other))
                    .map(move |other| (id.clone(), other.clone()))
            })
            .collect()
    }

    /// Iterative depth-first post-order from `roots` along `next`, so deep graphs cannot
    /// overflow the (small, in wasm) stack.
    fn post_order<'a>(
        &self,
        roots: impl IntoIterator<Item = &'a Id>,
        next: impl Fn(&Node<Id>) -> Box<dyn Iterator<Item = &Id> + '_>,
    ) -> Result<Vec<Id>, GraphError>
    where
        Id: 'a,
    {
        let mut order = Vec::new();
        let mut visited: BTreeSet<&Id> = BTreeSet::new();
        for root in roots {
            let Some((root, root_node)) = self.nodes.get_key_value(root) else {
                return Err(GraphError::UnknownNode(root.to_string()));
            };
            if !visited.insert(root) {
                continue;
            }
            let mut stack = vec![(root, next(root_node))];
            while let Some((id, children)) = stack.last_mut() {
                let current = *id;
                match children.find(|child| !visited.contains(child)) {
                    Some(child) => {
                        visited.insert(child);
                        let child_node = self.nodes.get(child).map(&next);
                        stack.push((
                            child,
                            child_node.unwrap_or_else(|| Box::new(std::iter::empty())),
                        ));
                    }
                    None => {
                        order.push(current.clone());
                        stack.pop();
                    }
                }
            }
        }
        Ok(order)
    }
}

/// The graph of runtime packages, at catalog level.
pub type PackageGraph = Graph<PackageId>;

/// A package graph built from data, with the edges it had to refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltGraph {
    pub graph: PackageGraph,
    /// One entry per refused edge (each names its cycle).
    pub refused: Vec<GraphError>,
}

impl PackageGraph {
    /// Builds the graph of `packages`: their dependencies and conflicts. Edges that would
    /// close a cycle are refused and reported; dependencies on ids outside `packages`
    /// become nodes without a package.
    pub fn from_packages<'a>(packages: impl IntoIterator<Item = &'a RuntimePackage>) -> BuiltGraph {
        let mut graph = PackageGraph::new();
        let mut refused = Vec::new();
        for package in packages {
            graph.add_node(package.id.clone());
            for dependency in &package.dependencies {
                if let Err(error) =
                    graph.add_dependency(package.id.clone(), dependency.clone(), EdgeKind::Depends)
                {
                    refused.push(error);
                }
            }
            for conflict in &package.conflicts {
                graph.add_conflict(package.id.clone(), conflict.clone());
            }
        }
        BuiltGraph { graph, refused }
    }
}

/// Runtime → ids of the apps that require it (optional runtimes are not requirements).
pub fn runtime_dependents<'a>(
    applications: impl IntoIterator<Item = &'a Application>,
) -> BTreeMap<PackageId, Vec<ApplicationId>> {
    let mut dependents: BTreeMap<PackageId, Vec<ApplicationId>> = BTreeMap::new();
    for application in applications {
        for runtime in &application.runtime.required_runtimes {
            let apps = dependents.entry(runtime.clone()).or_default();
            if !apps.contains(&application.id) {
                apps.push(application.id);
            }
        }
    }
    dependents
}

/// The seed's `DependencyGraph` record for the given packages and apps.
pub fn dependency_graph_record(
    packages: &[RuntimePackage],
    applications: &[Application],
) -> model::DependencyGraph {
    model::DependencyGraph {
        runtime_dependencies: runtime_dependents(applications),
        package_dependencies: packages
            .iter()
            .map(|package| (package.id.clone(), package.dependencies.clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn graph(edges: &[(&'static str, &'static str, EdgeKind)]) -> Graph<&'static str> {
        let mut graph = Graph::new();
        for (dependent, dependency, kind) in edges {
            graph
                .add_dependency(*dependent, *dependency, *kind)
                .expect("acyclic test graph");
        }
        graph
    }

    fn position(order: &[&str], id: &str) -> usize {
        order.iter().position(|x| *x == id).unwrap_or(usize::MAX)
    }

    #[test]
    fn cycles_are_refused_and_named() {
        /// Existing edges, the edge to add, the cycle it must be refused with.
        type Row<'a> = (&'a [(&'a str, &'a str)], (&'a str, &'a str), &'a [&'a str]);
        let cases: &[Row] = &[
            (&[], ("a", "a"), &["a", "a"]),
            (&[("a", "b")], ("b", "a"), &["b", "a", "b"]),
            (&[("a", "b"), ("b", "c")], ("c", "a"), &["c", "a", "b", "c"]),
        ];
        for (edges, (from, to), cycle) in cases {
            let mut graph: Graph<&str> = Graph::new();
            for (a, b) in *edges {
                graph
                    .add_dependency(a, b, EdgeKind::Depends)
                    .expect("acyclic");
            }
            let before = graph.clone();
            let error = graph.add_dependency(from, to, EdgeKind::Depends);
            let expected: Vec<String> = cycle.iter().map(|s| s.to_string()).collect();
            assert_eq!(error, Err(GraphError::Cycle { cycle: expected }));
            assert_eq!(graph, before, "refused edge must not change the graph");
        }
        let message = GraphError::Cycle {
            cycle: vec!["a".into(), "b".into(), "a".into()],
        }
        .to_string();
        assert_eq!(message, "dependency cycle: a -> b -> a");
    }

    #[test]
    fn install_order_puts_pre_depends_first() {
        let graph = graph(&[
            ("app", "libz", EdgeKind::Depends),
            ("app", "libc", EdgeKind::PreDepends),
            ("libz", "libc", EdgeKind::Depends),
            ("app", "zz-base", EdgeKind::PreDepends),
        ]);
        let order = graph.install_order([&"app"]).expect("known");
        assert_eq!(order, vec!["libc", "zz-base", "libz", "app"]);
        let deps: Vec<_> = graph.dependencies_of(&"app").collect();
        assert_eq!(deps[0], (EdgeKind::PreDepends, &"libc"));
        assert_eq!(graph.full_install_order().len(), 4);
        assert_eq!(
            graph.install_order([&"nope"]),
            Err(GraphError::UnknownNode("nope".into()))
        );
    }

    #[test]
    fn repeated_edge_keeps_the_stronger_kind() {
        let mut graph = graph(&[("a", "b", EdgeKind::Depends)]);
        graph
            .add_dependency("a", "b", EdgeKind::PreDepends)
            .expect("ok");
        graph
            .add_dependency("a", "b", EdgeKind::Depends)
            .expect("ok");
        let deps: Vec<_> = graph.dependencies_of(&"a").collect();
        assert_eq!(deps, vec![(EdgeKind::PreDepends, &"b")]);
    }

    #[test]
    fn install_plan_skips_installed() {
        let graph = graph(&[("a", "b", EdgeKind::Depends), ("b", "c", EdgeKind::Depends)]);
        let installed = BTreeSet::from(["c"]);
        assert_eq!(graph.install_plan([&"a"], &installed), Ok(vec!["b", "a"]));
    }

    #[test]
    fn reverse_dependencies_and_removal_order() {
        let graph = graph(&[
            ("django", "python", EdgeKind::Depends),
            ("flask", "python", EdgeKind::Depends),
            ("python", "libc", EdgeKind::Depends),
            ("site", "django", EdgeKind::Depends),
        ]);
        let direct: Vec<_> = graph.dependents_of(&"python").copied().collect();
        assert_eq!(direct, vec!["django", "flask"]);
        let all = graph.transitive_dependents(&"python").expect("known");
        assert_eq!(all, BTreeSet::from(["django", "flask", "site"]));
        let order = graph.removal_order([&"python"]).expect("known");
        assert_eq!(order.len(), 4);
        assert!(position(&order, "site") < position(&order, "django"));
        assert!(position(&order, "django") < position(&order, "python"));
        assert!(position(&order, "flask") < position(&order, "python"));
        assert_eq!(order.last(), Some(&"python"));
    }

    #[test]
    fn conflicts_are_symmetric_and_found_among_a_set() {
        let mut graph: Graph<&str> = Graph::new();
        graph.add_conflict("nodejs-18", "nodejs-20");
        graph.add_node("nginx");
        let found = graph.conflicts_among(&BTreeSet::from(["nodejs-20", "nodejs-18", "nginx"]));
        assert_eq!(found, vec![("nodejs-18", "nodejs-20")]);
        assert_eq!(
            graph.conflicts_of(&"nodejs-20").collect::<Vec<_>>(),
            vec![&"nodejs-18"]
        );
        assert!(graph
            .conflicts_among(&BTreeSet::from(["nodejs-20", "nginx"]))
            .is_empty());
        assert_eq!(graph.len(), 3);
        assert!(!graph.is_empty());
        assert!(graph.contains(&"nginx"));
        assert_eq!(graph.ids().count(), 3);
    }

    #[test]
    fn package_graph_from_packages_reports_refused_edges_and_records() {
        let id = |s: &str| PackageId::parse(s).expect("valid id");
        let mut python =
            RuntimePackage::new(id("python-311"), "Python", Default::default(), "3.11.2");
        python.dependencies = vec![id("django")];
        let mut django = RuntimePackage::new(id("django"), "Django", Default::default(), "4.2");
        django.dependencies = vec![id("python-311")];
        django.conflicts = vec![id("flask")];
        let built = PackageGraph::from_packages([&python, &django]);
        assert_eq!(built.refused.len(), 1);
        assert!(built.refused[0]
            .to_string()
            .contains("django -> python-311 -> django"));
        assert_eq!(built.graph.conflicts_of(&id("flask")).count(), 1);

        let now = chrono::DateTime::<chrono::Utc>::default();
        let mut app = Application::new(
            uuid::Uuid::nil(),
            model::AppName::parse("blog").expect("valid"),
            Default::default(),
            Default::default(),
            now,
        );
        app.runtime.required_runtimes = vec![id("python-311"), id("python-311")];
        app.runtime.optional_runtimes = vec![id("nginx")];
        let record = dependency_graph_record(&[python, django], &[app]);
        assert_eq!(
            record.runtime_dependencies.get(&id("python-311")),
            Some(&vec![uuid::Uuid::nil()])
        );
        assert!(!record.runtime_dependencies.contains_key(&id("nginx")));
        assert_eq!(record.package_dependencies.len(), 2);
    }

    /// Random DAGs: an edge only goes from a higher to a lower index.
    fn dag() -> impl Strategy<Value = (usize, Vec<(usize, usize, bool)>)> {
        (2usize..40).prop_flat_map(|size| {
            let edge = (1..size).prop_flat_map(|from| (Just(from), 0..from, any::<bool>()));
            (Just(size), proptest::collection::vec(edge, 0..120))
        })
    }

    fn build(size: usize, edges: &[(usize, usize, bool)]) -> Graph<String> {
        let mut graph = Graph::new();
        for index in 0..size {
            graph.add_node(format!("p{index:02}"));
        }
        for (from, to, pre) in edges {
            let kind = if *pre {
                EdgeKind::PreDepends
            } else {
                EdgeKind::Depends
            };
            let added = graph.add_dependency(format!("p{from:02}"), format!("p{to:02}"), kind);
            assert!(added.is_ok());
        }
        graph
    }

    proptest! {
        #[test]
        fn acyclic_graph_orders_every_package_after_its_dependencies((size, edges) in dag()) {
            let graph = build(size, &edges);
            let order = graph.full_install_order();
            prop_assert_eq!(order.len(), size);
            let index: BTreeMap<&String, usize> = order.iter().enumerate().map(|(i, id)| (id, i)).collect();
            for id in graph.ids() {
                for (_, dependency) in graph.dependencies_of(id) {
                    prop_assert!(index[dependency] < index[id], "{} before {}", dependency, id);
                }
            }
        }

        #[test]
        fn an_edge_closing_a_cycle_is_always_refused((size, edges) in dag(), pick in any::<prop::sample::Index>()) {
            let mut graph = build(size, &edges);
            // Pick any package and any package it reaches (itself included): an edge back closes a cycle.
            let ids: Vec<String> = graph.ids().cloned().collect();
            let from = pick.get(&ids).clone();
            let reachable = graph.install_order([&from]).unwrap_or_default();
            let to = pick.get(&reachable).clone();
            let before = graph.clone();
            let refused = graph.add_dependency(to.clone(), from.clone(), EdgeKind::Depends);
            match refused {
                Err(GraphError::Cycle { cycle }) => {
                    prop_assert_eq!(cycle.first(), Some(&to));
                    prop_assert_eq!(cycle.last(), Some(&to));
                    prop_assert!(cycle.contains(&from));
                }
                other => prop_assert!(false, "expected a cycle, got {:?}", other),
            }
            prop_assert_eq!(graph, before);
        }
    }
}
