//! A client connection: the keep-alive loop around `pipeline::handle`. Reads heads with the
//! header deadline, answers framing errors with a JSON 4xx and closes, and closes politely
//! (half-close, then drain the client's unread bytes briefly) so a final error response is not
//! destroyed by a TCP reset.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRent, Split, Splitable};
use tollgate_core::{Error, ErrorKind};
use tollgate_http::{HeadError, RequestHead, parse_request_head};

use crate::inbound::{Inbound, reader_task};
use crate::pipeline::{self, Action, respond};
use crate::worker::Worker;

/// How long a closing connection waits for the client's FIN while discarding its bytes.
/// Raising it protects slow clients' last responses longer; it holds the socket that long.
const LINGER: Duration = Duration::from_secs(2);

struct ConnGuard<'a>(&'a Worker);

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.0
            .active_conns
            .set(self.0.active_conns.get().saturating_sub(1));
        self.0.m(|m| m.active_connections -= 1);
    }
}

/// Serve one client connection until it closes.
pub async fn serve<S>(w: Rc<Worker>, stream: S, fd: RawFd, peer: SocketAddr)
where
    S: AsyncReadRent + AsyncWriteRent + Split + 'static,
{
    w.active_conns.set(w.active_conns.get() + 1);
    w.m(|m| {
        m.active_connections += 1;
        m.connections_total += 1;
    });
    let _guard = ConnGuard(&w);
    let (rd, mut wr) = stream.into_split();
    let inb = Inbound::new();
    monoio::spawn(reader_task(rd, inb.clone()));
    let mut seen_in = 0u64;
    loop {
        let head = match read_head(&w, &inb).await {
            HeadRead::Head(h) => h,
            HeadRead::Close => break,
            HeadRead::Error(e) => {
                let id = w.ids.borrow_mut().next_id();
                let n = respond::error(&mut wr, &id, &e, true).await;
                w.m(|m| m.bytes_out += n as u64);
                log_rejected(&w, &id, peer, &e);
                break;
            }
        };
        let action = pipeline::handle(&w, head, &inb, &mut wr, peer).await;
        let total = inb.total();
        w.m(|m| m.bytes_in += total - seen_in);
        seen_in = total;
        if action == Action::Close || w.shutdown.is_fired() {
            break;
        }
    }
    let _ = wr_shutdown(fd);
    inb.discard();
    let _ = monoio::time::timeout(LINGER, inb.closed()).await;
    inb.stop();
    // SAFETY: shutting down our own socket fd; the fd stays open until the read half drops.
    unsafe { libc::shutdown(fd, libc::SHUT_RD) };
}

fn wr_shutdown(fd: RawFd) -> i32 {
    // SAFETY: half-close of a socket fd this connection owns (still open: the halves hold it).
    unsafe { libc::shutdown(fd, libc::SHUT_WR) }
}

enum HeadRead {
    Head(RequestHead),
    Close,
    Error(Error),
}

async fn read_head(w: &Worker, inb: &Inbound) -> HeadRead {
    let snap = w.snapshot();
    let limits = &snap.config.limits;
    // Idle keep-alive wait: no bytes yet. Close silently on timeout or drain.
    if inb.len() == 0 {
        let got = monoio::select! {
            r = monoio::time::timeout(limits.keepalive_timeout, inb.wait_more(0)) => r.ok(),
            _ = w.shutdown.wait() => None,
        };
        match got {
            Some(n) if n > 0 => {}
            _ => return HeadRead::Close,
        }
    }
    // From the first byte, the whole head must arrive within the header deadline.
    let deadline = Instant::now() + limits.header_read_timeout;
    loop {
        let parsed = inb.with_buf(|buf| match parse_request_head(buf, &snap.head_limits) {
            Ok(Some(h)) => {
                let _ = buf.split_to(h.head_len.min(buf.len()));
                Ok(Some(h))
            }
            other => other,
        });
        match parsed {
            Ok(Some(h)) => return HeadRead::Head(h),
            Ok(None) => {}
            Err(e) => return HeadRead::Error(head_error(&e)),
        }
        if inb.is_closed() {
            return HeadRead::Close;
        }
        let have = inb.len();
        let left = deadline.saturating_duration_since(Instant::now());
        match monoio::time::timeout(left, inb.wait_more(have)).await {
            Ok(_) => {}
            Err(_) => {
                return HeadRead::Error(Error::client(
                    ErrorKind::RequestTimeout,
                    "request head not received within the header read timeout",
                ));
            }
        }
    }
}

/// Map a codec error to the gateway error (status decided by the codec's exhaustive mapping).
pub fn head_error(e: &HeadError) -> Error {
    let kind = match e.status() {
        414 => ErrorKind::UriTooLong,
        431 => ErrorKind::HeadersTooLarge,
        417 => ErrorKind::ExpectationFailed,
        413 => ErrorKind::BodyTooLarge,
        _ => ErrorKind::BadFraming,
    };
    Error::client(kind, e.to_string()).with_code(e.code())
}

fn log_rejected(w: &Worker, id: &str, peer: SocketAddr, e: &Error) {
    w.m(|m| {
        let k = (
            std::sync::Arc::from("-"),
            std::sync::Arc::from("-"),
            e.status(),
        );
        *m.requests.entry(k).or_default() += 1;
    });
    if w.log.enabled() {
        w.log.log(&crate::access_log::Record {
            time: crate::access_log::now_rfc3339(),
            request_id: id,
            client: peer.to_string(),
            method: "-",
            path: "-",
            model: None,
            backend: None,
            key: None,
            tenant: None,
            pool: None,
            route: None,
            status: e.status(),
            stream: false,
            bytes_in: 0,
            bytes_out: 0,
            duration_ms: 0.0,
            ttft_ms: None,
            prompt_tokens: None,
            completion_tokens: None,
            attempts: 0,
            error: Some(e.code()),
            scan: Vec::new(),
        });
    }
}
