//! The hasher of the map stage's per-record maps (process table, user and
//! group names, workloads, cgroup paths, stream positions).
//!
//! std's `HashMap` hashes with SipHash-1-3, which was ~4% of the exec path
//! (about six lookups per exec record, each hashing one small integer).
//! foldhash hashes an integer with a couple of multiplications. Keys here
//! are partly chosen by whoever runs processes on the host (pids, uids,
//! cgroup ids), so the hasher stays keyed: its seeds come from std's
//! `RandomState`, i.e. from the operating system's random source, not from
//! foldhash's own default (address-space layout and time), so colliding
//! keys cannot be computed ahead.

use foldhash::fast::{FoldHasher, SeedableRandomState};
use foldhash::SharedSeed;
use std::hash::BuildHasher;
use std::sync::OnceLock;

/// 64 random bits from the operating system (std's `RandomState` keys
/// SipHash with them; hashing a constant with it gives a random value).
fn os_random() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

/// Randomly keyed foldhash: one shared seed per process, one per map.
#[derive(Clone, Debug)]
pub struct KeyedState(SeedableRandomState);

impl Default for KeyedState {
    fn default() -> Self {
        static SHARED: OnceLock<SharedSeed> = OnceLock::new();
        let shared = SHARED.get_or_init(|| SharedSeed::from_u64(os_random()));
        KeyedState(SeedableRandomState::with_seed(os_random(), shared))
    }
}

impl BuildHasher for KeyedState {
    type Hasher = FoldHasher<'static>;

    #[inline(always)]
    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

/// A `HashMap` with [`KeyedState`] (create it with `default()`).
pub type FastMap<K, V> = std::collections::HashMap<K, V, KeyedState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_keyed_differently() {
        let (a, b) = (KeyedState::default(), KeyedState::default());
        // Two maps disagree on the hashes of small integers (with 64-bit
        // seeds, all 64 agreeing by chance is out of the question).
        assert!((0u32..64).any(|k| a.hash_one(k) != b.hash_one(k)));
        // One map is consistent.
        assert!((0u32..64).all(|k| a.hash_one(k) == a.clone().hash_one(k)));
        let mut m: FastMap<u32, u32> = FastMap::default();
        m.extend((0..1000).map(|k| (k, k * 2)));
        assert!((0..1000).all(|k| m.get(&k) == Some(&(k * 2))));
    }
}
