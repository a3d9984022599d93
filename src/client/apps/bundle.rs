//! A deploy's files in the browser: what a source produced ([`SourceMaterial`]), checked
//! against the archive rules of `domain::archive` and packed into one tar.gz for the guest.
//!
//! ```text
//! SourceMaterial ─ Files ─────────────────────────┐
//!                └ Archive ─ format by magic bytes, then name: ZIP | tar.gz/.tgz | tar
//!                    ZIP: the central directory (no data read) ─┤
//!                    tar: one pass over the headers (stops once over the byte limit) ─┤
//!   domain::archive::check_entries: every rule, every problem named; nothing reaches the VM
//!   ─▶ one tar.gz (fast level): folders 0755, files 0644 or 0755, symlinks, owner root
//! ```
//!
//! Plain Rust (crates `zip`, `tar`, `flate2` with its pure-Rust backend), compiled in both
//! builds and tested natively. Bytes are read where they lie: each file is copied once into
//! the compressor (ZIP entries through one reused buffer, checked against the size the
//! archive declared). [`Bundle::pack`] awaits `pause` every few MiB so the page stays
//! responsive while a large upload is packed.

use std::future::Future;
use std::io::{self, Cursor, Read};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::domain::archive::{
    check_changed_files, check_entries, describe, ArchiveRejected, CheckedEntry, CheckedKind,
    EntryKind, Layout, RawEntry, ReadState,
};
use crate::model::DeployLimits;

/// Entries listed in [`Bundle::preview`].
pub const PREVIEW_ENTRIES: usize = 200;
/// Bytes packed between two calls of the `pause` of [`Bundle::pack`].
const PAUSE_EVERY: u64 = 4 * 1024 * 1024;
/// Longest symlink target read from a ZIP entry.
const MAX_LINK_TARGET: u64 = 4096;

/// One file a source produced, before any check.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    /// Path as the source gave it (`/`-separated; checked later, never trusted).
    pub path: String,
    pub bytes: Vec<u8>,
    /// The executable bit (from an archive's mode or a local file's type).
    pub executable: bool,
}

/// What a source produced: loose files (upload, local folder) or one archive (upload of a
/// ZIP or `.tar.gz`, a URL, a GitHub zipball).
#[derive(Debug, Clone, PartialEq)]
pub enum SourceMaterial {
    Files(Vec<SourceFile>),
    Archive {
        /// The archive's file name (its extension tells ZIP from tar.gz when the bytes
        /// don't).
        name: String,
        bytes: Vec<u8>,
    },
}

/// The checked files, packed for the guest.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// One gzip-compressed tar of the checked layout.
    pub tar_gz: Vec<u8>,
    /// Regular files.
    pub file_count: u32,
    /// Their bytes, uncompressed.
    pub total_bytes: u64,
    /// Files, folders and links in the tar.
    pub entry_count: u32,
    /// The single top-level folder that was stripped, if any.
    pub stripped_folder: Option<String>,
    /// The first [`PREVIEW_ENTRIES`] entries: `dir/`, `file`, `link -> target`.
    pub preview: Vec<String>,
}

/// How far [`Bundle::pack`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackProgress {
    /// File bytes packed so far.
    pub done_bytes: u64,
    /// File bytes in all.
    pub total_bytes: u64,
}

/// Why the files could not be packed; nothing reached the VM.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BundleError {
    /// Entries break the archive rules (each problem names its entry).
    #[error(transparent)]
    Rejected(#[from] ArchiveRejected),
    #[error("'{name}' is not a ZIP, .tar.gz or .tar archive; nothing was deployed")]
    UnknownFormat { name: String },
    #[error("'{name}' is not a readable {format} archive ({reason}); nothing was deployed")]
    Corrupt {
        name: String,
        format: &'static str,
        reason: String,
    },
    #[error("packing the files failed: {0}")]
    Pack(String),
}

/// An archive's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Zip,
    TarGz,
    Tar,
}

impl Format {
    fn label(self) -> &'static str {
        match self {
            Format::Zip => "ZIP",
            Format::TarGz => "tar.gz",
            Format::Tar => "tar",
        }
    }

    /// From the magic bytes first, the name second.
    fn detect(name: &str, bytes: &[u8]) -> Option<Format> {
        if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            return Some(Format::Zip);
        }
        if bytes.starts_with(&[0x1f, 0x8b]) {
            return Some(Format::TarGz);
        }
        if bytes.get(257..262) == Some(b"ustar") {
            return Some(Format::Tar);
        }
        let name = name.to_ascii_lowercase();
        if name.ends_with(".zip") {
            Some(Format::Zip)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Format::TarGz)
        } else if name.ends_with(".tar") {
            Some(Format::Tar)
        } else {
            None
        }
    }
}

/// The tar.gz being written.
struct Packer {
    builder: tar::Builder<GzEncoder<Vec<u8>>>,
    mtime: u64,
    done: u64,
    total: u64,
    since_pause: u64,
}

impl Packer {
    fn new(layout: &Layout, capacity: usize) -> Self {
        let encoder = GzEncoder::new(Vec::with_capacity(capacity), Compression::fast());
        Packer {
            builder: tar::Builder::new(encoder),
            mtime: chrono::Utc::now().timestamp().max(0) as u64,
            done: 0,
            total: layout.total_bytes,
            since_pause: 0,
        }
    }

    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(self.mtime);
        header.set_uid(0);
        header.set_gid(0);
        header
    }

    /// Adds `entry`; `data` holds a file's bytes (exactly its size).
    fn add(&mut self, entry: &CheckedEntry, data: &[u8]) -> Result<(), BundleError> {
        let written = match &entry.kind {
            CheckedKind::Directory => {
                let mut header = self.header(tar::EntryType::Directory, 0o755, 0);
                self.builder
                    .append_data(&mut header, format!("{}/", entry.path), io::empty())
            }
            CheckedKind::File { executable, .. } => {
                let mode = if *executable { 0o755 } else { 0o644 };
                let mut header = self.header(tar::EntryType::Regular, mode, data.len() as u64);
                self.done += data.len() as u64;
                self.since_pause += data.len() as u64;
                self.builder.append_data(&mut header, &entry.path, data)
            }
            CheckedKind::Symlink { target } => {
                let mut header = self.header(tar::EntryType::Symlink, 0o777, 0);
                self.builder.append_link(&mut header, &entry.path, target)
            }
        };
        written.map_err(|error| BundleError::Pack(format!("{}: {error}", entry.path)))
    }

    /// Whether `pause` is due (and then resets the count).
    fn pause_due(&mut self) -> Option<PackProgress> {
        (self.since_pause >= PAUSE_EVERY).then(|| {
            self.since_pause = 0;
            PackProgress {
                done_bytes: self.done,
                total_bytes: self.total,
            }
        })
    }

    fn finish(self) -> Result<Vec<u8>, BundleError> {
        self.builder
            .into_inner()
            .and_then(GzEncoder::finish)
            .map_err(|error| BundleError::Pack(error.to_string()))
    }
}

impl Bundle {
    /// Checks and packs `material` in one go (see [`Bundle::pack`], which lets the page
    /// breathe in between).
    pub fn from_material(
        material: SourceMaterial,
        limits: &DeployLimits,
    ) -> Result<Bundle, BundleError> {
        futures::executor::block_on(Bundle::pack(material, limits, |_| async {}))
    }

    /// Checks every entry of `material` against the archive rules and `limits`, then packs
    /// the checked layout into one tar.gz, awaiting `pause` every few MiB.
    pub async fn pack<F, P>(
        material: SourceMaterial,
        limits: &DeployLimits,
        mut pause: F,
    ) -> Result<Bundle, BundleError>
    where
        F: FnMut(PackProgress) -> P,
        P: Future<Output = ()>,
    {
        match material {
            SourceMaterial::Files(files) => {
                let layout = check_entries(&raw_files(&files), limits, ReadState::default())?;
                Bundle::pack_files(&files, &layout, &mut pause).await
            }
            SourceMaterial::Archive { name, bytes } => match Format::detect(&name, &bytes) {
                Some(Format::Zip) => pack_zip(&name, &bytes, limits, &mut pause).await,
                Some(format) => pack_tar(&name, &bytes, format, limits, &mut pause).await,
                None => Err(BundleError::UnknownFormat { name }),
            },
        }
    }

    /// Packs the changed files of a synced folder, paths kept as they are (already
    /// relative to the release: see `domain::archive::check_changed_files`).
    pub async fn pack_changes<F, P>(
        files: &[SourceFile],
        limits: &DeployLimits,
        mut pause: F,
    ) -> Result<Bundle, BundleError>
    where
        F: FnMut(PackProgress) -> P,
        P: Future<Output = ()>,
    {
        let layout = check_changed_files(&raw_files(files), limits)?;
        Bundle::pack_files(files, &layout, &mut pause).await
    }

    async fn pack_files<F, P>(
        files: &[SourceFile],
        layout: &Layout,
        pause: &mut F,
    ) -> Result<Bundle, BundleError>
    where
        F: FnMut(PackProgress) -> P,
        P: Future<Output = ()>,
    {
        let mut packer = Packer::new(layout, (layout.total_bytes / 2) as usize + 65_536);
        for entry in &layout.entries {
            packer.add(entry, &files[entry.source].bytes)?;
            if let Some(progress) = packer.pause_due() {
                pause(progress).await;
            }
        }
        Bundle::finish(packer, layout)
    }

    fn finish(packer: Packer, layout: &Layout) -> Result<Bundle, BundleError> {
        let tar_gz = packer.finish()?;
        Ok(Bundle {
            tar_gz,
            file_count: layout.file_count,
            total_bytes: layout.total_bytes,
            entry_count: layout.entries.len() as u32,
            stripped_folder: layout.stripped_folder.clone(),
            preview: describe(layout).into_iter().take(PREVIEW_ENTRIES).collect(),
        })
    }
}

/// The archive rules' view of loose files.
fn raw_files(files: &[SourceFile]) -> Vec<RawEntry> {
    files
        .iter()
        .map(|file| RawEntry::file(&file.path, file.bytes.len() as u64, file.executable))
        .collect()
}

/// A ZIP entry's kind from its Unix mode (if any) and name.
fn zip_kind(mode: Option<u32>, name: &str) -> EntryKind {
    match mode.map(|mode| mode & 0o170_000) {
        Some(0o120_000) => EntryKind::Symlink {
            target: String::new(),
        },
        Some(0o040_000) => EntryKind::Directory,
        Some(0o010_000) => EntryKind::Fifo,
        Some(0o020_000 | 0o060_000) => EntryKind::Device,
        Some(0o140_000) => EntryKind::Socket,
        _ if name.ends_with('/') => EntryKind::Directory,
        _ => EntryKind::File,
    }
}

async fn pack_zip<F, P>(
    name: &str,
    bytes: &[u8],
    limits: &DeployLimits,
    pause: &mut F,
) -> Result<Bundle, BundleError>
where
    F: FnMut(PackProgress) -> P,
    P: Future<Output = ()>,
{
    let corrupt = |reason: String| BundleError::Corrupt {
        name: name.to_string(),
        format: "ZIP",
        reason,
    };
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|error| corrupt(error.to_string()))?;
    let mut raw = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let (path, mut kind, size, executable, readable) = {
            let file = archive
                .by_index_raw(index)
                .map_err(|error| corrupt(error.to_string()))?;
            let mode = file.unix_mode();
            let method = file.compression();
            let readable = matches!(
                method,
                zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated
            );
            let kind = if file.encrypted() {
                EntryKind::Other("password-protected entry".to_string())
            } else if !readable {
                EntryKind::Other(format!(
                    "entry compressed with {method:?} (only stored and deflate entries can be read)"
                ))
            } else {
                zip_kind(mode, file.name())
            };
            let executable = mode.is_some_and(|mode| mode & 0o111 != 0);
            (
                file.name().to_string(),
                kind,
                file.size(),
                executable,
                readable,
            )
        };
        if let (EntryKind::Symlink { target }, true) = (&mut kind, readable) {
            let file = archive
                .by_index(index)
                .map_err(|error| corrupt(format!("{path}: {error}")))?;
            let mut bytes = Vec::new();
            file.take(MAX_LINK_TARGET)
                .read_to_end(&mut bytes)
                .map_err(|error| corrupt(format!("{path}: {error}")))?;
            *target = String::from_utf8_lossy(&bytes).into_owned();
        }
        let size = if matches!(kind, EntryKind::File) {
            size
        } else {
            0
        };
        raw.push(RawEntry {
            path,
            kind,
            size,
            executable,
        });
    }
    let layout = check_entries(&raw, limits, ReadState::default())?;
    let mut packer = Packer::new(&layout, bytes.len() + 65_536);
    let mut buffer = Vec::new();
    for entry in &layout.entries {
        buffer.clear();
        if let CheckedKind::File { size, .. } = entry.kind {
            let file = archive
                .by_index(entry.source)
                .map_err(|error| corrupt(format!("{}: {error}", raw[entry.source].path)))?;
            file.take(size.saturating_add(1))
                .read_to_end(&mut buffer)
                .map_err(|error| corrupt(format!("{}: {error}", raw[entry.source].path)))?;
            if buffer.len() as u64 != size {
                return Err(corrupt(format!(
                    "entry '{}' holds {} bytes, not the {size} its header says",
                    raw[entry.source].path,
                    buffer.len()
                )));
            }
        }
        packer.add(entry, &buffer)?;
        if let Some(progress) = packer.pause_due() {
            pause(progress).await;
        }
    }
    Bundle::finish(packer, &layout)
}

/// A tar stream over `bytes` (gunzipped for tar.gz).
fn tar_reader(bytes: &[u8], format: Format) -> tar::Archive<Box<dyn Read + '_>> {
    let reader: Box<dyn Read + '_> = match format {
        Format::TarGz => Box::new(GzDecoder::new(bytes)),
        _ => Box::new(bytes),
    };
    tar::Archive::new(reader)
}

/// A tar entry's kind, or `None` for metadata entries (pax headers) that carry no file.
fn tar_kind<R: Read>(entry: &tar::Entry<'_, R>) -> Option<EntryKind> {
    use tar::EntryType as T;
    let kind = match entry.header().entry_type() {
        T::Regular | T::Continuous => EntryKind::File,
        T::Directory => EntryKind::Directory,
        T::Symlink => {
            let target = entry
                .link_name_bytes()
                .map(|target| String::from_utf8_lossy(&target).into_owned())
                .unwrap_or_default();
            EntryKind::Symlink { target }
        }
        T::Link => EntryKind::HardLink,
        T::Char | T::Block => EntryKind::Device,
        T::Fifo => EntryKind::Fifo,
        T::XGlobalHeader | T::XHeader => return None,
        T::GNUSparse => EntryKind::Other("sparse file".to_string()),
        other => EntryKind::Other(format!("tar entry of type {:?}", other.as_byte() as char)),
    };
    Some(kind)
}

async fn pack_tar<F, P>(
    name: &str,
    bytes: &[u8],
    format: Format,
    limits: &DeployLimits,
    pause: &mut F,
) -> Result<Bundle, BundleError>
where
    F: FnMut(PackProgress) -> P,
    P: Future<Output = ()>,
{
    let corrupt = |reason: String| BundleError::Corrupt {
        name: name.to_string(),
        format: format.label(),
        reason,
    };
    // Pass 1: the headers (the data is skipped, not kept).
    let mut raw = Vec::new();
    let mut read = ReadState::default();
    let mut declared = 0u64;
    {
        let mut archive = tar_reader(bytes, format);
        let entries = archive
            .entries()
            .map_err(|error| corrupt(error.to_string()))?;
        for entry in entries {
            let entry = entry.map_err(|error| corrupt(error.to_string()))?;
            let Some(kind) = tar_kind(&entry) else {
                continue;
            };
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let size = if matches!(kind, EntryKind::File) {
                entry.size()
            } else {
                0
            };
            let executable = entry.header().mode().is_ok_and(|mode| mode & 0o111 != 0);
            declared = declared.saturating_add(size);
            raw.push(RawEntry {
                path,
                kind,
                size,
                executable,
            });
            if declared > limits.max_total_bytes {
                read.stopped_over_limit = true;
                break;
            }
        }
    }
    let layout = check_entries(&raw, limits, read)?;
    // Pass 2: the data of the checked entries, in the same order.
    let mut packer = Packer::new(&layout, bytes.len() + 65_536);
    let mut archive = tar_reader(bytes, format);
    let entries = archive
        .entries()
        .map_err(|error| corrupt(error.to_string()))?;
    let mut wanted = layout.entries.iter().peekable();
    let mut buffer = Vec::new();
    let mut index = 0;
    for entry in entries {
        let Some(next) = wanted.peek() else {
            break;
        };
        let mut entry = entry.map_err(|error| corrupt(error.to_string()))?;
        if tar_kind(&entry).is_none() {
            continue;
        }
        let source = index;
        index += 1;
        if next.source != source {
            continue;
        }
        buffer.clear();
        if let CheckedKind::File { size, .. } = next.kind {
            (&mut entry)
                .take(size)
                .read_to_end(&mut buffer)
                .map_err(|error| corrupt(format!("{}: {error}", raw[source].path)))?;
            if buffer.len() as u64 != size {
                return Err(corrupt(format!(
                    "entry '{}' is cut short ({} of {size} bytes)",
                    raw[source].path,
                    buffer.len()
                )));
            }
        }
        packer.add(next, &buffer)?;
        wanted.next();
        if let Some(progress) = packer.pause_due() {
            pause(progress).await;
        }
    }
    if wanted.peek().is_some() {
        return Err(corrupt("the archive changed between two reads".to_string()));
    }
    Bundle::finish(packer, &layout)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    type Options = zip::write::SimpleFileOptions;

    /// What a tar.gz holds: `(path, kind, mode, bytes or link target)`.
    fn read_back(tar_gz: &[u8]) -> Vec<(String, char, u32, Vec<u8>)> {
        let mut archive = tar::Archive::new(GzDecoder::new(tar_gz));
        let mut found = Vec::new();
        for entry in archive.entries().expect("a tar") {
            let mut entry = entry.expect("an entry");
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type().as_byte() as char;
            let mode = entry.header().mode().expect("a mode");
            assert_eq!(entry.header().uid().ok(), Some(0));
            let data = match entry.link_name_bytes() {
                Some(target) => target.into_owned(),
                None => {
                    let mut data = Vec::new();
                    entry.read_to_end(&mut data).expect("data");
                    data
                }
            };
            found.push((path, kind, mode, data));
        }
        found
    }

    enum Item<'a> {
        File(&'a str, &'a [u8], u32),
        Dir(&'a str),
        Link(&'a str, &'a str),
    }

    fn zip_of(items: &[Item<'_>]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for item in items {
            match item {
                Item::File(path, data, mode) => {
                    let options = Options::default()
                        .compression_method(zip::CompressionMethod::Deflated)
                        .unix_permissions(*mode);
                    writer.start_file(*path, options).expect("start");
                    writer.write_all(data).expect("write");
                }
                Item::Dir(path) => writer
                    .add_directory(*path, Options::default())
                    .expect("dir"),
                Item::Link(path, target) => writer
                    .add_symlink(*path, *target, Options::default())
                    .expect("link"),
            }
        }
        writer.finish().expect("finish").into_inner()
    }

    /// A tar.gz with the names written as given (tar-rs would refuse `/abs`).
    fn tar_gz_of(items: &[Item<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for item in items {
            let mut header = tar::Header::new_gnu();
            let (path, data): (&str, &[u8]) = match item {
                Item::File(path, data, mode) => {
                    header.set_mode(*mode);
                    (path, data)
                }
                Item::Dir(path) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    (path, &[])
                }
                Item::Link(path, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_link_name(target).expect("short target");
                    (path, &[])
                }
            };
            header.set_size(data.len() as u64);
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, data).expect("entry");
        }
        builder
            .into_inner()
            .and_then(GzEncoder::finish)
            .expect("finished")
    }

    fn archive(name: &str, bytes: Vec<u8>) -> SourceMaterial {
        SourceMaterial::Archive {
            name: name.to_string(),
            bytes,
        }
    }

    fn pack(material: SourceMaterial) -> Result<Bundle, String> {
        Bundle::from_material(material, &DeployLimits::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn zip_with_a_zip_slip_entry_is_refused_naming_it() {
        let bytes = zip_of(&[
            Item::File("index.html", b"<h1>hi</h1>", 0o644),
            Item::File("../../etc/passwd", b"root:x:0:0", 0o644),
        ]);
        assert_eq!(
            pack(archive("site.zip", bytes)),
            Err("entry '../../etc/passwd' escapes the app's folder (zip-slip); nothing was deployed".into())
        );
    }

    #[test]
    fn tar_gz_with_a_symlink_to_etc_is_refused() {
        let bytes = tar_gz_of(&[
            Item::File("app/index.html", b"hi", 0o644),
            Item::Link("app/etc", "/etc"),
        ]);
        assert_eq!(
            pack(archive("site.tar.gz", bytes)),
            Err("entry 'app/etc' is a symlink to '/etc', which is outside the app's folder; nothing was deployed".into())
        );
    }

    #[test]
    fn a_single_top_folder_is_stripped_from_a_github_style_zip() {
        let bytes = zip_of(&[
            Item::Dir("octo-repo-1a2b3c/"),
            Item::File("octo-repo-1a2b3c/index.html", b"<h1>octo</h1>", 0o644),
            Item::Dir("octo-repo-1a2b3c/bin/"),
            Item::File("octo-repo-1a2b3c/bin/run", b"#!/bin/sh\necho run\n", 0o755),
            Item::Link("octo-repo-1a2b3c/home.html", "index.html"),
        ]);
        let bundle = Bundle::from_material(archive("zipball", bytes), &DeployLimits::default())
            .expect("valid");
        assert_eq!(bundle.stripped_folder.as_deref(), Some("octo-repo-1a2b3c"));
        assert_eq!((bundle.file_count, bundle.entry_count), (2, 4));
        assert_eq!(
            bundle.preview,
            vec!["index.html", "bin/", "bin/run", "home.html -> index.html"]
        );
        assert_eq!(
            read_back(&bundle.tar_gz),
            vec![
                ("index.html".into(), '0', 0o644, b"<h1>octo</h1>".to_vec()),
                ("bin/".into(), '5', 0o755, vec![]),
                (
                    "bin/run".into(),
                    '0',
                    0o755,
                    b"#!/bin/sh\necho run\n".to_vec()
                ),
                ("home.html".into(), '2', 0o777, b"index.html".to_vec()),
            ]
        );
    }

    #[test]
    fn limits_are_enforced_with_the_figures() {
        let small = DeployLimits {
            max_total_bytes: 100,
            max_files: 2,
        };
        let files = SourceMaterial::Files(vec![
            SourceFile {
                path: "a".into(),
                bytes: vec![1; 60],
                executable: false,
            },
            SourceFile {
                path: "b".into(),
                bytes: vec![2; 41],
                executable: false,
            },
        ]);
        assert_eq!(
            Bundle::from_material(files, &small).map_err(|e| e.to_string()),
            Err(
                "the files hold 101 bytes, more than the limit of 100 bytes; nothing was deployed"
                    .into()
            )
        );
        let many = zip_of(&[
            Item::File("a", b"1", 0o644),
            Item::File("b", b"2", 0o644),
            Item::File("c", b"3", 0o644),
        ]);
        let error = Bundle::from_material(archive("x.zip", many), &small)
            .expect_err("too many")
            .to_string();
        assert!(
            error.contains("3 entries (files, folders and links), more than the limit of 2"),
            "{error}"
        );
        // A tarball is read only until the limit is passed.
        let big = vec![7u8; 80];
        let tar = tar_gz_of(&[
            Item::File("a", &big, 0o644),
            Item::File("b", &big, 0o644),
            Item::File("c", &big, 0o644),
        ]);
        assert_eq!(
            Bundle::from_material(archive("x.tgz", tar), &small).map_err(|e| e.to_string()),
            Err("the files hold 160 bytes or more, more than the limit of 100 bytes; nothing was deployed".into())
        );
    }

    #[test]
    fn loose_files_round_trip() {
        let big: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
        let files = vec![
            SourceFile {
                path: "site/index.html".into(),
                bytes: b"<h1>hello</h1>".to_vec(),
                executable: false,
            },
            SourceFile {
                path: "site/assets/blob.bin".into(),
                bytes: big.clone(),
                executable: false,
            },
            SourceFile {
                path: format!("site/{}/deep.txt", "long-folder-name".repeat(10)),
                bytes: b"deep".to_vec(),
                executable: false,
            },
            SourceFile {
                path: "site/start.sh".into(),
                bytes: b"#!/bin/sh\n".to_vec(),
                executable: true,
            },
        ];
        let expected: Vec<(String, char, u32, Vec<u8>)> = files
            .iter()
            .map(|file| {
                let path = file.path.trim_start_matches("site/").to_string();
                let mode = if file.executable { 0o755 } else { 0o644 };
                (path, '0', mode, file.bytes.clone())
            })
            .collect();
        let mut pauses = Vec::new();
        let bundle = futures::executor::block_on(Bundle::pack(
            SourceMaterial::Files(files),
            &DeployLimits::default(),
            |progress| {
                pauses.push(progress);
                async {}
            },
        ))
        .expect("valid");
        assert_eq!(bundle.total_bytes, 300_000 + 14 + 4 + 10);
        assert_eq!(read_back(&bundle.tar_gz), expected);
        assert!(
            pauses.is_empty(),
            "less than one pause interval: {pauses:?}"
        );
    }

    #[test]
    fn tar_gz_and_plain_tar_round_trip_and_skip_pax_headers() {
        let items = [
            Item::Dir("proj/"),
            Item::File("proj/app.py", b"print('hi')\n", 0o644),
            Item::File("proj/run", b"#!/bin/sh\n", 0o700),
            Item::Link("proj/latest", "app.py"),
        ];
        let expected = vec![
            ("app.py".to_string(), '0', 0o644, b"print('hi')\n".to_vec()),
            ("run".to_string(), '0', 0o755, b"#!/bin/sh\n".to_vec()),
            ("latest".to_string(), '2', 0o777, b"app.py".to_vec()),
        ];
        let tar_gz = tar_gz_of(&items);
        let bundle = pack(archive("download", tar_gz.clone())).expect("tar.gz by magic");
        assert_eq!(read_back(&bundle.tar_gz), expected);
        // The same as a plain tar, with a pax global header as GitHub tarballs have.
        let mut plain = Vec::new();
        GzDecoder::new(tar_gz.as_slice())
            .read_to_end(&mut plain)
            .expect("gunzip");
        let mut with_pax = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        let comment = b"52 comment=0123456789abcdef0123456789abcdef01234567\n";
        header.set_entry_type(tar::EntryType::XGlobalHeader);
        header.set_size(comment.len() as u64);
        with_pax
            .append_data(&mut header, "pax_global_header", &comment[..])
            .expect("pax");
        let mut bytes = with_pax.into_inner().expect("tar");
        // Without its end-of-archive blocks.
        bytes.truncate(bytes.len() - 1024);
        bytes.extend_from_slice(&plain);
        let bundle = pack(archive("repo.tar", bytes)).expect("tar");
        assert_eq!(read_back(&bundle.tar_gz), expected);
    }

    #[test]
    fn formats_are_told_by_magic_then_name() {
        let zip = zip_of(&[Item::File("a", b"1", 0o644)]);
        assert_eq!(Format::detect("misnamed.tar.gz", &zip), Some(Format::Zip));
        assert_eq!(Format::detect("x.TGZ", b"garbage"), Some(Format::TarGz));
        assert_eq!(Format::detect("x.tar", b"garbage"), Some(Format::Tar));
        assert_eq!(Format::detect("x.zip", b"garbage"), Some(Format::Zip));
        assert_eq!(Format::detect("notes.txt", b"hello"), None);
        assert_eq!(
            pack(archive("notes.txt", b"hello".to_vec())),
            Err("'notes.txt' is not a ZIP, .tar.gz or .tar archive; nothing was deployed".into())
        );
        let error =
            pack(archive("broken.zip", b"PK\x03\x04 not really".to_vec())).expect_err("corrupt");
        assert!(
            error.starts_with("'broken.zip' is not a readable ZIP archive ("),
            "{error}"
        );
        let error = pack(archive("broken.tgz", vec![0x1f, 0x8b, 0, 1, 2])).expect_err("corrupt");
        assert!(
            error.starts_with("'broken.tgz' is not a readable tar.gz archive"),
            "{error}"
        );
    }

    #[test]
    fn every_problem_of_an_archive_is_listed() {
        let bytes = tar_gz_of(&[
            Item::File("ok.txt", b"fine", 0o644),
            Item::File("/abs", b"x", 0o644),
            Item::Link("up", "../../x"),
        ]);
        let error = pack(archive("x.tar.gz", bytes)).expect_err("refused");
        assert_eq!(
            error,
            "entry '/abs' is an absolute path; only paths inside the app's folder are allowed; \
             entry 'up' is a symlink to '../../x', which is outside the app's folder; nothing was deployed"
        );
    }
}
