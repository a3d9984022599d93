//! The full backup archive: one POSIX tar holding the JSON backup, this browser's records,
//! each application's current release files and the VM snapshot, with a manifest of SHA-256s
//! that is the archive's first entry.
//!
//! Layout (every name is fixed; anything else in the archive refuses it, so a hostile name
//! such as `../../etc/passwd` never reaches anything):
//!
//! | entry | what |
//! | --- | --- |
//! | `manifest.json` | [`ArchiveManifest`]: every other entry's size and SHA-256, the snapshot's record |
//! | `backup.json` | the seed's `ApplicationServerBackup`, readable by any implementation |
//! | `vm/applications.json` | the application record (deployments, current releases, processes) |
//! | `vm/packages.json` | the package record (what is installed in the snapshot) |
//! | `releases/<application id>.tar` | an application's current release, as a plain tar |
//! | `vm/state.bin` | the VM's saved state |
//!
//! The tar is uncompressed: the snapshot is most of it and the page writes it from the
//! browser's own buffer, without copying it through wasm. This module builds and reads the
//! 512-byte headers (with the `tar` crate's `Header`) and checks what was read against the
//! manifest; the page does the reading, writing and hashing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{ApplicationId, Sha256};

/// The manifest's `kind`.
pub const ARCHIVE_KIND: &str = "webvm-appserver-archive";
/// The archive layout this program writes and reads.
pub const ARCHIVE_FORMAT: u32 = 1;
/// The tar block size.
pub const BLOCK: u64 = 512;

pub const MANIFEST_ENTRY: &str = "manifest.json";
pub const BACKUP_ENTRY: &str = "backup.json";
pub const APP_RECORD_ENTRY: &str = "vm/applications.json";
pub const PACKAGE_RECORD_ENTRY: &str = "vm/packages.json";
pub const SNAPSHOT_ENTRY: &str = "vm/state.bin";
const RELEASES_PREFIX: &str = "releases/";
const RELEASE_SUFFIX: &str = ".tar";

/// The largest manifest read.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// The largest JSON entry read into the page (the backup or a record).
pub const MAX_JSON_BYTES: u64 = 64 << 20;
/// The largest release entry.
pub const MAX_RELEASE_BYTES: u64 = 1 << 30;
/// The largest snapshot (v86 states of a long-running 512 MiB guest stay far below).
pub const MAX_SNAPSHOT_BYTES: u64 = 4 << 30;
/// The most entries an archive may have (the fixed ones and one release per application).
pub const MAX_ENTRIES: usize = 5 + 10_000;

/// Why an archive can't be read, or doesn't match its manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    #[error("this is not a backup archive: {0}")]
    NotAnArchive(String),
    #[error("the archive is cut short: {0}")]
    Truncated(String),
    #[error("entry {index} of the archive has a broken header: {reason}")]
    BadHeader { index: usize, reason: String },
    #[error("the archive holds '{path}', which no backup archive has (refused, nothing was read from it)")]
    UnexpectedEntry { path: String },
    #[error("'{path}' is {size} bytes, more than the {limit} an archive may hold there")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("the manifest is unreadable: {0}")]
    Manifest(String),
    #[error("the archive does not match its manifest: {}", .0.join("; "))]
    Mismatch(Vec<String>),
}

/// One entry as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEntry {
    pub path: String,
    pub size: u64,
    pub sha256: Sha256,
}

/// The archive's first entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveManifest {
    pub kind: String,
    pub format_version: u32,
    #[serde(deserialize_with = "crate::model::time::required")]
    pub created_at: DateTime<Utc>,
    /// Every entry after the manifest, in archive order.
    pub entries: Vec<ManifestEntry>,
    /// The snapshot's record (the page's `SnapshotMeta`: image, emulator, memory), kept
    /// opaque here; the page checks it fits its machine before anything is written.
    pub snapshot: serde_json::Value,
}

impl ArchiveManifest {
    /// Reads the manifest's text, refusing another kind or a newer layout.
    pub fn from_json(text: &str) -> Result<Self, ArchiveError> {
        let manifest: ArchiveManifest = serde_json::from_str(text)
            .map_err(|error| ArchiveError::Manifest(error.to_string()))?;
        if manifest.kind != ARCHIVE_KIND {
            return Err(ArchiveError::NotAnArchive(format!(
                "its manifest is of kind '{}', not '{ARCHIVE_KIND}'",
                manifest.kind
            )));
        }
        if manifest.format_version != ARCHIVE_FORMAT {
            return Err(ArchiveError::Manifest(format!(
                "archive layout {} is not {ARCHIVE_FORMAT}, the one this program reads",
                manifest.format_version
            )));
        }
        Ok(manifest)
    }

    /// The release entries the manifest lists, by application.
    pub fn releases(&self) -> BTreeMap<ApplicationId, &ManifestEntry> {
        self.entries
            .iter()
            .filter_map(|entry| match EntryKind::of(&entry.path) {
                Some(EntryKind::Release(id)) => Some((id, entry)),
                _ => None,
            })
            .collect()
    }
}

/// What an entry is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Manifest,
    Backup,
    AppRecord,
    PackageRecord,
    Release(ApplicationId),
    Snapshot,
}

impl EntryKind {
    /// The kind of entry `path` names, or `None` for a name no archive has.
    pub fn of(path: &str) -> Option<EntryKind> {
        Some(match path {
            MANIFEST_ENTRY => EntryKind::Manifest,
            BACKUP_ENTRY => EntryKind::Backup,
            APP_RECORD_ENTRY => EntryKind::AppRecord,
            PACKAGE_RECORD_ENTRY => EntryKind::PackageRecord,
            SNAPSHOT_ENTRY => EntryKind::Snapshot,
            other => {
                let id = other
                    .strip_prefix(RELEASES_PREFIX)?
                    .strip_suffix(RELEASE_SUFFIX)?;
                // Only the canonical hyphenated form, so one release has one name.
                let parsed = ApplicationId::parse_str(id).ok()?;
                if parsed.hyphenated().to_string() != id {
                    return None;
                }
                EntryKind::Release(parsed)
            }
        })
    }

    /// The most bytes an entry of this kind may have.
    pub fn limit(self) -> u64 {
        match self {
            EntryKind::Manifest => MAX_MANIFEST_BYTES,
            EntryKind::Backup | EntryKind::AppRecord | EntryKind::PackageRecord => MAX_JSON_BYTES,
            EntryKind::Release(_) => MAX_RELEASE_BYTES,
            EntryKind::Snapshot => MAX_SNAPSHOT_BYTES,
        }
    }
}

/// The name of an application's release entry.
pub fn release_entry(id: ApplicationId) -> String {
    format!("{RELEASES_PREFIX}{}{RELEASE_SUFFIX}", id.hyphenated())
}

/// One entry header read from the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHead {
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
}

/// The 512-byte ustar header of a regular file `path` of `size` bytes.
pub fn entry_header(
    path: &str,
    size: u64,
    modified: DateTime<Utc>,
) -> Result<[u8; 512], ArchiveError> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(path)
        .map_err(|error| ArchiveError::BadHeader {
            index: 0,
            reason: format!("'{path}': {error}"),
        })?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(u64::try_from(modified.timestamp()).unwrap_or(0));
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Ok(*header.as_bytes())
}

/// The zero bytes that pad an entry of `size` bytes to a whole block.
pub fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

/// The two zero blocks that end a tar.
pub const END_OF_ARCHIVE: [u8; 1024] = [0; 1024];

/// Reads the header block of entry `index`: `None` at the end of the archive (a zero
/// block). Refuses a bad checksum, anything but a regular file, a name no archive has and
/// a size above its kind's limit.
pub fn read_header(index: usize, block: &[u8]) -> Result<Option<EntryHead>, ArchiveError> {
    let bad = |reason: String| ArchiveError::BadHeader { index, reason };
    let block: &[u8; 512] = block
        .try_into()
        .map_err(|_| ArchiveError::Truncated(format!("entry {index}'s header is incomplete")))?;
    if block.iter().all(|byte| *byte == 0) {
        return Ok(None);
    }
    let header = tar::Header::from_byte_slice(block);
    let recorded = header
        .cksum()
        .map_err(|error| bad(format!("its checksum field is unreadable ({error})")))?;
    if recorded != checksum(block) {
        return Err(bad("its checksum is wrong".into()));
    }
    let path = String::from_utf8(header.path_bytes().into_owned())
        .map_err(|_| bad("its name is not UTF-8".into()))?;
    if header.entry_type() != tar::EntryType::Regular {
        return Err(ArchiveError::UnexpectedEntry { path });
    }
    let kind =
        EntryKind::of(&path).ok_or_else(|| ArchiveError::UnexpectedEntry { path: path.clone() })?;
    let size = header
        .size()
        .map_err(|error| bad(format!("its size is unreadable ({error})")))?;
    if size > kind.limit() {
        return Err(ArchiveError::TooLarge {
            path,
            size,
            limit: kind.limit(),
        });
    }
    Ok(Some(EntryHead { path, kind, size }))
}

/// The ustar checksum: the sum of the header's bytes with the checksum field as spaces.
fn checksum(block: &[u8; 512]) -> u32 {
    block
        .iter()
        .enumerate()
        .map(|(at, byte)| {
            if (148..156).contains(&at) {
                u32::from(b' ')
            } else {
                u32::from(*byte)
            }
        })
        .sum()
}

/// An entry as the page read it: its name, size and the SHA-256 it computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Checks the entries read after the manifest against it: the same entries in the same
/// order, each of the recorded size and SHA-256, and the fixed ones all present. Every
/// difference is named.
pub fn check_against_manifest(
    manifest: &ArchiveManifest,
    read: &[ReadEntry],
) -> Result<(), ArchiveError> {
    let mut problems = Vec::new();
    let listed: BTreeMap<&str, &ManifestEntry> = manifest
        .entries
        .iter()
        .map(|entry| (entry.path.as_str(), entry))
        .collect();
    if listed.len() != manifest.entries.len() {
        problems.push("the manifest lists an entry twice".to_string());
    }
    let mut seen = BTreeSet::new();
    for entry in read {
        if !seen.insert(entry.path.as_str()) {
            problems.push(format!("'{}' is in the archive twice", entry.path));
            continue;
        }
        match listed.get(entry.path.as_str()) {
            None => problems.push(format!("'{}' is not in the manifest", entry.path)),
            Some(recorded) if recorded.size != entry.size => problems.push(format!(
                "'{}' is {} bytes, the manifest says {}",
                entry.path, entry.size, recorded.size
            )),
            Some(recorded) if !recorded.sha256.as_str().eq_ignore_ascii_case(&entry.sha256) => {
                problems.push(format!(
                    "'{}' has SHA-256 {}, the manifest says {}",
                    entry.path,
                    entry.sha256,
                    recorded.sha256.as_str()
                ))
            }
            Some(_) => {}
        }
    }
    for path in listed.keys() {
        if !seen.contains(path) {
            problems.push(format!(
                "'{path}' is in the manifest but not in the archive"
            ));
        }
    }
    for required in [
        BACKUP_ENTRY,
        APP_RECORD_ENTRY,
        PACKAGE_RECORD_ENTRY,
        SNAPSHOT_ENTRY,
    ] {
        if !listed.contains_key(required) {
            problems.push(format!("the manifest has no '{required}'"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ArchiveError::Mismatch(problems))
    }
}

#[cfg(test)]
mod tests;
