//! Tests of the system resource, network, port and settings rules.

use super::{apps, check, resources, Expect};
use crate::domain::testing::{application, catalog, port};
use crate::domain::validation::ValidationRules;
use crate::model::{
    ApplicationServerSettings, ApplicationStatus, DeployLimits, PortRange, SystemResources,
};

#[test]
fn system_resources_rule() {
    let settings = ApplicationServerSettings {
        vm_memory_mb: 256,
        ..ApplicationServerSettings::default()
    };
    let packages = catalog();
    type Row = (
        &'static str,
        [(ApplicationStatus, Option<u64>); 2],
        SystemResources,
        Expect<'static>,
    );
    let running = ApplicationStatus::Running;
    let cases: Vec<Row> = vec![
        ("fits", [(running, Some(256)), (ApplicationStatus::Starting, Some(128))], resources(), Expect { errors: &[], warnings: &[], suggestions: &[] }),
        ("too much", [(running, Some(256)), (ApplicationStatus::Stopping, Some(512))], resources(), Expect {
            errors: &["running applications may use 768 MB (blog 256 MB, shop 512 MB) but the VM has 512 MB"],
            warnings: &[],
            suggestions: &["stop an application"],
        }),
        ("stopped apps do not count", [(running, Some(256)), (ApplicationStatus::Stopped, Some(1024))], resources(), Expect { errors: &[], warnings: &[], suggestions: &[] }),
        ("no limit", [(running, None), (ApplicationStatus::Deployed, None)], resources(), Expect { errors: &[], warnings: &["'blog' has no memory limit"], suggestions: &[] }),
        ("VM not booted: configured memory", [(running, Some(200)), (running, Some(100))], SystemResources::default(), Expect { errors: &["but the VM has 256 MB"], warnings: &[], suggestions: &[] }),
        ("nearly full", [(running, Some(64)), (running, Some(64))], SystemResources { memory_used: 500, disk_used: 1200, ..resources() }, Expect {
            errors: &[],
            warnings: &["memory is more than 90% used", "disk use 1200 MB exceeds the total 1000 MB"],
            suggestions: &[],
        }),
    ];
    for (name, states, resources, expect) in &cases {
        let mut apps = apps();
        for (app, (status, limit)) in apps.iter_mut().zip(states) {
            app.status = *status;
            app.execution.memory_limit = *limit;
        }
        let rules = ValidationRules::new(&packages, &apps, resources, &settings);
        check(name, &rules.validate_system_resources(), expect);
    }
}

#[test]
fn network_configuration_rule() {
    let packages = catalog();
    let resources = resources();
    type Row = (
        &'static str,
        [(i64, &'static [i64]); 2],
        (i64, i64),
        Expect<'static>,
    );
    let cases: Vec<Row> = vec![
        (
            "unique",
            [(8000, &[]), (8001, &[9000])],
            (8000, 9999),
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "same primary port",
            [(8000, &[]), (8000, &[])],
            (8000, 8999),
            Expect {
                errors: &["port 8000 is used by 'blog' and 'shop'"],
                warnings: &[],
                suggestions: &["use port 8001"],
            },
        ),
        (
            "additional port clash",
            [(8000, &[8100]), (8001, &[8100])],
            (8000, 8999),
            Expect {
                errors: &["port 8100 is used by 'blog' and 'shop'"],
                warnings: &[],
                suggestions: &["use port 8002"],
            },
        ),
        (
            "listed twice by one app",
            [(8000, &[8000]), (8001, &[])],
            (8000, 8999),
            Expect {
                errors: &["port 8000 is listed twice by 'blog'"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "outside the range",
            [(3000, &[]), (8001, &[])],
            (8000, 8999),
            Expect {
                errors: &[],
                warnings: &["port 3000 of 'blog' is outside the configured range 8000-8999"],
                suggestions: &[],
            },
        ),
        (
            "empty range",
            [(8000, &[]), (8001, &[])],
            (8001, 8000),
            Expect {
                errors: &["port range 8001-8000 is empty"],
                warnings: &[
                    "port 8000 of 'blog' is outside",
                    "port 8001 of 'shop' is outside",
                ],
                suggestions: &[],
            },
        ),
    ];
    for (name, ports, (start, end), expect) in &cases {
        let mut apps = apps();
        for (app, (primary, additional)) in apps.iter_mut().zip(ports) {
            app.execution.port = Some(port(*primary));
            app.execution.additional_ports = Some(additional.iter().map(|n| port(*n)).collect());
        }
        let settings = ApplicationServerSettings {
            port_range: PortRange {
                start: port(*start),
                end: port(*end),
            },
            ..ApplicationServerSettings::default()
        };
        let rules = ValidationRules::new(&packages, &apps, &resources, &settings);
        check(name, &rules.validate_network_configuration(), expect);
    }
}

#[test]
fn application_ports_and_whole_application() {
    let packages = catalog();
    let resources = resources();
    let settings = ApplicationServerSettings::default();
    let mut apps = apps();
    apps[1].execution.port = Some(port(8000));
    apps[1].execution.additional_ports = Some(vec![port(9000), port(9000)]);
    let rules = ValidationRules::new(&packages, &apps, &resources, &settings);
    check(
        "shop ports",
        &rules.validate_application_ports(&apps[1]),
        &Expect {
            errors: &[
                "port 8000 is already used by 'blog'",
                "port 9000 is listed twice",
            ],
            warnings: &[],
            suggestions: &["use port 8001"],
        },
    );
    let mut candidate = application("Blog");
    candidate.execution.port = Some(port(8000));
    check(
        "new app",
        &rules.validate_application(&candidate),
        &Expect {
            errors: &[
                "'Blog' is already taken",
                "deployment path '/srv/apps/blog' is already used by 'blog'",
                "port 8000 is already used by 'blog'",
            ],
            warnings: &[],
            suggestions: &["try 'blog-2'", "use port 8001"],
        },
    );
    check(
        "blog itself",
        &rules.validate_application(&apps[0]),
        &Expect {
            errors: &["port 8000 is already used by 'shop'"],
            warnings: &[],
            suggestions: &[],
        },
    );
}

#[test]
fn settings_rule() {
    let packages = catalog();
    let resources = resources();
    let defaults = ApplicationServerSettings::default();
    let cases: Vec<(&str, ApplicationServerSettings, Expect)> = vec![
        (
            "defaults",
            defaults.clone(),
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "everything off",
            ApplicationServerSettings {
                vm_memory_mb: 32,
                max_log_entries: 5000,
                metrics_retention_hours: 0,
                metrics_sample_interval_seconds: 60,
                auto_hibernate_minutes: Some(0),
                ..defaults.clone()
            },
            Expect {
                errors: &[
                    "VM memory 32 MB",
                    "log retention 5000",
                    "metrics retention 0 h",
                    "sampling every 60 s",
                    "auto-hibernate after 0",
                ],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "no logs",
            ApplicationServerSettings {
                max_log_entries: 0,
                metrics_retention_hours: 25,
                ..defaults
            },
            Expect {
                errors: &["log retention 0", "metrics retention 25 h"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "ports and releases",
            ApplicationServerSettings {
                port_range: PortRange {
                    start: port(9000),
                    end: port(8000),
                },
                releases_kept: 0,
                deploy_limits: DeployLimits {
                    max_files: 0,
                    ..DeployLimits::default()
                },
                ..ApplicationServerSettings::default()
            },
            Expect {
                errors: &[
                    "port range 9000–8000 ends before it starts",
                    "releases kept 0",
                    "deploy limits of 0",
                ],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "too many releases",
            ApplicationServerSettings {
                releases_kept: 21,
                ..ApplicationServerSettings::default()
            },
            Expect {
                errors: &["releases kept 21 must be 1 to 20"],
                warnings: &[],
                suggestions: &[],
            },
        ),
    ];
    for (name, settings, expect) in &cases {
        let rules = ValidationRules::new(&packages, &[], &resources, settings);
        check(name, &rules.validate_settings(), expect);
    }
    // An application outside a new range keeps its port, with a warning.
    let narrow = ApplicationServerSettings {
        port_range: PortRange {
            start: port(9000),
            end: port(9100),
        },
        ..ApplicationServerSettings::default()
    };
    let mut blog = application("blog");
    blog.execution.port = Some(port(8080));
    let apps = [blog];
    let rules = ValidationRules::new(&packages, &apps, &resources, &narrow);
    check(
        "an app outside",
        &rules.validate_settings(),
        &Expect {
            errors: &[],
            warnings: &["blog uses port 8080 outside the new range"],
            suggestions: &[],
        },
    );
}

#[test]
fn deployment_paths_are_neither_shared_nor_nested() {
    let packages = catalog();
    let resources = resources();
    let settings = ApplicationServerSettings::default();
    let apps = apps();
    let rules = ValidationRules::new(&packages, &apps, &resources, &settings);
    // (the candidate's path, the errors expected)
    let cases: [(&str, &[&str]); 6] = [
        ("/srv/apps/newcomer", &[]),
        ("newcomer", &[]),
        (
            "/srv/apps/blog",
            &["deployment path '/srv/apps/blog' is already used by 'blog'"],
        ),
        (
            "blog/",
            &["deployment path '/srv/apps/blog' is already used by 'blog'"],
        ),
        (
            "/srv/apps/blog/inner",
            &["overlaps 'blog''s '/srv/apps/blog'"],
        ),
        ("/srv/apps/blogger", &[]),
    ];
    for (path, errors) in cases {
        let mut candidate = application("newcomer");
        candidate.deployment.deployment_path = path.to_owned();
        let suggestions: &[&str] = if errors.is_empty() {
            &[]
        } else {
            &["use /srv/apps/newcomer"]
        };
        check(
            path,
            &rules.validate_deployment_path_unique(&candidate),
            &Expect {
                errors,
                warnings: &[],
                suggestions,
            },
        );
    }
}
