//! The binary as an operator runs it: `check` names file/line/field; `serve` answers, reloads
//! on SIGHUP, writes the access log (never a key) and exits 0 on SIGTERM after draining.

// Test code: blocking and unwrapping are fine here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tollgate_simfleet::engine::Personality;
use tollgate_simfleet::{Fleet, FleetConfig, Mode};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tollgate-cli-{}-{name}", std::process::id()))
}

#[test]
fn check_reports_file_line_and_field_and_exits_nonzero() {
    let p = tmp("bad.toml");
    std::fs::write(&p, "[listen]\nhttp = \"127.0.0.1:0\"\n[[backends]]\nname = \"a\"\nurl = \"http://127.0.0.1:1\"\nkind = \"vlm\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:6:8: backends[0].kind: unknown backend kind \"vlm\"",
            p.display()
        )),
        "{err}"
    );
    std::fs::write(&p, "[listen]\nhttp = \"127.0.0.1:0\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&p);
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("tollgate "));
}

fn post(addr: &str, body: &str, extra: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn serve_reloads_on_sighup_logs_without_keys_and_exits_cleanly_on_sigterm() {
    let fleet = Fleet::start(FleetConfig::single("a", Personality::Vllm, Mode::Instant)).unwrap();
    let backend = fleet.addr("a").unwrap();
    let cfg = tmp("serve.toml");
    let log = tmp("access.log");
    let text = format!(
        "workers = 2\n[listen]\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n[log]\naccess_log = \"{}\"\n[[backends]]\nname = \"a\"\nurl = \"http://{backend}\"\nkind = \"vllm\"\n[[models]]\nname = \"m\"\nbackends = [\"a\"]\n",
        log.display()
    );
    std::fs::write(&cfg, &text).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut addr = String::new();
    let mut line = String::new();
    while addr.is_empty() {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "tollgate exited early"
        );
        if let Some(a) = line.trim().strip_prefix("tollgate: listening http://") {
            addr = a.to_string();
        }
    }
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let canary = "sk-canary-key-must-not-be-logged-0123456789";
    let r = post(&addr, body, &format!("authorization: Bearer {canary}\r\n"));
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");

    // SIGHUP: model renamed m -> m2; the new name serves, the old one is gone.
    std::fs::write(&cfg, text.replace("name = \"m\"", "name = \"m2\"")).unwrap();
    unsafe { libc_kill(child.id() as i32, 1) };
    let t = Instant::now();
    loop {
        let r = post(&addr, &body.replace("\"m\"", "\"m2\""), "");
        if r.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "reload not applied: {r}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(post(&addr, body, "").starts_with("HTTP/1.1 404"));

    // SIGTERM: drains and exits 0.
    unsafe { libc_kill(child.id() as i32, 15) };
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "tollgate did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let logged = std::fs::read_to_string(&log).unwrap();
    // 200 (m), any 404s while the reload landed, 200 (m2), 404 (m after the reload).
    assert!(logged.lines().count() >= 3, "{logged}");
    for l in logged.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["request_id"].as_str().unwrap().starts_with("tg-"));
    }
    assert!(
        !logged.contains("canary") && !logged.to_lowercase().contains("authorization"),
        "{logged}"
    );
    let _ = std::fs::remove_file(&cfg);
    let _ = std::fs::remove_file(&log);
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
