//! Reads the control data of a `.deb` file: the `ar` archive (parsed here, it is tiny),
//! its `debian-binary` member, and `control.tar[.gz|.xz|.zst]` → `./control`.
//!
//! The reader is defensive: every length is checked against limits before anything is
//! allocated, and malformed input of any kind ends in a [`DebError`] instead of a panic (a
//! property test feeds it random and mutated archives). The control archive is decompressed
//! as a stream straight into the tar reader, never held whole, and at most
//! [`MAX_CONTROL_TAR`] decompressed bytes are read: every decoder's own memory is bounded
//! too (xz by liblzma's memory limit, zstd by refusing large windows up front, gzip's is a
//! fixed 32 KiB), so a decompression bomb costs neither memory nor more than that much work.
//! It also builds small `.deb` files ([`DebBuilder`]) for fixtures and tests.

use std::io::{self, BufReader, Read, Write};

use super::control::{Control, ControlError};

/// Largest control archive member accepted, compressed.
pub const MAX_CONTROL_MEMBER: u64 = 16 * 1024 * 1024;
/// Largest decompressed control archive accepted.
pub const MAX_CONTROL_TAR: u64 = 32 * 1024 * 1024;
/// Largest `control` file accepted.
pub const MAX_CONTROL_FILE: u64 = 1024 * 1024;
/// Most memory the xz decoder may use: `xz -9` streams (a 64 MiB dictionary, 65 MiB to
/// decode) still decode. liblzma refuses a stream that needs more before allocating it.
pub const XZ_MEMORY_LIMIT: u64 = 80 * 1024 * 1024;
/// Largest zstd window accepted (ruzstd reserves it up front and keeps up to twice that).
/// `zstd -19` uses 8 MiB; only `--ultra` and `--long` ask for more.
pub const MAX_ZSTD_WINDOW: u64 = 16 * 1024 * 1024;

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const AR_HEADER_LEN: usize = 60;

/// Why a `.deb` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    #[error("not a Debian package (no ar archive signature)")]
    NotAnArchive,
    #[error("the ar archive is truncated")]
    Truncated,
    #[error("malformed ar member header: {0}")]
    BadMemberHeader(&'static str),
    #[error("the first member is '{0}', not debian-binary")]
    MissingDebianBinary(String),
    #[error("unsupported package format version '{0}' (only 2.x is supported)")]
    UnsupportedFormat(String),
    #[error("the second member is '{0}', not control.tar[.gz|.xz|.zst]")]
    MissingControlArchive(String),
    #[error("the control archive is larger than allowed ({size} bytes)")]
    ControlTooLarge { size: u64 },
    #[error("the {format} control archive decompresses to more than the {limit} bytes allowed")]
    DecompressedTooLarge { format: &'static str, limit: u64 },
    #[error("the {format} control archive cannot be decompressed: {reason}")]
    Decompress {
        format: &'static str,
        reason: String,
    },
    #[error("the control archive is not a valid tar archive: {0}")]
    Tar(String),
    #[error("the control archive has no ./control file")]
    NoControlFile,
    #[error("invalid control file: {0}")]
    Control(#[from] ControlError),
}

/// How a tar member of a `.deb` is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// The compression named by a member's suffix (`control.tar.xz` → `Xz`).
    fn from_member(name: &str, stem: &str) -> Option<Self> {
        match name.strip_prefix(stem)? {
            "" => Some(Self::None),
            ".gz" => Some(Self::Gzip),
            ".xz" => Some(Self::Xz),
            ".zst" => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The member-name suffix of this compression.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Gzip => ".gz",
            Self::Xz => ".xz",
            Self::Zstd => ".zst",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::None => "plain",
            Self::Gzip => "gzip",
            Self::Xz => "xz",
            Self::Zstd => "zstd",
        }
    }
}

/// One ar member header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemberHeader {
    name: String,
    size: u64,
}

/// Reads the next member header, or `None` at a clean end of the archive.
fn read_member_header(reader: &mut impl Read) -> Result<Option<MemberHeader>, DebError> {
    let mut header = [0u8; AR_HEADER_LEN];
    let mut filled = 0;
    while filled < AR_HEADER_LEN {
        match reader.read(&mut header[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
    match filled {
        0 => return Ok(None),
        AR_HEADER_LEN => {}
        _ => return Err(DebError::Truncated),
    }
    if &header[58..60] != b"`\n" {
        return Err(DebError::BadMemberHeader("bad end-of-header marker"));
    }
    let field = |range: std::ops::Range<usize>| {
        std::str::from_utf8(&header[range])
            .map(str::trim_end)
            .map_err(|_| DebError::BadMemberHeader("a header field is not ASCII"))
    };
    let name = field(0..16)?;
    let name = name.strip_suffix('/').unwrap_or(name).to_string();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DebError::BadMemberHeader(
            "a member name is empty or not printable",
        ));
    }
    let size_text = field(48..58)?;
    if size_text.is_empty() || !size_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DebError::BadMemberHeader(
            "the member size is not a decimal number",
        ));
    }
    let size = size_text
        .parse::<u64>()
        .map_err(|_| DebError::BadMemberHeader("the member size is out of range"))?;
    Ok(Some(MemberHeader { name, size }))
}

/// Reads exactly `size` bytes of a member (small members only).
fn read_member(reader: &mut impl Read, size: u64, limit: u64) -> Result<Vec<u8>, DebError> {
    if size > limit {
        return Err(DebError::ControlTooLarge { size });
    }
    let mut data = Vec::new();
    reader.take(size).read_to_end(&mut data)?;
    if data.len() as u64 != size {
        return Err(DebError::Truncated);
    }
    if size % 2 == 1 {
        // Members are 2-byte aligned; a missing pad byte at the very end is tolerated.
        let mut pad = [0u8; 1];
        let _ = reader.read(&mut pad)?;
    }
    Ok(data)
}

/// Reads the control file of a `.deb` from its first bytes (it never reads the data member).
pub fn read_control(reader: impl Read) -> Result<(Control, String), DebError> {
    let mut reader = BufReader::new(reader);
    let mut magic = [0u8; 8];
    reader
        .read_exact(&mut magic)
        .map_err(|_| DebError::NotAnArchive)?;
    if &magic != AR_MAGIC {
        return Err(DebError::NotAnArchive);
    }
    let first = read_member_header(&mut reader)?.ok_or(DebError::Truncated)?;
    if first.name != "debian-binary" {
        return Err(DebError::MissingDebianBinary(first.name));
    }
    let format = read_member(&mut reader, first.size, 64)?;
    let format = String::from_utf8_lossy(&format).trim().to_string();
    if !format.starts_with("2.") {
        return Err(DebError::UnsupportedFormat(format));
    }
    // dpkg allows members starting with `_` (ignored) between debian-binary and control.
    let control = loop {
        let header = read_member_header(&mut reader)?.ok_or(DebError::Truncated)?;
        if header.name.starts_with('_') {
            read_member(&mut reader, header.size, MAX_CONTROL_MEMBER)?;
            continue;
        }
        break header;
    };
    let compression = Compression::from_member(&control.name, "control.tar")
        .ok_or_else(|| DebError::MissingControlArchive(control.name.clone()))?;
    if control.size > MAX_CONTROL_MEMBER {
        return Err(DebError::ControlTooLarge { size: control.size });
    }
    let compressed = read_member(&mut reader, control.size, MAX_CONTROL_MEMBER)?;
    let text = control_file_from_member(compression, &compressed)?;
    let text = String::from_utf8(text).map_err(|_| ControlError::NotUtf8)?;
    let control = Control::parse(&text)?;
    Ok((control, text))
}

/// Reads the control file of a `.deb` held in memory.
pub fn read_control_bytes(bytes: &[u8]) -> Result<(Control, String), DebError> {
    read_control(bytes)
}

/// Reads decompressed bytes, refusing more than `limit` of them, and remembers why reading
/// stopped: the tar reader wraps every error, and the decoder's own errors and the limit
/// must still be told apart from a malformed tar.
struct Bounded<R> {
    inner: R,
    limit: u64,
    produced: u64,
    over_limit: bool,
    failure: Option<io::Error>,
}

impl<R: Read> Bounded<R> {
    fn new(inner: R, limit: u64) -> Self {
        Bounded {
            inner,
            limit,
            produced: 0,
            over_limit: false,
            failure: None,
        }
    }

    /// The limit or a decoder failure, if reading stopped because of either.
    fn stopped(&mut self, compression: Compression) -> Result<(), DebError> {
        if self.over_limit {
            return Err(DebError::DecompressedTooLarge {
                format: compression.name(),
                limit: self.limit,
            });
        }
        match self.failure.take() {
            Some(error) => Err(decoder_error(compression, &error)),
            None => Ok(()),
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.over_limit {
            return Err(io::Error::other("decompressed data exceeds the limit"));
        }
        // One byte more than the limit leaves room for, to see whether there is more.
        let room = (self.limit - self.produced).saturating_add(1);
        let wanted = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..wanted]) {
            Ok(read) => {
                self.produced += read as u64;
                if self.produced > self.limit {
                    self.over_limit = true;
                    return Err(io::Error::other("decompressed data exceeds the limit"));
                }
                Ok(read)
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Err(error),
            Err(error) => {
                let copy = io::Error::new(error.kind(), error.to_string());
                self.failure = Some(error);
                Err(copy)
            }
        }
    }
}

/// A decoder's error as a [`DebError::Decompress`], naming liblzma's memory limit.
fn decoder_error(compression: Compression, error: &io::Error) -> DebError {
    let memory_limit = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<liblzma::stream::Error>())
        .is_some_and(|inner| matches!(inner, liblzma::stream::Error::MemLimit));
    let reason = if memory_limit {
        format!("it needs more than {XZ_MEMORY_LIMIT} bytes of memory to decode (its dictionary is too large)")
    } else {
        error.to_string()
    };
    DebError::Decompress {
        format: compression.name(),
        reason,
    }
}

/// The window a zstd frame declares (the content size for a single-segment frame), read
/// from its header: ruzstd reserves the whole window before decoding a byte.
fn zstd_window(input: &[u8]) -> Result<u64, &'static str> {
    let [0x28, 0xb5, 0x2f, 0xfd, descriptor, rest @ ..] = input else {
        return Err("it does not start with a zstd frame");
    };
    let truncated = "its frame header is truncated";
    if descriptor & 0x20 == 0 {
        let window_descriptor = *rest.first().ok_or(truncated)?;
        let base = 1u64 << (10 + u32::from(window_descriptor >> 3));
        return Ok(base + base / 8 * u64::from(window_descriptor & 0x07));
    }
    let dictionary_id_len = match descriptor & 0x03 {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 4,
    };
    let size_len = match descriptor >> 6 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let field = rest
        .get(dictionary_id_len..dictionary_id_len + size_len)
        .ok_or(truncated)?;
    let mut bytes = [0u8; 8];
    bytes[..size_len].copy_from_slice(field);
    let size = u64::from_le_bytes(bytes);
    Ok(if size_len == 2 { size + 256 } else { size })
}

/// The decompressed bytes of a control archive member, as a stream.
fn decoder<'a>(compression: Compression, input: &'a [u8]) -> Result<Box<dyn Read + 'a>, DebError> {
    let failed = |reason: String| DebError::Decompress {
        format: compression.name(),
        reason,
    };
    Ok(match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Xz => {
            let stream = liblzma::stream::Stream::new_stream_decoder(
                XZ_MEMORY_LIMIT,
                liblzma::stream::CONCATENATED,
            )
            .map_err(|e| failed(e.to_string()))?;
            Box::new(liblzma::bufread::XzDecoder::new_stream(input, stream))
        }
        Compression::Zstd => {
            let window = zstd_window(input).map_err(|reason| failed(reason.to_string()))?;
            if window > MAX_ZSTD_WINDOW {
                return Err(failed(format!(
                    "its frame needs a {window}-byte window, more than the {MAX_ZSTD_WINDOW} allowed"
                )));
            }
            Box::new(
                ruzstd::decoding::StreamingDecoder::new(input)
                    .map_err(|e| failed(e.to_string()))?,
            )
        }
    })
}

/// Decompresses a whole member, refusing output larger than `limit`.
pub fn decompress(compression: Compression, input: &[u8], limit: u64) -> Result<Vec<u8>, DebError> {
    let mut reader = Bounded::new(decoder(compression, input)?, limit);
    let mut output = Vec::new();
    let result = reader.read_to_end(&mut output);
    reader.stopped(compression)?;
    result.map_err(|error| decoder_error(compression, &error))?;
    Ok(output)
}

/// The `./control` file of a compressed control archive. The archive is decompressed as it
/// is read, and read to its end (so that it is checked whole) but never past
/// [`MAX_CONTROL_TAR`] bytes.
fn control_file_from_member(compression: Compression, input: &[u8]) -> Result<Vec<u8>, DebError> {
    let mut reader = Bounded::new(decoder(compression, input)?, MAX_CONTROL_TAR);
    let found = control_file_from_tar(&mut reader);
    let rest = match found {
        Ok(_) => io::copy(&mut reader, &mut io::sink()).map(|_| ()),
        Err(_) => Ok(()),
    };
    reader.stopped(compression)?;
    rest.map_err(|error| decoder_error(compression, &error))?;
    found
}

/// The bytes of `./control` in a control tar archive.
fn control_file_from_tar(tar: impl Read) -> Result<Vec<u8>, DebError> {
    let tar_error = |error: io::Error| DebError::Tar(error.to_string());
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(tar_error)? {
        let entry = entry.map_err(tar_error)?;
        let path = entry.path_bytes();
        let path = path.strip_prefix(b"./").unwrap_or(&path);
        if path != b"control" {
            continue;
        }
        if !entry.header().entry_type().is_file() {
            return Err(DebError::Tar("./control is not a regular file".into()));
        }
        let size = entry.header().size().map_err(tar_error)?;
        if size > MAX_CONTROL_FILE {
            return Err(DebError::ControlTooLarge { size });
        }
        let mut data = Vec::new();
        entry.take(size).read_to_end(&mut data).map_err(tar_error)?;
        return Ok(data);
    }
    Err(DebError::NoControlFile)
}

/// Builds a small `.deb` in memory: deterministic (every timestamp is 0, owner root),
/// so the same input always gives the same bytes.
#[derive(Debug, Clone)]
pub struct DebBuilder {
    control: String,
    files: Vec<(String, Vec<u8>, u32)>,
    compression: Compression,
}

impl DebBuilder {
    /// A package with this control file text (a `DEBIAN/control` paragraph).
    pub fn new(control: &str) -> Self {
        DebBuilder {
            control: control.to_string(),
            files: Vec::new(),
            compression: Compression::None,
        }
    }

    /// Adds a file at `path` (relative to `/`, e.g. `usr/share/doc/x/README`).
    pub fn file(mut self, path: &str, contents: &[u8], mode: u32) -> Self {
        self.files.push((
            path.trim_start_matches('/').to_string(),
            contents.to_vec(),
            mode,
        ));
        self
    }

    /// Compresses both tar members with `compression` (default: none, which dpkg accepts).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The `.deb` bytes.
    pub fn build(&self) -> io::Result<Vec<u8>> {
        let control_tar = tar_of(&[(
            "control".to_string(),
            self.control.as_bytes().to_vec(),
            0o644,
        )])?;
        let data_tar = tar_of(&self.files)?;
        let mut out = Vec::new();
        out.extend_from_slice(AR_MAGIC);
        append_member(&mut out, "debian-binary", b"2.0\n");
        let suffix = self.compression.suffix();
        append_member(
            &mut out,
            &format!("control.tar{suffix}"),
            &compress(self.compression, &control_tar)?,
        );
        append_member(
            &mut out,
            &format!("data.tar{suffix}"),
            &compress(self.compression, &data_tar)?,
        );
        Ok(out)
    }
}

/// A tar archive of `./`, its parent directories and the files, all owned by root at time 0.
fn tar_of(files: &[(String, Vec<u8>, u32)]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut directories = std::collections::BTreeSet::new();
    directories.insert(String::from("./"));
    for (path, _, _) in files {
        let mut prefix = String::from("./");
        let parts: Vec<&str> = path.split('/').collect();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            prefix.push_str(part);
            prefix.push('/');
            directories.insert(prefix.clone());
        }
    }
    let header = |size: u64, mode: u32, kind: tar::EntryType| {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(mode);
        header.set_entry_type(kind);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let _ = header.set_username("root");
        let _ = header.set_groupname("root");
        header
    };
    for directory in &directories {
        let mut entry = header(0, 0o755, tar::EntryType::Directory);
        builder.append_data(&mut entry, directory, io::empty())?;
    }
    for (path, contents, mode) in files {
        let mut entry = header(contents.len() as u64, *mode, tar::EntryType::Regular);
        builder.append_data(&mut entry, format!("./{path}"), contents.as_slice())?;
    }
    builder.into_inner()
}

fn compress(compression: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut encoder = flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::best());
            encoder.write_all(data)?;
            encoder.finish()
        }
        Compression::Xz => {
            let mut out = Vec::new();
            lzma_rs::xz_compress(&mut &data[..], &mut out)?;
            Ok(out)
        }
        Compression::Zstd => Ok(ruzstd::encoding::compress_to_vec(
            data,
            ruzstd::encoding::CompressionLevel::Fastest,
        )),
    }
}

/// Appends one ar member (with its 2-byte alignment pad).
fn append_member(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let header = format!(
        "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
        name,
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

/// Where the payload of the data member starts and ends in a `.deb` built without
/// compression: used to tamper with file contents while keeping the archive valid.
pub fn member_range(deb: &[u8], member: &str) -> Option<std::ops::Range<usize>> {
    let mut offset = AR_MAGIC.len();
    if deb.get(..offset)? != AR_MAGIC {
        return None;
    }
    while offset + AR_HEADER_LEN <= deb.len() {
        let mut header_bytes = deb.get(offset..offset + AR_HEADER_LEN)?;
        let header = read_member_header(&mut header_bytes).ok()??;
        let start = offset + AR_HEADER_LEN;
        let end = start.checked_add(usize::try_from(header.size).ok()?)?;
        if header.name == member {
            return (end <= deb.len()).then_some(start..end);
        }
        offset = end + (end % 2);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CONTROL: &str = "Package: hello-fixture\nVersion: 1.0-1\nArchitecture: i386\nInstalled-Size: 12\nDepends: libc6 (>= 2.34)\nDescription: a fixture\n for the parser tests\n";

    fn sample(compression: Compression) -> Vec<u8> {
        DebBuilder::new(CONTROL)
            .file("usr/share/doc/hello-fixture/README", b"hello\n", 0o644)
            .compression(compression)
            .build()
            .expect("builds")
    }

    #[test]
    fn every_compression_round_trips() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Xz,
            Compression::Zstd,
        ] {
            let deb = sample(compression);
            let (control, text) = read_control_bytes(&deb).expect("readable");
            assert_eq!(control.package, "hello-fixture", "{compression:?}");
            assert_eq!(control.installed_size_kib, 12);
            assert_eq!(text, CONTROL);
        }
    }

    #[test]
    fn builds_are_deterministic() {
        assert_eq!(sample(Compression::None), sample(Compression::None));
        assert_eq!(sample(Compression::Gzip), sample(Compression::Gzip));
    }

    #[test]
    fn malformed_archives_are_errors() {
        let good = sample(Compression::Gzip);
        let control_start = member_range(&good, "control.tar.gz").expect("member").start;
        let mut wrong_first = good.clone();
        wrong_first[8..21].copy_from_slice(b"debian-binarX");
        let mut bad_size = good.clone();
        bad_size[8 + 48] = b'x';
        let mut bad_format = good.clone();
        bad_format[8 + 60] = b'3';
        let mut bad_gzip = good.clone();
        bad_gzip[control_start + 12] ^= 0xff;
        bad_gzip[control_start + 13] ^= 0xff;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("not ar", b"PK\x03\x04 something else".to_vec()),
            ("magic only", AR_MAGIC.to_vec()),
            ("truncated header", good[..30].to_vec()),
            ("truncated control", good[..control_start + 10].to_vec()),
            ("wrong first member", wrong_first),
            ("bad size", bad_size),
            ("format 3", bad_format),
            ("corrupt gzip", bad_gzip),
        ];
        for (label, bytes) in cases {
            assert!(read_control_bytes(&bytes).is_err(), "{label}");
        }
        let no_control = {
            let mut out = AR_MAGIC.to_vec();
            append_member(&mut out, "debian-binary", b"2.0\n");
            append_member(&mut out, "control.tar", &tar_of(&[]).expect("tar"));
            out
        };
        assert!(matches!(
            read_control_bytes(&no_control),
            Err(DebError::NoControlFile)
        ));
        let wrong_member = {
            let mut out = AR_MAGIC.to_vec();
            append_member(&mut out, "debian-binary", b"2.0\n");
            append_member(&mut out, "data.tar.gz", b"x");
            out
        };
        assert!(matches!(
            read_control_bytes(&wrong_member),
            Err(DebError::MissingControlArchive(name)) if name == "data.tar.gz"
        ));
    }

    /// `data` as a real xz stream (the builder's own xz is stored, not compressed).
    fn xz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        liblzma::read::XzEncoder::new(data, 6)
            .read_to_end(&mut out)
            .expect("xz");
        out
    }

    #[test]
    fn decompression_output_is_capped() {
        let big = vec![0u8; 100_000];
        let packed = [
            (
                Compression::Gzip,
                compress(Compression::Gzip, &big).expect("gzip"),
            ),
            (Compression::Xz, xz(&big)),
            (
                Compression::Zstd,
                compress(Compression::Zstd, &big).expect("zstd"),
            ),
        ];
        for (compression, packed) in packed {
            assert!(packed.len() < 1_000, "{compression:?}: {}", packed.len());
            assert!(
                matches!(
                    decompress(compression, &packed, 10_000),
                    Err(DebError::DecompressedTooLarge { limit: 10_000, .. })
                ),
                "{compression:?}"
            );
            assert_eq!(
                decompress(compression, &packed, 100_000)
                    .expect("fits")
                    .len(),
                100_000,
                "{compression:?}"
            );
            assert!(matches!(
                decompress(compression, &packed, 99_999),
                Err(DebError::DecompressedTooLarge { .. })
            ));
        }
        assert!(matches!(
            decompress(Compression::None, &big, 99_999),
            Err(DebError::DecompressedTooLarge { .. })
        ));
    }

    #[test]
    fn xz_streams_that_need_too_much_memory_are_refused() {
        // The one block header of liblzma's output: size, flags, then the LZMA2 filter
        // (id 0x21, one property byte: the dictionary size), padding and a CRC32.
        let mut stream = xz(CONTROL.as_bytes());
        assert_eq!(&stream[12..16], &[0x02, 0x00, 0x21, 0x01]);
        let with_dictionary = |stream: &mut Vec<u8>, property: u8| {
            stream[16] = property;
            let mut crc = flate2::Crc::new();
            crc.update(&stream[12..20]);
            stream[20..24].copy_from_slice(&crc.sum().to_le_bytes());
        };
        // Property 2n is 2^(n + 12) bytes: 64 MiB (`xz -9`) decodes; 128 MiB and 4 GiB are
        // refused before anything is allocated.
        with_dictionary(&mut stream, 28);
        assert_eq!(
            decompress(Compression::Xz, &stream, MAX_CONTROL_TAR).expect("xz -9"),
            CONTROL.as_bytes()
        );
        for property in [30, 40] {
            with_dictionary(&mut stream, property);
            match decompress(Compression::Xz, &stream, MAX_CONTROL_TAR) {
                Err(DebError::Decompress {
                    format: "xz",
                    reason,
                }) => assert!(reason.contains("memory"), "{reason}"),
                other => panic!("dictionary {property} was not refused: {other:?}"),
            }
        }
    }

    #[test]
    fn zstd_windows_are_read_from_the_frame_header() {
        let magic = [0x28, 0xb5, 0x2f, 0xfd];
        let frame = |header: &[u8]| [&magic[..], header].concat();
        // Window descriptors: 2^(10 + exponent) plus eighths of it.
        assert_eq!(zstd_window(&frame(&[0x00, 0x50])), Ok(1 << 20));
        assert_eq!(zstd_window(&frame(&[0x00, 0x84])), Ok(96 << 20));
        assert_eq!(
            zstd_window(&frame(&[0x00, 0xff])),
            Ok((1 << 41) + 7 * (1 << 38))
        );
        // Single segment: the content size is the window (1, 2 (+256), 4 or 8 bytes),
        // after a dictionary id of 0, 1, 2 or 4 bytes.
        assert_eq!(zstd_window(&frame(&[0x20, 200])), Ok(200));
        assert_eq!(zstd_window(&frame(&[0x60, 0x00, 0x01])), Ok(256 + 256));
        assert_eq!(zstd_window(&frame(&[0xa1, 9, 0, 0, 0, 2])), Ok(2 << 24));
        assert_eq!(
            zstd_window(&frame(&[0xe3, 1, 2, 3, 4, 0, 0, 0, 0, 1, 0, 0, 0])),
            Ok(1 << 32)
        );
        assert!(zstd_window(&frame(&[0x00])).is_err());
        assert!(zstd_window(&frame(&[0xe0, 1, 2])).is_err());
        assert!(zstd_window(&[0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]).is_err());
        assert!(zstd_window(b"").is_err());
        // A frame asking for more than the limit is refused before decoding.
        let mut large = frame(&[0x00, 0x84]);
        large.extend_from_slice(&[0x01, 0x00, 0x00]);
        assert!(matches!(
            decompress(Compression::Zstd, &large, MAX_CONTROL_TAR),
            Err(DebError::Decompress { format: "zstd", reason }) if reason.contains("window")
        ));
    }

    #[test]
    fn member_ranges_point_at_payloads() {
        let deb = sample(Compression::None);
        let range = member_range(&deb, "data.tar").expect("data member");
        assert!(deb[range].windows(6).any(|w| w == b"hello\n"));
        assert!(member_range(&deb, "nope").is_none());
        assert!(member_range(b"garbage", "data.tar").is_none());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = read_control_bytes(&bytes);
            let mut with_magic = AR_MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = read_control_bytes(&with_magic);
        }

        #[test]
        fn mutated_archives_never_panic(
            kind in 0usize..4,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let compression = [Compression::None, Compression::Gzip, Compression::Xz, Compression::Zstd][kind];
            let mut deb = sample(compression);
            for (index, byte) in flips {
                let at = index.index(deb.len());
                deb[at] ^= byte;
            }
            if truncate {
                deb.truncate(cut.index(deb.len()));
            }
            let _ = read_control_bytes(&deb);
        }

        #[test]
        fn random_compressed_payloads_never_panic(
            kind in 0usize..4,
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let compression = [Compression::None, Compression::Gzip, Compression::Xz, Compression::Zstd][kind];
            let mut headed = match compression {
                Compression::Gzip => vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3],
                Compression::Xz => vec![0xfd, b'7', b'z', b'X', b'Z', 0],
                Compression::Zstd => vec![0x28, 0xb5, 0x2f, 0xfd],
                Compression::None => Vec::new(),
            };
            headed.extend_from_slice(&bytes);
            let _ = decompress(compression, &headed, MAX_CONTROL_TAR);
        }
    }
}
