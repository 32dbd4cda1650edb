//! The writer's pending records and the one-write commit, apart from threads, clocks and files.
//!
//! Kept free of the runtime (STYLE.md §2) so the retry and partial-write accounting can be tested
//! with an in-memory writer that fails on demand: that is the part that decides whether a disk
//! error loses or duplicates a record.

use std::collections::VecDeque;
use std::io::{self, Write};

/// Records kept in memory while the disk refuses writes. Above this, the oldest pending record is
/// dropped (and counted in `dropped`) for every new one. At a typical ~400 bytes a line this bounds
/// the ledger's memory to ~400 MB; raising it lets a longer outage pass without loss at that cost
/// in memory, lowering it loses records sooner.
pub const MAX_PENDING_RECORDS: usize = 1_000_000;

/// Encoded lines waiting to be committed, oldest first.
#[derive(Debug)]
pub(crate) struct Batch {
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    cap: usize,
    /// Reused buffer holding the concatenation written by one commit.
    buf: Vec<u8>,
}

/// What one commit attempt did.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Records whose whole line reached the file, removed from the batch.
    pub(crate) committed: u64,
    /// `Err` if the write stopped early; the remaining records stay pending. The write may have
    /// stopped inside a line, leaving a fragment at the end of the file: the caller must drop the
    /// handle and repair the tail before the next write (the cut record is still pending and will
    /// be written again whole).
    pub(crate) result: io::Result<()>,
}

impl Batch {
    /// An empty batch holding at most `cap` records (at least 1).
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            bytes: 0,
            cap: cap.max(1),
            buf: Vec::new(),
        }
    }

    /// Pending records.
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether nothing is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Pending bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Queues one encoded line (ending in `\n`). Returns how many old records were dropped to stay
    /// under the cap (0 or 1).
    pub(crate) fn push(&mut self, line: Vec<u8>) -> u64 {
        let mut dropped = 0;
        while self.lines.len() >= self.cap {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len();
                dropped += 1;
            }
        }
        self.bytes += line.len();
        self.lines.push_back(line);
        dropped
    }

    /// Writes every pending line with one `write_all`-style call sequence on `w` and removes the
    /// lines that fully reached it.
    ///
    /// A partial write (the OS accepted some bytes, then failed) commits exactly the whole lines
    /// it covered, counting a line that lacks only its `\n` as whole; the line it cut stays
    /// pending.
    pub(crate) fn write_to(&mut self, w: &mut impl Write) -> Outcome {
        self.buf.clear();
        self.buf.reserve(self.bytes);
        for line in &self.lines {
            self.buf.extend_from_slice(line);
        }
        let mut written = 0;
        let result = loop {
            if written == self.buf.len() {
                break Ok(());
            }
            match w.write(&self.buf[written..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let mut committed = 0;
        let mut covered = 0;
        while let Some(front) = self.lines.front() {
            // A line cut just before its `\n` is whole: the tail repair adds the `\n`, and a
            // reader at end of file takes it as is. Rewriting it would duplicate the record.
            if covered + front.len().saturating_sub(1) > written {
                break;
            }
            covered = (covered + front.len()).min(written);
            self.bytes -= front.len();
            self.lines.pop_front();
            committed += 1;
        }
        // Keep the buffer from pinning a burst's worth of memory forever.
        if self.buf.capacity() > 4 * super::EARLY_COMMIT_BYTES {
            self.buf = Vec::new();
        }
        Outcome { committed, result }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts `budget` more bytes, at most `chunk` per call, then fails.
    struct Flaky {
        out: Vec<u8>,
        budget: usize,
        chunk: usize,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.budget).min(self.chunk);
            self.out.extend_from_slice(&buf[..n]);
            self.budget -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn line(i: usize) -> Vec<u8> {
        format!("{{\"n\":{i}}}\n").into_bytes()
    }

    #[test]
    fn full_write_commits_everything() {
        let mut b = Batch::new(10);
        for i in 0..3 {
            b.push(line(i));
        }
        let mut out = Vec::new();
        let o = b.write_to(&mut out);
        assert!(o.result.is_ok());
        assert_eq!(o.committed, 3);
        assert!(b.is_empty());
        assert_eq!(b.bytes(), 0);
        assert_eq!(out, b"{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
    }

    #[test]
    fn failed_write_keeps_records_pending_for_retry() {
        let mut b = Batch::new(10);
        b.push(line(0));
        b.push(line(1));
        let mut w = Flaky {
            out: Vec::new(),
            budget: 0,
            chunk: usize::MAX,
        };
        let o = b.write_to(&mut w);
        assert!(o.result.is_err());
        assert_eq!(o.committed, 0);
        assert!(w.out.is_empty());
        assert_eq!(b.len(), 2);
        w.budget = usize::MAX;
        let o = b.write_to(&mut w);
        assert!(o.result.is_ok());
        assert_eq!(o.committed, 2);
        assert_eq!(w.out, b"{\"n\":0}\n{\"n\":1}\n");
    }

    #[test]
    fn partial_write_commits_whole_lines_and_rewrites_the_cut_one() {
        let mut b = Batch::new(10);
        for i in 0..3 {
            b.push(line(i));
        }
        // 8 bytes per line: 12 bytes cover line 0 and half of line 1.
        let mut w = Flaky {
            out: Vec::new(),
            budget: 12,
            chunk: 5,
        };
        let o = b.write_to(&mut w);
        assert!(o.result.is_err());
        assert_eq!(o.committed, 1);
        assert_eq!(w.out, b"{\"n\":0}\n{\"n\"");
        assert_eq!(b.len(), 2);
        // The caller repairs the tail, then retries: line 1 is rewritten whole.
        w.out.push(b'\n');
        w.budget = usize::MAX;
        let o = b.write_to(&mut w);
        assert_eq!(o.committed, 2);
        assert_eq!(w.out, b"{\"n\":0}\n{\"n\"\n{\"n\":1}\n{\"n\":2}\n");
    }

    #[test]
    fn write_cut_just_before_a_newline_commits_that_line_once() {
        let mut b = Batch::new(10);
        b.push(line(0));
        b.push(line(1));
        let mut w = Flaky {
            out: Vec::new(),
            budget: 15,
            chunk: usize::MAX,
        };
        let o = b.write_to(&mut w);
        assert!(o.result.is_err());
        assert_eq!(o.committed, 2);
        assert!(b.is_empty());
        assert_eq!(w.out, b"{\"n\":0}\n{\"n\":1}");
    }

    #[test]
    fn overflow_drops_the_oldest_and_counts_it() {
        let mut b = Batch::new(2);
        assert_eq!(b.push(line(0)), 0);
        assert_eq!(b.push(line(1)), 0);
        assert_eq!(b.push(line(2)), 1);
        let mut out = Vec::new();
        b.write_to(&mut out).result.unwrap();
        assert_eq!(out, b"{\"n\":1}\n{\"n\":2}\n");
    }

    fn records(n: usize) -> Vec<crate::Record> {
        (0..n)
            .map(|i| crate::record::tests::sample(&format!("r{i}"), i as i64))
            .collect()
    }

    fn encoded(r: &crate::Record) -> Vec<u8> {
        let mut line = Vec::new();
        r.encode_line(&mut line).unwrap();
        line
    }

    proptest::proptest! {
        /// However records are split into commits, the files read back as the same sequence.
        #[test]
        fn any_split_into_commits_reads_back_in_order(
            sizes in proptest::collection::vec(1usize..40, 1..12),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(crate::files::file_name(0));
            let all = records(sizes.iter().sum());
            let mut b = Batch::new(MAX_PENDING_RECORDS);
            let mut next = all.iter();
            for size in sizes {
                for r in next.by_ref().take(size) {
                    b.push(encoded(r));
                }
                let mut file = crate::files::open_for_append(&path).unwrap();
                let o = b.write_to(&mut file);
                proptest::prop_assert!(o.result.is_ok());
                proptest::prop_assert_eq!(o.committed, size as u64);
            }
            let got = crate::read_range(dir.path(), i64::MIN, i64::MAX).unwrap();
            proptest::prop_assert_eq!(got.skipped, 0);
            proptest::prop_assert_eq!(got.records, all);
        }

        /// Writes cut at arbitrary bytes, then repaired and retried, still deliver every record
        /// exactly once and in order; each cut inside a line costs one skipped line, nothing more.
        #[test]
        fn cut_writes_retried_after_repair_lose_and_duplicate_nothing(
            n in 1usize..60,
            budgets in proptest::collection::vec(0usize..900, 0..8),
            chunk in 1usize..300,
        ) {
            let all = records(n);
            let mut b = Batch::new(MAX_PENDING_RECORDS);
            for r in &all {
                b.push(encoded(r));
            }
            let mut w = Flaky { out: Vec::new(), budget: 0, chunk };
            let mut cuts = 0;
            for budget in budgets.into_iter().chain(std::iter::once(usize::MAX)) {
                w.budget = budget;
                let o = b.write_to(&mut w);
                if o.result.is_err() && w.out.last().is_some_and(|&c| c != b'\n') {
                    let start = w.out.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
                    if serde_json::from_slice::<crate::Record>(&w.out[start..]).is_err() {
                        cuts += 1;
                    }
                    w.out.push(b'\n'); // what open_for_append's repair does
                }
                if b.is_empty() {
                    break;
                }
            }
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(crate::files::file_name(0)), &w.out).unwrap();
            let got = crate::read_range(dir.path(), i64::MIN, i64::MAX).unwrap();
            proptest::prop_assert_eq!(got.skipped, cuts);
            proptest::prop_assert_eq!(got.records, all);
        }
    }
}
