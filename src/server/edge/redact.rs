//! What of a request may be logged: URIs with share tokens and secret parameters masked.

/// Query parameters whose values never reach the log.
const SECRET_PARAMETERS: [&str; 6] = ["token", "share", "key", "secret", "password", "code"];

/// The path and query of a request as the log shows them: a status page's share token and the
/// values of secret-looking query parameters are replaced by `***`.
pub fn loggable_uri(path: &str, query: Option<&str>) -> String {
    let path = match path.strip_prefix("/status/") {
        Some(_) => "/status/***".to_string(),
        None => path.to_string(),
    };
    let Some(query) = query.filter(|query| !query.is_empty()) else {
        return path;
    };
    let parameters: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => {
                let lower = key.to_ascii_lowercase();
                if SECRET_PARAMETERS
                    .iter()
                    .any(|secret| lower.contains(secret))
                {
                    format!("{key}=***")
                } else {
                    pair.to_string()
                }
            }
            None => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", parameters.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_reach_the_log() {
        let token = "ab".repeat(32);
        let status_path = format!("/status/{token}");
        let cases = [
            ("/", None, "/".to_string()),
            ("/applications/blog", None, "/applications/blog".to_string()),
            (status_path.as_str(), None, "/status/***".to_string()),
            (
                status_path.as_str(),
                Some("x=1"),
                "/status/***?x=1".to_string(),
            ),
            (
                "/packages",
                Some("q=nginx&category=web-server"),
                "/packages?q=nginx&category=web-server".to_string(),
            ),
            (
                "/workspace",
                Some("linkToken=s3cret&x=1&API_KEY=k&flag"),
                "/workspace?linkToken=***&x=1&API_KEY=***&flag".to_string(),
            ),
            ("/a", Some(""), "/a".to_string()),
        ];
        for (path, query, expected) in cases {
            assert_eq!(loggable_uri(path, query), expected, "{path} {query:?}");
        }
    }
}
