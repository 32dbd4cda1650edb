//! Incremental SSE frame decoder: bytes in, complete events out, partial input is a state.
//!
//! The proxy reads upstream socket data straight into [`Decoder::read_buf`] and calls
//! [`Decoder::next_frame`] until it returns `Ok(None)` ("need more bytes"). Each [`Frame`] carries
//! `raw`, the exact bytes of the event up to and including its terminating blank line, split off
//! the read buffer without copying, so an event the gateway does not rewrite is forwarded as the
//! very same bytes.
//!
//! # Parsing contract (WHATWG "event stream interpretation", byte-level)
//!
//! - Lines end in LF, CRLF or a lone CR. A CR that is the last buffered byte may be the first half
//!   of a CRLF, so the decoder waits for the next byte (or for [`Decoder::finish`]) before it
//!   decides where that line ends. Decoding is therefore independent of how the stream is split
//!   into reads: for any split, the frames are the same as for the whole input at once.
//! - A blank line ends a frame. Every blank line ends one, so a stray blank line is a frame of
//!   its own with no fields ([`Frame::comment_only`]), which keeps `raw` lossless: concatenating
//!   every `raw` gives back the input.
//! - A UTF-8 BOM at stream start is skipped by the parser but kept in the first frame's `raw`
//!   (it was at the start of the upstream stream, it belongs at the start of ours).
//! - `data` values are joined with `\n`; one space after the colon is removed; a line without a
//!   colon is a field with an empty value; lines starting with `:` are comments; unknown fields
//!   are ignored; `id` containing NUL is ignored; `retry` that is not all ASCII digits (or does not
//!   fit in a `u64`) is ignored. Values are bytes: the decoder does not validate UTF-8.
//! - `id` is reported per frame (the field of *this* frame), not the sticky "last event ID".
//!
//! # End of stream
//!
//! At upstream EOF call [`Decoder::finish`] until it returns `Ok(None)`: it first returns frames
//! that became complete only now (a final CR), then reports any leftover bytes that are not a
//! complete event as [`SseError::Truncated`]. A truncated event must never be forwarded as if it
//! were complete. A leftover that is only a BOM is not an event and not an error.
//!
//! # Memory usage
//!
//! A frame (including its terminator, and the BOM for the first frame) may be at most
//! `max_frame_bytes` long; a longer one, complete or still partial, is
//! [`SseError::FrameTooLarge`]. The buffer therefore never holds more than `max_frame_bytes` plus
//! whatever the caller read in one go. A multi-line `data` value is copied once into a buffer no
//! larger than the frame; a single-line one is a zero-copy slice of `raw`.
//!
//! Errors are sticky: once a decoder returned an error it returns the same error forever.

use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// The UTF-8 byte order mark, skipped once at stream start.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One complete SSE event (or a comment-only / empty block) as it came from upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The exact original bytes of the event, including its terminating blank line (and, for
    /// the first frame of a stream, a leading BOM). Forward this when the event is unchanged.
    pub raw: Bytes,
    /// The `data` field values joined with `\n`, or `None` when the frame has no `data` line.
    /// `Some(empty)` for `data:` alone. A slice of `raw` when there is exactly one data line.
    pub data: Option<Bytes>,
    /// The last `event` field value, if any (a slice of `raw`).
    pub event: Option<Bytes>,
    /// The last valid `id` field value of this frame, if any (a slice of `raw`).
    pub id: Option<Bytes>,
    /// The last valid `retry` field value, in milliseconds.
    pub retry: Option<u64>,
    /// Number of non-comment lines (known or unknown fields) in the frame.
    field_lines: usize,
}

/// Why a stream cannot be decoded further. Both are upstream-side faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    /// A frame (complete or partial) is longer than the configured limit.
    FrameTooLarge {
        /// The configured `max_frame_bytes`.
        limit: usize,
    },
    /// The stream ended in the middle of an event (no terminating blank line).
    Truncated {
        /// How many bytes were left in the buffer (still readable via [`Decoder::buffered`]).
        buffered: usize,
    },
}

/// Accumulated `data` value of the frame being parsed.
#[derive(Debug, Default)]
enum DataAcc {
    /// No `data` line yet.
    #[default]
    None,
    /// Exactly one `data` line: its value's range in the buffer (zero-copy).
    One(Range<usize>),
    /// Several `data` lines, already joined with `\n`.
    Many(Vec<u8>),
}

/// Incremental SSE decoder over an owned read buffer. See the module docs for the contract.
#[derive(Debug)]
pub struct Decoder {
    /// Buffered, not yet returned bytes; index 0 is the start of the current frame.
    buf: BytesMut,
    max_frame_bytes: usize,
    /// Still at stream start: the BOM check has not been decided yet.
    at_start: bool,
    /// `finish` was called: a trailing CR ends a line, a partial BOM is content.
    eof: bool,
    /// Sticky error.
    failed: Option<SseError>,
    /// Start of the first line not yet parsed.
    line_start: usize,
    /// Bytes in `line_start..line_scan` are known to hold no CR/LF (avoids rescanning a long
    /// line on every small read). Points at a trailing CR while waiting for its successor.
    line_scan: usize,
    /// Where the current frame's content starts (3 after a BOM, else 0); used at EOF.
    body_start: usize,
    data: DataAcc,
    event: Option<Range<usize>>,
    id: Option<Range<usize>>,
    retry: Option<u64>,
    field_lines: usize,
}

impl Frame {
    /// True when the data is exactly `[DONE]` (the OpenAI end-of-stream sentinel).
    pub fn is_done(&self) -> bool {
        self.data.as_deref() == Some(b"[DONE]".as_slice())
    }

    /// True when the frame has no field lines at all: only comments (keep-alives such as
    /// `: ping`) or nothing but the blank line. The gateway forwards these unchanged.
    pub fn comment_only(&self) -> bool {
        self.field_lines == 0
    }

    /// The event type as UTF-8, if present and valid.
    pub fn event_str(&self) -> Option<&str> {
        self.event
            .as_deref()
            .and_then(|e| std::str::from_utf8(e).ok())
    }
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::FrameTooLarge { limit } => {
                write!(f, "upstream SSE frame exceeds {limit} bytes")
            }
            SseError::Truncated { buffered } => {
                write!(
                    f,
                    "upstream SSE stream ended inside an event ({buffered} bytes pending)"
                )
            }
        }
    }
}

impl std::error::Error for SseError {}

impl Decoder {
    /// A decoder that rejects frames longer than `max_frame_bytes` (terminator included).
    pub fn new(max_frame_bytes: usize) -> Self {
        Decoder {
            buf: BytesMut::new(),
            max_frame_bytes,
            at_start: true,
            eof: false,
            failed: None,
            line_start: 0,
            line_scan: 0,
            body_start: 0,
            data: DataAcc::None,
            event: None,
            id: None,
            retry: None,
            field_lines: 0,
        }
    }

    /// The read buffer: read socket data directly into it (e.g. after `reserve`), then call
    /// [`Decoder::next_frame`]. Only append; bytes already in it must not be changed (if the
    /// buffer is shrunk anyway, the pending frame is restarted from what is left: wrong output,
    /// but no panic).
    pub fn read_buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Append a copy of `data` to the read buffer.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// True when no bytes are buffered (nothing partial pending).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Number of buffered bytes not yet returned in a frame.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// The buffered bytes not yet returned in a frame (e.g. the tail after `Truncated`).
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// The configured frame size limit.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// The next complete frame, or `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`SseError::FrameTooLarge`] when the current frame exceeds the limit; afterwards (and
    /// after any error) the same error again.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SseError> {
        self.poll()
    }

    /// Signal upstream EOF. Call until `Ok(None)`: returns frames that only EOF completes (a
    /// final lone CR), then `Ok(None)` if nothing is left.
    ///
    /// # Errors
    ///
    /// [`SseError::Truncated`] when bytes of an unterminated event remain;
    /// [`SseError::FrameTooLarge`] as for [`Decoder::next_frame`].
    pub fn finish(&mut self) -> Result<Option<Frame>, SseError> {
        self.eof = true;
        if let Some(frame) = self.poll()? {
            return Ok(Some(frame));
        }
        if self.buf.len() == self.body_start {
            // Empty, or only a BOM: no event was started.
            return Ok(None);
        }
        Err(self.fail(SseError::Truncated {
            buffered: self.buf.len(),
        }))
    }

    /// Record a sticky error; drop the buffer unless the caller may want the tail.
    fn fail(&mut self, err: SseError) -> SseError {
        if let SseError::FrameTooLarge { .. } = err {
            self.buf = BytesMut::new();
            self.reset_frame();
        }
        self.failed = Some(err);
        err
    }

    /// No complete frame is buffered: everything buffered belongs to the current frame.
    fn need_more(&mut self) -> Result<Option<Frame>, SseError> {
        if self.buf.len() > self.max_frame_bytes {
            return Err(self.fail(SseError::FrameTooLarge {
                limit: self.max_frame_bytes,
            }));
        }
        Ok(None)
    }

    fn poll(&mut self) -> Result<Option<Frame>, SseError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if self.line_scan > self.buf.len() {
            // The caller shrank `read_buf()` (a contract violation): rather than index out of
            // bounds, start the current frame over from what is left.
            self.reset_frame();
        }
        if self.at_start {
            let n = self.buf.len().min(BOM.len());
            let prefix_of_bom = self.buf[..n] == BOM[..n];
            if prefix_of_bom && n < BOM.len() && !self.eof {
                return self.need_more();
            }
            self.at_start = false;
            if prefix_of_bom && n == BOM.len() {
                self.body_start = BOM.len();
                self.line_start = BOM.len();
                self.line_scan = BOM.len();
            }
        }
        loop {
            let Some(i) = memchr::memchr2(b'\n', b'\r', &self.buf[self.line_scan..]) else {
                self.line_scan = self.buf.len();
                return self.need_more();
            };
            let term = self.line_scan + i;
            let next = if self.buf[term] == b'\n' {
                term + 1
            } else if let Some(&after) = self.buf.get(term + 1) {
                if after == b'\n' { term + 2 } else { term + 1 }
            } else if self.eof {
                term + 1
            } else {
                // A CR as the last byte: wait to see whether an LF follows.
                self.line_scan = term;
                return self.need_more();
            };
            if next > self.max_frame_bytes {
                return Err(self.fail(SseError::FrameTooLarge {
                    limit: self.max_frame_bytes,
                }));
            }
            let line = self.line_start..term;
            self.line_start = next;
            self.line_scan = next;
            if line.is_empty() {
                return Ok(Some(self.emit(next)));
            }
            self.apply_line(line);
        }
    }

    /// Interpret one non-empty line of the current frame.
    fn apply_line(&mut self, line: Range<usize>) {
        let bytes = &self.buf[line.clone()];
        if bytes.first() == Some(&b':') {
            return;
        }
        self.field_lines += 1;
        let (name, value) = match memchr::memchr(b':', bytes) {
            Some(c) => {
                let mut v = line.start + c + 1;
                if self.buf.get(v) == Some(&b' ') && v < line.end {
                    v += 1;
                }
                (line.start..line.start + c, v..line.end)
            }
            None => (line.clone(), line.end..line.end),
        };
        match &self.buf[name] {
            b"data" => {
                self.data = match std::mem::take(&mut self.data) {
                    DataAcc::None => DataAcc::One(value),
                    DataAcc::One(first) => {
                        let mut joined = Vec::with_capacity(first.len() + 1 + value.len());
                        joined.extend_from_slice(&self.buf[first]);
                        joined.push(b'\n');
                        joined.extend_from_slice(&self.buf[value]);
                        DataAcc::Many(joined)
                    }
                    DataAcc::Many(mut joined) => {
                        joined.push(b'\n');
                        joined.extend_from_slice(&self.buf[value]);
                        DataAcc::Many(joined)
                    }
                };
            }
            b"event" => self.event = Some(value),
            // An `id` containing NUL is ignored (WHATWG).
            b"id" if memchr::memchr(0, &self.buf[value.clone()]).is_none() => {
                self.id = Some(value);
            }
            b"retry" => {
                if let Some(ms) = parse_retry(&self.buf[value]) {
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
    }

    /// Split the completed frame `0..end` off the buffer and build its [`Frame`].
    fn emit(&mut self, end: usize) -> Frame {
        let raw = self.buf.split_to(end).freeze();
        let data = match std::mem::take(&mut self.data) {
            DataAcc::None => None,
            DataAcc::One(r) => Some(raw.slice(r)),
            DataAcc::Many(joined) => Some(Bytes::from(joined)),
        };
        let frame = Frame {
            data,
            event: self.event.take().map(|r| raw.slice(r)),
            id: self.id.take().map(|r| raw.slice(r)),
            retry: self.retry.take(),
            field_lines: self.field_lines,
            raw,
        };
        self.reset_frame();
        frame
    }

    fn reset_frame(&mut self) {
        self.line_start = 0;
        self.line_scan = 0;
        self.body_start = 0;
        self.data = DataAcc::None;
        self.event = None;
        self.id = None;
        self.retry = None;
        self.field_lines = 0;
    }
}

/// `retry` must be non-empty ASCII digits; values that overflow `u64` are ignored.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode `input` fed whole, then finish; return frames and the terminal result.
    fn decode(input: &[u8], max: usize) -> (Vec<Frame>, Result<(), SseError>) {
        let mut d = Decoder::new(max);
        d.feed(input);
        let mut frames = Vec::new();
        loop {
            match d.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Err(e)),
            }
        }
        loop {
            match d.finish() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => return (frames, Ok(())),
                Err(e) => return (frames, Err(e)),
            }
        }
    }

    fn datas(frames: &[Frame]) -> Vec<Option<&[u8]>> {
        frames.iter().map(|f| f.data.as_deref()).collect()
    }

    #[test]
    fn data_values_for_each_syntax() {
        type Case = (
            &'static str,
            &'static [u8],
            &'static [Option<&'static [u8]>],
        );
        let cases: &[Case] = &[
            ("lf", b"data: a\n\n", &[Some(b"a")]),
            ("crlf", b"data: a\r\n\r\n", &[Some(b"a")]),
            ("cr", b"data: a\r\r", &[Some(b"a")]),
            (
                "mixed endings",
                b"data: a\r\ndata: b\rdata: c\n\n",
                &[Some(b"a\nb\nc")],
            ),
            ("no space", b"data:a\n\n", &[Some(b"a")]),
            ("only one space stripped", b"data:  a\n\n", &[Some(b" a")]),
            ("no colon is empty value", b"data\n\n", &[Some(b"")]),
            ("empty data", b"data:\n\n", &[Some(b"")]),
            (
                "multi-line",
                b"data: {\ndata: \"x\"\ndata: }\n\n",
                &[Some(b"{\n\"x\"\n}")],
            ),
            (
                "two frames",
                b"data: 1\n\ndata: 2\n\n",
                &[Some(b"1"), Some(b"2")],
            ),
            ("comment only", b": ping\n\n", &[None]),
            ("comment mixed", b": c\ndata: x\n: d\n\n", &[Some(b"x")]),
            ("event without data", b"event: e\n\n", &[None]),
            ("stray blank line", b"\ndata: x\n\n", &[None, Some(b"x")]),
            ("bom", b"\xEF\xBB\xBFdata: x\n\n", &[Some(b"x")]),
            (
                "bom only at start",
                b"data: x\n\n\xEF\xBB\xBFdata: y\n\n",
                &[Some(b"x"), None],
            ),
            (
                "unknown field ignored",
                b"foo: bar\ndata: x\n\n",
                &[Some(b"x")],
            ),
            ("colon in value", b"data: a:b\n\n", &[Some(b"a:b")]),
            (
                "utf8 value",
                "data: héllo 🦀\n\n".as_bytes(),
                &[Some(b"h\xC3\xA9llo \xF0\x9F\xA6\x80")],
            ),
        ];
        for (name, input, want) in cases {
            let (frames, end) = decode(input, 1024);
            assert_eq!(end, Ok(()), "{name}");
            assert_eq!(datas(&frames), want.to_vec(), "{name}");
            let joined: Vec<u8> = frames.iter().flat_map(|f| f.raw.to_vec()).collect();
            assert_eq!(&joined, input, "{name}: raw must be lossless");
        }
    }

    #[test]
    fn event_id_retry_fields() {
        let (frames, end) = decode(b"event: delta\nid: 7\nretry: 1500\ndata: x\n\n", 1024);
        assert_eq!(end, Ok(()));
        let f = &frames[0];
        assert_eq!(f.event_str(), Some("delta"));
        assert_eq!(f.id.as_deref(), Some(b"7".as_slice()));
        assert_eq!(f.retry, Some(1500));
        assert!(!f.comment_only());
    }

    #[test]
    fn invalid_id_and_retry_are_ignored() {
        type Case = (&'static [u8], Option<&'static [u8]>, Option<u64>);
        let cases: &[Case] = &[
            (b"id: a\0b\nretry: 12a\n\n", None, None),
            (b"id\nretry:\n\n", Some(b""), None),
            (b"retry: 99999999999999999999999\n\n", None, None),
            (b"id: 1\nid: 2\nretry: 5\nretry: x\n\n", Some(b"2"), Some(5)),
        ];
        for (input, id, retry) in cases {
            let (frames, _) = decode(input, 1024);
            assert_eq!(frames[0].id.as_deref(), *id, "{input:?}");
            assert_eq!(frames[0].retry, *retry, "{input:?}");
        }
    }

    #[test]
    fn done_and_comment_only_flags() {
        let (frames, _) = decode(b": keepalive\n\ndata: [DONE]\n\ndata: [DONE] \n\n", 1024);
        assert!(frames[0].comment_only() && frames[0].data.is_none());
        assert!(frames[1].is_done());
        assert!(!frames[2].is_done());
    }

    #[test]
    fn single_data_line_is_a_slice_of_raw() {
        let (frames, _) = decode(b"data: payload\n\n", 1024);
        let f = &frames[0];
        let data = f.data.as_ref().map(|d| d.as_ptr());
        assert_eq!(data, Some(f.raw[6..].as_ptr()));
    }

    #[test]
    fn trailing_cr_waits_for_next_byte() {
        let mut d = Decoder::new(1024);
        d.feed(b"data: a\r\n\r");
        assert_eq!(d.next_frame(), Ok(None), "CR may be half of CRLF");
        d.feed(b"\n");
        let f = d.next_frame().ok().flatten();
        assert_eq!(
            f.map(|f| f.raw),
            Some(Bytes::from_static(b"data: a\r\n\r\n"))
        );
        assert!(d.is_empty());
    }

    #[test]
    fn trailing_cr_at_eof_ends_the_frame() {
        let mut d = Decoder::new(1024);
        d.feed(b"data: a\r\r");
        assert_eq!(d.next_frame(), Ok(None));
        let f = d.finish().ok().flatten();
        assert_eq!(f.and_then(|f| f.data), Some(Bytes::from_static(b"a")));
        assert_eq!(d.finish(), Ok(None));
    }

    #[test]
    fn truncated_at_eof() {
        let cases: &[(&str, &[u8], usize)] = &[
            ("unterminated line", b"data: {\"a\"", 10),
            ("no blank line", b"data: x\n", 8),
            ("comment without blank line", b": ping\n", 7),
            ("after a complete frame", b"data: 1\n\ndata: 2", 7),
            ("partial bom", b"\xEF\xBB", 2),
        ];
        for (name, input, buffered) in cases {
            let (_, end) = decode(input, 1024);
            assert_eq!(
                end,
                Err(SseError::Truncated {
                    buffered: *buffered
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn clean_eof_is_not_truncated() {
        for input in [&b""[..], b"data: x\n\n", b"\xEF\xBB\xBF"] {
            assert_eq!(decode(input, 1024).1, Ok(()), "{input:?}");
        }
    }

    #[test]
    fn frame_too_large() {
        let cases: &[(&str, &[u8], usize, usize)] = &[
            ("complete frame over limit", b"data: 0123456789\n\n", 10, 0),
            ("partial line over limit", b"data: 0123456789", 10, 0),
            (
                "many lines over limit",
                b"data: 1\ndata: 2\ndata: 3\n\n",
                16,
                0,
            ),
            (
                "exact limit is fine then next too big",
                b"data: 1\n\ndata: 22\n\n",
                9,
                1,
            ),
        ];
        for (name, input, max, ok_frames) in cases {
            let (frames, end) = decode(input, *max);
            assert_eq!(frames.len(), *ok_frames, "{name}");
            assert_eq!(end, Err(SseError::FrameTooLarge { limit: *max }), "{name}");
        }
    }

    #[test]
    fn errors_are_sticky_and_free_the_buffer() {
        let mut d = Decoder::new(4);
        d.feed(b"data: too long");
        let err = Err(SseError::FrameTooLarge { limit: 4 });
        assert_eq!(d.next_frame(), err);
        assert!(d.is_empty());
        d.feed(b"\n\n");
        assert_eq!(d.next_frame(), err);
        assert_eq!(d.finish(), err);
    }

    #[test]
    fn read_buf_is_zero_copy_source() {
        let mut d = Decoder::new(1024);
        d.read_buf().extend_from_slice(b"data: x\n\n");
        let f = d.next_frame().ok().flatten();
        assert_eq!(f.map(|f| f.is_done()), Some(false));
    }

    #[test]
    fn shrinking_read_buf_does_not_panic() {
        let mut d = Decoder::new(1024);
        d.feed(b"data: a\ndata: bbbb");
        assert_eq!(d.next_frame(), Ok(None));
        d.read_buf().clear();
        d.feed(b"data: c\n\n");
        let f = d.next_frame().ok().flatten();
        assert_eq!(f.and_then(|f| f.data), Some(Bytes::from_static(b"c")));
    }

    #[test]
    fn parse_retry_table() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"0", Some(0)),
            (b"18446744073709551615", Some(u64::MAX)),
            (b"18446744073709551616", None),
            (b"", None),
            (b"-1", None),
            (b" 1", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_retry(input), *want, "{input:?}");
        }
    }
}
