//! Newtypes for values with format rules: application name, package id, port, sealed secret,
//! SHA-256 digest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Shortest allowed application name (business rule 1).
pub const APP_NAME_MIN_LEN: usize = 3;
/// Longest allowed application name (business rule 1).
pub const APP_NAME_MAX_LEN: usize = 50;
/// Lowest port an application may listen on (business rule 3).
pub const PORT_MIN: u16 = 1024;
/// Highest port an application may listen on (business rule 3).
pub const PORT_MAX: u16 = 65535;

/// Names the router uses for itself; no application may take them (compared case-insensitively).
pub const RESERVED_APP_NAMES: &[&str] = &[
    "admin",
    "api",
    "applications",
    "apps",
    "assets",
    "backup",
    "backups",
    "dashboard",
    "favicon.ico",
    "guest",
    "health",
    "healthz",
    "images",
    "index.html",
    "login",
    "logout",
    "manifest.json",
    "metrics",
    "new",
    "packages",
    "pkg",
    "public",
    "robots.txt",
    "settings",
    "share",
    "static",
    "status",
    "sw.js",
    "system",
    "vm",
    "webvm",
];

/// Why a text could not become one of the model's newtypes or enums.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("application name '{name}' has {length} characters; it must have {APP_NAME_MIN_LEN} to {APP_NAME_MAX_LEN}")]
    AppNameLength { name: String, length: usize },
    #[error("application name '{name}' contains '{character}'; only letters, digits, '-', '_' and '.' are URL-safe")]
    AppNameCharacter { name: String, character: char },
    #[error("application name '{name}' must start and end with a letter or digit")]
    AppNameEdge { name: String },
    #[error("application name '{name}' is reserved by the router")]
    AppNameReserved { name: String },
    #[error("package id '{id}' is invalid: {reason}")]
    PackageId { id: String, reason: &'static str },
    #[error("port {port} is outside {PORT_MIN}-{PORT_MAX}")]
    PortOutOfRange { port: i64 },
    #[error("secret is not a sealed value ({reason}); clear-text secrets are refused")]
    SealedSecret { reason: &'static str },
    #[error("'{value}' is not a valid {kind}")]
    UnknownVariant { kind: &'static str, value: String },
    #[error("'{value}' is not a SHA-256 (64 lowercase hex digits)")]
    Sha256 { value: String },
}

/// A user-chosen application name, used for routing at `/apps/<name>/`.
///
/// URL-safe (ASCII letters, digits, `-`, `_`, `.`), starts and ends with a letter or digit,
/// 3 to 50 characters, and not reserved by the router. Uniqueness is compared
/// case-insensitively (see [`AppName::normalized`]) and checked by the validation rules,
/// since it depends on the other applications.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppName(String);

impl AppName {
    /// Parses a name, returning its first problem.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        match Self::problems(text).into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(AppName(text.to_owned())),
        }
    }

    /// Every format problem of `text` (empty when it is a valid name).
    pub fn problems(text: &str) -> Vec<ParseError> {
        let mut problems = Vec::new();
        let length = text.chars().count();
        if !(APP_NAME_MIN_LEN..=APP_NAME_MAX_LEN).contains(&length) {
            problems.push(ParseError::AppNameLength {
                name: text.to_owned(),
                length,
            });
        }
        if let Some(character) = text.chars().find(|c| !is_app_name_char(*c)) {
            problems.push(ParseError::AppNameCharacter {
                name: text.to_owned(),
                character,
            });
        }
        let edges_ok = match (text.chars().next(), text.chars().last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric()
            }
            _ => false,
        };
        if !edges_ok {
            problems.push(ParseError::AppNameEdge {
                name: text.to_owned(),
            });
        }
        if Self::is_reserved(text) {
            problems.push(ParseError::AppNameReserved {
                name: text.to_owned(),
            });
        }
        problems
    }

    /// True when the router reserves this name (case-insensitive).
    pub fn is_reserved(text: &str) -> bool {
        RESERVED_APP_NAMES
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(text))
    }

    /// The name as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lowercase form used to compare names for uniqueness and routing.
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

fn is_app_name_char(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.')
}

/// Id of a runtime package in the catalog, e.g. `nodejs-20`, `python-311`, `nginx`.
///
/// Debian package-name rules: 2 to 64 characters of lowercase letters, digits, `+`, `-`
/// and `.`, starting with a letter or digit. Usable at both the catalog level and the
/// `.deb` level.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageId(String);

impl PackageId {
    /// Longest allowed package id.
    pub const MAX_LEN: usize = 64;

    /// Parses a package id.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let reason = if text.len() < 2 {
            Some("it must have at least 2 characters")
        } else if text.len() > Self::MAX_LEN {
            Some("it must have at most 64 characters")
        } else if !text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            Some("it must start with a lowercase letter or digit")
        } else if !text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
        {
            Some("only lowercase letters, digits, '+', '-' and '.' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(ParseError::PackageId {
                id: text.to_owned(),
                reason,
            }),
            None => Ok(PackageId(text.to_owned())),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when this id belongs to the runtime `family`: `nodejs` matches `nodejs`,
    /// `nodejs-20` and `nodejs20`, but not `nodejsx` or `node`.
    pub fn is_in_family(&self, family: &str) -> bool {
        match self.0.strip_prefix(family) {
            Some(rest) => {
                rest.is_empty()
                    || rest.starts_with('-')
                    || rest.starts_with(|c: char| c.is_ascii_digit())
            }
            None => false,
        }
    }
}

/// A TCP port an application listens on, within 1024–65535 (business rule 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u16")]
pub struct Port(u16);

impl Port {
    /// Lowest allowed port.
    pub const MIN: Port = Port(PORT_MIN);
    /// Highest allowed port.
    pub const MAX: Port = Port(PORT_MAX);

    /// Parses a port number, refusing privileged and out-of-range values.
    pub fn parse(number: i64) -> Result<Self, ParseError> {
        match u16::try_from(number) {
            Ok(port) if port >= PORT_MIN => Ok(Port(port)),
            _ => Err(ParseError::PortOutOfRange { port: number }),
        }
    }

    /// The port number.
    pub fn get(self) -> u16 {
        self.0
    }
}

/// A secret value encrypted in the browser (AES-GCM via WebCrypto, key never exported).
///
/// Text form: `enc:v1:<keyId>:<nonce>:<ciphertext>`, each part base64url. The model has no
/// way to hold a clear-text secret, so nothing built from it (IndexedDB records, the server
/// mirror, backups) can carry one: clear text exists only transiently in the browser while
/// sealing or while starting the process in the VM.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SealedSecret(String);

impl SealedSecret {
    /// Prefix of every sealed value.
    pub const PREFIX: &'static str = "enc:v1:";
    /// AES-GCM's nonce: 12 bytes, 16 base64url characters.
    pub const NONCE_CHARS: usize = 16;
    /// AES-GCM's authentication tag, at the end of every ciphertext.
    pub const TAG_BYTES: usize = 16;
    /// The largest clear text sealed (a token or an environment value, not a file).
    pub const MAX_CLEAR_BYTES: usize = 16 * 1024;
    /// The longest key id.
    pub const MAX_KEY_ID_CHARS: usize = 64;

    /// Parses the text form of a sealed secret: the prefix, three base64url parts, a
    /// 12-byte nonce, a ciphertext at least as long as the tag and at most
    /// [`MAX_CLEAR_BYTES`](Self::MAX_CLEAR_BYTES) of clear text plus the tag.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let Some(rest) = text.strip_prefix(Self::PREFIX) else {
            return Err(ParseError::SealedSecret {
                reason: "missing 'enc:v1:' prefix",
            });
        };
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() != 3 {
            return Err(ParseError::SealedSecret {
                reason: "expected keyId:nonce:ciphertext",
            });
        }
        if parts
            .iter()
            .any(|part| part.is_empty() || !part.chars().all(is_base64url_char))
        {
            return Err(ParseError::SealedSecret {
                reason: "parts must be non-empty base64url",
            });
        }
        let refuse = |reason| Err(ParseError::SealedSecret { reason });
        if parts[0].len() > Self::MAX_KEY_ID_CHARS {
            return refuse("the key id is longer than 64 characters");
        }
        if parts[1].len() != Self::NONCE_CHARS {
            return refuse("the nonce is not 12 bytes (16 base64url characters)");
        }
        let ciphertext = parts[2].len();
        if ciphertext % 4 == 1 {
            return refuse("the ciphertext is not whole base64url");
        }
        let bytes = ciphertext * 3 / 4;
        if bytes < Self::TAG_BYTES {
            return refuse("the ciphertext is shorter than its 16-byte authentication tag");
        }
        if bytes > Self::MAX_CLEAR_BYTES + Self::TAG_BYTES {
            return refuse("the sealed value is over the 16 KiB limit");
        }
        Ok(SealedSecret(text.to_owned()))
    }

    /// Builds the text form from its parts (each base64url).
    pub fn from_parts(key_id: &str, nonce: &str, ciphertext: &str) -> Result<Self, ParseError> {
        Self::parse(&format!("{}{key_id}:{nonce}:{ciphertext}", Self::PREFIX))
    }

    /// The id of the browser-held key that sealed this value.
    pub fn key_id(&self) -> &str {
        self.part(0)
    }

    /// The base64url nonce.
    pub fn nonce(&self) -> &str {
        self.part(1)
    }

    /// The base64url ciphertext.
    pub fn ciphertext(&self) -> &str {
        self.part(2)
    }

    /// The full text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn part(&self, index: usize) -> &str {
        self.0[Self::PREFIX.len()..]
            .split(':')
            .nth(index)
            .unwrap_or_default()
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "SealedSecret(key {})", self.key_id())
    }
}

/// A SHA-256 digest as 64 lowercase hex digits (what `sha256sum`, apt indexes and WebCrypto
/// hex give). Only [`Sha256::parse`] makes one, and deserialization goes through it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(String);

impl Sha256 {
    /// Digits in the text form.
    pub const HEX_LEN: usize = 64;

    /// Accepts exactly 64 characters `0-9a-f` (upper case is refused: callers that read a
    /// source which may use it lowercase first).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let valid = text.len() == Self::HEX_LEN
            && text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if valid {
            Ok(Sha256(text.to_owned()))
        } else {
            Err(ParseError::Sha256 {
                value: text.to_owned(),
            })
        }
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_base64url_char(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '=')
}

macro_rules! string_newtype_conversions {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = ParseError;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                Self::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl FromStr for $name {
            type Err = ParseError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype_conversions!(AppName);
string_newtype_conversions!(PackageId);
string_newtype_conversions!(SealedSecret);
string_newtype_conversions!(Sha256);

impl fmt::Display for AppName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Display for PackageId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl TryFrom<i64> for Port {
    type Error = ParseError;

    fn try_from(number: i64) -> Result<Self, Self::Error> {
        Port::parse(number)
    }
}

impl From<Port> for u16 {
    fn from(port: Port) -> u16 {
        port.0
    }
}

impl FromStr for Port {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let number = text
            .trim()
            .parse::<i64>()
            .map_err(|_| ParseError::UnknownVariant {
                kind: "port",
                value: text.to_owned(),
            })?;
        Port::parse(number)
    }
}

impl fmt::Display for Port {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_name_table() {
        let cases: &[(&str, bool)] = &[
            ("blog", true),
            ("My-App_2.0", true),
            ("ab", false),
            (&"a".repeat(50), true),
            (&"a".repeat(51), false),
            ("-blog", false),
            ("blog.", false),
            ("my app", false),
            ("caf\u{e9}", false),
            ("API", false),
            ("sw.js", false),
            ("healthz", false),
            ("", false),
        ];
        for (text, valid) in cases {
            assert_eq!(AppName::parse(text).is_ok(), *valid, "{text}");
        }
        assert_eq!(AppName::problems("a!").len(), 3);
        let name = AppName::parse("MyBlog").expect("valid");
        assert_eq!(name.normalized(), "myblog");
        assert_eq!(name.to_string(), "MyBlog");
        assert_eq!(name.as_str(), "MyBlog");
    }

    #[test]
    fn package_id_table() {
        let cases: &[(&str, bool)] = &[
            ("nodejs-20", true),
            ("libstdc++6", true),
            ("python3.11", true),
            ("n", false),
            ("Nodejs", false),
            ("-node", false),
            ("node js", false),
            (&"a".repeat(65), false),
        ];
        for (text, valid) in cases {
            assert_eq!(PackageId::parse(text).is_ok(), *valid, "{text}");
        }
        let id = PackageId::parse("nodejs-20").expect("valid");
        assert!(id.is_in_family("nodejs"));
        assert!(!id.is_in_family("node"));
        assert!(!id.is_in_family("python"));
        assert!(PackageId::parse("python311")
            .expect("valid")
            .is_in_family("python"));
        assert!(PackageId::parse("nginx")
            .expect("valid")
            .is_in_family("nginx"));
    }

    #[test]
    fn port_table() {
        for (number, valid) in [
            (1023, false),
            (1024, true),
            (65535, true),
            (65536, false),
            (-1, false),
        ] {
            assert_eq!(Port::parse(number).is_ok(), valid, "{number}");
        }
        assert_eq!("8080".parse::<Port>().map(Port::get), Ok(8080));
        assert!("eighty".parse::<Port>().is_err());
        assert_eq!(Port::MIN.get(), 1024);
        assert_eq!(Port::MAX.to_string(), "65535");
        assert!(serde_json::from_str::<Port>("80").is_err());
        assert_eq!(
            serde_json::to_string(&Port::parse(3000).expect("valid")).ok(),
            Some("3000".into())
        );
    }

    #[test]
    fn sealed_secret_parts_and_refusals() {
        const NONCE: &str = "AAECAwQFBgcICQoL";
        const CIPHERTEXT: &str = "Y2lwaGVydGV4dC1hbmQtaXRzLXRhZw";
        let secret = SealedSecret::from_parts("k1", NONCE, CIPHERTEXT).expect("valid");
        assert_eq!(secret.key_id(), "k1");
        assert_eq!(secret.nonce(), NONCE);
        assert_eq!(secret.ciphertext(), CIPHERTEXT);
        assert!(!format!("{secret:?}").contains(CIPHERTEXT));
        let long_key = "k".repeat(65);
        let short = "A".repeat(20);
        let huge = "A".repeat((SealedSecret::MAX_CLEAR_BYTES + 17) * 4 / 3 + 4);
        let bad_cases: [(String, &str); 9] = [
            ("hunter2".into(), "prefix"),
            ("enc:v1:a:b".into(), "keyId:nonce:ciphertext"),
            (format!("enc:v1:a:{NONCE}:c d"), "base64url"),
            (format!("enc:v1::{NONCE}:{CIPHERTEXT}"), "base64url"),
            (format!("enc:v1:{long_key}:{NONCE}:{CIPHERTEXT}"), "key id"),
            (format!("enc:v1:k:bm9uY2U:{CIPHERTEXT}"), "nonce"),
            (format!("enc:v1:k:{NONCE}:{short}"), "tag"),
            (format!("enc:v1:k:{NONCE}:{huge}"), "16 KiB"),
            (
                format!("enc:v1:k:{NONCE}:{CIPHERTEXT}AAA"),
                "whole base64url",
            ),
        ];
        for (bad, reason) in bad_cases {
            let error = SealedSecret::parse(&bad).expect_err(&bad).to_string();
            assert!(error.contains(reason), "{bad}: {error}");
        }
        assert!(serde_json::from_str::<SealedSecret>("\"hunter2\"").is_err());
    }

    #[test]
    fn sha256_table() {
        let digest = "c28a51dcd89387f5b237b70614b60c9c2652b5b0532bc5594202689817224722";
        let cases: &[(&str, bool)] = &[
            (digest, true),
            (&"0".repeat(64), true),
            (&"f".repeat(64), true),
            (&digest.to_ascii_uppercase(), false),
            (&digest[..63], false),
            (&format!("{digest}0"), false),
            (&format!("{}g", &digest[..63]), false),
            (&format!(" {}", &digest[1..]), false),
            ("ab", false),
            ("", false),
        ];
        for (text, valid) in cases {
            assert_eq!(Sha256::parse(text).is_ok(), *valid, "{text}");
        }
        let sha = Sha256::parse(digest).expect("valid");
        assert_eq!((sha.as_str(), sha.to_string().as_str()), (digest, digest));
        assert_eq!(
            serde_json::to_string(&sha).ok(),
            Some(format!("\"{digest}\""))
        );
        assert_eq!(
            serde_json::from_str::<Sha256>(&format!("\"{digest}\"")).ok(),
            Some(sha)
        );
        let refused = serde_json::from_str::<Sha256>("\"nope\"").unwrap_err();
        assert!(refused.to_string().contains("SHA-256"), "{refused}");
    }

    #[test]
    fn newtypes_round_trip_through_json_and_str() {
        let name: AppName = serde_json::from_str("\"blog\"").expect("valid");
        assert_eq!(serde_json::to_string(&name).ok(), Some("\"blog\"".into()));
        assert!(serde_json::from_str::<AppName>("\"api\"").is_err());
        assert_eq!(
            "nginx".parse::<PackageId>().map(String::from),
            Ok("nginx".into())
        );
        assert_eq!("blog".parse::<AppName>().map(|n| n.as_ref().len()), Ok(4));
    }
}
