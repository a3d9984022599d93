//! The deliberately tampered `tampered-demo` package, for the end-to-end test that the
//! browser refuses a `.deb` whose bytes differ from the catalog's checksum.
//!
//! How it works: [`genuine_deb`] is a real, installable `.deb` built deterministically here
//! (uncompressed members, every timestamp 0), so its SHA-256 is a constant. The catalog pins
//! that value for the root package `tampered-demo` (`sha256 = …` in `catalog/test-fixtures.toml`),
//! and the server advertises the pinned value in `checksums`. `fill-packages` writes
//! [`tampered_deb`] to disk instead: the same archive with bytes of a file *inside the data
//! member* changed. The ar and tar structure stay valid (dpkg itself would install it), the
//! control data is the same (so the server indexes it as usual), only the SHA-256 differs:
//! exactly what a corrupted mirror or a man in the middle would produce. The browser must
//! hash the download, see the mismatch and refuse it before anything touches the VM.

use super::deb::{member_range, DebBuilder};

/// File name of the tampered package in the repository.
pub const TAMPERED_DEMO_FILE: &str = "tampered-demo_1.0_i386.deb";
/// Package name of the tampered package.
pub const TAMPERED_DEMO_PACKAGE: &str = "tampered-demo";

const CONTROL: &str = "Package: tampered-demo
Version: 1.0
Architecture: i386
Maintainer: webvm-appserver <webvm-appserver@localhost>
Installed-Size: 4
Section: misc
Priority: optional
Description: deliberately tampered package for the checksum test
 The catalog pins the SHA-256 of the genuine build of this package. The file
 the server serves has bytes of its data changed, so the browser must refuse it.
";

const GENUINE: &[u8] = b"genuine package contents\n";
const TAMPERED: &[u8] = b"TAMPERED package bytes!!\n";

/// The genuine, installable package (whose SHA-256 the catalog pins).
pub fn genuine_deb() -> Vec<u8> {
    DebBuilder::new(CONTROL)
        .file("usr/share/tampered-demo/message.txt", GENUINE, 0o644)
        .build()
        .unwrap_or_default()
}

/// The genuine package with the message file's bytes replaced inside the data member.
pub fn tampered_deb() -> Vec<u8> {
    let mut deb = genuine_deb();
    let Some(range) = member_range(&deb, "data.tar") else {
        return deb;
    };
    let start = range.start;
    let found = deb[range]
        .windows(GENUINE.len())
        .position(|window| window == GENUINE);
    if let Some(offset) = found {
        let at = start + offset;
        deb[at..at + TAMPERED.len()].copy_from_slice(TAMPERED);
    }
    deb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::packages::deb::read_control_bytes;
    use crate::server::packages::repository::sha256_hex;

    #[test]
    fn the_tampered_package_differs_only_in_its_data() {
        assert_eq!(GENUINE.len(), TAMPERED.len());
        let genuine = genuine_deb();
        let tampered = tampered_deb();
        assert_eq!(genuine.len(), tampered.len());
        assert_ne!(sha256_hex(&genuine), sha256_hex(&tampered));
        let differing = genuine
            .iter()
            .zip(&tampered)
            .filter(|(a, b)| a != b)
            .count();
        assert!(differing > 0 && differing <= TAMPERED.len());
        let (control, _) = read_control_bytes(&tampered).expect("still a readable package");
        assert_eq!(control.package, TAMPERED_DEMO_PACKAGE);
        assert_eq!(
            TAMPERED_DEMO_FILE,
            format!(
                "{}_{}_{}.deb",
                control.package, control.version, control.architecture
            )
        );
    }

    #[test]
    fn the_catalog_pins_the_genuine_checksum() {
        let catalog = super::super::catalog::TEST_FIXTURE_CATALOG;
        let genuine = sha256_hex(&genuine_deb());
        assert!(
            catalog.contains(&genuine),
            "catalog/test-fixtures.toml must pin sha256 = \"{genuine}\" for tampered-demo"
        );
        assert!(!catalog.contains(&sha256_hex(&tampered_deb())));
    }
}
