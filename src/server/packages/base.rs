//! What the guest's base image already has: its Debian packages (with versions when the
//! guest build's `manifest.json` says so) and what they provide.
//!
//! Source, in order: `debianPackages: {name: version}` of `WEBVM_GUEST_DIR/manifest.json`
//! (and `debianProvides: {name: [relations]}` when a build records it); otherwise
//! [`MINBASE_PACKAGES`], the packages `debootstrap --variant=minbase bookworm` installs on
//! i386 (Priority: required, plus apt and what they need), with unknown versions.
//! Provides of base packages come from [`BASE_PROVIDES`] when the manifest has none.

use std::collections::BTreeMap;
use std::path::Path;

use super::control::{parse_relations, Relation};

/// The Debian bookworm i386 minbase set (87 packages), as debootstrap installed it for the
/// guest build (`debianPackages` of its manifest, minus the packages `guest/build.sh`
/// adds with `--include` and their own dependencies). It is the fallback when no guest
/// build is configured: a conservative subset, so a closure computed with it may ship a
/// few packages the real image has, never miss one it lacks.
pub const MINBASE_PACKAGES: &[&str] = &[
    "adduser",
    "apt",
    "base-files",
    "base-passwd",
    "bash",
    "bsdutils",
    "coreutils",
    "dash",
    "debconf",
    "debian-archive-keyring",
    "debianutils",
    "diffutils",
    "dpkg",
    "e2fsprogs",
    "findutils",
    "gcc-12-base",
    "gpgv",
    "grep",
    "gzip",
    "hostname",
    "init-system-helpers",
    "libacl1",
    "libapt-pkg6.0",
    "libattr1",
    "libaudit-common",
    "libaudit1",
    "libblkid1",
    "libbz2-1.0",
    "libc-bin",
    "libc6",
    "libcap-ng0",
    "libcap2",
    "libcom-err2",
    "libcrypt1",
    "libdb5.3",
    "libdebconfclient0",
    "libext2fs2",
    "libffi8",
    "libgcc-s1",
    "libgcrypt20",
    "libgmp10",
    "libgnutls30",
    "libgpg-error0",
    "libhogweed6",
    "libidn2-0",
    "liblz4-1",
    "liblzma5",
    "libmd0",
    "libmount1",
    "libnettle8",
    "libp11-kit0",
    "libpam-modules",
    "libpam-modules-bin",
    "libpam-runtime",
    "libpam0g",
    "libpcre2-8-0",
    "libseccomp2",
    "libselinux1",
    "libsemanage-common",
    "libsemanage2",
    "libsepol2",
    "libsmartcols1",
    "libss2",
    "libstdc++6",
    "libsystemd0",
    "libtasn1-6",
    "libtinfo6",
    "libudev1",
    "libunistring2",
    "libuuid1",
    "libxxhash0",
    "libzstd1",
    "login",
    "logsave",
    "mawk",
    "mount",
    "ncurses-base",
    "ncurses-bin",
    "passwd",
    "perl-base",
    "sed",
    "sysvinit-utils",
    "tar",
    "tzdata",
    "util-linux",
    "util-linux-extra",
    "zlib1g",
];

/// `Provides` of the bookworm packages a guest image has (from Debian's i386 index), used
/// when the guest manifest does not list them.
pub const BASE_PROVIDES: &[(&str, &str)] = &[
    ("apt", "apt-transport-https (= 2.6.1)"),
    ("base-files", "base"),
    ("debconf", "debconf-2.0"),
    ("grep", "rgrep"),
    ("iproute2", "arpd"),
    ("libapt-pkg6.0", "libapt-pkg (= 2.6.1)"),
    ("libc6", "libc6-i686"),
    ("libcom-err2", "libcomerr2 (= 1.47.0-2+b2)"),
    ("libext2fs2", "e2fslibs (= 1.47.0-2+b2)"),
    ("libffi8", "libffi8ubuntu1 (= 3.4.4-1)"),
    ("libgcc-s1", "libgcc1 (= 1:12.2.0-14+deb12u1)"),
    ("libpam-modules", "libpam-mkhomedir, libpam-motd, libpam-umask"),
    ("mawk", "awk"),
    ("ncurses-base", "ncurses-runtime"),
    ("perl-base", "libfile-path-perl (= 2.18), libfile-temp-perl (= 0.2311), libio-socket-ip-perl (= 0.41), libscalar-list-utils-perl (= 1:1.62), libsocket-perl (= 2.033), libxsloader-perl (= 0.31), perlapi-5.36.0"),
    ("procps", "watch"),
    ("sysvinit-utils", "lsb-base (= 11.1.0)"),
    ("tzdata", "tzdata-bookworm"),
    ("util-linux", "hardlink"),
    ("zlib1g", "libz1"),
];

/// Where the base set came from, for logs and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSource {
    GuestManifest(String),
    MinbaseFallback { reason: String },
}

/// The packages of the guest's base image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// Package name → version (unknown for the fallback list).
    pub packages: BTreeMap<String, Option<String>>,
    /// Virtual or real name → (providing base package, provided version).
    pub provides: BTreeMap<String, Vec<(String, Option<String>)>>,
    pub source: BaseSource,
}

impl BaseImage {
    /// The base set of the guest build in `guest_dir`, or the minbase fallback (with the
    /// reason) when there is none or its manifest is unusable.
    pub fn load(guest_dir: Option<&Path>) -> Self {
        let Some(dir) = guest_dir else {
            return Self::minbase("no guest build configured (WEBVM_GUEST_DIR)".into());
        };
        let path = dir.join("manifest.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) => {
                return Self::minbase(format!("{} is unreadable: {error}", path.display()))
            }
        };
        match Self::from_manifest_json(&text) {
            Some(mut base) => {
                base.source = BaseSource::GuestManifest(path.display().to_string());
                base
            }
            None => Self::minbase(format!("{} has no debianPackages map", path.display())),
        }
    }

    /// The fallback: [`MINBASE_PACKAGES`] with unknown versions.
    pub fn minbase(reason: String) -> Self {
        let packages = MINBASE_PACKAGES
            .iter()
            .map(|name| (name.to_string(), None))
            .collect();
        let mut base = BaseImage {
            packages,
            provides: BTreeMap::new(),
            source: BaseSource::MinbaseFallback { reason },
        };
        base.add_builtin_provides();
        base
    }

    /// Reads `debianPackages` (and `debianProvides`, if present) of a guest manifest.
    pub fn from_manifest_json(text: &str) -> Option<Self> {
        let manifest: serde_json::Value = serde_json::from_str(text).ok()?;
        let packages: BTreeMap<String, Option<String>> = manifest
            .get("debianPackages")?
            .as_object()?
            .iter()
            .map(|(name, version)| (name.clone(), version.as_str().map(str::to_string)))
            .collect();
        if packages.is_empty() {
            return None;
        }
        let mut base = BaseImage {
            packages,
            provides: BTreeMap::new(),
            source: BaseSource::GuestManifest(String::new()),
        };
        match manifest.get("debianProvides").and_then(|v| v.as_object()) {
            Some(provides) => {
                for (name, list) in provides {
                    let text = match list {
                        serde_json::Value::String(text) => text.clone(),
                        serde_json::Value::Array(items) => items
                            .iter()
                            .filter_map(|item| item.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        _ => continue,
                    };
                    base.add_provides(name, &text);
                }
            }
            None => base.add_builtin_provides(),
        }
        Some(base)
    }

    /// True when the base image has `name` (under its own name).
    pub fn has(&self, name: &str) -> bool {
        self.packages.contains_key(name)
    }

    /// True when the base image satisfies `relation` (by name or by a Provides).
    pub fn satisfies(&self, relation: &Relation) -> bool {
        if let Some(version) = self.packages.get(&relation.name) {
            // An unknown base version is trusted: minbase packages are as new as the archive.
            if version.is_none() || relation.accepts(version.as_deref()) {
                return true;
            }
        }
        self.provides.get(&relation.name).is_some_and(|providers| {
            providers
                .iter()
                .any(|(_, provided)| relation.accepts(provided.as_deref()))
        })
    }

    fn add_builtin_provides(&mut self) {
        for (package, provides) in BASE_PROVIDES {
            if self.has(package) {
                self.add_provides(package, provides);
            }
        }
    }

    fn add_provides(&mut self, package: &str, text: &str) {
        let Ok(groups) = parse_relations("Provides", text) else {
            return;
        };
        for relation in groups.into_iter().flatten() {
            let version = relation.version.map(|(_, version)| version);
            self.provides
                .entry(relation.name)
                .or_default()
                .push((package.to_string(), version));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation(text: &str) -> Relation {
        parse_relations("Depends", text).expect("valid")[0][0].clone()
    }

    #[test]
    fn the_manifest_gives_names_versions_and_builtin_provides() {
        let json = r#"{"hash":"x","debianPackages":{"libc6":"2.36-9+deb12u10","mawk":"1.3.4.20200120-3.1","busybox":"1:1.35.0-4+b3"}}"#;
        let base = BaseImage::from_manifest_json(json).expect("manifest");
        let cases = [
            ("libc6 (>= 2.34)", true),
            ("libc6 (>= 2.37)", false),
            ("awk", true),
            ("busybox", true),
            ("perl-base", false),
            ("perlapi-5.36.0", false),
        ];
        for (text, expected) in cases {
            assert_eq!(base.satisfies(&relation(text)), expected, "{text}");
        }
    }

    #[test]
    fn manifest_provides_win_over_the_builtin_table() {
        let json = r#"{"debianPackages":{"mawk":"1"},"debianProvides":{"mawk":["awk (= 9)"]}}"#;
        let base = BaseImage::from_manifest_json(json).expect("manifest");
        assert!(base.satisfies(&relation("awk (>= 9)")));
        assert!(!base.satisfies(&relation("awk (>= 10)")));
    }

    #[test]
    fn the_fallback_is_minbase_with_unknown_versions() {
        let base = BaseImage::load(None);
        assert!(matches!(base.source, BaseSource::MinbaseFallback { .. }));
        assert_eq!(base.packages.len(), MINBASE_PACKAGES.len());
        assert!(base.satisfies(&relation("libc6 (>= 2.36)")));
        assert!(base.satisfies(&relation("perlapi-5.36.0")));
        assert!(base.satisfies(&relation("libgcc1")));
        assert!(!base.satisfies(&relation("libssl3")));
        assert!(!base.has("busybox"));
        let missing = BaseImage::load(Some(Path::new("/nonexistent/guest")));
        assert!(matches!(missing.source, BaseSource::MinbaseFallback { .. }));
        assert!(BaseImage::from_manifest_json("{}").is_none());
        assert!(BaseImage::from_manifest_json("not json").is_none());
    }
}
