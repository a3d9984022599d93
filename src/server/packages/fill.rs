//! `webvm-appserver fill-packages`: fills the package directory with the `.deb` closure of
//! every catalog runtime, from Debian, with the ordinary apt client.
//!
//! 1. If the directory's stamp (`.fill-stamp.json`) matches the catalog and base image and
//!    every file it lists is present, nothing else happens (milliseconds, no apt call).
//! 2. apt must know i386 packages: `dpkg --add-architecture i386` only when i386 is not a
//!    foreign architecture yet, `apt-get update` only after that, when no i386 package
//!    index exists, or when asked (`--update`). Both need root; nothing else does.
//! 3. The i386 package indexes apt already has (`apt-get indextargets`, read with
//!    `apt-helper cat-file`) become a [`Universe`]; each runtime's closure is resolved with
//!    the same resolver the server uses ([`super::catalog::build`]), minus the base image.
//! 4. Missing files are fetched with `apt-get download` into `.partial/`, checked against
//!    the SHA-256 and size of apt's index, and renamed to their Debian pool name
//!    (`name_version-without-epoch_arch.deb`). Files already present with that name and
//!    size are skipped, so a fill is idempotent and resumable.
//! 5. Fixture runtimes are written, not downloaded (the tampered demo, see
//!    [`super::fixture`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::base::BaseImage;
use super::catalog::{self, CatalogError, CatalogSource, Fixture};
use super::control::{parse_paragraphs, Control};
use super::deb::read_control_bytes;
use super::fixture::{tampered_deb, TAMPERED_DEMO_FILE};
use super::repository::{hash_file, is_safe_deb_name, sha256_hex};
use super::resolve::{Candidate, Universe};

const STAMP_FILE: &str = ".fill-stamp.json";
const PARTIAL_DIR: &str = ".partial";
/// Bump when the fill's output for the same inputs changes.
const FILL_FORMAT: &str = "fill-v1";
/// Packages per `apt-get download` call.
const DOWNLOAD_CHUNK: usize = 40;

/// Why a fill could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("no catalog at {0}: nothing to fill")]
    NoCatalog(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("{0} needs root; run once as root: dpkg --add-architecture i386 && apt-get update")]
    NotRoot(&'static str),
    #[error(
        "apt has no i386 package index even after `apt-get update`; check /etc/apt/sources.list.d"
    )]
    NoIndex,
}

/// What to fill, and from which catalog and base image.
#[derive(Debug, Clone)]
pub struct FillOptions {
    pub packages_dir: PathBuf,
    pub catalog: CatalogSource,
    pub guest_dir: Option<PathBuf>,
    /// Run `apt-get update` even when i386 indexes exist.
    pub force_update: bool,
}

/// One runtime's share of a fill.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeFill {
    pub id: String,
    pub files: usize,
    pub bytes: u64,
    pub error: Option<String>,
}

/// The outcome of a fill.
#[derive(Debug, Clone, Default)]
pub struct FillReport {
    pub runtimes: Vec<RuntimeFill>,
    pub downloaded: usize,
    pub downloaded_bytes: u64,
    pub already_present: usize,
    pub up_to_date: bool,
    pub elapsed: Duration,
    pub base: String,
    /// Files that could not be fetched, with the reason.
    pub failures: Vec<String>,
}

impl FillReport {
    /// True when every runtime resolved and every file is in place.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty() && self.runtimes.iter().all(|r| r.error.is_none())
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Stamp {
    key: String,
    files: BTreeMap<String, u64>,
}

/// Fills `options.packages_dir` (blocking: runs apt; call it off the async runtime).
pub fn fill(options: &FillOptions) -> Result<FillReport, FillError> {
    let started = Instant::now();
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| FillError::Io {
            path: path.clone(),
            source,
        }
    };
    let catalog_text = options
        .catalog
        .text()?
        .ok_or_else(|| FillError::NoCatalog(options.catalog.describe()))?;
    let catalog = catalog::Catalog::parse(&catalog_text, &options.catalog.describe())?;
    let base = BaseImage::load(options.guest_dir.as_deref());
    let dir = &options.packages_dir;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let key = stamp_key(&catalog_text, &base);
    let mut report = FillReport {
        base: format!("{:?}", base.source),
        ..FillReport::default()
    };
    if !options.force_update && stamp_is_current(dir, &key) {
        report.up_to_date = true;
        report.elapsed = started.elapsed();
        return Ok(report);
    }

    let indexes = ensure_i386_indexes(options.force_update)?;
    let mut candidates = Vec::new();
    for index in &indexes {
        let text = run(
            "/usr/lib/apt/apt-helper",
            &["cat-file", &index.display().to_string()],
            None,
        )?;
        candidates.extend(candidates_from_index(&String::from_utf8_lossy(&text)));
    }
    let mut fixture_files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (_, fixture) in catalog.fixture_roots() {
        match fixture {
            Fixture::Tampered => {
                let bytes = tampered_deb();
                if let Ok((control, _)) = read_control_bytes(&bytes) {
                    candidates.push(Candidate {
                        control,
                        file_name: TAMPERED_DEMO_FILE.to_string(),
                        size_bytes: bytes.len() as u64,
                        sha256: sha256_hex(&bytes),
                    });
                }
                fixture_files.insert(TAMPERED_DEMO_FILE.to_string(), bytes);
            }
        }
    }
    let by_file: BTreeMap<String, Candidate> = candidates
        .iter()
        .map(|candidate| (candidate.file_name.clone(), candidate.clone()))
        .collect();
    let universe = Universe::new(candidates);
    let entries = catalog::build(&catalog, &universe, &[], &base);

    let mut needed: BTreeMap<String, &Candidate> = BTreeMap::new();
    for entry in &entries {
        let files: Vec<&Candidate> = entry
            .package
            .deb_packages
            .iter()
            .filter_map(|file| by_file.get(file))
            .collect();
        report.runtimes.push(RuntimeFill {
            id: entry.package.id.to_string(),
            files: files.len(),
            bytes: files.iter().map(|c| c.size_bytes).sum(),
            error: entry.catalog_error.clone(),
        });
        for candidate in files {
            if !fixture_files.contains_key(&candidate.file_name) {
                needed.insert(candidate.file_name.clone(), candidate);
            }
        }
    }
    let mut missing = Vec::new();
    for (file, candidate) in &needed {
        let present = std::fs::metadata(dir.join(file))
            .map(|meta| meta.len() == candidate.size_bytes)
            .unwrap_or(false);
        if present {
            report.already_present += 1;
        } else {
            missing.push(*candidate);
        }
    }
    if !missing.is_empty() {
        eprintln!(
            "fill-packages: downloading {} .deb files ({:.1} MiB) with apt-get download",
            missing.len(),
            missing.iter().map(|c| c.size_bytes).sum::<u64>() as f64 / 1_048_576.0
        );
    }
    download(dir, &missing, &mut report)?;
    for (file, bytes) in &fixture_files {
        let path = dir.join(file);
        if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            write_atomically(&path, bytes).map_err(io(&path))?;
        }
    }
    if report.is_complete() {
        let mut files: BTreeMap<String, u64> = needed
            .iter()
            .map(|(file, candidate)| (file.clone(), candidate.size_bytes))
            .collect();
        for (file, bytes) in &fixture_files {
            files.insert(file.clone(), bytes.len() as u64);
        }
        let stamp = Stamp { key, files };
        let path = dir.join(STAMP_FILE);
        let json = serde_json::to_vec_pretty(&stamp).unwrap_or_default();
        write_atomically(&path, &json).map_err(io(&path))?;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The stamp key: the fill format, the catalog text and the base image's package set.
fn stamp_key(catalog_text: &str, base: &BaseImage) -> String {
    let base_json = serde_json::to_string(&base.packages).unwrap_or_default();
    sha256_hex(format!("{FILL_FORMAT}\n{catalog_text}\n{base_json}").as_bytes())
}

fn stamp_is_current(dir: &Path, key: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(STAMP_FILE)) else {
        return false;
    };
    let Ok(stamp) = serde_json::from_str::<Stamp>(&text) else {
        return false;
    };
    stamp.key == key
        && stamp.files.iter().all(|(file, size)| {
            std::fs::metadata(dir.join(file)).is_ok_and(|meta| meta.len() == *size)
        })
}

/// Candidates from the text of an apt `Packages` index: one per paragraph whose control
/// fields parse and whose `Filename`, `Size` and `SHA256` are usable.
pub fn candidates_from_index(text: &str) -> Vec<Candidate> {
    text.split("\n\n")
        .filter_map(|chunk| {
            let paragraph = parse_paragraphs(chunk).ok()?.into_iter().next()?;
            let control = Control::from_paragraph(&paragraph).ok()?;
            let file_name = paragraph.get("Filename")?.rsplit('/').next()?.to_string();
            let size_bytes = paragraph.get("Size")?.trim().parse().ok()?;
            let sha256 = paragraph.get("SHA256")?.trim().to_ascii_lowercase();
            let valid = is_safe_deb_name(&file_name)
                && sha256.len() == 64
                && sha256.bytes().all(|b| b.is_ascii_hexdigit());
            valid.then_some(Candidate {
                control,
                file_name,
                size_bytes,
                sha256,
            })
        })
        .collect()
}

/// The argument `apt-get download` takes for a candidate: arch-qualified unless `all`.
pub fn download_spec(candidate: &Candidate) -> String {
    let control = &candidate.control;
    if control.architecture == "all" {
        format!("{}={}", control.package, control.version)
    } else {
        format!(
            "{}:{}={}",
            control.package, control.architecture, control.version
        )
    }
}

/// The file name `apt-get download` writes (the epoch's `:` is escaped as `%3a`).
pub fn apt_file_name(candidate: &Candidate) -> String {
    let control = &candidate.control;
    format!(
        "{}_{}_{}.deb",
        control.package,
        control.version.replace(':', "%3a"),
        control.architecture
    )
}

/// Downloads `missing` into `dir`, verifying each file against apt's index.
fn download(dir: &Path, missing: &[&Candidate], report: &mut FillReport) -> Result<(), FillError> {
    if missing.is_empty() {
        return Ok(());
    }
    let partial = dir.join(PARTIAL_DIR);
    std::fs::create_dir_all(&partial).map_err(|source| FillError::Io {
        path: partial.display().to_string(),
        source,
    })?;
    for chunk in missing.chunks(DOWNLOAD_CHUNK) {
        let specs: Vec<String> = chunk.iter().map(|c| download_spec(c)).collect();
        if apt_download(&partial, &specs).is_err() {
            // Find out which ones fail: one call each.
            for (candidate, spec) in chunk.iter().zip(&specs) {
                if let Err(error) = apt_download(&partial, std::slice::from_ref(spec)) {
                    report
                        .failures
                        .push(format!("{}: {error}", candidate.file_name));
                }
            }
        }
        for candidate in chunk {
            let fetched = partial.join(apt_file_name(candidate));
            if !fetched.exists() {
                if !report
                    .failures
                    .iter()
                    .any(|f| f.starts_with(&candidate.file_name))
                {
                    report.failures.push(format!(
                        "{}: apt-get download produced no file",
                        candidate.file_name
                    ));
                }
                continue;
            }
            match hash_file(&fetched) {
                Ok((sha256, size))
                    if sha256 == candidate.sha256 && size == candidate.size_bytes =>
                {
                    let target = dir.join(&candidate.file_name);
                    std::fs::rename(&fetched, &target).map_err(|source| FillError::Io {
                        path: target.display().to_string(),
                        source,
                    })?;
                    report.downloaded += 1;
                    report.downloaded_bytes += size;
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(&fetched);
                    report.failures.push(format!(
                        "{}: the download does not match apt's index (SHA-256 or size)",
                        candidate.file_name
                    ));
                }
                Err(error) => report
                    .failures
                    .push(format!("{}: {error}", candidate.file_name)),
            }
        }
    }
    let _ = std::fs::remove_dir(&partial);
    Ok(())
}

fn apt_download(dir: &Path, specs: &[String]) -> Result<(), FillError> {
    let mut args = vec![
        "download".to_string(),
        "-q".to_string(),
        // As root apt drops to `_apt`, which can't write here; download as the caller.
        "-o".to_string(),
        "APT::Sandbox::User=root".to_string(),
    ];
    args.extend(specs.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("apt-get", &args, Some(dir)).map(|_| ())
}

/// The i386 `Packages` index files apt has, running `dpkg --add-architecture i386` and
/// `apt-get update` only when needed (or when forced).
fn ensure_i386_indexes(force_update: bool) -> Result<Vec<PathBuf>, FillError> {
    let native = String::from_utf8_lossy(&run("dpkg", &["--print-architecture"], None)?)
        .trim()
        .to_string();
    let foreign = String::from_utf8_lossy(&run("dpkg", &["--print-foreign-architectures"], None)?)
        .to_string();
    let mut update = force_update;
    if native != "i386" && !foreign.lines().any(|arch| arch.trim() == "i386") {
        eprintln!("fill-packages: dpkg --add-architecture i386");
        run("dpkg", &["--add-architecture", "i386"], None)
            .map_err(|_| FillError::NotRoot("dpkg --add-architecture i386"))?;
        update = true;
    }
    let mut indexes = i386_indexes()?;
    if indexes.is_empty() {
        update = true;
    }
    if update {
        eprintln!("fill-packages: apt-get update");
        run("apt-get", &["update", "-q"], None).map_err(|error| match error {
            FillError::Command { detail, .. } if detail.contains("Permission denied") => {
                FillError::NotRoot("apt-get update")
            }
            other => other,
        })?;
        indexes = i386_indexes()?;
    }
    if indexes.is_empty() {
        return Err(FillError::NoIndex);
    }
    Ok(indexes)
}

fn i386_indexes() -> Result<Vec<PathBuf>, FillError> {
    let output = run(
        "apt-get",
        &[
            "indextargets",
            "--format",
            "$(FILENAME)",
            "Created-By: Packages",
            "Architecture: i386",
        ],
        None,
    )?;
    Ok(String::from_utf8_lossy(&output)
        .lines()
        .map(|line| PathBuf::from(line.trim()))
        .filter(|path| path.is_file())
        .collect())
}

/// Runs a command and returns its stdout; a non-zero exit is an error with its stderr.
fn run(program: &str, args: &[&str], cwd: Option<&Path>) -> Result<Vec<u8>, FillError> {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let described = format!("{program} {}", args.join(" "));
    let output = command.output().map_err(|error| FillError::Command {
        command: described.clone(),
        detail: error.to_string(),
    })?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail: Vec<&str> = stderr
            .lines()
            .filter(|line| !line.starts_with("W: Download is performed unsandboxed"))
            .collect();
        Err(FillError::Command {
            command: described,
            detail: format!("{} ({})", detail.join(" / "), output.status),
        })
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp-write");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "Package: nginx-common
Source: nginx
Version: 1.22.1-9+deb12u9
Installed-Size: 333
Architecture: all
Depends: debconf (>= 0.5) | debconf-2.0, lsb-base (>= 3.0-6)
Description: small, powerful, scalable web/proxy server - common files
Filename: pool/main/n/nginx/nginx-common_1.22.1-9+deb12u9_all.deb
Size: 116172
SHA256: 12B7B98E914DA6D233C9E35CEC0F59F06BCEB727E4D1F1CE039215B074A7267D

Package: busybox
Version: 1:1.35.0-4+b3
Architecture: i386
Installed-Size: 1000
Filename: pool/main/b/busybox/busybox_1.35.0-4+b3_i386.deb
Size: 480000
SHA256: 0000000000000000000000000000000000000000000000000000000000000001

Package: broken
Version: 1.0
Architecture: i386
Filename: pool/main/b/broken/broken_1.0_i386.deb
Size: many
SHA256: 00

Package: Bad Name
Version: 1
";

    #[test]
    fn index_paragraphs_become_candidates() {
        let candidates = candidates_from_index(INDEX);
        assert_eq!(candidates.len(), 2);
        let nginx = &candidates[0];
        assert_eq!(nginx.file_name, "nginx-common_1.22.1-9+deb12u9_all.deb");
        assert_eq!(nginx.size_bytes, 116_172);
        assert!(nginx.sha256.starts_with("12b7b98e"));
        assert_eq!(download_spec(nginx), "nginx-common=1.22.1-9+deb12u9");
        assert_eq!(
            apt_file_name(nginx),
            "nginx-common_1.22.1-9+deb12u9_all.deb"
        );
        let busybox = &candidates[1];
        assert_eq!(download_spec(busybox), "busybox:i386=1:1.35.0-4+b3");
        assert_eq!(apt_file_name(busybox), "busybox_1%3a1.35.0-4+b3_i386.deb");
        assert_eq!(busybox.file_name, "busybox_1.35.0-4+b3_i386.deb");
    }

    #[test]
    fn the_stamp_tracks_inputs_and_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = BaseImage::minbase("test".into());
        let key = stamp_key("catalog", &base);
        assert_ne!(key, stamp_key("catalog 2", &base));
        assert!(!stamp_is_current(dir.path(), &key));
        std::fs::write(dir.path().join("a_1_all.deb"), b"12345").expect("write");
        let stamp = Stamp {
            key: key.clone(),
            files: BTreeMap::from([("a_1_all.deb".to_string(), 5)]),
        };
        write_atomically(
            &dir.path().join(STAMP_FILE),
            &serde_json::to_vec(&stamp).expect("json"),
        )
        .expect("write");
        assert!(stamp_is_current(dir.path(), &key));
        assert!(!stamp_is_current(dir.path(), "other"));
        std::fs::write(dir.path().join("a_1_all.deb"), b"1234").expect("write");
        assert!(!stamp_is_current(dir.path(), &key));
    }

    #[test]
    fn reports_know_when_they_are_complete() {
        let mut report = FillReport::default();
        assert!(report.is_complete());
        report.runtimes.push(RuntimeFill {
            id: "x1".into(),
            files: 0,
            bytes: 0,
            error: Some("no".into()),
        });
        assert!(!report.is_complete());
    }
}
