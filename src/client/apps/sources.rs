//! Where an upload's files, and the url and github sources' archives, come from in the page.
//!
//! - **upload**: files or a whole folder picked in an `<input type=file>` (`multiple` or
//!   `webkitdirectory`), or dropped (files and folders, walked through
//!   `webkitGetAsEntry`): [`Picked`], then [`read_picked`]. One chosen `.zip`, `.tar.gz`,
//!   `.tgz` or `.tar` is an archive; anything else is loose files. The deploy limits are
//!   enforced while listing, before anything is read, so a 2 GiB drop stops at once.
//! - **url**: [`fetch_url`], through the server (`GET /api/sources/url?url=…`), which checks
//!   the URL and host policy and streams the archive back.
//! - **github**: [`fetch_github`], through `POST /api/sources/github`; the token, opened in
//!   this page, travels only in the `X-GitHub-Token` request header, and the commit the ref
//!   resolved to comes back in `X-Commit-Sha`.
//!
//! Downloads are read chunk by chunk for byte progress (the server enforces its size cap
//! and timeout; the unpacked limits are the bundle's). The JavaScript side is `js/app_sources.js`; the server build has twins
//! that return [`SourceError::BrowserOnly`].

use crate::client::apps::bundle::SourceMaterial;
use crate::model::{DeployLimits, SealedSecret};

/// The server route that fetches a URL source.
pub const URL_ROUTE: &str = "/api/sources/url";
/// The server route that fetches a GitHub archive.
pub const GITHUB_ROUTE: &str = "/api/sources/github";
/// The request header that carries the GitHub token (and nothing else does).
pub const TOKEN_HEADER: &str = "X-GitHub-Token";

/// Why a source produced no files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("nothing was chosen: pick or drop files, a folder, or one ZIP or .tar.gz")]
    NothingChosen,
    #[error("more than {limit} files were chosen; a deploy takes at most {limit} files (the deploy limit on file count)")]
    TooManyFiles { limit: u32 },
    #[error("the files chosen come to at least {}; a deploy takes at most {} (the deploy limit on total size)", mib(*total), mib(*limit))]
    TooLarge { total: u64, limit: u64 },
    #[error("'{name}' is {} or more, larger than any archive that fits the deploy limit of {}", mib(*size), mib(*limit))]
    ArchiveTooLarge { name: String, size: u64, limit: u64 },
    #[error("'{name}' is {}, larger than the {} a file here may be", mib(*size), mib(*limit))]
    FileTooLarge { name: String, size: u64, limit: u64 },
    #[error("'{name}' is not text (UTF-8): a backup is a JSON file")]
    NotText { name: String },
    #[error("'{path}' could not be read ({reason}); was it changed or removed while being read?")]
    Unreadable { path: String, reason: String },
    /// The server refused or failed; its message, for the user.
    #[error("{0}")]
    Server(String),
    #[error("{0}")]
    Network(String),
    #[error("the server did not say which commit the archive is (no X-Commit-Sha header)")]
    NoCommit,
    #[error("the GitHub token could not be opened: {0}")]
    Token(crate::client::secrets::SecretError),
    #[error("the browser failed: {0}")]
    Browser(String),
    #[error("this needs the page's JavaScript")]
    BrowserOnly,
}

/// How far reading picked files has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadProgress {
    pub files_done: usize,
    pub files_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// Whether a file name is one of the archives an upload takes as a whole.
pub fn is_archive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".zip", ".tar.gz", ".tgz", ".tar"]
        .iter()
        .any(|extension| lower.len() > extension.len() && lower.ends_with(extension))
}

/// The largest archive that could still unpack within the limits: the total size plus a tar
/// header and padding (1 KiB) per allowed entry. ZIP and gzip never grow what they hold by
/// more, so anything larger is refused before it is read or downloaded in full.
pub fn archive_allowance(limits: &DeployLimits) -> u64 {
    limits
        .max_total_bytes
        .saturating_add(u64::from(limits.max_files).saturating_mul(1024))
}

/// Checks a listing of `count` files of `total` bytes against the limits.
pub fn check_listing(count: usize, total: u64, limits: &DeployLimits) -> Result<(), SourceError> {
    if count > limits.max_files as usize {
        return Err(SourceError::TooManyFiles {
            limit: limits.max_files,
        });
    }
    if total > limits.max_total_bytes {
        return Err(SourceError::TooLarge {
            total,
            limit: limits.max_total_bytes,
        });
    }
    Ok(())
}

/// The server route that fetches `url` (the URL percent-encoded as a query value).
pub fn url_request(url: &str) -> String {
    format!("{URL_ROUTE}?url={}", percent_encode(url))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The JSON body of a GitHub fetch (the token is not in it: it goes in [`TOKEN_HEADER`]).
pub fn github_body(repository: &str, branch: Option<&str>, commit: Option<&str>) -> String {
    serde_json::json!({
        "repository": repository,
        "branch": branch,
        "commit": commit,
    })
    .to_string()
}

/// The message for a refused request: an `AppError` body's message, a short plain-text
/// body, or the HTTP status.
pub fn error_message(status: u16, status_text: &str, body: &str) -> String {
    if let Ok(error) = serde_json::from_str::<crate::error::AppError>(body) {
        return error.to_string();
    }
    let text = body.trim();
    if !text.is_empty() && text.len() <= 500 && !text.starts_with('<') {
        return text.to_string();
    }
    format!("the server answered HTTP {status} {status_text}")
        .trim()
        .to_string()
}

/// The archive's name: the server's `Content-Disposition` file name, else the last
/// segment of the URL's path, else `fallback`.
pub fn download_name(disposition: &str, url: &str, fallback: &str) -> String {
    let disposition = disposition.trim();
    if !disposition.is_empty() && !disposition.contains(['/', '\\']) {
        return disposition.to_string();
    }
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    match path.split_once('/') {
        Some((_, path)) => match path.rsplit('/').next() {
            Some(last) if !last.is_empty() => last.to_string(),
            _ => fallback.to_string(),
        },
        None => fallback.to_string(),
    }
}

/// The message for a download the server ended early: it stops at its size cap and
/// timeout.
pub fn broke_off(received: u64, server_limit: u64, detail: &str) -> String {
    let limit = if server_limit > 0 {
        format!(
            "the server stops downloads over {} or past its timeout",
            mib(server_limit)
        )
    } else {
        "the server stops downloads over its size limit or past its timeout".to_string()
    };
    format!(
        "the download broke off after {} ({detail}); {limit}",
        mib(received)
    )
}

/// Whether a commit SHA the server gave back looks like one (40 or 64 hex digits).
pub fn is_commit_sha(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Files or folders picked or dropped, captured while the event was being handled (a drop's
/// contents are gone once its handler returns). Read them with [`read_picked`].
pub struct Picked {
    #[cfg(feature = "hydrate")]
    items: js_sys::Array,
}

impl Picked {
    /// What an `<input type=file>` (`multiple` or `webkitdirectory`) holds now; call it in
    /// the input's `change` handler.
    pub fn from_input(input: &leptos::web_sys::HtmlInputElement) -> Self {
        #[cfg(feature = "hydrate")]
        {
            Picked {
                items: browser::capture_input(input),
            }
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = input;
            Picked {}
        }
    }

    /// What a drop carries (files and whole folders); call it in the `drop` handler itself,
    /// before any `await`. It also prevents the browser from opening the files.
    pub fn from_drop(event: &leptos::web_sys::DragEvent) -> Self {
        #[cfg(feature = "hydrate")]
        {
            Picked {
                items: browser::capture_drop(event),
            }
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = event;
            Picked {}
        }
    }

    /// The number of things chosen (files, or dropped folders counted once).
    pub fn len(&self) -> usize {
        #[cfg(feature = "hydrate")]
        {
            self.items.length() as usize
        }
        #[cfg(not(feature = "hydrate"))]
        {
            0
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The one file picked, as UTF-8 text, with its name (a backup file). Refused, before
    /// reading, when nothing or a folder was picked or the file is over `max_bytes`.
    /// The first picked file's name (empty when nothing was picked).
    pub fn file_name(&self) -> String {
        #[cfg(feature = "hydrate")]
        {
            browser::text_field(&browser::field(&self.items.get(0), "file"), "name")
        }
        #[cfg(not(feature = "hydrate"))]
        String::new()
    }

    pub async fn single_text(&self, max_bytes: u64) -> Result<(String, String), SourceError> {
        #[cfg(feature = "hydrate")]
        {
            let item = self.items.get(0);
            let file = browser::field(&item, "file");
            if file.is_undefined() || file.is_null() {
                return Err(SourceError::NothingChosen);
            }
            let name = browser::text_field(&file, "name");
            let size = browser::number_field(&file, "size").max(0.0) as u64;
            if size > max_bytes {
                return Err(SourceError::FileTooLarge {
                    name,
                    size,
                    limit: max_bytes,
                });
            }
            let bytes = browser::file_bytes(&file, &name).await?;
            let text = String::from_utf8(bytes)
                .map_err(|_| SourceError::NotText { name: name.clone() })?;
            Ok((name, text))
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = max_bytes;
            Err(SourceError::BrowserOnly)
        }
    }
}

#[cfg(feature = "hydrate")]
impl Picked {
    /// The one picked file as the browser's `File`, with its name and size.
    pub(super) fn single_file(&self) -> Result<(String, u64, wasm_bindgen::JsValue), SourceError> {
        let file = browser::field(&self.items.get(0), "file");
        if file.is_undefined() || file.is_null() {
            return Err(SourceError::NothingChosen);
        }
        let name = browser::text_field(&file, "name");
        let size = browser::number_field(&file, "size").max(0.0) as u64;
        Ok((name, size, file))
    }
}

/// Reads what was picked or dropped: one archive as [`SourceMaterial::Archive`], anything
/// else as [`SourceMaterial::Files`] (paths `/`-separated, a folder's own name first;
/// browsers don't expose the executable bit, so it is unset). Refuses, before reading, more
/// files or bytes than `limits` allow; reads file by file, giving the page its turn in
/// between, and calls `progress` after each.
pub async fn read_picked(
    picked: Picked,
    limits: DeployLimits,
    progress: impl Fn(ReadProgress),
) -> Result<SourceMaterial, SourceError> {
    #[cfg(feature = "hydrate")]
    {
        browser::read_picked(picked, limits, progress).await
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (picked, limits, progress);
        Err(SourceError::BrowserOnly)
    }
}

/// Has the server fetch `url` (its URL and host policy, size cap and timeout apply there)
/// and downloads the archive, calling `progress(bytes, total if known)` as it arrives.
pub async fn fetch_url(
    url: &str,
    progress: impl Fn(u64, Option<u64>),
) -> Result<SourceMaterial, SourceError> {
    #[cfg(feature = "hydrate")]
    {
        let download = browser::download(&url_request(url), "GET", None, None, &progress).await?;
        Ok(SourceMaterial::Archive {
            name: download_name(&download.name, url, "download.tar.gz"),
            bytes: download.bytes,
        })
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (url, progress);
        Err(SourceError::BrowserOnly)
    }
}

/// Has the server fetch `repository` (`owner/name`) at `branch` or `commit` as a zipball
/// from the GitHub API, with `token` (opened here; sent only in [`TOKEN_HEADER`]) for a
/// private repository. Gives the archive and the commit SHA the ref resolved to (lower
/// case).
pub async fn fetch_github(
    repository: &str,
    branch: Option<&str>,
    commit: Option<&str>,
    token: Option<&SealedSecret>,
    progress: impl Fn(u64, Option<u64>),
) -> Result<(SourceMaterial, String), SourceError> {
    #[cfg(feature = "hydrate")]
    {
        let token = match token {
            Some(sealed) => Some(
                crate::client::secrets::unseal(sealed)
                    .await
                    .map_err(SourceError::Token)?,
            ),
            None => None,
        };
        let body = github_body(repository, branch, commit);
        let download = browser::download(
            GITHUB_ROUTE,
            "POST",
            Some(&body),
            token.as_deref(),
            &progress,
        )
        .await?;
        if !is_commit_sha(&download.commit) {
            return Err(SourceError::NoCommit);
        }
        let fallback = format!("{}.zip", repository.replace('/', "-"));
        let name = download_name(&download.name, "", &fallback);
        Ok((
            SourceMaterial::Archive {
                name,
                bytes: download.bytes,
            },
            download.commit.to_ascii_lowercase(),
        ))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (repository, branch, commit, token, progress);
        Err(SourceError::BrowserOnly)
    }
}

#[cfg(feature = "hydrate")]
pub(super) mod browser {
    //! The browser side: `js/app_sources.js`.

    use js_sys::{Array, Reflect, Uint8Array};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    use super::*;
    use crate::client::apps::bundle::SourceFile;
    use crate::client::vm::bridge::{js_error, js_message, now_ms, sleep};

    #[wasm_bindgen(module = "/js/app_sources.js")]
    extern "C" {
        #[wasm_bindgen(js_name = captureInput)]
        fn capture_input_js(input: &JsValue) -> Array;

        #[wasm_bindgen(js_name = captureDrop)]
        fn capture_drop_js(event: &JsValue) -> Array;

        #[wasm_bindgen(js_name = listPicked, catch)]
        async fn list_picked(
            picked: &Array,
            max_files: u32,
            max_bytes: f64,
        ) -> Result<JsValue, JsValue>;

        #[wasm_bindgen(js_name = readFileBytes, catch)]
        async fn read_file_bytes(file: &JsValue) -> Result<JsValue, JsValue>;

        #[wasm_bindgen(js_name = openSource, catch)]
        async fn open_source(
            url: &str,
            method: &str,
            body: Option<String>,
            headers: &JsValue,
        ) -> Result<JsValue, JsValue>;

        #[wasm_bindgen(js_name = readChunk, catch)]
        async fn read_chunk(reader: &JsValue) -> Result<JsValue, JsValue>;

    }

    pub(super) fn capture_input(input: &leptos::web_sys::HtmlInputElement) -> Array {
        capture_input_js(input.as_ref())
    }

    pub(super) fn capture_drop(event: &leptos::web_sys::DragEvent) -> Array {
        capture_drop_js(event.as_ref())
    }

    /// A property of a JavaScript object (`undefined` when it is missing).
    pub(in crate::client::apps) fn field(object: &JsValue, name: &str) -> JsValue {
        Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
    }

    pub(in crate::client::apps) fn text_field(object: &JsValue, name: &str) -> String {
        field(object, name).as_string().unwrap_or_default()
    }

    pub(in crate::client::apps) fn number_field(object: &JsValue, name: &str) -> f64 {
        field(object, name).as_f64().unwrap_or(0.0)
    }

    /// The limit a listing (`listPicked`, `scanDirectory`) stopped at, if it stopped.
    pub(in crate::client::apps) fn listing_within(
        listing: &JsValue,
        limits: &DeployLimits,
    ) -> Result<(), SourceError> {
        match text_field(listing, "over").as_str() {
            "files" => Err(SourceError::TooManyFiles {
                limit: limits.max_files,
            }),
            "bytes" => Err(SourceError::TooLarge {
                total: number_field(listing, "bytes").max(0.0) as u64,
                limit: limits.max_total_bytes,
            }),
            _ => Ok(()),
        }
    }

    /// The bytes of a `File`; `path` names it in the error.
    pub(in crate::client::apps) async fn file_bytes(
        file: &JsValue,
        path: &str,
    ) -> Result<Vec<u8>, SourceError> {
        let bytes = read_file_bytes(file)
            .await
            .map_err(|error| SourceError::Unreadable {
                path: path.to_string(),
                reason: js_message(&error),
            })?;
        bytes
            .dyn_into::<Uint8Array>()
            .map(|bytes| bytes.to_vec())
            .map_err(|_| SourceError::Unreadable {
                path: path.to_string(),
                reason: "the browser gave no bytes".into(),
            })
    }

    /// Lets the page render and handle input when this task has held it for a frame.
    pub(in crate::client::apps) struct Turns {
        since: f64,
    }

    impl Turns {
        pub(in crate::client::apps) fn new() -> Self {
            Turns { since: now_ms() }
        }

        pub(in crate::client::apps) async fn take(&mut self) {
            if now_ms() - self.since > 12.0 {
                sleep(0).await;
                self.since = now_ms();
            }
        }
    }

    pub(super) async fn read_picked(
        picked: Picked,
        limits: DeployLimits,
        progress: impl Fn(ReadProgress),
    ) -> Result<SourceMaterial, SourceError> {
        if picked.items.length() == 0 {
            return Err(SourceError::NothingChosen);
        }
        let listing = list_picked(
            &picked.items,
            limits.max_files,
            archive_allowance(&limits) as f64,
        )
        .await
        .map_err(|error| SourceError::Browser(js_message(&error)))?;
        listing_within(&listing, &limits)?;
        let listed: Array = field(&listing, "files").unchecked_into();
        let entries: Vec<(String, u64, JsValue)> = listed
            .iter()
            .map(|entry| {
                (
                    text_field(&entry, "path"),
                    number_field(&entry, "size").max(0.0) as u64,
                    field(&entry, "file"),
                )
            })
            .collect();
        if entries.is_empty() {
            return Err(SourceError::NothingChosen);
        }
        if let [(path, size, file)] = entries.as_slice() {
            if !path.contains('/') && is_archive_name(path) {
                let allowance = archive_allowance(&limits);
                if *size > allowance {
                    return Err(SourceError::ArchiveTooLarge {
                        name: path.clone(),
                        size: *size,
                        limit: limits.max_total_bytes,
                    });
                }
                let bytes = file_bytes(file, path).await?;
                progress(ReadProgress {
                    files_done: 1,
                    files_total: 1,
                    bytes_done: bytes.len() as u64,
                    bytes_total: *size,
                });
                return Ok(SourceMaterial::Archive {
                    name: path.clone(),
                    bytes,
                });
            }
        }
        let bytes_total = entries.iter().map(|(_, size, _)| *size).sum::<u64>();
        check_listing(entries.len(), bytes_total, &limits)?;
        let mut state = ReadProgress {
            files_done: 0,
            files_total: entries.len(),
            bytes_done: 0,
            bytes_total,
        };
        progress(state);
        let mut turns = Turns::new();
        let mut files = Vec::with_capacity(entries.len());
        for (path, _, file) in entries {
            let bytes = file_bytes(&file, &path).await?;
            state.files_done += 1;
            state.bytes_done += bytes.len() as u64;
            // A file that grew since it was listed still counts against the limit.
            check_listing(state.files_done, state.bytes_done, &limits)?;
            files.push(SourceFile {
                path,
                bytes,
                executable: false,
            });
            progress(state);
            turns.take().await;
        }
        Ok(SourceMaterial::Files(files))
    }

    pub(super) struct Download {
        pub bytes: Vec<u8>,
        pub name: String,
        pub commit: String,
    }

    /// Sends the request and reads the answer chunk by chunk, with progress.
    pub(super) async fn download(
        url: &str,
        method: &str,
        body: Option<&str>,
        token: Option<&str>,
        progress: &impl Fn(u64, Option<u64>),
    ) -> Result<Download, SourceError> {
        let headers = js_sys::Object::new();
        if let Some(token) = token {
            Reflect::set(
                &headers,
                &JsValue::from_str(TOKEN_HEADER),
                &JsValue::from_str(token),
            )
            .map_err(|error| SourceError::Browser(js_message(&error)))?;
        }
        let opened = open_source(url, method, body.map(str::to_string), &headers)
            .await
            .map_err(|error| SourceError::Network(js_error(&error).1))?;
        if !field(&opened, "ok").is_truthy() {
            let status = number_field(&opened, "status") as u16;
            return Err(SourceError::Server(error_message(
                status,
                &text_field(&opened, "statusText"),
                &text_field(&opened, "body"),
            )));
        }
        let reader = field(&opened, "reader");
        let total = number_field(&opened, "total").max(0.0) as u64;
        let total = (total > 0).then_some(total);
        let server_limit = number_field(&opened, "limit").max(0.0) as u64;
        // Content-Length is the server's word, not a reason to reserve without bound.
        let mut bytes = Vec::with_capacity(total.unwrap_or(0).min(64 * 1024 * 1024) as usize);
        progress(0, total);
        loop {
            let chunk = read_chunk(&reader).await.map_err(|error| {
                SourceError::Network(broke_off(
                    bytes.len() as u64,
                    server_limit,
                    &js_message(&error),
                ))
            })?;
            if chunk.is_null() || chunk.is_undefined() {
                break;
            }
            let chunk: Uint8Array = chunk.unchecked_into();
            let start = bytes.len();
            bytes.resize(start + chunk.length() as usize, 0);
            chunk.copy_to(&mut bytes[start..]);
            progress(bytes.len() as u64, total);
        }
        Ok(Download {
            bytes,
            name: text_field(&opened, "name"),
            commit: text_field(&opened, "commit"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names() {
        let cases = [
            ("site.zip", true),
            ("SITE.ZIP", true),
            ("site.tar.gz", true),
            ("site.tgz", true),
            ("site.tar", true),
            ("site.gz", false),
            ("index.html", false),
            (".zip", false),
            ("zip", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_archive_name(name), expected, "{name}");
        }
    }

    #[test]
    fn listings_against_limits() {
        let limits = DeployLimits {
            max_total_bytes: 1000,
            max_files: 3,
        };
        let cases = [
            (0, 0, None),
            (3, 1000, None),
            (4, 10, Some(SourceError::TooManyFiles { limit: 3 })),
            (
                2,
                1001,
                Some(SourceError::TooLarge {
                    total: 1001,
                    limit: 1000,
                }),
            ),
        ];
        for (count, total, expected) in cases {
            assert_eq!(
                check_listing(count, total, &limits).err(),
                expected,
                "{count} files, {total} bytes"
            );
        }
    }

    #[test]
    fn limit_messages_name_the_limit() {
        let message = SourceError::TooLarge {
            total: 2 * 1024 * 1024 * 1024,
            limit: 200 * 1024 * 1024,
        }
        .to_string();
        assert!(message.contains("2048.0 MiB"), "{message}");
        assert!(message.contains("200.0 MiB"), "{message}");
        assert!(message.contains("total size"), "{message}");
        let message = SourceError::TooManyFiles { limit: 20_000 }.to_string();
        assert!(message.contains("20000 files"), "{message}");
    }

    #[test]
    fn archive_allowance_adds_a_header_per_entry() {
        let limits = DeployLimits {
            max_total_bytes: 1000,
            max_files: 2,
        };
        assert_eq!(archive_allowance(&limits), 3048);
        let huge = DeployLimits {
            max_total_bytes: u64::MAX,
            max_files: u32::MAX,
        };
        assert_eq!(archive_allowance(&huge), u64::MAX);
    }

    #[test]
    fn url_requests_encode_the_url() {
        let cases = [
            (
                "https://example.com/a b.tar.gz?x=1&y=2",
                "/api/sources/url?url=https%3A%2F%2Fexample.com%2Fa%20b.tar.gz%3Fx%3D1%26y%3D2",
            ),
            ("http://h/é", "/api/sources/url?url=http%3A%2F%2Fh%2F%C3%A9"),
        ];
        for (url, expected) in cases {
            assert_eq!(url_request(url), expected);
        }
    }

    #[test]
    fn github_body_has_no_token() {
        let body = github_body("octo/site", Some("main"), None);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"repository": "octo/site", "branch": "main", "commit": null})
        );
    }

    #[test]
    fn error_messages() {
        let app_error = serde_json::to_string(&crate::error::AppError::invalid(
            "the host 127.0.0.1 is a loopback address",
            vec![],
        ))
        .unwrap();
        let cases = [
            (
                400,
                "Bad Request",
                app_error.as_str(),
                "the host 127.0.0.1 is a loopback address",
            ),
            (
                502,
                "Bad Gateway",
                "upstream timed out",
                "upstream timed out",
            ),
            (
                500,
                "Internal Server Error",
                "<html>oops</html>",
                "the server answered HTTP 500 Internal Server Error",
            ),
            (404, "", "", "the server answered HTTP 404"),
        ];
        for (status, text, body, expected) in cases {
            assert_eq!(error_message(status, text, body), expected, "{body}");
        }
    }

    #[test]
    fn download_names() {
        let cases = [
            ("site.tar.gz", "https://h/x.zip", "f", "site.tar.gz"),
            ("", "https://h/dir/x.zip?token=1#top", "f", "x.zip"),
            ("", "https://h/", "f", "f"),
            ("", "https://h", "f", "f"),
            ("../evil", "https://h/a.tgz", "f", "a.tgz"),
            ("", "", "octo-site.zip", "octo-site.zip"),
        ];
        for (disposition, url, fallback, expected) in cases {
            assert_eq!(download_name(disposition, url, fallback), expected, "{url}");
        }
    }

    #[test]
    fn broken_off_downloads_name_the_server_limit() {
        assert_eq!(
            broke_off(1024 * 1024, 2 * 1024 * 1024, "network error"),
            "the download broke off after 1.0 MiB (network error); the server stops downloads over 2.0 MiB or past its timeout"
        );
        assert!(broke_off(0, 0, "x").contains("its size limit"));
    }

    #[test]
    fn commit_shas() {
        let cases = [
            ("0123456789abcdef0123456789abcdef01234567", true),
            ("0123456789ABCDEF0123456789abcdef01234567", true),
            ("0123456789abcdef", false),
            ("", false),
            ("g123456789abcdef0123456789abcdef01234567", false),
        ];
        for (sha, expected) in cases {
            assert_eq!(is_commit_sha(sha), expected, "{sha}");
        }
    }
}
