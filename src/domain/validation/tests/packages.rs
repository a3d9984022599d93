//! Tests of the package installation, removal and installed-set rules.

use super::{apps, check, resources, Expect};
use crate::domain::testing::{catalog, id, package, port};
use crate::domain::validation::ValidationRules;
use crate::model::{ApplicationServerSettings, PackageStatus, RuntimePackage, SystemResources};

#[test]
fn package_installation_rule() {
    let big = |size: f64| {
        let mut package = package("bigdb", "1.0", PackageStatus::Available);
        package.extracted_size = size;
        package
    };
    let with_deps = |name: &str, deps: &[&str]| {
        let mut package = package(name, "1.0", PackageStatus::Available);
        package.dependencies = deps.iter().map(|d| id(d)).collect();
        package
    };
    let mut conflicted = package("pkg-y", "1.0", PackageStatus::Available);
    conflicted.conflicts = vec![id("pkg-z")];
    let disk = |used: u64, total: u64| SystemResources {
        disk_used: used,
        disk_total: total,
        ..resources()
    };
    type Row = (
        &'static str,
        Vec<RuntimePackage>,
        SystemResources,
        &'static str,
        Expect<'static>,
    );
    let cases: Vec<Row> = vec![
        (
            "already installed",
            vec![],
            resources(),
            "nginx",
            Expect {
                errors: &[],
                warnings: &["nginx is already installed"],
                suggestions: &[],
            },
        ),
        (
            "plain install",
            vec![],
            resources(),
            "python-311",
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "dependency installed first",
            vec![],
            resources(),
            "django",
            Expect {
                errors: &[],
                warnings: &["django needs python-311"],
                suggestions: &["install python-311 first"],
            },
        ),
        (
            "conflict with installed",
            vec![],
            resources(),
            "nodejs-20",
            Expect {
                errors: &["nodejs-20 conflicts with installed nodejs-18"],
                warnings: &[],
                suggestions: &["remove nodejs-18 first"],
            },
        ),
        (
            "dependency conflicts with installed",
            vec![],
            resources(),
            "express",
            Expect {
                errors: &["nodejs-20 conflicts with installed nodejs-18"],
                warnings: &["express needs nodejs-20"],
                suggestions: &["install nodejs-20 first", "remove nodejs-18 first"],
            },
        ),
        (
            "invalid id",
            vec![],
            resources(),
            "Nodejs",
            Expect {
                errors: &["package id 'Nodejs' is invalid"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "unknown id",
            vec![],
            resources(),
            "nodejs-21",
            Expect {
                errors: &["'nodejs-21' is not in the catalog"],
                warnings: &[],
                suggestions: &["did you mean nodejs-20?"],
            },
        ),
        (
            "too little disk",
            vec![big(600.0)],
            resources(),
            "bigdb",
            Expect {
                errors: &["needs 600.0 MB of disk but only 500 MB is free"],
                warnings: &[],
                suggestions: &["free disk space"],
            },
        ),
        (
            "little headroom",
            vec![big(460.0)],
            resources(),
            "bigdb",
            Expect {
                errors: &[],
                warnings: &["less than 10% of the disk"],
                suggestions: &[],
            },
        ),
        (
            "disk unknown",
            vec![big(460.0)],
            disk(0, 0),
            "bigdb",
            Expect {
                errors: &[],
                warnings: &["disk size is not known"],
                suggestions: &[],
            },
        ),
        (
            "unmet dependency",
            vec![with_deps("broken", &["libmissing"])],
            resources(),
            "broken",
            Expect {
                errors: &["dependency libmissing of broken is not in the catalog"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "dependency cycle",
            vec![
                with_deps("cyc-a", &["cyc-b"]),
                with_deps("cyc-b", &["cyc-a"]),
            ],
            resources(),
            "cyc-a",
            Expect {
                errors: &["cyc-b can't be installed: dependency cycle: cyc-b -> cyc-a -> cyc-b"],
                warnings: &["cyc-a needs cyc-b"],
                suggestions: &[],
            },
        ),
        (
            "conflict inside the plan",
            vec![
                with_deps("pkg-x", &["pkg-y", "pkg-z"]),
                conflicted,
                package("pkg-z", "1", PackageStatus::Available),
            ],
            resources(),
            "pkg-x",
            Expect {
                errors: &["pkg-y and pkg-z conflict and cannot be installed together"],
                warnings: &["pkg-x needs pkg-y", "pkg-x needs pkg-z"],
                suggestions: &[],
            },
        ),
        (
            "being installed",
            vec![package("busy", "1", PackageStatus::Installing)],
            resources(),
            "busy",
            Expect {
                errors: &["busy is already being installed"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "being removed",
            vec![package("busy", "1", PackageStatus::Removing)],
            resources(),
            "busy",
            Expect {
                errors: &["busy is being removed"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "retry after an error",
            vec![package("flaky", "1", PackageStatus::Error)],
            resources(),
            "flaky",
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
    ];
    let settings = ApplicationServerSettings::default();
    for (name, extra, resources, target, expect) in &cases {
        let mut packages = catalog();
        packages.extend(extra.iter().cloned());
        let rules = ValidationRules::new(&packages, &[], resources, &settings);
        check(name, &rules.validate_package_installation(target), expect);
    }
}

#[test]
fn package_removal_rule() {
    let mut packages = catalog();
    packages.push(package("libssl", "3.0.11", PackageStatus::Installed));
    for package in packages.iter_mut().filter(|p| p.id.as_str() == "nginx") {
        package.dependencies = vec![id("libssl")];
    }
    let apps = apps();
    let resources = resources();
    let settings = ApplicationServerSettings::default();
    let rules = ValidationRules::new(&packages, &apps, &resources, &settings);
    let cases: &[(&str, Expect)] = &[
        (
            "nginx",
            Expect {
                errors: &["nginx is required by application 'blog'"],
                warnings: &[],
                suggestions: &["delete application 'blog' or remove nginx"],
            },
        ),
        (
            "libssl",
            Expect {
                errors: &["libssl is required by installed package 'nginx'"],
                warnings: &[],
                suggestions: &["remove nginx first"],
            },
        ),
        (
            "python-311",
            Expect {
                errors: &["python-311 is not installed"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "nodejs-18",
            Expect {
                errors: &[],
                warnings: &["application 'shop' uses nodejs-18 optionally"],
                suggestions: &[],
            },
        ),
        (
            "ngnix",
            Expect {
                errors: &["'ngnix' is not in the catalog"],
                warnings: &[],
                suggestions: &["did you mean nginx?"],
            },
        ),
        (
            "N",
            Expect {
                errors: &["package id 'N' is invalid"],
                warnings: &[],
                suggestions: &[],
            },
        ),
    ];
    for (target, expect) in cases {
        check(target, &rules.validate_package_removal(target), expect);
    }
}

#[test]
fn installed_packages_and_whole_state() {
    let mut packages = catalog();
    for package in packages.iter_mut() {
        if matches!(package.id.as_str(), "nodejs-20" | "django") {
            package.status = PackageStatus::Installed;
        }
    }
    let mut loop_a = package("loop-a", "1", PackageStatus::Available);
    loop_a.dependencies = vec![id("loop-a")];
    packages.push(loop_a);
    let mut apps = apps();
    apps[1].execution.port = Some(port(8000));
    apps[1].runtime.required_runtimes = vec![id("nodejs-99")];
    let resources = resources();
    let settings = ApplicationServerSettings::default();
    let rules = ValidationRules::new(&packages, &apps, &resources, &settings);
    check(
        "installed set",
        &rules.validate_installed_packages(),
        &Expect {
            errors: &[
                "package catalog: dependency cycle: loop-a -> loop-a",
                "installed packages nodejs-18 and nodejs-20 conflict",
                "installed package django depends on python-311, which is not installed",
            ],
            warnings: &[],
            suggestions: &["install python-311"],
        },
    );
    let all = rules.validate_all();
    assert!(!all.valid);
    for fragment in [
        "application 'shop': required runtime 'nodejs-99' is not in the package catalog",
        "port 8000 is used by 'blog' and 'shop'",
        "installed packages nodejs-18 and nodejs-20 conflict",
    ] {
        assert!(
            all.errors.iter().any(|e| e.contains(fragment)),
            "{fragment} in {:?}",
            all.errors
        );
    }
    assert!(all
        .suggestions()
        .iter()
        .any(|s| s.starts_with("application 'shop': did you mean")));
}
