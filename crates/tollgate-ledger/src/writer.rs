//! The group-commit writer: workers hand records to a channel, one thread writes them in batches.
//!
//! # Why a thread and a channel
//! `append` runs on data-plane threads, so it must never wait on a disk or a lock. It bumps an
//! atomic counter and sends the record on a `std::sync::mpsc` channel, whose `send` is lock-free
//! (an atomic slot reservation in a linked list of blocks) and never blocks: the channel is
//! unbounded. Encoding to JSON and all I/O happen on the `tollgate-ledger` thread.
//!
//! The contract (group commit, durability, write errors, stop) is documented on [`Ledger`],
//! where users of the crate see it.

mod batch;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use batch::Batch;
pub use batch::MAX_PENDING_RECORDS;

use crate::Record;
use crate::files;

/// Default commit interval: bounds what a `kill -9` can lose. Raising it makes fewer, larger
/// writes (less syscall and `fdatasync` overhead per record) and widens the loss window by the
/// same amount; lowering it does the opposite.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(20);

/// Pending bytes that trigger a commit before the interval ends: caps the size of one write (and
/// of the writer's copy buffer) during a burst.
pub const EARLY_COMMIT_BYTES: usize = 1 << 20;

/// Pending records that trigger a commit before the interval ends, for the same reason.
pub const EARLY_COMMIT_RECORDS: usize = 4096;

/// Commit attempts made by [`Ledger::stop`] (one interval apart) before giving up on a failing
/// disk. Raising it delays shutdown by one interval per attempt when the disk is broken.
pub const STOP_ATTEMPTS: u32 = 3;

/// Shortest accepted commit interval: 0 would spin the writer thread.
const MIN_COMMIT_INTERVAL: Duration = Duration::from_millis(1);

/// How to open the ledger.
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// Directory holding the `usage-YYYY-MM-DD.jsonl` files; created if missing.
    pub dir: PathBuf,
    /// How long a record may wait in memory before it is written; the `kill -9` loss window.
    /// Values under 1 ms are raised to 1 ms.
    pub commit_interval: Duration,
    /// `fdatasync` after every write: survives power loss, not only a process kill.
    pub fsync: bool,
}

impl LedgerConfig {
    /// A config for `dir` with the default interval (20 ms) and no `fsync`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            commit_interval: DEFAULT_COMMIT_INTERVAL,
            fsync: false,
        }
    }
}

/// Counters of the ledger, read from shared atomics (cheap; values may be a few microseconds apart
/// from each other).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Records handed to `append`.
    pub appended: u64,
    /// Records written to a file.
    pub committed: u64,
    /// Successful writes (each carries one or more records).
    pub commits: u64,
    /// Failed write, open or `fdatasync` attempts.
    pub write_errors: u64,
    /// Records lost on purpose: pending overflow, failing disk at stop, append after stop.
    pub dropped: u64,
    /// Records appended but neither committed nor dropped yet (in the channel or in memory).
    pub pending: u64,
    /// Duration of the last successful write (plus `fdatasync` when enabled), in microseconds.
    pub last_commit_us: u64,
}

/// The atomics behind [`LedgerStats`], shared by the writer and every sink.
#[derive(Debug, Default)]
struct Shared {
    appended: AtomicU64,
    committed: AtomicU64,
    commits: AtomicU64,
    write_errors: AtomicU64,
    dropped: AtomicU64,
    last_commit_us: AtomicU64,
}

impl Shared {
    fn snapshot(&self) -> LedgerStats {
        let appended = self.appended.load(Ordering::Relaxed);
        let committed = self.committed.load(Ordering::Relaxed);
        let dropped = self.dropped.load(Ordering::Relaxed);
        LedgerStats {
            appended,
            committed,
            commits: self.commits.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            dropped,
            pending: appended.saturating_sub(committed).saturating_sub(dropped),
            last_commit_us: self.last_commit_us.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// What travels on the channel.
// Boxing the record would make every append allocate; the channel stores values in blocks of
// slots, so the large variant costs slot memory, not time.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Record(Record),
    Stop,
}

/// The ledger: owns the writer thread. Stopping or dropping it flushes and joins.
///
/// # Group commit
/// The writer waits for the first record, then gathers records for at most `commit_interval`
/// (default 20 ms) and writes all of them with one `write` (looped only if the OS accepts a short
/// write) to the day file, opened with `O_APPEND`. It commits early when more than
/// [`EARLY_COMMIT_BYTES`] or [`EARLY_COMMIT_RECORDS`] are pending, so a burst does not wait for the
/// timer nor build one huge write.
///
/// # Durability guarantee
/// **A `kill -9` of the gateway loses no record whose `append` returned more than one commit
/// interval (plus the time of one write) earlier.** After the write returns, the bytes are in the
/// kernel's page cache, which belongs to the OS, not to the process: killing the process cannot
/// lose them. What the page cache does not survive is a power loss or kernel crash; with
/// `fsync = true` the writer calls `fdatasync` after every write (and `fsync`s the directory when
/// it creates a day file), which extends the same guarantee to power loss, at the cost of one
/// device flush per commit (`last_commit_us` shows it). Records appended within the last interval
/// are in the process's memory and die with it.
///
/// # Write errors
/// When a write fails (disk full, EIO, the file became unwritable) the records stay in memory and
/// the writer retries every interval; `write_errors` counts attempts and one line goes to stderr
/// per state change (ok → failing, failing → ok), not per attempt. Pending memory is bounded by
/// [`MAX_PENDING_RECORDS`]: past it the oldest record is dropped and counted in `dropped`. A write
/// cut in the middle of a line commits the whole lines before the cut; the file's tail is repaired
/// (the torn-tail rule in the crate README) and the cut record is written again whole, so it appears once, plus one
/// bad line that readers skip. A failed `fdatasync` is counted as a write error but its records are
/// not rewritten (they are in the file already; rewriting would duplicate them).
///
/// # Stop
/// [`Ledger::stop`] (or dropping the [`Ledger`]) writes everything appended before it, `fsync`s the
/// file and joins the thread. If the disk still refuses after [`STOP_ATTEMPTS`] tries, the remaining
/// records are counted in `dropped`. Appends made after stop (from surviving sinks) are counted in
/// `dropped`; appends racing with stop may be lost uncounted.
#[derive(Debug)]
pub struct Ledger {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Handle for appending records from any thread; clone one per worker.
#[derive(Clone, Debug)]
pub struct LedgerSink {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Record(r) => write!(f, "Record({})", r.request_id),
            Msg::Stop => f.write_str("Stop"),
        }
    }
}

impl Ledger {
    /// Creates `cfg.dir` if needed, repairs the torn tail of the newest day file (restart after a
    /// crash) and starts the writer thread `tollgate-ledger`.
    ///
    /// Errors if the directory cannot be created or read, the newest file cannot be repaired, or
    /// the thread cannot be spawned. Later write errors do not surface here: they are retried and
    /// counted (see the module doc).
    pub fn open(cfg: LedgerConfig) -> io::Result<(Ledger, LedgerSink)> {
        std::fs::create_dir_all(&cfg.dir).map_err(|e| files::with_path(e, &cfg.dir))?;
        files::repair_newest(&cfg.dir)?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let writer = Writer {
            rx,
            dir: cfg.dir,
            interval: cfg.commit_interval.max(MIN_COMMIT_INTERVAL),
            fsync: cfg.fsync,
            shared: Arc::clone(&shared),
            batch: Batch::new(MAX_PENDING_RECORDS),
            file: None,
            failing_since: None,
        };
        let thread = std::thread::Builder::new()
            .name("tollgate-ledger".into())
            .spawn(move || writer.run())?;
        let sink = LedgerSink {
            tx: tx.clone(),
            shared: Arc::clone(&shared),
        };
        let ledger = Ledger {
            tx,
            shared,
            thread: Some(thread),
        };
        Ok((ledger, sink))
    }

    /// Current counters.
    pub fn stats(&self) -> LedgerStats {
        self.shared.snapshot()
    }

    /// Writes everything appended so far, `fsync`s and joins the writer thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // A send error means the thread is already gone; join reports why.
        let _ = self.tx.send(Msg::Stop);
        if thread.join().is_err() {
            eprintln!("tollgate-ledger: writer thread panicked; pending records are lost");
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl LedgerSink {
    /// Queues a record for the next commit. Never blocks and takes no lock: one atomic increment
    /// and a lock-free channel send. After the ledger stopped, the record is counted in `dropped`.
    pub fn append(&self, r: Record) {
        self.shared.appended.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Msg::Record(r)).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Current counters (same as [`Ledger::stats`]).
    pub fn stats(&self) -> LedgerStats {
        self.shared.snapshot()
    }
}

/// Current Unix time in milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The day file the writer currently appends to.
struct OpenFile {
    day: i64,
    file: File,
}

/// State of the writer thread.
struct Writer {
    rx: Receiver<Msg>,
    dir: PathBuf,
    interval: Duration,
    fsync: bool,
    shared: Arc<Shared>,
    batch: Batch,
    file: Option<OpenFile>,
    /// Failed attempts since the last success, when failing (for the recovery message).
    failing_since: Option<u64>,
}

impl Writer {
    /// The thread's body: gather, commit on deadline or size, stop on request.
    fn run(mut self) {
        // Deadline of the next commit; `None` while nothing is pending (sleep until a record).
        let mut deadline: Option<Instant> = None;
        loop {
            let msg = match deadline {
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => self
                    .rx
                    .recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            match msg {
                Ok(Msg::Record(r)) => {
                    self.enqueue(&r);
                    if deadline.is_none() {
                        deadline = Some(Instant::now() + self.interval);
                    }
                    // While failing, wait for the interval: retrying per record would spin.
                    let full = self.batch.bytes() >= EARLY_COMMIT_BYTES
                        || self.batch.len() >= EARLY_COMMIT_RECORDS;
                    if full && self.failing_since.is_none() {
                        self.commit();
                        deadline = self.next_deadline();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.commit();
                    deadline = self.next_deadline();
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.finish();
    }

    fn next_deadline(&self) -> Option<Instant> {
        (!self.batch.is_empty()).then(|| Instant::now() + self.interval)
    }

    fn enqueue(&mut self, r: &Record) {
        let mut line = Vec::with_capacity(512);
        if let Err(e) = r.encode_line(&mut line) {
            // Unreachable for this type in practice (no maps, floats cleaned); never crash for it.
            eprintln!(
                "tollgate-ledger: cannot encode record {}: {e}",
                r.request_id
            );
            Shared::add(&self.shared.dropped, 1);
            return;
        }
        Shared::add(&self.shared.dropped, self.batch.push(line));
    }

    /// Stop: take what was sent before the stop, write it (retrying a failing disk a few times),
    /// make it durable, count what could not be written.
    fn finish(&mut self) {
        let mut attempts = 0;
        loop {
            loop {
                match self.rx.try_recv() {
                    Ok(Msg::Record(r)) => self.enqueue(&r),
                    Ok(Msg::Stop) => {}
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.commit();
            attempts += 1;
            if self.batch.is_empty() || attempts >= STOP_ATTEMPTS {
                break;
            }
            // Wait one interval before retrying (recv_timeout is this crate's only way to wait);
            // records arriving meanwhile are kept.
            if let Ok(Msg::Record(r)) = self.rx.recv_timeout(self.interval) {
                self.enqueue(&r);
            }
        }
        if !self.batch.is_empty() {
            let lost = self.batch.len() as u64;
            eprintln!(
                "tollgate-ledger: stopping with the disk still failing; {lost} records dropped"
            );
            Shared::add(&self.shared.dropped, lost);
        }
        if let Some(open) = &self.file
            && let Err(e) = open.file.sync_data()
        {
            Shared::add(&self.shared.write_errors, 1);
            eprintln!("tollgate-ledger: fdatasync at stop failed: {e}");
        }
    }

    /// One commit attempt: everything pending, one write, optional `fdatasync`.
    fn commit(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let start = Instant::now();
        let day = files::day_of_ms(now_ms());
        if let Err(e) = self.open_day(day) {
            return self.failed(&e);
        }
        let Some(open) = self.file.as_mut() else {
            return;
        };
        let outcome = self.batch.write_to(&mut open.file);
        let synced = match (&outcome.result, self.fsync) {
            (Ok(()), true) => open.file.sync_data(),
            _ => Ok(()),
        };
        Shared::add(&self.shared.committed, outcome.committed);
        if let Err(e) = outcome.result.and(synced) {
            // Reopen (and so repair a torn tail) before the next attempt.
            self.file = None;
            return self.failed(&e);
        }
        let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.shared.last_commit_us.store(us, Ordering::Relaxed);
        Shared::add(&self.shared.commits, 1);
        if let Some(errors) = self.failing_since.take() {
            eprintln!(
                "tollgate-ledger: writes to {} recovered after {errors} failed attempts",
                self.dir.display()
            );
        }
    }

    /// The handle for `day`, opening (and repairing) the day file when the day changed or the
    /// previous handle was dropped after an error.
    fn open_day(&mut self, day: i64) -> io::Result<()> {
        if self.file.as_ref().is_some_and(|f| f.day == day) {
            return Ok(());
        }
        self.file = None;
        let path = self.dir.join(files::file_name(day));
        let created = !path.exists();
        let file = files::open_for_append(&path)?;
        if created && self.fsync {
            sync_dir(&self.dir)?;
        }
        self.file = Some(OpenFile { day, file });
        Ok(())
    }

    fn failed(&mut self, e: &io::Error) {
        Shared::add(&self.shared.write_errors, 1);
        match &mut self.failing_since {
            Some(n) => *n += 1,
            None => {
                self.failing_since = Some(1);
                eprintln!(
                    "tollgate-ledger: cannot write to {}: {e}; keeping {} records in memory, \
                     retrying every {} ms",
                    self.dir.display(),
                    self.batch.len(),
                    self.interval.as_millis()
                );
            }
        }
    }
}

/// `fsync`s a directory so a newly created file's name survives power loss.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| files::with_path(e, dir))
}
