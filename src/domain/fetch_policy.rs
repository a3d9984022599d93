//! What the server may fetch on a user's behalf (the `url` and `github` deploy sources):
//! http(s) URLs whose hosts are public unless the operator allows them, redirects counted
//! and each hop checked again, and GitHub repository references and their API paths.
//!
//! Pure: the server resolves names and connects; this module decides. An address is refused
//! when it is loopback, private (RFC 1918, CGNAT 100.64/10, ULA fc00::/7), link-local
//! (169.254/16 with the cloud metadata address, fe80::/10), unspecified, multicast, broadcast
//! or reserved, also inside an IPv4-mapped IPv6 address, unless its host is in the
//! operator's allow list (`--fetch-allow-host`).

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Redirects followed at most for one fetch.
pub const MAX_REDIRECTS: usize = 5;

/// The flag an operator allows a host with, named in refusals.
const ALLOW_FLAG: &str = "--fetch-allow-host";

/// What kind of address an IP is, for the fetch policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    /// RFC 1918 and IPv6 unique-local (fc00::/7).
    Private,
    /// RFC 6598 shared address space (carrier-grade NAT, 100.64.0.0/10).
    SharedAddressSpace,
    /// 169.254.0.0/16 (where cloud metadata services answer) and fe80::/10.
    LinkLocal,
    /// 0.0.0.0/8 and `::`.
    Unspecified,
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 240.0.0.0/4, reserved for future use.
    Reserved,
}

impl AddressClass {
    /// Classifies an address; an IPv4-mapped IPv6 address is classified as its IPv4 address.
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::of_v4(v4),
                None => Self::of_v6(v6),
            },
        }
    }

    fn of_v4(address: Ipv4Addr) -> Self {
        let [a, b, ..] = address.octets();
        if address.is_broadcast() {
            Self::Broadcast
        } else if a == 0 {
            Self::Unspecified
        } else if address.is_loopback() {
            Self::Loopback
        } else if address.is_private() {
            Self::Private
        } else if a == 100 && (64..128).contains(&b) {
            Self::SharedAddressSpace
        } else if address.is_link_local() {
            Self::LinkLocal
        } else if address.is_multicast() {
            Self::Multicast
        } else if a >= 240 {
            Self::Reserved
        } else {
            Self::Public
        }
    }

    fn of_v6(address: Ipv6Addr) -> Self {
        let first = address.segments()[0];
        if address.is_unspecified() {
            Self::Unspecified
        } else if address.is_loopback() {
            Self::Loopback
        } else if first & 0xfe00 == 0xfc00 {
            Self::Private
        } else if first & 0xffc0 == 0xfe80 {
            Self::LinkLocal
        } else if address.is_multicast() {
            Self::Multicast
        } else {
            Self::Public
        }
    }

    /// Whether the server fetches from this class without an allow-list entry.
    pub fn is_public(self) -> bool {
        self == Self::Public
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Public => "a public address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::SharedAddressSpace => "a shared (carrier-grade NAT) address",
            Self::LinkLocal => "a link-local address (where cloud metadata services answer)",
            Self::Unspecified => "an unspecified address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Reserved => "a reserved address",
        })
    }
}

/// Why the server refuses to fetch a URL (or to follow a redirect).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchPolicyError {
    #[error("“{url}” is not a valid URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{url}: only http and https URLs can be fetched, not {scheme}:")]
    Scheme { url: String, scheme: String },
    #[error("{url}: a URL with a user name or password is not fetched (its credentials would travel to every redirect)")]
    Credentials { url: String },
    #[error("{url} has no host to fetch from")]
    NoHost { url: String },
    #[error("{host} is {class}; the operator can allow it with {ALLOW_FLAG}")]
    RefusedAddress { host: String, class: AddressClass },
    #[error(
        "{host} resolves to {address}, {class}; the operator can allow the host with {ALLOW_FLAG}"
    )]
    RefusedResolved {
        host: String,
        address: IpAddr,
        class: AddressClass,
    },
    #[error("{url} redirected more than {max} times")]
    TooManyRedirects { url: String, max: usize },
    #[error("{url} redirected to “{location}”, which is not a valid URL: {reason}")]
    BadRedirect {
        url: String,
        location: String,
        reason: String,
    },
}

/// Why an allow-list entry is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the allowed fetch host “{entry}” is not valid: {reason} (expected a host name or IP address, optionally with :port, e.g. intranet.example:8080 or [::1])")]
pub struct AllowEntryError {
    entry: String,
    reason: &'static str,
}

/// A host the operator allows whatever its addresses are: a name or an IP literal,
/// optionally limited to one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    host: Host<String>,
    port: Option<u16>,
}

impl AllowedHost {
    /// Parses `host`, `host:port`, `1.2.3.4[:port]` or `[v6][:port]`.
    pub fn parse(entry: &str) -> Result<Self, AllowEntryError> {
        let error = |reason| AllowEntryError {
            entry: entry.to_string(),
            reason,
        };
        let trimmed = entry.trim();
        if trimmed.is_empty() {
            return Err(error("it is empty"));
        }
        if trimmed.contains(['/', '?', '#', '@', ' ']) {
            return Err(error("an entry has no scheme, path, query or user name"));
        }
        // A bare IPv6 address (without brackets) has several colons.
        let authority = match trimmed.parse::<Ipv6Addr>() {
            Ok(v6) => format!("[{v6}]"),
            Err(_) => trimmed.to_string(),
        };
        let url = Url::parse(&format!("http://{authority}/"))
            .map_err(|_| error("it is not a host name or IP address"))?;
        let host = url
            .host()
            .ok_or_else(|| error("the host is missing"))?
            .to_owned();
        // `Url` forgets an explicit default port.
        let port = url
            .port()
            .or_else(|| authority.ends_with(":80").then_some(80));
        Ok(Self { host, port })
    }

    fn matches(&self, host: &Host<&str>, port: u16) -> bool {
        let same_host = match (&self.host, host) {
            (Host::Domain(allowed), Host::Domain(name)) => allowed.as_str() == *name,
            (Host::Ipv4(allowed), Host::Ipv4(address)) => allowed == address,
            (Host::Ipv6(allowed), Host::Ipv6(address)) => allowed == address,
            _ => false,
        };
        same_host && self.port.is_none_or(|allowed| allowed == port)
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ipv6(v6) => write!(f, "[{v6}]")?,
            host => write!(f, "{host}")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// The fetch policy: the operator's allow list and the rules above.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPolicy {
    allowed: Vec<AllowedHost>,
}

/// A URL the policy accepted, and whether its host is on the allow list (then the addresses
/// its name resolves to are not checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget {
    url: Url,
    allowed: bool,
}

impl FetchTarget {
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host name to resolve, when the host is a name and not an IP literal.
    pub fn domain(&self) -> Option<&str> {
        self.url.domain()
    }

    /// The port to connect to (the scheme's default when the URL names none).
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(80)
    }

    /// Whether the operator allows this host (and port) explicitly.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// Whether two targets are the same origin (scheme, host and port).
    pub fn same_origin(&self, other: &Url) -> bool {
        self.url.origin() == other.origin()
    }
}

impl FetchPolicy {
    pub fn new(allowed: Vec<AllowedHost>) -> Self {
        Self { allowed }
    }

    /// This policy with one more allowed host (e.g. the configured GitHub API host).
    pub fn also_allowing(&self, host: AllowedHost) -> Self {
        let mut allowed = self.allowed.clone();
        allowed.push(host);
        Self { allowed }
    }

    /// The allowed host of a URL the operator configured (its host and port).
    pub fn host_of(url: &Url) -> Option<AllowedHost> {
        Some(AllowedHost {
            host: url.host()?.to_owned(),
            port: url.port_or_known_default(),
        })
    }

    /// Parses and checks a URL a user gave.
    pub fn check(&self, text: &str) -> Result<FetchTarget, FetchPolicyError> {
        let url = Url::parse(text.trim()).map_err(|error| FetchPolicyError::BadUrl {
            url: text.to_string(),
            reason: error.to_string(),
        })?;
        self.check_url(url)
    }

    /// Checks a parsed URL: scheme, credentials, and the host's class when it is an IP
    /// literal (a name's addresses are checked with [`FetchPolicy::check_resolved`]).
    pub fn check_url(&self, mut url: Url) -> Result<FetchTarget, FetchPolicyError> {
        url.set_fragment(None);
        let shown = url.to_string();
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchPolicyError::Scheme {
                url: shown,
                scheme: url.scheme().to_string(),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchPolicyError::Credentials { url: shown });
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let host = url
            .host()
            .ok_or_else(|| FetchPolicyError::NoHost { url: shown.clone() })?;
        let allowed = self.allowed.iter().any(|entry| entry.matches(&host, port));
        if !allowed {
            let literal = match host {
                Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
                Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
                Host::Domain(_) => None,
            };
            if let Some(address) = literal {
                let class = AddressClass::of(address);
                if !class.is_public() {
                    return Err(FetchPolicyError::RefusedAddress {
                        host: address.to_string(),
                        class,
                    });
                }
            }
        }
        Ok(FetchTarget { url, allowed })
    }

    /// Checks an address the target's host name resolved to. An allowed host passes; else
    /// the address must be public or itself allowed (as an IP entry for this port).
    pub fn check_resolved(
        &self,
        target: &FetchTarget,
        address: IpAddr,
    ) -> Result<(), FetchPolicyError> {
        if target.allowed {
            return Ok(());
        }
        let literal = match address {
            IpAddr::V4(v4) => Host::Ipv4(v4),
            IpAddr::V6(v6) => Host::Ipv6(v6),
        };
        if self
            .allowed
            .iter()
            .any(|entry| entry.matches(&literal, target.port()))
        {
            return Ok(());
        }
        let class = AddressClass::of(address);
        if class.is_public() {
            Ok(())
        } else {
            Err(FetchPolicyError::RefusedResolved {
                host: target.url.host_str().unwrap_or_default().to_string(),
                address,
                class,
            })
        }
    }
}

/// The redirects of one fetch: counted against [`MAX_REDIRECTS`], each hop checked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectChain {
    start: Url,
    followed: usize,
}

impl RedirectChain {
    pub fn new(start: &FetchTarget) -> Self {
        Self {
            start: start.url.clone(),
            followed: 0,
        }
    }

    /// Redirects followed so far.
    pub fn followed(&self) -> usize {
        self.followed
    }

    /// The next hop after `current` answered with a redirect to `location` (relative
    /// locations resolve against `current`); refused past the limit or by the policy.
    pub fn follow(
        &mut self,
        policy: &FetchPolicy,
        current: &FetchTarget,
        location: &str,
    ) -> Result<FetchTarget, FetchPolicyError> {
        if self.followed >= MAX_REDIRECTS {
            return Err(FetchPolicyError::TooManyRedirects {
                url: self.start.to_string(),
                max: MAX_REDIRECTS,
            });
        }
        let next =
            current
                .url
                .join(location.trim())
                .map_err(|error| FetchPolicyError::BadRedirect {
                    url: current.url.to_string(),
                    location: location.to_string(),
                    reason: error.to_string(),
                })?;
        let target = policy.check_url(next)?;
        self.followed += 1;
        Ok(target)
    }
}

/// Why a GitHub repository, branch or commit is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubRefError {
    #[error("the repository “{given}” is not valid: {reason} (expected owner/repo, e.g. rust-lang/rust)")]
    Repository { given: String, reason: String },
    #[error("the branch “{given}” is not valid: {reason}")]
    Branch { given: String, reason: String },
    #[error("the commit “{given}” is not valid: a commit is 7 to 40 hexadecimal characters")]
    Commit { given: String },
    #[error("GitHub answered “{answer}” where a 40-character commit SHA was expected")]
    ResolvedSha { answer: String },
}

/// A GitHub repository, `owner/repo`, checked against GitHub's character rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubRepository {
    owner: String,
    name: String,
}

impl GitHubRepository {
    /// Parses `owner/repo`: an owner of 1–39 letters, digits and single inner hyphens; a
    /// repository name of 1–100 letters, digits, `.`, `_` and `-`, not `.` or `..`.
    pub fn parse(text: &str) -> Result<Self, GitHubRefError> {
        let error = |reason: &str| GitHubRefError::Repository {
            given: text.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = text.trim();
        let (owner, name) = trimmed
            .split_once('/')
            .ok_or_else(|| error("it has no “/” between the owner and the repository"))?;
        if owner.is_empty() || owner.len() > 39 {
            return Err(error("the owner must be 1 to 39 characters"));
        }
        if !owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(error("the owner may hold only letters, digits and hyphens"));
        }
        if owner.starts_with('-') || owner.ends_with('-') || owner.contains("--") {
            return Err(error(
                "the owner's hyphens must be single and between letters or digits",
            ));
        }
        if name.is_empty() || name.len() > 100 {
            return Err(error("the repository name must be 1 to 100 characters"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(error(
                "the repository name may hold only letters, digits, “.”, “_” and “-”",
            ));
        }
        if name == "." || name == ".." {
            return Err(error("the repository name can't be “.” or “..”"));
        }
        Ok(Self {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }

    /// `{api}/repos/{owner}/{repo}/commits/{ref}`: answers the ref's commit SHA as text when
    /// asked with `Accept: application/vnd.github.sha`.
    pub fn commit_url(&self, api: &Url, reference: &GitHubRef) -> Url {
        let mut url = self.repo_url(api, "commits");
        if let Ok(mut segments) = url.path_segments_mut() {
            match reference {
                GitHubRef::DefaultBranch => {
                    segments.push("HEAD");
                }
                GitHubRef::Branch(branch) => {
                    segments.extend(branch.split('/'));
                }
                GitHubRef::Commit(commit) => {
                    segments.push(commit);
                }
            }
        }
        url
    }

    /// `{api}/repos/{owner}/{repo}/zipball/{sha}`: the commit's archive (GitHub redirects it).
    pub fn zipball_url(&self, api: &Url, sha: &CommitSha) -> Url {
        let mut url = self.repo_url(api, "zipball");
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(sha.as_str());
        }
        url
    }

    fn repo_url(&self, api: &Url, what: &str) -> Url {
        let mut url = api.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(["repos", &self.owner, &self.name, what]);
        }
        url
    }
}

impl fmt::Display for GitHubRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// What to fetch of a repository: its default branch, a branch, or a commit (7–40 hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubRef {
    DefaultBranch,
    Branch(String),
    Commit(String),
}

impl GitHubRef {
    /// From a source's optional branch and commit: a commit, when given, pins the deploy
    /// (the branch then only says where it came from); else the branch; else the default
    /// branch. Blank values count as absent.
    pub fn parse(branch: Option<&str>, commit: Option<&str>) -> Result<Self, GitHubRefError> {
        let present = |value: Option<&str>| {
            value
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_string)
        };
        if let Some(commit) = present(commit) {
            let valid =
                (7..=40).contains(&commit.len()) && commit.chars().all(|c| c.is_ascii_hexdigit());
            return if valid {
                Ok(Self::Commit(commit.to_ascii_lowercase()))
            } else {
                Err(GitHubRefError::Commit { given: commit })
            };
        }
        match present(branch) {
            Some(branch) => {
                check_branch(&branch).map_err(|reason| GitHubRefError::Branch {
                    given: branch.clone(),
                    reason: reason.to_string(),
                })?;
                Ok(Self::Branch(branch))
            }
            None => Ok(Self::DefaultBranch),
        }
    }
}

impl fmt::Display for GitHubRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DefaultBranch => f.write_str("the default branch"),
            Self::Branch(branch) => write!(f, "branch {branch}"),
            Self::Commit(commit) => write!(f, "commit {commit}"),
        }
    }
}

/// The basic rules of `git check-ref-format` for a branch name; the broken rule when not.
fn check_branch(branch: &str) -> Result<(), &'static str> {
    if branch.len() > 255 {
        return Err("a branch name has at most 255 characters");
    }
    if branch.starts_with('-') {
        return Err("a branch name can't start with “-”");
    }
    if branch == "@" {
        return Err("“@” alone is not a branch name");
    }
    if branch.chars().any(|c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return Err("a branch name can't hold spaces, control characters or any of ~ ^ : ? * [ \\");
    }
    if branch.contains("..") {
        return Err("a branch name can't hold “..”");
    }
    if branch.contains("@{") {
        return Err("a branch name can't hold “@{”");
    }
    if branch.starts_with('/') || branch.ends_with('/') || branch.contains("//") {
        return Err("a branch name can't start or end with “/” or hold “//”");
    }
    if branch.ends_with('.') {
        return Err("a branch name can't end with “.”");
    }
    for component in branch.split('/') {
        if component.starts_with('.') {
            return Err("no part of a branch name between slashes can start with “.”");
        }
        if component.ends_with(".lock") {
            return Err("no part of a branch name between slashes can end with “.lock”");
        }
    }
    Ok(())
}

/// A full commit SHA as GitHub resolves a ref to: 40 lower-case hex characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSha(String);

impl CommitSha {
    /// Checks GitHub's answer to the `application/vnd.github.sha` request.
    pub fn parse(answer: &str) -> Result<Self, GitHubRefError> {
        let trimmed = answer.trim();
        if trimmed.len() == 40 && trimmed.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Self(trimmed.to_ascii_lowercase()))
        } else {
            let mut shown: String = trimmed.chars().take(80).collect();
            if trimmed.chars().count() > 80 {
                shown.push('…');
            }
            Err(GitHubRefError::ResolvedSha { answer: shown })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> FetchPolicy {
        FetchPolicy::new(
            entries
                .iter()
                .map(|entry| AllowedHost::parse(entry).expect("a valid entry"))
                .collect(),
        )
    }

    #[test]
    fn addresses_are_classified() {
        use AddressClass::*;
        let cases = [
            ("8.8.8.8", Public),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("100.128.0.1", Public),
            ("169.254.169.254", LinkLocal),
            ("169.254.1.1", LinkLocal),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("224.0.0.1", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("2001:4860:4860::8888", Public),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("ff02::1", Multicast),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:8.8.8.8", Public),
        ];
        for (text, expected) in cases {
            let address: IpAddr = text.parse().expect("an address");
            assert_eq!(AddressClass::of(address), expected, "{text}");
        }
    }

    #[test]
    fn urls_are_checked() {
        let none = FetchPolicy::default();
        let loopback = allow(&["127.0.0.1"]);
        let loopback_port = allow(&["127.0.0.1:8080"]);
        let named = allow(&["intranet.example", "[::1]:9000"]);
        // (policy, url, Ok(allowed) or Err(message))
        let cases: Vec<(&FetchPolicy, &str, Result<bool, &str>)> = vec![
            (&none, "https://example.com/site.zip", Ok(false)),
            (&none, "http://example.com:8080/a.tar.gz#frag", Ok(false)),
            (&none, "http://8.8.8.8/a.zip", Ok(false)),
            (
                &none,
                "http://127.0.0.1/a.zip",
                Err("127.0.0.1 is a loopback address; the operator can allow it with --fetch-allow-host"),
            ),
            // Other spellings of IPv4 literals are normalised before they are checked.
            (&none, "http://2130706433/", Err("127.0.0.1 is a loopback address")),
            (&none, "http://0x7f.1/", Err("127.0.0.1 is a loopback address")),
            (&none, "http://[::1]/", Err("::1 is a loopback address")),
            (&none, "http://[::ffff:192.168.0.1]/", Err("::ffff:192.168.0.1 is a private address")),
            (&none, "http://169.254.169.254/latest/meta-data/", Err("169.254.169.254 is a link-local address (where cloud metadata services answer)")),
            (&none, "http://100.100.100.200/", Err("is a shared (carrier-grade NAT) address")),
            (&none, "http://0.0.0.0:3000/", Err("0.0.0.0 is an unspecified address")),
            (&none, "http://255.255.255.255/", Err("the broadcast address")),
            (&none, "http://[ff02::1]/", Err("a multicast address")),
            (&none, "ftp://example.com/a.zip", Err("ftp://example.com/a.zip: only http and https URLs can be fetched, not ftp:")),
            (&none, "file:///etc/passwd", Err("only http and https URLs can be fetched, not file:")),
            (&none, "javascript:alert(1)", Err("not javascript:")),
            (&none, "https://user:pw@example.com/a.zip", Err("a URL with a user name or password is not fetched")),
            (&none, "not a url", Err("“not a url” is not a valid URL")),
            (&none, "http://", Err("is not a valid URL")),
            (&loopback, "http://127.0.0.1:1234/a.zip", Ok(true)),
            (&loopback_port, "http://127.0.0.1:8080/a.zip", Ok(true)),
            (&loopback_port, "http://127.0.0.1:8081/a.zip", Err("127.0.0.1 is a loopback address")),
            (&named, "http://intranet.example/a.zip", Ok(true)),
            (&named, "http://INTRANET.example:81/a.zip", Ok(true)),
            (&named, "http://[::1]:9000/", Ok(true)),
            (&named, "http://[::1]:9001/", Err("::1 is a loopback address")),
            (&named, "http://other.example/", Ok(false)),
        ];
        for (policy, url, expected) in cases {
            match (policy.check(url), expected) {
                (Ok(target), Ok(allowed)) => {
                    assert_eq!(target.is_allowed(), allowed, "{url}");
                    assert_eq!(target.url().fragment(), None, "{url}");
                }
                (Err(error), Err(message)) => {
                    assert!(error.to_string().contains(message), "{url}: {error}")
                }
                (outcome, expected) => panic!("{url}: {outcome:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn allow_entries_parse() {
        let cases = [
            ("intranet.example", Ok("intranet.example")),
            (" Intranet.Example:8080 ", Ok("intranet.example:8080")),
            ("127.0.0.1:80", Ok("127.0.0.1:80")),
            ("10.0.0.5", Ok("10.0.0.5")),
            ("::1", Ok("[::1]")),
            ("[::1]:3000", Ok("[::1]:3000")),
            ("", Err("it is empty")),
            (
                "http://x.example",
                Err("no scheme, path, query or user name"),
            ),
            ("x.example/path", Err("no scheme, path")),
            ("x.example:notaport", Err("not a host name or IP address")),
        ];
        for (entry, expected) in cases {
            match (AllowedHost::parse(entry), expected) {
                (Ok(host), Ok(shown)) => assert_eq!(host.to_string(), shown, "{entry}"),
                (Err(error), Err(message)) => {
                    assert!(error.to_string().contains(message), "{entry}: {error}")
                }
                (outcome, expected) => panic!("{entry}: {outcome:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn resolved_addresses_are_checked_unless_the_host_is_allowed() {
        let policy = allow(&["intranet.example", "10.9.9.9:8080"]);
        let cases = [
            ("https://example.com/", "93.184.216.34", Ok(())),
            ("https://example.com/", "127.0.0.1", Err("example.com resolves to 127.0.0.1, a loopback address; the operator can allow the host with --fetch-allow-host")),
            ("https://example.com/", "::ffff:10.0.0.1", Err("resolves to ::ffff:10.0.0.1, a private address")),
            ("https://example.com/", "169.254.169.254", Err("a link-local address")),
            ("http://intranet.example/", "10.0.0.1", Ok(())),
            ("http://rebind.example:8080/", "10.9.9.9", Ok(())),
            ("http://rebind.example:8081/", "10.9.9.9", Err("rebind.example resolves to 10.9.9.9")),
        ];
        for (url, address, expected) in cases {
            let target = policy.check(url).expect("the URL passes");
            let address: IpAddr = address.parse().expect("an address");
            match (policy.check_resolved(&target, address), expected) {
                (Ok(()), Ok(())) => {}
                (Err(error), Err(message)) => {
                    assert!(
                        error.to_string().contains(message),
                        "{url} {address}: {error}"
                    )
                }
                (outcome, expected) => {
                    panic!("{url} {address}: {outcome:?}, expected {expected:?}")
                }
            }
        }
    }

    #[test]
    fn redirects_are_counted_and_each_hop_is_checked() {
        let policy = allow(&["127.0.0.1:8000"]);
        let start = policy
            .check("http://127.0.0.1:8000/start")
            .expect("allowed");
        // (location, Ok(next url) or Err(message)), followed in order from `start`
        let hops: [(&str, Result<&str, &str>); 7] = [
            ("/one", Ok("http://127.0.0.1:8000/one")),
            ("two?x=1", Ok("http://127.0.0.1:8000/two?x=1")),
            ("https://example.com/three", Ok("https://example.com/three")),
            ("//example.org/four#part", Ok("https://example.org/four")),
            (
                "http://127.0.0.1:8000/five",
                Ok("http://127.0.0.1:8000/five"),
            ),
            (
                "/six",
                Err("http://127.0.0.1:8000/start redirected more than 5 times"),
            ),
            ("/seven", Err("redirected more than 5 times")),
        ];
        let mut chain = RedirectChain::new(&start);
        let mut current = start;
        for (location, expected) in hops {
            match (chain.follow(&policy, &current, location), expected) {
                (Ok(next), Ok(url)) => {
                    assert_eq!(next.url().as_str(), url, "{location}");
                    current = next;
                }
                (Err(error), Err(message)) => {
                    assert!(error.to_string().contains(message), "{location}: {error}")
                }
                (outcome, expected) => panic!("{location}: {outcome:?}, expected {expected:?}"),
            }
        }
        assert_eq!(chain.followed(), MAX_REDIRECTS);

        // A hop to a refused host or scheme is refused, whatever the first host was.
        let cases = [
            ("http://127.0.0.1:9000/", "127.0.0.1 is a loopback address"),
            ("http://[::1]:8000/", "::1 is a loopback address"),
            ("http://169.254.169.254/", "a link-local address"),
            (
                "file:///etc/passwd",
                "only http and https URLs can be fetched",
            ),
            (
                "http://u:p@example.com/",
                "a URL with a user name or password",
            ),
            ("http://[::1", "is not a valid URL"),
        ];
        for (location, message) in cases {
            let start = policy
                .check("http://127.0.0.1:8000/start")
                .expect("allowed");
            let mut chain = RedirectChain::new(&start);
            let error = chain
                .follow(&policy, &start, location)
                .expect_err("refused");
            assert!(error.to_string().contains(message), "{location}: {error}");
            assert_eq!(chain.followed(), 0, "{location}");
        }
    }

    #[test]
    fn repositories_follow_githubs_rules() {
        let cases = [
            ("rust-lang/rust", Ok("rust-lang/rust")),
            (" demo/site ", Ok("demo/site")),
            ("a/b.c_d-e", Ok("a/b.c_d-e")),
            ("a/.github", Ok("a/.github")),
            ("demo", Err("no “/” between the owner and the repository")),
            ("/site", Err("the owner must be 1 to 39 characters")),
            ("-demo/site", Err("hyphens must be single")),
            ("de--mo/site", Err("hyphens must be single")),
            ("de_mo/site", Err("only letters, digits and hyphens")),
            (
                "demo/",
                Err("the repository name must be 1 to 100 characters"),
            ),
            ("demo/si te", Err("only letters, digits, “.”, “_” and “-”")),
            ("demo/a/b", Err("only letters, digits")),
            ("demo/..", Err("can't be “.” or “..”")),
        ];
        for (given, expected) in cases {
            match (GitHubRepository::parse(given), expected) {
                (Ok(repository), Ok(shown)) => assert_eq!(repository.to_string(), shown),
                (Err(error), Err(message)) => {
                    assert!(error.to_string().contains(message), "{given}: {error}")
                }
                (outcome, expected) => panic!("{given}: {outcome:?}, expected {expected:?}"),
            }
        }
        let long_owner = format!("{}/site", "a".repeat(40));
        assert!(GitHubRepository::parse(&long_owner).is_err());
    }

    #[test]
    fn refs_are_branches_or_commits() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let long_commit = "a".repeat(41);
        let long_branch = "b".repeat(256);
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Result<GitHubRef, &'a str>);
        let cases: Vec<Case> = vec![
            (None, None, Ok(GitHubRef::DefaultBranch)),
            (Some("  "), Some(""), Ok(GitHubRef::DefaultBranch)),
            (Some("main"), None, Ok(GitHubRef::Branch("main".into()))),
            (
                Some("feature/new-ui"),
                None,
                Ok(GitHubRef::Branch("feature/new-ui".into())),
            ),
            (
                Some("release-1.2#x+y"),
                None,
                Ok(GitHubRef::Branch("release-1.2#x+y".into())),
            ),
            (
                Some("main"),
                Some("ABCDEF1"),
                Ok(GitHubRef::Commit("abcdef1".into())),
            ),
            (None, Some(sha), Ok(GitHubRef::Commit(sha.into()))),
            (
                None,
                Some("abc12"),
                Err("the commit “abc12” is not valid: a commit is 7 to 40 hexadecimal characters"),
            ),
            (
                None,
                Some("xyz1234"),
                Err("is not valid: a commit is 7 to 40"),
            ),
            (None, Some(&long_commit), Err("a commit is 7 to 40")),
            (
                Some("-x"),
                None,
                Err("the branch “-x” is not valid: a branch name can't start with “-”"),
            ),
            (Some("a..b"), None, Err("can't hold “..”")),
            (Some("a b"), None, Err("can't hold spaces")),
            (Some("a~1"), None, Err("any of ~ ^ : ? * [ \\")),
            (Some("a:b"), None, Err("any of ~ ^")),
            (Some("a\u{7}"), None, Err("control characters")),
            (Some("a@{1}"), None, Err("can't hold “@{”")),
            (Some("@"), None, Err("“@” alone")),
            (Some("/a"), None, Err("can't start or end with “/”")),
            (Some("a/"), None, Err("can't start or end with “/”")),
            (Some("a//b"), None, Err("hold “//”")),
            (Some("a."), None, Err("can't end with “.”")),
            (Some("a/.b"), None, Err("can start with “.”")),
            (Some("a.lock/b"), None, Err("can end with “.lock”")),
            (Some(&long_branch), None, Err("at most 255 characters")),
        ];
        for (branch, commit, expected) in cases {
            match (GitHubRef::parse(branch, commit), expected) {
                (Ok(reference), Ok(wanted)) => {
                    assert_eq!(reference, wanted, "{branch:?} {commit:?}")
                }
                (Err(error), Err(message)) => assert!(
                    error.to_string().contains(message),
                    "{branch:?} {commit:?}: {error}"
                ),
                (outcome, expected) => {
                    panic!("{branch:?} {commit:?}: {outcome:?}, expected {expected:?}")
                }
            }
        }
    }

    #[test]
    fn api_urls_are_built_under_the_base() {
        let repository = GitHubRepository::parse("demo/site").expect("valid");
        let sha = CommitSha::parse("0123456789ABCDEF0123456789abcdef01234567\n").expect("a sha");
        let cases = [
            (
                "https://api.github.com",
                GitHubRef::DefaultBranch,
                "https://api.github.com/repos/demo/site/commits/HEAD",
            ),
            (
                "https://api.github.com/",
                GitHubRef::Branch("main".into()),
                "https://api.github.com/repos/demo/site/commits/main",
            ),
            (
                "https://ghe.example/api/v3",
                GitHubRef::Branch("feature/x#1+2".into()),
                "https://ghe.example/api/v3/repos/demo/site/commits/feature/x%231+2",
            ),
            (
                "http://127.0.0.1:9000/github/",
                GitHubRef::Commit("abcdef1".into()),
                "http://127.0.0.1:9000/github/repos/demo/site/commits/abcdef1",
            ),
        ];
        for (base, reference, expected) in cases {
            let api = Url::parse(base).expect("a base");
            assert_eq!(
                repository.commit_url(&api, &reference).as_str(),
                expected,
                "{base} {reference}"
            );
        }
        let api = Url::parse("http://127.0.0.1:9000/github").expect("a base");
        assert_eq!(
            repository.zipball_url(&api, &sha).as_str(),
            "http://127.0.0.1:9000/github/repos/demo/site/zipball/0123456789abcdef0123456789abcdef01234567"
        );
    }

    #[test]
    fn resolved_shas_are_checked() {
        let cases = [
            ("0123456789abcdef0123456789abcdef01234567", true),
            ("  0123456789abcdef0123456789abcdef01234567\n", true),
            ("0123456", false),
            ("{\"message\":\"Not Found\"}", false),
            ("g123456789abcdef0123456789abcdef01234567", false),
        ];
        for (answer, valid) in cases {
            assert_eq!(CommitSha::parse(answer).is_ok(), valid, "{answer}");
        }
        let error = CommitSha::parse(&"x".repeat(200)).expect_err("not a sha");
        assert!(error
            .to_string()
            .ends_with("…” where a 40-character commit SHA was expected"));
    }
}
