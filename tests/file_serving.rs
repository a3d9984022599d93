//! How files are sent, whatever the request's headers: property tests of `Range`,
//! `If-Range` and `If-None-Match` on a guest image file and on a package file (the routers
//! driven in-process), symbolic links and deleted files in the package directory, and no
//! on-the-fly gzip of the guest image.
#![cfg(feature = "ssr")]

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use webvm_appserver::server::config::Config;
use webvm_appserver::server::packages::deb::DebBuilder;
use webvm_appserver::server::packages::index_repository;
use webvm_appserver::server::static_files::{routes, GuestImage, StaticFiles};
use webvm_appserver::server::storage::Storage;

const IMAGE_HASH: &str = "0123456789abcdef";
const SNAPSHOT_FILE: &str = "boot-snapshot-v86-0.5.462-256m.bin.gz";

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Bytes whose every offset is recognisable (so a wrong slice can't pass for the right one).
fn patterned(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

/// A guest build directory: `rootfs.ext4` holds `rootfs`, the other boot files are small text.
fn write_guest_image(dir: &Path, rootfs: &[u8]) {
    let mut files = serde_json::Map::new();
    for name in [
        "seabios.bin",
        "vgabios.bin",
        "vmlinuz",
        "initrd.img",
        "rootfs.ext4",
    ] {
        let bytes = if name == "rootfs.ext4" {
            rootfs.to_vec()
        } else {
            format!("contents of {name}").into_bytes()
        };
        std::fs::write(dir.join(name), &bytes).expect("write boot file");
        files.insert(
            name.into(),
            serde_json::json!({ "size": bytes.len(), "sha256": sha256_hex(&bytes) }),
        );
    }
    let manifest = serde_json::json!({
        "hash": IMAGE_HASH,
        "kernelCmdline": "console=ttyS0",
        "files": files,
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("write manifest");
}

/// A gzip boot snapshot and its record; returns the stored (gzip) bytes.
fn write_boot_snapshot(dir: &Path) -> Vec<u8> {
    use std::io::Write;
    let state = vec![7u8; 100_000];
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&state).expect("gzip");
    let encoded = encoder.finish().expect("gzip");
    std::fs::write(dir.join(SNAPSHOT_FILE), &encoded).expect("write snapshot");
    let record = serde_json::json!({
        "schemaVersion": 1, "engine": "v86", "imageHash": IMAGE_HASH,
        "v86Version": "0.5.462", "memoryMb": 256, "savedAt": "2026-01-01T00:00:00Z",
        "size": state.len(), "sha256": sha256_hex(&state), "agentInstance": "agent-1",
        "file": SNAPSHOT_FILE, "encoding": "gzip", "encodedSize": encoded.len(),
        "encodedSha256": sha256_hex(&encoded),
    });
    std::fs::write(
        dir.join("boot-snapshot-v86-0.5.462-256m.json"),
        record.to_string(),
    )
    .expect("write record");
    encoded
}

/// The static-file routes alone, over the guest build in `guest`.
fn guest_router(guest: &Path) -> Router {
    let image = GuestImage::load(guest).expect("guest image loads");
    routes(StaticFiles {
        guest: Some(Arc::new(image)),
        guest_problem: None,
        v86_dir: guest.join("no-v86"),
    })
}

/// A `.deb` whose data member holds `payload` patterned bytes.
fn deb_with_payload(package: &str, payload: usize) -> (String, Vec<u8>) {
    let control = format!(
        "Package: {package}\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@example.org>\nDescription: test package\n"
    );
    let bytes = DebBuilder::new(&control)
        .file(
            &format!("usr/share/{package}/data"),
            &patterned(payload),
            0o644,
        )
        .build()
        .expect("deb");
    (format!("{package}_1.0_all.deb"), bytes)
}

/// Indexes `debs` in a fresh data directory and returns the package route with its config.
async fn package_router(root: &Path, debs: &[(String, Vec<u8>)]) -> (Router, Config) {
    let config = Config::for_data_dir(root.join("data"));
    let dir = config.effective_packages_dir();
    std::fs::create_dir_all(&dir).expect("packages dir");
    for (name, bytes) in debs {
        std::fs::write(dir.join(name), bytes).expect("write deb");
    }
    let storage = Storage::open(&config).await.expect("storage");
    index_repository(&config, &storage).await.expect("index");
    let router = webvm_appserver::server::packages::http::routes(storage, dir);
    (router, config)
}

async fn send(
    router: &Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("body")
        .to_vec();
    (parts.status, parts.headers, body)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

// --- log capture ---------------------------------------------------------------------------

/// Log lines written while the guard lives (this thread's subscriber).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs.clone(), tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// --- the property tests --------------------------------------------------------------------

/// A `Range` field, and what RFC 9110 makes of it.
#[derive(Debug, Clone)]
enum RangeCase {
    Absent,
    /// `first-last` (possibly `last < first`: invalid, ignored).
    Closed(u64, u64),
    /// `first-`.
    Open(u64),
    /// `-suffix`.
    Suffix(u64),
    /// Several `first-last` ranges.
    Multi(Vec<(u64, u64)>),
    /// `first-` with a first position beyond `u64`.
    HugeFirst,
    /// `first-<beyond u64>`.
    HugeLast(u64),
    /// `-<beyond u64>`.
    HugeSuffix,
    /// Not a byte range set: the field is ignored.
    Invalid(String),
    /// Anything printable: only the general rules apply.
    Raw(String),
}

const HUGE: &str = "99999999999999999999999999";

impl RangeCase {
    fn render(&self, unit: &str) -> Option<String> {
        Some(match self {
            Self::Absent => return None,
            Self::Closed(first, last) => format!("{unit}={first}-{last}"),
            Self::Open(first) => format!("{unit}={first}-"),
            Self::Suffix(suffix) => format!("{unit}=-{suffix}"),
            Self::Multi(ranges) => {
                let set: Vec<String> = ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
                format!("{unit}={}", set.join(", "))
            }
            Self::HugeFirst => format!("{unit}={HUGE}-"),
            Self::HugeLast(first) => format!("{unit}={first}-{HUGE}"),
            Self::HugeSuffix => format!("{unit}=-{HUGE}"),
            Self::Invalid(text) | Self::Raw(text) => text.clone(),
        })
    }

    /// What the field asks of a file of `len` (> 0) bytes, when that is certain.
    fn expected(&self, len: u64) -> Option<Expected> {
        let single = |first: u64, last: u64| {
            if first >= len {
                Expected::Unsatisfiable
            } else {
                Expected::Partial(first, last.min(len - 1))
            }
        };
        Some(match self {
            Self::Absent | Self::Invalid(_) => Expected::Full,
            Self::Raw(_) => return None,
            Self::Closed(first, last) if last < first => Expected::Full,
            Self::Closed(first, last) => single(*first, *last),
            Self::Open(first) => single(*first, u64::MAX),
            Self::Suffix(0) => Expected::Unsatisfiable,
            Self::Suffix(suffix) => Expected::Partial(len - (*suffix).min(len), len - 1),
            Self::Multi(ranges) => {
                if ranges.iter().any(|(a, b)| b < a) {
                    Expected::Full
                } else {
                    let fits: Vec<Expected> = ranges
                        .iter()
                        .filter(|(a, _)| *a < len)
                        .map(|(a, b)| single(*a, *b))
                        .collect();
                    match fits.as_slice() {
                        [] => Expected::Unsatisfiable,
                        [one] => *one,
                        // No multipart responses: the whole file.
                        _ => Expected::Full,
                    }
                }
            }
            Self::HugeFirst => Expected::Unsatisfiable,
            Self::HugeLast(first) => single(*first, u64::MAX),
            Self::HugeSuffix => Expected::Partial(0, len - 1),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Full,
    Partial(u64, u64),
    NotModified,
    Unsatisfiable,
}

/// An `If-None-Match` field.
#[derive(Debug, Clone)]
enum NoneMatchCase {
    Absent,
    Exact,
    Weak,
    Star,
    Other,
    ListWith(usize),
    ListWithout,
    Garbage(String),
}

impl NoneMatchCase {
    fn render(&self, etag: &str) -> Option<String> {
        Some(match self {
            Self::Absent => return None,
            Self::Exact => etag.to_string(),
            Self::Weak => format!("W/{etag}"),
            Self::Star => "*".into(),
            Self::Other => "\"0000\"".into(),
            Self::ListWith(position) => {
                let mut tags = vec!["\"aaaa\"".to_string(), "W/\"bbbb\"".into()];
                let weak = position % 2 == 1;
                let ours = if weak {
                    format!("W/{etag}")
                } else {
                    etag.to_string()
                };
                tags.insert(position % 3, ours);
                tags.join(" ,")
            }
            Self::ListWithout => "\"aaaa\", W/\"bbbb\",\"cccc\"".into(),
            Self::Garbage(text) => text.clone(),
        })
    }

    /// Whether it names the current ETag (weak comparison) or is `*`.
    fn matches(&self) -> bool {
        match self {
            Self::Exact | Self::Weak | Self::Star | Self::ListWith(_) => true,
            Self::Absent | Self::Other | Self::ListWithout => false,
            Self::Garbage(text) => text.trim() == "*",
        }
    }
}

/// An `If-Range` field.
#[derive(Debug, Clone)]
enum IfRangeCase {
    Absent,
    Exact,
    /// A weak tag never matches (If-Range compares strongly).
    Weak,
    Other,
    Date,
    Garbage(String),
}

impl IfRangeCase {
    fn render(&self, etag: &str) -> Option<String> {
        Some(match self {
            Self::Absent => return None,
            Self::Exact => etag.to_string(),
            Self::Weak => format!("W/{etag}"),
            Self::Other => "\"0000\"".into(),
            Self::Date => "Sat, 01 Jan 2000 00:00:00 GMT".into(),
            Self::Garbage(text) => text.clone(),
        })
    }
}

#[derive(Debug, Clone)]
struct Case {
    head: bool,
    unit: &'static str,
    range: RangeCase,
    none_match: NoneMatchCase,
    if_range: IfRangeCase,
}

fn position(len: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        0..len + 50,
        Just(0),
        Just(len - 1),
        Just(len),
        Just(u64::MAX)
    ]
}

fn cases(len: u64) -> impl Strategy<Value = Case> {
    let range = prop_oneof![
        1 => Just(RangeCase::Absent),
        4 => (position(len), position(len)).prop_map(|(a, b)| RangeCase::Closed(a.min(b), a.max(b))),
        1 => (position(len), position(len)).prop_map(|(a, b)| RangeCase::Closed(a, b)),
        2 => position(len).prop_map(RangeCase::Open),
        2 => prop_oneof![0..len + 50, Just(u64::MAX)].prop_map(RangeCase::Suffix),
        2 => proptest::collection::vec((position(len), position(len)), 2..5).prop_map(|pairs| {
            RangeCase::Multi(pairs.into_iter().map(|(a, b)| (a.min(b), a.max(b))).collect())
        }),
        1 => Just(RangeCase::HugeFirst),
        1 => position(len).prop_map(RangeCase::HugeLast),
        1 => Just(RangeCase::HugeSuffix),
        2 => prop_oneof![
            Just("bytes=".to_string()),
            Just("bytes=-".to_string()),
            Just("bytes=,".to_string()),
            "bytes=[0-9]{1,3}",
            "bytes=[0-9]{1,3}-[0-9]{1,3}-[0-9]{1,3}",
            "bytes=--[0-9]{1,3}",
            "bytes=\\+[0-9]{1,3}-",
            "bytes=[a-z]{1,6}",
            "items=[0-9]{1,3}-[0-9]{1,3}",
            "bytes [0-9]{1,3}-[0-9]{1,3}",
            "=[0-9]{1,3}-[0-9]{1,3}",
        ]
        .prop_map(RangeCase::Invalid),
        2 => "[ -~]{0,40}".prop_map(RangeCase::Raw),
    ];
    let none_match = prop_oneof![
        4 => Just(NoneMatchCase::Absent),
        1 => Just(NoneMatchCase::Exact),
        1 => Just(NoneMatchCase::Weak),
        1 => Just(NoneMatchCase::Star),
        1 => Just(NoneMatchCase::Other),
        1 => (0usize..6).prop_map(NoneMatchCase::ListWith),
        1 => Just(NoneMatchCase::ListWithout),
        1 => "[ -~]{0,30}".prop_map(NoneMatchCase::Garbage),
    ];
    let if_range = prop_oneof![
        3 => Just(IfRangeCase::Absent),
        2 => Just(IfRangeCase::Exact),
        1 => Just(IfRangeCase::Weak),
        1 => Just(IfRangeCase::Other),
        1 => Just(IfRangeCase::Date),
        1 => "[ -~]{0,30}".prop_map(IfRangeCase::Garbage),
    ];
    (
        prop::bool::weighted(0.15),
        prop_oneof![Just("bytes"), Just("Bytes"), Just("BYTES")],
        range,
        none_match,
        if_range,
    )
        .prop_map(|(head, unit, range, none_match, if_range)| Case {
            head,
            unit,
            range,
            none_match,
            if_range,
        })
}

/// Sends `case` for `uri` and checks the answer against the bytes and ETag of the file.
async fn check(
    router: &Router,
    uri: &str,
    full: &[u8],
    etag: &str,
    case: &Case,
) -> Result<(), TestCaseError> {
    let len = full.len() as u64;
    let mut request = Request::builder()
        .method(if case.head { Method::HEAD } else { Method::GET })
        .uri(uri);
    let range = case.range.render(case.unit);
    let if_range = case.if_range.render(etag);
    if let Some(value) = &range {
        request = request.header("range", value);
    }
    if let Some(value) = case.none_match.render(etag) {
        request = request.header("if-none-match", value);
    }
    if let Some(value) = &if_range {
        request = request.header("if-range", value);
    }
    let request = request.body(Body::empty()).expect("request");
    let (status, headers, body) = send(router, request).await;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());

    // What must be true of any answer.
    prop_assert!(
        matches!(status.as_u16(), 200 | 206 | 304 | 416),
        "status {status}"
    );
    prop_assert_eq!(header("etag"), Some(etag));
    prop_assert_eq!(
        status == StatusCode::NOT_MODIFIED,
        case.none_match.matches(),
        "304 exactly when If-None-Match names the ETag"
    );
    let got = match status {
        StatusCode::OK => {
            let length = len.to_string();
            prop_assert_eq!(header("content-length"), Some(length.as_str()));
            prop_assert!(header("content-range").is_none());
            if !case.head {
                prop_assert!(body == full, "200 carries the whole file");
            }
            Expected::Full
        }
        StatusCode::PARTIAL_CONTENT => {
            prop_assert!(!case.head, "HEAD has no Range handling");
            prop_assert!(range.is_some());
            let content_range = header("content-range").unwrap_or_default();
            let parsed = content_range
                .strip_prefix("bytes ")
                .and_then(|rest| rest.split_once('/'))
                .and_then(|(span, total)| Some((span.split_once('-')?, total)))
                .and_then(|((a, b), total)| {
                    Some((
                        a.parse::<u64>().ok()?,
                        b.parse::<u64>().ok()?,
                        total.parse::<u64>().ok()?,
                    ))
                });
            let Some((first, last, total)) = parsed else {
                return Err(TestCaseError::fail(format!(
                    "Content-Range {content_range:?}"
                )));
            };
            prop_assert_eq!(total, len);
            prop_assert!(first <= last && last < len, "{}", content_range);
            let length = (last - first + 1).to_string();
            prop_assert_eq!(header("content-length"), Some(length.as_str()));
            prop_assert!(
                body == full[first as usize..=last as usize],
                "206 carries exactly bytes {}-{}",
                first,
                last
            );
            Expected::Partial(first, last)
        }
        StatusCode::NOT_MODIFIED => {
            prop_assert!(body.is_empty());
            Expected::NotModified
        }
        _ => {
            prop_assert!(range.is_some(), "416 only for a Range");
            let unsatisfied = format!("bytes */{len}");
            prop_assert_eq!(header("content-range"), Some(unsatisfied.as_str()));
            prop_assert!(body.is_empty());
            Expected::Unsatisfiable
        }
    };

    // What this case must get, where that is certain.
    let range_applies =
        !case.head && matches!(case.if_range, IfRangeCase::Absent | IfRangeCase::Exact);
    let expected = if case.none_match.matches() {
        Some(Expected::NotModified)
    } else if !range_applies {
        Some(Expected::Full)
    } else {
        case.range.expected(len)
    };
    if let Some(expected) = expected {
        prop_assert_eq!(got, expected, "range {:?}, if-range {:?}", range, if_range);
    }
    Ok(())
}

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn guest_file_ranges_and_conditions_hold_for_any_headers() {
    let temp = tempfile::tempdir().expect("temp dir");
    let rootfs = patterned(3000);
    write_guest_image(temp.path(), &rootfs);
    let router = guest_router(temp.path());
    let etag = format!("\"{}\"", sha256_hex(&rootfs));
    let uri = format!("/guest/{IMAGE_HASH}/rootfs.ext4");
    let runtime = runtime();
    let outcome = runner().run(&cases(rootfs.len() as u64), |case| {
        runtime.block_on(check(&router, &uri, &rootfs, &etag, &case))
    });
    if let Err(error) = outcome {
        panic!("{error}");
    }
}

#[test]
fn package_file_ranges_and_conditions_hold_for_any_headers() {
    let temp = tempfile::tempdir().expect("temp dir");
    let (name, bytes) = deb_with_payload("prop-demo", 2000);
    let runtime = runtime();
    let (router, _config) = runtime.block_on(package_router(
        temp.path(),
        &[(name.clone(), bytes.clone())],
    ));
    let etag = format!("\"{}\"", sha256_hex(&bytes));
    let uri = format!("/packages/files/{name}");
    let outcome = runner().run(&cases(bytes.len() as u64), |case| {
        runtime.block_on(check(&router, &uri, &bytes, &etag, &case))
    });
    if let Err(error) = outcome {
        panic!("{error}");
    }
}

// --- links and deleted files in the package directory ---------------------------------------

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_or_a_deleted_file_in_the_package_directory_is_a_404_never_other_bytes() {
    let temp = tempfile::tempdir().expect("temp dir");
    let linked = deb_with_payload("linked-demo", 300);
    let outside = deb_with_payload("outside-demo", 300);
    let deleted = deb_with_payload("deleted-demo", 300);
    let (router, config) = package_router(
        temp.path(),
        &[linked.clone(), outside.clone(), deleted.clone()],
    )
    .await;
    let dir = config.effective_packages_dir();
    let secret = b"SECRET-BYTES".repeat(40);

    // After indexing: one .deb becomes a link to another file inside the directory, one a
    // link to a file outside it, and one is deleted.
    std::fs::write(dir.join("notes.txt"), &secret).expect("inside target");
    std::fs::write(temp.path().join("secret.deb"), &secret).expect("outside target");
    std::fs::remove_file(dir.join(&linked.0)).expect("remove");
    std::os::unix::fs::symlink(dir.join("notes.txt"), dir.join(&linked.0)).expect("symlink");
    std::fs::remove_file(dir.join(&outside.0)).expect("remove");
    std::os::unix::fs::symlink(temp.path().join("secret.deb"), dir.join(&outside.0))
        .expect("symlink");
    std::fs::remove_file(dir.join(&deleted.0)).expect("remove");

    let (logs, _guard) = Logs::capture();
    for (name, _) in [&linked, &outside, &deleted] {
        for range in [None, Some("bytes=0-5")] {
            let mut request = Request::get(format!("/packages/files/{name}"));
            if let Some(range) = range {
                request = request.header("range", range);
            }
            let (status, _, body) =
                send(&router, request.body(Body::empty()).expect("request")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{name} {range:?}");
            assert!(!body.windows(6).any(|window| window == b"SECRET"), "{name}");
        }
    }
    let logs = logs.text();
    for (name, _) in [&linked, &outside, &deleted] {
        assert!(
            logs.lines()
                .any(|line| line.contains(" WARN ") && line.contains(name.as_str())),
            "a WARN names {name}:\n{logs}"
        );
    }
    assert!(!logs.contains("ERROR"), "{logs}");
}

// --- no gzip on the fly for the guest image --------------------------------------------------

#[tokio::test]
async fn guest_files_are_not_gzipped_on_the_fly_but_the_boot_snapshot_keeps_its_encoding() {
    let temp = tempfile::tempdir().expect("temp dir");
    let guest = temp.path().join("guest");
    std::fs::create_dir_all(&guest).expect("guest dir");
    // Very compressible, well above the compression layer's minimum size.
    let rootfs = b"the same line of a disk image, again and again\n".repeat(2000);
    write_guest_image(&guest, &rootfs);
    let snapshot = write_boot_snapshot(&guest);
    let mut config = Config::for_data_dir(temp.path().join("data"));
    config.guest_dir = Some(guest.clone());
    config.v86_dir = temp.path().join("node_modules").join("v86").join("build");
    let router = webvm_appserver::host::build_router(&config)
        .await
        .expect("router builds");

    for range in [None, Some("bytes=0-99")] {
        let mut request = Request::get(format!("/guest/{IMAGE_HASH}/rootfs.ext4"))
            .header("accept-encoding", "gzip");
        if let Some(range) = range {
            request = request.header("range", range);
        }
        let (status, headers, body) =
            send(&router, request.body(Body::empty()).expect("request")).await;
        assert!(status.is_success(), "{status} {range:?}");
        assert!(
            headers.get("content-encoding").is_none(),
            "rootfs.ext4 {range:?} is sent as stored, not gzipped: {headers:?}"
        );
        let expected = match range {
            None => &rootfs[..],
            Some(_) => &rootfs[..100],
        };
        assert!(body == expected, "{range:?}: {} bytes", body.len());
    }

    let request = Request::get(format!("/guest/{IMAGE_HASH}/{SNAPSHOT_FILE}"))
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .expect("request");
    let (status, headers, body) = send(&router, request).await;
    assert_eq!(status, StatusCode::OK);
    let encodings: Vec<_> = headers.get_all("content-encoding").iter().collect();
    assert_eq!(encodings, ["gzip"], "{headers:?}");
    assert!(
        body == snapshot,
        "the snapshot is sent as stored, gzipped once"
    );

    let (status, _, _) = send(&router, get(&format!("/guest/{IMAGE_HASH}/missing.bin"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_gzipped_vendor_script_arrives_whole() {
    use std::io::Read;
    let temp = tempfile::tempdir().expect("temp dir");
    let v86 = temp.path().join("node_modules").join("v86").join("build");
    std::fs::create_dir_all(&v86).expect("v86 dir");
    // Several of the body's chunks, so the compressor polls it past its end.
    let script = b"function emulate() { return 'x86'; }\n".repeat(20_000);
    std::fs::write(v86.join("libv86.js"), &script).expect("script");
    let mut config = Config::for_data_dir(temp.path().join("data"));
    config.v86_dir = v86;
    let router = webvm_appserver::host::build_router(&config)
        .await
        .expect("router builds");
    let request = Request::get("/vendor/v86/libv86.js")
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .expect("request");
    let (status, headers, body) = send(&router, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut unpacked)
        .expect("a whole gzip stream");
    assert!(
        unpacked == script,
        "{} of {} bytes",
        unpacked.len(),
        script.len()
    );
}
