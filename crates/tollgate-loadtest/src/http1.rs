//! HTTP/1.1 response framing for the load generator's client: head parsing and an incremental
//! chunked-body decoder. Pure functions over bytes (no sockets), so they are table-tested with
//! every split point.
//!
//! Partial input is a state, not an error (STYLE.md §5): [`parse_head`] answers `Ok(None)` until
//! the blank line arrives, and [`ChunkedDecoder::feed`] consumes what it can and remembers where
//! it stopped, even mid-size-line.

/// Most response headers we accept; a server sending more is broken for our purposes.
const MAX_HEADERS: usize = 64;

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body runs until the server closes.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Body framing.
    pub framing: Framing,
    /// False when the server said `Connection: close` or spoke HTTP/1.0 without keep-alive.
    pub keep_alive: bool,
    /// Bytes of the head, blank line included.
    pub len: usize,
}

/// Parses a response head from the start of `buf`. `Ok(None)`: need more bytes.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad response head: {e}")),
    };
    let status = resp.code.unwrap_or(0);
    let mut keep_alive = resp.version == Some(1);
    let mut framing = Framing::UntilClose;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value
                .split(|&b| b == b',')
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"))
            {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            if framing != Framing::Chunked {
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or("bad content-length")?;
                framing = Framing::Length(n);
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = h.value.trim_ascii();
            if v.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if v.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    // 1xx, 204 and 304 have no body whatever the headers say.
    if status < 200 || status == 204 || status == 304 {
        framing = Framing::Length(0);
    }
    if framing == Framing::UntilClose {
        keep_alive = false;
    }
    Ok(Some(Head {
        status,
        framing,
        keep_alive,
        len,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size,
    /// Skipping a chunk extension up to the line end.
    Ext,
    /// Saw `\r` after the size line; expecting `\n`.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// After chunk data; expecting `\r\n`.
    DataCr,
    /// Expecting the `\n` of the data terminator.
    DataLf,
    /// At the start of a trailer line (after the last chunk).
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// Saw `\r` of the final empty line.
    TrailerEndLf,
    /// The body is complete.
    Done,
}

/// Incremental `Transfer-Encoding: chunked` decoder.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    digits: u32,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            digits: 0,
        }
    }
}

impl ChunkedDecoder {
    /// True once the terminating zero-size chunk and trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`, handing payload slices to `out`. Returns the bytes consumed: all of
    /// `input`, or fewer once the body is complete (the rest belongs to the next response).
    pub fn feed(&mut self, input: &[u8], out: &mut impl FnMut(&[u8])) -> Result<usize, String> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            let b = input[i];
            match self.state {
                State::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let d = (b as char).to_digit(16).unwrap_or(0);
                        self.digits += 1;
                        if self.digits > 15 {
                            return Err("chunk size too large".into());
                        }
                        self.size = self.size * 16 + u64::from(d);
                    }
                    b';' | b' ' | b'\t' if self.digits > 0 => self.state = State::Ext,
                    b'\r' if self.digits > 0 => self.state = State::SizeLf,
                    b'\n' if self.digits > 0 => self.end_size_line(),
                    _ => return Err(format!("bad chunk size byte 0x{b:02x}")),
                },
                State::Ext => match b {
                    b'\r' => self.state = State::SizeLf,
                    b'\n' => self.end_size_line(),
                    _ => {}
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return Err("expected LF after chunk size".into());
                    }
                    self.end_size_line();
                }
                State::Data => {
                    let take =
                        (input.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    out(&input[i..i + take]);
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::DataCr => match b {
                    b'\r' => self.state = State::DataLf,
                    b'\n' => self.state = State::Size,
                    _ => return Err("expected CRLF after chunk data".into()),
                },
                State::DataLf => {
                    if b != b'\n' {
                        return Err("expected LF after chunk data".into());
                    }
                    self.state = State::Size;
                }
                State::TrailerStart => match b {
                    b'\r' => self.state = State::TrailerEndLf,
                    b'\n' => self.state = State::Done,
                    _ => self.state = State::TrailerLine,
                },
                State::TrailerLine => {
                    if b == b'\n' {
                        self.state = State::TrailerStart;
                    }
                }
                State::TrailerEndLf => {
                    if b != b'\n' {
                        return Err("expected LF after trailers".into());
                    }
                    self.state = State::Done;
                }
                State::Done => break,
            }
            i += 1;
        }
        Ok(i)
    }

    fn end_size_line(&mut self) {
        self.digits = 0;
        if self.size == 0 {
            self.state = State::TrailerStart;
        } else {
            self.state = State::Data;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(wire: &[u8], split: usize) -> (Vec<u8>, usize, bool) {
        let mut d = ChunkedDecoder::default();
        let mut body = Vec::new();
        let mut used = 0;
        for part in [&wire[..split], &wire[split..]] {
            let n = d
                .feed(part, &mut |s: &[u8]| body.extend_from_slice(s))
                .unwrap();
            used += n;
            if d.is_done() {
                break;
            }
        }
        (body, used, d.is_done())
    }

    #[test]
    fn chunked_body_decodes_identically_at_every_split_point() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for split in 0..=wire.len() {
            let (body, used, done) = decode_split(wire, split);
            assert_eq!(body, b"hello, world", "split {split}");
            assert!(done);
            assert_eq!(
                used,
                wire.len() - 4,
                "split {split}: stops before the next response"
            );
        }
    }

    #[test]
    fn chunked_decoder_accepts_bare_lf_and_rejects_garbage() {
        let (body, _, done) = decode_split(b"3\nabc\n0\n\n", 2);
        assert_eq!(body, b"abc");
        assert!(done);
        let mut d = ChunkedDecoder::default();
        assert!(d.feed(b"zz\r\n", &mut |_: &[u8]| {}).is_err());
    }

    /// (status, framing, keep-alive) of a parsed head.
    type Expect = Option<(u16, Framing, bool)>;

    #[test]
    fn head_framing_and_keep_alive() {
        let cases: &[(&[u8], Expect)] = &[
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                Some((200, Framing::Chunked, true)),
            ),
            (
                b"HTTP/1.1 503 x\r\ncontent-length: 12\r\nconnection: close\r\n\r\n",
                Some((503, Framing::Length(12), false)),
            ),
            (
                b"HTTP/1.0 200 OK\r\n\r\n",
                Some((200, Framing::UntilClose, false)),
            ),
            (
                b"HTTP/1.1 204 No Content\r\n\r\n",
                Some((204, Framing::Length(0), true)),
            ),
            (b"HTTP/1.1 200 OK\r\ncontent-le", None),
        ];
        for (wire, want) in cases {
            let got = parse_head(wire)
                .unwrap()
                .map(|h| (h.status, h.framing, h.keep_alive));
            assert_eq!(&got, want, "{}", String::from_utf8_lossy(wire));
        }
        assert!(parse_head(b"NOT HTTP\r\n\r\n").is_err());
    }
}
