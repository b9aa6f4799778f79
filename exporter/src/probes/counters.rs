//! The kernel's per-CPU counter arrays (emitted, dropped, field problems,
//! excluded, rate-limited records), read a whole map at a time.
//!
//! Reading them one key at a time took one `bpf()` call per key and event
//! type: ~660 calls per second with vigil idle (`strace -c`), every one
//! through the syscall tracepoints vigil itself has attached. A
//! `BPF_MAP_LOOKUP_BATCH` returns every key of an array with all CPUs'
//! values in one call (array maps: Linux 5.6+); where the kernel refuses it
//! the table is filled key by key as before.

use libbpf_rs::libbpf_sys;
use libbpf_rs::{MapCore, MapFlags};
use std::os::fd::AsRawFd;

/// Every entry of a per-CPU `u64` array map: `values[key * cpus + cpu]`.
#[derive(Debug, Default)]
pub struct PercpuTable {
    cpus: usize,
    values: Vec<u64>,
}

impl PercpuTable {
    /// Read `map` (a per-CPU array of `u64` values) whole: one batch lookup,
    /// or one lookup per key where batch operations are refused.
    pub fn read(map: &dyn MapCore) -> PercpuTable {
        let keys = map.max_entries() as usize;
        let cpus = libbpf_rs::num_possible_cpus().unwrap_or(1).max(1);
        batch(map, keys, cpus).unwrap_or_else(|| {
            let mut values = vec![0; keys * cpus];
            for key in 0..keys {
                for (slot, v) in values[key * cpus..(key + 1) * cpus].iter_mut().zip(entry(map, key as u32)) {
                    *slot = v;
                }
            }
            PercpuTable { cpus, values }
        })
    }

    /// The values of `key`, one per possible CPU (empty beyond the map).
    pub fn of(&self, key: u32) -> &[u64] {
        let start = key as usize * self.cpus;
        self.values.get(start..start + self.cpus).unwrap_or(&[])
    }

    /// The values of `key` summed over the CPUs.
    pub fn sum(&self, key: u32) -> u64 {
        self.of(key).iter().sum()
    }
}

/// One entry of a per-CPU `u64` array, one value per possible CPU (one
/// lookup; empty when it fails).
fn entry(map: &dyn MapCore, key: u32) -> Vec<u64> {
    match map.lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY) {
        Ok(Some(values)) => values.iter().map(|v| v.get(..8).map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))).collect(),
        _ => Vec::new(),
    }
}

/// One entry of a per-CPU `u64` array summed over the CPUs (one lookup:
/// for single entries; whole counter maps are read with [`PercpuTable`]).
pub fn sum(map: &dyn MapCore, key: u32) -> u64 {
    entry(map, key).iter().sum()
}

/// One `BPF_MAP_LOOKUP_BATCH` of all `keys` entries; `None` when the kernel
/// refuses it or returns fewer entries, or the values are not `u64`.
fn batch(map: &dyn MapCore, keys: usize, cpus: usize) -> Option<PercpuTable> {
    if map.value_size() != 8 || keys == 0 {
        return None;
    }
    let mut key_buf = vec![0u32; keys];
    let mut values = vec![0u64; keys * cpus];
    let mut out_batch = 0u32;
    let mut count = u32::try_from(keys).ok()?;
    let opts = libbpf_sys::bpf_map_batch_opts { sz: std::mem::size_of::<libbpf_sys::bpf_map_batch_opts>() as _, ..Default::default() };
    // SAFETY: the buffers hold `count` keys (u32, the map's key size) and
    // `count` values of `cpus` u64 each (a per-CPU value of 8 bytes, checked
    // above, is returned as one 8-byte slot per possible CPU); `out_batch`
    // has the key size; all outlive the call, which only writes into them.
    let ret = unsafe {
        libbpf_sys::bpf_map_lookup_batch(
            map.as_fd().as_raw_fd(),
            std::ptr::null_mut(),
            (&raw mut out_batch).cast(),
            key_buf.as_mut_ptr().cast(),
            values.as_mut_ptr().cast(),
            &raw mut count,
            &raw const opts,
        )
    };
    // The whole array in one call ends with ENOENT (no next batch) or 0,
    // its keys in order (anything else: read key by key instead).
    if (ret != 0 && ret != -libc::ENOENT) || count as usize != keys || key_buf.iter().enumerate().any(|(i, k)| *k as usize != i) {
        return None;
    }
    Some(PercpuTable { cpus, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_by_key_and_summed_over_cpus() {
        // 3 keys, 2 CPUs.
        let t = PercpuTable { cpus: 2, values: vec![1, 2, 30, 40, 500, 600] };
        assert_eq!(t.of(0), [1, 2]);
        assert_eq!(t.of(1), [30, 40]);
        assert_eq!(t.sum(2), 1100);
        assert!(t.of(3).is_empty(), "beyond the map");
        assert_eq!(t.sum(3), 0);
    }
}
