//! The runtime catalog as the server sends it to the browser: the seed's `RuntimePackage`
//! with what the server resolved for it (install steps, file sizes, warnings, why it is
//! unavailable) and where its `.deb` files are served.

use serde::{Deserialize, Serialize};

use super::RuntimePackage;

/// What the server adds to a catalog entry besides the seed's `RuntimePackage` fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogDetails {
    /// The `dpkg -i` calls that install `debPackages`, in order: each a list of file names
    /// to pass to one call (a package never shares a call with its Pre-Depends; the members
    /// of a dependency cycle always do).
    #[serde(default)]
    pub install_steps: Vec<Vec<String>>,
    /// Size in bytes of each file in `debPackages`.
    #[serde(default)]
    pub file_sizes: std::collections::BTreeMap<String, u64>,
    /// Notes for the operator (e.g. a file that does not match its pinned checksum).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A catalog entry as `package_catalog` returns it: the seed's `RuntimePackage` JSON
/// (flattened, unchanged) plus `catalogError` (why the status is `error`), `installSteps`
/// and `warnings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageCatalogEntry {
    #[serde(flatten)]
    pub package: RuntimePackage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_error: Option<String>,
    #[serde(flatten)]
    pub details: CatalogDetails,
}

/// The runtime catalog with everything the browser needs to install from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeCatalog {
    pub entries: Vec<PackageCatalogEntry>,
    /// Prefix of the `.deb` URLs: `filesBaseUrl + debPackages[i]` (served with Range and
    /// `ETag: "<sha256>"`; the browser must still hash the bytes against `checksums`).
    pub files_base_url: String,
}
