//! Scans the package directory: every `*.deb` with a safe name is read (control data) and
//! hashed (SHA-256, size). Files whose size and modification time match the previous index
//! are taken from it instead of being hashed again.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use super::control::Control;
use super::deb::read_control;
use super::resolve::Candidate;

/// Longest file name served or indexed.
const MAX_FILE_NAME: usize = 200;

/// Why the package directory could not be scanned at all (a single bad file never is).
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("the package directory {path} is unreadable: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One readable `.deb` of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedFile {
    pub file_name: String,
    pub control: Control,
    /// The `control` file as the package ships it.
    pub control_text: String,
    pub sha256: String,
    pub size_bytes: u64,
    /// Modification time in nanoseconds since the Unix epoch (0 when unknown).
    pub modified_ns: i64,
}

impl IndexedFile {
    /// The file as a resolver candidate.
    pub fn candidate(&self) -> Candidate {
        Candidate {
            control: self.control.clone(),
            file_name: self.file_name.clone(),
            size_bytes: self.size_bytes,
            sha256: self.sha256.clone(),
        }
    }
}

/// A `.deb` that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenFile {
    pub file_name: String,
    pub reason: String,
}

impl BrokenFile {
    /// The package name the file name suggests (`nginx_1.22_i386.deb` → `nginx`).
    pub fn package_hint(&self) -> &str {
        self.file_name
            .split('_')
            .next()
            .unwrap_or(self.file_name.as_str())
    }
}

/// What the previous index knew about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFile {
    pub sha256: String,
    pub size_bytes: u64,
    pub modified_ns: i64,
    pub control_text: String,
}

/// The result of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub files: Vec<IndexedFile>,
    pub broken: Vec<BrokenFile>,
    /// Entries that are not indexed (unsafe names, not regular files), with the reason.
    pub skipped: Vec<(String, String)>,
    /// True when the directory does not exist (nothing filled yet).
    pub missing_dir: bool,
    /// How many files were hashed, and how many were reused from the previous index.
    pub hashed: usize,
    pub reused: usize,
    pub bytes_hashed: u64,
}

/// True for a name the repository indexes and serves: one path segment of
/// `[A-Za-z0-9.+~_-]`, not hidden, ending in `.deb`.
pub fn is_safe_deb_name(name: &str) -> bool {
    name.len() > 4
        && name.len() <= MAX_FILE_NAME
        && name.ends_with(".deb")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'~' | b'_' | b'-'))
}

/// Hex SHA-256 and size of a file, streamed.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Modification time of a file in nanoseconds since the epoch, 0 when unknown.
pub fn modified_ns(metadata: &std::fs::Metadata) -> i64 {
    metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .and_then(|age| i64::try_from(age.as_nanos()).ok())
        .unwrap_or(0)
}

/// Scans `dir` (blocking IO: run it off the async runtime).
pub fn scan(dir: &Path, known: &BTreeMap<String, KnownFile>) -> Result<Scan, RepositoryError> {
    let mut result = Scan::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            result.missing_dir = true;
            return Ok(result);
        }
        Err(source) => {
            return Err(RepositoryError::Unreadable {
                path: dir.display().to_string(),
                source,
            })
        }
    };
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| RepositoryError::Unreadable {
            path: dir.display().to_string(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".deb") {
            continue;
        }
        names.push((name, entry.path()));
    }
    names.sort();
    for (name, path) in names {
        if !is_safe_deb_name(&name) {
            result.skipped.push((
                name,
                "the name has characters outside [A-Za-z0-9.+~_-]".into(),
            ));
            continue;
        }
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.file_type().is_file() => metadata,
            Ok(_) => {
                result
                    .skipped
                    .push((name, "not a regular file (symlinks are not served)".into()));
                continue;
            }
            Err(error) => {
                result.broken.push(BrokenFile {
                    file_name: name,
                    reason: error.to_string(),
                });
                continue;
            }
        };
        let modified = modified_ns(&metadata);
        if let Some(previous) = known.get(&name).filter(|previous| {
            previous.size_bytes == metadata.len()
                && previous.modified_ns == modified
                && modified != 0
        }) {
            if let Ok(control) = Control::parse(&previous.control_text) {
                result.reused += 1;
                result.files.push(IndexedFile {
                    file_name: name,
                    control,
                    control_text: previous.control_text.clone(),
                    sha256: previous.sha256.clone(),
                    size_bytes: previous.size_bytes,
                    modified_ns: modified,
                });
                continue;
            }
        }
        match read_file(&path) {
            Ok((control, control_text, sha256, size_bytes)) => {
                result.hashed += 1;
                result.bytes_hashed += size_bytes;
                result.files.push(IndexedFile {
                    file_name: name,
                    control,
                    control_text,
                    sha256,
                    size_bytes,
                    modified_ns: modified,
                });
            }
            Err(reason) => result.broken.push(BrokenFile {
                file_name: name,
                reason,
            }),
        }
    }
    Ok(result)
}

/// Control data, SHA-256 and size of one `.deb`, or why it is unreadable.
fn read_file(path: &Path) -> Result<(Control, String, String, u64), String> {
    let file = File::open(path).map_err(|error| error.to_string())?;
    let (control, control_text) = read_control(file).map_err(|error| error.to_string())?;
    if !control.fits_guest() {
        return Err(format!(
            "architecture {} does not run on the i386 guest",
            control.architecture
        ));
    }
    let (sha256, size) = hash_file(path).map_err(|error| error.to_string())?;
    Ok((control, control_text, sha256, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::packages::deb::DebBuilder;

    #[test]
    fn only_safe_deb_names_pass() {
        let cases = [
            ("nginx_1.22.1-9+deb12u9_i386.deb", true),
            ("libc6_2.36-9~rc1_i386.deb", true),
            ("busybox_1%3a1.35.0_i386.deb", false),
            ("../etc/passwd.deb", false),
            ("a/b.deb", false),
            (".hidden.deb", false),
            (".deb", false),
            ("x.deb.part", false),
            ("name with space.deb", false),
            ("x\\y.deb", false),
        ];
        for (name, ok) in cases {
            assert_eq!(is_safe_deb_name(name), ok, "{name}");
        }
        assert!(!is_safe_deb_name(&format!("{}.deb", "a".repeat(300))));
    }

    #[test]
    fn a_scan_indexes_good_files_and_reports_bad_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let good =
            DebBuilder::new("Package: good1\nVersion: 1.0\nArchitecture: all\nInstalled-Size: 3\n")
                .build()
                .expect("deb");
        std::fs::write(dir.path().join("good1_1.0_all.deb"), &good).expect("write");
        std::fs::write(dir.path().join("broken_1.0_i386.deb"), b"!<arch>\nnonsense")
            .expect("write");
        let amd64 = DebBuilder::new("Package: other\nVersion: 1.0\nArchitecture: amd64\n")
            .build()
            .expect("deb");
        std::fs::write(dir.path().join("other_1.0_amd64.deb"), &amd64).expect("write");
        std::fs::write(dir.path().join("weird%3aname.deb"), &good).expect("write");
        std::fs::write(dir.path().join("notes.txt"), b"ignored").expect("write");

        let scan = scan(dir.path(), &BTreeMap::new()).expect("scan");
        assert_eq!(scan.files.len(), 1);
        assert_eq!(scan.files[0].control.package, "good1");
        assert_eq!(scan.files[0].sha256, sha256_hex(&good));
        assert_eq!(scan.files[0].size_bytes, good.len() as u64);
        assert_eq!(scan.broken.len(), 2);
        assert_eq!(scan.broken[0].package_hint(), "broken");
        assert!(scan.broken[1].reason.contains("amd64"));
        assert_eq!(scan.skipped.len(), 1);
        assert_eq!(scan.hashed, 1);

        let known: BTreeMap<String, KnownFile> = scan
            .files
            .iter()
            .map(|file| {
                (
                    file.file_name.clone(),
                    KnownFile {
                        sha256: file.sha256.clone(),
                        size_bytes: file.size_bytes,
                        modified_ns: file.modified_ns,
                        control_text: file.control_text.clone(),
                    },
                )
            })
            .collect();
        let again = super::scan(dir.path(), &known).expect("scan");
        assert_eq!(again.reused, 1);
        assert_eq!(again.hashed, 0);
        assert_eq!(again.files, scan.files);

        let missing = super::scan(&dir.path().join("nope"), &BTreeMap::new()).expect("scan");
        assert!(missing.missing_dir);
    }
}
