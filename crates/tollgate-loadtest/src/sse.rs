//! Incremental Server-Sent Events decoder: bytes in, `data` payloads out.
//!
//! Follows the WHATWG event-stream rules that matter to an OpenAI client: a line ends in `\r\n`,
//! `\n` or a bare `\r`; `data:` lines (one optional space after the colon) accumulate, joined by
//! `\n`; a blank line dispatches the event; comment lines (`:`) and other fields are ignored. A
//! line or event split across reads is kept until its end arrives (STYLE.md §5), so the decoder
//! gives the same events whatever the TCP segmentation.

/// Longest line kept; a longer one is truncated (its events still dispatch). 4 MiB is far above
/// any real chunk (the fleet's `huge_line` fault sends 2 MiB) and bounds memory per stream.
const MAX_LINE_BYTES: usize = 4 << 20;

/// SSE decoder state for one stream.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    /// The previous input ended in `\r`: a `\n` at the start of the next one is its pair.
    pending_cr: bool,
}

impl SseDecoder {
    /// Feeds bytes; calls `on_event` with each complete event's data.
    pub fn feed(&mut self, mut input: &[u8], on_event: &mut impl FnMut(&[u8])) {
        if self.pending_cr {
            self.pending_cr = false;
            if input.first() == Some(&b'\n') {
                input = &input[1..];
            }
        }
        while !input.is_empty() {
            match memchr::memchr2(b'\n', b'\r', input) {
                None => {
                    self.push_line_bytes(input);
                    return;
                }
                Some(i) => {
                    self.push_line_bytes(&input[..i]);
                    let cr = input[i] == b'\r';
                    input = &input[i + 1..];
                    if cr {
                        match input.first() {
                            Some(b'\n') => input = &input[1..],
                            None => self.pending_cr = true,
                            Some(_) => {}
                        }
                    }
                    self.end_line(on_event);
                }
            }
        }
    }

    fn push_line_bytes(&mut self, b: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.line.len());
        self.line.extend_from_slice(&b[..b.len().min(room)]);
    }

    fn end_line(&mut self, on_event: &mut impl FnMut(&[u8])) {
        if self.line.is_empty() {
            if self.has_data {
                on_event(&self.data);
            }
            self.data.clear();
            self.has_data = false;
            return;
        }
        let line = &self.line[..];
        let (field, value) = match memchr::memchr(b':', line) {
            Some(0) => {
                self.line.clear();
                return; // comment
            }
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        if field == b"data" {
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        self.line.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<String> {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut |e: &[u8]| {
                out.push(String::from_utf8_lossy(e).into_owned())
            });
        }
        out
    }

    #[test]
    fn events_are_the_same_at_every_split_point() {
        let wire: &[u8] =
            b"data: {\"a\":1}\n\n: comment\r\ndata:{\"b\":2}\r\n\r\nevent: x\rdata: l1\rdata: l2\r\rdata: [DONE]\n\n";
        let want = vec!["{\"a\":1}", "{\"b\":2}", "l1\nl2", "[DONE]"];
        assert_eq!(events(&[wire]), want);
        for i in 0..=wire.len() {
            for j in i..=wire.len() {
                assert_eq!(
                    events(&[&wire[..i], &wire[i..j], &wire[j..]]),
                    want,
                    "split {i},{j}"
                );
            }
        }
    }

    #[test]
    fn an_unterminated_event_is_not_dispatched() {
        assert_eq!(events(&[b"data: a\n\ndata: b\n"]), vec!["a"]);
    }
}
