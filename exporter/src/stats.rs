//! Counters for every stage, shared between the stages.
//!
//! Kernel counters are copies of the BPF maps (refreshed by the receiver);
//! the others are counted where the event happens. Together they give the
//! accounting invariant: for each event type,
//! `kernel emitted + kernel dropped` records were generated, and
//! `kernel emitted == received`, `received == queue_full + decode_errors +
//! mapped`, `mapped == exported + export_failed (+ rejected inside
//! exported)`.
//!
//! Program counters ([`ProgramStats`]) come from the kernel's own
//! `bpf_prog_info` of each attached program: how often it ran, for how long,
//! and how often the kernel skipped it (`recursion_misses`: the program was
//! already running on that CPU). A skipped run is an event vigil never saw
//! and could not number, so it is the one loss the sequence numbers and
//! drop counters above can not show.

use crate::abi::{DropCause, EventType, FieldProblem, DROP_MAX, EV_SLOTS, FIELDP_MAX, LANE_MAX};
use crate::filters::{FilterReason, FILTER_MAX};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Kernel run-time statistics of the program serving one event type, copied
/// from its `bpf_prog_info` by the receiver (every 500 ms and at stop).
///
/// `run_cnt` and `run_time_ns` are only counted by the kernel while BPF
/// run-time statistics are enabled ([`Stats::bpf_run_stats_enabled`]);
/// `recursion_misses` is always counted.
#[derive(Debug, Default)]
pub struct ProgramStats {
    run_cnt: AtomicU64,
    run_time_ns: AtomicU64,
    recursion_misses: AtomicU64,
    /// The last read of the program's info succeeded: the values above are
    /// the kernel's, not placeholders.
    read: AtomicBool,
}

impl ProgramStats {
    /// Store one reading of `bpf_prog_info`.
    pub fn store(&self, run_cnt: u64, run_time_ns: u64, recursion_misses: u64) {
        self.run_cnt.store(run_cnt, Ordering::Relaxed);
        self.run_time_ns.store(run_time_ns, Ordering::Relaxed);
        self.recursion_misses.store(recursion_misses, Ordering::Relaxed);
        self.read.store(true, Ordering::Release);
    }

    /// The program's info could not be read: the values are kept but no
    /// longer reported as current.
    pub fn mark_unreadable(&self) {
        self.read.store(false, Ordering::Release);
    }

    /// Whether the values come from a successful read of the kernel's info.
    pub fn is_read(&self) -> bool {
        self.read.load(Ordering::Acquire)
    }

    /// Runs of the program (`bpf_prog_info.run_cnt`); only meaningful while
    /// BPF run-time statistics are enabled, see [`Stats::program_run_count`].
    pub fn run_cnt(&self) -> u64 {
        self.run_cnt.load(Ordering::Relaxed)
    }

    /// Total run time in ns (`bpf_prog_info.run_time_ns`); same caveat.
    pub fn run_time_ns(&self) -> u64 {
        self.run_time_ns.load(Ordering::Relaxed)
    }

    /// Runs the kernel skipped because the program was already active on
    /// that CPU (`bpf_prog_info.recursion_misses`): events lost unseen.
    pub fn recursion_misses(&self) -> u64 {
        self.recursion_misses.load(Ordering::Relaxed)
    }
}

/// All counters. Cheap to update from any thread.
#[derive(Debug)]
pub struct Stats {
    /// Records read from the ring buffer.
    pub received: AtomicU64,
    received_by_type: [AtomicU64; EV_SLOTS],
    /// Bytes waiting in the ring buffer at the last read, and its size.
    pub ringbuf_used_bytes: AtomicU64,
    /// Ring buffer size in bytes.
    pub ringbuf_size_bytes: AtomicU64,
    /// The same two for the bulk lane's ring buffer (the two above are the
    /// critical lane's).
    pub bulk_ringbuf_used_bytes: AtomicU64,
    /// Bulk lane ring buffer size in bytes.
    pub bulk_ringbuf_size_bytes: AtomicU64,
    /// Per lane: sequence numbers the kernel handed out, summed over CPUs
    /// (every record attempt of the lane takes one, so this is what the lane
    /// generated: output + dropped).
    lane_numbered: [AtomicU64; LANE_MAX],
    /// Records excluded by a configured filter, index `type * FILTER_MAX +
    /// reason` (not a loss: they were never numbered).
    excluded: [AtomicU64; EV_SLOTS * FILTER_MAX],
    /// Records suppressed by the per-process rate limit, per type.
    ratelimited: [AtomicU64; EV_SLOTS],
    /// Suppression summaries taken from the kernel, not yet reported.
    suppressed_pending: std::sync::Mutex<Vec<crate::ratelimit::Suppressed>>,
    /// Processes in the process table (set by the map stage).
    pub processes_tracked: AtomicU64,
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
    /// Records (events and the agent's own) handed to the export stage and
    /// not yet delivered or failed.
    pub in_flight: AtomicU64,
    /// Spans accepted by the collector (including rejected ones).
    pub spans_exported: AtomicU64,
    /// Spans the collector rejected (partial success).
    pub spans_rejected: AtomicU64,
    /// Spans whose export failed for good.
    pub spans_export_failed: AtomicU64,
    /// Unix ns of the last export attempt that delivered (0: none yet).
    pub last_export_ok_ns: AtomicU64,
    /// Unix ns since when exports have been failing without a success in
    /// between (0: the last attempt succeeded, or none failed yet).
    pub export_failing_since_ns: AtomicU64,
    /// Export attempts that were retried.
    pub export_retries: AtomicU64,
    /// Total time spent in successful export calls, ns, and their number
    /// (mean export latency = sum / count).
    pub export_latency_ns_sum: AtomicU64,
    /// Number of successful export calls.
    pub export_calls_ok: AtomicU64,
    /// Records (and spans) waiting in the pipeline queues right now.
    pub queue_depth: AtomicU64,
    /// Records given up at the shutdown deadline.
    pub shutdown_lost: AtomicU64,
    /// Processes found in /proc whose start or exec was never observed.
    pub missed_exec: AtomicU64,
    /// Processes gone from /proc whose exit was never observed.
    pub missed_exit: AtomicU64,
    /// The on-disk spool.
    pub spool: crate::spool::SpoolStats,
    kernel_emitted: [AtomicU64; EV_SLOTS],
    kernel_field: [AtomicU64; EV_SLOTS * FIELDP_MAX],
    programs: [ProgramStats; EV_SLOTS],
    bpf_run_stats: AtomicBool,
    /// Kernel drop counters per CPU, each `EV_SLOTS * DROP_MAX` long
    /// (index `type * DROP_MAX + cause`), as last read from the map.
    kernel_drops_by_cpu: std::sync::Mutex<Vec<Vec<u64>>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            received: AtomicU64::new(0),
            received_by_type: std::array::from_fn(|_| AtomicU64::new(0)),
            ringbuf_used_bytes: AtomicU64::new(0),
            ringbuf_size_bytes: AtomicU64::new(0),
            bulk_ringbuf_used_bytes: AtomicU64::new(0),
            bulk_ringbuf_size_bytes: AtomicU64::new(0),
            lane_numbered: std::array::from_fn(|_| AtomicU64::new(0)),
            excluded: std::array::from_fn(|_| AtomicU64::new(0)),
            ratelimited: std::array::from_fn(|_| AtomicU64::new(0)),
            suppressed_pending: std::sync::Mutex::new(Vec::new()),
            processes_tracked: AtomicU64::new(0),
            queue_full: std::array::from_fn(|_| AtomicU64::new(0)),
            queue_full_untyped: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            mapped: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            export_rejected: AtomicU64::new(0),
            export_failed: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            spans_exported: AtomicU64::new(0),
            spans_rejected: AtomicU64::new(0),
            spans_export_failed: AtomicU64::new(0),
            shutdown_lost: AtomicU64::new(0),
            last_export_ok_ns: AtomicU64::new(0),
            export_failing_since_ns: AtomicU64::new(0),
            export_retries: AtomicU64::new(0),
            export_latency_ns_sum: AtomicU64::new(0),
            export_calls_ok: AtomicU64::new(0),
            queue_depth: AtomicU64::new(0),
            missed_exec: AtomicU64::new(0),
            missed_exit: AtomicU64::new(0),
            spool: crate::spool::SpoolStats::default(),
            kernel_emitted: std::array::from_fn(|_| AtomicU64::new(0)),
            kernel_field: std::array::from_fn(|_| AtomicU64::new(0)),
            programs: std::array::from_fn(|_| ProgramStats::default()),
            bpf_run_stats: AtomicBool::new(false),
            kernel_drops_by_cpu: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl Stats {
    /// Count a record read from the ring buffer, by its type.
    pub fn count_received(&self, record: &[u8]) {
        self.received.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = record.get(..2).map(|b| usize::from(u16::from_ne_bytes([b[0], b[1]]))).filter(|t| *t < EV_SLOTS) {
            self.received_by_type[t].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records of one type read from the ring buffer.
    pub fn received_of(&self, t: EventType) -> u64 {
        self.received_by_type[t as usize].load(Ordering::Relaxed)
    }

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

    /// Kernel: sequence numbers handed out in `lane` (records generated),
    /// as last read from the `stream_seq` map.
    pub fn lane_numbered(&self, lane: u32) -> &AtomicU64 {
        &self.lane_numbered[(lane as usize).min(LANE_MAX - 1)]
    }

    /// Kernel: records of `t` excluded by the filter `r`.
    pub fn excluded_of(&self, t: EventType, r: FilterReason) -> &AtomicU64 {
        &self.excluded[t as usize * FILTER_MAX + r as usize]
    }

    /// Kernel: records excluded by the filter `r`, all event types.
    pub fn excluded(&self, r: FilterReason) -> u64 {
        EventType::ALL.iter().map(|t| self.excluded_of(*t, r).load(Ordering::Relaxed)).sum()
    }

    /// Kernel: records of `t` suppressed by the per-process rate limit.
    pub fn ratelimited_of(&self, t: EventType) -> &AtomicU64 {
        &self.ratelimited[t as usize]
    }

    /// The exclusion counters that counted something: (event, filter,
    /// records), for the metrics.
    pub fn excluded_series(&self) -> Vec<(EventType, FilterReason, u64)> {
        EventType::ALL
            .iter()
            .flat_map(|&t| FilterReason::ALL.iter().map(move |&r| (t, r)))
            .map(|(t, r)| (t, r, self.excluded_of(t, r).load(Ordering::Relaxed)))
            .filter(|&(_, _, v)| v > 0)
            .collect()
    }

    /// The rate-limit counters that counted something: (event, records),
    /// for the metrics.
    pub fn ratelimited_series(&self) -> Vec<(EventType, u64)> {
        EventType::ALL.iter().map(|&t| (t, self.ratelimited_of(t).load(Ordering::Relaxed))).filter(|&(_, v)| v > 0).collect()
    }

    /// Kernel: records suppressed by the rate limit, all types.
    pub fn ratelimited_total(&self) -> u64 {
        self.ratelimited.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Queue suppression summaries read from the kernel.
    pub fn push_suppressed(&self, entries: Vec<crate::ratelimit::Suppressed>) {
        if let Ok(mut v) = self.suppressed_pending.lock() {
            v.extend(entries);
        }
    }

    /// Take the suppression summaries not yet reported.
    pub fn take_suppressed(&self) -> Vec<crate::ratelimit::Suppressed> {
        self.suppressed_pending.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }

    /// Records of `lane` read from its ring buffer.
    pub fn received_in_lane(&self, lane: u32) -> u64 {
        EventType::ALL.iter().filter(|t| t.lane() == lane).map(|t| self.received_of(*t)).sum()
    }

    /// Kernel drops (every cause, every CPU) of `lane`'s event types.
    pub fn kernel_dropped_in_lane(&self, lane: u32) -> u64 {
        let by_cpu = self.kernel_drops_by_cpu();
        let mut sum = 0;
        for t in EventType::ALL.iter().filter(|t| t.lane() == lane) {
            for cause in DropCause::ALL {
                sum += by_cpu.iter().filter_map(|cpu| cpu.get(*t as usize * DROP_MAX + cause as usize)).sum::<u64>();
            }
        }
        sum
    }

    /// Records of `lane` the receiver could not queue.
    pub fn queue_full_in_lane(&self, lane: u32) -> u64 {
        EventType::ALL.iter().filter(|t| t.lane() == lane).map(|t| self.queue_full(*t)).sum()
    }

    /// Kernel: records of `t` output to the ring buffer.
    pub fn kernel_emitted(&self, t: EventType) -> &AtomicU64 {
        &self.kernel_emitted[t as usize]
    }

    /// Kernel: records of `t` dropped for `cause`, summed over CPUs.
    pub fn kernel_dropped(&self, t: EventType, cause: DropCause) -> u64 {
        self.kernel_drops_by_cpu().iter().filter_map(|cpu| cpu.get(t as usize * DROP_MAX + cause as usize)).sum()
    }

    /// Kernel: field problems of `t`.
    pub fn kernel_field_problem(&self, t: EventType, p: FieldProblem) -> &AtomicU64 {
        &self.kernel_field[t as usize * FIELDP_MAX + p as usize]
    }

    /// Store the per-CPU kernel drop counters (the receiver does, after
    /// reading the map).
    pub fn set_kernel_drops_by_cpu(&self, values: Vec<Vec<u64>>) {
        if let Ok(mut v) = self.kernel_drops_by_cpu.lock() {
            *v = values;
        }
    }

    /// The per-CPU kernel drop counters last read.
    pub fn kernel_drops_by_cpu(&self) -> Vec<Vec<u64>> {
        self.kernel_drops_by_cpu.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Kernel: run-time statistics of the program serving `t`.
    pub fn program(&self, t: EventType) -> &ProgramStats {
        &self.programs[t as usize]
    }

    /// Record whether the kernel's BPF run-time statistics (`run_cnt`,
    /// `run_time_ns`) are enabled while the probes run.
    pub fn set_bpf_run_stats_enabled(&self, enabled: bool) {
        self.bpf_run_stats.store(enabled, Ordering::Relaxed);
    }

    /// Whether the kernel counts program runs and run time for vigil
    /// (`bpf_enable_stats(BPF_STATS_RUN_TIME)` succeeded, or the
    /// `kernel.bpf_stats_enabled` sysctl is on). When not, run counts and
    /// times are unavailable (not zero).
    pub fn bpf_run_stats_enabled(&self) -> bool {
        self.bpf_run_stats.load(Ordering::Relaxed)
    }

    /// Runs of the program serving `t`; `None` when unavailable (statistics
    /// disabled, or the program's info not read).
    pub fn program_run_count(&self, t: EventType) -> Option<u64> {
        let p = self.program(t);
        (self.bpf_run_stats_enabled() && p.is_read()).then(|| p.run_cnt())
    }

    /// Total run time in ns of the program serving `t`; `None` when
    /// unavailable, as for [`Stats::program_run_count`].
    pub fn program_run_time_ns(&self, t: EventType) -> Option<u64> {
        let p = self.program(t);
        (self.bpf_run_stats_enabled() && p.is_read()).then(|| p.run_time_ns())
    }

    /// Skipped runs (events lost before any probe code ran) of the program
    /// serving `t`; `None` when its info has not been read.
    pub fn program_recursion_misses(&self, t: EventType) -> Option<u64> {
        let p = self.program(t);
        p.is_read().then(|| p.recursion_misses())
    }

    /// Total skipped runs over all programs.
    pub fn recursion_misses_total(&self) -> u64 {
        self.programs.iter().map(ProgramStats::recursion_misses).sum()
    }

    /// Total kernel drops over all types, causes and CPUs.
    pub fn kernel_dropped_total(&self) -> u64 {
        self.kernel_drops_by_cpu().iter().flatten().sum()
    }

    /// Total queue-full drops.
    pub fn queue_full_total(&self) -> u64 {
        self.queue_full.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>() + self.queue_full_untyped.load(Ordering::Relaxed)
    }

    /// A one-line summary for logs.
    pub fn summary(&self) -> String {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "received={} kernel_dropped={} recursion_misses={} queue_full={} decode_errors={} mapped={} exported={} export_rejected={} export_failed={} shutdown_lost={} spooled={} replayed={} spool_full={} spool_corrupt={}",
            l(&self.received),
            self.kernel_dropped_total(),
            self.recursion_misses_total(),
            self.queue_full_total(),
            l(&self.decode_errors),
            l(&self.mapped),
            l(&self.exported),
            l(&self.export_rejected),
            l(&self.export_failed),
            l(&self.shutdown_lost),
            l(&self.spool.spooled),
            l(&self.spool.replayed),
            l(&self.spool.full),
            l(&self.spool.corrupt)
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

    #[test]
    fn lane_sums_cover_only_the_lanes_types() {
        let s = Stats::default();
        s.count_received(&(EventType::FileOpen as u16).to_ne_bytes());
        s.count_received(&(EventType::Exec as u16).to_ne_bytes());
        s.count_received(&(EventType::Exec as u16).to_ne_bytes());
        s.count_queue_full(&(EventType::FileUnlink as u16).to_ne_bytes());
        let mut drops = vec![vec![0u64; EV_SLOTS * DROP_MAX]; 2];
        drops[0][EventType::FileOpen as usize * DROP_MAX + DropCause::RingbufFull as usize] = 5;
        drops[1][EventType::FileOpen as usize * DROP_MAX + DropCause::RingbufFull as usize] = 2;
        drops[1][EventType::Fork as usize * DROP_MAX + DropCause::TooLarge as usize] = 1;
        s.set_kernel_drops_by_cpu(drops);
        use crate::abi::{LANE_BULK, LANE_CRITICAL};
        assert_eq!((s.received_in_lane(LANE_BULK), s.received_in_lane(LANE_CRITICAL)), (1, 2));
        assert_eq!((s.kernel_dropped_in_lane(LANE_BULK), s.kernel_dropped_in_lane(LANE_CRITICAL)), (7, 1));
        assert_eq!((s.queue_full_in_lane(LANE_BULK), s.queue_full_in_lane(LANE_CRITICAL)), (1, 0));
    }

    #[test]
    fn program_stats_are_unavailable_until_read_and_enabled() {
        let s = Stats::default();
        assert_eq!(s.program_run_count(EventType::Exec), None);
        assert_eq!(s.program_recursion_misses(EventType::Exec), None);
        s.program(EventType::Exec).store(10, 2_000, 1);
        assert_eq!(s.program_run_count(EventType::Exec), None, "run counts need BPF stats enabled");
        assert_eq!(s.program_recursion_misses(EventType::Exec), Some(1));
        s.set_bpf_run_stats_enabled(true);
        assert_eq!(s.program_run_count(EventType::Exec), Some(10));
        assert_eq!(s.program_run_time_ns(EventType::Exec), Some(2_000));
        assert_eq!(s.program_run_count(EventType::Fork), None);
        assert_eq!(s.recursion_misses_total(), 1);
        s.program(EventType::Exec).mark_unreadable();
        assert_eq!(s.program_recursion_misses(EventType::Exec), None);
    }
}
