//! Opening an input file: gzip is recognised by its first bytes (not its name), the format
//! by the first bytes of the content: a `filter-log-events`/`get-log-events` document,
//! `aws logs tail` output, or plain log lines. The file is read as a stream, never whole.

use super::export::looks_like_document;
use super::lines::LineFormat;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How much of the content is looked at to tell its format.
const HEAD_BYTES: usize = 64 << 10;

/// Read buffer of the consumers.
pub const BUFFER_BYTES: usize = 1 << 20;

/// The largest element of a document's `events` array: a CloudWatch event is at most 1 MB,
/// so anything this large is not an export, and holding it would break the memory bound.
pub const MAX_ELEMENT_BYTES: u64 = 64 << 20;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"events": [...]}` as the AWS CLI prints it.
    Document,
    /// Text, one event per line or `aws logs tail` output.
    Lines(LineFormat),
}

/// Bytes read so far, and where the current document element began: a reader that pulls
/// more than [`MAX_ELEMENT_BYTES`] past the mark fails instead of buffering it.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    read: Arc<AtomicU64>,
    mark: Arc<AtomicU64>,
}

impl Meter {
    /// An element ended here.
    pub fn mark(&self) {
        self.mark.store(self.read.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Bytes read from the content (decompressed) so far.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

/// An open input: the content's first bytes (already read to tell the format) and the rest.
pub struct Source {
    head: Vec<u8>,
    at: usize,
    rest: Box<dyn Read + Send>,
    meter: Meter,
    limit_elements: bool,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = if self.at < self.head.len() {
            let n = buf.len().min(self.head.len() - self.at);
            buf[..n].copy_from_slice(&self.head[self.at..self.at + n]);
            self.at += n;
            n
        } else {
            self.rest.read(buf)?
        };
        let read = self.meter.read.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if self.limit_elements && read.saturating_sub(self.meter.mark.load(Ordering::Relaxed)) > MAX_ELEMENT_BYTES {
            return Err(std::io::Error::other(format!("an element of `events` is larger than {} MiB", MAX_ELEMENT_BYTES >> 20)));
        }
        Ok(n)
    }
}

/// An opened file: its format, its content as a buffered stream, its modification time.
pub struct Input {
    pub format: Format,
    pub reader: BufReader<Source>,
    pub meter: Meter,
    pub gzip: bool,
    /// Modification time, epoch ms (dates text lines before any time is seen).
    pub modified_ms: i64,
}

/// Opens `path`, decompressing gzip, and tells its format.
pub fn open(path: &Path) -> std::io::Result<Input> {
    let file = std::fs::File::open(path)?;
    let modified_ms = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0);
    let mut file = BufReader::with_capacity(BUFFER_BYTES, file);
    let magic = {
        use std::io::BufRead;
        file.fill_buf()?.get(..2).map(<[u8]>::to_vec)
    };
    let gzip = magic.as_deref() == Some(&[0x1f, 0x8b][..]);
    let mut rest: Box<dyn Read + Send> = if gzip { Box::new(flate2::read::MultiGzDecoder::new(file)) } else { Box::new(file) };
    let mut head = Vec::with_capacity(HEAD_BYTES);
    (&mut rest).take(HEAD_BYTES as u64).read_to_end(&mut head)?;
    let format = format_of(&head);
    let meter = Meter::default();
    let source = Source { head, at: 0, rest, meter: meter.clone(), limit_elements: format == Format::Document };
    Ok(Input { format, reader: BufReader::with_capacity(BUFFER_BYTES, source), meter, gzip, modified_ms })
}

/// The format of content that starts with `head`.
pub fn format_of(head: &[u8]) -> Format {
    if looks_like_document(head) {
        return Format::Document;
    }
    let text = String::from_utf8_lossy(head);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    Format::Lines(LineFormat::of_first_line(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_is_told_by_content_and_formats_by_their_start() {
        let dir = tempfile::tempdir().unwrap();
        let doc = br#"{"events": [{"timestamp": 1, "message": "m"}]}"#;
        let plain = dir.path().join("export.json");
        std::fs::write(&plain, doc).unwrap();
        // A gzip file whose name says nothing about it.
        let packed = dir.path().join("export.data");
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&packed).unwrap(), flate2::Compression::fast());
        gz.write_all(doc).unwrap();
        gz.finish().unwrap();
        for (path, gzip) in [(&plain, false), (&packed, true)] {
            let mut input = open(path).unwrap();
            assert_eq!((input.format, input.gzip), (Format::Document, gzip));
            let mut all = Vec::new();
            input.reader.read_to_end(&mut all).unwrap();
            assert_eq!(all, doc, "the head read to tell the format is part of the content");
            assert_eq!(input.meter.read(), doc.len() as u64);
        }
        assert_eq!(format_of(b"2026-11-22T10:00:00.000000+00:00 s m\n"), Format::Lines(LineFormat::Tail));
        assert_eq!(format_of(b"{\"level\": \"INFO\"}\n"), Format::Lines(LineFormat::Plain));
        assert_eq!(format_of(b"\n\nSTART RequestId: r"), Format::Lines(LineFormat::Plain));
    }

    #[test]
    fn a_huge_element_fails_the_read_instead_of_filling_memory() {
        let mut meter = Meter::default();
        let endless = std::io::repeat(b'x');
        let mut source = Source { head: Vec::new(), at: 0, rest: Box::new(endless), meter: meter.clone(), limit_elements: true };
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        let err = loop {
            match source.read(&mut buf) {
                Ok(n) => total += n as u64,
                Err(e) => break e,
            }
        };
        assert!(total <= MAX_ELEMENT_BYTES, "{total}");
        assert!(err.to_string().contains("larger than 64 MiB"), "{err}");
        // Marks move the bound along: a long document of small elements reads on.
        meter = source.meter.clone();
        meter.mark();
        assert!(source.read(&mut buf).is_ok());
    }
}
