//! Table-driven tests of every validation rule: each row names its expected errors,
//! warnings and suggestions (as fragments; the error and warning counts must match).

mod application;
mod deployment;
mod packages;
mod system;

use super::*;
use crate::domain::testing::{application, id, port};
use crate::model::ApplicationStatus;

pub(super) struct Expect<'e> {
    pub errors: &'e [&'e str],
    pub warnings: &'e [&'e str],
    pub suggestions: &'e [&'e str],
}

pub(super) fn check(case: &str, result: &ValidationResult, expect: &Expect<'_>) {
    assert_eq!(result.valid, result.errors.is_empty(), "{case}: valid flag");
    let groups = [
        ("error", &result.errors, expect.errors, true),
        ("warning", &result.warnings, expect.warnings, true),
        (
            "suggestion",
            &result.suggestions().to_vec(),
            expect.suggestions,
            false,
        ),
    ];
    for (kind, actual, fragments, exact_count) in groups {
        if exact_count {
            assert_eq!(actual.len(), fragments.len(), "{case}: {kind}s {actual:?}");
        }
        for fragment in fragments {
            assert!(
                actual.iter().any(|message| message.contains(fragment)),
                "{case}: no {kind} contains '{fragment}' in {actual:?}"
            );
        }
    }
}

pub(super) fn resources() -> SystemResources {
    SystemResources {
        memory_used: 100,
        memory_total: 512,
        disk_used: 500,
        disk_total: 1000,
        cpu_usage: 5.0,
        process_count: 20,
    }
}

/// `blog` (port 8000, requires nginx, running, 128 MB) and `shop` (port 8001 + 9000,
/// optionally uses nodejs-18, stopped).
pub(super) fn apps() -> Vec<Application> {
    let mut blog = application("blog");
    blog.execution.port = Some(port(8000));
    blog.execution.memory_limit = Some(128);
    blog.runtime.required_runtimes = vec![id("nginx")];
    blog.status = ApplicationStatus::Running;
    let mut shop = application("shop");
    shop.execution.port = Some(port(8001));
    shop.execution.additional_ports = Some(vec![port(9000)]);
    shop.runtime.optional_runtimes = vec![id("nodejs-18")];
    shop.status = ApplicationStatus::Stopped;
    vec![blog, shop]
}

#[test]
fn quoted_list_table() {
    assert_eq!(quoted_list::<&str>(&[]), "");
    assert_eq!(quoted_list(&["a"]), "'a'");
    assert_eq!(quoted_list(&["a", "b"]), "'a' and 'b'");
    assert_eq!(quoted_list(&["a", "b", "c"]), "'a', 'b' and 'c'");
}

#[test]
fn validation_result_serializes_like_the_seed() {
    let mut result = ValidationResult::ok();
    assert_eq!(
        serde_json::to_string(&result).ok(),
        Some(r#"{"valid":true,"errors":[],"warnings":[]}"#.to_owned())
    );
    result.error("e");
    result.suggest("s");
    result.suggest("s");
    let json = serde_json::to_string(&result).unwrap_or_default();
    assert_eq!(
        json,
        r#"{"valid":false,"errors":["e"],"warnings":[],"suggestions":["s"]}"#
    );
}
