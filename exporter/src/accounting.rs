//! Loss accounting: sequence gaps per kernel stream, and loss windows per
//! stage and cause, turned into `vigil.telemetry.loss` records.
//!
//! Sources, all exact counters:
//! - kernel: the per-CPU drop counters of the probes (per event type and
//!   cause), read by the receiver, and the programs' `recursion_misses`
//!   (runs the kernel skipped: those events were never numbered);
//! - agent: records the receiver could not queue (per event type) and
//!   records that failed to decode;
//! - export: records whose export failed for good, and records a collector
//!   rejected in a partial success;
//! - spool: spooled records evicted when the spool was full, or in a
//!   segment found corrupt (records still in the spool are not lost);
//! - reconciliation with /proc: processes that appeared or vanished without
//!   an observed exec or exit (`missed_exec`, `missed_exit`).
//!
//! Each window reports the increase of every counter since the previous
//! window, with the counter itself as the cumulative `vigil.loss.total`.
//! Sequence gaps (`vigil.stream.gap_before`) are the other view of the same
//! losses: on each stream, the numbers missing between delivered records
//! equal the kernel drops plus the agent's drops of that stream's records.

use crate::abi::{DropCause, EventType, DROP_MAX};
use crate::otel::telemetry::{Loss, LossStage};
use crate::stats::Stats;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

/// `vigil.loss.event_name` for lost spans (process lifetimes).
pub const SPANS: &str = "span";

/// Tracks the next expected sequence number of every (cpu, lane) stream.
#[derive(Debug, Default)]
pub struct StreamTracker {
    next: crate::fasthash::FastMap<(u32, u32), u64>,
    window: BTreeMap<(u32, u32), (u64, u64)>,
    /// Sum of all gaps seen.
    pub gaps: u64,
    /// Gaps per (cpu, lane) stream.
    pub gaps_by_stream: BTreeMap<(u32, u32), u64>,
    /// Records that arrived after a later number of their stream (they were
    /// counted in a gap already).
    pub late: u64,
}

impl StreamTracker {
    /// Account for a delivered record; returns the number of sequence
    /// numbers missing just before it. Kernel sequences start at 1 at load.
    pub fn observe(&mut self, cpu: u32, lane: u32, seq: u64) -> u64 {
        let next = self.next.entry((cpu, lane)).or_insert(1);
        if seq < *next {
            self.late += 1;
            return 0;
        }
        let gap = seq - *next;
        if gap > 0 {
            let range = self.window.entry((cpu, lane)).or_insert((*next, seq - 1));
            range.0 = range.0.min(*next);
            range.1 = range.1.max(seq - 1);
            self.gaps += gap;
            *self.gaps_by_stream.entry((cpu, lane)).or_insert(0) += gap;
        }
        *next = seq + 1;
        gap
    }

    /// The gap range seen on a stream since the last call, cleared.
    pub fn take_window(&mut self, cpu: u32, lane: u32) -> Option<(u64, u64)> {
        self.window.remove(&(cpu, lane))
    }
}

/// Identifies one loss counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Kernel { cpu: u32, event: EventType, cause: u8 },
    Skipped(EventType),
    Queue(Option<EventType>),
    Malformed,
    ExportFailed,
    ExportRejected,
    SpansFailed,
    SpansRejected,
    MissedExec,
    MissedExit,
    SpoolFull,
    SpoolCorrupt,
    SpansSpoolFull,
    SpansSpoolCorrupt,
}

/// Turns counter increases into loss records, one per window and counter.
#[derive(Debug, Default)]
pub struct LossReporter {
    last: HashMap<Key, u64>,
    window_start_ns: u64,
}

impl LossReporter {
    /// A reporter whose first window starts at `now_ns`.
    pub fn new(now_ns: u64) -> Self {
        LossReporter { last: HashMap::new(), window_start_ns: now_ns }
    }

    /// Losses since the previous call. `stream_id(cpu, lane)` names kernel
    /// streams.
    pub fn collect(
        &mut self,
        stats: &Stats,
        tracker: &mut StreamTracker,
        now_ns: u64,
        stream_id: impl Fn(u32, u32) -> String,
    ) -> Vec<Loss> {
        let mut current: Vec<(Key, u64)> = Vec::new();
        for (cpu, values) in stats.kernel_drops_by_cpu().iter().enumerate() {
            for event in EventType::ALL {
                for cause in DropCause::ALL {
                    let v = values.get(event as usize * DROP_MAX + cause as usize).copied().unwrap_or(0);
                    current.push((Key::Kernel { cpu: cpu as u32, event, cause: cause as u8 }, v));
                }
            }
        }
        for event in EventType::ALL {
            current.push((Key::Skipped(event), stats.program_recursion_misses(event).unwrap_or(0)));
            current.push((Key::Queue(Some(event)), stats.queue_full(event)));
        }
        current.push((Key::Queue(None), stats.queue_full_untyped.load(Ordering::Relaxed)));
        current.push((Key::Malformed, stats.decode_errors.load(Ordering::Relaxed)));
        current.push((Key::ExportFailed, stats.export_failed.load(Ordering::Relaxed)));
        current.push((Key::ExportRejected, stats.export_rejected.load(Ordering::Relaxed)));
        current.push((Key::SpansFailed, stats.spans_export_failed.load(Ordering::Relaxed)));
        current.push((Key::SpansRejected, stats.spans_rejected.load(Ordering::Relaxed)));
        current.push((Key::MissedExec, stats.missed_exec.load(Ordering::Relaxed)));
        current.push((Key::MissedExit, stats.missed_exit.load(Ordering::Relaxed)));
        let sp = &stats.spool;
        current.push((Key::SpoolFull, sp.full.load(Ordering::Relaxed)));
        current.push((Key::SpoolCorrupt, sp.corrupt.load(Ordering::Relaxed)));
        current.push((Key::SpansSpoolFull, sp.spans_full.load(Ordering::Relaxed)));
        current.push((Key::SpansSpoolCorrupt, sp.spans_corrupt.load(Ordering::Relaxed)));

        let window = (self.window_start_ns, now_ns);
        let mut out = Vec::new();
        for (key, total) in current {
            // Counters only grow; a read that comes back lower (a failed map
            // lookup reads as 0) must not make the next read count twice.
            let last = self.last.get(&key).copied().unwrap_or(0);
            if total <= last {
                continue;
            }
            self.last.insert(key, total);
            let count = total - last;
            let (stage, error_type, event, stream): (_, _, Option<&'static str>, _) = match key {
                Key::Kernel { cpu, event, cause } => (
                    LossStage::Kernel,
                    DropCause::ALL[usize::from(cause)].error_type(),
                    Some(event.event_name()),
                    Some((cpu, event.lane())),
                ),
                // The kernel skipped the program (recursion guard): the event
                // was never numbered, so no gap shows it; only this counter.
                Key::Skipped(event) => (LossStage::Kernel, "probe_skipped", Some(event.event_name()), None),
                Key::Queue(event) => (LossStage::Agent, "queue_full", event.map(EventType::event_name), None),
                Key::Malformed => (LossStage::Agent, "malformed_record", None, None),
                Key::ExportFailed => (LossStage::Export, "export_failed", None, None),
                Key::ExportRejected => (LossStage::Export, "export_rejected", None, None),
                Key::SpansFailed => (LossStage::Export, "export_failed", Some(SPANS), None),
                Key::SpansRejected => (LossStage::Export, "export_rejected", Some(SPANS), None),
                // Found by reconciling with /proc: the stage that lost the
                // record is unknown; the agent is where it shows.
                Key::MissedExec => (LossStage::Agent, "missed_exec", Some(EventType::Exec.event_name()), None),
                Key::MissedExit => (LossStage::Agent, "missed_exit", Some(EventType::Exit.event_name()), None),
                // Spooled records evicted from a full spool, or in a segment
                // found corrupt.
                Key::SpoolFull => (LossStage::Export, "spool_full", None, None),
                Key::SpoolCorrupt => (LossStage::Export, "spool_corrupt", None, None),
                Key::SpansSpoolFull => (LossStage::Export, "spool_full", Some(SPANS), None),
                Key::SpansSpoolCorrupt => (LossStage::Export, "spool_corrupt", Some(SPANS), None),
            };
            let lane = match key {
                Key::Kernel { event, .. } | Key::Skipped(event) | Key::Queue(Some(event)) => Some(crate::abi::lane_name(event.lane())),
                Key::MissedExec | Key::MissedExit => Some(crate::abi::lane_name(crate::abi::LANE_CRITICAL)),
                _ => None,
            };
            let loss = Loss {
                stage,
                error_type,
                count,
                total,
                event_name: event,
                lane,
                stream: stream.map(|(cpu, lane)| stream_id(cpu, lane)),
                seq_range: stream.and_then(|(cpu, lane)| tracker.take_window(cpu, lane)),
                window,
            };
            out.push(loss);
        }
        // Gap ranges not claimed by a kernel loss in this window (agent
        // drops, late records) must not attach to a later, unrelated one.
        tracker.window.clear();
        self.window_start_ns = now_ns;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_counted_per_stream() {
        let mut t = StreamTracker::default();
        assert_eq!(t.observe(0, 0, 1), 0);
        assert_eq!(t.observe(0, 0, 2), 0);
        assert_eq!(t.observe(1, 0, 3), 2, "a stream's first record after load: numbers 1 and 2 missing");
        assert_eq!(t.observe(0, 0, 6), 3);
        assert_eq!(t.observe(0, 0, 9), 2);
        assert_eq!(t.gaps, 7);
        assert_eq!(t.take_window(0, 0), Some((3, 8)));
        assert_eq!(t.take_window(0, 0), None);
        assert_eq!(t.observe(0, 0, 5), 0, "late record");
        assert_eq!(t.late, 1);
    }

    #[test]
    fn reports_increases_once_with_cumulative_totals() {
        let stats = Stats::default();
        let mut t = StreamTracker::default();
        let mut r = LossReporter::new(0);
        let id = |cpu: u32, lane: u32| format!("s-{cpu}-{lane}");
        assert!(r.collect(&stats, &mut t, 1, id).is_empty());
        let mut drops = vec![vec![0u64; crate::abi::EV_SLOTS * DROP_MAX]; 2];
        drops[1][EventType::Exec as usize * DROP_MAX + DropCause::RingbufFull as usize] = 4;
        stats.set_kernel_drops_by_cpu(drops.clone());
        stats.count_queue_full(&(EventType::Fork as u16).to_ne_bytes());
        t.observe(1, 0, 1);
        t.observe(1, 0, 6);
        let losses = r.collect(&stats, &mut t, 2, id);
        assert_eq!(losses.len(), 2, "{losses:?}");
        let k = &losses[0];
        assert_eq!((k.stage, k.error_type, k.count, k.total), (LossStage::Kernel, "ringbuf_full", 4, 4));
        assert_eq!(k.stream.as_deref(), Some("s-1-0"));
        assert_eq!(k.seq_range, Some((2, 5)));
        assert_eq!(k.event_name, Some("vigil.process.exec"));
        assert_eq!((losses[1].error_type, losses[1].event_name), ("queue_full", Some("vigil.process.fork")));
        assert_eq!((k.lane, losses[1].lane), (Some("critical"), Some("critical")));
        assert!(r.collect(&stats, &mut t, 3, id).is_empty(), "no increase, no record");
        // A failed read (0) followed by the real value again reports nothing new.
        stats.set_kernel_drops_by_cpu(vec![vec![0u64; crate::abi::EV_SLOTS * DROP_MAX]; 2]);
        assert!(r.collect(&stats, &mut t, 3, id).is_empty());
        let mut again = vec![vec![0u64; crate::abi::EV_SLOTS * DROP_MAX]; 2];
        again[1][EventType::Exec as usize * DROP_MAX + DropCause::RingbufFull as usize] = 4;
        stats.set_kernel_drops_by_cpu(again);
        assert!(r.collect(&stats, &mut t, 3, id).is_empty(), "no double count after a bad read");
        drops[1][EventType::Exec as usize * DROP_MAX + DropCause::RingbufFull as usize] = 6;
        stats.set_kernel_drops_by_cpu(drops);
        let losses = r.collect(&stats, &mut t, 4, id);
        assert_eq!((losses[0].count, losses[0].total, losses[0].window), (2, 6, (3, 4)));
    }

    #[test]
    fn bulk_losses_name_the_bulk_lane_and_its_stream() {
        let stats = Stats::default();
        let mut t = StreamTracker::default();
        let mut r = LossReporter::new(0);
        let mut drops = vec![vec![0u64; crate::abi::EV_SLOTS * DROP_MAX]; 1];
        drops[0][EventType::FileOpen as usize * DROP_MAX + DropCause::RingbufFull as usize] = 3;
        stats.set_kernel_drops_by_cpu(drops);
        t.observe(0, crate::abi::LANE_BULK, 1);
        t.observe(0, crate::abi::LANE_BULK, 5);
        t.observe(0, crate::abi::LANE_CRITICAL, 1);
        let losses = r.collect(&stats, &mut t, 1, |cpu: u32, lane: u32| format!("s-{cpu}-{lane}"));
        assert_eq!(losses.len(), 1, "{losses:?}");
        assert_eq!(losses[0].lane, Some("bulk"));
        assert_eq!(losses[0].stream.as_deref(), Some("s-0-1"), "the bulk stream of cpu 0");
        assert_eq!(losses[0].seq_range, Some((2, 4)));
    }
}
