//! Opening an input file: gzip is recognised by its first bytes (not its name), the format
//! by the first bytes of the content: a `filter-log-events`/`get-log-events` document,
//! `aws logs tail` output, or plain log lines. The file is read as a stream, never whole.

use super::export::looks_like_document;
use super::lines::LineFormat;
use std::io::{BufReader, Read};
use std::path::Path;

/// How much of the content is looked at to tell its format.
const HEAD_BYTES: usize = 64 << 10;

/// Read buffer of the text reader.
pub const BUFFER_BYTES: usize = 1 << 20;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"events": [...]}` as the AWS CLI prints it.
    Document,
    /// Text, one event per line or `aws logs tail` output.
    Lines(LineFormat),
}

/// An open input: the content's first bytes (already read to tell the format) and the rest.
pub struct Source {
    head: Vec<u8>,
    at: usize,
    rest: Box<dyn Read + Send>,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at < self.head.len() {
            let n = buf.len().min(self.head.len() - self.at);
            buf[..n].copy_from_slice(&self.head[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        self.rest.read(buf)
    }
}

/// An opened file: its format, its content as a buffered stream, its modification time.
pub struct Input {
    pub format: Format,
    pub reader: Source,
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
    Ok(Input { format, reader: Source { head, at: 0, rest }, gzip, modified_ms })
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
        }
        assert_eq!(format_of(b"2026-11-22T10:00:00.000000+00:00 s m\n"), Format::Lines(LineFormat::Tail));
        assert_eq!(format_of(b"{\"level\": \"INFO\"}\n"), Format::Lines(LineFormat::Plain));
        assert_eq!(format_of(b"\n\nSTART RequestId: r"), Format::Lines(LineFormat::Plain));
    }
}
