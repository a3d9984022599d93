//! Integration tests of the guest image routes: the manifest with and without a boot
//! snapshot, and the snapshot file itself (gzip encoding, ETag, caching).
#![cfg(feature = "ssr")]

mod common;

use std::path::Path;

use sha2::{Digest, Sha256};
use webvm_appserver::server::config::Config;

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
