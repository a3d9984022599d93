//! Integration tests of the guest image routes: the manifest with and without a boot
//! snapshot, and the snapshot file itself (gzip encoding, ETag, caching); symbolic links,
//! directories and deleted files in the served directories; the manifest's answer without a
//! guest image; boot snapshot records read off the async threads.
#![cfg(feature = "ssr")]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use webvm_appserver::server::config::Config;
use webvm_appserver::server::static_files::{routes, GuestImage, StaticFiles};

const IMAGE_HASH: &str = "0123456789abcdef";
const SNAPSHOT_FILE: &str = "boot-snapshot-v86-0.5.462-256m.bin.gz";

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A guest build directory with tiny boot files and a manifest listing them.
fn write_guest_image(dir: &Path) {
    let mut files = serde_json::Map::new();
    for name in [
        "seabios.bin",
        "vgabios.bin",
        "vmlinuz",
        "initrd.img",
        "rootfs.ext4",
    ] {
        let bytes = format!("contents of {name}");
        std::fs::write(dir.join(name), &bytes).expect("write boot file");
        files.insert(
            name.into(),
            serde_json::json!({ "size": bytes.len(), "sha256": sha256_hex(bytes.as_bytes()) }),
        );
    }
    let manifest = serde_json::json!({
        "hash": IMAGE_HASH,
        "kernelCmdline": "console=ttyS0",
        "readyMarker": "webvm-ready",
        "files": files,
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("write manifest");
}

/// A boot snapshot (gzip bytes) and its record; returns the served bytes.
fn write_boot_snapshot(dir: &Path, v86_version: &str, file: &str) -> Vec<u8> {
    use std::io::Write;
    let state = vec![7u8; 100_000];
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&state).expect("gzip");
    let encoded = encoder.finish().expect("gzip");
    std::fs::write(dir.join(file), &encoded).expect("write snapshot");
    let record = serde_json::json!({
        "schemaVersion": 1,
        "engine": "v86",
        "imageHash": IMAGE_HASH,
        "v86Version": v86_version,
        "memoryMb": 256,
        "savedAt": "2026-01-01T00:00:00Z",
        "size": state.len(),
        "sha256": sha256_hex(&state),
        "agentInstance": "agent-1",
        "file": file,
        "encoding": "gzip",
        "encodedSize": encoded.len(),
        "encodedSha256": sha256_hex(&encoded),
    });
    let stem = file.trim_end_matches(".bin.gz");
    std::fs::write(dir.join(format!("{stem}.json")), record.to_string()).expect("write record");
    encoded
}

/// Serves a router whose guest directory is `guest` (and whose v86 package says 0.5.462).
async fn serve(data: &Path, guest: &Path) -> String {
    let v86_build = data.join("node_modules").join("v86").join("build");
    std::fs::create_dir_all(&v86_build).expect("v86 dir");
    std::fs::write(
        v86_build.join("..").join("package.json"),
        r#"{"version":"0.5.462+gabc"}"#,
    )
    .expect("v86 package.json");
    let mut config = Config::for_data_dir(data.join("data"));
    config.guest_dir = Some(guest.to_path_buf());
    config.v86_dir = v86_build;
    common::serve_on_loopback(&config).await
}

async fn manifest(base: &str) -> serde_json::Value {
    let response = reqwest::get(format!("{base}/guest/manifest.json"))
        .await
        .expect("manifest request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("manifest JSON")
}

#[tokio::test]
async fn without_a_boot_snapshot_the_manifest_has_none() {
    let temp = tempfile::tempdir().expect("temp dir");
    let guest = temp.path().join("guest");
    std::fs::create_dir_all(&guest).expect("guest dir");
    write_guest_image(&guest);
    let base = serve(temp.path(), &guest).await;
    let manifest = manifest(&base).await;
    assert_eq!(manifest["hash"], IMAGE_HASH);
    assert_eq!(manifest["readyMarker"], "webvm-ready");
    assert!(manifest.get("bootSnapshot").is_none(), "{manifest}");
    let missing = reqwest::get(format!("{base}/guest/{IMAGE_HASH}/{SNAPSHOT_FILE}"))
        .await
        .expect("request");
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_boot_snapshot_is_listed_and_served_gzip_encoded_with_its_etag() {
    let temp = tempfile::tempdir().expect("temp dir");
    let guest = temp.path().join("guest");
    std::fs::create_dir_all(&guest).expect("guest dir");
    write_guest_image(&guest);
    // One for another v86 build (newer), one for the served build: the served build wins.
    write_boot_snapshot(&guest, "0.5.999", "boot-snapshot-v86-0.5.999-256m.bin.gz");
    let encoded = write_boot_snapshot(&guest, "0.5.462", SNAPSHOT_FILE);
    // A record whose file is gone is not offered.
    std::fs::write(
        guest.join("boot-snapshot-v86-0.4.0-256m.json"),
        r#"{"imageHash":"x","v86Version":"0.4.0","savedAt":"2030-01-01T00:00:00Z","file":"boot-snapshot-v86-0.4.0-256m.bin.gz","encoding":"gzip","encodedSize":5,"encodedSha256":"0000000000000000000000000000000000000000000000000000000000000000"}"#,
    )
    .expect("write stale record");
    let base = serve(temp.path(), &guest).await;

    let manifest = manifest(&base).await;
    let entry = &manifest["bootSnapshot"];
    let sha = sha256_hex(&encoded);
    assert_eq!(entry["v86Version"], "0.5.462", "{manifest}");
    assert_eq!(entry["imageHash"], IMAGE_HASH);
    assert_eq!(entry["memoryMb"], 256);
    assert_eq!(entry["size"], 100_000);
    assert_eq!(entry["agentInstance"], "agent-1");
    assert_eq!(entry["encodedSize"], encoded.len());
    let url = entry["url"].as_str().expect("url");
    assert_eq!(
        url,
        format!("/guest/{IMAGE_HASH}/{SNAPSHOT_FILE}?sha256={}", &sha[..16])
    );

    let client = reqwest::Client::new();
    let response = client
        .get(format!("{base}{url}"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("snapshot request");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["etag"], format!("\"{sha}\""));
    assert!(headers["cache-control"]
        .to_str()
        .expect("ascii")
        .contains("immutable"));
    let body = response.bytes().await.expect("body");
    assert_eq!(
        body.as_ref(),
        encoded.as_slice(),
        "served as stored, not re-encoded"
    );

    let again = client
        .get(format!("{base}{url}"))
        .header("if-none-match", format!("\"{sha}\""))
        .send()
        .await
        .expect("conditional request");
    assert_eq!(again.status(), 304);

    // Only boot-snapshot files with a valid record are served from the directory.
    for name in [
        "boot-snapshot-v86-0.4.0-256m.bin.gz",
        "boot-snapshot-v86-0.5.462-256m.json",
    ] {
        let response = reqwest::get(format!("{base}/guest/{IMAGE_HASH}/{name}"))
            .await
            .expect("request");
        assert_eq!(response.status(), 404, "{name}");
    }
}

/// The static-file routes alone (in-process), over `guest` and the v86 build in `v86_dir`.
fn static_router(guest: &Path, v86_dir: &Path) -> Router {
    let image = GuestImage::load(guest).expect("guest image loads");
    routes(StaticFiles {
        guest: Some(Arc::new(image)),
        guest_problem: None,
        v86_dir: v86_dir.to_path_buf(),
    })
}

async fn send(
    router: &Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("body")
        .to_vec();
    (parts.status, parts.headers, body)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

/// Log lines written on this thread while the guard lives.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs.clone(), tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// `len` bytes that say SECRET.
fn secret(len: usize) -> Vec<u8> {
    b"SECRET-".iter().copied().cycle().take(len).collect()
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_or_a_directory_in_a_served_directory_is_a_404_never_its_target() {
    use std::os::unix::fs::symlink;
    let temp = tempfile::tempdir().expect("temp dir");
    let guest = temp.path().join("guest");
    let outside = temp.path().join("outside");
    let v86_build = temp.path().join("node_modules").join("v86").join("build");
    let xterm_lib = temp.path().join("node_modules/@xterm/xterm/lib");
    for dir in [&guest, &outside, &v86_build, &xterm_lib] {
        std::fs::create_dir_all(dir).expect("dir");
    }
    write_guest_image(&guest);
    let encoded = write_boot_snapshot(&guest, "0.5.462", SNAPSHOT_FILE);
    std::fs::write(v86_build.join("libv86.mjs"), b"export default 'v86';\n").expect("mjs");
    let router = static_router(&guest, &v86_build);

    // After loading: image files become links to files of the same size elsewhere (so no
    // size check can tell), or a directory; the vendored files become links too.
    let rootfs_len = "contents of rootfs.ext4".len();
    std::fs::write(outside.join("secret"), secret(rootfs_len)).expect("secret");
    std::fs::remove_file(guest.join("rootfs.ext4")).expect("remove");
    symlink(outside.join("secret"), guest.join("rootfs.ext4")).expect("symlink");
    std::fs::write(outside.join("snapshot-copy"), &encoded).expect("copy");
    std::fs::remove_file(guest.join(SNAPSHOT_FILE)).expect("remove");
    symlink(outside.join("snapshot-copy"), guest.join(SNAPSHOT_FILE)).expect("symlink");
    std::fs::remove_file(guest.join("vgabios.bin")).expect("remove");
    std::fs::create_dir(guest.join("vgabios.bin")).expect("directory");
    symlink(outside.join("secret"), v86_build.join("libv86.js")).expect("symlink");
    symlink(outside.join("secret"), xterm_lib.join("xterm.js")).expect("symlink");

    for (uri, range) in [
        (format!("/guest/{IMAGE_HASH}/rootfs.ext4"), None),
        (
            format!("/guest/{IMAGE_HASH}/rootfs.ext4"),
            Some("bytes=0-5"),
        ),
        (format!("/guest/{IMAGE_HASH}/{SNAPSHOT_FILE}"), None),
        (format!("/guest/{IMAGE_HASH}/vgabios.bin"), None),
        ("/vendor/v86/libv86.js".to_string(), None),
        ("/vendor/xterm/xterm.js".to_string(), None),
    ] {
        let mut request = Request::get(&uri);
        if let Some(range) = range {
            request = request.header("range", range);
        }
        let (status, _, body) = send(&router, request.body(Body::empty()).expect("request")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri} {range:?}");
        assert!(!body.windows(6).any(|window| window == b"SECRET"), "{uri}");
    }
    let (status, _, body) = send(&router, get("/guest/manifest.json")).await;
    assert_eq!(status, StatusCode::OK);
    let manifest: serde_json::Value = serde_json::from_slice(&body).expect("manifest JSON");
    assert!(
        manifest.get("bootSnapshot").is_none(),
        "a linked snapshot is not offered: {manifest}"
    );

    // A regular vendored file is still served, with its media type and Last-Modified.
    let (status, headers, body) = send(&router, get("/vendor/v86/libv86.mjs")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"export default 'v86';\n");
    assert!(headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/javascript"));
    let modified = headers["last-modified"].clone();
    let request = Request::get("/vendor/v86/libv86.mjs")
        .header("if-modified-since", modified)
        .body(Body::empty())
        .expect("request");
    let (status, _, _) = send(&router, request).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn a_guest_file_deleted_after_loading_is_a_404_logged_at_warn() {
    let temp = tempfile::tempdir().expect("temp dir");
    let guest = temp.path().join("guest");
    std::fs::create_dir_all(&guest).expect("guest dir");
    write_guest_image(&guest);
    let router = static_router(&guest, &temp.path().join("v86"));
    std::fs::remove_file(guest.join("vmlinuz")).expect("remove");

    let (logs, _guard) = Logs::capture();
    let (status, _, _) = send(&router, get(&format!("/guest/{IMAGE_HASH}/vmlinuz"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let logs = logs.text();
    assert!(
        logs.lines()
            .any(|line| line.contains(" WARN ") && line.contains("vmlinuz")),
        "a WARN names the file:\n{logs}"
    );
    assert!(!logs.contains("ERROR"), "{logs}");
}

#[tokio::test]
async fn without_a_guest_image_the_manifest_answers_a_generic_503_with_a_reference() {
    let temp = tempfile::tempdir().expect("temp dir");
    let missing = temp.path().join("private-guest-dir-c0ffee");
    let mut config = Config::for_data_dir(temp.path().join("data"));
    config.guest_dir = Some(missing.clone());
    config.v86_dir = temp.path().join("v86");
    let (logs, _guard) = Logs::capture();
    let router = webvm_appserver::host::build_router(&config)
        .await
        .expect("router builds");

    let mut references = Vec::new();
    for _ in 0..2 {
        let (status, _, body) = send(&router, get("/guest/manifest.json")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let text = String::from_utf8_lossy(&body).into_owned();
        for leak in [
            "private-guest-dir",
            temp.path().to_str().expect("utf-8 path"),
            "WEBVM_GUEST_DIR",
            "build.sh",
        ] {
            assert!(!text.contains(leak), "the body names {leak:?}: {text}");
        }
        let body: serde_json::Value = serde_json::from_str(&text).expect("JSON body");
        assert_eq!(
            body["error"],
            "the guest image is not available on this server"
        );
        let reference = body["reference"].as_str().expect("reference").to_string();
        assert!(
            reference.len() == 8 && reference.bytes().all(|b| b.is_ascii_hexdigit()),
            "{reference}"
        );
        references.push(reference);
    }
    assert_eq!(references[0], references[1], "one problem, one reference");
    let logs = logs.text();
    let logged: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains(&references[0]))
        .collect();
    assert_eq!(logged.len(), 1, "logged once:\n{logs}");
    assert!(
        logged[0].contains(" WARN ") && logged[0].contains("private-guest-dir-c0ffee"),
        "the log line has the detail: {}",
        logged[0]
    );
}

#[test]
fn boot_snapshot_records_are_read_on_the_blocking_pool_and_new_ones_appear_without_a_restart() {
    let temp = tempfile::tempdir().expect("temp dir");
    let guest = temp.path().join("guest");
    std::fs::create_dir_all(&guest).expect("guest dir");
    write_guest_image(&guest);
    let router = static_router(&guest, &temp.path().join("v86"));
    // A single-threaded runtime starts threads only for its blocking pool.
    let manifest = |router: &Router| {
        let started = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&started);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_start(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .expect("runtime");
        let (status, _, body) = runtime.block_on(send(router, get("/guest/manifest.json")));
        assert_eq!(status, StatusCode::OK);
        let manifest: serde_json::Value = serde_json::from_slice(&body).expect("manifest JSON");
        (manifest, started.load(Ordering::SeqCst))
    };
    let (first, threads) = manifest(&router);
    assert!(first.get("bootSnapshot").is_none(), "{first}");
    assert!(
        threads >= 1,
        "the boot snapshot records were read on the blocking pool"
    );
    // The build script writes a snapshot while the server runs.
    write_boot_snapshot(&guest, "0.5.462", SNAPSHOT_FILE);
    let (second, _) = manifest(&router);
    assert_eq!(second["bootSnapshot"]["file"], SNAPSHOT_FILE, "{second}");
}

#[tokio::test]
async fn the_idb_module_is_served_from_node_modules_and_nothing_else_of_its_package() {
    let temp = tempfile::tempdir().expect("temp dir");
    let guest = temp.path().join("guest");
    let v86_build = temp.path().join("node_modules").join("v86").join("build");
    let idb_build = temp.path().join("node_modules/idb/build");
    for dir in [&guest, &v86_build, &idb_build] {
        std::fs::create_dir_all(dir).expect("dir");
    }
    write_guest_image(&guest);
    std::fs::write(idb_build.join("index.js"), b"export function openDB() {}\n").expect("idb");
    std::fs::write(idb_build.join("index.cjs"), b"module.exports = {};\n").expect("cjs");
    let router = static_router(&guest, &v86_build);

    let (status, headers, body) = send(&router, get("/vendor/idb/index.js")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"export function openDB() {}\n");
    assert!(headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/javascript"));
    for uri in ["/vendor/idb/index.cjs", "/vendor/idb/..%2Fpackage.json"] {
        let (status, _, _) = send(&router, get(uri)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
    }
}
