//! A directory tree's file-system manifest, as `find -xdev` would list it with each regular
//! file's SHA-256: what two builds of a layer, and the dpkg and layer paths, are compared by
//! (`domain::runtime_layer::manifest_differences`).

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::domain::runtime_layer::ManifestEntry;

/// The manifest of everything under `root` on `root`'s file system, keyed by absolute path
/// as seen from `root` (`/usr/bin/python3`). `hash` decides which regular files are hashed
/// (the others get `None`).
pub fn manifest(
    root: &Path,
    hash: &dyn Fn(&str) -> bool,
) -> std::io::Result<BTreeMap<String, ManifestEntry>> {
    let device = std::fs::symlink_metadata(root)?.dev();
    let mut entries = BTreeMap::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        for item in std::fs::read_dir(&dir)? {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            let path = format!("{prefix}/{name}");
            let meta = item.metadata()?;
            let kind = kind_of(&meta.file_type());
            let mut entry = ManifestEntry {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                size: if kind == 'f' { meta.len() } else { 0 },
                link: None,
                sha256: None,
            };
            match kind {
                'l' => {
                    entry.link = Some(
                        std::fs::read_link(item.path())?
                            .to_string_lossy()
                            .into_owned(),
                    )
                }
                'f' if hash(&path) => entry.sha256 = Some(super::file_sha256(&item.path())?),
                'd' if meta.dev() == device => pending.push((item.path(), path.clone())),
                _ => {}
            }
            entries.insert(path, entry);
        }
    }
    Ok(entries)
}

/// `find -printf %y`'s letter for a file type.
pub fn kind_of(file_type: &std::fs::FileType) -> char {
    if file_type.is_symlink() {
        'l'
    } else if file_type.is_dir() {
        'd'
    } else if file_type.is_file() {
        'f'
    } else if file_type.is_char_device() {
        'c'
    } else if file_type.is_block_device() {
        'b'
    } else if file_type.is_fifo() {
        'p'
    } else {
        's'
    }
}
