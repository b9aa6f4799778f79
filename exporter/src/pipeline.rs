//! The pipeline: receiver -> decode -> enrich (process table) -> map ->
//! batch -> export.
//!
//! Every channel is bounded. The receiver never blocks (it counts what it
//! cannot hand on); the later stages await, so backpressure from a slow
//! exporter travels back to that counted edge. Shutdown stops the receiver
//! first (detach, final drain), lets decode/map flush its last batch, and
//! gives the exporter `export.shutdown_deadline_ms` to deliver.

use crate::abi::EventType;
use crate::accounting::{LossReporter, StreamTracker};
use crate::cgroups::CgroupCache;
use crate::clock::BootClock;
use crate::config::Config;
use crate::decode::{decode_borrowed, Event, Record};
use crate::escape::escape;
use crate::export::{Batch, Exporter, Lane, RequestEncoder, RetryPolicy};
use crate::host::HostInfo;
use crate::otel::attr;
use crate::otel::logs::{write_log_record, ExecExtra, MapContext, ProcContext, OBSERVED};
use crate::otel::resource::{host_resource, new_instance_id, workload_attributes, WorkloadResource};
use crate::otel::telemetry::{self, HeartbeatCounters, Stamp};
use crate::otel::wire::{self, EncodedLog, FramedLogs};
use crate::probes::{self, ProbeSettings, RawRecord};
use crate::proctable::{ContextSource, ProcessTable};
use crate::spans::{EndReason, FinishedSpan, OpenSpan, SpanBook, SpanStart, StartSource};
use crate::stats::Stats;
use crate::workload::Workload;
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Batches in flight between map and export.
const EXPORT_QUEUE_BATCHES: usize = 8;
/// After the shutdown deadline, how long mapping what is queued and
/// writing it to the spool may take.
const SPOOL_DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// A workload's Resource part, as built.
#[derive(Debug)]
struct CachedResource {
    resource: Arc<WorkloadResource>,
    epoch: u64,
    built: std::time::Instant,
}

/// An unsettled resource (a lookup pending or failed) is rebuilt at least
/// this often, so retries after `metadata.negative_ttl_s` are asked for.
const UNSETTLED_REBUILD: Duration = Duration::from_secs(1);

/// Spans of one workload's Resource part (`None`: the host resource alone).
pub type SpanGroup = (Option<Arc<WorkloadResource>>, Vec<opentelemetry_proto::tonic::trace::v1::Span>);

/// Ended spans grouped by workload, bounded in spans and encoded bytes like
/// a log batch.
#[derive(Debug, Default)]
struct SpanBatch {
    groups: Vec<SpanGroup>,
    count: usize,
    bytes: usize,
}

impl SpanBatch {
    /// Add `span`; when it would not fit (`max_records` spans, `max_bytes`
    /// of encoded spans), the batch so far is returned first and `span`
    /// starts the next one.
    fn push(
        &mut self,
        resource: Option<Arc<WorkloadResource>>,
        span: opentelemetry_proto::tonic::trace::v1::Span,
        max_records: usize,
        max_bytes: usize,
    ) -> Option<Vec<SpanGroup>> {
        let same = |g: &Option<Arc<WorkloadResource>>| match (g, &resource) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        let new_group = GROUP_OVERHEAD_BYTES + resource.as_ref().map_or(0, |r| r.encoded.len());
        let span_len = prost::Message::encoded_len(&span);
        let mut len = span_len + if self.groups.iter().any(|(g, _)| same(g)) { 0 } else { new_group };
        let full = (self.count > 0 && (self.count >= max_records || self.bytes.saturating_add(len) > max_bytes)).then(|| {
            len = span_len + new_group;
            self.take()
        });
        self.count += 1;
        self.bytes += len;
        match self.groups.iter_mut().find(|(g, _)| same(g)) {
            Some((_, spans)) => spans.push(span),
            None => self.groups.push((resource, vec![span])),
        }
        full
    }

    /// Everything batched, leaving the batch empty.
    fn take(&mut self) -> Vec<SpanGroup> {
        self.count = 0;
        self.bytes = 0;
        std::mem::take(&mut self.groups)
    }
}

/// The map stage's state: everything needed to turn raw records into OTLP.
#[derive(Debug)]
pub struct Mapper {
    ctx: MapContext,
    table: ProcessTable,
    /// Processes that exited recently, for their records mapped after the
    /// exit (the bulk lane is drained after the critical one).
    recent_exits: crate::proctable::RecentExits,
    cgroups: CgroupCache,
    users: crate::users::UserNames,
    /// Container and pod metadata lookups (None: all off).
    metadata: Option<crate::metadata::Metadata>,
    /// Workload parsed from each cgroup id's path (paths do not change).
    workloads: crate::fasthash::FastMap<u64, Arc<Workload>>,
    /// Each workload's part of the Resource, with the metadata epoch it was
    /// built at (rebuilt when the lookups learn something).
    resources: std::collections::HashMap<Arc<Workload>, CachedResource>,
    /// The last settled resource [`Mapper::resource_for`] returned, with
    /// its workload and metadata epoch: records come in runs of one
    /// process, and comparing the workload's pointer is cheaper than
    /// hashing its strings for every record.
    last_resource: Option<(Arc<Workload>, u64, Arc<WorkloadResource>)>,
    /// The workload of each process with a span (spans are grouped by
    /// workload like the records). An exited pid's entry stays until its pid
    /// is reused or a reconciliation finds it gone: its span may end after
    /// the exit record (segments, shutdown).
    span_workloads: crate::fasthash::FastMap<u32, Arc<Workload>>,
    proc_root: PathBuf,
    stats: Arc<Stats>,
    tracker: StreamTracker,
    losses: LossReporter,
    telemetry_seq: u64,
    probes_status: Vec<String>,
    /// Boot-clock time of the newest record mapped.
    last_ktime_ns: u64,
    /// Process spans (None: spans are off).
    spans: Option<SpanBook>,
    finished_spans: Vec<FinishedSpan>,
    /// Ended spans converted and grouped, waiting for a traces request.
    span_batch: SpanBatch,
    error_on_signal: bool,
    /// The drop policy in force (on loss records).
    policy: crate::config::PolicyMode,
    /// `alert`: the hook run on loss.
    alert: Option<crate::policy::AlertHook>,
}

impl Mapper {
    /// A mapper with an empty process table.
    pub fn new(ctx: MapContext, table_max: usize, proc_root: PathBuf, stats: Arc<Stats>) -> Self {
        Mapper {
            ctx,
            table: ProcessTable::new(table_max),
            recent_exits: crate::proctable::RecentExits::default(),
            cgroups: CgroupCache::new(crate::procfs::cgroup2_root()),
            users: crate::users::UserNames::default(),
            metadata: None,
            workloads: crate::fasthash::FastMap::default(),
            resources: std::collections::HashMap::new(),
            last_resource: None,
            span_workloads: crate::fasthash::FastMap::default(),
            proc_root,
            stats,
            tracker: StreamTracker::default(),
            losses: LossReporter::new(crate::clock::unix_now_ns()),
            telemetry_seq: 0,
            probes_status: Vec::new(),
            last_ktime_ns: 0,
            spans: None,
            finished_spans: Vec::new(),
            span_batch: SpanBatch::default(),
            error_on_signal: true,
            policy: crate::config::PolicyMode::Shed,
            alert: None,
        }
    }

    /// Report losses under `policy` (already resolved: a degraded
    /// `fail_closed` is `shed`), running `alert` on loss.
    pub fn with_policy(mut self, policy: crate::config::PolicyMode, alert: Option<crate::policy::AlertHook>) -> Self {
        self.policy = policy;
        self.alert = alert;
        self
    }

    /// Turn process lifetimes into spans, with `book`'s ids and rules.
    pub fn with_spans(mut self, book: SpanBook, error_on_signal: bool) -> Self {
        self.spans = Some(book);
        self.error_on_signal = error_on_signal;
        self
    }

    /// Load the start-up /proc snapshot: the process table, and (with
    /// spans) one span per live process, parents first, each moved to the
    /// segment that covers now.
    pub fn load_snapshot(&mut self, mut snapshot: Vec<crate::procfs::ProcEntry>) {
        snapshot.sort_by_key(|e| (e.start_ns, e.tgid));
        if self.spans.is_some() {
            let now = crate::clock::unix_now_ns();
            for e in &snapshot {
                self.start_procfs_span(e);
                if let Some(book) = self.spans.as_mut() {
                    book.fast_forward(e.tgid, now);
                }
            }
        }
        self.table.load_snapshot(snapshot);
    }

    fn start_procfs_span(&mut self, e: &crate::procfs::ProcEntry) {
        let clock = self.ctx.clock;
        let Some(book) = self.spans.as_mut() else { return };
        let exe = e.exe.as_deref().map(|b| escape(b).into_owned());
        let argv = e.cmdline.as_deref().map(crate::decode::split_args).map(|a| a.into_iter().map(|s| escape(s).into_owned()).collect());
        let ended = book.start(SpanStart {
            pid: e.tgid,
            ppid: e.ppid,
            process_start_ns: e.start_ns,
            start_unix_ns: clock.to_unix_ns(e.start_ns),
            exe: exe.as_deref(),
            argv,
            uid: e.euid,
            session_leader: e.sid == Some(e.tgid),
            container_init: e.ns_init,
            source: StartSource::Procfs,
        });
        self.finished_spans.extend(ended);
    }

    /// Processes the full table evicted lose their span (`state_evicted`).
    fn end_evicted_spans(&mut self) {
        let evicted = self.table.take_evicted();
        if evicted.is_empty() {
            return;
        }
        let now = crate::clock::unix_now_ns();
        if let Some(book) = self.spans.as_mut() {
            for pid in evicted {
                self.finished_spans.extend(book.end(pid, now, EndReason::StateEvicted, None, None));
            }
        }
    }

    /// The current span (trace id, span id) of a process.
    pub fn span_of(&self, pid: u32) -> Option<([u8; 16], [u8; 8])> {
        self.spans.as_ref()?.get(pid).map(|s| (s.trace_id, s.span_id))
    }

    /// Spans that ended since the last call, as OTLP spans grouped by the
    /// workload of their process (`None`: the host resource alone),
    /// including those [`Mapper::collect_spans`] held back.
    pub fn take_span_groups(&mut self) -> Vec<SpanGroup> {
        let full = self.collect_spans(usize::MAX, usize::MAX);
        debug_assert!(full.is_empty());
        self.span_batch.take()
    }

    /// Convert the spans that ended since the last call and add them to the
    /// pending span batch (their workload is resolved now, while their pid
    /// still names their process). Returns the batches that filled up:
    /// each holds at most `max_records` spans and, unless a single span is
    /// larger, `max_bytes` of encoded spans. What is left waits for the
    /// next call or [`Mapper::take_span_groups`]: one traces request per
    /// ended span (a short-lived process ends one) would cost far more
    /// than the span (a gzip stream, an HTTP/2 request, the collector's
    /// work).
    pub fn collect_spans(&mut self, max_records: usize, max_bytes: usize) -> Vec<Vec<SpanGroup>> {
        let error_on_signal = self.error_on_signal;
        let finished = std::mem::take(&mut self.finished_spans);
        let mut full = Vec::new();
        for f in &finished {
            let w = self.span_workloads.get(&f.span.key.pid).cloned();
            let r = self.resource_for(w.as_ref());
            let span = crate::otel::spans::to_span(f, error_on_signal);
            full.extend(self.span_batch.push(r, span, max_records, max_bytes));
        }
        full
    }

    /// Ended spans waiting in the span batch.
    pub fn pending_spans(&self) -> usize {
        self.span_batch.count
    }

    /// The Resource part of workload `w` (`None`: nothing to add to the host
    /// resource), built once and rebuilt when the metadata lookups learned
    /// something (or, while a lookup is pending or failed, every second).
    pub fn resource_for(&mut self, w: Option<&Arc<Workload>>) -> Option<Arc<WorkloadResource>> {
        let w = w.filter(|w| !w.is_empty())?;
        let epoch = self.metadata.as_ref().map_or(0, |m| m.epoch());
        // A settled resource stays valid until the epoch changes (below).
        if let Some((last_w, last_epoch, resource)) = &self.last_resource {
            if Arc::ptr_eq(last_w, w) && *last_epoch == epoch {
                return Some(resource.clone());
            }
        }
        if let Some(c) = self.resources.get(w) {
            if c.epoch == epoch && (c.resource.is_settled() || c.built.elapsed() < UNSETTLED_REBUILD) {
                if c.resource.is_settled() {
                    self.last_resource = Some((w.clone(), epoch, c.resource.clone()));
                }
                return Some(c.resource.clone());
            }
        }
        self.last_resource = None;
        let meta = self.metadata.as_ref().map(|m| m.resolve(w)).unwrap_or_default();
        let attributes = workload_attributes(w, &meta);
        let resource = match self.resources.get(w) {
            // Unchanged: keep the same value (records stay in one group).
            Some(c) if c.resource.attributes == attributes => c.resource.clone(),
            _ => Arc::new(WorkloadResource::new(attributes)),
        };
        if self.resources.len() >= crate::cgroups::CGROUP_CACHE_MAX {
            self.resources.clear();
        }
        self.resources.insert(w.clone(), CachedResource { resource: resource.clone(), epoch, built: std::time::Instant::now() });
        Some(resource)
    }

    /// Spans that ended since the last call, as they were (tests).
    pub fn take_finished_spans(&mut self) -> Vec<FinishedSpan> {
        std::mem::take(&mut self.finished_spans)
    }

    /// Cut long-lived spans into segments.
    pub fn cut_segments(&mut self, now_unix_ns: u64) {
        if let Some(book) = self.spans.as_mut() {
            let cut = book.cut_segments(now_unix_ns);
            self.finished_spans.extend(cut);
        }
    }

    /// End every open span (`agent_shutdown`), after saving them to
    /// `state_path` (if any) for the next start.
    pub fn end_spans_at_shutdown(&mut self, state_path: Option<&std::path::Path>) {
        let Some(book) = self.spans.as_mut() else { return };
        if let Some(path) = state_path {
            if let Err(e) = save_open_spans(path, &book.open_spans()) {
                tracing::warn!("saving open spans to {}: {e}", path.display());
            }
        }
        let ended = book.end_all(crate::clock::unix_now_ns(), EndReason::AgentShutdown);
        self.finished_spans.extend(ended);
    }

    /// Spans saved by the previous run: those whose process still runs the
    /// same image are restored as they were; those whose process is gone (or
    /// runs another image) end now, with a synthetic end (`exit_lost`).
    pub fn resume_saved_spans(&mut self, state_path: &std::path::Path) {
        let Some(book) = self.spans.as_ref() else { return };
        let saved: Vec<(u32, OpenSpan)> = match std::fs::read(state_path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!("ignoring unreadable span state {}: {e}", state_path.display());
                    return;
                }
            },
            Err(_) => return,
        };
        let now = crate::clock::unix_now_ns();
        let mut lost = Vec::new();
        let mut restored = Vec::new();
        for (pid, span) in saved {
            let same = book.get(pid).is_some_and(|cur| cur.key.start_ticks == span.key.start_ticks && cur.key.image == span.key.image);
            if same {
                restored.push((pid, span));
            } else {
                lost.push(FinishedSpan { span, end_unix_ns: now, reason: EndReason::ExitLost, exit_code: None, signal: None });
            }
        }
        if let Some(book) = self.spans.as_mut() {
            for (pid, span) in restored {
                book.restore(pid, span);
            }
        }
        if !lost.is_empty() {
            tracing::info!(spans = lost.len(), "spans of processes that ended while vigil was stopped closed as exit_lost");
        }
        self.finished_spans.extend(lost);
    }

    /// Reconcile the process table with a /proc snapshot (see
    /// [`ProcessTable::reconcile`]); misses are counted for loss records.
    pub fn reconcile(&mut self, snapshot: Vec<crate::procfs::ProcEntry>) -> crate::proctable::Reconciled {
        // Records up to 2 s older than the newest one may still be queued.
        let newest = if self.last_ktime_ns > 0 { self.last_ktime_ns } else { crate::clock::boot_now_ns() };
        let rebuilt_from = if self.spans.is_some() { snapshot.clone() } else { Vec::new() };
        let r = self.table.reconcile(snapshot, newest.saturating_sub(2_000_000_000));
        let table = &self.table;
        self.span_workloads.retain(|pid, _| table.get(*pid).is_some());
        if self.spans.is_some() {
            let now = crate::clock::unix_now_ns();
            for tgid in &r.missed_exit {
                let ended = self.spans.as_mut().and_then(|b| b.end(*tgid, now, EndReason::ExitLost, None, None));
                self.finished_spans.extend(ended);
            }
            for e in rebuilt_from.iter().filter(|e| r.missed_exec.contains(&e.tgid)) {
                self.start_procfs_span(e);
            }
        }
        self.stats.missed_exec.fetch_add(r.missed_exec.len() as u64, Ordering::Relaxed);
        self.stats.missed_exit.fetch_add(r.missed_exit.len() as u64, Ordering::Relaxed);
        if !r.missed_exec.is_empty() || !r.missed_exit.is_empty() {
            tracing::warn!(missed_exec = ?r.missed_exec, missed_exit = ?r.missed_exit, "process table reconciled with /proc");
        }
        r
    }

    /// The child of a fork runs its parent's image: its span starts now,
    /// under the parent's span. A stale span under the child's pid (an exit
    /// never seen) ends first as `exit_lost`.
    fn start_fork_span(&mut self, parent: u32, f: &crate::decode::ForkEvent, info: &crate::proctable::ProcessInfo) {
        let clock = self.ctx.clock;
        let Some(book) = self.spans.as_mut() else { return };
        let start = clock.to_unix_ns(f.child_start_ns);
        let stale = book.get(f.child_tgid).is_some();
        if stale {
            let ended = book.end(f.child_tgid, start, EndReason::ExitLost, None, None);
            self.finished_spans.extend(ended);
        }
        let argv = book.get(parent).and_then(|p| p.argv.clone());
        let exe = info.exe.as_deref().map(|b| escape(b).into_owned());
        let replaced = book.start(SpanStart {
            pid: f.child_tgid,
            ppid: parent,
            process_start_ns: f.child_start_ns,
            start_unix_ns: start,
            exe: exe.as_deref(),
            argv,
            uid: info.euid,
            session_leader: false,
            container_init: f.child_vpid == 1 && f.child_tgid != 1,
            source: StartSource::Fork,
        });
        self.finished_spans.extend(replaced);
    }

    /// A parent the table does not know: rebuild it from /proc, if it is
    /// still the same process there.
    fn rebuild(&mut self, tgid: u32, start_ns: u64) {
        if self.table.get(tgid).is_some() {
            return;
        }
        if let Some(e) = crate::procfs::read_entry(&self.proc_root, tgid, crate::procfs::clock_ticks()) {
            if crate::proctable::same_start(e.start_ns, start_ns) {
                self.table.insert_rebuilt(e);
            }
        }
    }

    /// Sequence tracking of the kernel streams.
    pub fn tracker(&self) -> &StreamTracker {
        &self.tracker
    }

    /// The probe states heartbeats report (`event=hook:state`).
    pub fn set_probes_status(&mut self, status: Vec<String>) {
        self.probes_status = status;
    }

    /// `event=hook:state` plus the program's run count and skipped runs
    /// (BPF stats), when the kernel reports them.
    fn with_program_stats(&self, status: &str) -> String {
        let event = EventType::ALL.into_iter().find(|t| status.split('=').next() == Some(t.event_name()));
        let Some(t) = event else { return status.to_owned() };
        let mut out = status.to_owned();
        if let Some(runs) = self.stats.program_run_count(t) {
            out.push_str(&format!(" runs={runs}"));
        }
        if let Some(skipped) = self.stats.program_recursion_misses(t) {
            out.push_str(&format!(" skipped={skipped}"));
        }
        out
    }

    fn next_telemetry_seq(&mut self) -> u64 {
        self.telemetry_seq += 1;
        self.telemetry_seq
    }

    /// Loss records for every counter that grew since the last call.
    pub fn loss_records(&mut self, now_ns: u64) -> Vec<EncodedLog> {
        let ctx = &self.ctx;
        let losses = self.losses.collect(&self.stats, &mut self.tracker, now_ns, |cpu, lane| ctx.stream_id(cpu, lane));
        let mut out = Vec::with_capacity(losses.len());
        for loss in &losses {
            tracing::warn!(stage = loss.stage.as_str(), error = loss.error_type, count = loss.count, event = ?loss.event_name, "records lost");
            let seq = self.next_telemetry_seq();
            out.push(telemetry::loss_record_under(
                loss,
                self.policy,
                Stamp { session: &self.ctx.session, boot_id: &self.ctx.boot_id, seq, now_ns },
            ));
        }
        if let Some(hook) = self.alert.as_mut() {
            hook.on_losses(&losses, std::time::Instant::now());
        }
        out
    }

    /// One `vigil.telemetry.suppressed` record per process and event type
    /// whose bulk records the kernel's rate limit suppressed since the last
    /// call.
    pub fn suppressed_records(&mut self, now_ns: u64) -> Vec<EncodedLog> {
        let entries = self.stats.take_suppressed();
        let mut out = Vec::with_capacity(entries.len());
        for s in &entries {
            let seq = self.next_telemetry_seq();
            let (first, last) = (self.ctx.clock.to_unix_ns(s.first_ns), self.ctx.clock.to_unix_ns(s.last_ns));
            out.push(telemetry::suppressed_record(
                s,
                first,
                last,
                Stamp { session: &self.ctx.session, boot_id: &self.ctx.boot_id, seq, now_ns },
            ));
        }
        out
    }

    /// The cumulative counters a heartbeat carries.
    pub fn heartbeat_counters(&self) -> HeartbeatCounters {
        use crate::abi::FieldProblem;
        let s = &self.stats;
        let l = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let sum = |f: &dyn Fn(EventType) -> u64| EventType::ALL.iter().map(|t| f(*t)).sum::<u64>();
        let kernel_dropped = s.kernel_dropped_total();
        let queue_full = s.queue_full_total();
        let skipped = s.recursion_misses_total();
        let (missed_exec, missed_exit) = (l(&s.missed_exec), l(&s.missed_exit));
        let loss_total = kernel_dropped
            + skipped
            + queue_full
            + l(&s.decode_errors)
            + l(&s.export_failed)
            + l(&s.export_rejected)
            + missed_exec
            + missed_exit
            + l(&s.spool.full)
            + l(&s.spool.corrupt);
        let mut counters = vec![
            (attr::HB_KERNEL_EMITTED, sum(&|t| l(s.kernel_emitted(t)))),
            (attr::HB_KERNEL_DROPPED, kernel_dropped),
            (attr::HB_KERNEL_SKIPPED, skipped),
            (attr::HB_KERNEL_READ_FAULTS, sum(&|t| l(s.kernel_field_problem(t, FieldProblem::ReadFault)))),
            (attr::HB_KERNEL_TRUNCATIONS, sum(&|t| l(s.kernel_field_problem(t, FieldProblem::Truncated)))),
            (attr::HB_KERNEL_PATH_DEPTH, sum(&|t| l(s.kernel_field_problem(t, FieldProblem::PathDepth)))),
            (attr::HB_AGENT_RECEIVED, l(&s.received)),
            (attr::HB_AGENT_QUEUE_FULL, queue_full),
            (attr::HB_LANE_GENERATED[0], l(s.lane_numbered(crate::abi::LANE_CRITICAL))),
            (attr::HB_LANE_RECEIVED[0], s.received_in_lane(crate::abi::LANE_CRITICAL)),
            (attr::HB_LANE_KERNEL_DROPPED[0], s.kernel_dropped_in_lane(crate::abi::LANE_CRITICAL)),
            (attr::HB_LANE_QUEUE_FULL[0], s.queue_full_in_lane(crate::abi::LANE_CRITICAL)),
            (attr::HB_LANE_GENERATED[1], l(s.lane_numbered(crate::abi::LANE_BULK))),
            (attr::HB_LANE_RECEIVED[1], s.received_in_lane(crate::abi::LANE_BULK)),
            (attr::HB_LANE_KERNEL_DROPPED[1], s.kernel_dropped_in_lane(crate::abi::LANE_BULK)),
            (attr::HB_LANE_QUEUE_FULL[1], s.queue_full_in_lane(crate::abi::LANE_BULK)),
            (attr::HB_EXCLUDED[0], s.excluded(crate::filters::FilterReason::Cgroup)),
            (attr::HB_EXCLUDED[1], s.excluded(crate::filters::FilterReason::Uid)),
            (attr::HB_EXCLUDED[2], s.excluded(crate::filters::FilterReason::Exe)),
            (attr::HB_EXCLUDED[3], s.excluded(crate::filters::FilterReason::File)),
            (attr::HB_RATELIMITED, s.ratelimited_total()),
            (attr::HB_AGENT_MALFORMED, l(&s.decode_errors)),
            (attr::HB_AGENT_MAPPED, l(&s.mapped)),
            (attr::HB_AGENT_STREAM_GAPS, self.tracker.gaps),
            (attr::HB_AGENT_LATE_RECORDS, self.tracker.late),
            (attr::HB_AGENT_PROCESSES, self.table.len() as u64),
            (attr::HB_AGENT_TABLE_EVICTED, self.table.evicted()),
            (attr::HB_AGENT_MISSED_EXEC, missed_exec),
            (attr::HB_AGENT_MISSED_EXIT, missed_exit),
            (attr::HB_EXPORT_EXPORTED, l(&s.exported)),
            (attr::HB_EXPORT_FAILED, l(&s.export_failed)),
            (attr::HB_EXPORT_REJECTED, l(&s.export_rejected)),
            (attr::HB_EXPORT_SPOOLED, l(&s.spool.spooled)),
            (attr::HB_EXPORT_REPLAYED, l(&s.spool.replayed)),
            (attr::HB_EXPORT_SPOOL_FULL, l(&s.spool.full)),
            (attr::HB_EXPORT_SPOOL_CORRUPT, l(&s.spool.corrupt)),
            (attr::HB_LOSS_TOTAL, loss_total),
        ];
        if let Some(m) = &self.metadata {
            let ms = m.stats();
            counters.extend([
                (attr::HB_METADATA_LOOKUPS, l(&ms.lookups)),
                (attr::HB_METADATA_FAILURES, l(&ms.failures) + l(&ms.k8s_failures)),
                (attr::HB_METADATA_SKIPPED, l(&ms.skipped)),
                (attr::HB_METADATA_K8S_LISTS, l(&ms.k8s_lists)),
            ]);
        }
        HeartbeatCounters { counters, probes: self.probes_status.iter().map(|p| self.with_program_stats(p)).collect() }
    }

    /// A heartbeat record.
    pub fn heartbeat_record(&mut self, interval_s: u64, now_ns: u64) -> EncodedLog {
        let hb = self.heartbeat_counters();
        let seq = self.next_telemetry_seq();
        telemetry::heartbeat_record(&hb, interval_s, Stamp { session: &self.ctx.session, boot_id: &self.ctx.boot_id, seq, now_ns })
    }

    /// The process table (to load the /proc snapshot, and for tests).
    pub fn table_mut(&mut self) -> &mut ProcessTable {
        &mut self.table
    }

    /// Resolve cgroups and processes under other roots (golden tests use
    /// fixture trees).
    pub fn with_roots(mut self, proc_root: PathBuf, cgroup_root: Option<PathBuf>) -> Self {
        self.proc_root = proc_root;
        self.cgroups = CgroupCache::new(cgroup_root);
        self
    }

    /// Resolve user and group names from these files instead of
    /// /etc/passwd and /etc/group (golden tests use fixtures).
    pub fn with_user_files(mut self, passwd: PathBuf, group: PathBuf) -> Self {
        self.users = crate::users::UserNames::new(passwd, group);
        self
    }

    /// Add what the metadata lookups know to each workload.
    pub fn with_metadata(mut self, metadata: Option<crate::metadata::Metadata>) -> Self {
        self.metadata = metadata;
        self
    }

    /// The cgroup cache (to scan it before the first record, and to run its
    /// refresher).
    pub fn cgroups(&self) -> &CgroupCache {
        &self.cgroups
    }

    /// Re-sample the boot clock offset.
    pub fn refresh_clock(&mut self) {
        self.ctx.clock.refresh();
    }

    /// Decode, update the process table and map one raw record. A record
    /// that does not decode is counted and returns `None`. The record's
    /// workload is dropped: see [`Mapper::map_grouped`].
    pub fn map(&mut self, raw: &RawRecord) -> Option<EncodedLog> {
        self.map_grouped(raw).map(|(_, log)| log)
    }

    /// [`Mapper::map`], with the Resource part of the workload the record
    /// came from (`None`: the host resource alone).
    pub fn map_grouped(&mut self, raw: &RawRecord) -> Option<(Option<Arc<WorkloadResource>>, EncodedLog)> {
        let mut out = Vec::with_capacity(2048);
        let resource = self.map_into(raw, &mut out)?;
        Some((resource, EncodedLog(out)))
    }

    /// [`Mapper::map_grouped`], appending the LogRecord's fields to `out`
    /// (a batch's buffer, see [`LogBatch::push_mapped`]) instead of a new
    /// buffer. Nothing is appended for a record that does not decode.
    pub fn map_into(&mut self, raw: &RawRecord, out: &mut Vec<u8>) -> Option<Option<Arc<WorkloadResource>>> {
        // Exec values borrowed from the raw record: mapped, then dropped.
        let rec: Record<&[u8]> = match decode_borrowed(&raw.bytes) {
            Ok(r) => r,
            Err(e) => {
                self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("malformed record: {e}");
                return None;
            }
        };
        let h = rec.header;
        let out_buf = std::mem::take(out);
        let gap = self.tracker.observe(h.cpu, h.lane, h.seq);
        self.last_ktime_ns = self.last_ktime_ns.max(h.ktime_ns);
        let mut exec_workload = None;
        let mut exec_creation_time = None;
        let record_workload: Option<Arc<Workload>>;
        let lr = match &rec.event {
            Event::Exec(e) => {
                let cgroup = self.cgroups.lookup(e.cgroup_id, h.tgid, &self.proc_root);
                // A cgroup id names one directory for its lifetime: its
                // workload stays known while the path lookup misses.
                let by_id = self.cgroups.ids_name_cgroups();
                let workload = match (cgroup.as_deref(), self.workloads.get(&e.cgroup_id).filter(|_| by_id)) {
                    (_, Some(w)) => Some(w.clone()),
                    (Some(path), None) => {
                        let w = Arc::new(crate::workload::parse_cgroup_path(path));
                        if by_id {
                            if self.workloads.len() >= crate::cgroups::CGROUP_CACHE_MAX {
                                self.workloads.clear();
                            }
                            self.workloads.insert(e.cgroup_id, w.clone());
                        }
                        Some(w)
                    }
                    (None, _) => None,
                };
                let (user_name, real_user_name, group_name) = self.users.exec_names(e.creds.euid, e.creds.uid, e.creds.egid);
                // Formatted once per process: kept in the table from its
                // fork (or an earlier exec) record.
                let cached = self.table.get(h.tgid).and_then(|p| p.creation_time);
                let creation_time = Some(crate::otel::logs::creation_time(&self.ctx, e.start_ns, cached));
                exec_creation_time = creation_time;
                let extra = ExecExtra { user_name, real_user_name, group_name, creation_time };
                let workload = workload.filter(|w| !w.is_empty());
                if self.spans.is_some() {
                    match &workload {
                        Some(w) => self.span_workloads.insert(h.tgid, w.clone()),
                        None => self.span_workloads.remove(&h.tgid),
                    };
                }
                exec_workload = workload.clone();
                record_workload = workload;
                let clock = self.ctx.clock;
                if let Some(book) = self.spans.as_mut() {
                    let exe = e.exe.bytes.map(|b| escape(b).into_owned());
                    let argv = e.args.bytes.as_ref().map(|_| e.argv().into_iter().map(|a| escape(a).into_owned()).collect());
                    let ended = book.start(SpanStart {
                        pid: h.tgid,
                        ppid: e.ppid,
                        process_start_ns: e.start_ns,
                        start_unix_ns: clock.to_unix_ns(h.ktime_ns),
                        exe: exe.as_deref(),
                        argv,
                        uid: Some(e.creds.euid),
                        session_leader: e.sid == h.tgid,
                        container_init: e.vpid == 1 && h.tgid != 1,
                        source: StartSource::Exec,
                    });
                    self.finished_spans.extend(ended);
                }
                let proc = OBSERVED.in_span(self.span_of(h.tgid)).with_exec(&extra);
                write_log_record(&rec, &self.ctx, proc, raw.observed_ns, cgroup.as_deref(), gap, out_buf)
            }
            Event::Fork(f) => {
                // The child inherits the parent's comm: a difference from the
                // comm the parent's image had means the parent renamed itself.
                self.rebuild(h.tgid, f.parent_start_ns);
                let mismatch = self.table.get(h.tgid).map(|p| p.comm != f.comm);
                let creation_time = Some(crate::otel::logs::creation_time(&self.ctx, f.child_start_ns, None));
                let (info, stale) = self.table.on_fork(h.tgid, f.child_tgid, f.child_start_ns, f.comm.clone(), creation_time);
                if stale {
                    self.stats.missed_exit.fetch_add(1, Ordering::Relaxed);
                }
                let known = info.source != ContextSource::Unknown;
                record_workload = info.workload.clone();
                if self.spans.is_some() {
                    match &info.workload {
                        Some(w) => self.span_workloads.insert(f.child_tgid, w.clone()),
                        None => self.span_workloads.remove(&f.child_tgid),
                    };
                }
                let parent_span = self.span_of(h.tgid);
                self.start_fork_span(h.tgid, f, &info);
                let ctx = ProcContext {
                    info: Some(&info),
                    source: info.source,
                    name_mismatch: mismatch.filter(|_| known),
                    span: parent_span,
                    exec: None,
                    target: None,
                };
                write_log_record(&rec, &self.ctx, ctx, raw.observed_ns, None, gap, out_buf)
            }
            Event::Exit(x) => {
                let info = self.table.on_exit(h.tgid, x.start_ns);
                record_workload = info.as_ref().and_then(|i| i.workload.clone());
                let mismatch = info.as_ref().map(|i| i.comm != x.comm);
                let span = self.span_of(h.tgid);
                if let Some(i) = &info {
                    self.recent_exits.insert(h.tgid, i.clone(), span, h.ktime_ns);
                }
                let end = self.ctx.clock.to_unix_ns(h.ktime_ns);
                if let Some(book) = self.spans.as_mut() {
                    let ended = book.end(h.tgid, end, EndReason::Exit, x.exit_code(), x.signal());
                    self.finished_spans.extend(ended);
                }
                let ctx = ProcContext::from_table(info.as_ref(), mismatch).in_span(span);
                write_log_record(&rec, &self.ctx, ctx, raw.observed_ns, None, gap, out_buf)
            }
            // Event families: the acting process's context comes from the table.
            Event::File(_)
            | Event::Memfd(_)
            | Event::CredChange(_)
            | Event::Namespace(_)
            | Event::Net(_)
            | Event::Bpf(_)
            | Event::Module(_)
            | Event::Ptrace(_)
            | Event::Mount(_) => {
                let target = match &rec.event {
                    // The kernel's answer when it has one (a thread of the
                    // target, another pid namespace); else the pid as passed.
                    Event::Ptrace(p) => self.table.get(p.target_tgid.unwrap_or(p.target_pid)),
                    _ => None,
                };
                // A process that exited after writing this record (its exit
                // was mapped first: another lane) is still its actor.
                let (actor, span) = match self.table.get(h.tgid) {
                    Some(p) => (Some(p), self.span_of(h.tgid)),
                    None => match self.recent_exits.get(h.tgid, h.ktime_ns) {
                        Some(x) => (Some(&x.info), x.span),
                        None => (None, self.span_of(h.tgid)),
                    },
                };
                // The acting process's workload, from its last exec.
                record_workload = actor.and_then(|p| p.workload.clone());
                let ctx = ProcContext::from_table(actor, None).in_span(span).on_target(target);
                write_log_record(&rec, &self.ctx, ctx, raw.observed_ns, None, gap, out_buf)
            }
        };
        // Mapped: an exec's executable and comm go into the table; after a
        // credential change the process acts with its new effective uid
        // (its own record shows the uid it called with).
        if let Event::CredChange(c) = &rec.event {
            self.table.on_cred_change(h.tgid, c.new_creds.euid);
        }
        if let Event::Exec(e) = rec.event {
            self.table.on_exec(h.tgid, e.ppid, e.start_ns, e.exe.bytes, e.comm, e.creds.euid, exec_workload, exec_creation_time);
        }
        self.end_evicted_spans();
        self.stats.mapped.fetch_add(1, Ordering::Relaxed);
        *out = lr;
        Some(self.resource_for(record_workload.as_ref()))
    }
}

/// Save open spans (atomically: write a temporary file, then rename).
fn save_open_spans(path: &std::path::Path, spans: &[(u32, OpenSpan)]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(spans).map_err(std::io::Error::other)?)?;
    std::fs::rename(tmp, path)
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Final counters, one line.
    pub stats: String,
}

/// The records of one logs request, grouped by the workload they came from
/// (one `ResourceLogs` each); records keep their order within a group.
///
/// Records are written once, straight into one buffer, already framed as
/// they go into the request (`ScopeLogs.log_records` fields): no allocation
/// per record, and a run of records of one workload is copied into the
/// request as one chunk. [`LogBatch::clear`] (and [`Batcher::recycle`])
/// keep the buffer's allocation for the next batch.
///
/// The buffer starts with [`HEAD_ROOM`] bytes of room: a batch whose
/// records are all of one workload becomes its request in place
/// ([`LogBatch::take_request`]): the request's bytes before the records
/// are written into the room, and the buffer is sent without copying the
/// records. It comes back to the batch (`pool`) once the request is
/// dropped (delivered or given up).
#[derive(Debug, Default)]
pub struct LogBatch {
    /// [`HEAD_ROOM`] bytes, then every record, framed, in arrival order
    /// (empty until the first record).
    records: Vec<u8>,
    /// The buffer of the last request taken in place, back once that
    /// request was dropped.
    pool: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
    groups: Vec<LogGroup>,
    /// Group of each resource (by pointer; 0: the host resource alone).
    index: crate::fasthash::FastMap<usize, usize>,
    /// The (key, group) of the last record: runs of records of one workload
    /// skip the hash lookup (SipHash was ~2% of the exec path).
    last: Option<(usize, usize)>,
    len: usize,
}

/// One workload's records in a [`LogBatch`].
#[derive(Debug)]
struct LogGroup {
    resource: Option<Arc<WorkloadResource>>,
    /// Ranges of `LogBatch::records` (adjacent records merged).
    ranges: Vec<std::ops::Range<usize>>,
    count: usize,
}

fn resource_key(r: Option<&Arc<WorkloadResource>>) -> usize {
    r.map_or(0, |r| Arc::as_ptr(r) as usize)
}

/// A record written into a batch's buffer, not yet counted in a group.
type Written = (Option<Arc<WorkloadResource>>, std::ops::Range<usize>);

/// Room at the start of a batch's buffer for the request's bytes before
/// the records (tags and lengths, the host and workload Resource, the
/// scope: ~1 KB here; a larger Resource falls back to copying).
pub const HEAD_ROOM: usize = 8192;

/// A batch's buffer sent as a request ([`LogBatch::take_request`]): the
/// request is `buf[start..]`; dropped, the buffer goes back to its batch.
struct SentBuffer {
    buf: Vec<u8>,
    start: usize,
    pool: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
}

impl AsRef<[u8]> for SentBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl Drop for SentBuffer {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.pool.lock() {
            if slot.is_none() {
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                *slot = Some(buf);
            }
        }
    }
}

impl LogBatch {
    /// Add a record of `resource` (`None`: the host resource alone).
    pub fn push(&mut self, resource: Option<Arc<WorkloadResource>>, log: EncodedLog) {
        let written = self.write_framed(resource, &log.0);
        self.commit(written);
    }

    /// Add the record `write` appends to the buffer it is given (a
    /// LogRecord's fields), in the group of the resource it returns. `write`
    /// returns `None` when it appended nothing: then nothing is added, and
    /// this returns false.
    pub fn push_mapped(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Option<Option<Arc<WorkloadResource>>>) -> bool {
        let Some(written) = self.write(write) else {
            return false;
        };
        self.commit(written);
        true
    }

    /// Make the room before the first record, in the buffer of the last
    /// request taken in place when it is back.
    #[inline]
    fn ensure_room(&mut self) {
        if self.records.is_empty() {
            if self.records.capacity() == 0 {
                if let Some(buf) = self.pool.lock().ok().and_then(|mut slot| slot.take()) {
                    self.records = buf;
                }
            }
            self.records.resize(HEAD_ROOM, 0);
        }
    }

    fn write(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Option<Option<Arc<WorkloadResource>>>) -> Option<Written> {
        self.ensure_room();
        let start = self.records.len();
        let mark = wire::begin_log(&mut self.records);
        let Some(resource) = write(&mut self.records) else {
            self.records.truncate(start);
            return None;
        };
        wire::end_len_field(&mut self.records, mark);
        Some((resource, start..self.records.len()))
    }

    fn write_framed(&mut self, resource: Option<Arc<WorkloadResource>>, log: &[u8]) -> Written {
        self.ensure_room();
        let start = self.records.len();
        wire::put_log(&mut self.records, log);
        (resource, start..self.records.len())
    }

    /// Append a record already framed (taken back from another batch).
    fn append_framed(&mut self, framed: &[u8]) -> std::ops::Range<usize> {
        self.ensure_room();
        let start = self.records.len();
        self.records.extend_from_slice(framed);
        start..self.records.len()
    }

    /// The batch as its request, without copying the records: when they
    /// are all of one workload (`None`: the host resource alone) and lie in
    /// one run, `around(workload, records_len)` gives the request's bytes
    /// before and after them ([`wire::request_around`]); the bytes before
    /// are written into the room before the records, and the buffer
    /// becomes the request. The batch is then empty. `None` (the batch
    /// unchanged) for other batches, or when the bytes before the records
    /// do not fit in [`HEAD_ROOM`].
    pub fn take_request(&mut self, around: impl FnOnce(Option<&WorkloadResource>, usize) -> (Vec<u8>, Vec<u8>)) -> Option<bytes::Bytes> {
        let [group] = self.groups.as_slice() else { return None };
        let [range] = group.ranges.as_slice() else { return None };
        if range.start != HEAD_ROOM || range.end != self.records.len() {
            return None;
        }
        let (head, tail) = around(group.resource.as_deref(), range.len());
        let start = HEAD_ROOM.checked_sub(head.len())?;
        self.records[start..HEAD_ROOM].copy_from_slice(&head);
        self.records.extend_from_slice(&tail);
        let sent = SentBuffer { buf: std::mem::take(&mut self.records), start, pool: self.pool.clone() };
        self.clear();
        Some(bytes::Bytes::from_owner(sent))
    }

    /// Take back the last record written (not committed): its framed bytes.
    fn unwrite(&mut self, range: std::ops::Range<usize>) -> Vec<u8> {
        debug_assert_eq!(range.end, self.records.len());
        self.records.split_off(range.start)
    }

    /// Count a written record in its resource's group.
    fn commit(&mut self, (resource, range): Written) {
        let key = resource_key(resource.as_ref());
        let i = match self.last {
            Some((k, i)) if k == key => i,
            _ => match self.index.get(&key) {
                Some(i) => *i,
                None => {
                    self.groups.push(LogGroup { resource, ranges: Vec::new(), count: 0 });
                    self.index.insert(key, self.groups.len() - 1);
                    self.groups.len() - 1
                }
            },
        };
        self.last = Some((key, i));
        let g = &mut self.groups[i];
        match g.ranges.last_mut() {
            Some(r) if r.end == range.start => r.end = range.end,
            _ => g.ranges.push(range),
        }
        g.count += 1;
        self.len += 1;
    }

    /// Whether records of `resource` are in the batch already.
    pub fn has_group(&self, resource: Option<&Arc<WorkloadResource>>) -> bool {
        self.index.contains_key(&resource_key(resource))
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Empty the batch, keeping its buffer's allocation.
    pub fn clear(&mut self) {
        self.records.clear();
        self.groups.clear();
        self.index.clear();
        self.last = None;
        self.len = 0;
    }

    /// The groups, for [`RequestEncoder::encode_groups`].
    pub fn groups(&self) -> Vec<(Option<&WorkloadResource>, FramedLogs<'_>)> {
        self.groups
            .iter()
            .map(|g| {
                let chunks = g.ranges.iter().map(|r| &self.records[r.clone()]).collect();
                (g.resource.as_deref(), FramedLogs { chunks, count: g.count })
            })
            .collect()
    }
}

/// Collects encoded records into export requests bounded in records and in
/// encoded bytes (a request over ~4 MiB is refused by common gRPC servers),
/// grouped by workload.
#[derive(Debug)]
pub struct Batcher {
    batch: LogBatch,
    /// An emptied batch handed back ([`Batcher::recycle`]): the next batch
    /// reuses its buffer instead of growing a fresh one.
    spare: Option<LogBatch>,
    bytes: usize,
    max_records: usize,
    max_bytes: usize,
}

/// Bytes a new group adds besides its workload attributes (the host
/// resource's share is small next to a batch; this keeps the bound honest).
const GROUP_OVERHEAD_BYTES: usize = 256;

impl Batcher {
    /// A batcher with the given limits.
    pub fn new(max_records: usize, max_bytes: usize) -> Self {
        Batcher { batch: LogBatch::default(), spare: None, bytes: 0, max_records: max_records.max(1), max_bytes }
    }

    /// Add a record of the host resource alone; see [`Batcher::push_in`].
    pub fn push(&mut self, log: EncodedLog) -> Option<LogBatch> {
        self.push_in(None, log)
    }

    /// Add a record of `resource`; returns a full batch to send when the
    /// limits are reached (the record that would overflow the byte limit
    /// starts the next batch).
    pub fn push_in(&mut self, resource: Option<Arc<WorkloadResource>>, log: EncodedLog) -> Option<LogBatch> {
        self.push_with(|b| Some(b.write_framed(resource, &log.0)))
    }

    /// Add the record `write` appends, as [`LogBatch::push_mapped`] does
    /// (written straight into the batch), with the limits of
    /// [`Batcher::push_in`].
    pub fn push_mapped(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Option<Option<Arc<WorkloadResource>>>) -> Option<LogBatch> {
        self.push_with(|b| b.write(write))
    }

    fn push_with(&mut self, write: impl FnOnce(&mut LogBatch) -> Option<Written>) -> Option<LogBatch> {
        let (resource, mut range) = write(&mut self.batch)?;
        let group = |b: &LogBatch| {
            if b.has_group(resource.as_ref()) {
                0
            } else {
                GROUP_OVERHEAD_BYTES + resource.as_ref().map_or(0, |r| r.encoded.len())
            }
        };
        let mut size = range.len() + group(&self.batch);
        let full = if !self.batch.is_empty() && self.bytes + size > self.max_bytes {
            // Rare (once per full batch): move the record to the next batch.
            let framed = self.batch.unwrite(range);
            let full = self.take();
            range = self.batch.append_framed(&framed);
            size = range.len() + group(&self.batch);
            Some(full)
        } else {
            None
        };
        self.bytes += size;
        self.batch.commit((resource, range));
        if full.is_none() && self.batch.len() >= self.max_records {
            return Some(self.take());
        }
        full
    }

    /// Whatever is batched, leaving the batcher empty.
    pub fn take(&mut self) -> LogBatch {
        self.bytes = 0;
        let next = self.spare.take().unwrap_or_default();
        std::mem::replace(&mut self.batch, next)
    }

    /// Hand back a batch once it is encoded: the next batch reuses its
    /// buffer (a fresh ~1 MB buffer per batch is page faults and copies as
    /// it grows).
    pub fn recycle(&mut self, mut batch: LogBatch) {
        batch.clear();
        self.spare = Some(batch);
    }

    /// Whether nothing is batched.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

/// Hand a batch to the export stage (awaiting: backpressure).
async fn send(tx: &mpsc::Sender<Batch>, batch: Batch, stats: &Stats) -> bool {
    let n = batch.records;
    if n == 0 {
        return true;
    }
    stats.in_flight.fetch_add(n, Ordering::Relaxed);
    if tx.send(batch).await.is_err() {
        stats.in_flight.fetch_sub(n, Ordering::Relaxed);
        return false;
    }
    true
}

/// Records the map stage takes from the queue per wake-up.
const RECV_CHUNK: usize = 256;

async fn map_stage(
    mut mapper: Mapper,
    mut rx: mpsc::Receiver<RawRecord>,
    tx: mpsc::Sender<Batch>,
    mut encoder: RequestEncoder,
    cfg: Config,
) {
    let stats = mapper.stats.clone();
    // One batcher per lane: a request never mixes lanes, so a full spool
    // can evict bulk-lane requests first. vigil's own records (loss,
    // heartbeat, suppression summaries) are critical.
    let mut batcher = Batcher::new(cfg.export.batch_max_records, cfg.export.batch_max_bytes);
    let mut bulk_batcher = Batcher::new(cfg.export.batch_max_records, cfg.export.batch_max_bytes);
    let mut flush_tick = tokio::time::interval(Duration::from_millis(cfg.export.batch_timeout_ms.max(1)));
    let mut clock_tick = tokio::time::interval(Duration::from_secs(10));
    let mut loss_tick = tokio::time::interval(Duration::from_millis(cfg.telemetry.loss_window_ms));
    let hb_interval = cfg.telemetry.heartbeat_interval_s;
    let mut heartbeat_tick = tokio::time::interval(Duration::from_secs(hb_interval));
    let mut reconcile_tick = tokio::time::interval(Duration::from_secs(cfg.telemetry.reconcile_interval_s));
    reconcile_tick.tick().await; // the start-up snapshot was just loaded
    let mut gaps_at_reconcile = 0;
    let mut last_reconcile = tokio::time::Instant::now();
    let mut ready: Vec<(Lane, LogBatch)> = Vec::new();
    let mut span_requests: Vec<Vec<SpanGroup>> = Vec::new();
    let mut flush_spans = false;
    let critical = |b: LogBatch| (Lane::Critical, b);
    // Records are taken from the queue up to RECV_CHUNK at a time: one pass
    // through the select (and its timers) per chunk, not per record.
    let mut chunk: Vec<RawRecord> = Vec::with_capacity(RECV_CHUNK);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut chunk, RECV_CHUNK) => {
                if n == 0 {
                    break; // the receiver has stopped
                }
                for raw in chunk.drain(..) {
                    let (lane, b) = if crate::abi::peek_lane(&raw.bytes) == Some(crate::abi::LANE_BULK) {
                        (Lane::Bulk, &mut bulk_batcher)
                    } else {
                        (Lane::Critical, &mut batcher)
                    };
                    ready.extend(b.push_mapped(|out| mapper.map_into(&raw, out)).map(|l| (lane, l)));
                    // Spans ended by this record are converted now, while
                    // their pid still names the process (see collect_spans).
                    span_requests.extend(mapper.collect_spans(cfg.export.batch_max_records, cfg.export.batch_max_bytes));
                }
            },
            _ = flush_tick.tick() => {
                stats.queue_depth.store(rx.len() as u64, Ordering::Relaxed);
                stats.processes_tracked.store(mapper.table.len() as u64, Ordering::Relaxed);
                if !batcher.is_empty() {
                    ready.push(critical(batcher.take()));
                }
                if !bulk_batcher.is_empty() {
                    ready.push((Lane::Bulk, bulk_batcher.take()));
                }
                flush_spans = true;
            }
            _ = loss_tick.tick() => {
                let now = crate::clock::unix_now_ns();
                mapper.cut_segments(now);
                ready.extend(mapper.loss_records(now).into_iter().filter_map(|l| batcher.push(l)).map(critical));
                ready.extend(mapper.suppressed_records(now).into_iter().filter_map(|l| batcher.push(l)).map(critical));
            }
            _ = heartbeat_tick.tick() => ready.extend(batcher.push(mapper.heartbeat_record(hb_interval, crate::clock::unix_now_ns())).map(critical)),
            _ = clock_tick.tick() => mapper.refresh_clock(),
            _ = reconcile_tick.tick() => {
                reconcile(&mut mapper).await;
                gaps_at_reconcile = mapper.tracker().gaps;
                last_reconcile = tokio::time::Instant::now();
            }
        }
        // After a gap, context may be stale: reconcile early (at most every 5 s).
        if mapper.tracker().gaps > gaps_at_reconcile && last_reconcile.elapsed() >= Duration::from_secs(5) {
            reconcile(&mut mapper).await;
            gaps_at_reconcile = mapper.tracker().gaps;
            last_reconcile = tokio::time::Instant::now();
        }
        for (lane, mut logs) in ready.drain(..) {
            let request = encoder.encode_batch(&mut logs).in_lane(lane);
            match lane {
                Lane::Critical => batcher.recycle(logs),
                Lane::Bulk => bulk_batcher.recycle(logs),
            }
            if !send(&tx, request, &stats).await {
                return;
            }
        }
        // Ended spans go out in batches like the records: when a batch is
        // full, and the rest with the records at each flush tick.
        span_requests.extend(mapper.collect_spans(cfg.export.batch_max_records, cfg.export.batch_max_bytes));
        if flush_spans {
            flush_spans = false;
            span_requests.push(mapper.take_span_groups());
        }
        for groups in span_requests.drain(..).filter(|g| !g.is_empty()) {
            if !send(&tx, encoder.encode_span_groups(groups), &stats).await {
                return;
            }
        }
    }
    // The receiver has stopped and read the kernel counters one last time:
    // report what is left, close the open spans, then a final heartbeat.
    let now = crate::clock::unix_now_ns();
    let mut last: Vec<EncodedLog> = mapper.loss_records(now);
    last.extend(mapper.suppressed_records(now));
    last.push(mapper.heartbeat_record(hb_interval, now));
    ready.extend(last.into_iter().filter_map(|l| batcher.push(l)).map(critical));
    ready.push(critical(batcher.take()));
    ready.push((Lane::Bulk, bulk_batcher.take()));
    for (lane, mut logs) in ready.drain(..).filter(|(_, l)| !l.is_empty()) {
        if !send(&tx, encoder.encode_batch(&mut logs).in_lane(lane), &stats).await {
            return;
        }
    }
    let state_path = Some(cfg.spans.state_path.as_str()).filter(|p| !p.is_empty()).map(std::path::Path::new);
    mapper.end_spans_at_shutdown(state_path);
    let mut span_requests = mapper.collect_spans(cfg.export.batch_max_records, cfg.export.batch_max_bytes);
    span_requests.push(mapper.take_span_groups());
    for groups in span_requests.into_iter().filter(|g| !g.is_empty()) {
        if !send(&tx, encoder.encode_span_groups(groups), &stats).await {
            return;
        }
    }
}

/// Reconcile with a /proc snapshot taken on a blocking thread.
async fn reconcile(mapper: &mut Mapper) {
    let root = mapper.proc_root.clone();
    match tokio::task::spawn_blocking(move || crate::procfs::snapshot(&root)).await {
        Ok(snapshot) => {
            mapper.reconcile(snapshot);
        }
        Err(e) => tracing::warn!("/proc snapshot for reconciliation failed: {e}"),
    }
}

/// Run vigil until `shutdown` is cancelled.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<RunSummary> {
    let host = HostInfo::detect();
    let boot_id = host.boot_id.clone().context("reading /proc/sys/kernel/random/boot_id")?;
    let instance_id = new_instance_id().context("reading /proc/sys/kernel/random/uuid")?;
    let stats = Arc::new(Stats::default());
    let exporter = Exporter::from_config(&cfg).context("setting up the exporter")?;
    let exporter_target = exporter.describe();
    tracing::info!("exporting to {exporter_target}");
    // The health endpoint answers from here on; ready once the probes are attached.
    let probes_attached = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _health = crate::health::spawn(&cfg.health, stats.clone(), probes_attached.clone(), shutdown.clone()).await;

    let (raw_tx, raw_rx) = mpsc::channel::<RawRecord>(cfg.pipeline.queue_records);
    let (req_tx, req_rx) = mpsc::channel::<Batch>(EXPORT_QUEUE_BATCHES);
    let spool = crate::export::deliver::open_spool(&cfg, &exporter, &stats);
    let delivery = crate::export::deliver::Delivery::new(
        exporter,
        RetryPolicy::from_config(&cfg.export),
        stats.clone(),
        spool,
        cfg.export.batch_max_bytes,
    );
    let export_deadline = delivery.deadline.clone();
    let spooling = delivery.has_spool();
    let export_task = tokio::spawn(delivery.run(req_rx));

    let settings = ProbeSettings {
        probes: cfg.probes.clone(),
        self_tgid: std::process::id(),
        critical_queue_reserve: cfg.pipeline.effective_reserve(),
        filters: cfg.filters.clone(),
        ratelimit: cfg.ratelimit.clone(),
        policy: cfg.policy.clone(),
        rate_buckets_in_hash: false,
    };
    let receiver_stats = stats.clone();
    let receiver =
        tokio::task::spawn_blocking(move || probes::start(settings, raw_tx, receiver_stats)).await.context("receiver start")??;
    tracing::info!(hooks = ?receiver.status.active_hooks, "probes attached");
    tracing::info!(
        kernel = host.os_version.as_deref().unwrap_or("unknown"),
        hooks = %receiver.status.active_hooks.join(","),
        lanes = "critical, bulk",
        ringbuf_kib = cfg.probes.ringbuf_kib,
        bulk_ringbuf_kib = cfg.probes.bulk_ringbuf_kib,
        critical_queue_reserve = cfg.pipeline.effective_reserve(),
        args_max_bytes = cfg.probes.args_max_bytes,
        path_max_bytes = cfg.probes.path_max_bytes,
        excluded_cgroups = cfg.filters.exclude_cgroups.len(),
        excluded_uids = cfg.filters.exclude_uids.len(),
        excluded_exe_prefixes = cfg.filters.exclude_exe_prefixes.len(),
        excluded_file_prefixes = cfg.filters.exclude_file_prefixes.len(),
        rate_buckets = receiver.status.rate_buckets.describe(),
        policy = crate::otel::resource::effective_policy(&cfg.policy, crate::policy::bpf_lsm_active()).as_str(),
        exporter = %exporter_target,
        spans = cfg.spans.enabled,
        heartbeat_s = cfg.telemetry.heartbeat_interval_s,
        metrics_s = cfg.telemetry.metrics_interval_s,
        "vigil started"
    );
    probes_attached.store(true, Ordering::Release);

    let ctx =
        MapContext { clock: BootClock::sample(), boot_id: boot_id.clone(), session: format!("{:x}", receiver.status.loaded_at_boot_ns) };
    let metadata = crate::metadata::Metadata::start(&cfg.metadata, |k| std::env::var(k).ok()).context("starting the metadata lookups")?;
    let metadata_stats = metadata.as_ref().map(crate::metadata::Metadata::shared_stats);
    let policy = crate::otel::resource::effective_policy(&cfg.policy, crate::policy::bpf_lsm_active());
    let alert = crate::policy::AlertHook::new(&cfg.policy, host.host_name.as_deref().unwrap_or(&boot_id));
    let mut mapper = Mapper::new(ctx, cfg.pipeline.process_table_max, crate::procfs::default_root(), stats.clone())
        .with_user_files(PathBuf::from(&cfg.users.passwd_path), PathBuf::from(&cfg.users.group_path))
        .with_metadata(metadata)
        .with_policy(policy, alert);
    if cfg.spans.enabled {
        let ids = crate::spans::SpanIds::new(host.host_id.as_deref().unwrap_or(&boot_id), &boot_id);
        mapper = mapper.with_spans(SpanBook::new(ids, cfg.spans.root_daemons.clone(), cfg.spans.max_duration_s), cfg.spans.error_on_signal);
    }
    // Snapshot after attaching: a process that starts in between is seen by
    // both, and observed events win over the snapshot.
    let cgroups = mapper.cgroups().clone();
    let snapshot = tokio::task::spawn_blocking(move || {
        cgroups.refresh_blocking();
        crate::procfs::snapshot(&crate::procfs::default_root())
    })
    .await
    .context("/proc snapshot")?;
    tracing::info!(processes = snapshot.len(), "process table loaded from /proc");
    mapper.load_snapshot(snapshot);
    if cfg.spans.enabled && !cfg.spans.state_path.is_empty() {
        mapper.resume_saved_spans(std::path::Path::new(&cfg.spans.state_path));
    }
    mapper.set_probes_status(receiver.status.active_hooks.iter().map(|h| format!("{h}:attached")).collect());
    let refresher = tokio::spawn(mapper.cgroups().clone().refresher(Duration::from_secs(1)));
    let mut resource = host_resource(&host, &instance_id, &receiver.status.active_hooks);
    crate::otel::resource::add_config(&mut resource, &cfg, &exporter_target);
    crate::otel::resource::add_k8s_node(&mut resource, |k| std::env::var(k).ok());
    let self_metrics = match crate::metrics::start(
        &cfg,
        stats.clone(),
        metadata_stats,
        &resource,
        Duration::from_secs(cfg.telemetry.metrics_interval_s),
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("vigil's own metrics are not exported: {e:#}");
            None
        }
    };
    let mut map_task = tokio::spawn(map_stage(mapper, raw_rx, req_tx, RequestEncoder::new(&resource), cfg.clone()));
    let mut export_task = export_task;

    shutdown.cancelled().await;
    tracing::info!("shutting down: detaching probes and draining");
    tokio::task::spawn_blocking(move || receiver.stop()).await.context("receiver stop")?;
    refresher.abort();
    // One deadline for the whole drain: mapping what is queued, then
    // delivering it. Whatever is still unsent then is given up, and counted.
    let deadline = Duration::from_millis(cfg.export.shutdown_deadline_ms);
    let drained = tokio::time::timeout(deadline, async {
        let _ = (&mut map_task).await;
        let _ = (&mut export_task).await;
    })
    .await;
    if drained.is_err() {
        // The exporter stops sending and spools what it holds and whatever
        // the map stage still hands on (local writes: bounded by a second,
        // short deadline). Without a spool the rest is given up at once.
        export_deadline.cancel();
        if spooling {
            // (A task that finished within the first deadline must not be
            // polled again.)
            let _ = tokio::time::timeout(SPOOL_DRAIN_DEADLINE, async {
                if !map_task.is_finished() {
                    let _ = (&mut map_task).await;
                }
                if !export_task.is_finished() {
                    let _ = (&mut export_task).await;
                }
            })
            .await;
        }
        map_task.abort();
        export_task.abort();
        let l = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let unmapped = l(&stats.received).saturating_sub(l(&stats.mapped) + l(&stats.decode_errors) + stats.queue_full_total());
        let unsent = l(&stats.in_flight) + unmapped;
        stats.shutdown_lost.store(unsent, Ordering::Relaxed);
        if unsent > 0 {
            tracing::error!(records = unsent, "shutdown deadline of {deadline:?} reached: records still unsent are lost");
        } else {
            tracing::warn!("shutdown deadline of {deadline:?} reached: unsent records are in the spool");
        }
    }
    if let Some(m) = self_metrics {
        // The SDK flushes synchronously: keep it off the async workers.
        let _ = tokio::task::spawn_blocking(move || m.shutdown()).await;
    }
    Ok(RunSummary { stats: stats.summary() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: usize) -> EncodedLog {
        EncodedLog(vec![0; n])
    }

    /// The one-entry cache of `resource_for` gives each workload its own
    /// resource, the same value each time, whichever workload came before.
    #[test]
    fn resources_are_per_workload_with_the_last_one_cached() {
        let ctx = MapContext { clock: crate::clock::BootClock::with_offset(0), boot_id: "b".into(), session: "s".into() };
        let mut m = Mapper::new(ctx, 16, std::env::temp_dir(), Arc::new(Stats::default()));
        let unit = Arc::new(crate::workload::parse_cgroup_path("/system.slice/nginx.service"));
        let other = Arc::new(crate::workload::parse_cgroup_path("/system.slice/sshd.service"));
        // Equal to `unit`, another allocation: the same resource.
        let unit_again = Arc::new(crate::workload::parse_cgroup_path("/system.slice/nginx.service"));
        let first = m.resource_for(Some(&unit)).expect("a unit's resource");
        let second = m.resource_for(Some(&other)).expect("a unit's resource");
        assert_ne!(first.attributes, second.attributes);
        for w in [&unit, &unit, &other, &unit_again, &other, &other, &unit] {
            let r = m.resource_for(Some(w)).expect("resource");
            let want = if **w == *unit { &first } else { &second };
            assert!(Arc::ptr_eq(&r, want), "{w:?}");
        }
        assert!(m.resource_for(None).is_none());
        assert!(Arc::ptr_eq(&m.resource_for(Some(&unit)).expect("resource"), &first));
    }

    #[test]
    fn batches_are_bounded_in_records_and_bytes() {
        let mut b = Batcher::new(3, 1000);
        assert!(b.push(log(10)).is_none());
        assert!(b.push(log(10)).is_none());
        assert_eq!(b.push(log(10)).map(|v| v.len()), Some(3), "record limit");
        assert!(b.is_empty());
        assert!(b.push(log(600)).is_none());
        let full = b.push(log(600)).expect("byte limit reached");
        assert_eq!(full.len(), 1, "the record that would overflow starts the next batch");
        assert_eq!(b.take().len(), 1);
        // A single record larger than the limit still goes out, alone.
        assert!(b.push(log(5000)).is_none());
        assert_eq!(b.push(log(1)).map(|v| v.len()), Some(1));
    }

    /// Records written straight into the batch: the bytes are those of the
    /// same records pushed encoded, a write that maps nothing adds nothing,
    /// and the record that overflows the byte limit moves to the next batch.
    /// A one-workload batch becomes its request in place: the bytes of
    /// the copying encoder, and the buffer comes back to the batch once the
    /// request is dropped. Batches of several workloads are copied.
    #[test]
    fn one_group_batches_become_their_request_in_place() {
        use crate::export::RequestEncoder;
        use crate::otel::kv_str;
        let host = opentelemetry_proto::tonic::resource::v1::Resource { attributes: vec![kv_str("host.name", "h")], ..Default::default() };
        let mut enc = RequestEncoder::new(&host);
        let pod = Arc::new(WorkloadResource::new(vec![kv_str("k8s.pod.uid", "u")]));
        for resource in [None, Some(pod.clone())] {
            let mut batch = LogBatch::default();
            for i in 0..200u8 {
                batch.push(resource.clone(), EncodedLog(vec![0x10, i % 100 + 1]));
            }
            let copied = enc.encode_groups(&batch.groups());
            let sent = enc.encode_batch(&mut batch);
            assert_eq!(sent.bytes, copied.bytes, "the same request");
            assert_eq!(sent.records, 200);
            assert!(batch.is_empty() && batch.groups().is_empty(), "the batch was taken");
            // The request is in the batch's buffer: while it is in flight
            // the batch writes into another one, and gets its own back once
            // it is dropped.
            let in_use = |b: &LogBatch, req: &Batch| b.records.as_ptr_range().contains(&req.bytes.as_ptr());
            let at = sent.bytes.as_ptr();
            drop((sent, copied));
            batch.push(None, EncodedLog(vec![0x10, 1]));
            assert!(batch.records.as_ptr_range().contains(&at), "buffer reused");
            let sent = enc.encode_batch(&mut batch);
            batch.push(None, EncodedLog(vec![0x10, 1]));
            assert!(!in_use(&batch, &sent), "not while the request is in flight");
            assert_eq!(sent.decode().expect("decodes").resource_logs[0].scope_logs[0].log_records.len(), 1);
        }
        // Two workloads: encoded by copying, the batch left as it was.
        let mut batch = LogBatch::default();
        batch.push(None, EncodedLog(vec![0x10, 1]));
        batch.push(Some(pod.clone()), EncodedLog(vec![0x10, 2]));
        let copied = enc.encode_groups(&batch.groups());
        let sent = enc.encode_batch(&mut batch);
        assert_eq!((sent.bytes, batch.len()), (copied.bytes, 2));
        // A record moved to the next batch by the byte limit lands after
        // that batch's room too.
        let mut b = Batcher::new(100, 40);
        assert!(b.push(EncodedLog([0x10, 5].repeat(15))).is_none());
        let mut full = b.push(EncodedLog([0x10, 6].repeat(15))).expect("byte limit reached");
        let mut next = b.take();
        for (batch, severity) in [(&mut full, 5), (&mut next, 6)] {
            let req = enc.encode_batch(batch).decode().expect("decodes");
            let body = &req.resource_logs[0].scope_logs[0].log_records;
            assert_eq!((body.len(), body[0].severity_number), (1, severity));
        }
    }

    #[test]
    fn mapped_records_are_framed_in_place_and_bounded() {
        let rec = |n: usize| {
            move |out: &mut Vec<u8>| {
                out.extend(std::iter::repeat_n(n as u8, n));
                Some(None)
            }
        };
        let mut b = Batcher::new(100, 1000);
        assert!(b.push_mapped(rec(300)).is_none());
        assert!(b.push_mapped(|_| None).is_none(), "nothing mapped");
        assert!(b.push_mapped(rec(200)).is_none());
        let full = b.push_mapped(rec(500)).expect("byte limit reached");
        let mut want = LogBatch::default();
        want.push(None, EncodedLog(vec![44; 300]));
        want.push(None, EncodedLog(vec![200; 200]));
        assert_eq!((full.len(), full.groups()[0].1.chunks.clone()), (2, want.groups()[0].1.chunks.clone()));
        let next = b.take();
        want.clear();
        want.push(None, EncodedLog(vec![244; 500]));
        assert_eq!((next.len(), next.groups()[0].1.chunks.clone()), (1, want.groups()[0].1.chunks.clone()));
    }

    #[test]
    fn runs_of_one_workload_stay_in_its_group() {
        use crate::otel::kv_str;
        let pod = Arc::new(WorkloadResource::new(vec![kv_str(attr::K8S_POD_UID, "u")]));
        let mut batch = LogBatch::default();
        for (r, n) in [(Some(&pod), 1u8), (Some(&pod), 2), (None, 3), (None, 4), (Some(&pod), 5), (None, 6)] {
            batch.push(r.cloned(), EncodedLog(vec![n]));
        }
        // Each record framed (tag 0x12, length 1, the byte); adjacent
        // records of a group are one chunk.
        let groups: Vec<(bool, Vec<Vec<u8>>, usize)> =
            batch.groups().iter().map(|(r, logs)| (r.is_some(), logs.chunks.iter().map(|c| c.to_vec()).collect(), logs.count)).collect();
        let f = |ns: &[u8]| ns.iter().flat_map(|n| [0x12, 1, *n]).collect::<Vec<u8>>();
        assert_eq!(groups, [(true, vec![f(&[1, 2]), f(&[5])], 3), (false, vec![f(&[3, 4]), f(&[6])], 3)]);
        assert_eq!(batch.len(), 6);
        batch.clear();
        assert!(batch.is_empty() && batch.groups().is_empty());
        batch.push(None, EncodedLog(vec![7]));
        assert_eq!(batch.groups()[0].1.chunks, [f(&[7])]);
    }

    #[test]
    fn batches_group_records_by_workload_resource() {
        use crate::otel::kv_str;
        let pod = Arc::new(WorkloadResource::new(vec![kv_str(attr::K8S_POD_UID, "u")]));
        let unit = Arc::new(WorkloadResource::new(vec![kv_str(attr::VIGIL_SYSTEMD_UNIT, "a.service")]));
        let rec = |n: u64| {
            let mut out = Vec::new();
            crate::otel::wire::put_fixed64(&mut out, crate::otel::wire::log_record::TIME_UNIX_NANO, n);
            EncodedLog(out)
        };
        let mut b = Batcher::new(100, 1 << 20);
        for (r, n) in [(Some(pod.clone()), 1), (None, 2), (Some(unit.clone()), 3), (Some(pod.clone()), 4), (None, 5)] {
            assert!(b.push_in(r, rec(n)).is_none());
        }
        let batch = b.take();
        assert_eq!(batch.len(), 5);
        let host = opentelemetry_proto::tonic::resource::v1::Resource { attributes: vec![kv_str("host.name", "h")], ..Default::default() };
        let req = RequestEncoder::new(&host).encode_groups(&batch.groups());
        assert_eq!(req.records, 5);
        let req = req.decode().expect("decodes");
        let got: Vec<(Vec<String>, Vec<u64>)> = req
            .resource_logs
            .iter()
            .map(|rl| {
                let keys = rl.resource.as_ref().map(|r| r.attributes.iter().map(|a| a.key.clone()).collect()).unwrap_or_default();
                (keys, rl.scope_logs[0].log_records.iter().map(|l| l.time_unix_nano).collect())
            })
            .collect();
        let keys = |extra: &[&str]| ["host.name"].iter().chain(extra).map(|k| (*k).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            got,
            [(keys(&["k8s.pod.uid"]), vec![1, 4]), (keys(&[]), vec![2, 5]), (keys(&["vigil.systemd.unit"]), vec![3]),],
            "one ResourceLogs per workload, records in order within each"
        );
        // A rebuilt resource (new metadata) is a group of its own.
        let renamed = Arc::new(WorkloadResource::new(vec![kv_str(attr::K8S_POD_UID, "u"), kv_str(attr::K8S_POD_NAME, "p")]));
        let mut b = Batcher::new(100, 1 << 20);
        assert!(b.push_in(Some(pod), rec(1)).is_none());
        assert!(b.push_in(Some(renamed), rec(2)).is_none());
        assert_eq!(b.take().groups().len(), 2);
    }

    /// Ended spans wait for a traces request in a batch bounded like the
    /// records' (spans, then encoded bytes incl. each group's resource),
    /// grouped by workload.
    #[test]
    fn span_batches_are_bounded_and_grouped() {
        use crate::otel::kv_str;
        use opentelemetry_proto::tonic::trace::v1::Span;
        let span = |n: usize| Span { name: "x".repeat(n), ..Span::default() };
        let len = |n: usize| prost::Message::encoded_len(&span(n));
        let pod = Arc::new(WorkloadResource::new(vec![kv_str(attr::K8S_POD_UID, "u")]));
        let mut b = SpanBatch::default();
        assert!(b.push(None, span(10), 3, 1 << 20).is_none());
        assert!(b.push(Some(pod.clone()), span(11), 3, 1 << 20).is_none());
        assert!(b.push(None, span(12), 3, 1 << 20).is_none());
        assert_eq!(b.bytes, len(10) + len(11) + len(12) + 2 * GROUP_OVERHEAD_BYTES + pod.encoded.len());
        let full = b.push(None, span(13), 3, 1 << 20).expect("span limit");
        let names =
            |g: &[SpanGroup]| g.iter().map(|(r, s)| (r.is_some(), s.iter().map(|s| s.name.len()).collect::<Vec<_>>())).collect::<Vec<_>>();
        assert_eq!(names(&full), [(false, vec![10, 12]), (true, vec![11])]);
        assert_eq!((b.count, b.bytes), (1, len(13) + GROUP_OVERHEAD_BYTES), "the span that overflowed starts the next batch");
        // The byte limit: a span that would not fit starts the next batch;
        // a single span larger than the limit still goes out, alone.
        let max = len(13) + GROUP_OVERHEAD_BYTES + len(100);
        assert!(b.push(None, span(100), 100, max).is_none());
        assert_eq!(names(&b.push(None, span(1), 100, max).expect("byte limit")), [(false, vec![13, 100])]);
        assert_eq!(names(&b.push(None, span(5000), 100, max).expect("byte limit")), [(false, vec![1])]);
        assert_eq!(names(&b.push(None, span(2), 100, max).expect("oversized alone")), [(false, vec![5000])]);
        assert_eq!(names(&b.take()), [(false, vec![2])]);
        assert_eq!((b.count, b.bytes, b.groups.len()), (0, 0, 0));
    }

    #[test]
    fn a_new_group_counts_its_resource_bytes() {
        use crate::otel::kv_str;
        let big = Arc::new(WorkloadResource::new(vec![kv_str(attr::K8S_POD_NAME, "p".repeat(70_000))]));
        let mut b = Batcher::new(100, 65_536);
        assert!(b.push(log(10)).is_none());
        let full = b.push_in(Some(big.clone()), log(10)).expect("the resource alone overflows the byte limit");
        assert_eq!(full.len(), 1);
        assert_eq!(b.take().groups().len(), 1, "the overflowing record starts the next batch with its group");
    }
}
