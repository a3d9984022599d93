//! A legacy app-hosting export with its files, for the seed's `AppHostingMigration`: one ZIP
//! holding the format 1 backup as [`LEGACY_INDEX`] (each app's `files` as `FileRef`s) and
//! each app's files under `apps/<legacy name>/<path>`.
//!
//! Discovery matches every `FileRef` to its entry by path, size and SHA-256 before anything
//! is migrated: a missing or different file is a problem named by the app's index, its name
//! and the field (`files[2]`); entries no app lists are warnings. The migrated apps
//! themselves come from [`super::migrate_app`], so a preview and the import agree.

use std::collections::{BTreeMap, BTreeSet};

use super::{BackupV1, Finding, Place};

/// The entry of the export that holds the format 1 backup.
pub const LEGACY_INDEX: &str = "legacy-export.json";
/// The folder of the export that holds each app's files, by the app's legacy name.
pub const LEGACY_FILES_DIR: &str = "apps";

/// What the export says about one of its entries (a regular file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFacts {
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// One file of a legacy app: where it goes in the release, and the entry it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyFileSource {
    /// Path in the release (the `FileRef`'s path).
    pub path: String,
    /// Name of the export's entry.
    pub entry: String,
}

/// The files of each legacy app (by its index in `apps`), and what the export holds beyond.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegacyFiles {
    pub by_app: Vec<Vec<LegacyFileSource>>,
    pub warnings: Vec<Finding>,
}

/// The entry name of `path` of the legacy app `name`.
pub fn legacy_entry(name: &str, path: &str) -> String {
    format!("{LEGACY_FILES_DIR}/{name}/{path}")
}

/// Matches every app's `FileRef`s to the export's entries (see the module docs). Every
/// problem is returned, not only the first.
pub fn match_legacy_files(
    legacy: &BackupV1,
    entries: &BTreeMap<String, EntryFacts>,
) -> Result<LegacyFiles, Vec<Finding>> {
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    let mut by_app = Vec::new();
    for (index, app) in legacy.apps.iter().enumerate() {
        let place = || Place::Application {
            index,
            name: Some(app.name.clone()),
        };
        let mut files = Vec::new();
        for (position, file) in app.files.iter().enumerate() {
            let field = format!("files[{position}]");
            let entry = legacy_entry(&app.name, &file.path);
            let Some(facts) = entries.get(&entry) else {
                problems.push(Finding::new(
                    place(),
                    field,
                    format!(
                        "'{}' is not in the export (expected the entry '{entry}')",
                        file.path
                    ),
                ));
                continue;
            };
            used.insert(entry.clone());
            if facts.size != file.size {
                problems.push(Finding::new(
                    place(),
                    field,
                    format!(
                        "'{}' has {} bytes in the export, but the record says {}",
                        file.path, facts.size, file.size
                    ),
                ));
            } else if !facts.sha256.eq_ignore_ascii_case(&file.sha256) {
                problems.push(Finding::new(
                    place(),
                    field,
                    format!(
                        "'{}' does not match its SHA-256: the record says {}, the export holds {}",
                        file.path, file.sha256, facts.sha256
                    ),
                ));
            } else {
                files.push(LegacyFileSource {
                    path: file.path.clone(),
                    entry,
                });
            }
        }
        by_app.push(files);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let warnings = entries
        .keys()
        .filter(|name| name.as_str() != LEGACY_INDEX && !used.contains(*name))
        .map(|name| {
            Finding::new(
                Place::Backup,
                "",
                format!("'{name}' is in the export, but no app lists it: it is left out"),
            )
        })
        .collect();
    Ok(LegacyFiles { by_app, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::now;
    use crate::model::{FileRef, LegacyApp};

    const HASH_A: &str = "aa00000000000000000000000000000000000000000000000000000000000000";
    const HASH_B: &str = "bb00000000000000000000000000000000000000000000000000000000000000";

    fn app(name: &str, files: &[(&str, u64, &str)]) -> LegacyApp {
        LegacyApp {
            name: name.into(),
            files: files
                .iter()
                .map(|(path, size, sha256)| FileRef {
                    path: (*path).into(),
                    size: *size,
                    sha256: (*sha256).into(),
                    blob_id: uuid::Uuid::nil(),
                })
                .collect(),
            deployed_at: now(),
            last_updated: now(),
        }
    }

    fn export(entries: &[(&str, u64, &str)]) -> BTreeMap<String, EntryFacts> {
        entries
            .iter()
            .map(|(name, size, sha256)| {
                (
                    (*name).to_owned(),
                    EntryFacts {
                        size: *size,
                        sha256: (*sha256).into(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn every_file_is_matched_by_path_size_and_sha256_or_named() {
        let legacy = BackupV1 {
            version: "1".into(),
            timestamp: now(),
            apps: vec![
                app(
                    "My Blog",
                    &[("index.html", 10, HASH_A), ("css/a.css", 5, HASH_B)],
                ),
                app("shop", &[("index.html", 10, HASH_A)]),
            ],
        };
        let complete = export(&[
            (LEGACY_INDEX, 300, HASH_B),
            ("apps/My Blog/index.html", 10, HASH_A),
            ("apps/My Blog/css/a.css", 5, HASH_B),
            ("apps/shop/index.html", 10, &HASH_A.to_uppercase()),
            ("apps/shop/notes.txt", 3, HASH_B),
        ]);
        let matched = match_legacy_files(&legacy, &complete).expect("all match");
        assert_eq!(matched.by_app[0].len(), 2);
        assert_eq!(
            matched.by_app[0][1],
            LegacyFileSource {
                path: "css/a.css".into(),
                entry: "apps/My Blog/css/a.css".into()
            }
        );
        assert_eq!(matched.by_app[1].len(), 1);
        assert_eq!(matched.warnings.len(), 1, "{:?}", matched.warnings);
        assert!(matched.warnings[0].message.contains("apps/shop/notes.txt"));

        type Case<'a> = (&'a [(&'a str, u64, &'a str)], &'a [(&'a str, &'a str)]);
        let cases: [Case; 3] = [
            (
                &[("apps/shop/index.html", 10, HASH_A)],
                &[
                    ("applications[0] 'My Blog' files[0]", "is not in the export"),
                    ("applications[0] 'My Blog' files[1]", "is not in the export"),
                ],
            ),
            (
                &[
                    ("apps/My Blog/index.html", 11, HASH_A),
                    ("apps/My Blog/css/a.css", 5, HASH_A),
                    ("apps/shop/index.html", 10, HASH_A),
                ],
                &[
                    (
                        "applications[0] 'My Blog' files[0]",
                        "has 11 bytes in the export",
                    ),
                    (
                        "applications[0] 'My Blog' files[1]",
                        "does not match its SHA-256",
                    ),
                ],
            ),
            (
                &[
                    ("apps/My Blog/index.html", 10, HASH_A),
                    ("apps/My Blog/css/a.css", 5, HASH_B),
                ],
                &[("applications[1] 'shop' files[0]", "is not in the export")],
            ),
        ];
        for (entries, expected) in cases {
            let problems = match_legacy_files(&legacy, &export(entries)).expect_err("refused");
            let found: Vec<(String, String)> = problems
                .iter()
                .map(|finding| {
                    (
                        format!("{} {}", finding.place, finding.field),
                        finding.message.clone(),
                    )
                })
                .collect();
            assert_eq!(found.len(), expected.len(), "{found:?}");
            for ((place, message), (want_place, want_message)) in found.iter().zip(expected) {
                assert_eq!(place, want_place);
                assert!(message.contains(want_message), "{message}");
            }
        }
    }
}
