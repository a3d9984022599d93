//! The guest scripts of `domain::release` run by a real POSIX shell with GNU tar (as the
//! Debian guest has them), on a bundle packed by `client::apps::bundle`: unpack, refuse an
//! existing release, remove a failed one, switch `current` atomically, prune, clean up an
//! interrupted deploy, remove an app; and `quote` against nasty strings. `/srv/apps` is
//! replaced by a temporary folder.

use std::process::Command;
use uuid::Uuid;
use webvm_appserver::client::apps::bundle::{Bundle, SourceFile, SourceMaterial};
use webvm_appserver::domain::release::*;
use webvm_appserver::model::DeployLimits;

fn sh(script: &str, base: &str) -> (i32, String) {
    let script = script.replace("/srv/apps", base);
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("ok");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn quote_survives_the_shell() {
    for nasty in [
        "it's",
        "''",
        "$(echo pwned)",
        "`id`",
        "a\nb",
        "-n",
        "\\",
        "\"",
        "*",
        "; rm -rf /tmp/nothing",
        " lead",
        "ünï",
    ] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote(nasty)))
            .output()
            .expect("ok");
        assert_eq!(String::from_utf8_lossy(&out.stdout), nasty);
    }
}

#[test]
fn scripts_work_in_a_real_shell() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let base = folder.path().to_str().expect("a UTF-8 path").to_string();
    let paths = AppPaths::parse("/srv/apps/it's app").expect("ok");
    let root = paths.root().replace("/srv/apps", &base);
    let files = |name: &str| {
        SourceMaterial::Files(vec![
            SourceFile {
                path: format!("top/{name}.html"),
                bytes: b"hi".to_vec(),
                executable: false,
            },
            SourceFile {
                path: "top/dist/run.sh".into(),
                bytes: b"#!/bin/sh\n".to_vec(),
                executable: true,
            },
        ])
    };
    let r1 = Uuid::from_u128(1);
    let r2 = Uuid::from_u128(2);
    let archive = format!("{base}/share a.tar.gz");
    let b1 = Bundle::from_material(files("one"), &DeployLimits::default()).expect("ok");
    std::fs::write(&archive, &b1.tar_gz).expect("ok");
    let (code, err) = sh(&extract_script(&paths, r1, &archive), &base);
    assert_eq!(code, 0, "{err}");
    assert!(!std::path::Path::new(&archive).exists(), "archive removed");
    let rel1 = format!("{root}/releases/{r1}");
    assert_eq!(
        std::fs::read(format!("{rel1}/one.html")).expect("ok"),
        b"hi"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(format!("{rel1}/dist/run.sh"))
            .expect("ok")
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    std::fs::write(&archive, &b1.tar_gz).expect("ok");
    let (code, err) = sh(&extract_script(&paths, r1, &archive), &base);
    assert_eq!(code, EXIT_RELEASE_EXISTS, "{err}");
    assert!(err.contains("already exists"));
    // a corrupt archive: folder removed
    std::fs::write(&archive, b"garbage").expect("ok");
    let (code, _) = sh(&extract_script(&paths, Uuid::from_u128(9), &archive), &base);
    assert_ne!(code, 0);
    assert!(!std::path::Path::new(&format!("{root}/releases/{}", Uuid::from_u128(9))).exists());
    // switch
    let (code, err) = sh(&switch_script(&paths, r1, "", &[]).expect("ok"), &base);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_link(format!("{root}/current"))
            .expect("ok")
            .to_str()
            .expect("ok"),
        format!("releases/{r1}")
    );
    // missing served dir
    let (code, err) = sh(&switch_script(&paths, r1, "nope", &[]).expect("ok"), &base);
    assert_eq!(code, EXIT_TARGET_MISSING, "{err}");
    // second release with build dir, prune r1
    std::fs::write(
        &archive,
        &Bundle::from_material(files("two"), &DeployLimits::default())
            .expect("ok")
            .tar_gz,
    )
    .expect("ok");
    assert_eq!(sh(&extract_script(&paths, r2, &archive), &base).0, 0);
    let (code, err) = sh(
        &switch_script(&paths, r2, "dist", &[r1]).expect("ok"),
        &base,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_link(format!("{root}/current"))
            .expect("ok")
            .to_str()
            .expect("ok"),
        format!("releases/{r2}/dist")
    );
    assert!(!std::path::Path::new(&rel1).exists());
    assert!(std::fs::read(format!("{root}/current/run.sh")).is_ok());
    // interrupted deploy r3 that already switched current: cleanup points back to r2/dist
    let r3 = Uuid::from_u128(3);
    std::fs::write(&archive, &b1.tar_gz).expect("ok");
    assert_eq!(sh(&extract_script(&paths, r3, &archive), &base).0, 0);
    assert_eq!(
        sh(&switch_script(&paths, r3, "", &[]).expect("ok"), &base).0,
        0
    );
    let (code, err) = sh(
        &cleanup_script(&paths, r3, Some((r2, "dist")), &archive),
        &base,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_link(format!("{root}/current"))
            .expect("ok")
            .to_str()
            .expect("ok"),
        format!("releases/{r2}/dist")
    );
    assert!(!std::path::Path::new(&format!("{root}/releases/{r3}")).exists());
    // interrupted first deploy with no current in the record
    std::fs::write(&archive, &b1.tar_gz).expect("ok");
    assert_eq!(sh(&extract_script(&paths, r3, &archive), &base).0, 0);
    assert_eq!(
        sh(&switch_script(&paths, r3, "", &[]).expect("ok"), &base).0,
        0
    );
    let (code, err) = sh(&cleanup_script(&paths, r3, None, &archive), &base);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::symlink_metadata(format!("{root}/current")).is_err(),
        "current removed"
    );
    // cleanup of an app with no folder at all
    let other = AppPaths::parse("/srv/apps/none").expect("ok");
    assert_eq!(sh(&cleanup_script(&other, r3, None, &archive), &base).0, 0);
    // removal
    let removal = removal(&paths);
    assert_eq!(sh(&removal.script, &base).0, 0);
    assert!(!std::path::Path::new(&root).exists());
    assert!(std::path::Path::new(&base).exists());
}

#[test]
fn sync_script_applies_changes_to_a_kept_release_in_place() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let base = folder.path().to_str().expect("a UTF-8 path").to_string();
    let paths = AppPaths::parse("/srv/apps/synced").expect("ok");
    let release = Uuid::from_u128(7);
    let root = paths.root().replace("/srv/apps", &base);
    let dir = format!("{root}/releases/{release}");
    std::fs::create_dir_all(format!("{dir}/old/deep")).expect("ok");
    std::fs::write(format!("{dir}/index.html"), "v1").expect("ok");
    std::fs::write(format!("{dir}/gone.txt"), "x").expect("ok");
    std::fs::write(format!("{dir}/old/deep/a.txt"), "x").expect("ok");

    // One changed file under a lone folder (not stripped), one edited, a file and a folder
    // deleted.
    let changed = [
        SourceFile {
            path: "css/site.css".into(),
            bytes: b"body{}".to_vec(),
            executable: false,
        },
        SourceFile {
            path: "index.html".into(),
            bytes: b"v2".to_vec(),
            executable: false,
        },
    ];
    let bundle = futures::executor::block_on(Bundle::pack_changes(
        &changed,
        &DeployLimits::default(),
        |_| async {},
    ))
    .expect("packed");
    let archive = format!("{base}/sync it.tar.gz");
    std::fs::write(&archive, &bundle.tar_gz).expect("ok");
    let delete = vec!["gone.txt".to_string(), "old".to_string()];
    let (code, err) = sh(
        &sync_script(&paths, release, &delete, Some(&archive)),
        &base,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/index.html")).expect("ok"),
        "v2"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/css/site.css")).expect("ok"),
        "body{}"
    );
    assert!(!std::path::Path::new(&format!("{dir}/gone.txt")).exists());
    assert!(!std::path::Path::new(&format!("{dir}/old")).exists());
    assert!(!std::path::Path::new(&archive).exists(), "archive removed");

    // Deletions only, no archive.
    let (code, err) = sh(
        &sync_script(&paths, release, &["css".to_string()], None),
        &base,
    );
    assert_eq!(code, 0, "{err}");
    assert!(!std::path::Path::new(&format!("{dir}/css")).exists());

    // A release that is gone: its own exit code, and the archive is still removed.
    std::fs::write(&archive, &bundle.tar_gz).expect("ok");
    let (code, err) = sh(
        &sync_script(&paths, Uuid::from_u128(8), &[], Some(&archive)),
        &base,
    );
    assert_eq!(code, EXIT_TARGET_MISSING, "{err}");
    assert!(!std::path::Path::new(&archive).exists(), "archive removed");
}

#[test]
fn pack_release_script_packs_the_release_as_a_plain_tar() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let base = folder.path().to_str().expect("a UTF-8 path").to_string();
    let paths = AppPaths::parse("/srv/apps/it's packed").expect("ok");
    let release = Uuid::from_u128(9);
    let root = paths.root().replace("/srv/apps", &base);
    let dir = format!("{root}/releases/{release}");
    std::fs::create_dir_all(format!("{dir}/css")).expect("ok");
    std::fs::write(format!("{dir}/index.html"), "hello").expect("ok");
    std::fs::write(format!("{dir}/css/site.css"), "body{}").expect("ok");
    let out = format!("{base}/out $(x).tar");
    let (code, err) = sh(&pack_release_script(&paths, release, &out), &base);
    assert_eq!(code, 0, "{err}");
    let mut archive = tar::Archive::new(std::fs::File::open(&out).expect("packed"));
    let mut names: Vec<String> = archive
        .entries()
        .expect("a tar")
        .map(|entry| {
            entry
                .expect("an entry")
                .path()
                .expect("a path")
                .display()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["./", "./css/", "./css/site.css", "./index.html"]);

    // A release that is gone: the missing-target code, and no file.
    std::fs::remove_file(&out).expect("ok");
    let (code, err) = sh(
        &pack_release_script(&paths, Uuid::from_u128(10), &out),
        &base,
    );
    assert_eq!(code, EXIT_TARGET_MISSING, "{err}");
    assert!(!std::path::Path::new(&out).exists());
}
