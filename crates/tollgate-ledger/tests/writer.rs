//! The writer thread end to end on a real directory: round trip from many threads, group commit,
//! torn-tail repair, write errors and recovery, stop and drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::fs;
use std::time::Duration;

use common::{record, wait_until};
use tollgate_ledger::{Ledger, LedgerConfig, day_file_name, now_ms, read_range};

fn config(dir: &std::path::Path, interval_ms: u64) -> LedgerConfig {
    LedgerConfig {
        dir: dir.to_path_buf(),
        commit_interval: Duration::from_millis(interval_ms),
        fsync: false,
    }
}

#[test]
fn records_appended_from_four_threads_all_read_back_once() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, sink) = Ledger::open(config(dir.path(), 5)).unwrap();
    let per_thread = 2_500;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    sink.append(record(&format!("t{t}-{i}"), now_ms()));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    ledger.stop();
    let stats = sink.stats();
    assert_eq!(stats.appended, 4 * per_thread);
    assert_eq!(stats.committed, stats.appended);
    assert_eq!(
        (stats.pending, stats.dropped, stats.write_errors),
        (0, 0, 0)
    );

    let read = read_range(dir.path(), 0, i64::MAX).unwrap();
    assert_eq!(read.skipped, 0);
    assert_eq!(read.records.len() as u64, 4 * per_thread);
    let ids: HashSet<_> = read.records.iter().map(|r| r.request_id.clone()).collect();
    let want: HashSet<_> = (0..4)
        .flat_map(|t| (0..per_thread).map(move |i| format!("t{t}-{i}")))
        .collect();
    assert_eq!(ids, want);
    // Per thread, records keep their append order.
    for t in 0..4 {
        let prefix = format!("t{t}-");
        let seq: Vec<u64> = read
            .records
            .iter()
            .filter_map(|r| r.request_id.strip_prefix(&prefix)?.parse().ok())
            .collect();
        assert!(
            seq.windows(2).all(|w| w[0] < w[1]),
            "thread {t} out of order"
        );
    }
}

#[test]
fn appends_within_an_interval_share_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, sink) = Ledger::open(config(dir.path(), 50)).unwrap();
    for i in 0..1_000 {
        sink.append(record(&format!("r{i}"), now_ms()));
    }
    ledger.stop();
    let stats = sink.stats();
    assert_eq!(stats.appended, 1_000);
    assert_eq!(stats.committed, 1_000);
    assert!(stats.commits >= 1 && stats.commits <= 10, "{stats:?}");
    assert_eq!(stats.pending, 0);
}

#[test]
fn a_burst_commits_before_the_interval_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, sink) = Ledger::open(config(dir.path(), 60_000)).unwrap();
    for i in 0..5_000 {
        sink.append(record(&format!("r{i}"), now_ms()));
    }
    // 5,000 records pass both early-commit thresholds (1 MiB at ~300 bytes a line comes first),
    // so a commit happens long before the one-minute interval; the rest waits for it (or stop).
    assert!(
        wait_until(Duration::from_secs(5), || sink.stats().commits >= 1),
        "{:?}",
        sink.stats()
    );
    let stats = sink.stats();
    assert!(stats.committed >= 3_000 && stats.pending > 0, "{stats:?}");
    ledger.stop();
    assert_eq!(sink.stats().committed, 5_000);
}

#[test]
fn records_are_committed_within_the_interval_without_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, sink) = Ledger::open(config(dir.path(), 20)).unwrap();
    sink.append(record("a", now_ms()));
    assert!(wait_until(Duration::from_secs(2), || sink
        .stats()
        .committed
        == 1));
    let read = read_range(dir.path(), 0, i64::MAX).unwrap();
    assert_eq!(read.records.len(), 1);
    assert!(ledger.stats().last_commit_us > 0 || ledger.stats().commits == 1);
    ledger.stop();
}

#[test]
fn torn_tail_from_a_crash_stays_one_skipped_line() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let mut text = String::new();
    for i in 0..3 {
        text.push_str(&serde_json::to_string(&record(&format!("old{i}"), now)).unwrap());
        text.push('\n');
    }
    let torn = serde_json::to_string(&record("torn", now)).unwrap();
    text.push_str(&torn[..torn.len() / 2]);
    let path = dir.path().join(day_file_name(now));
    fs::write(&path, &text).unwrap();

    let (ledger, sink) = Ledger::open(config(dir.path(), 5)).unwrap();
    // Repaired at open, before any append.
    assert!(fs::read_to_string(&path).unwrap().ends_with('\n'));
    sink.append(record("new0", now));
    sink.append(record("new1", now));
    ledger.stop();

    let read = read_range(dir.path(), 0, i64::MAX).unwrap();
    let ids: Vec<_> = read.records.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids, ["old0", "old1", "old2", "new0", "new1"]);
    assert_eq!(read.skipped, 1);
}

#[test]
fn write_errors_keep_records_pending_until_the_disk_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, sink) = Ledger::open(config(dir.path(), 5)).unwrap();
    // A directory where today's file should be: opening it for append fails even as root.
    // (If this test straddles UTC midnight the writer picks tomorrow's file and the test fails;
    // the window is a few milliseconds a day.)
    let blocker = dir.path().join(day_file_name(now_ms()));
    fs::create_dir(&blocker).unwrap();
    for i in 0..5 {
        sink.append(record(&format!("r{i}"), now_ms()));
    }
    assert!(wait_until(Duration::from_secs(5), || sink
        .stats()
        .write_errors
        >= 3));
    let stats = sink.stats();
    assert_eq!((stats.committed, stats.pending, stats.dropped), (0, 5, 0));

    fs::remove_dir(&blocker).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || sink.stats().committed == 5),
        "{:?}",
        sink.stats()
    );
    sink.append(record("after", now_ms()));
    ledger.stop();
    let stats = sink.stats();
    assert_eq!((stats.committed, stats.pending, stats.dropped), (6, 0, 0));
    let read = read_range(dir.path(), 0, i64::MAX).unwrap();
    let ids: Vec<_> = read.records.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids, ["r0", "r1", "r2", "r3", "r4", "after"]);
    assert_eq!(read.skipped, 0);
}

#[test]
fn stop_with_the_disk_still_failing_counts_the_records_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, sink) = Ledger::open(config(dir.path(), 2)).unwrap();
    fs::create_dir(dir.path().join(day_file_name(now_ms()))).unwrap();
    sink.append(record("doomed", now_ms()));
    ledger.stop();
    let stats = sink.stats();
    assert_eq!((stats.committed, stats.dropped, stats.pending), (0, 1, 0));
    assert!(stats.write_errors >= 1);
}

#[test]
fn dropping_the_ledger_flushes_like_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, sink) = Ledger::open(config(dir.path(), 60_000)).unwrap();
    sink.append(record("a", now_ms()));
    drop(ledger);
    assert_eq!(sink.stats().committed, 1);
    assert_eq!(
        read_range(dir.path(), 0, i64::MAX).unwrap().records.len(),
        1
    );
}

#[test]
fn append_after_stop_is_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, sink) = Ledger::open(config(dir.path(), 5)).unwrap();
    ledger.stop();
    sink.append(record("late", now_ms()));
    let stats = sink.stats();
    assert_eq!((stats.appended, stats.dropped, stats.pending), (1, 1, 0));
}

#[test]
fn fsync_mode_writes_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path().join("nested/ledger").as_path(), 5);
    cfg.fsync = true;
    let (ledger, sink) = Ledger::open(cfg).unwrap();
    for i in 0..100 {
        sink.append(record(&format!("r{i}"), now_ms()));
    }
    ledger.stop();
    let stats = sink.stats();
    assert_eq!(stats.committed, 100);
    assert!(stats.last_commit_us > 0);
    let read = read_range(&dir.path().join("nested/ledger"), 0, i64::MAX).unwrap();
    assert_eq!(read.records.len(), 100);
}

#[test]
fn open_fails_when_the_directory_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    fs::write(&file, b"x").unwrap();
    let err = Ledger::open(config(&file.join("ledger"), 5)).unwrap_err();
    assert!(err.to_string().contains("plain-file"), "{err}");
}
