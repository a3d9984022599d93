//! The import preview against a workspace: added, replaced (by id, by name), kept; busy
//! applications and clashes with kept ones refused; runtimes to install; the one-step apply.

use std::collections::BTreeSet;

use super::*;
use crate::domain::testing::{application, catalog, id, now, port};
use crate::model::{ApplicationServerBackup, ApplicationServerSettings, WebVMStatus};

fn app(name: &str, number: i64) -> Application {
    let mut app = application(name);
    app.execution.port = Some(port(number));
    app.runtime.required_runtimes = vec![id("nginx")];
    app
}

fn imported(applications: Vec<Application>) -> ImportedBackup {
    ImportedBackup {
        backup: ApplicationServerBackup {
            version: "2".to_owned(),
            timestamp: now(),
            webvm_state: WebVMStatus::default(),
            applications,
            packages: Vec::new(),
            settings: ApplicationServerSettings::default(),
        },
        warnings: Vec::new(),
    }
}

fn plan(existing: &[Application], backup: &ImportedBackup) -> Result<ImportPlan, Vec<String>> {
    let installed: BTreeSet<PackageId> = [id("nginx")].into();
    let catalog = catalog();
    let resources = SystemResources::default();
    let settings = ApplicationServerSettings::default();
    let workspace = Workspace {
        applications: existing,
        installed: &installed,
        catalog: &catalog,
        resources: &resources,
        settings: &settings,
    };
    plan_import(backup, workspace, now())
        .map_err(|problems| problems.iter().map(ToString::to_string).collect())
}

fn names(names: &[AppName]) -> Vec<&str> {
    names.iter().map(AppName::as_str).collect()
}

#[test]
fn added_replaced_and_kept() {
    let existing = vec![app("blog", 8000), app("shop", 8001), app("wiki", 8002)];
    let mut blog = existing[0].clone();
    blog.description = Some("from the backup".to_owned());
    let mut other_shop = app("Shop", 8001);
    other_shop.id = uuid::Uuid::from_u128(42);
    let news = app("news", 8003);
    let plan = plan(&existing, &imported(vec![blog, other_shop, news])).expect("plans");
    assert_eq!(names(&plan.added), vec!["news"]);
    let replaced: Vec<(&str, &str, bool)> = plan
        .replaced
        .iter()
        .map(|r| (r.name.as_str(), r.previous.as_str(), r.same_id))
        .collect();
    assert_eq!(
        replaced,
        vec![("blog", "blog", true), ("Shop", "shop", false)]
    );
    assert_eq!(plan.kept, 1);
    let mut removed = vec![existing[0].id, existing[1].id];
    removed.sort();
    assert_eq!(plan.removed, removed);
    assert!(plan
        .applications
        .iter()
        .all(|app| app.status == ApplicationStatus::Draft));
}

#[test]
fn refusals_table() {
    type Case<'a> = (&'a str, Vec<Application>, Vec<Application>, &'a str);
    let running = {
        let mut blog = app("blog", 8000);
        blog.status = ApplicationStatus::Running;
        blog
    };
    let cases: Vec<Case> = vec![
        (
            "replacing a running application",
            vec![running],
            vec![app("blog", 8000)],
            "applications[0] 'blog', name: it would replace 'blog', which is running here: stop it first",
        ),
        (
            "a port of an application kept here",
            vec![app("wiki", 8002)],
            vec![app("news", 8002)],
            "applications[0] 'news', ports: port 8002 is already used by 'wiki' (an application kept here)",
        ),
        (
            "the folder of an application kept here",
            vec![app("wiki", 8002)],
            vec![{
                let mut news = app("news", 8003);
                news.deployment.deployment_path = "/srv/apps/wiki".to_owned();
                news
            }],
            "applications[0] 'news', deployment: deployment path '/srv/apps/wiki' is already used by 'wiki' (an application kept here)",
        ),
    ];
    for (name, existing, incoming, expected) in cases {
        let problems = plan(&existing, &imported(incoming)).expect_err(name);
        assert_eq!(problems, vec![expected.to_owned()], "{name}");
    }
}

#[test]
fn runtimes_to_install_and_unavailable() {
    let mut api = app("backend", 8000);
    api.runtime.required_runtimes = vec![id("python-311"), id("nginx")];
    let mut backup = imported(vec![api]);
    backup.backup.webvm_state.installed_runtimes = vec![id("deno-2"), id("nginx")];
    let plan = plan(&[], &backup).expect("plans");
    assert_eq!(plan.runtimes_to_install, vec![id("python-311")]);
    assert_eq!(plan.runtimes_unavailable, vec![id("deno-2")]);
    assert!(plan.warnings.iter().any(|w| w
        .to_string()
        .contains("deno-2 is not in this server's catalog")));
}

#[test]
fn prepared_records_keep_configuration_and_history_only() {
    let mut blog = app("blog", 8000);
    blog.status = ApplicationStatus::Running;
    blog.metrics.memory_usage = 12.0;
    blog.metrics.request_count = 99;
    blog.metrics.start_time = Some(now());
    blog.metrics.uptime = 500;
    let prepared = prepare_for_this_vm(&blog, now());
    assert_eq!(prepared.status, ApplicationStatus::Draft);
    assert_eq!(prepared.metrics.memory_usage, 0.0);
    assert_eq!(prepared.metrics.uptime, 0);
    assert_eq!(prepared.metrics.start_time, None);
    assert_eq!(prepared.metrics.request_count, 99);
    assert_eq!(prepared.execution, blog.execution);
    assert!(!prepared.runtime_status.can_start);
}

#[test]
fn apply_is_one_step_on_the_record() {
    let existing = vec![app("blog", 8000), app("shop", 8001)];
    let mut book = AppBook::default();
    for application in &existing {
        book.save(application.clone());
    }
    book.current_releases
        .insert(existing[0].id, uuid::Uuid::from_u128(7));
    let mut other_blog = app("blog", 8000);
    other_blog.id = uuid::Uuid::from_u128(9);
    let plan = plan(&existing, &imported(vec![other_blog.clone()])).expect("plans");
    plan.apply_to(&mut book);
    let ids: BTreeSet<ApplicationId> = book.applications.keys().copied().collect();
    assert_eq!(ids, [existing[1].id, other_blog.id].into());
    assert!(book.current_releases.is_empty());
    assert_eq!(
        book.applications[&other_blog.id].status,
        ApplicationStatus::Draft
    );
}
