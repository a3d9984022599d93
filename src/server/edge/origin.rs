//! Where a write may come from: the public origin, and the cross-site request check of `/api`.
//!
//! Pure rules with their table of cases. A browser marks every request with `Sec-Fetch-Site`
//! and, for writes, `Origin`; a request that carries neither is not from a browser page, so no
//! cookie can have been ridden on by another site (CSRF needs a victim's browser).

/// The origin the server is reached at: scheme, host and port, lower-cased and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin {
    scheme: &'static str,
    host: String,
    port: u16,
}

/// Why a configured public origin is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the public origin “{given}” is not valid: {reason} (expected e.g. https://apps.example.com)"
)]
pub struct OriginError {
    given: String,
    reason: &'static str,
}

impl PublicOrigin {
    /// Parses `http(s)://host[:port]` (no path, query or user info).
    pub fn parse(text: &str) -> Result<Self, OriginError> {
        let error = |reason| OriginError {
            given: text.to_string(),
            reason,
        };
        let lower = text.trim().trim_end_matches('/').to_ascii_lowercase();
        let (scheme, rest, default_port) = if let Some(rest) = lower.strip_prefix("https://") {
            ("https", rest, 443)
        } else if let Some(rest) = lower.strip_prefix("http://") {
            ("http", rest, 80)
        } else {
            return Err(error("only http:// and https:// origins exist"));
        };
        if rest.is_empty() {
            return Err(error("the host is missing"));
        }
        if rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(error("an origin has no path, query, fragment or user name"));
        }
        let (host, port) = split_authority(rest, default_port).ok_or_else(|| error("bad port"))?;
        Ok(Self {
            scheme,
            host: host.to_string(),
            port,
        })
    }

    /// Whether browsers reach the server over TLS.
    pub fn is_tls(&self) -> bool {
        self.scheme == "https"
    }
}

/// Splits `host[:port]` (IPv6 in brackets); the default port when none is given.
fn split_authority(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let host = &authority[..=end];
        return match &authority[end + 1..] {
            "" => Some((host, default_port)),
            port => Some((host, port.strip_prefix(':')?.parse().ok()?)),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Some((host, port.parse().ok()?)),
        Some(_) => None,
        None => Some((authority, default_port)),
    }
}

/// What the cross-site check reads from a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteRequest<'a> {
    /// `Sec-Fetch-Site`.
    pub fetch_site: Option<&'a str>,
    /// `Origin`.
    pub origin: Option<&'a str>,
    /// `Host`.
    pub host: Option<&'a str>,
}

/// Whether a state-changing request may go on; the reason when it may not.
pub fn check_write(
    public: Option<&PublicOrigin>,
    request: WriteRequest<'_>,
) -> Result<(), &'static str> {
    match request.fetch_site.map(str::to_ascii_lowercase).as_deref() {
        None | Some("same-origin") | Some("none") => {}
        Some(_) => return Err("another site's page may not change this workspace"),
    }
    let Some(origin) = request.origin else {
        return Ok(());
    };
    let origin = PublicOrigin::parse(origin).map_err(|_| "the request's origin is not valid")?;
    let expected = match public {
        Some(public) => public.clone(),
        None => {
            // Without a configured origin, the page must come from the host it asked.
            let host = request
                .host
                .ok_or("the request names no host")?
                .to_ascii_lowercase();
            let default_port = if origin.is_tls() { 443 } else { 80 };
            let (host, port) =
                split_authority(&host, default_port).ok_or("the request's host is not valid")?;
            PublicOrigin {
                scheme: origin.scheme,
                host: host.to_string(),
                port,
            }
        }
    };
    if origin == expected {
        Ok(())
    } else {
        Err("another site's page may not change this workspace")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_origins_parse_strictly() {
        let cases = [
            (
                "https://apps.example.com",
                Some(("https", "apps.example.com", 443)),
            ),
            (
                "HTTPS://Apps.Example.com/",
                Some(("https", "apps.example.com", 443)),
            ),
            ("http://127.0.0.1:3000", Some(("http", "127.0.0.1", 3000))),
            ("http://[::1]:8080", Some(("http", "[::1]", 8080))),
            ("http://[::1]", Some(("http", "[::1]", 80))),
            ("ftp://example.com", None),
            ("https://", None),
            ("https://example.com/path", None),
            ("https://user@example.com", None),
            ("https://example.com:99999", None),
            ("https://:443", None),
            ("null", None),
        ];
        for (text, expected) in cases {
            let parsed = PublicOrigin::parse(text).ok();
            let parsed = parsed
                .as_ref()
                .map(|origin| (origin.scheme, origin.host.as_str(), origin.port));
            assert_eq!(parsed, expected, "{text}");
        }
    }

    #[test]
    fn writes_from_other_sites_are_refused() {
        let public = PublicOrigin::parse("https://apps.example.com").ok();
        let request = |fetch_site, origin, host| WriteRequest {
            fetch_site,
            origin,
            host,
        };
        let host = Some("127.0.0.1:3000");
        let cases: [(Option<&PublicOrigin>, WriteRequest, bool); 14] = [
            // Not a browser page: nothing to ride on.
            (None, request(None, None, host), true),
            // The page itself.
            (
                None,
                request(Some("same-origin"), Some("http://127.0.0.1:3000"), host),
                true,
            ),
            (
                None,
                request(None, Some("http://127.0.0.1:3000"), host),
                true,
            ),
            // Typed into the address bar or a bookmark.
            (None, request(Some("none"), None, host), true),
            // Another site, or a sibling subdomain.
            (
                None,
                request(Some("cross-site"), Some("https://evil.example"), host),
                false,
            ),
            (
                None,
                request(Some("same-site"), Some("http://127.0.0.1:3000"), host),
                false,
            ),
            (None, request(Some("Cross-Site"), None, host), false),
            // An Origin that does not match the Host (an older browser without Fetch metadata).
            (
                None,
                request(None, Some("https://evil.example"), host),
                false,
            ),
            (
                None,
                request(None, Some("http://127.0.0.1:3001"), host),
                false,
            ),
            (None, request(None, Some("null"), host), false),
            (
                None,
                request(None, Some("http://127.0.0.1:3000"), None),
                false,
            ),
            // A configured origin is the only one accepted.
            (
                public.as_ref(),
                request(None, Some("https://apps.example.com"), host),
                true,
            ),
            (
                public.as_ref(),
                request(None, Some("http://apps.example.com"), host),
                false,
            ),
            (
                public.as_ref(),
                request(
                    Some("same-origin"),
                    Some("https://apps.example.com:8443"),
                    host,
                ),
                false,
            ),
        ];
        for (public, request, allowed) in cases {
            assert_eq!(check_write(public, request).is_ok(), allowed, "{request:?}");
        }
    }
}
