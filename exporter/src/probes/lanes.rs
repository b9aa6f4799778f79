//! Priority lanes on the user-space side of the ring buffers.
//!
//! The kernel writes critical records (process lifecycle, privilege,
//! fileless, kernel) to the `events` ring buffer and bulk records (file,
//! network) to `events_bulk` (kernel-probes/include/lanes.bpf.h). Here:
//!
//! - the drain order: the critical ring is emptied first, then at most
//!   [`BULK_BATCH`] bulk records are read before the critical ring is
//!   looked at again, so a bulk flood can not delay critical records by more
//!   than one batch;
//! - the queue budget: the receiver hands records on with `try_send` (it
//!   never awaits) and a bulk record is queued only while more than
//!   `pipeline.critical_queue_reserve` slots are free, so the last slots are
//!   kept for critical records; whatever is not queued is counted per event
//!   type (`queue_full`);
//! - bulk records wait in their ring while the queue has no room for them:
//!   the drain reads at most as many as the queue's bulk share can take
//!   ([`bulk_room`]), so a burst is buffered by the bulk ring (already
//!   allocated, in the kernel) as well as by the queue before anything is
//!   lost; when both are full the kernel drops and counts
//!   (`kernel_dropped`, bulk lane). The drain never waits for room: it
//!   leaves the rest for its next turn (the drain timer or a wake-up), and
//!   the last drain at shutdown reads everything;
//! - per-lane fill levels and the lanes' sequence counters (records
//!   generated per lane), read from the kernel for the accounting.

use crate::abi::{LANES, LANE_BULK, LANE_CRITICAL, LANE_MAX};
use crate::stats::Stats;
use libbpf_rs::libbpf_sys;
use libbpf_rs::{AsRawLibbpf, MapCore};
use std::sync::atomic::Ordering;

/// Bulk records read per turn before the critical ring is drained again.
pub const BULK_BATCH: usize = 4096;

/// Ring index of a lane in the receiver's ring buffer manager (the rings are
/// added in [`LANES`] order).
fn ring_index(lane: u32) -> u32 {
    LANES.iter().position(|l| *l == lane).map_or(0, |i| i as u32)
}

/// Whether a record of `lane` may take one of `free` free queue slots when
/// `reserve` slots are kept for the critical lane.
pub fn admits(lane: u32, free: usize, reserve: usize) -> bool {
    if lane == LANE_CRITICAL {
        free > 0
    } else {
        free > reserve
    }
}

/// The raw libbpf ring of `lane` (null when missing).
fn ring_of(ring: &libbpf_rs::RingBuffer<'_>, lane: u32) -> *mut libbpf_sys::ring {
    // SAFETY: the manager pointer is valid for `ring`'s lifetime; an index
    // beyond the rings added returns null (checked by the callers).
    unsafe { libbpf_sys::ring_buffer__ring(ring.as_libbpf_object().as_ptr(), ring_index(lane)) }
}

/// Bulk records the queue can take now: its free slots beyond the critical
/// reserve.
pub fn bulk_room(free: usize, reserve: usize) -> usize {
    free.saturating_sub(reserve)
}

/// Drain both rings, critical first: empty the critical ring, read up to
/// [`BULK_BATCH`] bulk records (no more than `bulk_room()` says the queue
/// can take: the rest waits in the ring), repeat until the bulk ring had
/// fewer or the queue has no more room. Returns the records read, or the
/// first negative libbpf error.
pub fn drain(ring: &libbpf_rs::RingBuffer<'_>, bulk_room: &dyn Fn() -> usize) -> Result<u64, i32> {
    let critical = ring_of(ring, LANE_CRITICAL);
    let bulk = ring_of(ring, LANE_BULK);
    if critical.is_null() || bulk.is_null() {
        // Fall back to libbpf's own order (rings in the order added).
        let n = ring.consume_raw();
        return if n < 0 { Err(n) } else { Ok(n as u64) };
    }
    let mut total = 0u64;
    loop {
        // SAFETY: both rings belong to `ring`, alive for this call; the
        // callbacks they run are the receiver's closures, also owned by it.
        let c = unsafe { libbpf_sys::ring__consume(critical) };
        if c < 0 {
            return Err(c);
        }
        let n = bulk_room().min(BULK_BATCH);
        if n == 0 {
            return Ok(total + c as u64);
        }
        // SAFETY: as above.
        let b = unsafe { libbpf_sys::ring__consume_n(bulk, n as _) };
        if b < 0 {
            return Err(b);
        }
        total += c as u64 + b as u64;
        if (b as usize) < BULK_BATCH {
            return Ok(total);
        }
    }
}

/// Whether records wait in either ring.
pub fn waiting(ring: &libbpf_rs::RingBuffer<'_>) -> bool {
    LANES.into_iter().map(|lane| ring_of(ring, lane)).any(|r| {
        // SAFETY: a ring of `ring`, alive for this call; only its positions
        // are read.
        !r.is_null() && unsafe { libbpf_sys::ring__avail_data_size(r) } > 0
    })
}

/// Copy each lane's fill level (bytes waiting, ring size) into `stats`.
pub fn read_fill(ring: &libbpf_rs::RingBuffer<'_>, stats: &Stats) {
    for lane in LANES {
        let r = ring_of(ring, lane);
        if r.is_null() {
            continue;
        }
        // SAFETY: a ring of `ring`, alive for this call; both only read its
        // positions.
        let (used, size) = unsafe { (libbpf_sys::ring__avail_data_size(r), libbpf_sys::ring__size(r)) };
        let (u, s) = if lane == LANE_BULK {
            (&stats.bulk_ringbuf_used_bytes, &stats.bulk_ringbuf_size_bytes)
        } else {
            (&stats.ringbuf_used_bytes, &stats.ringbuf_size_bytes)
        };
        u.store(used, Ordering::Relaxed);
        s.store(size, Ordering::Relaxed);
    }
}

/// Copy the sequence numbers handed out per lane (the `stream_seq` per-CPU
/// array, summed over CPUs) into `stats`.
pub fn read_numbered(stream_seq: &dyn MapCore, stats: &Stats) {
    for lane in 0..LANE_MAX as u32 {
        stats.lane_numbered(lane).store(super::counters::sum(stream_seq, lane), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_records_leave_the_reserve_to_critical_ones() {
        // 10 free, 8 reserved: bulk may take two more slots, critical all.
        assert!(admits(LANE_BULK, 10, 8));
        assert!(admits(LANE_BULK, 9, 8));
        assert!(!admits(LANE_BULK, 8, 8));
        assert!(admits(LANE_CRITICAL, 8, 8));
        assert!(admits(LANE_CRITICAL, 1, 8));
        assert!(!admits(LANE_CRITICAL, 0, 8), "a full queue takes nothing");
        assert!(admits(LANE_BULK, 1, 0), "no reserve: bulk may fill the queue");
    }

    #[test]
    fn rings_are_added_critical_first() {
        assert_eq!(ring_index(LANE_CRITICAL), 0);
        assert_eq!(ring_index(LANE_BULK), 1);
    }
}
