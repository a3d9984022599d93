//! The entry rules of a deploy's files (an uploaded ZIP or tarball, a fetched archive, loose
//! files): every entry is checked before anything reaches the VM, and either the whole set
//! is accepted as a normalized [`Layout`] or every problem is reported, each naming its
//! entry.
//!
//! Paths become relative and `/`-separated, `.` segments and repeated slashes disappear, and
//! `a/../b` is `b`. Refused: `..` that escapes the app's folder (zip-slip), absolute paths
//! (`/x`, `C:\x`, `\\server\x`), backslashes, NUL and control characters, names that are not
//! UTF-8, symlinks whose target resolves outside the release (absolute targets count as
//! outside; links are followed through the archive's own links), entries beneath a file or
//! a symlink, hard links, devices, FIFOs and sockets, the same path twice (folders merge),
//! an archive with no file, and more bytes or entries than [`DeployLimits`] allow. When every
//! entry lies under one top-level folder (as GitHub archives do), that folder is stripped.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::DeployLimits;

/// Most problems listed in the message of [`ArchiveRejected`] (all are kept in it).
const MESSAGE_PROBLEMS: usize = 20;
/// Most symlinks followed while resolving one target.
const MAX_LINK_HOPS: usize = 40;

/// What an entry is, as the archive or the source says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink {
        target: String,
    },
    HardLink,
    /// A character or block device.
    Device,
    Fifo,
    Socket,
    /// Anything else the archive can hold (sparse files, encrypted entries …), described.
    Other(String),
}

/// One entry as given, before any check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The path as the archive or source spells it.
    pub path: String,
    pub kind: EntryKind,
    /// Bytes (files only; the rest count 0).
    pub size: u64,
    /// The executable bit.
    pub executable: bool,
}

impl RawEntry {
    /// A regular file.
    pub fn file(path: impl Into<String>, size: u64, executable: bool) -> Self {
        RawEntry {
            path: path.into(),
            kind: EntryKind::File,
            size,
            executable,
        }
    }

    /// A folder.
    pub fn directory(path: impl Into<String>) -> Self {
        RawEntry {
            path: path.into(),
            kind: EntryKind::Directory,
            size: 0,
            executable: false,
        }
    }

    /// A symbolic link to `target`.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Self {
        RawEntry {
            path: path.into(),
            kind: EntryKind::Symlink {
                target: target.into(),
            },
            size: 0,
            executable: false,
        }
    }
}

/// What an accepted entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedKind {
    File { size: u64, executable: bool },
    Directory,
    Symlink { target: String },
}

/// One accepted entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedEntry {
    /// Relative, `/`-separated, normalized, the top-level folder stripped.
    pub path: String,
    pub kind: CheckedKind,
    /// Its position in the input, to find its bytes.
    pub source: usize,
}

/// The accepted set of entries, in input order (duplicate folders merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub entries: Vec<CheckedEntry>,
    /// The single top-level folder that was stripped, if there was one.
    pub stripped_folder: Option<String>,
    /// Regular files.
    pub file_count: u32,
    /// Bytes of the regular files.
    pub total_bytes: u64,
}

/// One broken rule, naming the entry (or the figures).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveProblem {
    #[error("entry '{entry}' escapes the app's folder (zip-slip)")]
    ZipSlip { entry: String },
    #[error("entry '{entry}' is an absolute path; only paths inside the app's folder are allowed")]
    Absolute { entry: String },
    #[error("entry '{entry}' contains a backslash; paths must use '/'")]
    Backslash { entry: String },
    #[error("entry '{entry}' contains a NUL or control character")]
    ControlCharacter { entry: String },
    #[error("entry '{entry}' has a name that is not valid UTF-8")]
    NotUtf8 { entry: String },
    #[error("entry '{entry}' has no name")]
    NoName { entry: String },
    #[error("entry '{entry}' is a symlink to '{target}', which is outside the app's folder")]
    SymlinkOutside { entry: String, target: String },
    #[error("entry '{entry}' is a symlink with an unusable target '{target}'")]
    BadSymlinkTarget { entry: String, target: String },
    #[error("entry '{entry}' is a {what}; only files, folders and symlinks can be deployed")]
    Unsupported { entry: String, what: String },
    #[error("entry '{entry}' appears more than once")]
    Duplicate { entry: String },
    #[error("entry '{entry}' is inside '{parent}', which is a {what}, not a folder")]
    UnderNonFolder {
        entry: String,
        parent: String,
        what: &'static str,
    },
    #[error("the files hold {} bytes{}, more than the limit of {max} bytes", .total, if *.at_least { " or more" } else { "" })]
    TooLarge {
        total: u64,
        max: u64,
        at_least: bool,
    },
    #[error(
        "the files hold {count} entries (files, folders and links), more than the limit of {max}"
    )]
    TooManyEntries { count: u64, max: u32 },
    #[error("there is no file to deploy (the archive or selection is empty)")]
    Empty,
}

/// The entries were refused: every problem found, in input order, then the limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ArchiveRejected {
    pub problems: Vec<ArchiveProblem>,
}

impl fmt::Display for ArchiveRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().take(MESSAGE_PROBLEMS).enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        if self.problems.len() > MESSAGE_PROBLEMS {
            write!(
                f,
                "; and {} more problems",
                self.problems.len() - MESSAGE_PROBLEMS
            )?;
        }
        f.write_str("; nothing was deployed")
    }
}

/// How the input said the read went, for limits found while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadState {
    /// Reading stopped early because the bytes read so far already exceed the limit.
    pub stopped_over_limit: bool,
}

/// Splits `path` into normalized segments, or the rule it breaks.
fn normalize(path: &str) -> Result<Vec<&str>, ArchiveProblem> {
    let entry = || path.to_string();
    if path.contains('\u{FFFD}') {
        return Err(ArchiveProblem::NotUtf8 { entry: entry() });
    }
    if path.chars().any(char::is_control) {
        return Err(ArchiveProblem::ControlCharacter { entry: entry() });
    }
    if is_absolute(path) {
        return Err(ArchiveProblem::Absolute { entry: entry() });
    }
    if path.contains('\\') {
        return Err(ArchiveProblem::Backslash { entry: entry() });
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(ArchiveProblem::ZipSlip { entry: entry() });
                }
            }
            name => segments.push(name),
        }
    }
    Ok(segments)
}

/// `/x`, `\x`, `\\server\x`, `C:\x`, `C:x`, `C:/x`.
fn is_absolute(path: &str) -> bool {
    let bytes = path.as_bytes();
    path.starts_with(['/', '\\'])
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
}

/// An entry that passed its own checks.
struct Normalized<'a> {
    segments: Vec<&'a str>,
    kind: &'a EntryKind,
    size: u64,
    executable: bool,
    source: usize,
}

/// Checks `entries` against every rule (see the module docs). `read` says whether the
/// reader stopped early over the byte limit.
pub fn check_entries(
    entries: &[RawEntry],
    limits: &DeployLimits,
    read: ReadState,
) -> Result<Layout, ArchiveRejected> {
    check_all(entries, limits, read, true)
}

/// Checks the changed files of a synced folder by the same rules, with their paths kept as
/// they are: they are already relative to the release, so a lone top-level folder (say one
/// changed `css/site.css`) is not stripped.
pub fn check_changed_files(
    entries: &[RawEntry],
    limits: &DeployLimits,
) -> Result<Layout, ArchiveRejected> {
    check_all(entries, limits, ReadState::default(), false)
}

fn check_all(
    entries: &[RawEntry],
    limits: &DeployLimits,
    read: ReadState,
    strip_single_folder: bool,
) -> Result<Layout, ArchiveRejected> {
    let mut problems = Vec::new();
    let mut accepted: Vec<Normalized<'_>> = Vec::new();
    // Normalized path → index in `accepted`.
    let mut seen: BTreeMap<Vec<&str>, usize> = BTreeMap::new();
    for (source, raw) in entries.iter().enumerate() {
        let segments = match normalize(&raw.path) {
            Ok(segments) => segments,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let unsupported = match &raw.kind {
            EntryKind::HardLink => Some("hard link".to_string()),
            EntryKind::Device => Some("device".to_string()),
            EntryKind::Fifo => Some("FIFO (named pipe)".to_string()),
            EntryKind::Socket => Some("socket".to_string()),
            EntryKind::Other(what) => Some(what.clone()),
            _ => None,
        };
        if let Some(what) = unsupported {
            problems.push(ArchiveProblem::Unsupported {
                entry: raw.path.clone(),
                what,
            });
            continue;
        }
        if segments.is_empty() {
            // The root folder itself (`./`) carries nothing.
            if raw.kind != EntryKind::Directory {
                problems.push(ArchiveProblem::NoName {
                    entry: raw.path.clone(),
                });
            }
            continue;
        }
        if let EntryKind::Symlink { target } = &raw.kind {
            if target.is_empty() || target.chars().any(char::is_control) {
                problems.push(ArchiveProblem::BadSymlinkTarget {
                    entry: raw.path.clone(),
                    target: target.clone(),
                });
                continue;
            }
        }
        match seen.get(&segments) {
            Some(&earlier) => {
                let both_folders = raw.kind == EntryKind::Directory
                    && *accepted[earlier].kind == EntryKind::Directory;
                if !both_folders {
                    problems.push(ArchiveProblem::Duplicate {
                        entry: raw.path.clone(),
                    });
                }
            }
            None => {
                seen.insert(segments.clone(), accepted.len());
                accepted.push(Normalized {
                    segments,
                    kind: &raw.kind,
                    size: raw.size,
                    executable: raw.executable,
                    source,
                });
            }
        }
    }

    let stripped = common_folder(&accepted).filter(|_| strip_single_folder);
    let strip = usize::from(stripped.is_some());
    let kinds: BTreeMap<&[&str], &EntryKind> = accepted
        .iter()
        .filter(|entry| entry.segments.len() > strip)
        .map(|entry| (&entry.segments[strip..], entry.kind))
        .collect();

    let mut layout = Vec::new();
    let (mut file_count, mut total_bytes) = (0u32, 0u64);
    for entry in &accepted {
        if entry.segments.len() <= strip {
            continue;
        }
        let segments = &entry.segments[strip..];
        let path = segments.join("/");
        let raw_path = &entries[entry.source].path;
        if let Some((parent, what)) = non_folder_parent(segments, &kinds) {
            problems.push(ArchiveProblem::UnderNonFolder {
                entry: raw_path.clone(),
                parent,
                what,
            });
            continue;
        }
        let kind = match entry.kind {
            EntryKind::File => {
                file_count = file_count.saturating_add(1);
                total_bytes = total_bytes.saturating_add(entry.size);
                CheckedKind::File {
                    size: entry.size,
                    executable: entry.executable,
                }
            }
            EntryKind::Directory => CheckedKind::Directory,
            EntryKind::Symlink { target } => {
                if !link_stays_inside(segments, target, &kinds) {
                    problems.push(ArchiveProblem::SymlinkOutside {
                        entry: raw_path.clone(),
                        target: target.clone(),
                    });
                    continue;
                }
                CheckedKind::Symlink {
                    target: target.clone(),
                }
            }
            // Refused above.
            _ => continue,
        };
        layout.push(CheckedEntry {
            path,
            kind,
            source: entry.source,
        });
    }

    let over_bytes = read.stopped_over_limit || total_bytes > limits.max_total_bytes;
    if over_bytes {
        problems.push(ArchiveProblem::TooLarge {
            total: total_bytes,
            max: limits.max_total_bytes,
            at_least: read.stopped_over_limit,
        });
    }
    if entries.len() as u64 > u64::from(limits.max_files) {
        problems.push(ArchiveProblem::TooManyEntries {
            count: entries.len() as u64,
            max: limits.max_files,
        });
    }
    let has_content = layout
        .iter()
        .any(|entry| !matches!(entry.kind, CheckedKind::Directory));
    if problems.is_empty() && !has_content {
        problems.push(ArchiveProblem::Empty);
    }
    if !problems.is_empty() {
        return Err(ArchiveRejected { problems });
    }
    Ok(Layout {
        entries: layout,
        stripped_folder: stripped.map(str::to_string),
        file_count,
        total_bytes,
    })
}

/// The one top-level folder every entry lies under (and at least one entry beneath it).
fn common_folder<'a>(entries: &[Normalized<'a>]) -> Option<&'a str> {
    let first = *entries.first()?.segments.first()?;
    let mut beneath = false;
    for entry in entries {
        if entry.segments[0] != first {
            return None;
        }
        if entry.segments.len() == 1 {
            if *entry.kind != EntryKind::Directory {
                return None;
            }
        } else {
            beneath = true;
        }
    }
    beneath.then_some(first)
}

/// The nearest ancestor of `segments` that is a file or a symlink.
fn non_folder_parent(
    segments: &[&str],
    kinds: &BTreeMap<&[&str], &EntryKind>,
) -> Option<(String, &'static str)> {
    (1..segments.len()).find_map(|end| match kinds.get(&segments[..end]) {
        Some(EntryKind::File) => Some((segments[..end].join("/"), "file")),
        Some(EntryKind::Symlink { .. }) => Some((segments[..end].join("/"), "symlink")),
        _ => None,
    })
}

/// Whether the link at `link` (segments from the release root) to `target` resolves inside
/// the release, following the layout's own links (a chain that loops counts as outside).
fn link_stays_inside(link: &[&str], target: &str, kinds: &BTreeMap<&[&str], &EntryKind>) -> bool {
    let parent: Vec<String> = link[..link.len() - 1]
        .iter()
        .map(|s| s.to_string())
        .collect();
    resolve(parent, target, kinds, &mut 0).is_some()
}

/// Resolves `target` from the folder `base`; `None` when it leaves the root.
fn resolve(
    base: Vec<String>,
    target: &str,
    kinds: &BTreeMap<&[&str], &EntryKind>,
    hops: &mut usize,
) -> Option<Vec<String>> {
    if target.starts_with('/') || is_absolute(target) {
        return None;
    }
    let mut current = base;
    for segment in target.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                current.pop()?;
            }
            name => {
                current.push(name.to_string());
                let key: Vec<&str> = current.iter().map(String::as_str).collect();
                if let Some(EntryKind::Symlink { target: next }) = kinds.get(key.as_slice()) {
                    *hops += 1;
                    if *hops > MAX_LINK_HOPS {
                        return None;
                    }
                    current.pop();
                    current = resolve(current, next, kinds, hops)?;
                }
            }
        }
    }
    Some(current)
}

/// Paths of a layout that deploys fine, for tests and previews: `dir/`, `file`, `link -> t`.
pub fn describe(layout: &Layout) -> Vec<String> {
    layout
        .entries
        .iter()
        .map(|entry| match &entry.kind {
            CheckedKind::Directory => format!("{}/", entry.path),
            CheckedKind::File { .. } => entry.path.clone(),
            CheckedKind::Symlink { target } => format!("{} -> {target}", entry.path),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> DeployLimits {
        DeployLimits::default()
    }

    fn check(entries: &[RawEntry]) -> Result<Vec<String>, Vec<String>> {
        check_entries(entries, &limits(), ReadState::default())
            .map(|layout| describe(&layout))
            .map_err(|rejected| rejected.problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn accepted_layouts_table() {
        let cases: Vec<(&str, Vec<RawEntry>, Vec<&str>)> = vec![
            (
                "plain files keep their paths",
                vec![
                    RawEntry::file("index.html", 5, false),
                    RawEntry::file("css/a.css", 3, false),
                ],
                vec!["index.html", "css/a.css"],
            ),
            (
                "dot segments, repeated and trailing slashes are dropped",
                vec![
                    RawEntry::file("./a//b/./c.txt", 1, false),
                    RawEntry::directory("d/"),
                    RawEntry::file("x/../y.txt", 1, false),
                ],
                vec!["a/b/c.txt", "d/", "y.txt"],
            ),
            (
                "a single top-level folder is stripped (GitHub archives)",
                vec![
                    RawEntry::directory("repo-main/"),
                    RawEntry::file("repo-main/index.html", 1, false),
                    RawEntry::directory("repo-main/src/"),
                    RawEntry::file("repo-main/src/app.js", 1, true),
                ],
                vec!["index.html", "src/", "src/app.js"],
            ),
            (
                "implicit single top folder is stripped too",
                vec![
                    RawEntry::file("site/a.html", 1, false),
                    RawEntry::file("site/b/c.html", 1, false),
                ],
                vec!["a.html", "b/c.html"],
            ),
            (
                "two top-level entries: nothing is stripped",
                vec![
                    RawEntry::file("site/a.html", 1, false),
                    RawEntry::file("README", 1, false),
                ],
                vec!["site/a.html", "README"],
            ),
            (
                "a lone file is not a folder to strip",
                vec![RawEntry::file("index.html", 1, false)],
                vec!["index.html"],
            ),
            (
                "a root entry './' is skipped, and duplicate folders merge",
                vec![
                    RawEntry::directory("./"),
                    RawEntry::directory("a/"),
                    RawEntry::directory("a"),
                    RawEntry::file("a/f", 1, false),
                    RawEntry::file("g", 1, false),
                ],
                vec!["a/", "a/f", "g"],
            ),
            (
                "symlinks inside the release are kept, also through other links",
                vec![
                    RawEntry::file("public/index.html", 1, false),
                    RawEntry::symlink("www", "public"),
                    RawEntry::symlink("deep/home", "../www/index.html"),
                    RawEntry::symlink("self", "."),
                ],
                vec![
                    "public/index.html",
                    "www -> public",
                    "deep/home -> ../www/index.html",
                    "self -> .",
                ],
            ),
        ];
        for (label, entries, expected) in cases {
            let expected: Vec<String> = expected.into_iter().map(String::from).collect();
            assert_eq!(check(&entries), Ok(expected), "{label}");
        }
    }

    #[test]
    fn refused_entries_table() {
        let cases: Vec<(&str, Vec<RawEntry>, Vec<&str>)> = vec![
            (
                "zip-slip",
                vec![
                    RawEntry::file("../../etc/passwd", 1, false),
                    RawEntry::file("ok", 1, false),
                ],
                vec!["entry '../../etc/passwd' escapes the app's folder (zip-slip)"],
            ),
            (
                "zip-slip after normalization",
                vec![
                    RawEntry::file("a/../../b", 1, false),
                    RawEntry::file("a/./../c", 1, false),
                ],
                vec!["entry 'a/../../b' escapes the app's folder (zip-slip)"],
            ),
            (
                "absolute paths of every kind",
                vec![
                    RawEntry::file("/etc/passwd", 1, false),
                    RawEntry::file("C:\\Windows\\x", 1, false),
                    RawEntry::file("c:/x", 1, false),
                    RawEntry::file("\\\\server\\share", 1, false),
                    RawEntry::file("ok", 1, false),
                ],
                vec![
                    "entry '/etc/passwd' is an absolute path",
                    "entry 'C:\\Windows\\x' is an absolute path",
                    "entry 'c:/x' is an absolute path",
                    "entry '\\\\server\\share' is an absolute path",
                ],
            ),
            (
                "backslashes, control characters and broken UTF-8",
                vec![
                    RawEntry::file("dir\\file", 1, false),
                    RawEntry::file("a\0b", 1, false),
                    RawEntry::file("line\nbreak", 1, false),
                    RawEntry::file("caf\u{FFFD}", 1, false),
                ],
                vec![
                    "entry 'dir\\file' contains a backslash",
                    "contains a NUL or control character",
                    "entry 'line\nbreak' contains a NUL or control character",
                    "entry 'caf\u{FFFD}' has a name that is not valid UTF-8",
                ],
            ),
            (
                "symlinks pointing outside",
                vec![
                    RawEntry::symlink("etc", "/etc"),
                    RawEntry::symlink("up", "../secret"),
                    RawEntry::symlink("sub/up2", "../../x"),
                    RawEntry::symlink("d/a", ".."),
                    // d/a resolves to the root, so d/a/.. is outside.
                    RawEntry::symlink("b", "d/a/.."),
                    RawEntry::symlink("loop1", "loop2"),
                    RawEntry::symlink("loop2", "loop1"),
                    RawEntry::symlink("empty", ""),
                ],
                vec![
                    // Found while reading the entries, before links are resolved.
                    "entry 'empty' is a symlink with an unusable target ''",
                    "entry 'etc' is a symlink to '/etc', which is outside the app's folder",
                    "entry 'up' is a symlink to '../secret', which is outside",
                    "entry 'sub/up2' is a symlink to '../../x'",
                    "entry 'b' is a symlink to 'd/a/..'",
                    "entry 'loop1' is a symlink to 'loop2'",
                    "entry 'loop2' is a symlink to 'loop1'",
                ],
            ),
            (
                "hard links, devices, FIFOs, sockets and other kinds",
                vec![
                    RawEntry {
                        kind: EntryKind::HardLink,
                        ..RawEntry::file("h", 0, false)
                    },
                    RawEntry {
                        kind: EntryKind::Device,
                        ..RawEntry::file("dev", 0, false)
                    },
                    RawEntry {
                        kind: EntryKind::Fifo,
                        ..RawEntry::file("pipe", 0, false)
                    },
                    RawEntry {
                        kind: EntryKind::Socket,
                        ..RawEntry::file("sock", 0, false)
                    },
                    RawEntry {
                        kind: EntryKind::Other("encrypted entry".into()),
                        ..RawEntry::file("secret", 0, false)
                    },
                    RawEntry::file("ok", 1, false),
                ],
                vec![
                    "entry 'h' is a hard link; only files, folders and symlinks can be deployed",
                    "entry 'dev' is a device",
                    "entry 'pipe' is a FIFO (named pipe)",
                    "entry 'sock' is a socket",
                    "entry 'secret' is a encrypted entry",
                ],
            ),
            (
                "duplicates and entries beneath a file or link",
                vec![
                    RawEntry::file("a", 1, false),
                    RawEntry::file("./a", 1, false),
                    RawEntry::directory("d"),
                    RawEntry::file("d", 1, false),
                    RawEntry::file("a/inner", 1, false),
                    RawEntry::symlink("l", "d"),
                    RawEntry::file("l/x", 1, false),
                ],
                vec![
                    "entry './a' appears more than once",
                    "entry 'd' appears more than once",
                    "entry 'a/inner' is inside 'a', which is a file, not a folder",
                    "entry 'l/x' is inside 'l', which is a symlink, not a folder",
                ],
            ),
            (
                "nothing to deploy",
                vec![RawEntry::directory("only/"), RawEntry::directory("./")],
                vec!["there is no file to deploy"],
            ),
            ("empty input", vec![], vec!["there is no file to deploy"]),
            (
                "a file named '.'",
                vec![
                    RawEntry::file(".", 1, false),
                    RawEntry::file("ok", 1, false),
                ],
                vec!["entry '.' has no name"],
            ),
        ];
        for (label, entries, expected) in cases {
            let problems = check(&entries).expect_err(label);
            assert_eq!(problems.len(), expected.len(), "{label}: {problems:?}");
            for (problem, wanted) in problems.iter().zip(&expected) {
                assert!(
                    problem.contains(wanted),
                    "{label}: {problem:?} lacks {wanted:?}"
                );
            }
        }
    }

    #[test]
    fn changed_files_keep_their_top_folder_and_the_rules() {
        let entries = [RawEntry::file("css/site.css", 3, false)];
        let layout = check_changed_files(&entries, &limits()).expect("accepted");
        let paths: Vec<&str> = layout.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["css/site.css"]);
        assert_eq!(layout.stripped_folder, None);
        let escaping = [RawEntry::file("../up.txt", 1, false)];
        assert!(check_changed_files(&escaping, &limits()).is_err());
    }

    #[test]
    fn stripping_applies_to_link_checks() {
        // Inside the top folder a link to its parent is outside the release.
        let entries = [
            RawEntry::file("repo/a", 1, false),
            RawEntry::symlink("repo/out", "../other"),
        ];
        assert_eq!(
            check(&entries),
            Err(vec![
                "entry 'repo/out' is a symlink to '../other', which is outside the app's folder"
                    .to_string()
            ])
        );
    }

    /// (label, entries, how the read went, (files, bytes) or the problems).
    type LimitCase = (
        &'static str,
        Vec<RawEntry>,
        ReadState,
        Result<(u32, u64), Vec<&'static str>>,
    );

    #[test]
    fn limits_table() {
        let small = DeployLimits {
            max_total_bytes: 10,
            max_files: 3,
        };
        let cases: Vec<LimitCase> = vec![
            (
                "at the limits",
                vec![
                    RawEntry::file("a", 6, false),
                    RawEntry::file("b", 4, false),
                    RawEntry::directory("c"),
                ],
                ReadState::default(),
                Ok((2, 10)),
            ),
            (
                "one byte over",
                vec![RawEntry::file("a", 6, false), RawEntry::file("b", 5, false)],
                ReadState::default(),
                Err(vec![
                    "the files hold 11 bytes, more than the limit of 10 bytes",
                ]),
            ),
            (
                "one entry over",
                vec![
                    RawEntry::file("a", 1, false),
                    RawEntry::file("b", 1, false),
                    RawEntry::file("c", 1, false),
                    RawEntry::directory("d"),
                ],
                ReadState::default(),
                Err(vec![
                    "the files hold 4 entries (files, folders and links), more than the limit of 3",
                ]),
            ),
            (
                "the reader stopped over the limit",
                vec![RawEntry::file("a", 8, false)],
                ReadState {
                    stopped_over_limit: true,
                },
                Err(vec![
                    "the files hold 8 bytes or more, more than the limit of 10 bytes",
                ]),
            ),
            (
                "limits are reported with the other problems",
                vec![
                    RawEntry::file("../x", 1, false),
                    RawEntry::file("b", 11, false),
                ],
                ReadState::default(),
                Err(vec!["zip-slip", "11 bytes"]),
            ),
        ];
        for (label, entries, read, expected) in cases {
            let got = check_entries(&entries, &small, read)
                .map(|layout| (layout.file_count, layout.total_bytes))
                .map_err(|rejected| rejected.problems);
            match (got, expected) {
                (Ok(got), Ok(wanted)) => assert_eq!(got, wanted, "{label}"),
                (Err(problems), Err(wanted)) => {
                    assert_eq!(problems.len(), wanted.len(), "{label}: {problems:?}");
                    for (problem, wanted) in problems.iter().zip(wanted) {
                        assert!(problem.to_string().contains(wanted), "{label}: {problem}");
                    }
                }
                (got, wanted) => panic!("{label}: {got:?} vs {wanted:?}"),
            }
        }
    }

    #[test]
    fn message_names_the_entry_and_says_nothing_was_deployed() {
        let rejected = check_entries(
            &[RawEntry::file("../../etc/passwd", 1, false)],
            &limits(),
            ReadState::default(),
        )
        .expect_err("zip-slip");
        assert_eq!(
            rejected.to_string(),
            "entry '../../etc/passwd' escapes the app's folder (zip-slip); nothing was deployed"
        );
        let many: Vec<RawEntry> = (0..25)
            .map(|n| RawEntry::file(format!("/abs{n}"), 1, false))
            .collect();
        let message = check_entries(&many, &limits(), ReadState::default())
            .expect_err("absolute")
            .to_string();
        assert!(
            message.contains("'/abs19'") && !message.contains("'/abs20'"),
            "{message}"
        );
        assert!(
            message.ends_with("; and 5 more problems; nothing was deployed"),
            "{message}"
        );
    }

    #[test]
    fn layout_keeps_sources_sizes_and_modes() {
        let entries = [
            RawEntry::directory("top"),
            RawEntry::file("top/run.sh", 7, true),
            RawEntry::file("top/data", 3, false),
        ];
        let layout = check_entries(&entries, &limits(), ReadState::default()).expect("valid");
        assert_eq!(layout.stripped_folder.as_deref(), Some("top"));
        assert_eq!((layout.file_count, layout.total_bytes), (2, 10));
        assert_eq!(
            layout.entries,
            vec![
                CheckedEntry {
                    path: "run.sh".into(),
                    kind: CheckedKind::File {
                        size: 7,
                        executable: true
                    },
                    source: 1,
                },
                CheckedEntry {
                    path: "data".into(),
                    kind: CheckedKind::File {
                        size: 3,
                        executable: false
                    },
                    source: 2,
                },
            ]
        );
    }
}
