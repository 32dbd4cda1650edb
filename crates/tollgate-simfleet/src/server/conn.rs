//! One TCP connection: a keep-alive loop of read request → route → respond, plus the socket
//! tricks faults need (RST via SO_LINGER 0, clean FIN, watching for the client going away).
//!
//! The socket is split so a response in progress can `select!` between "next engine event" and
//! "the read half saw EOF": that is how a client disconnect mid-stream is detected and turned
//! into an engine cancel within one event-loop turn.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::http::{self, ReadError};
use super::{Backend, Role, routes};

/// What to do with the connection after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Serve the next request.
    KeepAlive,
    /// Close with FIN.
    Close,
    /// Close with RST (SO_LINGER 0).
    Reset,
}

/// Connection state shared by the handlers.
pub struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    /// Bytes read but not yet consumed (pipelined requests land here).
    pub buf: BytesMut,
    /// Fleet-wide connection number.
    pub id: u64,
    /// Requests served on this connection so far, counting the current one.
    pub seq: u32,
    peer_closed: bool,
}

impl Conn {
    /// Writes all bytes (one `write_all`, so one TCP send with NODELAY for small writes).
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.wr.write_all(bytes).await
    }

    /// Resolves when the client closes its side or the socket errors. Bytes that arrive meanwhile
    /// (a pipelined request) are kept in `buf`. Cancel-safe.
    pub async fn closed(&mut self) {
        if self.peer_closed {
            return std::future::pending().await;
        }
        loop {
            self.buf.reserve(4096);
            match self.rd.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => {
                    self.peer_closed = true;
                    return;
                }
                Ok(_) if self.buf.len() > http::MAX_HEAD + http::MAX_BODY => {
                    self.peer_closed = true;
                    return;
                }
                Ok(_) => {}
            }
        }
    }

    /// Sleeps `d`; returns false if the client went away first.
    pub async fn sleep_watching(&mut self, d: Duration) -> bool {
        if self.peer_closed {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.closed() => false,
        }
    }

    /// Closes with RST: SO_LINGER 0, then close. The halves are reunited first because dropping
    /// an `OwnedWriteHalf` would send a FIN (shutdown(Write)) ahead of the reset.
    fn reset(self) {
        if let Ok(tcp) = self.rd.reunite(self.wr) {
            let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
        }
    }
}

/// Serves one accepted connection until it closes.
pub async fn serve(b: Arc<Backend>, role: Role, stream: TcpStream, id: u64) {
    let (rd, wr) = stream.into_split();
    let mut conn = Conn {
        rd,
        wr,
        buf: BytesMut::with_capacity(8192),
        id,
        seq: 0,
        peer_closed: false,
    };
    loop {
        let req = match http::read_request(&mut conn.rd, &mut conn.buf).await {
            Ok(r) => r,
            Err(ReadError::Eof | ReadError::Io) => break,
            Err(ReadError::Bad(status)) => {
                let body = format!(r#"{{"error":{{"message":"bad request","code":{status}}}}}"#);
                let resp = http::full(status, "application/json", &[], body.as_bytes(), false);
                let _ = conn.write(&resp).await;
                break;
            }
        };
        conn.seq += 1;
        b.stats.requests.fetch_add(1, Ordering::Relaxed);
        let keep = req.keep_alive;
        match routes::handle(&b, role, &mut conn, req).await {
            After::KeepAlive if keep && !conn.peer_closed => {}
            After::Reset => {
                conn.reset();
                return;
            }
            _ => break,
        }
    }
    let _ = conn.wr.shutdown().await;
    // Drain briefly so the FIN is not turned into an RST by unread request bytes.
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_millis(50), async {
        while let Ok(n) = conn.rd.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
