//! The HTTPS listener serves beside the plain one (same pipeline), with the certificate from
//! config; a reload picks up a rotated certificate for new handshakes.

// Test threads may block and unwrap; the data-path lint rules do not apply here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::*;
use std::io::{Read, Write};
use std::sync::Arc;
use tollgate_simfleet::Mode;
use tollgate_simfleet::engine::Personality;

fn self_signed(dir: &std::path::Path, tag: &str) -> (String, String, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.join(format!("cert-{tag}.pem"));
    let key = dir.join(format!("key-{tag}.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (
        cert.display().to_string(),
        key.display().to_string(),
        ck.cert.der().to_vec(),
    )
}

fn https_get(addr: std::net::SocketAddr, der: &[u8], req: &[u8]) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der.to_vec()))
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let tcp = connect(addr);
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(req).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.windows(4).any(|w| w == b"\r\n\r\n") || !String::from_utf8_lossy(&out).contains("}")
    {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

#[test]
fn https_listener_serves_the_api_and_reload_rotates_the_certificate() {
    let dir = std::env::temp_dir().join(format!("tollgate-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, der1) = self_signed(&dir, "1");
    let fleet = fleet_of(&[("a", Personality::Vllm, Mode::Instant)]);
    let extra = format!("https = \"127.0.0.1:0\"\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"");
    let text = config_for(&fleet, "").replace(
        "admin = \"127.0.0.1:0\"",
        &format!("admin = \"127.0.0.1:0\"\n{extra}"),
    );
    let env = start_with(fleet, text);
    let https = env.gw().https_addr.unwrap();
    let body = chat(false, 2);
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let out = String::from_utf8_lossy(&https_get(https, &der1, req.as_bytes())).into_owned();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out.contains("chat.completion"), "{out}");
    // Plain listener still serves beside it.
    assert_eq!(post(env.addr, "/v1/chat/completions", &body).status, 200);

    // Rotate: new cert files at the same paths, reload, new handshakes use the new cert.
    let (c2, k2, der2) = self_signed(&dir, "2");
    std::fs::copy(&c2, &cert).unwrap();
    std::fs::copy(&k2, &key).unwrap();
    env.gw().reload().unwrap();
    let out = String::from_utf8_lossy(&https_get(
        https,
        &der2,
        b"GET /v1/models HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    ))
    .into_owned();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
