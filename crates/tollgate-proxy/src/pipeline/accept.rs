//! Phase 1b, accept (body): read the request body under the limits. A `Content-Length` over
//! `limits.max_body_bytes` is refused with 413 before a single body byte is read; a chunked body
//! is refused as soon as it crosses the limit. Each wait for body bytes is bounded by
//! `limits.body_idle_timeout` (408). `Expect: 100-continue` gets its interim response only after
//! the route and the declared length were accepted.

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncWriteRent, AsyncWriteRentExt};
use tollgate_core::{Error, ErrorKind};
use tollgate_http::{BodyFraming, ChunkError, ChunkedDecoder, Progress, RequestHead};

use crate::inbound::Inbound;
use crate::snapshot::Snapshot;

/// Read the whole body of `head`.
pub async fn read_body<W: AsyncWriteRent>(
    snap: &Snapshot,
    head: &RequestHead,
    inb: &Inbound,
    wr: &mut W,
) -> Result<Bytes, Error> {
    let limits = &snap.config.limits;
    let max = limits.max_body_bytes;
    let too_large = || {
        Error::client(
            ErrorKind::BodyTooLarge,
            format!("Request body exceeds the limit of {max} bytes"),
        )
    };
    match head.framing {
        BodyFraming::None => return Ok(Bytes::new()),
        BodyFraming::ContentLength(n) if n > max => return Err(too_large()),
        BodyFraming::ContentLength(0) => return Ok(Bytes::new()),
        _ => {}
    }
    if head.expect_continue && inb.len() == 0 {
        let (res, _) = wr
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
            .await;
        if res.is_err() {
            return Err(Error::client(ErrorKind::InvalidRequest, "client went away"));
        }
    }
    let timeout = limits.body_idle_timeout;
    let idle = || {
        Error::client(
            ErrorKind::RequestTimeout,
            "request body not received within the body idle timeout",
        )
    };
    let gone = || {
        Error::client(
            ErrorKind::BadFraming,
            "connection closed before the request body was complete",
        )
        .with_code("incomplete_body")
    };
    match head.framing {
        BodyFraming::ContentLength(n) => {
            let n = n as usize;
            loop {
                let have = inb.len();
                if have >= n {
                    return Ok(inb.with_buf(|b| b.split_to(n).freeze()));
                }
                if inb.is_closed() {
                    return Err(gone());
                }
                monoio::time::timeout(timeout, inb.wait_more(have))
                    .await
                    .map_err(|_| idle())?;
            }
        }
        BodyFraming::Chunked => {
            let mut dec = ChunkedDecoder::new(max);
            let mut body = BytesMut::new();
            loop {
                let r = inb.with_buf(|b| dec.decode(b, &mut body));
                match r {
                    Ok(Progress::Done) => return Ok(body.freeze()),
                    Ok(Progress::NeedMore) => {}
                    Err(ChunkError::TooLarge) => return Err(too_large()),
                    Err(e) => {
                        return Err(Error::client(
                            ErrorKind::BadFraming,
                            format!("invalid chunked body: {e}"),
                        )
                        .with_code(e.code()));
                    }
                }
                if inb.is_closed() {
                    return Err(gone());
                }
                let have = inb.len();
                monoio::time::timeout(timeout, inb.wait_more(have))
                    .await
                    .map_err(|_| idle())?;
            }
        }
        BodyFraming::None => Ok(Bytes::new()),
    }
}
