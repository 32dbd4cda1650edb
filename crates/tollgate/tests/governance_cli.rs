//! The governance commands as an operator runs them: `tollgate keys` prints a new key once and
//! stores only its hash; `tollgate serve` with a ledger survives `kill -9` without losing the
//! record of any request that completed more than one commit interval before the kill; and
//! `tollgate usage` reports what the ledger holds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tollgate_simfleet::engine::Personality;
use tollgate_simfleet::{Fleet, FleetConfig, Mode};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tollgate-govcli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tollgate(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn remember(token: &str) {
    if let Ok(p) = std::env::var("TOLLGATE_CANARY_FILE")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
    {
        let secret = token.rsplit('_').next().unwrap_or(token);
        let _ = writeln!(f, "{token}\n{secret}");
    }
}

#[test]
fn keys_add_prints_the_key_once_and_stores_only_its_hash() {
    let d = tmpdir("keys");
    let keys = d.join("keys.toml");
    let k = keys.to_str().unwrap();
    let out = tollgate(&[
        "keys",
        "add-consumer",
        "--keys",
        k,
        "--name",
        "alice",
        "--tenant",
        "acme",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tollgate(&[
        "keys",
        "add",
        "--keys",
        k,
        "--consumer",
        "alice",
        "--models",
        "m,llama-*",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    remember(&token);
    assert!(token.starts_with("tgk_"), "{token}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let file = std::fs::read_to_string(&keys).unwrap();
    let secret = token.rsplit('_').next().unwrap();
    for text in [&file, &stderr] {
        assert!(!text.contains(&token) && !text.contains(secret), "{text}");
    }
    assert!(file.contains("hash = \"sha256$"), "{file}");
    // The stored hash authenticates the printed key.
    let store = tollgate_auth::KeyStore::load(&keys).unwrap();
    assert!(store.authenticate(token.as_bytes(), 0).is_ok());
    // list shows the key id, never the hash.
    let out = tollgate(&["keys", "list", "--keys", k]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = &store.keys()[0].id;
    assert!(
        listed.contains(id.as_str()) && !listed.contains("sha256$"),
        "{listed}"
    );
    // Revoke: the key stops authenticating.
    let out = tollgate(&["keys", "revoke", "--keys", k, "--id", id]);
    assert!(out.status.success());
    let store = tollgate_auth::KeyStore::load(&keys).unwrap();
    assert!(store.authenticate(token.as_bytes(), 0).is_err());
    // Unknown consumer: a clear error, nothing written.
    let before = std::fs::read_to_string(&keys).unwrap();
    let out = tollgate(&[
        "keys",
        "add",
        "--keys",
        k,
        "--consumer",
        "nobody",
        "--models",
        "*",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), before);
    let _ = std::fs::remove_dir_all(&d);
}

#[allow(clippy::zombie_processes)] // the caller kills and waits for the child
fn start(cfg: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(cfg)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "tollgate exited early"
        );
        if let Some(a) = line.trim().strip_prefix("tollgate: listening http://") {
            let addr = a.to_string();
            // Keep draining stderr so the child never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut sink = String::new();
                let _ = err.read_to_string(&mut sink);
            });
            return (child, addr);
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One request; the id when the client saw the terminal frame (`[DONE]`, or the whole JSON
/// body), with the time it saw it.
fn one(addr: &str, stream: bool, key: &str) -> Option<(String, i64)> {
    let body = format!(
        r#"{{"model":"m","stream":{stream},"max_tokens":4,"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nauthorization: Bearer {key}\r\n\r\n{body}", body.len()).ok()?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let complete = text.starts_with("HTTP/1.1 200")
        && if stream {
            text.contains("data: [DONE]")
        } else {
            text.trim_end().ends_with('}')
        };
    if !complete {
        return None;
    }
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))?
        .trim()
        .to_string();
    Some((id, now_ms()))
}

fn ledger_ids(dir: &Path) -> (HashMap<String, usize>, usize) {
    let mut ids = HashMap::new();
    let mut bad = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<serde_json::Value>(l) {
                Ok(v) => {
                    *ids.entry(v["request_id"].as_str().unwrap().to_string())
                        .or_default() += 1
                }
                Err(_) => bad += 1,
            }
        }
    }
    (ids, bad)
}

#[test]
fn kill_9_loses_no_ledger_record_older_than_one_commit_interval() {
    const INTERVAL_MS: i64 = 20;
    let fleet = Fleet::start(FleetConfig::single("a", Personality::Vllm, Mode::Instant)).unwrap();
    let backend = fleet.addr("a").unwrap();
    let d = tmpdir("crash");
    let keys = d.join("keys.toml");
    tollgate_auth::add_consumer(&keys, "alice", "acme", Some("chat")).unwrap();
    let key = tollgate_auth::add_key(&keys, "alice", &["*".into()], None, None).unwrap();
    remember(&key.token);
    let ledger = d.join("ledger");
    let cfg = d.join("gw.toml");
    std::fs::write(
        &cfg,
        format!(
            "workers = 2\n[listen]\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n[log]\naccess_log = \"off\"\n[auth]\nkeys_file = \"{}\"\n[ledger]\ndir = \"{}\"\ncommit_interval_ms = {INTERVAL_MS}\n[[quota.limits]]\nname = \"t\"\nkind = \"tokens\"\nlimit = 1000000000\nwindow = \"1d\"\n[[backends]]\nname = \"a\"\nurl = \"http://{backend}\"\nkind = \"vllm\"\n[[models]]\nname = \"m\"\nbackends = [\"a\"]\n",
            keys.display(),
            ledger.display()
        ),
    )
    .unwrap();
    let mut seen: Vec<(String, i64, Option<usize>)> = Vec::new();
    let mut kills = Vec::new();
    for round in 0..3u64 {
        let (mut child, addr) = start(&cfg);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..4)
            .map(|c| {
                let (stop, addr, k) = (stop.clone(), addr.clone(), key.token.clone());
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut i = 0u64;
                    let t = Instant::now();
                    while !stop.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(10) {
                        if let Some(x) = one(&addr, (i + c).is_multiple_of(2), &k) {
                            got.push(x);
                        }
                        i += 1;
                    }
                    got
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + 150 * round));
        child.kill().unwrap(); // SIGKILL
        let killed_at = now_ms();
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            seen.extend(
                c.join()
                    .unwrap()
                    .into_iter()
                    .map(|(id, at)| (id, at, Some(round as usize))),
            );
        }
        kills.push(killed_at);
    }
    // A clean restart repairs any torn tail and keeps appending.
    let (mut child, addr) = start(&cfg);
    let last = one(&addr, false, &key.token).expect("request after restart");
    unsafe { libc_kill(child.id() as i32, 15) };
    child.wait().unwrap();
    seen.push((last.0.clone(), last.1, None));

    let (ids, bad) = ledger_ids(&ledger);
    assert!(
        bad <= kills.len(),
        "{bad} unparsable lines after {} kills",
        kills.len()
    );
    assert!(seen.len() > 20, "too little load: {}", seen.len());
    let mut must = 0;
    for (id, at, round) in &seen {
        // Completed more than one commit interval (+ margin for the write) before the kill of
        // its own round, or before the clean stop.
        let safe = match round {
            None => true,
            Some(r) => at + INTERVAL_MS + 50 < kills[*r],
        };
        if safe {
            must += 1;
            assert_eq!(
                ids.get(id),
                Some(&1),
                "request {id} (done at {at}, kills {kills:?}) not exactly once in the ledger"
            );
        }
    }
    assert!(ids.values().all(|n| *n == 1), "duplicate ledger rows");
    assert!(must > 20, "{must}");

    // `tollgate usage` reads the same ledger.
    let out = tollgate(&[
        "usage",
        "--ledger",
        ledger.to_str().unwrap(),
        "--since",
        "-1h",
        "--json",
        "--by",
        "tenant,key",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = v.to_string();
    assert!(text.contains("acme") && text.contains(&key.id), "{text}");
    assert!(!text.contains(&key.token));
    let out = tollgate(&[
        "usage",
        "--ledger",
        ledger.to_str().unwrap(),
        "--since",
        "-1h",
    ]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.contains("acme"), "{table}");
    let _ = std::fs::remove_dir_all(&d);
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
