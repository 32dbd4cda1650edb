//! A minimal blocking RESP2 client over `std::net::TcpStream`, for the quota sync thread only.
//!
//! Hand-written (dependencies.md §9, approach A) because the sync thread needs a handful of
//! commands (`AUTH`, `SELECT`, `PING`, `EVAL`, `INCRBY`, `DECRBY`, `PEXPIRE`) with hard read/write
//! timeouts, and no Redis crate fits a runtime-free crate without pulling in tokio. Every call is
//! one request and one reply; any error means the connection is dropped and rebuilt.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest bulk string or array we accept in a reply; our replies are integers and "OK", so
/// anything larger means a confused peer.
const MAX_REPLY_LEN: i64 = 1 << 20;

/// A parsed reply.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// Where to connect, parsed from `redis://[:password@]host:port[/db]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) addr: String,
    pub(crate) password: Option<String>,
    pub(crate) db: Option<u32>,
}

pub(crate) fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("redis://")
        .ok_or_else(|| format!("redis url must start with redis://: {url:?}"))?;
    let (auth, hostpart) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let password = auth.map(|a| a.rsplit_once(':').map_or(a, |(_, p)| p).to_string());
    let (addr, db) = match hostpart.split_once('/') {
        Some((h, d)) if !d.is_empty() => (
            h,
            Some(d.parse().map_err(|_| format!("bad db number in {url:?}"))?),
        ),
        Some((h, _)) => (h, None),
        None => (hostpart, None),
    };
    if addr.is_empty() {
        return Err(format!("missing host in {url:?}"));
    }
    let addr = if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:6379")
    };
    Ok(Target { addr, password, db })
}

/// One connection.
pub(crate) struct Conn {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    /// Connect, authenticate and select the database, all within `timeout` per step.
    pub(crate) fn open(t: &Target, timeout: Duration) -> io::Result<Conn> {
        let addr = t.addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "redis address resolves to nothing")
        })?;
        let s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.set_nodelay(true)?;
        let mut c = Conn {
            r: BufReader::new(s.try_clone()?),
            w: s,
        };
        if let Some(p) = &t.password {
            c.ok(&[b"AUTH", p.as_bytes()])?;
        }
        if let Some(db) = t.db {
            c.ok(&[b"SELECT", db.to_string().as_bytes()])?;
        }
        c.ok(&[b"PING"])?;
        Ok(c)
    }

    /// Send one command, read one reply. A Redis error reply is returned as `Reply::Error`.
    pub(crate) fn call(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&buf)?;
        read_reply(&mut self.r, 0)
    }

    /// A command whose reply must not be an error.
    pub(crate) fn ok(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        match self.call(args)? {
            Reply::Error(e) => Err(io::Error::other(format!("redis: {e}"))),
            r => Ok(r),
        }
    }

    /// A command whose reply must be an integer.
    pub(crate) fn int(&mut self, args: &[&[u8]]) -> io::Result<i64> {
        match self.ok(args)? {
            Reply::Int(n) => Ok(n),
            r => Err(io::Error::other(format!(
                "redis: expected integer, got {r:?}"
            ))),
        }
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "redis closed the connection",
        ));
    }
    if !line.ends_with("\r\n") {
        return Err(bad("redis reply line without CRLF"));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn read_reply(r: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
    if depth > 4 {
        return Err(bad("redis reply nested too deep"));
    }
    let line = read_line(r)?;
    let (tag, rest) = line.split_at(line.len().min(1));
    let num = || {
        rest.parse::<i64>()
            .map_err(|_| bad("redis reply: bad integer"))
    };
    match tag {
        "+" => Ok(Reply::Simple(rest.to_string())),
        "-" => Ok(Reply::Error(rest.to_string())),
        ":" => Ok(Reply::Int(num()?)),
        "$" => {
            let n = num()?;
            if n < 0 {
                return Ok(Reply::Bulk(None));
            }
            if n > MAX_REPLY_LEN {
                return Err(bad("redis bulk reply too large"));
            }
            let mut b = vec![0u8; usize::try_from(n + 2).map_err(|_| bad("bulk length"))?];
            r.read_exact(&mut b)?;
            b.truncate(b.len() - 2);
            Ok(Reply::Bulk(Some(b)))
        }
        "*" => {
            let n = num()?;
            if n < 0 {
                return Ok(Reply::Array(Vec::new()));
            }
            if n > MAX_REPLY_LEN {
                return Err(bad("redis array reply too large"));
            }
            (0..n)
                .map(|_| read_reply(r, depth + 1))
                .collect::<io::Result<_>>()
                .map(Reply::Array)
        }
        _ => Err(bad("redis reply: unknown type byte")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_every_reply_type() {
        let input = b"+OK\r\n-ERR bad\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n$1\r\nx\r\n";
        let mut r = &input[..];
        assert_eq!(read_reply(&mut r, 0).unwrap(), Reply::Simple("OK".into()));
        assert_eq!(
            read_reply(&mut r, 0).unwrap(),
            Reply::Error("ERR bad".into())
        );
        assert_eq!(read_reply(&mut r, 0).unwrap(), Reply::Int(42));
        assert_eq!(
            read_reply(&mut r, 0).unwrap(),
            Reply::Bulk(Some(b"abc".to_vec()))
        );
        assert_eq!(read_reply(&mut r, 0).unwrap(), Reply::Bulk(None));
        assert_eq!(
            read_reply(&mut r, 0).unwrap(),
            Reply::Array(vec![Reply::Int(1), Reply::Bulk(Some(b"x".to_vec()))])
        );
        assert!(read_reply(&mut r, 0).is_err()); // EOF
        let mut junk = &b"?what\r\n"[..];
        assert!(read_reply(&mut junk, 0).is_err());
    }

    #[test]
    fn parses_urls() {
        let t = parse_url("redis://127.0.0.1:7000").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.password, t.db),
            ("127.0.0.1:7000", None, None)
        );
        let t = parse_url("redis://:s3cret@host/2").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.password.as_deref(), t.db),
            ("host:6379", Some("s3cret"), Some(2))
        );
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("redis://").is_err());
    }
}
