//! Runtime layers end in exactly dpkg's state. On the real guest rootfs, the real `.deb`s and
//! the real builder, for busybox-httpd, nginx, python-311 and sqlite: one overlay installs the
//! runtime with the guest's dpkg steps, another applies its layer with the guest script of
//! `domain::runtime_layer`, both in a `linux32` chroot of the guest image. Then:
//! - the `find / -xdev` manifests (type, mode, owner, size, link target, SHA-256; logs,
//!   directory times and `.pyc` bytes left out) are the same;
//! - `dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}'` is identical;
//! - `dpkg --audit` is empty and `dpkg --verify` clean on the layer side;
//! - python imports `json`, `sqlite3` and `http.server` without writing a `.pyc`;
//! - sqlite then python (shared libraries) routes python to dpkg and ends correct;
//! - a deliberate precondition mismatch changes nothing, and dpkg then ends correct.
//!
//! Needs root, `WEBVM_GUEST_DIR` and `WEBVM_PACKAGES_DIR` (filled): `scripts/test.sh` runs it
//! after `fill-packages` with `--ignored`.

use std::path::{Path, PathBuf};

use webvm_appserver::domain::package_install::plan_install;
use webvm_appserver::domain::runtime_layer::{
    apply_script, choose_route, manifest_differences, InstallRoute, PRECONDITION_FAILED,
};
use webvm_appserver::model::catalog::{PackageCatalogEntry, RuntimeLayer};
use webvm_appserver::server::config::Config;
use webvm_appserver::server::packages::layers::build::{
    build_layers, install_with_dpkg, mount_image, shell, BuildOptions, StageRoot,
};
use webvm_appserver::server::packages::layers::manifest::manifest;
use webvm_appserver::server::packages::resolve_catalog;

const RUNTIMES: &[&str] = &["busybox-httpd", "nginx", "python-311", "sqlite"];
/// Where the test puts a layer in the guest root (as the browser puts it in the 9p share).
const TAR_IN_ROOT: &str = "/root/webvm-layer.tar.gz";

struct World {
    entries: Vec<PackageCatalogEntry>,
    layers_dir: PathBuf,
    packages_dir: PathBuf,
    base: PathBuf,
    work: tempfile::TempDir,
    _image: webvm_appserver::server::packages::layers::build::Mounts,
}

impl World {
    fn entry(&self, id: &str) -> &PackageCatalogEntry {
        self.entries
            .iter()
            .find(|entry| entry.package.id.as_str() == id)
            .unwrap_or_else(|| panic!("{id} is in the catalog"))
    }

    fn layer(&self, id: &str) -> RuntimeLayer {
        self.entry(id)
            .details
            .layer
            .clone()
            .unwrap_or_else(|| panic!("{id} has a layer"))
    }

    fn root(&self, name: &str) -> StageRoot {
        StageRoot::open(
            &[],
            &self.base,
            &self.packages_dir,
            &self.work.path().join(name),
        )
        .expect("overlay root")
    }

    /// Applies `id`'s layer in `root` with the guest script: its exit code and output.
    fn apply(&self, root: &StageRoot, id: &str) -> (i32, String) {
        let layer = self.layer(id);
        std::fs::copy(
            self.layers_dir.join(&layer.file),
            root.merged.join(TAR_IN_ROOT.trim_start_matches('/')),
        )
        .expect("layer copied in");
        let entry = self.entry(id);
        let script = apply_script(
            &layer,
            TAR_IN_ROOT,
            entry.package.install_script.as_deref(),
            entry.package.post_install_script.as_deref(),
        );
        root.run_status(&shell(&script), 0).expect("script ran")
    }

    fn dpkg(&self, root: &StageRoot, id: &str) {
        install_with_dpkg(self.entry(id), root, 0).expect("dpkg install");
    }
}

fn world() -> World {
    let guest = std::env::var_os("WEBVM_GUEST_DIR").expect("WEBVM_GUEST_DIR is set");
    let packages = std::env::var_os("WEBVM_PACKAGES_DIR").expect("WEBVM_PACKAGES_DIR is set");
    let work = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_data_dir(work.path().join("data"));
    config.guest_dir = Some(PathBuf::from(&guest));
    config.packages_dir = Some(PathBuf::from(&packages));
    config.catalog = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("catalog/runtimes.toml"));
    config.layers_dir = Some(work.path().join("layers"));
    let mut entries: Vec<PackageCatalogEntry> = resolve_catalog(&config)
        .expect("catalog")
        .into_iter()
        .filter(|entry| RUNTIMES.contains(&entry.package.id.as_str()))
        .collect();
    let options = BuildOptions {
        guest_dir: config.guest_dir.clone(),
        packages_dir: config.effective_packages_dir(),
        layers_dir: config.effective_layers_dir(),
    };
    let outcomes = build_layers(&options, &entries).expect("layers build");
    for outcome in &outcomes {
        eprintln!(
            "{}: {} in {:.1} s",
            outcome.id, outcome.outcome, outcome.seconds
        );
    }
    webvm_appserver::server::packages::layers::attach(
        &mut entries,
        &options.layers_dir,
        config.guest_dir.as_deref(),
    );
    let base = work.path().join("image");
    let image = mount_image(Path::new(&guest), &base).expect("image mounted");
    World {
        entries,
        layers_dir: options.layers_dir,
        packages_dir: options.packages_dir,
        base,
        work,
        _image: image,
    }
}

fn dpkg_query(root: &StageRoot) -> String {
    root.run(
        &[
            "dpkg-query".into(),
            "-W".into(),
            "-f".into(),
            "${Package} ${Version} ${db:Status-Abbrev}\n".into(),
        ],
        0,
    )
    .expect("dpkg-query")
}

/// Both roots list the same files, dpkg agrees, and the layer side audits clean.
fn assert_same(world: &World, dpkg: &mut StageRoot, layered: &mut StageRoot, what: &str) {
    assert_eq!(dpkg_query(dpkg), dpkg_query(layered), "{what}: dpkg-query");
    let audit = layered
        .run(&["dpkg".into(), "--audit".into()], 0)
        .expect("dpkg --audit");
    assert_eq!(audit.trim(), "", "{what}: dpkg --audit");
    // The guest's dpkg.cfg leaves documentation out (path-exclude), which `dpkg --verify`
    // reports as missing in the image already: both sides must report the same, and
    // nothing else.
    let verify = |root: &StageRoot| {
        let (_, output) = root
            .run_status(&["dpkg".into(), "--verify".into()], 0)
            .expect("dpkg --verify");
        output
    };
    let layer_verify = verify(layered);
    assert!(
        layer_verify == verify(dpkg),
        "{what}: dpkg --verify differs between the two paths"
    );
    let label: String = what
        .chars()
        .filter(|character| character.is_ascii_alphanumeric())
        .collect();
    let image_verify = verify(&world.root(&format!("{label}-image")));
    let excluded = [
        "/usr/share/doc",
        "/usr/share/man",
        "/usr/share/locale",
        "/usr/share/lintian",
        "/usr/share/info",
    ];
    let unexpected: Vec<&str> = layer_verify
        .lines()
        .filter(|line| !image_verify.lines().any(|known| known == *line))
        .filter(|line| {
            let path = line.trim_start_matches("missing").trim();
            !(line.starts_with("missing ") && excluded.iter().any(|dir| path.starts_with(dir)))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{what}: dpkg --verify: {unexpected:?}"
    );
    dpkg.close_helpers();
    layered.close_helpers();
    let all = |_: &str| true;
    let left = manifest(&dpkg.merged, &all).expect("dpkg manifest");
    let right = manifest(&layered.merged, &all).expect("layer manifest");
    let differences = manifest_differences(&left, &right, "dpkg", "layer");
    assert!(
        differences.is_empty(),
        "{what}: {} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

fn pyc_files(dir: &Path) -> Vec<String> {
    manifest(dir, &|_| false)
        .expect("listing")
        .into_keys()
        .filter(|path| path.ends_with(".pyc"))
        .collect()
}

/// One test, so the layers are built once.
#[test]
#[ignore = "needs root, the guest image and the filled packages: scripts/test.sh runs it"]
fn layers_end_where_dpkg_ends() {
    let world = world();
    each_runtime_alone(&world);
    shared_libraries_and_mismatches_fall_back_to_dpkg(&world);
}

fn each_runtime_alone(world: &World) {
    for id in RUNTIMES {
        let mut dpkg = world.root(&format!("{id}-dpkg"));
        world.dpkg(&dpkg, id);
        let mut layered = world.root(&format!("{id}-layer"));
        let (code, output) = world.apply(&layered, id);
        assert_eq!(code, 0, "{id}: the layer script failed: {output}");
        if *id == "python-311" {
            let before = pyc_files(&layered.upper);
            layered
                .run(
                    &[
                        "python3".into(),
                        "-c".into(),
                        "import json, sqlite3, http.server".into(),
                    ],
                    0,
                )
                .expect("python imports");
            assert_eq!(before, pyc_files(&layered.upper), "python wrote a .pyc");
        }
        assert_same(world, &mut dpkg, &mut layered, id);
    }
}

fn shared_libraries_and_mismatches_fall_back_to_dpkg(world: &World) {
    // sqlite, then python, which shares libsqlite3-0 and libreadline8 with it.
    let mut dpkg = world.root("shared-dpkg");
    world.dpkg(&dpkg, "sqlite");
    world.dpkg(&dpkg, "python-311");
    let mut layered = world.root("shared-layer");
    let (code, output) = world.apply(&layered, "sqlite");
    assert_eq!(code, 0, "sqlite's layer: {output}");
    let python = world.entry("python-311");
    let sqlite_files: std::collections::BTreeSet<String> = world
        .entry("sqlite")
        .package
        .deb_packages
        .iter()
        .cloned()
        .collect();
    let plan = plan_install(
        &python.package,
        None,
        &python.details.install_steps,
        &python.details.file_sizes,
        &sqlite_files,
    )
    .expect("plan");
    let route = choose_route(
        python.details.layer.as_ref(),
        &plan,
        python.package.deb_packages.len(),
    );
    assert!(
        matches!(route, InstallRoute::Dpkg { .. }),
        "python after sqlite goes to dpkg: {route:?}"
    );
    // The guest checks again: python's layer refuses a guest that has sqlite's packages.
    let (code, output) = world.apply(&layered, "python-311");
    assert_eq!(code, PRECONDITION_FAILED, "{output}");
    assert!(output.contains("dpkg already knows"), "{output}");
    world.dpkg(&layered, "python-311");
    assert_same(world, &mut dpkg, &mut layered, "sqlite then python");

    // A file busybox-httpd's layer replaces is not what it was built on: nothing changes,
    // and dpkg then ends where it always does.
    let mut dpkg = world.root("mismatch-dpkg");
    world.dpkg(&dpkg, "busybox-httpd");
    let mut layered = world.root("mismatch-layer");
    let layer = world.layer("busybox-httpd");
    let changed = layer
        .modifies
        .first()
        .expect("busybox's layer replaces files");
    let path = layered.merged.join(changed.path.trim_start_matches('/'));
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.push(b'\n');
    std::fs::write(&path, bytes).expect("write");
    let before = manifest(&layered.merged, &|_| true).expect("listing");
    let (code, output) = world.apply(&layered, "busybox-httpd");
    assert_eq!(code, PRECONDITION_FAILED, "{output}");
    assert!(output.contains(&changed.path), "{output}");
    let after = manifest(&layered.merged, &|_| true).expect("listing");
    assert!(
        manifest_differences(&before, &after, "before", "after").is_empty(),
        "a refused layer changed the guest"
    );
    world.dpkg(&layered, "busybox-httpd");
    assert_same(world, &mut dpkg, &mut layered, "mismatch, then dpkg");
}
