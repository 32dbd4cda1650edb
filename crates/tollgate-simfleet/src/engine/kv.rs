//! Paged KV-cache block manager with a hash-chained prefix cache.
//!
//! Why: KV capacity is what makes a backend queue, preempt and lose prefix hits, i.e. what makes
//! routing matter. This mirrors vLLM V1's `BlockPool` closely enough for routing experiments:
//! blocks of `block_size` tokens, a block is identified for reuse by the chain hash of every token
//! up to and including it, blocks whose reference count drops to zero stay cached ("evictable")
//! and are evicted LRU when fresh blocks run out. SGLang's radix tree with page size 1 is the same
//! structure with one-token blocks: a leading-chain match on token hashes is exactly a radix match.
//!
//! # Memory usage
//! Per-block bookkeeping grows lazily with the number of blocks ever handed out: about 20 bytes per
//! block plus the hash-map entry of cached blocks (≈ 8.6 MB for a fully used 430k-token SGLang
//! pool with one-token pages, ≈ 0.6 MB with vLLM's 16-token blocks).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// Block manager: fresh blocks, free uncached blocks, evictable cached blocks, in-use blocks.
#[derive(Debug)]
pub(super) struct KvCache {
    block_size: u32,
    num_blocks: u32,
    /// Blocks `fresh_next..num_blocks` have never been handed out.
    fresh_next: u32,
    /// Free blocks holding no cached content.
    free: Vec<u32>,
    ref_count: Vec<u32>,
    hash_of: Vec<Option<u64>>,
    lru_tick: Vec<u64>,
    /// LRU queue of cached refcount-0 blocks as `(tick freed, block)`, oldest first. Entries go
    /// stale (lazy deletion) when the block is re-referenced; an entry is live iff the block has
    /// refcount 0, a hash, and `lru_tick` equal to the entry's tick.
    evictable: VecDeque<(u64, u32)>,
    /// Live entries in `evictable`.
    evictable_live: u64,
    by_hash: U64Map<u32>,
    next_tick: u64,
}

impl KvCache {
    /// A pool of `num_blocks` blocks (at least 1) of `block_size` tokens (at least 1).
    pub(super) fn new(num_blocks: u32, block_size: u32) -> Self {
        KvCache {
            block_size: block_size.max(1),
            num_blocks: num_blocks.max(1),
            fresh_next: 0,
            free: Vec::new(),
            ref_count: Vec::new(),
            hash_of: Vec::new(),
            lru_tick: Vec::new(),
            evictable: VecDeque::new(),
            evictable_live: 0,
            by_hash: U64Map::default(),
            next_tick: 0,
        }
    }

    pub(super) fn block_size(&self) -> u32 {
        self.block_size
    }

    pub(super) fn num_blocks(&self) -> u32 {
        self.num_blocks
    }

    /// Blocks that an allocation may take (fresh + free + evictable).
    pub(super) fn free_blocks(&self) -> u64 {
        u64::from(self.num_blocks - self.fresh_next) + self.free.len() as u64 + self.evictable_live
    }

    /// Blocks referenced by at least one running sequence.
    pub(super) fn used_blocks(&self) -> u64 {
        u64::from(self.num_blocks) - self.free_blocks()
    }

    /// The cached block holding chain hash `hash`, if any (in use or evictable).
    pub(super) fn lookup(&self, hash: u64) -> Option<u32> {
        self.by_hash.get(&hash).copied()
    }

    /// Whether `extra` new blocks can be allocated after taking references on `matched`
    /// (matched blocks that are evictable stop being allocatable once referenced).
    pub(super) fn can_allocate_after(&self, matched: &[u32], extra: u64) -> bool {
        let revived = matched.iter().filter(|&&b| self.refs(b) == 0).count() as u64;
        self.free_blocks() >= revived + extra
    }

    fn refs(&self, block: u32) -> u32 {
        self.ref_count.get(block as usize).copied().unwrap_or(0)
    }

    /// Takes a reference on cached blocks found by prefix matching.
    pub(super) fn acquire(&mut self, blocks: &[u32]) {
        for &b in blocks {
            let i = b as usize;
            if i >= self.ref_count.len() {
                continue;
            }
            if self.ref_count[i] == 0 && self.hash_of[i].is_some() {
                self.evictable_live -= 1; // its queue entry is now stale
            }
            self.ref_count[i] += 1;
        }
    }

    /// Allocates `n` blocks (all or nothing): never-used blocks first, then free uncached ones,
    /// then the least recently freed cached blocks (their hashes are forgotten).
    pub(super) fn allocate(&mut self, n: u64, out: &mut Vec<u32>) -> bool {
        if self.free_blocks() < n {
            return false;
        }
        for _ in 0..n {
            let b = if self.fresh_next < self.num_blocks {
                let b = self.fresh_next;
                self.fresh_next += 1;
                self.ref_count.push(0);
                self.hash_of.push(None);
                self.lru_tick.push(0);
                b
            } else if let Some(b) = self.free.pop() {
                b
            } else if let Some(b) = self.pop_lru() {
                if let Some(h) = self.hash_of[b as usize].take() {
                    self.by_hash.remove(&h);
                }
                b
            } else {
                // unreachable given the free_blocks() check above
                return false;
            };
            self.ref_count[b as usize] = 1;
            out.push(b);
        }
        true
    }

    /// Drops one reference on each block. Blocks are released tail first, so that a request's
    /// tail blocks are evicted before its head blocks (vLLM's order): shared prefixes live longest.
    pub(super) fn release(&mut self, blocks: &[u32]) {
        for &b in blocks.iter().rev() {
            let i = b as usize;
            if i >= self.ref_count.len() || self.ref_count[i] == 0 {
                continue;
            }
            self.ref_count[i] -= 1;
            if self.ref_count[i] == 0 {
                if self.hash_of[i].is_some() {
                    self.lru_tick[i] = self.next_tick;
                    self.evictable.push_back((self.next_tick, b));
                    self.evictable_live += 1;
                    self.next_tick += 1;
                } else {
                    self.free.push(b);
                }
            }
        }
        self.compact_lru();
    }

    /// Whether LRU entry `(tick, b)` is live (see the `evictable` field).
    fn is_live(&self, tick: u64, b: u32) -> bool {
        let i = b as usize;
        self.ref_count[i] == 0 && self.hash_of[i].is_some() && self.lru_tick[i] == tick
    }

    /// Pops the least recently freed live cached block, skipping stale entries.
    fn pop_lru(&mut self) -> Option<u32> {
        while let Some((tick, b)) = self.evictable.pop_front() {
            if self.is_live(tick, b) {
                self.evictable_live -= 1;
                return Some(b);
            }
        }
        None
    }

    /// Drops stale LRU entries once they outnumber live ones, so the queue stays O(live blocks)
    /// (amortized O(1) per release).
    fn compact_lru(&mut self) {
        if self.evictable.len() as u64 > 2 * self.evictable_live + 1024 {
            let queue = std::mem::take(&mut self.evictable);
            self.evictable = queue
                .into_iter()
                .filter(|&(t, b)| self.is_live(t, b))
                .collect();
        }
    }

    /// Publishes a full block under its chain hash. A hash already cached (another request computed
    /// the same block concurrently) leaves this copy unpublished, as vLLM does.
    pub(super) fn register(&mut self, block: u32, hash: u64) {
        let i = block as usize;
        if i >= self.hash_of.len() || self.hash_of[i].is_some() {
            return;
        }
        if let std::collections::hash_map::Entry::Vacant(e) = self.by_hash.entry(hash) {
            e.insert(block);
            self.hash_of[i] = Some(hash);
        }
    }

    /// Forgets every cached hash (backend restart / `flush_cache`); in-use blocks stay allocated.
    pub(super) fn reset(&mut self) {
        for (tick, b) in std::mem::take(&mut self.evictable) {
            if self.is_live(tick, b) {
                self.hash_of[b as usize] = None;
                self.free.push(b);
            }
        }
        self.evictable_live = 0;
        for (_, b) in self.by_hash.drain() {
            self.hash_of[b as usize] = None;
        }
    }
}

/// Hash map keyed by `u64` with a one-multiply-chain mix instead of SipHash: keys are chain
/// hashes or request ids, not attacker-controlled, and lookups dominate prefix matching.
pub(super) type U64Map<V> = HashMap<u64, V, BuildHasherDefault<U64Hasher>>;

/// [`Hasher`] for `u64` keys: SplitMix64 of the key (other inputs are folded in byte-wise).
#[derive(Default, Clone, Copy, Debug)]
pub(super) struct U64Hasher(u64);

impl Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix64(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = mix64(self.0 ^ n);
    }
}

/// Chain hash of one block: mixes the parent block's hash with the block's token ids.
pub(super) fn chain_hash(parent: u64, tokens: &[u32]) -> u64 {
    let mut h = parent ^ 0x9e37_79b9_7f4a_7c15;
    for &t in tokens {
        h = mix64(h.rotate_left(23) ^ u64::from(t));
    }
    mix64(h ^ tokens.len() as u64)
}

/// SplitMix64 finalizer: a cheap, well-distributed 64-bit mix.
pub(super) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_cached_blocks_are_evicted_lru_and_forgotten() {
        let mut kv = KvCache::new(2, 4);
        let mut a = Vec::new();
        assert!(kv.allocate(2, &mut a));
        kv.register(a[0], 11);
        kv.register(a[1], 22);
        kv.release(&a);
        assert_eq!(kv.free_blocks(), 2);
        assert_eq!(kv.lookup(11), Some(a[0]));
        // tail (a[1]) was released first, so it is evicted first
        let mut b = Vec::new();
        assert!(kv.allocate(1, &mut b));
        assert_eq!(b, vec![a[1]]);
        assert_eq!(kv.lookup(22), None);
        assert_eq!(kv.lookup(11), Some(a[0]));
        assert!(!kv.can_allocate_after(&[a[0]], 1));
        kv.acquire(&[a[0]]);
        assert_eq!(kv.used_blocks(), 2);
        assert!(!kv.allocate(1, &mut b));
    }

    #[test]
    fn reset_forgets_hashes_but_keeps_allocations() {
        let mut kv = KvCache::new(4, 1);
        let mut a = Vec::new();
        assert!(kv.allocate(2, &mut a));
        kv.register(a[0], 1);
        kv.register(a[1], 2);
        kv.release(&a[1..]);
        kv.reset();
        assert_eq!(kv.lookup(1), None);
        assert_eq!(kv.lookup(2), None);
        assert_eq!(kv.used_blocks(), 1);
    }
}
