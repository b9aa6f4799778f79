//! Counters for every stage, shared between the stages.
//!
//! Kernel counters are copies of the BPF maps (refreshed by the receiver);
//! the others are counted where the event happens. Together they give the
//! accounting invariant: for each event type,
//! `kernel emitted + kernel dropped` records were generated, and
//! `kernel emitted == received`, `received == queue_full + decode_errors +
//! mapped`, `mapped == exported + export_failed (+ rejected inside
//! exported)`.

use crate::abi::{DropCause, EventType, FieldProblem, DROP_MAX, EV_SLOTS, FIELDP_MAX};
use std::sync::atomic::{AtomicU64, Ordering};

/// All counters. Cheap to update from any thread.
#[derive(Debug)]
pub struct Stats {
    /// Records read from the ring buffer.
    pub received: AtomicU64,
    queue_full: [AtomicU64; EV_SLOTS],
    /// Queue-full drops whose record was too short to name its type.
    pub queue_full_untyped: AtomicU64,
    /// Records that failed to decode.
    pub decode_errors: AtomicU64,
    /// Records mapped to OTLP.
    pub mapped: AtomicU64,
    /// Records accepted by the exporter's receiver (including rejected ones).
    pub exported: AtomicU64,
    /// Records the receiver rejected in a partial success.
    pub export_rejected: AtomicU64,
    /// Records whose export failed for good.
    pub export_failed: AtomicU64,
    kernel_emitted: [AtomicU64; EV_SLOTS],
    kernel_dropped: [AtomicU64; EV_SLOTS * DROP_MAX],
    kernel_field: [AtomicU64; EV_SLOTS * FIELDP_MAX],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            received: AtomicU64::new(0),
            queue_full: std::array::from_fn(|_| AtomicU64::new(0)),
            queue_full_untyped: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            mapped: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            export_rejected: AtomicU64::new(0),
            export_failed: AtomicU64::new(0),
            kernel_emitted: std::array::from_fn(|_| AtomicU64::new(0)),
            kernel_dropped: std::array::from_fn(|_| AtomicU64::new(0)),
            kernel_field: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Stats {
    /// Count a record the receiver could not hand on, by its type.
    pub fn count_queue_full(&self, record: &[u8]) {
        match record.get(..2).map(|b| usize::from(u16::from_ne_bytes([b[0], b[1]]))) {
            Some(t) if t < EV_SLOTS => self.queue_full[t].fetch_add(1, Ordering::Relaxed),
            _ => self.queue_full_untyped.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Queue-full drops of one type.
    pub fn queue_full(&self, t: EventType) -> u64 {
        self.queue_full[t as usize].load(Ordering::Relaxed)
    }

    /// Kernel: records of `t` output to the ring buffer.
    pub fn kernel_emitted(&self, t: EventType) -> &AtomicU64 {
        &self.kernel_emitted[t as usize]
    }

    /// Kernel: records of `t` dropped for `cause`.
    pub fn kernel_dropped(&self, t: EventType, cause: DropCause) -> &AtomicU64 {
        &self.kernel_dropped[t as usize * DROP_MAX + cause as usize]
    }

    /// Kernel: field problems of `t`.
    pub fn kernel_field_problem(&self, t: EventType, p: FieldProblem) -> &AtomicU64 {
        &self.kernel_field[t as usize * FIELDP_MAX + p as usize]
    }

    /// Total kernel drops over all types and causes.
    pub fn kernel_dropped_total(&self) -> u64 {
        self.kernel_dropped.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Total queue-full drops.
    pub fn queue_full_total(&self) -> u64 {
        self.queue_full.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>() + self.queue_full_untyped.load(Ordering::Relaxed)
    }

    /// A one-line summary for logs.
    pub fn summary(&self) -> String {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "received={} kernel_dropped={} queue_full={} decode_errors={} mapped={} exported={} export_rejected={} export_failed={}",
            l(&self.received),
            self.kernel_dropped_total(),
            self.queue_full_total(),
            l(&self.decode_errors),
            l(&self.mapped),
            l(&self.exported),
            l(&self.export_rejected),
            l(&self.export_failed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_full_is_counted_by_type() {
        let s = Stats::default();
        s.count_queue_full(&(EventType::Exec as u16).to_ne_bytes());
        s.count_queue_full(&[1]);
        s.count_queue_full(&999u16.to_ne_bytes());
        assert_eq!(s.queue_full(EventType::Exec), 1);
        assert_eq!(s.queue_full_untyped.load(Ordering::Relaxed), 2);
        assert_eq!(s.queue_full_total(), 3);
    }
}
