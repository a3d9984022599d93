//! Domain benchmarks: install order of a 500-package graph, validating 1000 apps, and
//! exporting/importing a 1000-app backup with its size per app against the seed's ~1 KB
//! budget. Prints the median of several runs; no assertions.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use uuid::Uuid;
use webvm_appserver::domain::backup::{
    export_backup, import_backup, to_json, BackupSource, ExportOptions,
};
use webvm_appserver::domain::graph::{EdgeKind, Graph, PackageGraph};
use webvm_appserver::domain::validation::ValidationRules;
use webvm_appserver::model::{
    AppName, Application, ApplicationServerSettings, ApplicationStatus, DeploymentConfig,
    DeploymentSource, ExecutionConfig, FileRef, HealthCheckConfig, PackageId, PackageStatus, Port,
    RuntimeCategory, RuntimePackage, SealedSecret, SourceConfig, SystemResources, WebVMStatus,
};

const RUNS: usize = 9;
const PACKAGES: usize = 500;
const APPS: usize = 1000;
/// The seed's application metadata budget, bytes.
const SEED_BYTES_PER_APP: usize = 1024;

/// Runs `work` `RUNS` times and returns the median duration.
fn median<T>(mut work: impl FnMut() -> T) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(work());
            start.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn report(label: &str, time: Duration, per: usize) {
    println!(
        "{label:<44} median {:>9.3} ms  ({:.2} µs each)",
        time.as_secs_f64() * 1e3,
        time.as_secs_f64() * 1e6 / per as f64
    );
}

/// A deterministic pseudo-random sequence (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % below.max(1)
    }
}

fn id(text: &str) -> PackageId {
    PackageId::parse(text).unwrap_or_else(|error| panic!("bench id {text}: {error}"))
}

/// 500 packages, each depending on up to 4 earlier ones (one in five a Pre-Depends).
fn deb_graph() -> Graph<String> {
    let mut random = Lcg(42);
    let mut graph = Graph::new();
    for index in 0..PACKAGES {
        let name = format!("lib{index:03}");
        graph.add_node(name.clone());
        for _ in 0..random.next(5).min(index) {
            let dependency = format!("lib{:03}", random.next(index));
            let kind = if random.next(5) == 0 {
                EdgeKind::PreDepends
            } else {
                EdgeKind::Depends
            };
            if graph
                .add_dependency(name.clone(), dependency, kind)
                .is_err()
            {
                unreachable!("edges only point to earlier packages");
            }
        }
    }
    graph
}

fn catalog() -> Vec<RuntimePackage> {
    let entries = [
        ("nginx", "1.22.1-9", &[][..]),
        ("nodejs-18", "18.19.0+dfsg-6~deb12u2", &[][..]),
        ("python-311", "3.11.2-1+b1", &[][..]),
        ("sqlite", "3.40.1-2", &[][..]),
        ("git", "1:2.39.2-1.1", &[][..]),
        ("django", "4.2.11", &["python-311"][..]),
        ("express", "4.18.2", &["nodejs-18"][..]),
    ];
    entries
        .iter()
        .map(|(name, version, dependencies)| {
            let mut package =
                RuntimePackage::new(id(name), name, RuntimeCategory::Runtime, version);
            package.dependencies = dependencies.iter().map(|d| id(d)).collect();
            package.status = PackageStatus::Installed;
            package.extracted_size = 20.0;
            package
        })
        .collect()
}

/// A typical app: half from GitHub, half uploaded (two files); env, one sealed secret,
/// health check, memory limit, version requirements.
fn typical_app(index: usize) -> Application {
    let now = Utc
        .with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let name = AppName::parse(&format!("app-{index:04}")).unwrap_or_else(|error| panic!("{error}"));
    let (source_type, source_config, entry_point) = if index.is_multiple_of(2) {
        let source = SourceConfig {
            repository: Some(format!("example/app-{index}")),
            branch: Some("main".to_owned()),
            ..SourceConfig::default()
        };
        (DeploymentSource::Github, source, "index.js")
    } else {
        let file = |path: &str| FileRef {
            path: path.to_owned(),
            size: 2048,
            sha256: "ab".repeat(32),
            blob_id: Uuid::from_u128(index as u128),
        };
        let source = SourceConfig {
            files: Some(vec![file("app.py"), file("requirements.txt")]),
            ..SourceConfig::default()
        };
        (DeploymentSource::Upload, source, "app.py")
    };
    let deployment = DeploymentConfig {
        source_type,
        source_config,
        build_config: None,
        deployment_path: DeploymentConfig::default_path(&name),
        entry_point: entry_point.to_owned(),
    };
    let execution = ExecutionConfig {
        command: if index.is_multiple_of(2) {
            "node".to_owned()
        } else {
            "python3".to_owned()
        },
        arguments: vec![entry_point.to_owned()],
        port: Port::parse(8000 + index as i64).ok(),
        environment: BTreeMap::from([
            ("NODE_ENV".to_owned(), "production".to_owned()),
            ("LOG_LEVEL".to_owned(), "info".to_owned()),
        ]),
        secret_environment: SealedSecret::from_parts(
            "k1",
            "bm9uY2UxMjM0NTY",
            "Y2lwaGVydGV4dGNpcGhlcnRleHQ",
        )
        .map(|secret| BTreeMap::from([("DB_PASSWORD".to_owned(), secret)]))
        .unwrap_or_default(),
        auto_restart: true,
        health_check_config: Some(HealthCheckConfig {
            path: Some("/healthz".to_owned()),
            ..HealthCheckConfig::default()
        }),
        memory_limit: Some(64),
        ..ExecutionConfig::default()
    };
    let mut app = Application::new(
        Uuid::from_u128(index as u128 + 1),
        name,
        deployment,
        execution,
        now,
    );
    app.description = Some(format!("Demo application number {index}"));
    app.runtime.required_runtimes = if index.is_multiple_of(2) {
        vec![id("nodejs-18"), id("nginx")]
    } else {
        vec![id("python-311")]
    };
    let family = if index.is_multiple_of(2) {
        "nodejs"
    } else {
        "python"
    };
    app.runtime.minimum_versions = BTreeMap::from([(family.to_owned(), "3.9".to_owned())]);
    app.status = ApplicationStatus::Stopped;
    app
}

fn main() {
    println!("webvm-appserver domain benchmarks (median of {RUNS} runs)\n");

    // 1. Install order of a 500-package graph.
    let graph = deb_graph();
    report(
        "build 500-package graph (cycle-checked)",
        median(deb_graph),
        PACKAGES,
    );
    report(
        "install order, 500 packages",
        median(|| graph.full_install_order()),
        PACKAGES,
    );
    let order = graph.full_install_order();
    println!(
        "  ({} packages ordered, last: {:?})",
        order.len(),
        order.last()
    );
    let deepest = graph
        .ids()
        .max_by_key(|id| graph.install_order([*id]).map(|o| o.len()).unwrap_or(0))
        .cloned()
        .unwrap_or_default();
    let needed = graph
        .install_order([&deepest])
        .map(|o| o.len())
        .unwrap_or(0);
    report(
        "removal order of lib000 and its dependents",
        median(|| graph.removal_order([&format!("lib{:03}", 0)])),
        1,
    );
    report(
        &format!("install order of {deepest} ({needed} packages)"),
        median(|| graph.install_order([&deepest])),
        1,
    );

    // 2. Validating 1000 apps.
    let packages = catalog();
    let apps: Vec<Application> = (0..APPS).map(typical_app).collect();
    let resources = SystemResources {
        memory_total: 131_072,
        disk_total: 4000,
        disk_used: 1000,
        ..SystemResources::default()
    };
    let settings = ApplicationServerSettings::default();
    report(
        "index state for validation (1000 apps)",
        median(|| ValidationRules::new(&packages, &apps, &resources, &settings)),
        APPS,
    );
    let rules = ValidationRules::new(&packages, &apps, &resources, &settings);
    report(
        "validate 1000 apps one by one",
        median(|| {
            apps.iter()
                .filter(|app| rules.validate_application(app).valid)
                .count()
        }),
        APPS,
    );
    report(
        "validate whole state (1000 apps)",
        median(|| rules.validate_all()),
        APPS,
    );
    let all = rules.validate_all();
    println!(
        "  (whole state valid: {}, {} errors, {} warnings)",
        all.valid,
        all.errors.len(),
        all.warnings.len()
    );
    report(
        "catalog graph from 7 packages",
        median(|| PackageGraph::from_packages(&packages)),
        1,
    );

    // 3. Backup export and import of 1000 apps.
    let state = WebVMStatus {
        installed_runtimes: packages.iter().map(|p| p.id.clone()).collect(),
        system_resources: resources.clone(),
        ..WebVMStatus::default()
    };
    let source = BackupSource {
        webvm_state: &state,
        applications: &apps,
        packages: &packages,
        settings: &settings,
    };
    let now = Utc::now();
    report(
        "export + serialize, 1000 apps",
        median(|| to_json(&export_backup(source, now, ExportOptions::default()))),
        APPS,
    );
    let json = to_json(&export_backup(source, now, ExportOptions::default())).unwrap_or_default();
    report(
        "import (parse + validate), 1000 apps",
        median(|| import_backup(&json, &packages)),
        APPS,
    );
    match import_backup(&json, &packages) {
        Ok(imported) => println!(
            "  (imported {} apps, {} warnings)",
            imported.backup.applications.len(),
            imported.warnings.len()
        ),
        Err(error) => println!("  (import refused: {error})"),
    }
    let empty = to_json(&export_backup(
        BackupSource {
            applications: &[],
            ..source
        },
        now,
        ExportOptions::default(),
    ))
    .unwrap_or_default();
    let per_app = (json.len() - empty.len()) / APPS;
    println!("\nbackup size: {} bytes for {APPS} apps, {per_app} bytes per app (seed budget ~{SEED_BYTES_PER_APP} bytes: {:.0}%)",
        json.len(), per_app as f64 * 100.0 / SEED_BYTES_PER_APP as f64);
    let github_app = serde_json::to_string(&apps[0])
        .map(|s| s.len())
        .unwrap_or_default();
    let upload_app = serde_json::to_string(&apps[1])
        .map(|s| s.len())
        .unwrap_or_default();
    println!("  github app {github_app} bytes, upload app with 2 files {upload_app} bytes");

    if let Ok(imported) = import_backup(&json, &packages) {
        use webvm_appserver::domain::backup::{plan_import, Workspace};
        let installed = std::collections::BTreeSet::new();
        let settings = webvm_appserver::model::ApplicationServerSettings::default();
        report(
            "import preview (plan against an empty workspace), 1000 apps",
            median(|| {
                plan_import(
                    &imported,
                    Workspace {
                        applications: &[],
                        installed: &installed,
                        catalog: &packages,
                        resources: &resources,
                        settings: &settings,
                    },
                    now,
                )
            }),
            APPS,
        );
    }

    // The mirror queue: 1,000 changes queued (coalesced per record), then replayed.
    use webvm_appserver::domain::mirror_queue::{MirrorQueue, MirrorWrite, Outcome};
    report(
        "mirror queue: queue 1000 changes, then replay them all",
        median(|| {
            let mut queue = MirrorQueue::default();
            for app in &apps {
                queue.enqueue(
                    app.id,
                    MirrorWrite::Save {
                        application: Box::new(app.clone()),
                    },
                    now,
                );
            }
            let mut at = now;
            let mut sent = 0;
            while let Some(next) = queue.next_due() {
                at = at.max(next);
                for (id, revision, _) in queue.due(at) {
                    queue.settle(id, revision, Outcome::Stored, at);
                    sent += 1;
                }
            }
            sent
        }),
        APPS,
    );
}
