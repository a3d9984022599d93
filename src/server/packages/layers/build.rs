//! `webvm-appserver build-layers`: each catalog runtime's layer, built natively from the
//! guest's own rootfs.
//!
//! For a runtime, on top of the guest image and its catalog dependencies: an overlay over the
//! image's rootfs (mounted read-only from `rootfs.ext4`), the `.deb`s bound read-only at
//! `/mnt`, and a `linux32` chroot (i386 binaries run natively on an amd64 kernel) that runs
//! what the guest would run, with the guest's environment, `dpkg.cfg` and `policy-rc.d`:
//! each `installSteps` call of `dpkg --install`, `dpkg --configure -a`, then the catalog's
//! install and post-install scripts. Each dependency is a stage of its own, so the last
//! stage's upper directory is exactly the runtime's diff.
//!
//! Every runtime is built twice, with a different `PYTHONHASHSEED` and seconds apart; a
//! runtime whose builds differ outside logs and `.pyc` bytes (host keys, other secrets,
//! timestamps) gets no layer and stays on dpkg, as does one whose dpkg ran a trigger the
//! layer path can't redo, deleted a directory wholesale (an opaque directory) or changed a
//! base package's status. The output, cached by [`LayerInputs::key`], is `<id>-<key>.tar.gz`
//! and its [`LayerManifest`] `<id>-<key>.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::manifest::manifest;
use super::{file_sha256, image_hash, stack_of, LayerInputs, LayerManifest};
use crate::domain::package_install::POLICY_RC_D;
use crate::domain::runtime_layer::{
    manifest_differences, path_role, trigger_command, PathRole, BUILDER_VERSION, STANZAS_IN_TAR,
};
use crate::guest_protocol::GUEST_ENV;
use crate::model::catalog::{ModifiedFile, PackageCatalogEntry, RuntimeLayer};
use crate::model::{PackageStatus, Sha256};

/// Why building layers stopped.
#[derive(Debug, thiserror::Error)]
pub enum LayerBuildError {
    #[error("build-layers needs root (it mounts overlays and runs chroot)")]
    NotRoot,
    #[error("no guest build: set WEBVM_GUEST_DIR to a directory made by guest/build.sh")]
    NoGuest,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LayerBuildError {
    let what = what.into();
    move |source| LayerBuildError::Io { what, source }
}

/// What to build from and where.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub guest_dir: Option<PathBuf>,
    pub packages_dir: PathBuf,
    pub layers_dir: PathBuf,
}

/// One runtime's outcome.
#[derive(Debug, Clone)]
pub struct RuntimeOutcome {
    pub id: String,
    /// `built`, `cached`, or `no layer: <reason>`.
    pub outcome: String,
    pub seconds: f64,
    pub entries: usize,
    pub tar_bytes: u64,
    pub gz_bytes: u64,
}

/// Builds (or finds in the cache) the layer of every available runtime of `entries`.
pub fn build_layers(
    options: &BuildOptions,
    entries: &[PackageCatalogEntry],
) -> Result<Vec<RuntimeOutcome>, LayerBuildError> {
    // SAFETY: geteuid has no preconditions and can't fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LayerBuildError::NotRoot);
    }
    let guest_dir = options
        .guest_dir
        .as_deref()
        .ok_or(LayerBuildError::NoGuest)?;
    let image = image_hash(guest_dir).ok_or(LayerBuildError::NoGuest)?;
    std::fs::create_dir_all(&options.layers_dir)
        .map_err(io(format!("creating {}", options.layers_dir.display())))?;
    let work = options
        .layers_dir
        .join(format!(".work-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(io("creating the work directory"))?;
    let base = work.join("base");
    let mounts = mount_image(guest_dir, &base)?;
    let mut outcomes = Vec::new();
    for entry in entries {
        if entry.package.status == PackageStatus::Error || entry.package.deb_packages.is_empty() {
            continue;
        }
        let id = entry.package.id.to_string();
        let Some(stack) = stack_of(entries, &id) else {
            continue;
        };
        let inputs = LayerInputs {
            image_hash: &image,
            stack,
        };
        let started = Instant::now();
        let outcome = build_one(options, &inputs, &base, &work.join(&id));
        let seconds = started.elapsed().as_secs_f64();
        outcomes.push(match outcome {
            Ok((manifest, cached)) => RuntimeOutcome {
                id,
                outcome: match (&manifest.refused, cached) {
                    (Some(reason), _) => format!("no layer: {reason}"),
                    (None, true) => "cached".into(),
                    (None, false) => "built".into(),
                },
                seconds,
                entries: manifest.entries,
                tar_bytes: manifest.tar_bytes,
                gz_bytes: manifest.layer.as_ref().map_or(0, |layer| layer.size),
            },
            Err(error) => RuntimeOutcome {
                id,
                outcome: format!("no layer: {error}"),
                seconds,
                entries: 0,
                tar_bytes: 0,
                gz_bytes: 0,
            },
        });
    }
    drop(mounts);
    let _ = std::fs::remove_dir_all(&work);
    Ok(outcomes)
}

/// One runtime: its cached manifest (`true`), or two builds compared and the layer made.
fn build_one(
    options: &BuildOptions,
    inputs: &LayerInputs<'_>,
    base: &Path,
    work: &Path,
) -> Result<(LayerManifest, bool), LayerBuildError> {
    let id = inputs.runtime().package.id.to_string();
    let stem = format!("{id}-{}", inputs.key());
    let manifest_path = options.layers_dir.join(format!("{stem}.json"));
    if let Ok(text) = std::fs::read_to_string(&manifest_path) {
        if let Ok(manifest) = serde_json::from_str::<LayerManifest>(&text) {
            let complete = manifest.layer.as_ref().is_none_or(|layer| {
                std::fs::metadata(options.layers_dir.join(&layer.file))
                    .is_ok_and(|meta| meta.len() == layer.size)
            });
            if complete {
                return Ok((manifest, true));
            }
        }
    }
    let started = Instant::now();
    std::fs::create_dir_all(work).map_err(io("creating the work directory"))?;
    let first = build_stack(inputs, base, &options.packages_dir, &work.join("a"), 0)?;
    let second = build_stack(inputs, base, &options.packages_dir, &work.join("b"), 1)?;
    let mut manifest = LayerManifest {
        runtime: id.clone(),
        key: inputs.key(),
        builder_version: BUILDER_VERSION.into(),
        image_hash: inputs.image_hash.into(),
        debs: inputs.debs(),
        layer: None,
        refused: None,
        entries: 0,
        tar_bytes: 0,
        build_seconds: 0.0,
        built_at: chrono::Utc::now().to_rfc3339(),
    };
    let hash_all = |_: &str| true;
    let left = manifest_of(&first.upper, &hash_all)?;
    let right = manifest_of(&second.upper, &hash_all)?;
    let differences = manifest_differences(&left, &right, "build 1", "build 2");
    if differences.is_empty() {
        match make_layer(&first, &options.layers_dir, &stem, work)? {
            Ok((layer, entries, tar_bytes)) => {
                manifest.layer = Some(layer);
                manifest.entries = entries;
                manifest.tar_bytes = tar_bytes;
            }
            Err(reason) => manifest.refused = Some(reason),
        }
    } else {
        manifest.refused = Some(format!(
            "two builds differ ({} paths, e.g. {})",
            differences.len(),
            differences[..differences.len().min(3)].join("; ")
        ));
    }
    drop(first);
    drop(second);
    let _ = std::fs::remove_dir_all(work);
    manifest.build_seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    remove_other_keys(&options.layers_dir, &id, &stem);
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    std::fs::write(&manifest_path, text)
        .map_err(io(format!("writing {}", manifest_path.display())))?;
    Ok((manifest, false))
}

fn manifest_of(
    dir: &Path,
    hash: &dyn Fn(&str) -> bool,
) -> Result<BTreeMap<String, crate::domain::runtime_layer::ManifestEntry>, LayerBuildError> {
    manifest(dir, hash).map_err(io(format!("listing {}", dir.display())))
}

/// Deletes `id`'s layers of other keys (older inputs).
fn remove_other_keys(dir: &Path, id: &str, stem: &str) {
    let Ok(items) = std::fs::read_dir(dir) else {
        return;
    };
    for item in items.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&format!("{id}-")) else {
            continue;
        };
        let key = rest
            .strip_suffix(".json")
            .or_else(|| rest.strip_suffix(".tar.gz"));
        if let Some(key) = key {
            let is_key = key.len() == 16 && key.chars().all(|c| c.is_ascii_hexdigit());
            if is_key && !name.starts_with(stem) {
                let _ = std::fs::remove_file(item.path());
            }
        }
    }
}

/// A built stack: the last stage's upper directory, the view below it, and dpkg's output.
struct StackBuild {
    upper: PathBuf,
    /// The image plus the dependencies' stages (mounted read-only while this lives).
    lower_view: PathBuf,
    log: String,
    _mounts: Mounts,
}

/// Runs every stage of `inputs` in overlays under `work`; the seed is `PYTHONHASHSEED`.
fn build_stack(
    inputs: &LayerInputs<'_>,
    base: &Path,
    packages_dir: &Path,
    work: &Path,
    seed: u32,
) -> Result<StackBuild, LayerBuildError> {
    let mut uppers: Vec<PathBuf> = Vec::new();
    let mut log = String::new();
    for (index, entry) in inputs.stack.iter().enumerate() {
        let stage = StageRoot::open(&uppers, base, packages_dir, &work.join(index.to_string()))?;
        let stage_log = install_with_dpkg(entry, &stage, seed)?;
        if index + 1 == inputs.stack.len() {
            log = stage_log;
        }
        uppers.push(stage.upper.clone());
    }
    let upper = uppers.pop().unwrap_or_default();
    let mut mounts = Mounts::default();
    let lower_view = if uppers.is_empty() {
        base.to_path_buf()
    } else {
        let view = work.join("lower-view");
        std::fs::create_dir_all(&view).map_err(io("creating the lower view"))?;
        mounts.mount(
            &[
                "-t",
                "overlay",
                "-o",
                &format!("lowerdir={}", lower_dirs(&uppers, base)),
            ],
            Path::new("overlay"),
            &view,
        )?;
        view
    };
    Ok(StackBuild {
        upper,
        lower_view,
        log,
        _mounts: mounts,
    })
}

/// Overlay `lowerdir=` for stages `uppers` over `base`: the newest first.
fn lower_dirs(uppers: &[PathBuf], base: &Path) -> String {
    uppers
        .iter()
        .rev()
        .chain(std::iter::once(&base.to_path_buf()))
        .map(|dir| dir.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// The image mounted read-only at `at` from the guest build's `rootfs.ext4`.
pub fn mount_image(guest_dir: &Path, at: &Path) -> Result<Mounts, LayerBuildError> {
    std::fs::create_dir_all(at).map_err(io(format!("creating {}", at.display())))?;
    let mut mounts = Mounts::default();
    mounts.mount(&["-o", "loop,ro"], &guest_dir.join("rootfs.ext4"), at)?;
    Ok(mounts)
}

/// A root to install into: an overlay of a new upper directory over `lowers` (newest first)
/// and the image, with the `.deb`s bound read-only at `/mnt`, `/proc` and `/dev`; commands
/// run in it as the guest runs them (`linux32 chroot`, the guest's environment).
pub struct StageRoot {
    pub merged: PathBuf,
    pub upper: PathBuf,
    helpers: Mounts,
    _overlay: Mounts,
}

impl StageRoot {
    /// Makes `dir/{upper,work,merged}` and mounts the overlay and its helpers.
    pub fn open(
        lowers: &[PathBuf],
        base: &Path,
        packages_dir: &Path,
        dir: &Path,
    ) -> Result<Self, LayerBuildError> {
        let upper = dir.join("upper");
        let scratch = dir.join("work");
        let merged = dir.join("merged");
        for path in [&upper, &scratch, &merged] {
            std::fs::create_dir_all(path).map_err(io(format!("creating {}", path.display())))?;
        }
        let mut overlay = Mounts::default();
        overlay.mount(
            &[
                "-t",
                "overlay",
                "-o",
                &format!(
                    "lowerdir={},upperdir={},workdir={}",
                    lower_dirs(lowers, base),
                    upper.display(),
                    scratch.display()
                ),
            ],
            Path::new("overlay"),
            &merged,
        )?;
        let mut helpers = Mounts::default();
        helpers.mount(&["--bind", "-o", "ro"], packages_dir, &merged.join("mnt"))?;
        helpers.mount(&["-t", "proc"], Path::new("proc"), &merged.join("proc"))?;
        helpers.mount(&["--bind"], Path::new("/dev"), &merged.join("dev"))?;
        Ok(StageRoot {
            merged,
            upper,
            helpers,
            _overlay: overlay,
        })
    }

    /// Runs `args` in the root with `PYTHONHASHSEED=seed`: its exit code and its output.
    pub fn run_status(&self, args: &[String], seed: u32) -> Result<(i32, String), LayerBuildError> {
        let result = Command::new("linux32")
            .arg("chroot")
            .arg(&self.merged)
            .arg("/usr/bin/env")
            .arg("-i")
            .arg("DEBIAN_FRONTEND=noninteractive")
            .arg(format!("PYTHONHASHSEED={seed}"))
            .args(GUEST_ENV)
            .args(args)
            .output()
            .map_err(io(format!("running {}", args.join(" "))))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
        Ok((result.status.code().unwrap_or(-1), text))
    }

    /// Runs `args`; its output, or an error when it exits with anything but 0.
    pub fn run(&self, args: &[String], seed: u32) -> Result<String, LayerBuildError> {
        let (code, text) = self.run_status(args, seed)?;
        if code == 0 {
            Ok(text)
        } else {
            let mut label = args.join(" ");
            if label.len() > 120 {
                label = format!("{}…", label.chars().take(120).collect::<String>());
            }
            Err(LayerBuildError::Command {
                command: label,
                status: format!("exit code {code}"),
                output: text.lines().rev().take(5).collect::<Vec<_>>().join(" / "),
            })
        }
    }

    /// Unmounts `/mnt`, `/proc` and `/dev`, leaving the overlay to be listed.
    pub fn close_helpers(&mut self) {
        self.helpers = Mounts::default();
    }
}

/// `sh -c script` as arguments.
pub fn shell(script: &str) -> Vec<String> {
    vec!["sh".to_string(), "-c".into(), script.to_string()]
}

/// What the guest's dpkg path runs for `entry`: `policy-rc.d`, each `dpkg --install` step,
/// `dpkg --configure -a`, the catalog's scripts. Its output.
pub fn install_with_dpkg(
    entry: &PackageCatalogEntry,
    root: &StageRoot,
    seed: u32,
) -> Result<String, LayerBuildError> {
    let mut output = root.run(&shell(POLICY_RC_D), seed)?;
    for step in &entry.details.install_steps {
        let mut args = vec![
            "dpkg".to_string(),
            "--force-unsafe-io".into(),
            "--install".into(),
        ];
        args.extend(step.iter().map(|file| format!("/mnt/{file}")));
        output.push_str(&root.run(&args, seed)?);
    }
    output.push_str(&root.run(&["dpkg".into(), "--configure".into(), "-a".into()], seed)?);
    for script in [
        &entry.package.install_script,
        &entry.package.post_install_script,
    ]
    .into_iter()
    .flatten()
    {
        output.push_str(&root.run(&shell(script), seed)?);
    }
    Ok(output)
}

/// The layer of `build` as `<stem>.tar.gz` in `layers_dir`, or why it can't have one.
fn make_layer(
    build: &StackBuild,
    layers_dir: &Path,
    stem: &str,
    work: &Path,
) -> Result<Result<(RuntimeLayer, usize, u64), String>, LayerBuildError> {
    let upper = &build.upper;
    let listing = manifest_of(upper, &|_| false)?;
    let mut content: Vec<String> = Vec::new();
    let mut modifies = Vec::new();
    let mut removes = Vec::new();
    let mut regenerated = false;
    for (path, entry) in &listing {
        let on_disk = upper.join(path.trim_start_matches('/'));
        let meta = std::fs::symlink_metadata(&on_disk).map_err(io(format!("reading {path}")))?;
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            removes.push(path.clone());
            continue;
        }
        // overlayfs marks a directory opaque when it hides one below (a directory deleted
        // and made again); a new directory may be marked too, and hides nothing.
        let below = build.lower_view.join(path.trim_start_matches('/'));
        if entry.kind == 'd' && is_opaque(&on_disk) && below.is_dir() {
            return Ok(Err(format!(
                "dpkg replaced the directory {path} as a whole"
            )));
        }
        match path_role(path, entry.kind == 'd') {
            PathRole::Content => {}
            PathRole::Regenerated => {
                regenerated = true;
                continue;
            }
            PathRole::StatusDatabase | PathRole::Transient => continue,
        }
        if let Ok(before) = std::fs::symlink_metadata(&below) {
            if before.file_type().is_file() {
                let sum = file_sha256(&below).map_err(io(format!("hashing {path}")))?;
                modifies.push(ModifiedFile {
                    path: path.clone(),
                    sha256: Sha256::parse(&sum).map_err(|_| LayerBuildError::Io {
                        what: format!("hashing {path}"),
                        source: std::io::Error::other("not a SHA-256"),
                    })?,
                });
            } else if before.file_type().is_symlink() && entry.kind != 'l' {
                return Ok(Err(format!("dpkg replaced the symbolic link {path}")));
            }
        }
        content.push(path.clone());
    }
    // dpkg's database: the stanzas this install added.
    let status_before = std::fs::read_to_string(build.lower_view.join("var/lib/dpkg/status"))
        .map_err(io("reading the status database before"))?;
    let status_after = std::fs::read_to_string(upper.join("var/lib/dpkg/status"))
        .map_err(io("reading the status database after"))?;
    let before: BTreeSet<&str> = stanzas(&status_before).collect();
    let after: Vec<&str> = stanzas(&status_after).collect();
    let before_names: BTreeSet<String> = before.iter().filter_map(|s| package_of(s)).collect();
    let mut packages = Vec::new();
    let mut added = String::new();
    for stanza in &after {
        if before.contains(stanza) {
            continue;
        }
        let Some(name) = package_of(stanza) else {
            return Ok(Err("a status stanza without a Package field".into()));
        };
        if before_names.contains(&name) {
            return Ok(Err(format!(
                "the install changed {name}, a package already in the image"
            )));
        }
        packages.push(name);
        added.push_str(stanza);
        added.push_str("\n\n");
    }
    if after.len() != before.len() + packages.len() {
        return Ok(Err("the install removed a package of the image".into()));
    }
    // Triggers of packages outside the layer.
    let mut triggers = Vec::new();
    for line in build.log.lines() {
        let Some(rest) = line.strip_prefix("Processing triggers for ") else {
            continue;
        };
        let name = rest.split([' ', ':']).next().unwrap_or_default();
        if packages.iter().any(|package| package == name) {
            continue;
        }
        match trigger_command(name) {
            Some(command) if !triggers.iter().any(|known| known == command) => {
                triggers.push(command.to_string())
            }
            Some(_) => {}
            None => {
                return Ok(Err(format!(
                    "dpkg ran the trigger of {name}, which a layer can't redo"
                )))
            }
        }
    }
    if regenerated && triggers.is_empty() {
        return Ok(Err(
            "/etc/ld.so.cache changed without libc-bin's trigger".into()
        ));
    }
    // The stanzas go into the tar, then the tar is written and gzipped.
    let meta_dir = upper.join(
        STANZAS_IN_TAR
            .rsplit_once('/')
            .map_or(STANZAS_IN_TAR, |(dir, _)| dir),
    );
    std::fs::create_dir_all(&meta_dir).map_err(io("creating the stanza directory"))?;
    std::fs::write(upper.join(STANZAS_IN_TAR), added).map_err(io("writing the stanzas"))?;
    let mut list = Vec::new();
    for path in content.iter().map(|path| format!(".{path}")).chain([
        format!(
            "./{}",
            meta_dir.file_name().unwrap_or_default().to_string_lossy()
        ),
        format!("./{STANZAS_IN_TAR}"),
    ]) {
        list.extend_from_slice(path.as_bytes());
        list.push(0);
    }
    let list_path = work.join("files");
    std::fs::write(&list_path, list).map_err(io("writing the file list"))?;
    let tar_path = work.join("layer.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(upper)
        .args([
            "--create",
            "--no-recursion",
            "--numeric-owner",
            "--format=gnu",
            "--null",
        ])
        .arg(format!("--files-from={}", list_path.display()))
        .arg(format!("--file={}", tar_path.display()))
        .output()
        .map_err(io("running tar"))?;
    if !status.status.success() {
        return Err(LayerBuildError::Command {
            command: "tar --create".into(),
            status: status.status.to_string(),
            output: String::from_utf8_lossy(&status.stderr).into_owned(),
        });
    }
    let tar_bytes = std::fs::metadata(&tar_path)
        .map_err(io("sizing the tar"))?
        .len();
    let file = format!("{stem}.tar.gz");
    let gz_path = layers_dir.join(&file);
    let partial = layers_dir.join(format!("{file}.partial"));
    {
        let mut input = std::fs::File::open(&tar_path).map_err(io("reading the tar"))?;
        let output = std::fs::File::create(&partial).map_err(io("writing the layer"))?;
        let mut encoder = flate2::write::GzEncoder::new(output, flate2::Compression::new(6));
        std::io::copy(&mut input, &mut encoder).map_err(io("compressing the layer"))?;
        encoder
            .finish()
            .and_then(|mut file| file.flush())
            .map_err(io("compressing the layer"))?;
    }
    std::fs::rename(&partial, &gz_path).map_err(io("storing the layer"))?;
    let sha256 = file_sha256(&gz_path).map_err(io("hashing the layer"))?;
    let size = std::fs::metadata(&gz_path)
        .map_err(io("sizing the layer"))?
        .len();
    let layer = RuntimeLayer {
        file,
        sha256: Sha256::parse(&sha256).map_err(|_| LayerBuildError::Io {
            what: "hashing the layer".into(),
            source: std::io::Error::other("not a SHA-256"),
        })?,
        size,
        packages,
        modifies,
        removes,
        triggers,
    };
    Ok(Ok((layer, content.len(), tar_bytes)))
}

/// The paragraphs of a deb822 file (without their blank separator lines).
fn stanzas(text: &str) -> impl Iterator<Item = &str> {
    text.split("\n\n")
        .map(|stanza| stanza.trim_matches('\n'))
        .filter(|stanza| !stanza.is_empty())
}

fn package_of(stanza: &str) -> Option<String> {
    stanza
        .lines()
        .find_map(|line| line.strip_prefix("Package: "))
        .map(|name| name.trim().to_string())
}

/// Whether overlayfs marked `dir` opaque (it hides everything below it).
fn is_opaque(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut value = [0u8; 2];
    // SAFETY: both pointers are valid for the lengths given, and lgetxattr only writes
    // up to `value.len()` bytes.
    let read = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    read == 1 && value[0] == b'y'
}

/// Mount points made here, unmounted (newest first) when dropped.
#[derive(Default)]
pub struct Mounts(Vec<PathBuf>);

impl Mounts {
    fn mount(
        &mut self,
        options: &[&str],
        source: &Path,
        target: &Path,
    ) -> Result<(), LayerBuildError> {
        let output = Command::new("mount")
            .args(options)
            .arg(source)
            .arg(target)
            .output()
            .map_err(io("running mount"))?;
        if !output.status.success() {
            return Err(LayerBuildError::Command {
                command: format!(
                    "mount {} {} {}",
                    options.join(" "),
                    source.display(),
                    target.display()
                ),
                status: output.status.to_string(),
                output: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        self.0.push(target.to_path_buf());
        Ok(())
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        while let Some(target) = self.0.pop() {
            let _ = Command::new("umount").arg(&target).output();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_split_on_blank_lines() {
        let text = "Package: a\nStatus: install ok installed\n\nPackage: b\nVersion: 1\n\n";
        let found: Vec<&str> = stanzas(text).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(package_of(found[1]).as_deref(), Some("b"));
    }

    #[test]
    fn lower_dirs_put_the_newest_first() {
        let uppers = [PathBuf::from("/w/0-upper"), PathBuf::from("/w/1-upper")];
        assert_eq!(
            lower_dirs(&uppers, Path::new("/w/base")),
            "/w/1-upper:/w/0-upper:/w/base"
        );
    }
}
