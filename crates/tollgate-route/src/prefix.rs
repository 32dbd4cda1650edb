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

const K0: u64 = 0x9E37_79B9_7F4A_7C15;
const K1: u64 = 0xBF58_476D_1CE4_E5B9;
const K2: u64 = 0x94D0_49BB_1331_11EB;
const K3: u64 = 0xD6E8_FEB8_6659_FD93;

fn fold(x: u64, k: u64) -> u64 {
    let m = (x ^ k).wrapping_mul(k | 1);
    m ^ (m >> 32)
}

fn word(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(a)
}

/// Hash one block, chained to `prev`. Four independent multiply lanes over 32-byte strides
/// (≈ 4× the throughput of one dependent chain); not cryptographic: a client can at worst steer
/// its own requests, which the load bound limits.
fn hash_block(prev: u64, block: &[u8]) -> u64 {
    let (mut a, mut b, mut c, mut d) = (prev ^ K0, prev ^ K1, prev ^ K2, prev ^ K3);
    let mut chunks = block.chunks_exact(32);
    for ch in &mut chunks {
        a = fold(a ^ word(&ch[0..8]), K0);
        b = fold(b ^ word(&ch[8..16]), K1);
        c = fold(c ^ word(&ch[16..24]), K2);
        d = fold(d ^ word(&ch[24..32]), K3);
    }
    for (i, w) in chunks.remainder().chunks(8).enumerate() {
        let x = word(w) ^ ((w.len() as u64) << 56);
        match i {
            0 => a = fold(a ^ x, K0),
            1 => b = fold(b ^ x, K1),
            2 => c = fold(c ^ x, K2),
            _ => d = fold(d ^ x, K3),
        }
    }
    let h = fold(
        a ^ b.rotate_left(17) ^ c.rotate_left(31) ^ d.rotate_left(47),
        K0,
    );
    fold(h ^ block.len() as u64, K1)
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

    /// Slot of block `i` of a chain: blocks sit in runs of 8 consecutive slots (one cache line)
    /// placed by the hash of the run's first block, so a 64-block walk touches 8 lines in order,
    /// and two prompts that share a head but diverge in a run only collide inside that run. The
    /// stored tag is the block's own hash, so only the exact prefix matches.
    fn slot(&self, hashes: &[u64], i: usize) -> (&AtomicU64, u64) {
        let run = hashes.get(i & !7).copied().unwrap_or(0);
        let h = hashes.get(i).copied().unwrap_or(0);
        let idx = (fold(run, K2).wrapping_add((i & 7) as u64) & self.mask) as usize;
        let tag = ((h >> TAG_SHIFT) | 1) & (u64::MAX >> TAG_SHIFT);
        (&self.slots[idx.min(self.slots.len() - 1)], tag)
    }

    /// Record that every prefix in `hashes` went to backend `id`. Skips slots that already say
    /// so, to keep the cache lines shared between cores.
    pub fn record(&self, hashes: &[u64], id: u16) {
        for i in 0..hashes.len() {
            let (s, tag) = self.slot(hashes, i);
            let v = (tag << TAG_SHIFT) | u64::from(id);
            if s.load(Ordering::Relaxed) != v {
                s.store(v, Ordering::Relaxed);
            }
        }
    }

    /// Longest recorded prefix: `(blocks matched, backend id of the deepest match)`. Walks from
    /// the first block and stops at the first miss (a chain hash cannot match past a miss).
    pub fn longest(&self, hashes: &[u64]) -> Option<(usize, u16)> {
        let mut best = None;
        for i in 0..hashes.len() {
            let (s, tag) = self.slot(hashes, i);
            let v = s.load(Ordering::Relaxed);
            if v >> TAG_SHIFT == tag {
                best = Some((i + 1, v as u16));
            } else {
                break;
            }
        }
        best
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
        t.record(&h[..2], 3);
        assert_eq!(t.longest(&h), Some((2, 3)));
        t.record(&h, 5);
        assert_eq!(t.longest(&h), Some((4, 5)));
        // A prompt that diverges after block 1 matches only its shared part.
        let mut other = vec![b'a'; 32];
        other.extend_from_slice(&[b'b'; 32]);
        let mut h2 = Vec::new();
        block_hashes(&other, 16, 64, 1, &mut h2);
        assert_eq!(t.longest(&h2), Some((2, 5)));
        t.record(&h2, 7);
        assert_eq!(t.longest(&h2), Some((4, 7)));
        assert_eq!(
            t.longest(&h),
            Some((2, 7)),
            "shared head now points at 7; tail was overwritten"
        );
    }

    #[test]
    fn conversations_sharing_a_system_prompt_keep_their_own_tails() {
        // A and B share 8 blocks (one run of slots) and each has 8 private blocks.
        let t = PrefixTable::new(1 << 12);
        let head = vec![b's'; 8 * 16];
        let mut a = head.clone();
        a.extend_from_slice(&[b'a'; 8 * 16]);
        let mut b = head;
        b.extend_from_slice(&[b'b'; 8 * 16]);
        let (mut ha, mut hb) = (Vec::new(), Vec::new());
        block_hashes(&a, 16, 64, 1, &mut ha);
        block_hashes(&b, 16, 64, 1, &mut hb);
        t.record(&ha, 1);
        assert_eq!(t.longest(&ha), Some((16, 1)));
        t.record(&hb, 2);
        assert_eq!(t.longest(&hb), Some((16, 2)));
        assert_eq!(
            t.longest(&ha),
            Some((16, 1)),
            "B must not erase A's private blocks"
        );
    }
}
