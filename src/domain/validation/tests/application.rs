//! Tests of the application name and runtime requirement rules.

use super::{apps, check, resources, Expect};
use crate::domain::testing::{catalog, id};
use crate::domain::validation::ValidationRules;
use crate::model::{ApplicationId, ApplicationRuntime, ApplicationServerSettings};

#[test]
fn application_name_rule() {
    let packages = catalog();
    let apps = apps();
    let resources = resources();
    let settings = ApplicationServerSettings::default();
    let rules = ValidationRules::new(&packages, &apps, &resources, &settings);
    let blog_id = apps[0].id;
    let long = "x".repeat(51);
    let cases: &[(&str, Option<ApplicationId>, Expect)] = &[
        (
            "notes",
            None,
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "Blog",
            None,
            Expect {
                errors: &["'Blog' is already taken"],
                warnings: &[],
                suggestions: &["try 'blog-2'"],
            },
        ),
        (
            "Blog",
            Some(blog_id),
            Expect {
                errors: &[],
                warnings: &["has capitals"],
                suggestions: &[],
            },
        ),
        (
            "ab",
            None,
            Expect {
                errors: &["has 2 characters"],
                warnings: &[],
                suggestions: &["try 'ab-app'"],
            },
        ),
        (
            "my app",
            None,
            Expect {
                errors: &["contains ' '"],
                warnings: &[],
                suggestions: &["try 'my-app'"],
            },
        ),
        (
            "api",
            None,
            Expect {
                errors: &["reserved"],
                warnings: &[],
                suggestions: &["try 'api-app'", "server's own pages"],
            },
        ),
        (
            "-blog",
            None,
            Expect {
                errors: &["start and end with a letter or digit"],
                warnings: &[],
                suggestions: &["try 'blog-2'"],
            },
        ),
        (
            &long,
            None,
            Expect {
                errors: &["has 51 characters"],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "SHOP",
            Some(blog_id),
            Expect {
                errors: &["'SHOP' is already taken"],
                warnings: &[],
                suggestions: &["try 'shop-2'"],
            },
        ),
    ];
    for (name, own, expect) in cases {
        check(name, &rules.validate_application_name(name, *own), expect);
    }
}

#[test]
fn runtime_requirements_rule() {
    let packages = catalog();
    let resources = resources();
    let settings = ApplicationServerSettings::default();
    let rules = ValidationRules::new(&packages, &[], &resources, &settings);
    type Row = (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
        &'static [(&'static str, &'static str)],
        Expect<'static>,
    );
    let cases: &[Row] = &[
        (
            "installed runtime",
            &["nginx"],
            &[],
            &[],
            &[],
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "unknown runtime with a close match",
            &["nodejs-21"],
            &[],
            &[],
            &[],
            Expect {
                errors: &["required runtime 'nodejs-21' is not in the package catalog"],
                warnings: &[],
                suggestions: &["did you mean nodejs-20?"],
            },
        ),
        (
            "unknown optional runtime",
            &[],
            &["pyhton-311"],
            &[],
            &[],
            Expect {
                errors: &["optional runtime 'pyhton-311'"],
                warnings: &[],
                suggestions: &["did you mean python-311?"],
            },
        ),
        (
            "missing runtime with a missing dependency",
            &["django"],
            &[],
            &[],
            &[],
            Expect {
                errors: &[],
                warnings: &["django is not installed"],
                suggestions: &["install python-311 first", "install django first"],
            },
        ),
        (
            "conflicting requirements",
            &["nodejs-18", "nodejs-20"],
            &[],
            &[],
            &[],
            Expect {
                errors: &["nodejs-18 and nodejs-20 conflict"],
                warnings: &[
                    "nodejs-20 is not installed",
                    "nodejs-20 conflicts with installed nodejs-18",
                ],
                suggestions: &["remove nodejs-18 first"],
            },
        ),
        (
            "listed twice",
            &["nginx"],
            &["nginx"],
            &[],
            &[],
            Expect {
                errors: &[],
                warnings: &["nginx is listed more than once"],
                suggestions: &[],
            },
        ),
        (
            "unreadable minimum",
            &["nodejs-18"],
            &[],
            &[("nodejs", "abc")],
            &[],
            Expect {
                errors: &["minimumVersions.nodejs: 'abc' is not a version"],
                warnings: &[],
                suggestions: &["write a version like"],
            },
        ),
        (
            "minimum for a runtime the app does not use",
            &["nginx"],
            &[],
            &[("ruby", "3")],
            &[],
            Expect {
                errors: &[],
                warnings: &["minimumVersions.ruby matches none"],
                suggestions: &[],
            },
        ),
        (
            "recommended below minimum",
            &["nodejs-18"],
            &[],
            &[("nodejs", "18")],
            &[("nodejs", "16")],
            Expect {
                errors: &[],
                warnings: &["recommended nodejs version 16.0.0 is below the minimum 18.0.0"],
                suggestions: &[],
            },
        ),
        (
            "ranges are fine",
            &["nodejs-18"],
            &[],
            &[("nodejs", ">=18, <22")],
            &[("nodejs", "^20")],
            Expect {
                errors: &[],
                warnings: &[],
                suggestions: &[],
            },
        ),
        (
            "empty family",
            &["nginx"],
            &[],
            &[],
            &[(" ", "1")],
            Expect {
                errors: &["recommendedVersions has an empty runtime name"],
                warnings: &[],
                suggestions: &[],
            },
        ),
    ];
    for (name, required, optional, minimum, recommended, expect) in cases {
        let runtime = ApplicationRuntime {
            required_runtimes: required.iter().map(|s| id(s)).collect(),
            optional_runtimes: optional.iter().map(|s| id(s)).collect(),
            minimum_versions: minimum
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            recommended_versions: recommended
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        check(name, &rules.validate_runtime_requirements(&runtime), expect);
    }
}
