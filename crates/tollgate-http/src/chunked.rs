//! Incremental, strict decoder for `Transfer-Encoding: chunked` bodies.
//!
//! Chunked bodies arrive split at arbitrary byte boundaries, so the decoder is a byte-level
//! state machine that consumes what it can from the input buffer, appends payload to an output
//! buffer, and says [`Progress::NeedMore`] at every boundary (partial input is a state, not an
//! error). Payload is copied in bulk; only the size lines, CRLFs and trailers are walked byte by
//! byte.
//!
//! Strictness, because a chunk-size line that two parsers read differently is a smuggling
//! vector (TE.TE / "chunk extension" desync attacks):
//!
//! * sizes are 1–16 hex digits, nothing else: no `0x`, `+`, `_`, or whitespace;
//! * a chunk extension may follow `;` and may contain any visible text and HT, but no CR, LF,
//!   NUL or other control byte, and at most [`MAX_CHUNK_EXT`] bytes per line;
//! * CRLF is mandatory after the size line, after each chunk's data and after each trailer line;
//!   bare LF or a CR followed by anything but LF is an error;
//! * trailer fields are checked for shape and discarded, up to [`MAX_TRAILER_BYTES`];
//! * the running payload total is checked against the caller's `max_body` as soon as each size
//!   line is read, so a 413 can be sent before the oversized data arrives.
//!
//! After an error the decoder's state is unspecified: answer and close the connection.

use std::fmt;

use bytes::{Buf, BytesMut};

/// Longest chunk-extension text accepted per size line, in bytes. Extensions are discarded, so
/// this bounds CPU spent on bytes that don't count towards `max_body`; raising it lets a client
/// send more unaccounted bytes per chunk.
pub const MAX_CHUNK_EXT: usize = 4096;

/// Total trailer bytes accepted (all trailer lines, excluding the final CRLF). Trailers are
/// discarded; raising this only raises the unaccounted bytes a client may send after the body.
pub const MAX_TRAILER_BYTES: usize = 8 * 1024;

/// Hex digits in a chunk size: 16 is exactly `u64`, so overflow is impossible by construction.
/// Leading zeros count; nobody sends more than a handful.
const MAX_SIZE_DIGITS: u8 = 16;

/// Result of feeding bytes to the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The body is not finished; call again when more input arrives.
    NeedMore,
    /// The last chunk and trailers were consumed; bytes left in the input belong to the next
    /// message.
    Done,
}

/// Why a chunked body was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkError {
    /// A size line that is not 1–16 hex digits followed by `;` or CRLF.
    InvalidChunkSize,
    /// A chunk size with more than 16 hex digits.
    ChunkSizeTooLong,
    /// The payload would exceed the caller's `max_body`.
    TooLarge,
    /// A control byte inside a chunk extension.
    InvalidChunkExtension,
    /// A chunk extension longer than [`MAX_CHUNK_EXT`].
    ChunkExtensionTooLong,
    /// Chunk data not followed by CRLF.
    MissingDataCrlf,
    /// An LF not preceded by CR.
    BareLf,
    /// A CR not followed by LF.
    BareCr,
    /// A trailer line that is not `name:value` text.
    InvalidTrailer,
    /// Trailers longer than [`MAX_TRAILER_BYTES`].
    TrailersTooLarge,
}

impl ChunkError {
    /// HTTP status to answer with (the connection must close afterwards).
    pub fn status(&self) -> u16 {
        match self {
            ChunkError::TooLarge => 413,
            ChunkError::TrailersTooLarge => 431,
            ChunkError::InvalidChunkSize
            | ChunkError::ChunkSizeTooLong
            | ChunkError::InvalidChunkExtension
            | ChunkError::ChunkExtensionTooLong
            | ChunkError::MissingDataCrlf
            | ChunkError::BareLf
            | ChunkError::BareCr
            | ChunkError::InvalidTrailer => 400,
        }
    }

    /// Stable snake_case code for the JSON error body and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            ChunkError::InvalidChunkSize => "invalid_chunk_size",
            ChunkError::ChunkSizeTooLong => "chunk_size_too_long",
            ChunkError::TooLarge => "body_too_large",
            ChunkError::InvalidChunkExtension => "invalid_chunk_extension",
            ChunkError::ChunkExtensionTooLong => "chunk_extension_too_long",
            ChunkError::MissingDataCrlf => "missing_chunk_data_crlf",
            ChunkError::BareLf => "bare_lf",
            ChunkError::BareCr => "bare_cr",
            ChunkError::InvalidTrailer => "invalid_trailer",
            ChunkError::TrailersTooLarge => "trailers_too_large",
        }
    }
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChunkError::InvalidChunkSize => "malformed chunk size",
            ChunkError::ChunkSizeTooLong => "chunk size has too many digits",
            ChunkError::TooLarge => "chunked body exceeds the size limit",
            ChunkError::InvalidChunkExtension => "control character in chunk extension",
            ChunkError::ChunkExtensionTooLong => "chunk extension too long",
            ChunkError::MissingDataCrlf => "chunk data not followed by CRLF",
            ChunkError::BareLf => "LF not preceded by CR in chunked body",
            ChunkError::BareCr => "CR not followed by LF in chunked body",
            ChunkError::InvalidTrailer => "malformed trailer field",
            ChunkError::TrailersTooLarge => "trailer fields too large",
        })
    }
}

impl std::error::Error for ChunkError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a size line.
    Size { value: u64, digits: u8 },
    /// Inside a chunk extension of a size line whose size was `size`.
    Ext { size: u64, len: usize },
    /// Saw the CR ending a size line; expecting LF.
    SizeLf { size: u64 },
    /// Copying chunk payload.
    Data { remaining: u64 },
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line or the final empty line.
    TrailerStart,
    /// Inside a trailer line.
    TrailerLine { saw_colon: bool },
    /// Saw the CR ending a trailer line.
    TrailerLf { saw_colon: bool },
    /// Saw the CR of the final empty line.
    FinalLf,
    /// Body complete.
    Done,
}

/// Incremental decoder for one chunked body. Create one per message.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    max_body: u64,
    body_len: u64,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder that rejects bodies whose payload exceeds `max_body` bytes.
    pub fn new(max_body: u64) -> Self {
        Self {
            state: State::Size {
                value: 0,
                digits: 0,
            },
            max_body,
            body_len: 0,
            trailer_bytes: 0,
        }
    }

    /// Payload bytes declared by the size lines read so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// True once the last chunk and trailers were consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consume bytes from the front of `input`, appending payload to `out`.
    ///
    /// Returns [`Progress::Done`] once the terminating chunk and trailers are consumed, leaving
    /// any following bytes (a pipelined request) in `input`. Call again after `Done` is a no-op.
    ///
    /// # Errors
    ///
    /// Any [`ChunkError`]; answer `err.status()` and close the connection.
    pub fn decode(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<Progress, ChunkError> {
        let mut i = 0;
        let result = self.run(input, &mut i, out);
        input.advance(i.min(input.len()));
        result
    }

    fn run(
        &mut self,
        input: &[u8],
        i: &mut usize,
        out: &mut BytesMut,
    ) -> Result<Progress, ChunkError> {
        loop {
            if let State::Data { remaining } = self.state {
                let avail = input.len().saturating_sub(*i);
                let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(avail);
                out.extend_from_slice(input.get(*i..*i + take).unwrap_or_default());
                *i += take;
                let remaining = remaining - take as u64;
                self.state = if remaining == 0 {
                    State::DataCr
                } else {
                    State::Data { remaining }
                };
                if remaining > 0 {
                    return Ok(Progress::NeedMore);
                }
                continue;
            }
            if self.state == State::Done {
                return Ok(Progress::Done);
            }
            let Some(&b) = input.get(*i) else {
                return Ok(Progress::NeedMore);
            };
            *i += 1;
            self.state = self.step(b)?;
        }
    }

    /// One byte of the non-payload grammar.
    fn step(&mut self, b: u8) -> Result<State, ChunkError> {
        Ok(match self.state {
            State::Size { value, digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if digits >= MAX_SIZE_DIGITS {
                        return Err(ChunkError::ChunkSizeTooLong);
                    }
                    let d = match b {
                        b'0'..=b'9' => b - b'0',
                        b'a'..=b'f' => b - b'a' + 10,
                        _ => b - b'A' + 10,
                    };
                    State::Size {
                        value: (value << 4) | u64::from(d),
                        digits: digits + 1,
                    }
                }
                b';' | b'\r' if digits > 0 => {
                    self.account(value)?;
                    if b == b';' {
                        State::Ext {
                            size: value,
                            len: 0,
                        }
                    } else {
                        State::SizeLf { size: value }
                    }
                }
                b'\n' if digits > 0 => return Err(ChunkError::BareLf),
                _ => return Err(ChunkError::InvalidChunkSize),
            },
            State::Ext { size, len } => match b {
                b'\r' => State::SizeLf { size },
                b'\n' => return Err(ChunkError::BareLf),
                b'\t' | 0x20..=0x7e | 0x80..=0xff => {
                    if len >= MAX_CHUNK_EXT {
                        return Err(ChunkError::ChunkExtensionTooLong);
                    }
                    State::Ext { size, len: len + 1 }
                }
                _ => return Err(ChunkError::InvalidChunkExtension),
            },
            State::SizeLf { size } => match b {
                b'\n' if size == 0 => State::TrailerStart,
                b'\n' => State::Data { remaining: size },
                _ => return Err(ChunkError::BareCr),
            },
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(ChunkError::MissingDataCrlf),
            },
            State::DataLf => match b {
                b'\n' => State::Size {
                    value: 0,
                    digits: 0,
                },
                _ => return Err(ChunkError::MissingDataCrlf),
            },
            State::TrailerStart => match b {
                b'\r' => State::FinalLf,
                b'\n' => return Err(ChunkError::BareLf),
                // A trailer line must start with a field name: no obs-fold, no `:value`.
                _ if crate::scan::is_tchar(b) => {
                    self.count_trailer()?;
                    State::TrailerLine { saw_colon: false }
                }
                _ => return Err(ChunkError::InvalidTrailer),
            },
            State::TrailerLine { saw_colon } => match b {
                b'\r' => State::TrailerLf { saw_colon },
                b'\n' => return Err(ChunkError::BareLf),
                b'\t' | 0x20..=0x7e | 0x80..=0xff => {
                    self.count_trailer()?;
                    State::TrailerLine {
                        saw_colon: saw_colon || b == b':',
                    }
                }
                _ => return Err(ChunkError::InvalidTrailer),
            },
            State::TrailerLf { saw_colon } => match b {
                b'\n' if saw_colon => State::TrailerStart,
                b'\n' => return Err(ChunkError::InvalidTrailer),
                _ => return Err(ChunkError::BareCr),
            },
            State::FinalLf => match b {
                b'\n' => State::Done,
                _ => return Err(ChunkError::BareCr),
            },
            // `run` handles these before reading a byte.
            State::Data { .. } | State::Done => self.state,
        })
    }

    fn account(&mut self, size: u64) -> Result<(), ChunkError> {
        match self.body_len.checked_add(size) {
            Some(total) if total <= self.max_body => {
                self.body_len = total;
                Ok(())
            }
            _ => Err(ChunkError::TooLarge),
        }
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILER_BYTES {
            return Err(ChunkError::TrailersTooLarge);
        }
        Ok(())
    }
}
