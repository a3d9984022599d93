//! The guest image's manifest: what `guest/build.sh` writes as `manifest.json`, the server
//! checks and serves at `/guest/manifest.json` (adding `bootSnapshot` when it has one), and
//! the page boots from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Sha256;

/// The files a v86 boot needs, by manifest name.
pub const BOOT_FILES: [&str; 5] = [
    "seabios.bin",
    "vgabios.bin",
    "vmlinuz",
    "initrd.img",
    "rootfs.ext4",
];

/// One file of the guest build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestFile {
    /// Bytes.
    pub size: u64,
    pub sha256: Sha256,
}

/// The manifest of a guest build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestManifest {
    /// Content hash of the build; part of every file URL.
    pub hash: String,
    /// The kernel command line.
    pub kernel_cmdline: String,
    /// The files, by name.
    pub files: BTreeMap<String, GuestFile>,
    /// Printed on the console once the agent runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_marker: Option<String>,
    /// The server's boot snapshot of this image, unparsed: a malformed entry must not keep
    /// the VM from cold-booting (the page reads it with `GuestManifest::boot_snapshot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_snapshot: Option<serde_json::Value>,
    /// Everything else the build recorded, passed through untouched.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl GuestManifest {
    /// Parses and checks the manifest as the page needs it: every boot file must be listed
    /// with a size, and the hash must be URL-safe.
    pub fn parse(text: &str) -> Result<Self, String> {
        let manifest: GuestManifest = serde_json::from_str(text)
            .map_err(|error| format!("the guest manifest is not valid: {error}"))?;
        let url_safe = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !url_safe(&manifest.hash) {
            return Err("the guest manifest has no usable hash".into());
        }
        for name in BOOT_FILES {
            match manifest.files.get(name) {
                Some(file) if file.size > 0 => {}
                _ => return Err(format!("the guest image lacks {name}")),
            }
        }
        Ok(manifest)
    }

    /// The URL of one of its files.
    pub fn file_url(&self, name: &str) -> String {
        format!("/guest/{}/{}", self.hash, name)
    }

    /// Size of one of its files (0 if unlisted).
    pub fn size(&self, name: &str) -> u64 {
        self.files.get(name).map_or(0, |file| file.size)
    }
}

/// A valid manifest for tests, as JSON (every boot file, made-up sizes and digests).
#[cfg(test)]
pub(crate) fn manifest_json() -> serde_json::Value {
    use serde_json::json;
    let files: serde_json::Map<String, serde_json::Value> = BOOT_FILES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            (
                name.to_string(),
                json!({ "size": 1000 * (i as u64 + 1), "sha256": "ab".repeat(32) }),
            )
        })
        .collect();
    json!({
        "hash": "952a27d6f5f64305",
        "kernelCmdline": "console=ttyS0 quiet",
        "files": files,
        "readyMarker": "webvm-ready",
        "builtAt": "2026-01-01T00:00:00Z"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn manifest_parses_and_checks() {
        let manifest = GuestManifest::parse(&manifest_json().to_string()).unwrap();
        assert_eq!(
            manifest.file_url("vmlinuz"),
            "/guest/952a27d6f5f64305/vmlinuz"
        );
        assert_eq!(manifest.size("rootfs.ext4"), 5000);
        assert_eq!(manifest.size("nothing"), 0);
        assert_eq!(manifest.ready_marker.as_deref(), Some("webvm-ready"));
        let mut bad_sha = manifest_json();
        bad_sha["files"]["vmlinuz"]["sha256"] = json!("ab");
        let cases = [
            ("not json".to_string(), "not valid"),
            (
                r#"{"hash":"../x","kernelCmdline":"","files":{}}"#.to_string(),
                "hash",
            ),
            (
                r#"{"hash":"abc","kernelCmdline":"","files":{}}"#.to_string(),
                "lacks seabios.bin",
            ),
            (bad_sha.to_string(), "SHA-256"),
        ];
        for (text, problem) in cases {
            let error = GuestManifest::parse(&text).unwrap_err();
            assert!(error.contains(problem), "{text}: {error}");
        }
    }

    #[test]
    fn unknown_fields_pass_through() {
        let manifest = GuestManifest::parse(&manifest_json().to_string()).unwrap();
        assert_eq!(manifest.extra["builtAt"], json!("2026-01-01T00:00:00Z"));
        let served = serde_json::to_value(&manifest).unwrap();
        assert_eq!(served, manifest_json());
    }
}
