//! The admin listener (own port, default 127.0.0.1:9090), on its own thread and runtime so that
//! scrapes and reloads never run on a data core: `GET /healthz`, `GET /metrics` (Prometheus
//! text), `POST /admin/reload`. One request per connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use tollgate_http::{HeadLimits, Method, parse_request_head};

use crate::pipeline::respond::reason;
use crate::server::Shared;

/// Run the admin server until `shared.admin_stop` is set.
pub fn spawn(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tollgate-admin".into())
        .spawn(move || {
            let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build();
            let Ok(mut rt) = rt else {
                eprintln!("tollgate: admin: cannot build runtime");
                return;
            };
            rt.block_on(async move {
                let Ok(l) = monoio::net::TcpListener::from_std(listener) else {
                    eprintln!("tollgate: admin: bad listener");
                    return;
                };
                loop {
                    if shared.admin_stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let r = monoio::select! {
                        r = l.accept() => Some(r),
                        _ = monoio::time::sleep(Duration::from_millis(100)) => None,
                    };
                    if let Some(Ok((s, _))) = r {
                        let sh = shared.clone();
                        monoio::spawn(async move {
                            let _ =
                                monoio::time::timeout(Duration::from_secs(10), serve(s, sh)).await;
                        });
                    }
                }
            });
        })
}

async fn serve(mut s: TcpStream, shared: Arc<Shared>) {
    let mut buf = BytesMut::with_capacity(4096);
    let head = loop {
        let (r, b) = s.read(buf).await;
        buf = b;
        match r {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        match parse_request_head(&buf, &HeadLimits::default()) {
            Ok(Some(h)) => break h,
            Ok(None) if buf.len() < 64 * 1024 => {
                buf.reserve(4096);
                continue;
            }
            _ => {
                respond(&mut s, 400, "application/json", br#"{"error":{"message":"bad request","type":"invalid_request_error","code":"bad_request"}}"#.to_vec()).await;
                return;
            }
        }
    };
    let path = head.path().split('?').next().unwrap_or("");
    match (head.method, path) {
        (Method::Get, "/healthz") => {
            if shared.draining.load(Ordering::Relaxed) {
                respond(&mut s, 503, "text/plain", b"draining\n".to_vec()).await;
            } else {
                respond(&mut s, 200, "text/plain", b"ok\n".to_vec()).await;
            }
        }
        (Method::Get, "/metrics") => {
            let mut body = shared.metrics_text();
            let snap = shared.snapshot.load_full();
            crate::routing::render_backends(&snap, &shared.route.load.load(), &mut body);
            respond(&mut s, 200, "text/plain; version=0.0.4", body.into_bytes()).await;
        }
        (Method::Get, "/admin/backends") => {
            let snap = shared.snapshot.load_full();
            let v = crate::routing::backends_json(&snap, &shared.route.load.load());
            let body = serde_json::to_vec_pretty(&v).unwrap_or_default();
            respond(&mut s, 200, "application/json", body).await;
        }
        (Method::Post, "/admin/reload") => {
            let r = shared.reload();
            let (st, v) = match r {
                Ok(g) => (200, serde_json::json!({"ok": true, "generation": g})),
                Err(e) => (400, serde_json::json!({"ok": false, "error": e})),
            };
            respond(
                &mut s,
                st,
                "application/json",
                serde_json::to_vec(&v).unwrap_or_default(),
            )
            .await;
        }
        _ => {
            respond(&mut s, 404, "application/json", br#"{"error":{"message":"not found","type":"invalid_request_error","code":"not_found"}}"#.to_vec()).await;
        }
    }
}

async fn respond(s: &mut TcpStream, status: u16, ct: &str, body: Vec<u8>) {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    let _ = s.write_all(out).await;
}
