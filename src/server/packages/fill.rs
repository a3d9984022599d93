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
//!
//! Every command runs with a time limit ([`DOWNLOAD_TIMEOUT`] for `apt-get download`,
//! [`INDEX_TIMEOUT`] for the rest, or `WEBVM_APT_TIMEOUT` seconds for all): one that
//! overruns is killed with its whole process group and the fill stops with
//! [`FillError::TimedOut`]. `APT_GET` names another `apt-get` to run.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::base::BaseImage;
use super::catalog::{self, CatalogError, CatalogSource, Fixture};
use super::control::{parse_paragraphs, Control};
use super::deb::read_control_bytes;
use super::fixture::{tampered_deb, TAMPERED_DEMO_FILE};
use super::repository::{hash_file, is_safe_deb_name, sha256_hex};
use super::resolve::{Candidate, Universe};
use crate::model::Sha256;

const STAMP_FILE: &str = ".fill-stamp.json";
const PARTIAL_DIR: &str = ".partial";
/// Bump when the fill's output for the same inputs changes.
const FILL_FORMAT: &str = "fill-v1";
/// Packages per `apt-get download` call.
const DOWNLOAD_CHUNK: usize = 40;
/// How long one `apt-get download` call (up to [`DOWNLOAD_CHUNK`] packages) may take.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long `apt-get update`, `apt-get indextargets`, `apt-helper cat-file` and the `dpkg`
/// queries may take.
pub const INDEX_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Seconds that replace both timeouts.
pub const TIMEOUT_VARIABLE: &str = "WEBVM_APT_TIMEOUT";
/// The `apt-get` to run instead of the one on `PATH`.
pub const APT_GET_VARIABLE: &str = "APT_GET";
/// How long the output of a command that has ended (or was killed) may take to close.
const OUTPUT_GRACE: Duration = Duration::from_secs(10);

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
    #[error("`{command}` did not finish within {} and was killed{detail}", seconds(*.timeout))]
    TimedOut {
        command: String,
        timeout: Duration,
        /// The last lines it wrote to stderr (` (last output: …)`), or nothing.
        detail: String,
    },
    #[error("{TIMEOUT_VARIABLE} must be a whole number of seconds above 0, not '{0}'")]
    BadTimeout(String),
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

    let apt = Apt::from_environment()?;
    let indexes = ensure_i386_indexes(&apt, options.force_update)?;
    let mut candidates = Vec::new();
    for index in &indexes {
        let text = run(
            "/usr/lib/apt/apt-helper",
            &["cat-file", &index.display().to_string()],
            None,
            apt.index_timeout,
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
    download(&apt, dir, &missing, &mut report)?;
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
            let sha256 =
                Sha256::parse(&paragraph.get("SHA256")?.trim().to_ascii_lowercase()).ok()?;
            is_safe_deb_name(&file_name).then(|| Candidate {
                control,
                file_name,
                size_bytes,
                sha256: sha256.into(),
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

/// Downloads `missing` into `dir`, verifying each file against apt's index. A call that
/// times out ends the fill (the files already renamed into place stay).
fn download(
    apt: &Apt,
    dir: &Path,
    missing: &[&Candidate],
    report: &mut FillReport,
) -> Result<(), FillError> {
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
        match apt_download(apt, &partial, &specs) {
            Ok(()) => {}
            Err(error @ FillError::TimedOut { .. }) => return Err(error),
            Err(_) => {
                // Find out which ones fail: one call each.
                for (candidate, spec) in chunk.iter().zip(&specs) {
                    match apt_download(apt, &partial, std::slice::from_ref(spec)) {
                        Ok(()) => {}
                        Err(error @ FillError::TimedOut { .. }) => return Err(error),
                        Err(error) => report
                            .failures
                            .push(format!("{}: {error}", candidate.file_name)),
                    }
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

fn apt_download(apt: &Apt, dir: &Path, specs: &[String]) -> Result<(), FillError> {
    let mut args = vec![
        "download".to_string(),
        "-q".to_string(),
        // As root apt drops to `_apt`, which can't write here; download as the caller.
        "-o".to_string(),
        "APT::Sandbox::User=root".to_string(),
    ];
    args.extend(specs.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&apt.program, &args, Some(dir), apt.download_timeout).map(|_| ())
}

/// The i386 `Packages` index files apt has, running `dpkg --add-architecture i386` and
/// `apt-get update` only when needed (or when forced).
fn ensure_i386_indexes(apt: &Apt, force_update: bool) -> Result<Vec<PathBuf>, FillError> {
    let timeout = apt.index_timeout;
    let dpkg = |args: &[&str]| run("dpkg", args, None, timeout);
    let native = String::from_utf8_lossy(&dpkg(&["--print-architecture"])?)
        .trim()
        .to_string();
    let foreign = String::from_utf8_lossy(&dpkg(&["--print-foreign-architectures"])?).to_string();
    let mut update = force_update;
    if native != "i386" && !foreign.lines().any(|arch| arch.trim() == "i386") {
        eprintln!("fill-packages: dpkg --add-architecture i386");
        dpkg(&["--add-architecture", "i386"]).map_err(|error| match error {
            timed_out @ FillError::TimedOut { .. } => timed_out,
            _ => FillError::NotRoot("dpkg --add-architecture i386"),
        })?;
        update = true;
    }
    let mut indexes = i386_indexes(apt)?;
    if indexes.is_empty() {
        update = true;
    }
    if update {
        eprintln!("fill-packages: apt-get update");
        run(&apt.program, &["update", "-q"], None, timeout).map_err(|error| match error {
            FillError::Command { detail, .. } if detail.contains("Permission denied") => {
                FillError::NotRoot("apt-get update")
            }
            other => other,
        })?;
        indexes = i386_indexes(apt)?;
    }
    if indexes.is_empty() {
        return Err(FillError::NoIndex);
    }
    Ok(indexes)
}

fn i386_indexes(apt: &Apt) -> Result<Vec<PathBuf>, FillError> {
    let output = run(
        &apt.program,
        &[
            "indextargets",
            "--format",
            "$(FILENAME)",
            "Created-By: Packages",
            "Architecture: i386",
        ],
        None,
        apt.index_timeout,
    )?;
    Ok(String::from_utf8_lossy(&output)
        .lines()
        .map(|line| PathBuf::from(line.trim()))
        .filter(|path| path.is_file())
        .collect())
}

/// Which `apt-get` to run and how long its calls may take.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Apt {
    program: String,
    download_timeout: Duration,
    index_timeout: Duration,
}

impl Apt {
    /// From `APT_GET` and `WEBVM_APT_TIMEOUT`.
    fn from_environment() -> Result<Self, FillError> {
        Self::from_settings(
            std::env::var_os(APT_GET_VARIABLE),
            std::env::var_os(TIMEOUT_VARIABLE),
        )
    }

    fn from_settings(
        program: Option<OsString>,
        timeout: Option<OsString>,
    ) -> Result<Self, FillError> {
        let program = program
            .map(|value| value.to_string_lossy().trim().to_string())
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| "apt-get".to_string());
        let timeout = match timeout.map(|value| value.to_string_lossy().trim().to_string()) {
            None => None,
            Some(text) if text.is_empty() => None,
            Some(text) => match text.parse::<u64>() {
                Ok(secs) if secs > 0 => Some(Duration::from_secs(secs)),
                _ => return Err(FillError::BadTimeout(text)),
            },
        };
        Ok(Apt {
            program,
            download_timeout: timeout.unwrap_or(DOWNLOAD_TIMEOUT),
            index_timeout: timeout.unwrap_or(INDEX_TIMEOUT),
        })
    }
}

/// A duration as people read it: `10 min`, `90 s`, `250 ms`.
fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs();
    if duration.subsec_nanos() == 0 && secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else if duration.subsec_nanos() == 0 {
        format!("{secs} s")
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// The stderr lines worth reporting (apt's unsandboxed-download warning is not).
fn stderr_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty() && !line.starts_with("W: Download is performed unsandboxed")
        })
        .map(str::to_string)
        .collect()
}

/// Reads a pipe to its end on a thread of its own, so that neither pipe can fill and block
/// the command; the bytes arrive on the returned channel.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = sender.send(bytes);
        });
    } else {
        let _ = sender.send(Vec::new());
    }
    receiver
}

/// Waits for `child` until `deadline`; past it, kills its process group (the command and
/// whatever it started) and returns `None`.
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            // The child is not reaped yet, so its id still names its process group.
            let group = i32::try_from(child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw);
            if let Some(group) = group {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Runs a command (stdin closed, in a process group of its own) and returns its stdout. A
/// non-zero exit is an error with its stderr; one still running after `timeout` is killed,
/// with everything it started, and is a [`FillError::TimedOut`].
fn run(
    program: &str,
    args: &[&str],
    cwd: Option<&Path>,
    timeout: Duration,
) -> Result<Vec<u8>, FillError> {
    let described = format!("{program} {}", args.join(" "));
    let failed = |detail: String| FillError::Command {
        command: described.clone(),
        detail,
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let deadline = Instant::now() + timeout;
    let mut child = command
        .spawn()
        .map_err(|error| failed(format!("it cannot be started: {error}")))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_until(&mut child, deadline)
        .map_err(|error| failed(format!("waiting for it failed: {error}")))?;
    // Its output closes once it and its children are gone; a process that escaped the
    // group and holds it open is not waited for.
    let stderr = stderr.recv_timeout(OUTPUT_GRACE).unwrap_or_default();
    let Some(status) = status else {
        let lines = stderr_lines(&stderr);
        let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
        return Err(FillError::TimedOut {
            command: described,
            timeout,
            detail: if tail.is_empty() {
                String::new()
            } else {
                format!(" (last output: {tail})")
            },
        });
    };
    let stdout = stdout
        .recv_timeout(OUTPUT_GRACE)
        .map_err(|_| failed(format!("it ended ({status}) but its output stayed open")))?;
    if status.success() {
        Ok(stdout)
    } else {
        Err(failed(format!(
            "{} ({status})",
            stderr_lines(&stderr).join(" / ")
        )))
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

Package: escape
Version: 1.0
Architecture: ../../../../tmp/x
Filename: pool/main/e/escape/escape_1.0_i386.deb
Size: 10
SHA256: 0000000000000000000000000000000000000000000000000000000000000002
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

    /// A timeout long enough for any command that does finish.
    const PATIENT: Duration = Duration::from_secs(120);

    /// Waits (boundedly) until `pid` has exited: gone, or a zombie left for init to reap.
    fn assert_exits(pid: &str) {
        for _ in 0..500 {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => return,
                Ok(stat)
                    if stat
                        .rsplit(')')
                        .next()
                        .is_some_and(|rest| rest.trim_start().starts_with(['Z', 'X'])) =>
                {
                    return
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        panic!("process {pid} is still running");
    }

    #[test]
    fn a_command_that_hangs_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pids = dir.path().join("pids");
        let script = format!(
            "echo $$ > {pids}; sleep 300 & echo $! >> {pids}; echo '0% [Connecting to deb.debian.org]' >&2; wait",
            pids = pids.display()
        );
        let timeout = Duration::from_secs(2);
        let error = run("sh", &["-c", &script], None, timeout).expect_err("it hangs");
        assert!(
            matches!(&error, FillError::TimedOut { timeout: t, .. } if *t == timeout),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.starts_with("`sh -c echo $$ > "), "{message}");
        assert!(
            message.contains("did not finish within 2 s and was killed"),
            "{message}"
        );
        assert!(
            message.contains("(last output: 0% [Connecting to deb.debian.org])"),
            "{message}"
        );
        // The shell and the sleep it left in the background are both gone.
        let pids = std::fs::read_to_string(&pids).expect("the script wrote its pids");
        let pids: Vec<&str> = pids.lines().collect();
        assert_eq!(pids.len(), 2, "{pids:?}");
        for pid in pids {
            assert_exits(pid);
        }
    }

    #[test]
    fn a_failing_command_reports_its_stderr_and_exit_status() {
        let script = "echo 'W: Download is performed unsandboxed as root' >&2; echo 'E: Unable to locate package nope' >&2; exit 100";
        let error = run("sh", &["-c", script], None, PATIENT).expect_err("it fails");
        let message = error.to_string();
        assert!(message.starts_with("`sh -c echo"), "{message}");
        let FillError::Command { detail, .. } = error else {
            panic!("{message}");
        };
        assert_eq!(
            detail,
            "E: Unable to locate package nope (exit status: 100)"
        );
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let error = run("/nonexistent/apt-get", &["update", "-q"], None, PATIENT)
            .expect_err("there is no such program");
        let message = error.to_string();
        assert!(
            message.starts_with("`/nonexistent/apt-get update -q` failed: it cannot be started"),
            "{message}"
        );
    }

    #[test]
    fn output_is_read_while_the_command_runs() {
        // More than a pipe holds (64 KiB), on both streams.
        let script = "head -c 1000000 /dev/zero; head -c 1000000 /dev/zero >&2";
        let output = run("sh", &["-c", script], None, PATIENT).expect("it succeeds");
        assert_eq!(output.len(), 1_000_000);
    }

    #[test]
    fn apt_settings_come_from_the_environment() {
        let defaults = Apt::from_settings(None, Some(OsString::new())).expect("defaults");
        assert_eq!(
            defaults,
            Apt {
                program: "apt-get".into(),
                download_timeout: DOWNLOAD_TIMEOUT,
                index_timeout: INDEX_TIMEOUT,
            }
        );
        let custom =
            Apt::from_settings(Some("/opt/apt-get".into()), Some(" 30 ".into())).expect("custom");
        assert_eq!(custom.program, "/opt/apt-get");
        assert_eq!(custom.download_timeout, Duration::from_secs(30));
        assert_eq!(custom.index_timeout, Duration::from_secs(30));
        for bad in ["0", "-1", "ten", "1.5"] {
            let error = Apt::from_settings(None, Some(bad.into())).expect_err(bad);
            assert!(
                error.to_string().starts_with("WEBVM_APT_TIMEOUT must be"),
                "{error}"
            );
        }
        assert_eq!(seconds(DOWNLOAD_TIMEOUT), "10 min");
        assert_eq!(seconds(INDEX_TIMEOUT), "5 min");
        assert_eq!(seconds(Duration::from_secs(90)), "90 s");
        assert_eq!(seconds(Duration::from_millis(250)), "250 ms");
    }

    /// Two candidates, and an `apt-get` that is `sh` running `.partial/download`: a script.
    fn fake_download(dir: &Path, script: &str, timeout: Duration) -> (Apt, Vec<Candidate>) {
        let partial = dir.join(PARTIAL_DIR);
        std::fs::create_dir_all(&partial).expect("partial dir");
        std::fs::write(partial.join("download"), script).expect("script");
        let apt = Apt {
            program: "sh".into(),
            download_timeout: timeout,
            index_timeout: timeout,
        };
        (apt, candidates_from_index(INDEX))
    }

    #[test]
    fn a_download_that_hangs_stops_the_fill_without_retrying_each_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (apt, candidates) = fake_download(
            dir.path(),
            "echo call >> ../calls\nexec sleep 300\n",
            Duration::from_secs(1),
        );
        let missing: Vec<&Candidate> = candidates.iter().collect();
        let mut report = FillReport::default();
        let error = download(&apt, dir.path(), &missing, &mut report).expect_err("it hangs");
        let message = error.to_string();
        assert!(message.starts_with("`sh download -q -o APT::Sandbox::User=root nginx-common=1.22.1-9+deb12u9 busybox:i386=1:1.35.0-4+b3` did not finish within 1 s"), "{message}");
        let calls = std::fs::read_to_string(dir.path().join("calls")).expect("calls");
        assert_eq!(calls.lines().count(), 1);
        assert_eq!(report.downloaded, 0);
    }

    #[test]
    fn a_download_that_fails_is_retried_per_file_and_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (apt, candidates) = fake_download(
            dir.path(),
            "echo call >> ../calls\necho \"E: Failed to fetch $4\" >&2\nexit 100\n",
            PATIENT,
        );
        let missing: Vec<&Candidate> = candidates.iter().collect();
        let mut report = FillReport::default();
        download(&apt, dir.path(), &missing, &mut report).expect("failures are reported");
        let calls = std::fs::read_to_string(dir.path().join("calls")).expect("calls");
        assert_eq!(
            calls.lines().count(),
            3,
            "one call for the chunk, one per file"
        );
        assert_eq!(report.failures.len(), 2, "{:?}", report.failures);
        assert!(
            report.failures[0].starts_with("nginx-common_1.22.1-9+deb12u9_all.deb: `sh download")
                && report.failures[0].contains("E: Failed to fetch nginx-common=1.22.1-9+deb12u9"),
            "{:?}",
            report.failures
        );
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
