//! tollgate's usage ledger: one JSON line per finished request, appended to local day files by a
//! group-commit writer thread, plus the reader and Top-N reports behind `tollgate usage`.
//!
//! The ledger is the gateway's record of who spent what. It must not slow the data path (an
//! [`LedgerSink::append`] is an atomic increment and a lock-free channel send) and must not lose
//! more than a bounded window of records when the gateway is killed:
//!
//! **A `kill -9` of the gateway loses no record whose `append` happened more than one
//! `commit_interval` (default 20 ms) plus the time of one write earlier.** Written data sits in the
//! OS page cache, which survives a process kill; `fsync = true` makes it survive power loss too.
//! See [`Ledger`] for the full contract, the write-error policy and the memory bound.
//!
//! ```no_run
//! use tollgate_ledger::{GroupBy, Ledger, LedgerConfig, read_range, report};
//! # fn main() -> std::io::Result<()> {
//! let (ledger, sink) = Ledger::open(LedgerConfig::new("/var/lib/tollgate/ledger"))?;
//! // ... sink.clone() into every worker; sink.append(record) per finished request ...
//! ledger.stop();
//! let read = read_range("/var/lib/tollgate/ledger".as_ref(), 0, i64::MAX)?;
//! let r = report(&read.records, &[GroupBy::Tenant], 10, 0, i64::MAX).with_skipped(read.skipped);
//! println!("{}", r.to_table());
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod files;
mod read;
mod record;
mod report;
mod time;
mod writer;

pub use read::{ReadResult, read_range};
pub use record::Record;
pub use report::{GroupBy, GroupTable, Report, Row, Usage, report};
pub use time::{format_ms, parse_time};
pub use writer::{
    DEFAULT_COMMIT_INTERVAL, EARLY_COMMIT_BYTES, EARLY_COMMIT_RECORDS, Ledger, LedgerConfig,
    LedgerSink, LedgerStats, MAX_PENDING_RECORDS, STOP_ATTEMPTS, now_ms,
};

/// The name of the day file a record committed at `ms` (Unix milliseconds) goes to, e.g.
/// `usage-2026-11-22.jsonl`.
pub fn day_file_name(ms: i64) -> String {
    files::file_name(files::day_of_ms(ms))
}
