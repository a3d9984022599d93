//! Debian control data: deb822 paragraphs, the binary-package fields the repository uses,
//! and relation fields (`Depends: a (>= 1.2) | b:any, c [i386]`).
//!
//! Everything here is pure and total: malformed input gives a [`ControlError`], never a panic.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;

use super::version;

/// The architecture of the guest: packages and relations are evaluated for it.
pub const GUEST_ARCH: &str = "i386";

/// Why control data could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("the control data is not UTF-8")]
    NotUtf8,
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: &'static str },
    #[error("the field {0} appears twice")]
    DuplicateField(String),
    #[error("the required field {0} is missing or empty")]
    MissingField(&'static str),
    #[error("{field}: cannot read '{text}': {reason}")]
    BadRelation {
        field: &'static str,
        text: String,
        reason: &'static str,
    },
    #[error("Installed-Size '{0}' is not a number of KiB")]
    BadInstalledSize(String),
    #[error("'{0}' is not a valid package name")]
    BadPackageName(String),
    #[error("'{0}' is not a valid version")]
    BadVersion(String),
    #[error("'{0}' is not a Debian architecture name")]
    BadArchitecture(String),
}

/// One deb822 paragraph: fields in file order, continuation lines joined with `\n`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    fields: Vec<(String, String)>,
}

impl Paragraph {
    /// The value of a field (names compare case-insensitively, as in Debian policy).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every field in file order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

/// Parses deb822 text into its paragraphs (separated by blank lines). `#` comment lines
/// are skipped; a continuation line (starting with a space or tab) belongs to the field
/// above it.
pub fn parse_paragraphs(text: &str) -> Result<Vec<Paragraph>, ControlError> {
    let mut paragraphs = Vec::new();
    let mut current = Paragraph::default();
    // The current paragraph's field names, lowercased: duplicates are found in linear time.
    let mut names = HashSet::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
                names.clear();
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = current.fields.last_mut() else {
                return Err(ControlError::Syntax {
                    line: number,
                    reason: "a continuation line without a field before it",
                });
            };
            value.push('\n');
            value.push_str(line.trim_end());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ControlError::Syntax {
                line: number,
                reason: "a line that is neither 'Field: value' nor a continuation",
            });
        };
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_graphic() && byte != b':')
            && !name.starts_with('-');
        if !valid_name {
            return Err(ControlError::Syntax {
                line: number,
                reason: "a malformed field name",
            });
        }
        if !names.insert(name.to_ascii_lowercase()) {
            return Err(ControlError::DuplicateField(name.to_string()));
        }
        current
            .fields
            .push((name.to_string(), value.trim().to_string()));
    }
    if !current.fields.is_empty() {
        paragraphs.push(current);
    }
    Ok(paragraphs)
}

/// A version relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelationOp {
    /// `<<`
    Less,
    /// `<=` (and the obsolete `<`)
    LessOrEqual,
    /// `=`
    Equal,
    /// `>=` (and the obsolete `>`)
    GreaterOrEqual,
    /// `>>`
    Greater,
}

impl RelationOp {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "<<" => Self::Less,
            "<=" | "<" => Self::LessOrEqual,
            "=" => Self::Equal,
            ">=" | ">" => Self::GreaterOrEqual,
            ">>" => Self::Greater,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Less => "<<",
            Self::LessOrEqual => "<=",
            Self::Equal => "=",
            Self::GreaterOrEqual => ">=",
            Self::Greater => ">>",
        }
    }

    /// True when `version OP wanted` holds.
    pub fn holds(self, version: &str, wanted: &str) -> bool {
        let ordering = version::compare(version, wanted);
        match self {
            Self::Less => ordering == Ordering::Less,
            Self::LessOrEqual => ordering != Ordering::Greater,
            Self::Equal => ordering == Ordering::Equal,
            Self::GreaterOrEqual => ordering != Ordering::Less,
            Self::Greater => ordering == Ordering::Greater,
        }
    }
}

/// One package relation: `name[:arch] [(op version)] [[arch …]] [<profile …>]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Relation {
    pub name: String,
    /// `any`, `native` or an architecture name after `:`.
    pub arch_qualifier: Option<String>,
    pub version: Option<(RelationOp, String)>,
    /// The `[…]` architecture restriction (only in source packages; kept for completeness).
    pub arch_restriction: Vec<String>,
}

impl Relation {
    /// True when `version` of a package named [`Relation::name`] satisfies this relation.
    /// An unknown version (`None`) satisfies only an unversioned relation.
    pub fn accepts(&self, version: Option<&str>) -> bool {
        match (&self.version, version) {
            (None, _) => true,
            (Some((op, wanted)), Some(version)) => op.holds(version, wanted),
            (Some(_), None) => false,
        }
    }

    /// False when an architecture restriction excludes `arch`.
    pub fn applies_to(&self, arch: &str) -> bool {
        if self.arch_restriction.is_empty() {
            return true;
        }
        let negated = self.arch_restriction.iter().all(|a| a.starts_with('!'));
        if negated {
            !self
                .arch_restriction
                .iter()
                .any(|a| a.strip_prefix('!') == Some(arch))
        } else {
            self.arch_restriction.iter().any(|a| a == arch)
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.name)?;
        if let Some(arch) = &self.arch_qualifier {
            write!(formatter, ":{arch}")?;
        }
        if let Some((op, version)) = &self.version {
            write!(formatter, " ({} {version})", op.as_str())?;
        }
        Ok(())
    }
}

/// A dependency: alternatives separated by `|`; any one of them satisfies it.
pub type Alternatives = Vec<Relation>;

/// Formats alternatives as in a control file.
pub fn format_alternatives(alternatives: &[Relation]) -> String {
    alternatives
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// True for a valid Debian package name: lowercase letters, digits, `+`, `-`, `.`; at least
/// two characters, starting with a letter or digit.
pub fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
        })
}

/// True for a Debian architecture name or wildcard (`i386`, `all`, `any`, `linux-any`,
/// `musl-linux-arm64`): lowercase letters, digits and inner single `-`, at most 64 bytes.
/// Nothing else can reach a file name built from it.
pub fn is_architecture(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// True for a plausible Debian version: starts with a digit (after an optional epoch) and
/// uses only the characters Debian policy allows.
pub fn is_version(text: &str) -> bool {
    let rest = version::without_epoch(text);
    !rest.is_empty()
        && text.len() <= 128
        && rest.starts_with(|c: char| c.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'~' | b':'))
}

/// Parses a relation field (`Depends`, `Pre-Depends`, `Conflicts`, …) into its groups of
/// alternatives. Empty groups (`a, , b` or a trailing comma) are skipped, as dpkg does.
pub fn parse_relations(field: &'static str, text: &str) -> Result<Vec<Alternatives>, ControlError> {
    let mut groups = Vec::new();
    for group in text.split(',') {
        if group.trim().is_empty() {
            continue;
        }
        let mut alternatives = Vec::new();
        for alternative in group.split('|') {
            alternatives.push(parse_relation(field, alternative)?);
        }
        groups.push(alternatives);
    }
    Ok(groups)
}

fn parse_relation(field: &'static str, text: &str) -> Result<Relation, ControlError> {
    let bad = |reason| ControlError::BadRelation {
        field,
        text: text.trim().to_string(),
        reason,
    };
    let mut rest = text.trim();
    // Build profiles `<!nocheck> <stage1>` only matter when building; drop them.
    while let Some(start) = rest.rfind('<').filter(|_| rest.ends_with('>')) {
        if rest[..start].trim_end().ends_with('(') || rest[start..].contains('(') {
            break;
        }
        rest = rest[..start].trim_end();
    }
    let mut arch_restriction = Vec::new();
    if let Some(body) = rest.strip_suffix(']') {
        let start = body.rfind('[').ok_or_else(|| bad("an unmatched ']'"))?;
        arch_restriction = body[start + 1..]
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if arch_restriction.is_empty() {
            return Err(bad("an empty architecture list"));
        }
        rest = body[..start].trim_end();
    }
    let mut version = None;
    if let Some(body) = rest.strip_suffix(')') {
        let start = body.find('(').ok_or_else(|| bad("an unmatched ')'"))?;
        let inner = body[start + 1..].trim();
        let split = inner
            .find(|c: char| !matches!(c, '<' | '>' | '='))
            .ok_or_else(|| bad("a version relation without a version"))?;
        let (op, wanted) = inner.split_at(split);
        let op = RelationOp::parse(op.trim()).ok_or_else(|| bad("an unknown relation operator"))?;
        let wanted = wanted.trim();
        if !is_version(wanted) {
            return Err(bad("a malformed version"));
        }
        version = Some((op, wanted.to_string()));
        rest = body[..start].trim_end();
    }
    let (name, arch_qualifier) = match rest.split_once(':') {
        Some((name, arch)) => (name.trim(), Some(arch.trim())),
        None => (rest, None),
    };
    if !is_package_name(name) {
        return Err(bad("a malformed package name"));
    }
    if arch_qualifier.is_some_and(|arch| !is_architecture(arch)) {
        return Err(bad("a malformed architecture qualifier"));
    }
    Ok(Relation {
        name: name.to_string(),
        arch_qualifier: arch_qualifier.map(str::to_string),
        version,
        arch_restriction,
    })
}

/// The control fields of one binary package that the repository relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub package: String,
    pub version: String,
    pub architecture: String,
    pub multi_arch: Option<String>,
    pub pre_depends: Vec<Alternatives>,
    pub depends: Vec<Alternatives>,
    pub conflicts: Vec<Relation>,
    pub breaks: Vec<Relation>,
    /// `Provides: name (= version)`; only `=` is meaningful for a provided version.
    pub provides: Vec<Relation>,
    pub installed_size_kib: u64,
    /// Synopsis, then the long description; continuation lines with their leading space
    /// removed and `.` lines as empty lines.
    pub description: String,
}

impl Control {
    /// The control fields of a binary package paragraph.
    pub fn from_paragraph(paragraph: &Paragraph) -> Result<Self, ControlError> {
        let required = |name: &'static str| {
            paragraph
                .get(name)
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .ok_or(ControlError::MissingField(name))
        };
        let package = required("Package")?.to_string();
        if !is_package_name(&package) {
            return Err(ControlError::BadPackageName(package));
        }
        let version = required("Version")?.to_string();
        if !is_version(&version) {
            return Err(ControlError::BadVersion(version));
        }
        let architecture = required("Architecture")?.to_string();
        if !is_architecture(&architecture) {
            return Err(ControlError::BadArchitecture(architecture));
        }
        let relations = |name: &'static str| -> Result<Vec<Alternatives>, ControlError> {
            match paragraph.get(name) {
                Some(text) => parse_relations(name, text),
                None => Ok(Vec::new()),
            }
        };
        // Conflicts, Breaks and Provides allow no alternatives; flatten any that appear.
        let flat = |name: &'static str| -> Result<Vec<Relation>, ControlError> {
            Ok(relations(name)?.into_iter().flatten().collect())
        };
        let installed_size_kib = match paragraph.get("Installed-Size").map(str::trim) {
            None | Some("") => 0,
            Some(text) => text
                .parse::<u64>()
                .map_err(|_| ControlError::BadInstalledSize(text.to_string()))?,
        };
        Ok(Control {
            package,
            version,
            architecture,
            multi_arch: paragraph.get("Multi-Arch").map(|s| s.trim().to_string()),
            pre_depends: relations("Pre-Depends")?,
            depends: relations("Depends")?,
            conflicts: flat("Conflicts")?,
            breaks: flat("Breaks")?,
            provides: flat("Provides")?,
            installed_size_kib,
            description: paragraph
                .get("Description")
                .map(description_text)
                .unwrap_or_default(),
        })
    }

    /// Parses the text of a `DEBIAN/control` file (exactly one paragraph).
    pub fn parse(text: &str) -> Result<Self, ControlError> {
        let paragraphs = parse_paragraphs(text)?;
        match paragraphs.as_slice() {
            [paragraph] => Self::from_paragraph(paragraph),
            [] => Err(ControlError::MissingField("Package")),
            _ => Err(ControlError::Syntax {
                line: 0,
                reason: "a binary package control file has exactly one paragraph",
            }),
        }
    }

    /// The synopsis (first line of the description).
    pub fn synopsis(&self) -> &str {
        self.description.lines().next().unwrap_or_default()
    }

    /// Whether this package is installable on the guest's architecture.
    pub fn fits_guest(&self) -> bool {
        self.architecture == GUEST_ARCH || self.architecture == "all"
    }
}

/// The description field with its continuation lines unfolded.
fn description_text(raw: &str) -> String {
    raw.lines()
        .enumerate()
        .map(|(index, line)| {
            if index == 0 {
                line.trim().to_string()
            } else {
                let line = line.strip_prefix([' ', '\t']).unwrap_or(line);
                if line.trim() == "." {
                    String::new()
                } else {
                    line.to_string()
                }
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation(name: &str) -> Relation {
        Relation {
            name: name.into(),
            arch_qualifier: None,
            version: None,
            arch_restriction: Vec::new(),
        }
    }

    fn versioned(name: &str, op: RelationOp, version: &str) -> Relation {
        Relation {
            version: Some((op, version.into())),
            ..relation(name)
        }
    }

    #[test]
    fn relation_fields_parse() {
        use RelationOp::*;
        let qualified = |name: &str, arch: &str| Relation {
            arch_qualifier: Some(arch.into()),
            ..relation(name)
        };
        let cases: Vec<(&str, Vec<Vec<Relation>>)> = vec![
            ("", vec![]),
            ("libc6", vec![vec![relation("libc6")]]),
            (
                "libc6 (>= 2.34), zlib1g (>= 1:1.1.4)",
                vec![
                    vec![versioned("libc6", GreaterOrEqual, "2.34")],
                    vec![versioned("zlib1g", GreaterOrEqual, "1:1.1.4")],
                ],
            ),
            (
                "default-mta | mail-transport-agent",
                vec![vec![
                    relation("default-mta"),
                    relation("mail-transport-agent"),
                ]],
            ),
            (
                "python3:any (>= 3.9~), perl:any",
                vec![
                    vec![Relation {
                        arch_qualifier: Some("any".into()),
                        ..versioned("python3", GreaterOrEqual, "3.9~")
                    }],
                    vec![qualified("perl", "any")],
                ],
            ),
            (
                "nginx-common (= 1.22.1-9+deb12u9)",
                vec![vec![versioned("nginx-common", Equal, "1.22.1-9+deb12u9")]],
            ),
            (
                "a1 (<< 2), b1 (<= 3), c1 (>> 1), d1 (< 4), e1 (> 5)",
                vec![
                    vec![versioned("a1", Less, "2")],
                    vec![versioned("b1", LessOrEqual, "3")],
                    vec![versioned("c1", Greater, "1")],
                    vec![versioned("d1", LessOrEqual, "4")],
                    vec![versioned("e1", GreaterOrEqual, "5")],
                ],
            ),
            (
                "a1(>=1)|b1,\n c1 ,, ",
                vec![
                    vec![versioned("a1", GreaterOrEqual, "1"), relation("b1")],
                    vec![relation("c1")],
                ],
            ),
            (
                "libfoo [i386 amd64] <!nocheck>",
                vec![vec![Relation {
                    arch_restriction: vec!["i386".into(), "amd64".into()],
                    ..relation("libfoo")
                }]],
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_relations("Depends", text).as_ref(),
                Ok(&expected),
                "{text:?}"
            );
        }
    }

    #[test]
    fn malformed_relations_are_errors() {
        let cases = [
            "libc6 (>= )",
            "libc6 (~= 1.0)",
            "libc6 >= 1.0)",
            "Libc6",
            "a | | b",
            "x (>= 1.0",
            "foo:",
            "foo:ANY",
            "bar [ ]",
            "baz ]",
            "(>= 1)",
        ];
        for text in cases {
            assert!(
                parse_relations("Depends", text).is_err(),
                "{text:?} should be refused"
            );
        }
    }

    #[test]
    fn relations_evaluate_versions_and_architectures() {
        let cases = [
            ("libc6 (>= 2.34)", Some("2.36-9"), true),
            ("libc6 (>= 2.34)", Some("2.31-13"), false),
            ("libc6 (>= 2.34)", None, false),
            ("libc6", None, true),
            ("x1 (<< 1.0)", Some("1.0~rc1"), true),
            ("x1 (= 1:2.0-1)", Some("1:2.0-1"), true),
            ("x1 (>> 2.0)", Some("2.0"), false),
        ];
        for (text, version, accepted) in cases {
            let parsed = parse_relations("Depends", text).expect("valid");
            assert_eq!(
                parsed[0][0].accepts(version),
                accepted,
                "{text} / {version:?}"
            );
        }
        let restricted = |list: &[&str]| Relation {
            arch_restriction: list.iter().map(|s| s.to_string()).collect(),
            ..relation("x")
        };
        assert!(restricted(&[]).applies_to("i386"));
        assert!(restricted(&["i386", "amd64"]).applies_to("i386"));
        assert!(!restricted(&["amd64"]).applies_to("i386"));
        assert!(!restricted(&["!i386"]).applies_to("i386"));
        assert!(restricted(&["!amd64"]).applies_to("i386"));
        assert_eq!(
            versioned("libc6", RelationOp::GreaterOrEqual, "2.34").to_string(),
            "libc6 (>= 2.34)"
        );
    }

    const NGINX: &str = "Package: nginx
Version: 1.22.1-9+deb12u9
Architecture: i386
Maintainer: Debian Nginx Maintainers <pkg-nginx-maintainers@alioth-lists.debian.net>
Installed-Size: 1466
Depends: nginx-common (= 1.22.1-9+deb12u9), iproute2, libc6 (>= 2.34), libcrypt1 (>= 1:4.1.0), libpcre2-8-0 (>= 10.22), libssl3 (>= 3.0.0), zlib1g (>= 1:1.1.4)
Pre-Depends: dpkg (>= 1.17.5)
Breaks: nginx-core (<< 1.22.1-6~)
Conflicts: nginx-core
Provides: httpd, httpd-cgi, nginx-abi-1.22.1-7
Section: httpd
Priority: optional
Homepage: https://nginx.org
Description: small, powerful, scalable web/proxy server
 Nginx (\"engine X\") is a high-performance web and reverse proxy server
 created by Igor Sysoev.
 .
 It can be used both as a standalone web server and as a proxy.
";

    #[test]
    fn a_real_control_file_parses() {
        let control = Control::parse(NGINX).expect("nginx control");
        assert_eq!(control.package, "nginx");
        assert_eq!(control.version, "1.22.1-9+deb12u9");
        assert_eq!(control.architecture, "i386");
        assert!(control.fits_guest());
        assert_eq!(control.installed_size_kib, 1466);
        assert_eq!(control.depends.len(), 7);
        assert_eq!(
            control.pre_depends,
            vec![vec![versioned(
                "dpkg",
                RelationOp::GreaterOrEqual,
                "1.17.5"
            )]]
        );
        assert_eq!(control.conflicts, vec![relation("nginx-core")]);
        assert_eq!(control.breaks.len(), 1);
        assert_eq!(control.provides.len(), 3);
        assert_eq!(
            control.synopsis(),
            "small, powerful, scalable web/proxy server"
        );
        assert_eq!(
            control.description,
            "small, powerful, scalable web/proxy server\nNginx (\"engine X\") is a high-performance web and reverse proxy server\ncreated by Igor Sysoev.\n\nIt can be used both as a standalone web server and as a proxy."
        );
    }

    #[test]
    fn control_files_with_problems_are_refused() {
        let cases: [(&str, ControlError); 8] = [
            ("", ControlError::MissingField("Package")),
            (
                "Version: 1.0\nArchitecture: all\n",
                ControlError::MissingField("Package"),
            ),
            (
                "Package: x1\nArchitecture: all\n",
                ControlError::MissingField("Version"),
            ),
            (
                "Package: x1\nVersion: 1.0\n",
                ControlError::MissingField("Architecture"),
            ),
            (
                "Package: Bad_Name\nVersion: 1.0\nArchitecture: all\n",
                ControlError::BadPackageName("Bad_Name".into()),
            ),
            (
                "Package: x1\nVersion: one\nArchitecture: all\n",
                ControlError::BadVersion("one".into()),
            ),
            (
                "Package: x1\nVersion: 1\nArchitecture: all\nInstalled-Size: lots\n",
                ControlError::BadInstalledSize("lots".into()),
            ),
            (
                "Package: x1\nPackage: x2\n",
                ControlError::DuplicateField("Package".into()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Control::parse(text), Err(expected), "{text:?}");
        }
        assert!(matches!(
            Control::parse(" leading continuation\n"),
            Err(ControlError::Syntax { line: 1, .. })
        ));
        assert!(matches!(
            Control::parse("Package x\n"),
            Err(ControlError::Syntax { line: 1, .. })
        ));
        assert!(matches!(
            Control::parse("Package: a1\n\nPackage: b1\n"),
            Err(ControlError::Syntax { .. })
        ));
        assert!(matches!(
            Control::parse("Package: a1\nVersion: 1\nArchitecture: all\nDepends: a (>= \n"),
            Err(ControlError::BadRelation {
                field: "Depends",
                ..
            })
        ));
    }

    #[test]
    fn architectures_are_checked() {
        for (name, ok) in [
            ("i386", true),
            ("all", true),
            ("any", true),
            ("amd64", true),
            ("linux-any", true),
            ("any-i386", true),
            ("kfreebsd-amd64", true),
            ("musl-linux-arm64", true),
            ("", false),
            ("I386", false),
            ("i386 amd64", false),
            ("../../../tmp/x", false),
            ("i386/../x", false),
            ("-i386", false),
            ("i386-", false),
            ("linux--any", false),
            ("i386\0", false),
            ("amd64_x", false),
        ] {
            assert_eq!(is_architecture(name), ok, "{name:?}");
        }
        assert!(is_architecture(&"a".repeat(64)));
        assert!(!is_architecture(&"a".repeat(65)));
        for architecture in ["../../etc/cron.d/x", "i386/../../x", "I386", "any all"] {
            let text = format!("Package: x1\nVersion: 1\nArchitecture: {architecture}\n");
            assert_eq!(
                Control::parse(&text),
                Err(ControlError::BadArchitecture(architecture.into())),
                "{architecture:?}"
            );
        }
        let control = Control::parse("Package: x1\nVersion: 1\nArchitecture: linux-any\n");
        assert_eq!(control.map(|c| c.architecture), Ok("linux-any".into()));
        assert!(parse_relations("Depends", "foo:-").is_err());
        assert!(parse_relations("Depends", "foo:linux-any").is_ok());
    }

    #[test]
    fn duplicate_fields_are_found_in_any_case_and_per_paragraph() {
        assert_eq!(
            parse_paragraphs("Package: a1\nVersion: 1\npackage: b1\n"),
            Err(ControlError::DuplicateField("package".into()))
        );
        let paragraphs = parse_paragraphs("Package: a1\n\nPackage: b1\n").expect("valid");
        assert_eq!(paragraphs.len(), 2);
    }

    #[test]
    fn paragraphs_split_on_blank_lines_and_skip_comments() {
        let text = "# comment\nPackage: a1\nDescription: one\n two\n\n\n\nPackage: b1\n";
        let paragraphs = parse_paragraphs(text).expect("valid");
        assert_eq!(paragraphs.len(), 2);
        assert_eq!(paragraphs[0].get("package"), Some("a1"));
        assert_eq!(paragraphs[0].get("Description"), Some("one\n two"));
        assert_eq!(paragraphs[1].fields().count(), 1);
    }

    #[test]
    fn names_and_versions_are_checked() {
        for (name, ok) in [
            ("libc6", true),
            ("g++", true),
            ("a", false),
            ("-x", false),
            ("X11", false),
            ("a_b", false),
        ] {
            assert_eq!(is_package_name(name), ok, "{name}");
        }
        for (text, ok) in [
            ("1.0", true),
            ("1:2.36-9+deb12u10", true),
            ("0~rc1", true),
            ("v1", false),
            ("", false),
            ("1.0 beta", false),
        ] {
            assert_eq!(is_version(text), ok, "{text}");
        }
    }
}
