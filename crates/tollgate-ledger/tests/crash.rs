//! The durability guarantee under a real `kill -9`: the test binary re-executes itself as a
//! writer child, SIGKILLs it mid-stream, and checks that every record appended more than one
//! commit interval (plus a margin for one write and scheduling) before the kill is on disk exactly
//! once. Three rounds in one directory also exercise restart with torn-tail repair.
//!
//! Kept in its own test binary so the timing is not disturbed by the other tests' threads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::record;
use tollgate_ledger::{Ledger, LedgerConfig, Record, now_ms, read_range};

/// Set in the child's environment to the ledger directory: "act as the writer".
const CHILD_DIR: &str = "TOLLGATE_LEDGER_CRASH_CHILD_DIR";
/// Set in the child's environment to the round number (prefix of its request ids).
const CHILD_ROUND: &str = "TOLLGATE_LEDGER_CRASH_CHILD_ROUND";
const INTERVAL_MS: i64 = 20;
/// Time allowed for one write plus scheduling delays on a loaded 2-core machine.
const MARGIN_MS: i64 = 50;
const ROUNDS: usize = 3;

/// Not a test on its own: the body of the child process. Without the env var it does nothing.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let round = std::env::var(CHILD_ROUND).unwrap();
    let (_ledger, sink) = Ledger::open(LedgerConfig {
        dir: dir.into(),
        commit_interval: Duration::from_millis(INTERVAL_MS as u64),
        fsync: false,
    })
    .unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let id = format!("r{round}-{i}");
        sink.append(record(&id, now_ms()));
        writeln!(out, "appended {id} {}", now_ms()).unwrap();
        out.flush().unwrap();
        if i % 4 == 0 {
            #[allow(clippy::disallowed_methods)] // pacing the child; the parent kills it
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

#[test]
fn kill_9_loses_nothing_older_than_one_commit_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut all_appended: Vec<(String, i64)> = Vec::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut appended = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(rest) = line.strip_prefix("appended ") else {
                    continue;
                };
                // A line cut by the kill has no time: ignore it (its record is too young anyway).
                let mut parts = rest.split(' ');
                let (Some(id), Some(Ok(at))) = (parts.next(), parts.next().map(str::parse)) else {
                    continue;
                };
                if appended.is_empty() {
                    let _ = first_tx.send(());
                }
                appended.push((id.to_string(), at));
            }
            appended
        });
        first_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child never appended");
        #[allow(clippy::disallowed_methods)] // let the child write for a while
        std::thread::sleep(Duration::from_millis(300));
        let kill_ms = now_ms();
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let appended = reader.join().unwrap();

        let cutoff = kill_ms - INTERVAL_MS - MARGIN_MS;
        let read = read_range(dir.path(), 0, i64::MAX).unwrap();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for r in &read.records {
            *seen.entry(r.request_id.as_str()).or_default() += 1;
        }
        let old: Vec<_> = appended.iter().filter(|(_, at)| *at < cutoff).collect();
        assert!(
            old.len() > 100,
            "round {round}: only {} old records",
            old.len()
        );
        for (id, at) in &old {
            assert_eq!(
                seen.get(id.as_str()),
                Some(&1),
                "round {round}: {id} appended {} ms before the kill is missing or duplicated",
                kill_ms - at
            );
        }
        assert!(seen.values().all(|&n| n == 1), "round {round}: duplicates");
        let old_count = old.len();
        // Everything on disk was appended by some child (an id printed after the append may be
        // cut off by the kill, so allow the one unprinted record per round).
        all_appended.extend(appended);
        let printed: std::collections::HashSet<&str> =
            all_appended.iter().map(|(id, _)| id.as_str()).collect();
        let unprinted = seen.keys().filter(|id| !printed.contains(*id)).count();
        assert!(
            unprinted <= round + 1,
            "round {round}: {unprinted} unknown ids"
        );
        // Only the file's tail can be torn by this kill; earlier rounds' fragments were isolated
        // by the repair at reopen. So at most one bad line per round so far.
        assert!(
            read.skipped <= (round + 1) as u64,
            "round {round}: {read:?}"
        );
        assert_only_tail_or_isolated_fragments(dir.path());
        eprintln!(
            "round {round}: {} appended, {} old enough, {} on disk, {} unreadable lines",
            all_appended.len(),
            old_count,
            read.records.len(),
            read.skipped
        );
    }

    // A clean restart after the last kill: repair, append, stop; nothing duplicated.
    let (ledger, sink) = Ledger::open(LedgerConfig::new(dir.path())).unwrap();
    sink.append(record("final", now_ms()));
    ledger.stop();
    let read = read_range(dir.path(), 0, i64::MAX).unwrap();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in &read.records {
        *seen.entry(r.request_id.as_str()).or_default() += 1;
    }
    assert_eq!(seen.get("final"), Some(&1));
    assert!(seen.values().all(|&n| n == 1));
    assert!(read.skipped <= ROUNDS as u64);
}

/// Every unparsable line is either the file's unterminated last line or a complete line (ended by
/// `\n`) followed by a good record: a fragment never swallows the record after it.
fn assert_only_tail_or_isolated_fragments(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        // `split` yields a final empty piece when the file ends with `\n`.
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            if line.is_empty() || serde_json::from_slice::<Record>(line).is_ok() {
                continue;
            }
            if i == last {
                continue; // the torn tail of this kill
            }
            let next = lines[i + 1];
            assert!(
                serde_json::from_slice::<Record>(next).is_ok() || (i + 1 == last),
                "fragment at line {i} is followed by another bad line"
            );
        }
    }
}
