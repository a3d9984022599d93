//! The guest image as the page sees it: the manifest served at `/guest/manifest.json` (with
//! the server's boot snapshot, when one was built), the v86 options built from it, download
//! progress, and which saved snapshots still fit.
//!
//! Pure functions only, so they are tested natively.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::EngineKind;
pub use crate::model::guest_image::GuestManifest;
use crate::model::Sha256;

/// The v86 build the page loads (`package.json` pins npm `v86` to it). Snapshots only fit
/// the build that made them.
pub const V86_VERSION: &str = "0.5.462";

/// Version of the snapshot record layout in IndexedDB.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

/// Where the manifest is served.
pub const MANIFEST_URL: &str = "/guest/manifest.json";

/// Where the v86 files are served.
pub const V86_VENDOR_BASE: &str = "/vendor/v86";

/// The server's boot snapshot as the manifest lists it: a v86 state saved once right after a
/// cold boot of the image (`scripts/build-boot-snapshot.mjs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootSnapshotEntry {
    /// Where to download it (same origin, under `/guest/`).
    pub url: String,
    /// The snapshot's record (`size` is the unpacked state's), checked with
    /// [`snapshot_mismatch`] like a hibernation snapshot's.
    #[serde(flatten)]
    pub meta: SnapshotMeta,
    /// SHA-256 of the unpacked state.
    pub sha256: Sha256,
    /// Bytes on the wire (gzip).
    #[serde(default)]
    pub encoded_size: u64,
}

/// What the page does with the server's boot snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootSnapshotChoice {
    /// The server has none for this image.
    None,
    /// There is one, but it can't be restored here: why.
    Unfit(String),
    /// Restore it.
    Fits(BootSnapshotEntry),
}

// The page's reading of the manifest type that `model::guest_image` defines.
impl GuestManifest {
    /// Whether the server's boot snapshot can be restored into a machine with `settings`
    /// (same checks as a hibernation snapshot, plus a same-origin URL and a SHA-256).
    pub fn boot_snapshot(&self, settings: &V86Settings) -> BootSnapshotChoice {
        let Some(value) = &self.boot_snapshot else {
            return BootSnapshotChoice::None;
        };
        let entry: BootSnapshotEntry = match serde_json::from_value(value.clone()) {
            Ok(entry) => entry,
            Err(error) => {
                return BootSnapshotChoice::Unfit(format!(
                    "its manifest entry is not valid: {error}"
                ))
            }
        };
        if !entry.url.starts_with("/guest/") || entry.url.contains("..") {
            return BootSnapshotChoice::Unfit(format!(
                "its URL {} is not on this server",
                entry.url
            ));
        }
        match snapshot_mismatch(&entry.meta, &self.hash, settings) {
            Some(reason) => BootSnapshotChoice::Unfit(reason),
            None => BootSnapshotChoice::Fits(entry),
        }
    }
}

/// Emulator settings that are not part of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V86Settings {
    /// Guest RAM in MiB.
    pub memory_mb: u32,
    /// Disk read granularity (v86 `fixed_chunk_size`) in KiB.
    pub chunk_kib: u32,
}

impl Default for V86Settings {
    fn default() -> Self {
        V86Settings {
            memory_mb: crate::model::VM_MEMORY_MB,
            chunk_kib: 256,
        }
    }
}

/// The `new V86(options)` object for this image, as JSON (the bridge adds `initial_state`
/// when restoring). Same options for cold boots and restores: a snapshot only fits the
/// options it was made with.
pub fn v86_options(manifest: &GuestManifest, settings: &V86Settings) -> serde_json::Value {
    let file = |name: &str| json!({ "url": manifest.file_url(name), "size": manifest.size(name) });
    json!({
        "wasm_path": format!("{V86_VENDOR_BASE}/v86.wasm"),
        "memory_size": u64::from(settings.memory_mb) * 1024 * 1024,
        "vga_memory_size": 2 * 1024 * 1024,
        "bios": file("seabios.bin"),
        "vga_bios": file("vgabios.bin"),
        "bzimage": file("vmlinuz"),
        "initrd": file("initrd.img"),
        "cmdline": manifest.kernel_cmdline,
        "hda": {
            "url": manifest.file_url("rootfs.ext4"),
            "async": true,
            "size": manifest.size("rootfs.ext4"),
            "fixed_chunk_size": u64::from(settings.chunk_kib) * 1024,
        },
        "filesystem": {},
        "uart1": true,
        "net_device": { "type": "virtio", "relay_url": "fetch" },
        "preserve_mac_from_state_image": true,
        "autostart": true,
        "disable_keyboard": true,
        "disable_mouse": true,
        "disable_speaker": true,
    })
}

/// Download progress over the files v86 fetches before it starts (the wasm and the four
/// boot files; the disk is read on demand and is not counted).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadProgress {
    expected: BTreeMap<String, u64>,
    loaded: BTreeMap<String, u64>,
}

/// What the emulator's wasm weighs when the server does not say (v86 0.5.462: 2.1 MB).
const WASM_ESTIMATE: u64 = 2_100_000;

impl LoadProgress {
    /// Expects the boot files of `manifest` and the emulator's wasm.
    pub fn new(manifest: &GuestManifest) -> Self {
        let mut expected: BTreeMap<String, u64> =
            ["seabios.bin", "vgabios.bin", "vmlinuz", "initrd.img"]
                .into_iter()
                .map(|name| (name.to_string(), manifest.size(name)))
                .collect();
        expected.insert("v86.wasm".into(), WASM_ESTIMATE);
        LoadProgress {
            expected,
            loaded: BTreeMap::new(),
        }
    }

    /// Records a `download-progress` event (`file_name` may be a URL) and returns the
    /// percentage, 0–99 (100 is for when the emulator says it is ready).
    pub fn update(&mut self, file_name: &str, loaded: u64, total: u64) -> u8 {
        let name = file_name
            .rsplit('/')
            .next()
            .unwrap_or(file_name)
            .split('?')
            .next()
            .unwrap_or_default();
        if let Some(expected) = self.expected.get_mut(name) {
            if total > 0 {
                *expected = total;
            }
            self.loaded.insert(name.to_string(), loaded);
        }
        self.percent()
    }

    /// Share of the expected bytes loaded so far, 0–99.
    pub fn percent(&self) -> u8 {
        let total: u64 = self.expected.values().sum();
        if total == 0 {
            return 0;
        }
        let done: u64 = self
            .expected
            .iter()
            .map(|(name, size)| self.loaded.get(name).copied().unwrap_or(0).min(*size))
            .sum();
        ((done * 100 / total).min(99)) as u8
    }
}

/// The metadata stored next to a hibernation snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotMeta {
    /// [`SNAPSHOT_SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// Engine that made it (`v86`).
    pub engine: EngineKind,
    /// The guest image it was made from.
    pub image_hash: String,
    /// The emulator build it was made with.
    pub v86_version: String,
    /// Guest RAM in MiB (part of the machine's options).
    pub memory_mb: u32,
    /// When it was saved.
    pub saved_at: DateTime<Utc>,
    /// Bytes.
    pub size: u64,
    /// The guest agent that ran in it (the restored agent must answer with it).
    #[serde(default)]
    pub agent_instance: Option<String>,
}

/// Why a stored snapshot can't be restored into this page's machine, or `None` if it fits.
pub fn snapshot_mismatch(
    meta: &SnapshotMeta,
    image_hash: &str,
    settings: &V86Settings,
) -> Option<String> {
    if meta.schema_version != SNAPSHOT_SCHEMA_VERSION {
        return Some(format!(
            "snapshot record version {} is not {SNAPSHOT_SCHEMA_VERSION}",
            meta.schema_version
        ));
    }
    if meta.engine != EngineKind::V86 {
        return Some(format!("snapshot was made by {}, not v86", meta.engine));
    }
    if meta.image_hash != image_hash {
        return Some(format!(
            "snapshot is of guest image {}, the server now has {image_hash}",
            meta.image_hash
        ));
    }
    if meta.v86_version != V86_VERSION {
        return Some(format!(
            "snapshot was made with v86 {}, this page runs {V86_VERSION}",
            meta.v86_version
        ));
    }
    if meta.memory_mb != settings.memory_mb {
        return Some(format!(
            "snapshot has {} MiB of RAM, this machine {}",
            meta.memory_mb, settings.memory_mb
        ));
    }
    if meta.size == 0 {
        return Some("snapshot is empty".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_json() -> String {
        crate::model::guest_image::manifest_json().to_string()
    }

    fn with_boot_snapshot(entry: serde_json::Value) -> GuestManifest {
        let mut manifest: serde_json::Value = serde_json::from_str(&manifest_json()).unwrap();
        manifest["bootSnapshot"] = entry;
        GuestManifest::parse(&manifest.to_string()).unwrap()
    }

    fn boot_snapshot_entry() -> serde_json::Value {
        json!({
            "url": "/guest/952a27d6f5f64305/boot-snapshot-v86-0.5.462-256m.bin.gz?sha256=ab",
            "schemaVersion": SNAPSHOT_SCHEMA_VERSION,
            "engine": "v86",
            "imageHash": "952a27d6f5f64305",
            "v86Version": V86_VERSION,
            "memoryMb": 256,
            "savedAt": "2026-01-01T00:00:00Z",
            "size": 58_000_000u64,
            "sha256": "ab".repeat(32),
            "encodedSize": 22_000_000u64,
            "agentInstance": "a1",
            "file": "boot-snapshot-v86-0.5.462-256m.bin.gz",
            "encoding": "gzip"
        })
    }

    #[test]
    fn the_boot_snapshot_is_used_only_when_it_fits() {
        let settings = V86Settings::default();
        let plain = GuestManifest::parse(&manifest_json()).unwrap();
        assert_eq!(plain.boot_snapshot(&settings), BootSnapshotChoice::None);

        let fits = with_boot_snapshot(boot_snapshot_entry()).boot_snapshot(&settings);
        let BootSnapshotChoice::Fits(entry) = fits else {
            panic!("{fits:?}")
        };
        assert_eq!(entry.meta.size, 58_000_000);
        assert_eq!(entry.meta.agent_instance.as_deref(), Some("a1"));

        let changed = |field: &str, value: serde_json::Value| {
            let mut entry = boot_snapshot_entry();
            entry[field] = value;
            with_boot_snapshot(entry).boot_snapshot(&settings)
        };
        let cases = [
            ("imageHash", json!("0000"), "guest image 0000"),
            ("v86Version", json!("0.5.1"), "v86 0.5.1"),
            ("memoryMb", json!(512), "512 MiB"),
            (
                "url",
                json!("https://elsewhere.example/x"),
                "not on this server",
            ),
            ("url", json!("/guest/../etc"), "not on this server"),
            ("sha256", json!("nope"), "SHA-256"),
            ("size", json!("big"), "not valid"),
        ];
        for (field, value, reason) in cases {
            match changed(field, value) {
                BootSnapshotChoice::Unfit(got) => assert!(got.contains(reason), "{field}: {got}"),
                other => panic!("{field}: {other:?}"),
            }
        }
        // A malformed entry never breaks the manifest itself.
        let broken = with_boot_snapshot(json!("not an object"));
        assert!(matches!(
            broken.boot_snapshot(&settings),
            BootSnapshotChoice::Unfit(_)
        ));
    }

    #[test]
    fn options_follow_the_measured_configuration() {
        let manifest = GuestManifest::parse(&manifest_json()).unwrap();
        let options = v86_options(&manifest, &V86Settings::default());
        assert_eq!(options["memory_size"], 256 * 1024 * 1024);
        assert_eq!(options["hda"]["async"], true);
        assert_eq!(options["hda"]["size"], 5000);
        assert_eq!(options["hda"]["fixed_chunk_size"], 256 * 1024);
        assert_eq!(options["bzimage"]["url"], "/guest/952a27d6f5f64305/vmlinuz");
        assert_eq!(options["uart1"], true);
        assert_eq!(options["net_device"]["relay_url"], "fetch");
        assert_eq!(options["preserve_mac_from_state_image"], true);
        assert_eq!(options["cmdline"], "console=ttyS0 quiet");
        assert_eq!(options["wasm_path"], "/vendor/v86/v86.wasm");
    }

    #[test]
    fn progress_counts_boot_files_and_wasm() {
        let manifest = GuestManifest::parse(&manifest_json()).unwrap();
        let mut progress = LoadProgress::new(&manifest);
        assert_eq!(progress.percent(), 0);
        // Boot files: 1000 + 2000 + 3000 + 4000; the wasm reports its real size.
        assert_eq!(progress.update("/vendor/v86/v86.wasm", 0, 10_000), 0);
        assert_eq!(progress.update("v86.wasm", 10_000, 10_000), 50);
        assert_eq!(
            progress.update("/guest/952a27d6f5f64305/initrd.img", 4000, 0),
            70
        );
        // Unknown files (disk chunks) don't count; overshoot is clamped; never 100.
        assert_eq!(progress.update("/guest/x/rootfs.ext4", 99, 99), 70);
        for name in ["seabios.bin", "vgabios.bin", "vmlinuz"] {
            progress.update(name, 1_000_000, 0);
        }
        assert_eq!(progress.percent(), 99);
    }

    fn meta() -> SnapshotMeta {
        SnapshotMeta {
            schema_version: SNAPSHOT_SCHEMA_VERSION,
            engine: EngineKind::V86,
            image_hash: "abc".into(),
            v86_version: V86_VERSION.into(),
            memory_mb: 256,
            saved_at: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap(),
            size: 10,
            agent_instance: Some("i".into()),
        }
    }

    #[test]
    fn snapshots_must_fit_image_build_and_options() {
        let settings = V86Settings::default();
        assert_eq!(snapshot_mismatch(&meta(), "abc", &settings), None);
        let cases: Vec<(SnapshotMeta, &str)> = vec![
            (
                SnapshotMeta {
                    image_hash: "old".into(),
                    ..meta()
                },
                "guest image old",
            ),
            (
                SnapshotMeta {
                    v86_version: "0.5.1".into(),
                    ..meta()
                },
                "v86 0.5.1",
            ),
            (
                SnapshotMeta {
                    memory_mb: 512,
                    ..meta()
                },
                "512 MiB",
            ),
            (
                SnapshotMeta {
                    schema_version: 9,
                    ..meta()
                },
                "version 9",
            ),
            (
                SnapshotMeta {
                    engine: EngineKind::Cheerpx,
                    ..meta()
                },
                "cheerpx",
            ),
            (SnapshotMeta { size: 0, ..meta() }, "empty"),
        ];
        for (meta, reason) in cases {
            let got = snapshot_mismatch(&meta, "abc", &settings).unwrap();
            assert!(got.contains(reason), "{got}");
        }
        // The record is camelCase JSON.
        let text = serde_json::to_string(&meta()).unwrap();
        assert!(text.contains("\"imageHash\":\"abc\"") && text.contains("\"schemaVersion\":1"));
        let back: SnapshotMeta = serde_json::from_str(&text).unwrap();
        assert_eq!(back, meta());
    }
}
