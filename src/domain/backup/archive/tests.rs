//! Tests of the backup archive's headers, names and manifest checks.

use chrono::TimeZone;

use super::*;

const APP: &str = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";
const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const OTHER: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
}

fn entry(path: &str, size: u64, sha: &str) -> ManifestEntry {
    ManifestEntry {
        path: path.into(),
        size,
        sha256: Sha256::parse(sha).unwrap(),
    }
}

fn read(path: &str, size: u64, sha: &str) -> ReadEntry {
    ReadEntry {
        path: path.into(),
        size,
        sha256: sha.into(),
    }
}

fn manifest(entries: Vec<ManifestEntry>) -> ArchiveManifest {
    ArchiveManifest {
        kind: ARCHIVE_KIND.into(),
        format_version: ARCHIVE_FORMAT,
        created_at: at(),
        entries,
        snapshot: serde_json::json!({ "imageHash": "abc" }),
    }
}

fn full() -> Vec<ManifestEntry> {
    vec![
        entry(BACKUP_ENTRY, 10, HASH),
        entry(APP_RECORD_ENTRY, 20, HASH),
        entry(PACKAGE_RECORD_ENTRY, 30, HASH),
        entry(&release_entry(APP.parse().unwrap()), 40, HASH),
        entry(SNAPSHOT_ENTRY, 50, HASH),
    ]
}

fn as_read(entries: &[ManifestEntry]) -> Vec<ReadEntry> {
    entries
        .iter()
        .map(|entry| read(&entry.path, entry.size, entry.sha256.as_str()))
        .collect()
}

#[test]
fn entry_names_are_only_the_fixed_ones_and_canonical_release_names() {
    let id: ApplicationId = APP.parse().unwrap();
    let cases: [(&str, Option<EntryKind>); 12] = [
        ("manifest.json", Some(EntryKind::Manifest)),
        ("backup.json", Some(EntryKind::Backup)),
        ("vm/applications.json", Some(EntryKind::AppRecord)),
        ("vm/packages.json", Some(EntryKind::PackageRecord)),
        ("vm/state.bin", Some(EntryKind::Snapshot)),
        (&format!("releases/{APP}.tar"), Some(EntryKind::Release(id))),
        ("../../etc/passwd", None),
        ("/vm/state.bin", None),
        ("./backup.json", None),
        ("releases/../backup.json.tar", None),
        (&format!("releases/{}.tar", APP.to_uppercase()), None),
        (&format!("releases/{}.tar", APP.replace('-', "")), None),
    ];
    for (path, expected) in cases {
        assert_eq!(EntryKind::of(path), expected, "{path}");
    }
}

#[test]
fn a_written_header_reads_back() {
    let header = entry_header("vm/state.bin", 58_000_123, at()).unwrap();
    let head = read_header(3, &header).unwrap().unwrap();
    assert_eq!(
        head,
        EntryHead {
            path: "vm/state.bin".into(),
            kind: EntryKind::Snapshot,
            size: 58_000_123
        }
    );
    // Long names go through ustar's prefix field.
    let release = release_entry(APP.parse().unwrap());
    let header = entry_header(&release, 1, at()).unwrap();
    assert_eq!(read_header(0, &header).unwrap().unwrap().path, release);
}

#[test]
fn bad_headers_are_refused_with_the_reason() {
    let good = entry_header("backup.json", 100, at()).unwrap();
    let mut flipped = good;
    flipped[0] = b'c';
    let hostile = {
        let mut header = tar::Header::new_ustar();
        header.set_path("etc/passwd").unwrap();
        header.set_size(1);
        header.set_cksum();
        *header.as_bytes()
    };
    let link = {
        let mut header = tar::Header::new_ustar();
        header.set_path("backup.json").unwrap();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_link_name("/etc/shadow").unwrap();
        header.set_cksum();
        *header.as_bytes()
    };
    let huge = entry_header("vm/packages.json", MAX_JSON_BYTES + 1, at()).unwrap();
    type Case<'a> = (&'a str, &'a [u8], fn(&ArchiveError) -> bool);
    let cases: [Case; 5] = [
        (
            "checksum",
            &flipped,
            |error| matches!(error, ArchiveError::BadHeader { index: 2, reason } if reason.contains("checksum")),
        ),
        (
            "unknown name",
            &hostile,
            |error| matches!(error, ArchiveError::UnexpectedEntry { path } if path == "etc/passwd"),
        ),
        ("symlink", &link, |error| {
            matches!(error, ArchiveError::UnexpectedEntry { .. })
        }),
        ("too large", &huge, |error| {
            matches!(error, ArchiveError::TooLarge { .. })
        }),
        ("short", &good[..100], |error| {
            matches!(error, ArchiveError::Truncated(_))
        }),
    ];
    for (name, block, expected) in cases {
        let error = read_header(2, block).unwrap_err();
        assert!(expected(&error), "{name}: {error}");
    }
    assert_eq!(read_header(9, &[0; 512]).unwrap(), None);
}

#[test]
fn padding_fills_the_last_block() {
    for (size, pad) in [(0, 0), (1, 511), (511, 1), (512, 0), (513, 511), (1024, 0)] {
        assert_eq!(padding(size), pad, "{size}");
    }
}

#[test]
fn the_manifest_is_checked_entry_by_entry() {
    let entries = full();
    let good = as_read(&entries);
    assert_eq!(
        check_against_manifest(&manifest(entries.clone()), &good),
        Ok(())
    );

    let mut wrong_hash = good.clone();
    wrong_hash[4].sha256 = OTHER.into();
    let mut wrong_size = good.clone();
    wrong_size[0].size = 11;
    let mut extra = good.clone();
    extra.push(read(&release_entry(uuid::Uuid::nil()), 1, HASH));
    let mut twice = good.clone();
    twice.push(good[1].clone());
    let missing = good[..4].to_vec();
    let cases: [(&str, Vec<ReadEntry>, &str); 5] = [
        (
            "hash",
            wrong_hash,
            &format!("'vm/state.bin' has SHA-256 {OTHER}, the manifest says {HASH}"),
        ),
        (
            "size",
            wrong_size,
            "'backup.json' is 11 bytes, the manifest says 10",
        ),
        ("extra", extra, "is not in the manifest"),
        (
            "twice",
            twice,
            "'vm/applications.json' is in the archive twice",
        ),
        (
            "missing",
            missing,
            "'vm/state.bin' is in the manifest but not in the archive",
        ),
    ];
    for (name, read, expected) in cases {
        match check_against_manifest(&manifest(entries.clone()), &read) {
            Err(ArchiveError::Mismatch(problems)) => {
                assert!(
                    problems.iter().any(|problem| problem.contains(expected)),
                    "{name}: {problems:?}"
                )
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let without_snapshot: Vec<ManifestEntry> = full().into_iter().take(4).collect();
    let error = check_against_manifest(
        &manifest(without_snapshot.clone()),
        &as_read(&without_snapshot),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the manifest has no 'vm/state.bin'"),
        "{error}"
    );
}

#[test]
fn the_manifest_round_trips_and_refuses_other_kinds() {
    let written = manifest(full());
    let text = serde_json::to_string(&written).unwrap();
    assert!(text.contains("\"formatVersion\":1"), "{text}");
    assert_eq!(ArchiveManifest::from_json(&text).unwrap(), written);
    assert_eq!(written.releases().len(), 1);

    let other_kind = text.replace(ARCHIVE_KIND, "something-else");
    assert!(matches!(
        ArchiveManifest::from_json(&other_kind),
        Err(ArchiveError::NotAnArchive(_))
    ));
    let newer = text.replace("\"formatVersion\":1", "\"formatVersion\":2");
    assert!(ArchiveManifest::from_json(&newer)
        .unwrap_err()
        .to_string()
        .contains("layout 2"));
    assert!(matches!(
        ArchiveManifest::from_json("{\"kind\":"),
        Err(ArchiveError::Manifest(_))
    ));
}
