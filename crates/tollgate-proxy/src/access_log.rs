//! Access log: one JSON line per request, written by a dedicated thread so a slow disk or a full
//! stdout pipe never stalls a data core. Workers hand over a formatted line through a channel
//! (`std::sync::mpsc`, lock-free on the send side). Never contains an Authorization header or key:
//! the record type has no field that could hold one.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use serde::Serialize;
use tollgate_config::AccessLog;

/// One access log record.
#[derive(Serialize)]
pub struct Record<'a> {
    /// RFC 3339 UTC time the request finished.
    pub time: String,
    /// Gateway request id (also sent to the client as `x-request-id`).
    pub request_id: &'a str,
    /// Client address.
    pub client: String,
    /// HTTP method.
    pub method: &'a str,
    /// Request path (query stripped).
    pub path: &'a str,
    /// Model from the body, when parsed.
    pub model: Option<&'a str>,
    /// Backend that served the response, when one did.
    pub backend: Option<&'a str>,
    /// Public id of the API key that authenticated the request (never the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
    /// Tenant of the key's consumer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<&'a str>,
    /// Pool the request was routed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<&'a str>,
    /// Route rule that chose the pool (absent = the model's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<&'a str>,
    /// Status sent to the client.
    pub status: u16,
    /// Whether the response was an SSE stream.
    pub stream: bool,
    /// Request bytes read (head + body).
    pub bytes_in: u64,
    /// Response bytes written.
    pub bytes_out: u64,
    /// Total duration in milliseconds.
    pub duration_ms: f64,
    /// Time to first byte of the response body, in milliseconds.
    pub ttft_ms: Option<f64>,
    /// Prompt tokens, when the backend reported usage.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens, when the backend reported usage.
    pub completion_tokens: Option<u64>,
    /// Upstream attempts made (2 = one retry).
    pub attempts: u32,
    /// Error code when the request failed.
    pub error: Option<&'a str>,
    /// Content-scanning rules that matched, as `rule:action:direction` (ids only, never the
    /// matched text); omitted when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scan: Vec<String>,
}

/// Cloneable sender handed to each worker.
#[derive(Clone)]
pub struct AccessLogger {
    tx: Option<Sender<String>>,
}

impl AccessLogger {
    /// A logger that drops everything.
    pub fn off() -> AccessLogger {
        AccessLogger { tx: None }
    }

    /// Whether lines are written at all (skip formatting when not).
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queue one record.
    pub fn log(&self, rec: &Record<'_>) {
        if let Some(tx) = &self.tx
            && let Ok(mut line) = serde_json::to_string(rec)
        {
            line.push('\n');
            let _ = tx.send(line);
        }
    }
}

/// The writer thread and its stop flag. Stopping is explicit: a worker runtime that is dropped
/// with tasks still pending does not drop them (monoio leaks them), so waiting for every sender
/// to disappear could wait forever.
pub struct Writer {
    /// The thread.
    pub handle: std::thread::JoinHandle<()>,
    /// Set to make the thread drain what is queued, flush and exit.
    pub stop: Arc<AtomicBool>,
}

/// Start the writer thread for `target`.
pub fn start(target: &AccessLog) -> std::io::Result<(AccessLogger, Option<Writer>)> {
    let out: Box<dyn Write + Send> = match target {
        AccessLog::Off => return Ok((AccessLogger::off(), None)),
        AccessLog::Stdout => Box::new(std::io::stdout()),
        AccessLog::File(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
    };
    let (tx, rx) = channel::<String>();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let handle = std::thread::Builder::new()
        .name("tollgate-accesslog".into())
        .spawn(move || writer(rx, out, &st))?;
    Ok((AccessLogger { tx: Some(tx) }, Some(Writer { handle, stop })))
}

fn writer(rx: Receiver<String>, out: Box<dyn Write + Send>, stop: &AtomicBool) {
    let mut w = std::io::BufWriter::with_capacity(64 * 1024, out);
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let _ = w.write_all(line.as_bytes());
                // Drain what is queued, then flush once.
                while let Ok(l) = rx.try_recv() {
                    let _ = w.write_all(l.as_bytes());
                }
                let _ = w.flush();
            }
            Err(RecvTimeoutError::Timeout) if stop.load(Ordering::Relaxed) => {
                let _ = w.flush();
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let _ = w.flush();
                return;
            }
        }
    }
}

/// Current time as RFC 3339 UTC with milliseconds (no external time crate needed).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let ms = d.subsec_millis();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_shape() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }
}
