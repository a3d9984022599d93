//! Integration tests of the package repository: real `.deb` files built with Debian's
//! `dpkg-deb` (gzip, xz and zstd control archives), indexed by the real router on a
//! temporary SQLite file (or a fresh PostgreSQL database when `WEBVM_TEST_POSTGRES_URL` is
//! set, see `common::database`), the catalog served by the server functions, and the files
//! served with Range, a strong ETag and no way out of the package directory.
#![cfg(feature = "ssr")]

mod common;

use common::database;

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use webvm_appserver::server::config::Config;
use webvm_appserver::server::packages::deb::{Compression, DebBuilder};
use webvm_appserver::server::packages::fixture::{genuine_deb, tampered_deb, TAMPERED_DEMO_FILE};
use webvm_appserver::server::packages::index_repository;
use webvm_appserver::server::storage::Storage;

/// A server on a free loopback port with its own data directory, catalog and packages.
struct TestServer {
    base: String,
    config: Config,
    _root: tempfile::TempDir,
}

impl TestServer {
    fn packages(&self) -> PathBuf {
        self.config.effective_packages_dir()
    }
}

/// A configuration whose catalog is `catalog` (TOML) and whose package dir holds `debs`.
async fn prepare(catalog: Option<&str>, debs: &[(String, Vec<u8>)]) -> (Config, tempfile::TempDir) {
    let root = tempfile::tempdir().expect("temp dir");
    let config = database::test_config(root.path().join("data")).await;
    std::fs::create_dir_all(config.effective_packages_dir()).expect("packages dir");
    if let Some(catalog) = catalog {
        std::fs::write(config.catalog.clone().expect("test catalog path"), catalog)
            .expect("catalog");
    }
    for (name, bytes) in debs {
        std::fs::write(config.effective_packages_dir().join(name), bytes).expect("deb");
    }
    (config, root)
}

async fn start(config: Config, root: tempfile::TempDir) -> TestServer {
    let base = common::serve_on_loopback(&config).await;
    TestServer {
        base,
        config,
        _root: root,
    }
}

async fn call(server: &TestServer, function: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("{}/api/{function}", server.base))
        .header("accept", "application/json")
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200, "{function}");
    response.json().await.expect("json")
}

fn sha256(bytes: &[u8]) -> String {
    hex_string(&Sha256::digest(bytes))
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds a real `.deb` with Debian's `dpkg-deb --build` (falling back to the server's own
/// builder only where dpkg-deb is missing) and returns its pool-style name and bytes.
fn dpkg_deb(control: &str, compression: &str) -> (String, Vec<u8>) {
    let fields: std::collections::BTreeMap<&str, &str> = control
        .lines()
        .filter_map(|line| line.split_once(": "))
        .collect();
    let name = format!(
        "{}_{}_{}.deb",
        fields["Package"], fields["Version"], fields["Architecture"]
    );
    let work = tempfile::tempdir().expect("temp dir");
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("DEBIAN")).expect("DEBIAN");
    let doc = tree.join("usr/share/doc").join(fields["Package"]);
    std::fs::create_dir_all(&doc).expect("doc dir");
    std::fs::write(tree.join("DEBIAN/control"), control).expect("control");
    std::fs::write(doc.join("README"), format!("{name}\n")).expect("readme");
    let out = work.path().join(&name);
    let built = Command::new("dpkg-deb")
        .args(["--root-owner-group", &format!("-Z{compression}"), "--build"])
        .arg(&tree)
        .arg(&out)
        .output();
    match built {
        Ok(output) if output.status.success() => (name, std::fs::read(&out).expect("built deb")),
        Ok(output) => panic!(
            "dpkg-deb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => {
            eprintln!("dpkg-deb unavailable ({error}); using the built-in builder");
            let compression = match compression {
                "xz" => Compression::Xz,
                "zstd" => Compression::Zstd,
                _ => Compression::Gzip,
            };
            let bytes = DebBuilder::new(control)
                .file(
                    &format!("usr/share/doc/{}/README", fields["Package"]),
                    name.as_bytes(),
                    0o644,
                )
                .compression(compression)
                .build()
                .expect("deb");
            (name, bytes)
        }
    }
}

/// A small repository: a tool with a Pre-Depends, an xz library, a zstd helper, and an
/// alternative that the base image satisfies.
fn fixtures() -> Vec<(String, Vec<u8>)> {
    vec![
        dpkg_deb(
            "Package: demo-tool\nVersion: 1.2-1\nArchitecture: i386\nMaintainer: Test <t@example.org>\nInstalled-Size: 2048\nPre-Depends: demo-pre\nDepends: demo-lib (>= 1.0) | demo-alt, libc6 (>= 2.0), awk, dpkg:any\nDescription: demo tool\n for the integration tests\n .\n with a long description\n",
            "gzip",
        ),
        dpkg_deb(
            "Package: demo-lib\nVersion: 1.5\nArchitecture: i386\nMaintainer: Test <t@example.org>\nInstalled-Size: 1024\nDepends: demo-tool\nDescription: demo library (in a Depends cycle with demo-tool)\n",
            "xz",
        ),
        dpkg_deb(
            "Package: demo-pre\nVersion: 0.1\nArchitecture: all\nMaintainer: Test <t@example.org>\nInstalled-Size: 1\nDescription: demo pre-dependency\n",
            "zstd",
        ),
        dpkg_deb(
            "Package: demo-other\nVersion: 2.0\nArchitecture: i386\nMaintainer: Test <t@example.org>\nConflicts: demo-lib\nDescription: conflicts with demo-lib\n",
            "xz",
        ),
    ]
}

const CATALOG: &str = r#"
[[runtime]]
id = "demo"
name = "Demo"
description = "the demo tool"
category = "tool"
version = "1.2"
serviceNames = ["demo"]
postInstallScript = "demo-tool --version"
roots = ["demo-tool"]

[[runtime]]
id = "other"
name = "Other"
description = "conflicts with demo at the Debian level"
category = "tool"
version = "2.0"
roots = ["demo-other"]

[[runtime]]
id = "needs-broken"
name = "Needs broken"
description = "its only package is unreadable"
category = "tool"
version = "1.0"
roots = ["demo-broken"]

[[runtime]]
id = "needs-nothing-there"
name = "Missing"
description = "its package was never downloaded"
category = "database"
version = "1.0"
roots = ["never-downloaded"]
"#;

#[tokio::test]
async fn the_catalog_is_resolved_from_real_debs() {
    let mut debs = fixtures();
    let (broken_name, broken_bytes) = dpkg_deb(
        "Package: demo-broken\nVersion: 1.0\nArchitecture: i386\nMaintainer: Test <t@example.org>\nDescription: truncated\n",
        "xz",
    );
    debs.push((
        broken_name.clone(),
        broken_bytes[..broken_bytes.len() / 3].to_vec(),
    ));
    let (config, root) = prepare(Some(CATALOG), &debs).await;
    let server = start(config, root).await;

    let catalog = call(&server, "package_catalog").await;
    assert_eq!(catalog["filesBaseUrl"], "/packages/files/");
    let entries = catalog["entries"].as_array().expect("entries");
    let entry = |id: &str| {
        entries
            .iter()
            .find(|entry| entry["id"] == id)
            .unwrap_or_else(|| panic!("{id} in the catalog"))
    };

    let demo = entry("demo");
    assert_eq!(demo["status"], "available", "{demo}");
    assert!(demo.get("catalogError").is_none());
    let files: Vec<&str> = demo["debPackages"]
        .as_array()
        .expect("debPackages")
        .iter()
        .filter_map(|file| file.as_str())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert_eq!(
        files[0], "demo-pre_0.1_all.deb",
        "the Pre-Depends comes first"
    );
    let steps = demo["installSteps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0], serde_json::json!(["demo-pre_0.1_all.deb"]));
    assert_eq!(
        steps[1].as_array().map(Vec::len),
        Some(2),
        "the Depends cycle shares a step"
    );
    for (name, bytes) in &debs {
        if let Some(sum) = demo["checksums"].get(name) {
            assert_eq!(sum.as_str(), Some(sha256(bytes).as_str()), "{name}");
        }
    }
    assert_eq!(demo["checksums"].as_object().map(|o| o.len()), Some(3));
    let bytes: usize = debs
        .iter()
        .filter(|(name, _)| files.contains(&name.as_str()))
        .map(|(_, bytes)| bytes.len())
        .sum();
    let size = demo["size"].as_f64().expect("size");
    assert!((size - bytes as f64 / 1_048_576.0).abs() < 0.01, "{size}");
    assert_eq!(demo["extractedSize"].as_f64(), Some(3.0));
    assert_eq!(demo["postInstallScript"], "demo-tool --version");
    assert_eq!(demo["serviceNames"], serde_json::json!(["demo"]));
    assert_eq!(
        demo["conflicts"],
        serde_json::json!(["other"]),
        "detected from Conflicts:"
    );
    assert_eq!(entry("other")["conflicts"], serde_json::json!(["demo"]));

    let broken = entry("needs-broken");
    assert_eq!(broken["status"], "error");
    let reason = broken["catalogError"].as_str().expect("reason");
    assert!(
        reason.contains(&broken_name) && reason.contains("unreadable"),
        "{reason}"
    );

    let missing = entry("needs-nothing-there");
    assert_eq!(missing["status"], "error");
    assert!(missing["catalogError"]
        .as_str()
        .is_some_and(|reason| reason.contains("never-downloaded")));

    // The seed-shaped list carries the same packages, without the extra fields.
    let list = call(&server, "list_packages").await;
    let list = list.as_array().expect("list");
    assert_eq!(list.len(), 4);
    assert!(list
        .iter()
        .all(|package| package.get("catalogError").is_none()
            && package.get("installSteps").is_none()));
    let dashboard = call(&server, "dashboard_summary").await;
    assert_eq!(dashboard["packagesInCatalog"], 4);
}

#[tokio::test]
async fn package_files_are_served_with_range_and_a_strong_etag_and_nothing_else() {
    let debs = fixtures();
    let (config, root) = prepare(Some(CATALOG), &debs).await;
    // Things that must never be served: a .deb outside the directory, a symlink to it,
    // the database, a hidden file.
    std::fs::write(root.path().join("secret.deb"), b"secret").expect("secret");
    std::fs::write(config.effective_packages_dir().join(".hidden.deb"), b"x").expect("hidden");
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        root.path().join("secret.deb"),
        config.effective_packages_dir().join("link_1_all.deb"),
    )
    .expect("symlink");
    let server = start(config, root).await;
    let client = reqwest::Client::new();
    let (name, bytes) = &debs[1];
    let url = format!("{}/packages/files/{name}", server.base);
    let etag = format!("\"{}\"", sha256(bytes));

    let full = client.get(&url).send().await.expect("get");
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["etag"], etag.as_str());
    assert_eq!(
        full.headers()["content-type"],
        "application/vnd.debian.binary-package"
    );
    assert!(full.headers().get("content-encoding").is_none());
    assert_eq!(full.bytes().await.expect("body").as_ref(), bytes.as_slice());

    let partial = client
        .get(&url)
        .header("range", "bytes=0-7")
        .send()
        .await
        .expect("range");
    assert_eq!(partial.status(), 206);
    assert_eq!(
        partial.headers()["content-range"],
        format!("bytes 0-7/{}", bytes.len()).as_str()
    );
    assert_eq!(partial.bytes().await.expect("body").as_ref(), b"!<arch>\n");

    let resumed = client
        .get(&url)
        .header("range", "bytes=8-")
        .header("if-range", etag.as_str())
        .send()
        .await
        .expect("if-range");
    assert_eq!(resumed.status(), 206);
    let stale = client
        .get(&url)
        .header("range", "bytes=8-")
        .header("if-range", "\"0000\"")
        .send()
        .await
        .expect("stale if-range");
    assert_eq!(stale.status(), 200, "a changed ETag gets the whole file");

    let cached = client
        .get(&url)
        .header("if-none-match", etag.as_str())
        .send()
        .await
        .expect("conditional");
    assert_eq!(cached.status(), 304);
    let head = client.head(&url).send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        bytes.len().to_string().as_str()
    );

    for path in [
        "..%2Fsecret.deb",
        "%2e%2e%2fsecret.deb",
        "..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        ".hidden.deb",
        "link_1_all.deb",
        "secret.deb",
        "..%5Csecret.deb",
        "nothing_1_all.deb",
        "demo-pre_0.1_all.deb%00.txt",
    ] {
        let response = client
            .get(format!("{}/packages/files/{path}", server.base))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404, "{path}");
    }
    let raw = raw_get(&server.base, "/packages/files/../../secret.deb").await;
    assert!(
        !raw.contains("secret") || raw.starts_with("HTTP/1.1 404"),
        "{raw}"
    );

    // A file that changed after indexing is not served under its old ETag.
    std::fs::write(server.packages().join(name), b"changed").expect("overwrite");
    let changed = client.get(&url).send().await.expect("changed");
    assert_eq!(changed.status(), 503);
}

/// Sends a request line verbatim (no client-side path normalisation).
async fn raw_get(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn the_tampered_demo_advertises_the_genuine_checksum_while_serving_other_bytes() {
    let genuine = sha256(&genuine_deb());
    let catalog = format!(
        r#"
[[runtime]]
id = "tampered-demo"
name = "Tampered demo"
description = "checksum test fixture"
category = "tool"
version = "1.0.0"
fixture = "tampered"
roots = [{{ package = "tampered-demo", sha256 = "{genuine}" }}]
"#
    );
    let tampered = tampered_deb();
    let (config, root) = prepare(
        Some(&catalog),
        &[(TAMPERED_DEMO_FILE.to_string(), tampered.clone())],
    )
    .await;
    let server = start(config, root).await;
    let catalog = call(&server, "package_catalog").await;
    let entry = &catalog["entries"][0];
    assert_eq!(
        entry["status"], "available",
        "the server does not refuse it: the browser must"
    );
    assert_eq!(entry["checksums"][TAMPERED_DEMO_FILE], genuine.as_str());
    assert!(entry["warnings"][0]
        .as_str()
        .is_some_and(|warning| warning.contains("does not match")));

    let response = reqwest::get(format!(
        "{}/packages/files/{TAMPERED_DEMO_FILE}",
        server.base
    ))
    .await
    .expect("get");
    let etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_string();
    let body = response.bytes().await.expect("body");
    assert_eq!(body.as_ref(), tampered.as_slice());
    assert_ne!(
        sha256(&body),
        genuine,
        "what the browser downloads fails its checksum"
    );
    assert_eq!(
        etag,
        format!("\"{}\"", sha256(&body)),
        "the ETag names the bytes sent"
    );
}

/// The tampered demo is a test fixture: the shipped catalog never lists it; a server started
/// with `--test-fixtures` (as the end-to-end suite starts it) lists it with the others.
#[tokio::test]
async fn the_tampered_demo_is_listed_only_with_test_fixtures() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog/runtimes.toml");
    for test_fixtures in [false, true] {
        let (mut config, root) =
            prepare(None, &[(TAMPERED_DEMO_FILE.to_string(), tampered_deb())]).await;
        config.catalog = Some(shipped.clone());
        config.test_fixtures = test_fixtures;
        let server = start(config, root).await;
        let catalog = call(&server, "package_catalog").await;
        let entries = catalog["entries"].as_array().expect("entries");
        let ids: Vec<&str> = entries
            .iter()
            .filter_map(|entry| entry["id"].as_str())
            .collect();
        assert!(ids.contains(&"nginx"), "{ids:?}");
        let demo = entries.iter().find(|entry| entry["id"] == "tampered-demo");
        match demo {
            Some(demo) => {
                assert!(test_fixtures, "listed without --test-fixtures: {ids:?}");
                assert_eq!(demo["status"], "available", "{demo}");
            }
            None => assert!(!test_fixtures, "missing with --test-fixtures: {ids:?}"),
        }
    }
}

#[tokio::test]
async fn a_rescan_picks_up_changes_and_reuses_unchanged_files() {
    let debs = fixtures();
    let (config, root) = prepare(Some(CATALOG), &debs[..2]).await;
    let storage = Storage::open(&config).await.expect("storage");
    let first = index_repository(&config, &storage).await.expect("index");
    assert_eq!((first.files, first.hashed, first.reused), (2, 2, 0));
    assert!(
        first.errors.iter().any(|error| error.starts_with("demo: ")),
        "demo-pre is missing"
    );

    let packages = config.effective_packages_dir();
    std::fs::write(packages.join(&debs[2].0), &debs[2].1).expect("add");
    std::fs::remove_file(packages.join(&debs[1].0)).expect("remove");
    let second = index_repository(&config, &storage).await.expect("rescan");
    assert_eq!((second.files, second.hashed, second.reused), (2, 1, 1));
    let stored = storage.package_file_index().await.expect("index");
    let names: Vec<&str> = stored.iter().map(|file| file.file_name.as_str()).collect();
    assert_eq!(names, vec![debs[2].0.as_str(), debs[0].0.as_str()]);
    assert!(stored.iter().all(|file| file.control.contains("Package: ")));
    drop(root);
}

#[tokio::test]
async fn a_bad_catalog_or_a_missing_directory_never_stops_the_server() {
    // Invalid catalog: the server starts, logs it, and the catalog stays empty.
    let (config, root) = prepare(Some("[[runtime]]\nid = \"Bad Id\"\n"), &fixtures()).await;
    let server = start(config, root).await;
    assert_eq!(call(&server, "list_packages").await, serde_json::json!([]));

    // A catalog without any package directory: every runtime is `error`, with the reason.
    let root = tempfile::tempdir().expect("temp dir");
    let config = database::test_config(root.path().join("data")).await;
    std::fs::create_dir_all(&config.data_dir).expect("data dir");
    std::fs::write(config.catalog.clone().expect("path"), CATALOG).expect("catalog");
    let server = start(config, root).await;
    let list = call(&server, "package_catalog").await;
    let entries = list["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 4);
    assert!(entries.iter().all(|entry| entry["status"] == "error"
        && entry["catalogError"]
            .as_str()
            .is_some_and(|r| r.contains("fill-packages"))));
    let missing = reqwest::get(format!(
        "{}/packages/files/demo-pre_0.1_all.deb",
        server.base
    ))
    .await
    .expect("get");
    assert_eq!(missing.status(), 404);
}

#[test]
fn the_genuine_demo_package_is_accepted_by_dpkg_deb() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path: &Path = &dir.path().join("genuine.deb");
    std::fs::write(path, genuine_deb()).expect("write");
    let Ok(output) = Command::new("dpkg-deb").arg("--info").arg(path).output() else {
        eprintln!("dpkg-deb unavailable: skipped");
        return;
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let extracted = dir.path().join("root");
    let status = Command::new("dpkg-deb")
        .arg("--extract")
        .arg(path)
        .arg(&extracted)
        .status()
        .expect("dpkg-deb --extract");
    assert!(status.success());
    let message = std::fs::read_to_string(extracted.join("usr/share/tampered-demo/message.txt"))
        .expect("message");
    assert_eq!(message, "genuine package contents\n");
}

/// The dpkg-deb-built fixtures, built once for the property test.
fn real_archives() -> &'static Vec<(String, Vec<u8>)> {
    static ARCHIVES: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    ARCHIVES.get_or_init(fixtures)
}

proptest::proptest! {
    /// Real archives (gzip, xz and zstd control members) with random bytes changed and
    /// random truncation: the reader returns an error or a control file, never panics.
    #[test]
    fn mutated_real_archives_never_panic(
        pick in proptest::prelude::any::<proptest::sample::Index>(),
        flips in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..16),
        cut in proptest::prelude::any::<proptest::sample::Index>(),
        truncate in proptest::prelude::any::<bool>(),
    ) {
        let archives = real_archives();
        let (_, original) = pick.get(archives);
        let mut bytes = original.clone();
        for (index, mask) in flips {
            let at = index.index(bytes.len());
            bytes[at] ^= mask;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let _ = webvm_appserver::server::packages::deb::read_control_bytes(&bytes);
    }
}
