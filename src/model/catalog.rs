//! The runtime catalog as the server sends it to the browser: the seed's `RuntimePackage`
//! with what the server resolved for it (install steps, file sizes, warnings, why it is
//! unavailable, its prebuilt layer) and where its `.deb` files and layers are served.

use serde::{Deserialize, Serialize};

use super::{RuntimePackage, Sha256};

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
    /// The runtime's prebuilt layer, when the server has one for exactly these `.deb`s and
    /// this guest image: the browser installs it instead of running dpkg in the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<RuntimeLayer>,
}

/// A runtime layer: the files a dpkg install of the runtime adds to the guest, built once on
/// the server (`webvm-appserver build-layers`) and pinned here by SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeLayer {
    /// File name under `layersBaseUrl` (a gzipped tar).
    pub file: String,
    /// SHA-256 of that file: the browser refuses any other bytes.
    pub sha256: Sha256,
    /// Its size in bytes.
    pub size: u64,
    /// The Debian packages it adds; none may be known to the guest's dpkg beforehand.
    pub packages: Vec<String>,
    /// Files that existed before the install and that it replaces, each with the SHA-256 it
    /// must have first.
    #[serde(default)]
    pub modifies: Vec<ModifiedFile>,
    /// Absolute paths the install deletes.
    #[serde(default)]
    pub removes: Vec<String>,
    /// Commands of the triggers dpkg ran for packages outside the layer (`ldconfig`).
    #[serde(default)]
    pub triggers: Vec<String>,
}

/// A pre-existing file a layer replaces, and the SHA-256 it must have before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModifiedFile {
    pub path: String,
    pub sha256: Sha256,
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
    /// Prefix of the layer URLs: `layersBaseUrl + layer.file`.
    #[serde(default)]
    pub layers_base_url: String,
}
