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
use crate::clock::BootClock;
use crate::config::Config;
use crate::decode::{decode, Event, Record};
use crate::export::{Batch, Exporter, RequestEncoder};
use crate::host::HostInfo;
use crate::otel::attr;
use crate::otel::logs::{to_log_record, MapContext, ProcContext, OBSERVED};
use crate::otel::resource::{host_resource, new_instance_id};
use crate::otel::telemetry::{self, HeartbeatCounters, Stamp};
use crate::otel::wire::EncodedLog;
use crate::probes::{self, ProbeSettings, RawRecord};
use crate::proctable::{ContextSource, ProcessTable};
use crate::stats::Stats;
use anyhow::Context as _;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Batches in flight between map and export.
const EXPORT_QUEUE_BATCHES: usize = 8;
/// How long one batch may be retried in normal operation.
const EXPORT_RETRY_BUDGET: Duration = Duration::from_secs(30);
/// cgroup directories mapped at most.
const CGROUP_CACHE_MAX: usize = 65_536;

/// The map stage's state: everything needed to turn raw records into OTLP.
#[derive(Debug)]
pub struct Mapper {
    ctx: MapContext,
    table: ProcessTable,
    cgroups: HashMap<u64, String>,
    cgroup_scan_at: Option<std::time::Instant>,
    cgroup_root: Option<PathBuf>,
    proc_root: PathBuf,
    stats: Arc<Stats>,
    tracker: StreamTracker,
    losses: LossReporter,
    telemetry_seq: u64,
    probes_status: Vec<String>,
}

impl Mapper {
    /// A mapper with an empty process table.
    pub fn new(ctx: MapContext, table_max: usize, proc_root: PathBuf, stats: Arc<Stats>) -> Self {
        Mapper {
            ctx,
            table: ProcessTable::new(table_max),
            cgroups: HashMap::new(),
            cgroup_scan_at: None,
            cgroup_root: crate::procfs::cgroup2_root(),
            proc_root,
            stats,
            tracker: StreamTracker::default(),
            losses: LossReporter::new(crate::clock::unix_now_ns()),
            telemetry_seq: 0,
            probes_status: Vec::new(),
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
            out.push(telemetry::loss_record(loss, Stamp { session: &self.ctx.session, boot_id: &self.ctx.boot_id, seq, now_ns }));
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
        let loss_total = kernel_dropped + queue_full + l(&s.decode_errors) + l(&s.export_failed) + l(&s.export_rejected);
        HeartbeatCounters {
            counters: vec![
                (attr::HB_KERNEL_EMITTED, sum(&|t| l(s.kernel_emitted(t)))),
                (attr::HB_KERNEL_DROPPED, kernel_dropped),
                (attr::HB_KERNEL_READ_FAULTS, sum(&|t| l(s.kernel_field_problem(t, FieldProblem::ReadFault)))),
                (attr::HB_KERNEL_TRUNCATIONS, sum(&|t| l(s.kernel_field_problem(t, FieldProblem::Truncated)))),
                (attr::HB_AGENT_RECEIVED, l(&s.received)),
                (attr::HB_AGENT_QUEUE_FULL, queue_full),
                (attr::HB_AGENT_MALFORMED, l(&s.decode_errors)),
                (attr::HB_AGENT_MAPPED, l(&s.mapped)),
                (attr::HB_AGENT_STREAM_GAPS, self.tracker.gaps),
                (attr::HB_AGENT_LATE_RECORDS, self.tracker.late),
                (attr::HB_AGENT_PROCESSES, self.table.len() as u64),
                (attr::HB_AGENT_TABLE_REJECTED, self.table.rejected()),
                (attr::HB_EXPORT_EXPORTED, l(&s.exported)),
                (attr::HB_EXPORT_FAILED, l(&s.export_failed)),
                (attr::HB_EXPORT_REJECTED, l(&s.export_rejected)),
                (attr::HB_LOSS_TOTAL, loss_total),
            ],
            probes: self.probes_status.clone(),
        }
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
        self.cgroup_root = cgroup_root;
        self
    }

    /// Re-sample the boot clock offset.
    pub fn refresh_clock(&mut self) {
        self.ctx.clock.refresh();
    }

    /// The cgroup path for a cgroup id: from the cache, else by rescanning
    /// the cgroup2 tree (at most once a second; the process itself may be
    /// gone already, so /proc/<pid>/cgroup is only the last resort).
    fn cgroup_path(&mut self, cgroup_id: u64, tgid: u32) -> Option<String> {
        if let Some(p) = self.cgroups.get(&cgroup_id) {
            return Some(p.clone());
        }
        let due = self.cgroup_scan_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if let Some(root) = self.cgroup_root.as_ref().filter(|_| due) {
            self.cgroup_scan_at = Some(std::time::Instant::now());
            self.cgroups = crate::procfs::cgroup_ids(root, CGROUP_CACHE_MAX);
            if let Some(p) = self.cgroups.get(&cgroup_id) {
                return Some(p.clone());
            }
        }
        let path = crate::procfs::cgroup_path(&self.proc_root, tgid)?;
        if self.cgroups.len() < CGROUP_CACHE_MAX {
            self.cgroups.insert(cgroup_id, path.clone());
        }
        Some(path)
    }

    /// Decode, update the process table and map one raw record. A record
    /// that does not decode is counted and returns `None`.
    pub fn map(&mut self, raw: &RawRecord) -> Option<EncodedLog> {
        let rec: Record = match decode(&raw.bytes) {
            Ok(r) => r,
            Err(e) => {
                self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("malformed record: {e}");
                return None;
            }
        };
        let h = rec.header;
        let gap = self.tracker.observe(h.cpu, h.lane, h.seq);
        let lr = match &rec.event {
            Event::Exec(e) => {
                let cgroup = self.cgroup_path(e.cgroup_id, h.tgid);
                self.table.on_exec(h.tgid, e.ppid, e.start_ns, e.exe.bytes.clone(), e.comm.clone(), e.creds.euid);
                to_log_record(&rec, &self.ctx, OBSERVED, raw.observed_ns, cgroup.as_deref(), gap)
            }
            Event::Fork(f) => {
                // The child inherits the parent's comm: a difference from the
                // comm the parent's image had means the parent renamed itself.
                let mismatch = self.table.get(h.tgid).map(|p| p.comm != f.comm);
                let info = self.table.on_fork(h.tgid, f.child_tgid, f.child_start_ns, f.comm.clone());
                let known = info.source != ContextSource::Unknown;
                to_log_record(
                    &rec,
                    &self.ctx,
                    ProcContext { info: Some(&info), source: info.source, name_mismatch: mismatch.filter(|_| known) },
                    raw.observed_ns,
                    None,
                    gap,
                )
            }
            Event::Exit(x) => {
                let info = self.table.on_exit(h.tgid, x.start_ns);
                let mismatch = info.as_ref().map(|i| i.comm != x.comm);
                to_log_record(&rec, &self.ctx, ProcContext::from_table(info.as_ref(), mismatch), raw.observed_ns, None, gap)
            }
        };
        self.stats.mapped.fetch_add(1, Ordering::Relaxed);
        Some(lr)
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Final counters, one line.
    pub stats: String,
}

async fn export_stage(mut exporter: Exporter, mut rx: mpsc::Receiver<Batch>, stats: Arc<Stats>) {
    while let Some(req) = rx.recv().await {
        let n = req.records;
        match exporter.export(&req, EXPORT_RETRY_BUDGET).await {
            Ok(d) => {
                stats.exported.fetch_add(n, Ordering::Relaxed);
                stats.export_rejected.fetch_add(d.rejected, Ordering::Relaxed);
                if d.rejected > 0 {
                    tracing::warn!(rejected = d.rejected, "collector rejected records (partial success)");
                }
            }
            Err(e) => {
                stats.export_failed.fetch_add(n, Ordering::Relaxed);
                tracing::error!(records = n, "export failed: {e}");
            }
        }
    }
}

async fn map_stage(mut mapper: Mapper, mut rx: mpsc::Receiver<RawRecord>, tx: mpsc::Sender<Batch>, encoder: RequestEncoder, cfg: Config) {
    let max = cfg.export.batch_max_records;
    let mut batch: Vec<EncodedLog> = Vec::with_capacity(max);
    let mut flush_tick = tokio::time::interval(Duration::from_millis(cfg.export.batch_timeout_ms.max(1)));
    let mut clock_tick = tokio::time::interval(Duration::from_secs(10));
    let mut loss_tick = tokio::time::interval(Duration::from_millis(cfg.telemetry.loss_window_ms));
    let hb_interval = cfg.telemetry.heartbeat_interval_s;
    let mut heartbeat_tick = tokio::time::interval(Duration::from_secs(hb_interval));
    loop {
        tokio::select! {
            raw = rx.recv() => match raw {
                Some(raw) => {
                    if let Some(lr) = mapper.map(&raw) {
                        batch.push(lr);
                    }
                }
                None => break,
            },
            _ = flush_tick.tick() => {
                if !batch.is_empty() && tx.send(encoder.encode(&std::mem::take(&mut batch))).await.is_err() {
                    break;
                }
            }
            _ = loss_tick.tick() => batch.extend(mapper.loss_records(crate::clock::unix_now_ns())),
            _ = heartbeat_tick.tick() => batch.push(mapper.heartbeat_record(hb_interval, crate::clock::unix_now_ns())),
            _ = clock_tick.tick() => mapper.refresh_clock(),
        }
        if batch.len() >= max && tx.send(encoder.encode(&std::mem::take(&mut batch))).await.is_err() {
            break;
        }
    }
    // The receiver has stopped and read the kernel counters one last time:
    // report what is left, then a final heartbeat.
    let now = crate::clock::unix_now_ns();
    batch.extend(mapper.loss_records(now));
    batch.push(mapper.heartbeat_record(hb_interval, now));
    for chunk in batch.chunks(max) {
        if tx.send(encoder.encode(chunk)).await.is_err() {
            break;
        }
    }
}

/// Run vigil until `shutdown` is cancelled.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<RunSummary> {
    let host = HostInfo::detect();
    let boot_id = host.boot_id.clone().context("reading /proc/sys/kernel/random/boot_id")?;
    let instance_id = new_instance_id().context("reading /proc/sys/kernel/random/uuid")?;
    let stats = Arc::new(Stats::default());
    let exporter = Exporter::from_config(&cfg).context("setting up the exporter")?;
    tracing::info!("exporting to {}", exporter.describe());

    let (raw_tx, raw_rx) = mpsc::channel::<RawRecord>(cfg.pipeline.queue_records);
    let (req_tx, req_rx) = mpsc::channel::<Batch>(EXPORT_QUEUE_BATCHES);
    let export_task = tokio::spawn(export_stage(exporter, req_rx, stats.clone()));

    let settings = ProbeSettings { probes: cfg.probes.clone(), self_tgid: std::process::id() };
    let receiver_stats = stats.clone();
    let receiver =
        tokio::task::spawn_blocking(move || probes::start(settings, raw_tx, receiver_stats)).await.context("receiver start")??;
    tracing::info!(hooks = ?receiver.status.active_hooks, "probes attached");

    let ctx = MapContext { clock: BootClock::sample(), boot_id, session: format!("{:x}", receiver.status.loaded_at_boot_ns) };
    let mut mapper = Mapper::new(ctx, cfg.pipeline.process_table_max, crate::procfs::default_root(), stats.clone());
    // Snapshot after attaching: a process that starts in between is seen by
    // both, and observed events win over the snapshot.
    let snapshot =
        tokio::task::spawn_blocking(|| crate::procfs::snapshot(&crate::procfs::default_root())).await.context("/proc snapshot")?;
    tracing::info!(processes = snapshot.len(), "process table loaded from /proc");
    mapper.table_mut().load_snapshot(snapshot);
    mapper.set_probes_status(receiver.status.active_hooks.iter().map(|h| format!("{h}:attached")).collect());
    let resource = host_resource(&host, &instance_id, &receiver.status.active_hooks);
    let map_task = tokio::spawn(map_stage(mapper, raw_rx, req_tx, RequestEncoder::new(&resource), cfg.clone()));

    shutdown.cancelled().await;
    tracing::info!("shutting down: detaching probes and draining");
    tokio::task::spawn_blocking(move || receiver.stop()).await.context("receiver stop")?;
    map_task.await.context("map stage")?;
    let deadline = Duration::from_millis(cfg.export.shutdown_deadline_ms);
    if tokio::time::timeout(deadline, export_task).await.is_err() {
        tracing::error!("exporter did not finish within {deadline:?}; unsent records are lost ({})", stats.summary());
    }
    Ok(RunSummary { stats: stats.summary() })
}
