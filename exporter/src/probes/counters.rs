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
                if let Ok(Some(per_cpu)) = map.lookup_percpu(&(key as u32).to_ne_bytes(), MapFlags::ANY) {
                    for (cpu, v) in per_cpu.iter().take(cpus).enumerate() {
                        values[key * cpus + cpu] = u64_of(v);
                    }
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

/// A counter value as the kernel returns it (native-endian `u64`; 0 when
/// shorter).
pub fn u64_of(v: &[u8]) -> u64 {
    v.get(..8).map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
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
    // The whole array in one call ends with ENOENT (no next batch) or 0.
    if (ret != 0 && ret != -libc::ENOENT) || count as usize != keys {
        return None;
    }
    // An array returns its keys in order; place by key all the same.
    if key_buf.iter().enumerate().all(|(i, k)| *k as usize == i) {
        return Some(PercpuTable { cpus, values });
    }
    let mut placed = vec![0u64; keys * cpus];
    for (i, k) in key_buf.iter().enumerate() {
        let k = *k as usize;
        if k < keys {
            placed[k * cpus..(k + 1) * cpus].copy_from_slice(&values[i * cpus..(i + 1) * cpus]);
        }
    }
    Some(PercpuTable { cpus, values: placed })
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
