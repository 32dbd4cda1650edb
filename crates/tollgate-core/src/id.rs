//! Request ids: unique per process without coordination between cores. Each worker owns a
//! generator (worker index + per-worker counter + a per-process boot stamp), so minting an id is
//! an increment and a short hex format, with no shared atomic on the request path.

use std::fmt::Write;

/// Per-worker request id generator. Not `Sync` on purpose: one per core.
#[derive(Debug)]
pub struct RequestIdGen {
    boot: u32,
    worker: u16,
    next: u64,
}

impl RequestIdGen {
    /// `boot` should differ between process starts (e.g. low bits of the start time).
    pub fn new(boot: u32, worker: u16) -> RequestIdGen {
        RequestIdGen {
            boot,
            worker,
            next: 0,
        }
    }

    /// Mint the next id, e.g. `tg-5f3a9c1e-01-000000000002a`.
    pub fn next_id(&mut self) -> String {
        self.next += 1;
        let mut s = String::with_capacity(32);
        let _ = write!(
            s,
            "tg-{:08x}-{:02x}-{:012x}",
            self.boot, self.worker, self.next
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_per_worker_and_across_workers() {
        let mut a = RequestIdGen::new(7, 0);
        let mut b = RequestIdGen::new(7, 1);
        let x = a.next_id();
        let y = a.next_id();
        let z = b.next_id();
        assert_ne!(x, y);
        assert_ne!(x, z);
        assert!(x.starts_with("tg-00000007-00-"));
    }
}
