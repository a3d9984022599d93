//! Hardening tests of the package repository's parsers: decompression bombs in every
//! control-archive codec (refused, with their peak memory measured in a child process), and
//! very large control files and relation fields.
#![cfg(feature = "ssr")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use webvm_appserver::server::packages::control::{
    parse_paragraphs, parse_relations, Control, ControlError,
};
use webvm_appserver::server::packages::deb::{read_control_bytes, DebError, MAX_CONTROL_TAR};

/// Counts the bytes the Rust heap holds, and the most it held since [`reset_heap_peak`].
/// A `realloc` counts its old and new block together, as a copying one needs both.
struct CountingAllocator;

static HEAP_LIVE: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

fn heap_grew(bytes: usize) {
    let live = HEAP_LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    HEAP_PEAK.fetch_max(live, Ordering::Relaxed);
}

fn heap_shrank(bytes: usize) {
    HEAP_LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as it is.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            heap_grew(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as it is.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            heap_grew(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as it is.
        unsafe { System.dealloc(pointer, layout) };
        heap_shrank(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        heap_grew(new_size);
        // SAFETY: the caller's contract is passed on as it is.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if moved.is_null() {
            heap_shrank(new_size);
        } else {
            heap_shrank(layout.size());
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn reset_heap_peak() {
    HEAP_PEAK.store(HEAP_LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

const MIB: u64 = 1024 * 1024;
const CONTROL: &str =
    "Package: bomb\nVersion: 1.0\nArchitecture: all\nDescription: a decompression bomb\n";

/// The codecs of a control archive, plus an xz stream that declares the 64 MiB dictionary
/// of `xz -9` and a zstd frame that declares a 96 MiB window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Gzip,
    Xz,
    XzLargeDictionary,
    Zstd,
    ZstdLargeWindow,
}

impl Codec {
    const ALL: [Codec; 5] = [
        Codec::Gzip,
        Codec::Xz,
        Codec::XzLargeDictionary,
        Codec::Zstd,
        Codec::ZstdLargeWindow,
    ];
    /// The codecs as an ordinary packager uses them.
    const PLAIN: [Codec; 3] = [Codec::Gzip, Codec::Xz, Codec::Zstd];

    fn member(self) -> &'static str {
        match self {
            Codec::Gzip => "control.tar.gz",
            Codec::Xz | Codec::XzLargeDictionary => "control.tar.xz",
            Codec::Zstd | Codec::ZstdLargeWindow => "control.tar.zst",
        }
    }
}

/// A control tar made of `./filler` (`filler` zero bytes) and then `./control`, in three
/// parts so that it can be compressed without ever being held whole: the first header, the
/// number of zero bytes after it, and the rest.
struct BombTar {
    head: Vec<u8>,
    zeros: u64,
    tail: Vec<u8>,
    /// The xz stream, made once (it is the slow one to make).
    xz: std::cell::OnceCell<Vec<u8>>,
}

impl BombTar {
    fn new(filler: u64) -> Self {
        let header = |path: &str, size: u64| {
            let mut header = tar::Header::new_gnu();
            header.set_path(path).expect("a short path");
            header.set_size(size);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            header.as_bytes().to_vec()
        };
        let mut tail = header("./control", CONTROL.len() as u64);
        tail.extend_from_slice(CONTROL.as_bytes());
        tail.resize(tail.len().next_multiple_of(512), 0);
        tail.extend_from_slice(&[0; 1024]);
        BombTar {
            head: header("./filler", filler),
            zeros: filler.next_multiple_of(512),
            tail,
            xz: std::cell::OnceCell::new(),
        }
    }

    /// The decompressed size.
    fn len(&self) -> u64 {
        self.head.len() as u64 + self.zeros + self.tail.len() as u64
    }

    fn reader(&self) -> impl Read + '_ {
        self.head
            .as_slice()
            .chain(io::repeat(0).take(self.zeros))
            .chain(self.tail.as_slice())
    }

    fn compress(&self, codec: Codec) -> Vec<u8> {
        match codec {
            Codec::Gzip => self.gzip(),
            Codec::Xz => self.xz().to_vec(),
            Codec::XzLargeDictionary => {
                // Property 28: a 2^26-byte dictionary (a larger one decodes the same data).
                let mut stream = self.xz().to_vec();
                set_xz_dictionary(&mut stream, 28);
                stream
            }
            // Windows of 1 MiB and 96 MiB (2^26 + 4/8 · 2^26).
            Codec::Zstd => self.zstd(0x50, MIB),
            Codec::ZstdLargeWindow => self.zstd(0x84, 96 * MIB),
        }
    }

    fn xz(&self) -> &[u8] {
        self.xz.get_or_init(|| {
            let mut out = Vec::new();
            // Preset 1: quick to make, and still thousands to one on zeros.
            liblzma::read::XzEncoder::new(self.reader(), 1)
                .read_to_end(&mut out)
                .expect("xz compresses");
            out
        })
    }

    /// Concatenated gzip members (the decoder reads them all): the head, one member per MiB
    /// of zeros (all the same bytes), the rest of the zeros and the tail.
    fn gzip(&self) -> Vec<u8> {
        let member = |data: &[u8]| {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            encoder.write_all(data).expect("gzip");
            encoder.finish().expect("gzip")
        };
        let mebibyte = member(&vec![0; MIB as usize]);
        let mut out = member(&self.head);
        for _ in 0..self.zeros / MIB {
            out.extend_from_slice(&mebibyte);
        }
        out.extend_from_slice(&member(&vec![0; (self.zeros % MIB) as usize]));
        out.extend_from_slice(&member(&self.tail));
        out
    }

    /// One zstd frame with the given window descriptor: a raw block for the head, RLE blocks
    /// of zeros, and a raw block for the tail.
    fn zstd(&self, window_descriptor: u8, window: u64) -> Vec<u8> {
        const RAW: u32 = 0;
        const RLE: u32 = 1;
        let block_max = 128 * 1024u64;
        assert!(window >= block_max);
        let block = |out: &mut Vec<u8>, kind: u32, size: usize, last: bool| {
            let header = (size as u32) << 3 | kind << 1 | u32::from(last);
            out.extend_from_slice(&header.to_le_bytes()[..3]);
        };
        let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, window_descriptor];
        block(&mut out, RAW, self.head.len(), false);
        out.extend_from_slice(&self.head);
        let mut zeros = self.zeros;
        while zeros > 0 {
            let size = zeros.min(block_max);
            block(&mut out, RLE, size as usize, false);
            out.push(0);
            zeros -= size;
        }
        block(&mut out, RAW, self.tail.len(), true);
        out.extend_from_slice(&self.tail);
        out
    }
}

/// Rewrites the dictionary size of the one block of a liblzma stream. Its block header:
/// size, flags, the LZMA2 filter (id 0x21, one property byte), padding and a CRC32.
fn set_xz_dictionary(stream: &mut [u8], property: u8) {
    assert_eq!(
        &stream[12..16],
        &[0x02, 0x00, 0x21, 0x01],
        "one LZMA2 block"
    );
    stream[16] = property;
    let mut crc = flate2::Crc::new();
    crc.update(&stream[12..20]);
    stream[20..24].copy_from_slice(&crc.sum().to_le_bytes());
}

/// A `.deb` whose control member is `control` under the name `member`.
fn deb_with(member: &str, control: &[u8]) -> Vec<u8> {
    fn append(out: &mut Vec<u8>, name: &str, data: &[u8]) {
        let header = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            "100644",
            data.len()
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    let mut out = b"!<arch>\n".to_vec();
    append(&mut out, "debian-binary", b"2.0\n");
    append(&mut out, member, control);
    append(&mut out, "data.tar", &[0; 1024]);
    out
}

/// A `VmHWM:`/`VmRSS:` line of /proc/self/status, in bytes.
fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Run only by [`bomb_decoding_memory_is_bounded`], in a process of its own: reads the
/// `.deb` named by `HARDENING_BOMB_FILE` and prints the peak heap and resident memory that
/// reading its control data took.
#[test]
#[ignore = "a child process of bomb_decoding_memory_is_bounded"]
fn bomb_child() {
    let Some(path) = std::env::var_os("HARDENING_BOMB_FILE") else {
        return;
    };
    let deb = std::fs::read(path).expect("the bomb file");
    // Writing 5 to clear_refs resets VmHWM to the current resident size.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss_before = proc_status("VmRSS:");
    reset_heap_peak();
    let heap_before = HEAP_LIVE.load(Ordering::Relaxed);
    let outcome = read_control_bytes(&deb).map(|(control, _)| control.package);
    let heap_peak = HEAP_PEAK
        .load(Ordering::Relaxed)
        .saturating_sub(heap_before);
    let rss_peak = proc_status("VmHWM:").saturating_sub(if reset { rss_before } else { 0 });
    let outcome = match outcome {
        Ok(package) => format!("accepted {package}"),
        Err(error) => format!("refused {error}"),
    };
    println!("\nBOMB heap_peak={heap_peak} rss_peak={rss_peak} outcome={outcome}");
}

/// Peak heap and resident growth (bytes) and the outcome of reading `deb` in a child.
fn measure_in_child(deb: &[u8], dir: &Path, label: &str) -> (u64, u64, String) {
    let path = dir.join(format!("{label}.deb"));
    std::fs::write(&path, deb).expect("write the bomb");
    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "bomb_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HARDENING_BOMB_FILE", &path)
        .output()
        .expect("the child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{label}: the child failed: {stdout}"
    );
    let line = stdout
        .lines()
        .find_map(|line| line.split_once("BOMB ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("{label}: no measurement in {stdout}"));
    let number = |key: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{label}: no {key} in {line}"))
    };
    let outcome = line
        .split_once("outcome=")
        .map(|(_, outcome)| outcome.to_string())
        .unwrap_or_default();
    (number("heap_peak="), number("rss_peak="), outcome)
}

#[test]
fn bomb_decoding_memory_is_bounded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bound = 3 * MAX_CONTROL_TAR;
    let mut report = Vec::new();
    // Four times the limit: a decoder that buffers before the cap shows it clearly.
    let tar = BombTar::new(4 * MAX_CONTROL_TAR);
    for codec in Codec::ALL {
        let deb = deb_with(codec.member(), &tar.compress(codec));
        let (heap, rss, outcome) = measure_in_child(&deb, dir.path(), &format!("{codec:?}"));
        eprintln!(
            "{codec:?}: {} KiB .deb, heap peak {:.1} MiB, resident peak {:.1} MiB: {outcome}",
            deb.len() / 1024,
            heap as f64 / MIB as f64,
            rss as f64 / MIB as f64
        );
        report.push((codec, heap, rss, outcome));
    }
    for (codec, heap, rss, outcome) in report {
        assert!(outcome.starts_with("refused"), "{codec:?}: {outcome}");
        assert!(heap < bound, "{codec:?}: the heap peaked at {heap} bytes");
        assert!(
            rss < bound,
            "{codec:?}: resident memory grew by {rss} bytes"
        );
    }
}

#[test]
fn every_codec_refuses_a_control_tar_just_past_the_limit() {
    // 2,560 bytes past the limit: the filler alone is MAX_CONTROL_TAR bytes.
    let tar = BombTar::new(MAX_CONTROL_TAR);
    assert_eq!(tar.len(), MAX_CONTROL_TAR + 2560);
    for codec in Codec::PLAIN {
        let deb = deb_with(codec.member(), &tar.compress(codec));
        match read_control_bytes(&deb) {
            Err(error @ DebError::DecompressedTooLarge { limit, .. }) => {
                assert_eq!(limit, MAX_CONTROL_TAR);
                assert!(
                    error.to_string().ends_with(&format!(
                        "control archive decompresses to more than the {MAX_CONTROL_TAR} bytes allowed"
                    )),
                    "{error}"
                );
            }
            other => panic!("{codec:?}: {other:?}"),
        }
    }
}

#[test]
fn every_codec_reads_a_control_tar_just_under_the_limit() {
    // 1,536 bytes under the limit, with ./control at its very end.
    let tar = BombTar::new(MAX_CONTROL_TAR - 4096);
    assert_eq!(tar.len(), MAX_CONTROL_TAR - 1536);
    let mut whole = Vec::new();
    tar.reader().read_to_end(&mut whole).expect("reads");
    assert_eq!(whole.len() as u64, tar.len());
    for codec in Codec::PLAIN {
        let deb = deb_with(codec.member(), &tar.compress(codec));
        let (control, text) =
            read_control_bytes(&deb).unwrap_or_else(|error| panic!("{codec:?}: {error}"));
        assert_eq!(control.package, "bomb");
        assert_eq!(text, CONTROL);
    }
}

#[test]
fn a_large_zstd_window_is_refused_before_it_is_reserved() {
    let deb = deb_with(
        "control.tar.zst",
        &BombTar::new(1024).compress(Codec::ZstdLargeWindow),
    );
    assert!(matches!(
        read_control_bytes(&deb),
        Err(DebError::Decompress { format: "zstd", reason }) if reason.contains("100663296-byte window")
    ));
}

/// Field names for a paragraph of `count` distinct fields after the required ones.
fn many_fields(count: usize, name_len: usize) -> String {
    let mut text = String::from("Package: big\nVersion: 1.0\nArchitecture: all\n");
    for index in 0..count {
        text.push_str(&format!("X-{index:0>name_len$}: value {index}\n"));
    }
    text
}

/// One relation per piece, in turn, `count` of them joined by `separator`.
fn many_relations(pieces: &[&str], count: usize, separator: &str) -> String {
    let mut text = String::new();
    for index in 0..count {
        if index > 0 {
            text.push_str(separator);
        }
        text.push_str(pieces[index % pieces.len()]);
    }
    text
}

const VALID_RELATIONS: [&str; 6] = [
    "libc6 (>= 2.34)",
    "libfoo1:any",
    "bar-utils [i386 amd64] <!nocheck>",
    "baz (<< 1:2.0~rc1-3+b1)",
    "python3:native (= 3.11.2-1)",
    "zlib1g",
];

const ODD_RELATIONS: [&str; 10] = [
    "libc6 (>= )",
    "(((((",
    "]]]]",
    "<<<<>>>>",
    "foo:",
    "Libc6",
    " ",
    "a (>= 1) [",
    "x [i386] (>= 1)",
    "\u{0}\u{7f}\u{ffff}",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn a_control_file_with_100k_fields_parses_and_finds_a_late_duplicate(
        count in 50_000usize..100_000,
        name_len in 1usize..12,
        duplicate in any::<bool>(),
        case_flip in any::<bool>(),
    ) {
        let mut text = many_fields(count, name_len);
        let paragraphs = parse_paragraphs(&text).expect("distinct fields");
        prop_assert_eq!(paragraphs.len(), 1);
        prop_assert_eq!(paragraphs[0].fields().count(), count + 3);
        prop_assert_eq!(Control::parse(&text).map(|control| control.package), Ok("big".to_string()));
        if duplicate {
            // The first extra field again, at the very end (in either case).
            let name = format!("X-{:0>name_len$}", 0);
            let name = if case_flip { name.to_ascii_lowercase() } else { name };
            text.push_str(&format!("{name}: again\n"));
            prop_assert_eq!(parse_paragraphs(&text), Err(ControlError::DuplicateField(name)));
        }
    }

    #[test]
    fn a_megabyte_of_relations_parses_without_panicking(
        pieces in proptest::collection::vec(
            prop_oneof![
                3 => proptest::sample::select(&VALID_RELATIONS[..]),
                1 => proptest::sample::select(&ODD_RELATIONS[..]),
            ],
            1..12,
        ),
        per_group in 1usize..64,
    ) {
        // Groups of `per_group` alternatives, "a | b | c, d | e | f, …", past 1 MiB in all:
        // tens of thousands of alternatives.
        let group = many_relations(&pieces, per_group, " | ");
        let groups = (1 << 20) / group.len().max(1) + 1;
        let field = many_relations(&[group.as_str()], groups, ", ");
        prop_assert!(field.len() >= 1 << 20);
        // A group of `per_group` alternatives uses only its first `per_group` pieces.
        let all_valid = pieces
            .iter()
            .take(per_group)
            .all(|piece| VALID_RELATIONS.contains(piece));
        match parse_relations("Depends", &field) {
            Ok(parsed) => {
                prop_assert!(all_valid);
                prop_assert_eq!(parsed.len(), groups);
                prop_assert!(parsed.iter().all(|group| group.len() == per_group));
            }
            Err(error) => {
                prop_assert!(!all_valid, "{}", error);
                let is_bad_relation = matches!(
                    error,
                    ControlError::BadRelation {
                        field: "Depends",
                        ..
                    }
                );
                prop_assert!(is_bad_relation, "{:?}", error);
            }
        }
        // The whole field in one control file, as Depends and as Pre-Depends.
        let text = format!(
            "Package: big\nVersion: 1.0\nArchitecture: all\nDepends: {field}\nPre-Depends: {field}\n"
        );
        prop_assert_eq!(Control::parse(&text).is_ok(), all_valid);
    }

    #[test]
    fn a_single_huge_relation_or_field_value_is_refused_or_read_without_panicking(
        fill in proptest::sample::select(vec!['(', ')', '[', ']', '<', '>', '|', ',', ':', ' ', 'a', '1']),
        size in (1usize << 19)..(1 << 20),
    ) {
        let blob: String = std::iter::repeat_n(fill, size).collect();
        let _ = parse_relations("Depends", &blob);
        let _ = parse_relations("Depends", &format!("libc6 ({blob}"));
        let _ = parse_relations("Depends", &format!("libc6 [{blob}]"));
        let _ = parse_relations("Depends", &format!("libc6 <{blob}>"));
        let text = format!("Package: big\nVersion: 1.0\nArchitecture: {blob}\nDescription: {blob}\n {blob}\n");
        prop_assert!(Control::parse(&text).is_err());
    }
}
