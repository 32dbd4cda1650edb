//! Reading the ledger back for a time range, tolerant of the damage a crash can leave.
//!
//! A record lands in the file of the UTC day on which it was *committed*, which can differ from
//! the day of its `ts_ms` around midnight (a request finished at 23:59:59.995 is committed a few
//! milliseconds later). So for `[since, until)` the reader scans the files of the days from
//! `since - 1 day` to `until + 1 day` and filters on `ts_ms`.
//!
//! A line that does not parse (a torn write, a foreign line) is skipped and counted; one bad line
//! never fails a report. Blank lines are ignored without being counted.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use crate::Record;
use crate::files::{self, with_path};

/// Records found in a range, in file order (commit order), plus the count of unreadable lines.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadResult {
    /// Records with `since_ms <= ts_ms < until_ms`, oldest file first, in the order written.
    pub records: Vec<Record>,
    /// Lines in the scanned files that failed to parse (torn tails, garbage).
    pub skipped: u64,
}

/// Reads every record with `since_ms <= ts_ms < until_ms` from the day files in `dir`.
///
/// Errors only on I/O: `dir` missing or unreadable, a day file unreadable. The error message names
/// the path. `skipped` counts bad lines in every scanned file, including lines outside the range.
pub fn read_range(dir: &Path, since_ms: i64, until_ms: i64) -> io::Result<ReadResult> {
    let mut result = ReadResult::default();
    if since_ms >= until_ms {
        return Ok(result);
    }
    let first_day = files::day_of_ms(since_ms).saturating_sub(1);
    // `until` is exclusive: the last millisecond in range is `until - 1`.
    let last_day = files::day_of_ms(until_ms - 1).saturating_add(1);
    for day_file in files::list_day_files(dir)? {
        if day_file.day < first_day || day_file.day > last_day {
            continue;
        }
        read_file(&day_file.path, since_ms, until_ms, &mut result)?;
    }
    Ok(result)
}

/// Appends the in-range records of one file to `out`.
fn read_file(path: &Path, since_ms: i64, until_ms: i64, out: &mut ReadResult) -> io::Result<()> {
    let file = File::open(path).map_err(|e| with_path(e, path))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::with_capacity(512);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| with_path(e, path))?;
        if n == 0 {
            return Ok(());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(&line) {
            Ok(r) if (since_ms..until_ms).contains(&r.ts_ms) => out.records.push(r),
            Ok(_) => {}
            Err(_) => out.skipped += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;
    use std::fs;

    fn write_day(dir: &Path, day: i64, records: &[Record], tail: &str) {
        let mut out = Vec::new();
        for r in records {
            r.encode_line(&mut out).unwrap();
        }
        out.extend_from_slice(tail.as_bytes());
        fs::write(dir.join(files::file_name(day)), out).unwrap();
    }

    #[test]
    fn range_is_half_open_and_spans_neighbouring_day_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = 20_000;
        let base = d * files::DAY_MS;
        // A record of the last ms of day d-1 committed into day d's file.
        write_day(dir.path(), d - 1, &[sample("a", base - 10)], "");
        write_day(
            dir.path(),
            d,
            &[
                sample("b", base - 1),
                sample("c", base),
                sample("d", base + 5),
            ],
            "",
        );
        write_day(dir.path(), d + 3, &[sample("far", base + 5)], "");
        let got = read_range(dir.path(), base - 1, base + 5).unwrap();
        let ids: Vec<_> = got.records.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(got.skipped, 0);
    }

    #[test]
    fn bad_lines_are_skipped_and_counted_blank_lines_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        sample("a", 5).encode_line(&mut out).unwrap();
        out.extend_from_slice(b"not json\n\n{\"ts_ms\":5,\"request_\n");
        sample("b", 6).encode_line(&mut out).unwrap();
        out.extend_from_slice(b"\xff\xfe\n{\"ts_ms\":7");
        fs::write(dir.path().join(files::file_name(0)), out).unwrap();
        let got = read_range(dir.path(), 0, 100).unwrap();
        assert_eq!(got.records.len(), 2);
        assert_eq!(got.skipped, 4);
    }

    #[test]
    fn empty_or_inverted_range_reads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        write_day(dir.path(), 0, &[sample("a", 5)], "");
        assert_eq!(read_range(dir.path(), 5, 5).unwrap(), ReadResult::default());
        assert_eq!(read_range(dir.path(), 9, 1).unwrap(), ReadResult::default());
    }

    #[test]
    fn missing_dir_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = read_range(&missing, 0, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn extreme_ranges_do_not_overflow() {
        let dir = tempfile::tempdir().unwrap();
        write_day(dir.path(), 0, &[sample("a", 5)], "");
        let got = read_range(dir.path(), i64::MIN, i64::MAX).unwrap();
        assert_eq!(got.records.len(), 1);
    }
}
