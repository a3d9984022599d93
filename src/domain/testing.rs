//! Test fixtures shared by the domain's unit tests.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::model::{
    AppName, Application, DeploymentConfig, DeploymentSource, ExecutionConfig, FileRef, PackageId,
    PackageStatus, Port, RuntimeCategory, RuntimePackage, SourceConfig,
};

/// A fixed instant: 2024-05-01 12:00:00 UTC.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

pub fn id(text: &str) -> PackageId {
    PackageId::parse(text).expect("valid package id")
}

pub fn port(number: i64) -> Port {
    Port::parse(number).expect("valid port")
}

pub fn package(text: &str, version: &str, status: PackageStatus) -> RuntimePackage {
    let mut package = RuntimePackage::new(id(text), text, RuntimeCategory::Runtime, version);
    package.status = status;
    package.extracted_size = 10.0;
    package
}

/// A small catalog: nodejs-18 (installed) conflicts with nodejs-20; django needs
/// python-311; nginx installed; express needs nodejs-20.
pub fn catalog() -> Vec<RuntimePackage> {
    let mut node18 = package(
        "nodejs-18",
        "18.19.0+dfsg-6~deb12u2",
        PackageStatus::Installed,
    );
    node18.conflicts = vec![id("nodejs-20")];
    let node20 = package("nodejs-20", "20.11.1", PackageStatus::Available);
    let python = package("python-311", "3.11.2-1+b1", PackageStatus::Available);
    let mut django = package("django", "4.2.11", PackageStatus::Available);
    django.dependencies = vec![id("python-311")];
    django.category = RuntimeCategory::Framework;
    let nginx = package("nginx", "1.22.1-9", PackageStatus::Installed);
    let mut express = package("express", "4.18.2", PackageStatus::Available);
    express.dependencies = vec![id("nodejs-20")];
    vec![node18, node20, python, django, nginx, express]
}

pub fn file(path: &str) -> FileRef {
    FileRef {
        path: path.to_owned(),
        size: 12,
        sha256: "ab".repeat(32),
        blob_id: Uuid::nil(),
    }
}

/// A valid, deployed upload app named `name` with entry point `index.js`.
pub fn application(name: &str) -> Application {
    let name = AppName::parse(name).expect("valid name");
    let deployment = DeploymentConfig {
        source_type: DeploymentSource::Upload,
        source_config: SourceConfig {
            files: Some(vec![file("index.js")]),
            ..SourceConfig::default()
        },
        build_config: None,
        deployment_path: DeploymentConfig::default_path(&name),
        entry_point: "index.js".to_owned(),
    };
    let execution = ExecutionConfig {
        command: "node".to_owned(),
        arguments: vec!["index.js".to_owned()],
        auto_restart: true,
        ..ExecutionConfig::default()
    };
    let id = Uuid::from_u128(u128::from(name.as_str().len() as u64) << 64 | hash(name.as_str()));
    let mut application = Application::new(id, name, deployment, execution, now());
    application.status = crate::model::ApplicationStatus::Deployed;
    application
}

fn hash(text: &str) -> u128 {
    text.bytes().fold(17u128, |acc, byte| {
        acc.wrapping_mul(31).wrapping_add(u128::from(byte))
    })
}
