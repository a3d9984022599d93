//! Runtime layers: which paths of a dpkg install a prebuilt layer carries, when the browser
//! installs a layer instead of running dpkg in the guest, the one guest script that applies
//! it, and how two file-system manifests are compared to prove both paths end the same.
//!
//! A layer is the upper directory of an overlay in which the server ran the runtime's own
//! `dpkg --install` steps, `dpkg --configure -a` and catalog scripts (`server::packages::
//! layers`). It carries every new or changed file except the ones the guest must make
//! itself: dpkg's status database (the layer's stanzas are merged into the guest's), the
//! caches its triggers regenerate (`ldconfig`), locks and logs.

use std::collections::BTreeMap;

use super::package_install::InstallPlan;
use super::release::quote;
use crate::model::catalog::RuntimeLayer;

/// Part of every layer's cache key: a new builder makes new layers.
pub const BUILDER_VERSION: &str = "1";

/// The status stanzas of the layer's packages, inside its tar (removed after the merge).
pub const STANZAS_IN_TAR: &str = ".webvm-layer/status";

/// The guest script's exit code when the guest is not the one the layer was built on:
/// nothing was changed, and dpkg installs instead.
pub const PRECONDITION_FAILED: i32 = 75;
/// Exit code when the catalog's install script failed after the layer was applied.
pub const INSTALL_SCRIPT_FAILED: i32 = 76;
/// Exit code when the catalog's post-install script failed.
pub const POST_INSTALL_SCRIPT_FAILED: i32 = 77;

/// What a path in a build's upper directory is to the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRole {
    /// Carried in the layer.
    Content,
    /// dpkg's status database: the layer carries its packages' stanzas instead.
    StatusDatabase,
    /// Rewritten in the guest by a trigger (`ldconfig`), never carried.
    Regenerated,
    /// Locks, logs, backups and scratch space: neither carried nor compared.
    Transient,
}

/// The role of `path` (absolute, as in the guest) in a layer. Directories under the log
/// and scratch trees are content (packages own some, like `/var/log/nginx`); the files in
/// them are not.
pub fn path_role(path: &str, is_dir: bool) -> PathRole {
    const TRANSIENT_FILES: &[&str] = &[
        "/var/lib/dpkg/lock",
        "/var/lib/dpkg/lock-frontend",
        "/var/lib/dpkg/triggers/Lock",
        "/var/lib/dpkg/status-old",
        "/var/cache/debconf/config.dat-old",
        "/var/cache/debconf/templates.dat-old",
        "/var/cache/ldconfig/aux-cache",
    ];
    const TRANSIENT_TREES: &[&str] = &["/var/log", "/tmp", "/run", "/var/tmp", "/mnt"];
    if path == "/var/lib/dpkg/status" {
        return PathRole::StatusDatabase;
    }
    if path == "/etc/ld.so.cache" {
        return PathRole::Regenerated;
    }
    let in_tree = |tree: &str| {
        path.strip_prefix(tree)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if TRANSIENT_FILES.contains(&path) {
        return PathRole::Transient;
    }
    if TRANSIENT_TREES.iter().any(|tree| in_tree(tree)) && !is_dir {
        return PathRole::Transient;
    }
    PathRole::Content
}

/// The guest command that redoes what the trigger of a package outside the layer did, when
/// there is one the layer path knows how to run. A build whose dpkg ran any other trigger of
/// a package outside the layer makes no layer.
pub fn trigger_command(package: &str) -> Option<&'static str> {
    match package {
        // libc-bin's file trigger on the library directories.
        "libc-bin" => Some("ldconfig"),
        _ => None,
    }
}

/// How a runtime is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallRoute {
    /// From its prebuilt layer.
    Layer,
    /// With dpkg in the guest, and why not from a layer.
    Dpkg { reason: String },
}

/// The route for `plan`: its layer when the catalog has one, the plan installs the whole
/// closure the layer was built from, and the layer carries only the runtime's packages;
/// dpkg otherwise. `closure_files` is how many `.deb` files the runtime
/// has in all (the plan leaves out those another installed runtime put in the guest).
pub fn choose_route(
    layer: Option<&RuntimeLayer>,
    plan: &InstallPlan,
    closure_files: usize,
) -> InstallRoute {
    let Some(layer) = layer else {
        return InstallRoute::Dpkg {
            reason: "the server has no prebuilt layer for this runtime".into(),
        };
    };
    if plan.files.len() != closure_files {
        return InstallRoute::Dpkg {
            reason: format!(
                "{} of its {closure_files} packages are already in the VM (from another runtime), and the layer was built without them",
                closure_files - plan.files.len()
            ),
        };
    }
    // A package the layer doesn't carry is one the image has at this very version (dpkg
    // reinstalled it): the layer's file hashes, checked in the guest, guard that.
    let foreign = layer
        .packages
        .iter()
        .find(|carried| !plan.debian_packages.contains(carried));
    if let Some(foreign) = foreign {
        return InstallRoute::Dpkg {
            reason: format!(
                "the layer carries {foreign}, which is not one of the runtime's packages"
            ),
        };
    }
    InstallRoute::Layer
}

/// The one guest script that installs `layer` from `tar_path` (a gzipped tar in the guest):
///
/// 1. preconditions, changing nothing (exit [`PRECONDITION_FAILED`] with the reason on
///    stderr): none of its packages is known to dpkg, every file it replaces has the
///    SHA-256 it was built on, every path it deletes exists;
/// 2. the tar extracted over `/`, the deleted paths removed;
/// 3. its status stanzas merged into dpkg's database, in dpkg's order (by package name),
///    the old database kept as `status-old` as dpkg does (a layer of no packages leaves the
///    database alone);
/// 4. the triggers dpkg would have run (`ldconfig`);
/// 5. the catalog's install and post-install scripts (exit [`INSTALL_SCRIPT_FAILED`],
///    [`POST_INSTALL_SCRIPT_FAILED`]);
/// 6. the tar removed.
pub fn apply_script(
    layer: &RuntimeLayer,
    tar_path: &str,
    install_script: Option<&str>,
    post_install_script: Option<&str>,
) -> String {
    let mut script = String::from("set -u\n");
    script.push_str(&format!("layer={}\n", quote(tar_path)));
    script.push_str(&format!(
        "mismatch() {{ rm -f \"$layer\"; printf 'layer precondition: %s\\n' \"$1\" >&2; exit {PRECONDITION_FAILED}; }}\n"
    ));
    script.push_str("[ -f \"$layer\" ] || { echo \"the layer $layer is missing\" >&2; exit 1; }\n");
    if !layer.packages.is_empty() {
        // A stanza in dpkg's status database, in any state, makes a package known (a merge
        // would duplicate it); a name other packages only mention has none. One awk pass:
        // dpkg-query costs seconds to start in the emulated guest.
        let wanted = format!(" {} ", layer.packages.join(" "));
        script.push_str(&format!(
            "known=$(awk -v RS= -v wanted={} '{{ n = split($0, field, \"\\n\"); for (i = 1; i <= n; i++) if (field[i] ~ /^Package: /) {{ name = substr(field[i], 10); if (index(wanted, \" \" name \" \")) printf \"%s \", name; break }} }}' /var/lib/dpkg/status)\n",
            quote(&wanted)
        ));
        script.push_str("[ -z \"$known\" ] || mismatch \"dpkg already knows: $known\"\n");
    }
    if !layer.modifies.is_empty() {
        // One sha256sum over every replaced file (every process start is slow in the emulated
        // guest); only when it fails does a second pass name the first mismatch.
        let pairs: Vec<String> = layer
            .modifies
            .iter()
            .map(|file| format!("{} {}", quote(file.sha256.as_str()), quote(&file.path)))
            .collect();
        script.push_str(&format!(
            "recorded() {{ printf '%s  %s\\n' {}; }}\n",
            pairs.join(" ")
        ));
        script.push_str(concat!(
            "if ! recorded | sha256sum -c --status 2>/dev/null; then\n",
            "  changed=$(recorded | sha256sum -c --quiet 2>/dev/null | sed -n '1s/: FAILED.*$//p')\n",
            "  mismatch \"${changed:-a replaced file} is not the file the layer was built on\"\n",
            "fi\n",
        ));
    }
    for path in &layer.removes {
        let path = quote(path);
        script.push_str(&format!(
            "[ -e {path} ] || [ -L {path} ] || mismatch {}\n",
            quote(&format!("{} is missing", path.trim_matches('\'')))
        ));
    }
    script.push_str(&format!(
        "echo 'the VM is the one the layer was built on: none of its {} packages is known to dpkg, {} replaced files are as recorded'\n",
        layer.packages.len(),
        layer.modifies.len()
    ));
    script.push_str("set -e\n");
    // A layer of no packages (busybox-httpd's only replaces files of the image's busybox)
    // leaves dpkg's database as it is: no backup, no merge.
    let merges = !layer.packages.is_empty();
    if merges {
        script.push_str("cp -p /var/lib/dpkg/status /var/lib/dpkg/status-old\n");
    }
    script.push_str("echo 'extracting the layer'\n");
    script.push_str("tar -xzpf \"$layer\" -C / --same-owner --numeric-owner\n");
    for path in &layer.removes {
        script.push_str(&format!("rm -rf -- {}\n", quote(path)));
    }
    if merges {
        script.push_str("echo \"merging the layer's status stanzas into dpkg's database\"\n");
        script.push_str(&format!("stanzas=/{STANZAS_IN_TAR}\n{MERGE_STATUS}"));
    }
    script.push_str(&format!(
        "rm -rf /{}\n",
        STANZAS_IN_TAR.split('/').next().unwrap_or(STANZAS_IN_TAR)
    ));
    for command in &layer.triggers {
        script.push_str(&format!(
            "echo {}\n{command}\n",
            quote(&format!("running {command} (a trigger dpkg would run)"))
        ));
    }
    script.push_str("rm -f \"$layer\"\n");
    for (script_text, code) in [
        (install_script, INSTALL_SCRIPT_FAILED),
        (post_install_script, POST_INSTALL_SCRIPT_FAILED),
    ] {
        if let Some(text) = script_text {
            script.push_str(&format!("sh -c {} || exit {code}\n", quote(text)));
        }
    }
    script
}

/// Merges `$stanzas` into `/var/lib/dpkg/status`: every paragraph as one line keyed by its
/// package name, a stable sort in the C locale (dpkg writes its database sorted by name),
/// then back to paragraphs.
const MERGE_STATUS: &str = r#"tab=$(printf '\t')
{ awk -v RS= '{ name = ""; n = split($0, field, "\n"); for (i = 1; i <= n; i++) if (field[i] ~ /^Package: /) { name = substr(field[i], 10); break }; gsub(/\n/, "\036"); print name "\t" $0 }' /var/lib/dpkg/status "$stanzas"; } \
  | LC_ALL=C sort -s -t "$tab" -k1,1 \
  | awk '{ sub(/^[^\t]*\t/, ""); gsub(/\036/, "\n"); printf "%s\n\n", $0 }' > /var/lib/dpkg/status-webvm-new
mv /var/lib/dpkg/status-webvm-new /var/lib/dpkg/status
"#;

/// One file-system entry in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// `f` file, `d` directory, `l` symbolic link, `c`/`b` devices, `p` fifo, `s` socket.
    pub kind: char,
    /// Permission bits (with setuid, setgid and sticky).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Size in bytes of a regular file (0 otherwise).
    pub size: u64,
    /// A symbolic link's target.
    pub link: Option<String>,
    /// A regular file's SHA-256.
    pub sha256: Option<String>,
}

/// How a path is compared between two manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Type, mode, owner, size, link target and SHA-256.
    Full,
    /// Type, mode and owner (`.pyc` files: their bytes may differ between builds).
    Metadata,
    /// Not compared (logs, locks, backups, caches keyed by inode).
    Skipped,
}

/// How `path` is compared (directories' times are never part of a manifest).
pub fn comparison(path: &str, is_dir: bool) -> Comparison {
    if path_role(path, is_dir) == PathRole::Transient {
        return Comparison::Skipped;
    }
    if path.ends_with(".pyc") {
        return Comparison::Metadata;
    }
    Comparison::Full
}

/// Every difference between manifests `left` and `right` (path → entry), one line each,
/// `left_name` and `right_name` saying which is which.
pub fn manifest_differences(
    left: &BTreeMap<String, ManifestEntry>,
    right: &BTreeMap<String, ManifestEntry>,
    left_name: &str,
    right_name: &str,
) -> Vec<String> {
    let mut differences = Vec::new();
    for (path, entry) in left {
        let how = comparison(path, entry.kind == 'd');
        if how == Comparison::Skipped {
            continue;
        }
        match right.get(path) {
            None => differences.push(format!("{path}: only in {left_name}")),
            Some(other) => {
                let same = match how {
                    Comparison::Full => entry == other,
                    _ => {
                        (entry.kind, entry.mode, entry.uid, entry.gid)
                            == (other.kind, other.mode, other.uid, other.gid)
                    }
                };
                if !same {
                    differences.push(format!(
                        "{path}: {} in {left_name}, {} in {right_name}",
                        describe(entry),
                        describe(other)
                    ));
                }
            }
        }
    }
    for (path, entry) in right {
        if !left.contains_key(path) && comparison(path, entry.kind == 'd') != Comparison::Skipped {
            differences.push(format!("{path}: only in {right_name}"));
        }
    }
    differences
}

fn describe(entry: &ManifestEntry) -> String {
    let mut text = format!(
        "{} {:o} {}:{} {}",
        entry.kind, entry.mode, entry.uid, entry.gid, entry.size
    );
    if let Some(link) = &entry.link {
        text.push_str(&format!(" -> {link}"));
    }
    if let Some(sha256) = &entry.sha256 {
        text.push_str(&format!(" {}", &sha256[..12.min(sha256.len())]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::package_install::FileToFetch;
    use crate::model::catalog::ModifiedFile;
    use crate::model::{PackageId, Sha256};

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn path_roles() {
        let cases = [
            ("/usr/bin/python3.11", false, PathRole::Content),
            ("/var/lib/dpkg/info/python3.list", false, PathRole::Content),
            ("/var/lib/dpkg/status", false, PathRole::StatusDatabase),
            ("/var/lib/dpkg/status-old", false, PathRole::Transient),
            ("/var/lib/dpkg/lock", false, PathRole::Transient),
            ("/var/lib/dpkg/triggers/Lock", false, PathRole::Transient),
            ("/etc/ld.so.cache", false, PathRole::Regenerated),
            ("/var/cache/ldconfig/aux-cache", false, PathRole::Transient),
            ("/var/log/dpkg.log", false, PathRole::Transient),
            ("/var/log/nginx", true, PathRole::Content),
            ("/var/logs/x", false, PathRole::Content),
            ("/tmp/x", false, PathRole::Transient),
            ("/mnt/host/webvm-deb-x.deb", false, PathRole::Transient),
            ("/etc/nginx/nginx.conf", false, PathRole::Content),
        ];
        for (path, is_dir, role) in cases {
            assert_eq!(path_role(path, is_dir), role, "{path}");
        }
    }

    #[test]
    fn comparisons() {
        let cases = [
            (
                "/usr/lib/python3.11/__pycache__/json.cpython-311.pyc",
                Comparison::Metadata,
            ),
            ("/usr/lib/python3.11/json/__init__.py", Comparison::Full),
            ("/var/log/dpkg.log", Comparison::Skipped),
            ("/var/lib/dpkg/status", Comparison::Full),
            ("/etc/ld.so.cache", Comparison::Full),
        ];
        for (path, expected) in cases {
            assert_eq!(comparison(path, false), expected, "{path}");
        }
    }

    #[test]
    fn triggers() {
        assert_eq!(trigger_command("libc-bin"), Some("ldconfig"));
        assert_eq!(trigger_command("man-db"), None);
    }

    fn plan(files: &[&str], packages: &[&str]) -> InstallPlan {
        InstallPlan {
            package_id: PackageId::parse("python-311").expect("id"),
            files: files
                .iter()
                .map(|name| FileToFetch {
                    name: name.to_string(),
                    sha256: Sha256::parse(HASH).expect("hash"),
                    size: 1,
                })
                .collect(),
            dpkg_steps: vec![files.iter().map(|name| name.to_string()).collect()],
            debian_packages: packages.iter().map(|name| name.to_string()).collect(),
            install_script: None,
            post_install_script: None,
        }
    }

    fn layer(packages: &[&str]) -> RuntimeLayer {
        RuntimeLayer {
            file: "python-311-abc.tar.gz".into(),
            sha256: Sha256::parse(HASH).expect("hash"),
            size: 10,
            packages: packages.iter().map(|name| name.to_string()).collect(),
            modifies: vec![ModifiedFile {
                path: "/etc/it's".into(),
                sha256: Sha256::parse(HASH).expect("hash"),
            }],
            removes: vec!["/usr/share/gone".into()],
            triggers: vec!["ldconfig".into()],
        }
    }

    #[test]
    fn routes() {
        let files = ["a_1_i386.deb", "b_1_all.deb"];
        let full = plan(&files, &["a", "b"]);
        let with_layer = layer(&["b", "a"]);
        assert_eq!(
            choose_route(Some(&with_layer), &full, 2),
            InstallRoute::Layer
        );
        // busybox-httpd: dpkg reinstalls the image's own busybox, so the layer has no stanza.
        let reinstall = layer(&[]);
        assert_eq!(
            choose_route(Some(&reinstall), &full, 2),
            InstallRoute::Layer
        );
        let cases: [(Option<&RuntimeLayer>, InstallPlan, usize, &str); 3] = [
            (None, full.clone(), 2, "no prebuilt layer"),
            (
                Some(&with_layer),
                plan(&files[..1], &["a"]),
                2,
                "1 of its 2 packages are already in the VM",
            ),
            (
                Some(&with_layer),
                plan(&files, &["a", "c"]),
                2,
                "carries b, which is not one of the runtime's packages",
            ),
        ];
        for (layer, plan, closure, reason) in cases {
            match choose_route(layer, &plan, closure) {
                InstallRoute::Dpkg { reason: actual } => {
                    assert!(actual.contains(reason), "{actual} vs {reason}")
                }
                InstallRoute::Layer => panic!("expected dpkg: {reason}"),
            }
        }
    }

    #[test]
    fn the_script_checks_before_it_changes_anything() {
        let script = apply_script(
            &layer(&["python3"]),
            "/mnt/host/webvm-layer-1.tar.gz",
            Some("mkdir -p /srv/www"),
            Some("python3 --version"),
        );
        let first_change = script.find("cp -p").expect("backs the database up");
        for check in [
            "awk -v RS= -v wanted=' python3 '",
            "sha256sum -c",
            "[ -e '/usr/share/gone' ]",
        ] {
            let at = script.find(check).expect(check);
            assert!(at < first_change, "{check} comes after a change");
        }
        assert!(
            script.contains("'/etc/it'\\''s'"),
            "paths are quoted: {script}"
        );
        let tar = script.find("tar -xzpf").expect("extracts");
        let remove = script.find("rm -rf -- '/usr/share/gone'").expect("removes");
        let merge = script.find("status-webvm-new").expect("merges");
        let trigger = script.find("\nldconfig\n").expect("runs ldconfig");
        let install = script.find("|| exit 76").expect("install script");
        let post = script.find("|| exit 77").expect("post-install script");
        assert!(tar < remove && remove < merge && merge < trigger && trigger < install);
        assert!(install < post);

        let files_only = apply_script(&layer(&[]), "/mnt/host/webvm-layer-2.tar.gz", None, None);
        assert!(files_only.contains("sha256sum -c") && files_only.contains("tar -xzpf"));
        for untouched in ["cp -p", "status-webvm-new", "awk -v RS= -v wanted"] {
            assert!(
                !files_only.contains(untouched),
                "a layer of no packages leaves dpkg's database alone: {untouched}"
            );
        }
    }

    fn entry(kind: char, size: u64, sha: &str) -> ManifestEntry {
        ManifestEntry {
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size,
            link: None,
            sha256: Some(sha.into()),
        }
    }

    #[test]
    fn manifests_compare_what_must_be_equal() {
        let left: BTreeMap<String, ManifestEntry> = [
            ("/usr/bin/a", entry('f', 1, "aa")),
            ("/x/b.pyc", entry('f', 5, "bb")),
            ("/var/log/dpkg.log", entry('f', 9, "cc")),
            ("/only-left", entry('f', 1, "dd")),
        ]
        .into_iter()
        .map(|(path, entry)| (path.to_string(), entry))
        .collect();
        let right: BTreeMap<String, ManifestEntry> = [
            ("/usr/bin/a", entry('f', 1, "ab")),
            ("/x/b.pyc", entry('f', 6, "bc")),
            ("/only-right", entry('f', 1, "dd")),
        ]
        .into_iter()
        .map(|(path, entry)| (path.to_string(), entry))
        .collect();
        let differences = manifest_differences(&left, &right, "dpkg", "layer");
        assert_eq!(differences.len(), 3, "{differences:?}");
        assert!(differences[0].starts_with("/only-left: only in dpkg"));
        assert!(differences[1].starts_with("/usr/bin/a: f 644 0:0 1 aa in dpkg"));
        assert!(differences[2].starts_with("/only-right: only in layer"));
    }
}
