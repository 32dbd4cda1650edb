//! Cluster mode against a real `redis-server` (one per test on a free loopback port): two
//! instances share one budget through leases, unused leases go back to Redis on stop, and a Redis
//! outage degrades to the local fallback share and recovers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tollgate_quota::{
    ClusterConfig, Denied, Estimate, Kind, LimitRule, QuotaShared, Rules, TokenKind, Usage,
    WorkerQuota,
};

const REDIS: &str = "/usr/bin/redis-server";

/// Wait without `thread::sleep` (banned crate-wide): a receive that always times out.
fn pause(ms: u64) {
    let (_tx, rx) = std::sync::mpsc::channel::<()>();
    let _ = rx.recv_timeout(Duration::from_millis(ms));
}

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Redis::start_on(port)
    }

    fn start_on(port: u16) -> Redis {
        assert!(
            std::path::Path::new(REDIS).exists(),
            "{REDIS} is missing: install the redis-server package (apt-get install redis-server); \
             the cluster tests need a real Redis"
        );
        let child = Command::new(REDIS)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            pause(10);
        }
        Redis { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn get(&self, key: &str) -> Option<i64> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "*2\r\n$3\r\nGET\r\n${}\r\n{}\r\n", key.len(), key).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.starts_with("$-1") {
            return None;
        }
        let mut v = String::new();
        r.read_line(&mut v).unwrap();
        Some(v.trim().parse().unwrap())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn cfg(url: String, lease_tokens: u64, lease_requests: u64, share: f64) -> ClusterConfig {
    ClusterConfig {
        url,
        prefix: "tg".into(),
        lease_tokens,
        lease_requests,
        timeout: Duration::from_millis(200),
        fallback_share: share,
    }
}

fn wait_up(s: &QuotaShared, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.stats().up != want {
        assert!(Instant::now() < deadline, "cluster up never became {want}");
        pause(10);
    }
}

fn shared_rule(r: LimitRule) -> Arc<Rules> {
    let mut r = r;
    r.shared = true;
    rules(vec![r])
}

/// Admit, retrying `Pending` every millisecond (what the proxy does), up to 2 s.
fn admit(
    w: &mut WorkerQuota,
    r: &Arc<Rules>,
    est: Estimate,
    now: i64,
) -> Result<tollgate_quota::Admission, Denied> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match w.admit(r, &subj("k1", "t", "m"), est, now) {
            Err(Denied::Pending) if Instant::now() < deadline => pause(1),
            other => return other,
        }
    }
}

const EST: Estimate = Estimate {
    prompt: 10,
    completion: 100,
};

#[test]
fn two_instances_on_one_redis_share_one_budget() {
    let redis = Redis::start();
    let r = shared_rule(rule("tpm", Kind::Tokens(TokenKind::Total), 10_000, MIN));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (url, r) = (redis.url(), r.clone());
            std::thread::spawn(move || {
                let s = QuotaShared::new(Some(cfg(url, 500, 10, 0.5)));
                wait_up(&s, true);
                let mut w = WorkerQuota::new(s.clone());
                let mut held = Vec::new();
                let mut refusals = 0;
                while refusals < 3 {
                    match admit(&mut w, &r, EST, T0 + 1_000) {
                        Ok(a) => held.push(a),
                        Err(Denied::Throttled { .. }) => {
                            refusals += 1;
                            pause(20);
                        }
                        Err(Denied::Pending) => panic!("pending for 2 s with redis up"),
                    }
                }
                let n = held.len();
                for a in held {
                    a.settle(
                        Usage {
                            prompt: 10,
                            completion: 100,
                        },
                        T0 + 2_000,
                    );
                }
                let st = s.stats();
                assert!(st.up && st.fallback_admissions == 0, "{st:?}");
                s.stop();
                n
            })
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(total <= 90, "admitted {total} > floor(10000/110)");
    assert!(
        total >= 85,
        "admitted only {total}: leases stranded too much budget"
    );
    let used = redis.get(&format!("tg:tpm:k1:{T0}")).unwrap();
    assert_eq!(used, total as i64 * 110);
}

#[test]
fn unused_leases_return_to_redis_on_stop() {
    let redis = Redis::start();
    let s = QuotaShared::new(Some(cfg(redis.url(), 1_000, 10, 0.5)));
    wait_up(&s, true);
    let r = shared_rule(rule("tpm", Kind::Tokens(TokenKind::Total), 100_000, MIN));
    let mut w = WorkerQuota::new(s.clone());
    for _ in 0..10 {
        let a = admit(&mut w, &r, EST, T0 + 1_000).unwrap();
        a.settle(
            Usage {
                prompt: 10,
                completion: 40,
            },
            T0 + 1_500,
        );
    }
    // Dropped without settle: refunded entirely.
    drop(admit(&mut w, &r, EST, T0 + 1_600).unwrap());
    let key = format!("tg:tpm:k1:{T0}");
    assert!(redis.get(&key).unwrap() >= 500, "leases taken");
    s.stop();
    assert_eq!(redis.get(&key), Some(500));
    let st = s.stats();
    assert!(
        !st.up && st.leases_taken >= 1 && st.leases_returned >= 1,
        "{st:?}"
    );
}

#[test]
fn redis_outage_falls_back_to_local_share_and_recovers() {
    let mut redis = Redis::start();
    let port = redis.port;
    let s = QuotaShared::new(Some(cfg(redis.url(), 100, 5, 0.3)));
    wait_up(&s, true);
    let r = shared_rule(rule("rpm", Kind::Requests, 100, MIN));
    let mut w = WorkerQuota::new(s.clone());
    for _ in 0..20 {
        admit(&mut w, &r, Estimate::default(), T0 + 1_000).unwrap();
    }
    redis.kill();
    // Admissions continue; while the outage is not yet detected a refill may be pending.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut in_fallback = 0;
    loop {
        let up = s.stats().up;
        match w.admit(&r, &subj("k1", "t", "m"), Estimate::default(), T0 + 2_000) {
            Ok(_) if !up => in_fallback += 1,
            Ok(_) => {}
            Err(Denied::Throttled { .. }) if !up => break,
            Err(_) => pause(1),
        }
        assert!(Instant::now() < deadline, "no fallback within 5 s");
    }
    let st = s.stats();
    assert!(!st.up && st.redis_errors >= 1, "{st:?}");
    // floor(0.3 × 100) = 30 per window on the fallback share (a few may have been admitted
    // between the flag flipping and our read of it).
    assert!(
        (28..=30).contains(&in_fallback),
        "fallback admitted {in_fallback}"
    );
    assert_eq!(st.fallback_admissions, 30);

    let redis = Redis::start_on(port);
    wait_up(&s, true);
    // The fallback spend was pushed to the (fresh) Redis.
    let key = format!("tg:rpm:k1:{T0}");
    let deadline = Instant::now() + Duration::from_secs(3);
    while redis.get(&key) != Some(30) {
        assert!(
            Instant::now() < deadline,
            "fallback spend not pushed: {:?}",
            redis.get(&key)
        );
        pause(20);
    }
    // Leasing resumes: the fresh Redis has 100 − 30 left, plus whatever was still on this
    // instance's lease when the old one died (at most one lease of 5).
    let mut more = 0;
    while let Ok(a) = admit(&mut w, &r, Estimate::default(), T0 + 3_000) {
        drop(a);
        more += 1;
        assert!(more <= 75);
    }
    assert!((70..=75).contains(&more), "{more}");
    s.stop();
}
