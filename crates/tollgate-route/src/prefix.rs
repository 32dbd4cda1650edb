//! Prefix affinity state: which backend most recently received a given prompt prefix.
//!
//! The prompt (the raw JSON bytes of `messages`, or `prompt`) is cut into fixed-size blocks and
//! hashed as a chain, `h_i = H(h_{i-1} ‖ block_i)`, so `h_i` names the whole prefix up to block
//! `i` — the same shape as vLLM's block hashes and GIE's approximate prefix index, at a byte
//! granularity (≈ 4 bytes per token) so no tokenizer runs. Only full blocks are hashed.
//!
//! The index is one process-wide direct-mapped table of `AtomicU64` slots shared by every worker:
//! slot `h mod N` holds `tag(h) << 16 | backend id`. Reads and writes are single relaxed atomic
//! operations — no lock, and every worker learns from every other worker's picks, so two cores
//! send the same prefix to the same backend. A collision overwrites (the newest prefix wins),
//! which bounds memory like an LRU would; a stale entry only costs a cache miss at the backend.

use std::sync::atomic::{AtomicU64, Ordering};

/// Hash of a block chain. Fast 64-bit multiply-mix over 8-byte words (not cryptographic: a
/// client can at worst steer its own requests to one backend, which the load term bounds).
fn mix(h: u64, w: u64) -> u64 {
    let x = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 29)
}

fn hash_block(prev: u64, block: &[u8]) -> u64 {
    let mut h = prev ^ 0xA076_1D64_78BD_642F;
    let mut chunks = block.chunks_exact(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(a));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut a = [0u8; 8];
        a[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(a) ^ ((rest.len() as u64) << 56));
    }
    let x = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 31)
}

/// Chain hashes of the full `block_bytes`-sized blocks of `prompt` (at most `max_blocks`),
/// seeded with `seed` (the pool) so two pools never share entries.
pub fn block_hashes(
    prompt: &[u8],
    block_bytes: usize,
    max_blocks: usize,
    seed: u64,
    out: &mut Vec<u64>,
) {
    out.clear();
    if block_bytes == 0 {
        return;
    }
    let mut h = seed;
    for block in prompt.chunks_exact(block_bytes).take(max_blocks) {
        h = hash_block(h, block);
        out.push(h);
    }
}

/// Tag bits kept per slot (the low 16 bits hold the backend id).
const TAG_SHIFT: u32 = 16;

/// The shared prefix → backend table.
pub struct PrefixTable {
    slots: Box<[AtomicU64]>,
    mask: u64,
}

impl std::fmt::Debug for PrefixTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrefixTable({} slots)", self.slots.len())
    }
}

impl PrefixTable {
    /// A table of `slots` entries, rounded up to a power of two (8 bytes each).
    pub fn new(slots: usize) -> PrefixTable {
        let n = slots.max(1024).next_power_of_two();
        PrefixTable {
            slots: (0..n).map(|_| AtomicU64::new(0)).collect(),
            mask: (n - 1) as u64,
        }
    }

    fn slot(&self, h: u64) -> (&AtomicU64, u64) {
        let i = (h & self.mask) as usize;
        // tag = the high bits, never 0 so an empty slot never matches.
        let tag = (h >> TAG_SHIFT) | 1;
        (&self.slots[i.min(self.slots.len() - 1)], tag)
    }

    /// Backend id recorded for prefix hash `h`.
    pub fn get(&self, h: u64) -> Option<u16> {
        let (s, tag) = self.slot(h);
        let v = s.load(Ordering::Relaxed);
        (v >> TAG_SHIFT == tag & (u64::MAX >> TAG_SHIFT)).then_some(v as u16)
    }

    /// Record that prefix `h` went to backend `id` (skips the write when already so, to keep the
    /// cache line shared between cores).
    pub fn put(&self, h: u64, id: u16) {
        let (s, tag) = self.slot(h);
        let v = ((tag & (u64::MAX >> TAG_SHIFT)) << TAG_SHIFT) | u64::from(id);
        if s.load(Ordering::Relaxed) != v {
            s.store(v, Ordering::Relaxed);
        }
    }

    /// Longest recorded prefix: `(blocks matched, backend id of the deepest match)`. Walks from
    /// the first block and stops at the first miss (a chain hash cannot match past a miss).
    pub fn longest(&self, hashes: &[u64]) -> Option<(usize, u16)> {
        let mut best = None;
        for (i, &h) in hashes.iter().enumerate() {
            match self.get(h) {
                Some(id) => best = Some((i + 1, id)),
                None => break,
            }
        }
        best
    }

    /// Matched blocks for backend `id` specifically (the deepest block recorded for it).
    pub fn matched_for(&self, hashes: &[u64], id: u16) -> usize {
        let mut m = 0;
        for (i, &h) in hashes.iter().enumerate() {
            match self.get(h) {
                Some(x) if x == id => m = i + 1,
                Some(_) => {}
                None => break,
            }
        }
        m
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_hashes_share_a_prefix() {
        let a = b"0123456789abcdef0123456789abcdefXXXXXXXXXXXXXXXX".to_vec();
        let mut b = a.clone();
        b[40] = b'Y';
        let (mut ha, mut hb) = (Vec::new(), Vec::new());
        block_hashes(&a, 16, 64, 7, &mut ha);
        block_hashes(&b, 16, 64, 7, &mut hb);
        assert_eq!(ha.len(), 3);
        assert_eq!(ha[..2], hb[..2]);
        assert_ne!(ha[2], hb[2]);
        let mut hc = Vec::new();
        block_hashes(&a, 16, 64, 8, &mut hc);
        assert_ne!(ha[0], hc[0], "seed separates pools");
        block_hashes(&a, 16, 2, 7, &mut hc);
        assert_eq!(hc.len(), 2, "max_blocks caps the work");
    }

    #[test]
    fn table_records_and_finds_the_longest_prefix() {
        let t = PrefixTable::new(1 << 12);
        let mut h = Vec::new();
        block_hashes(&[b'a'; 64], 16, 64, 1, &mut h);
        assert_eq!(t.longest(&h), None);
        t.put(h[0], 3);
        t.put(h[1], 3);
        assert_eq!(t.longest(&h), Some((2, 3)));
        t.put(h[2], 5);
        assert_eq!(t.longest(&h), Some((3, 5)));
        assert_eq!(t.matched_for(&h, 3), 2);
        assert_eq!(t.matched_for(&h, 5), 3);
        assert_eq!(t.matched_for(&h, 9), 0);
    }
}
