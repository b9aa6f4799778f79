//! The pipeline: receiver -> decode -> enrich (process table) -> map ->
//! batch -> export.
//!
//! Every channel is bounded. The receiver never blocks (it counts what it
//! cannot hand on); the later stages await, so backpressure from a slow
//! exporter travels back to that counted edge. Shutdown stops the receiver
//! first (detach, final drain), lets decode/map flush its last batch, and
//! gives the exporter `export.shutdown_deadline_ms` to deliver.

use crate::clock::BootClock;
use crate::config::Config;
use crate::decode::{decode, Event, Record};
use crate::export::{Batch, Exporter, RequestEncoder};
use crate::host::HostInfo;
use crate::otel::logs::{to_log_record, MapContext, ProcContext, OBSERVED};
use crate::otel::resource::{host_resource, new_instance_id};
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
        }
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
        let lr = match &rec.event {
            Event::Exec(e) => {
                let cgroup = self.cgroup_path(e.cgroup_id, h.tgid);
                self.table.on_exec(h.tgid, e.ppid, e.start_ns, e.exe.bytes.clone(), e.comm.clone(), e.creds.euid);
                to_log_record(&rec, &self.ctx, OBSERVED, raw.observed_ns, cgroup.as_deref())
            }
            Event::Fork(f) => {
                let info = self.table.on_fork(h.tgid, f.child_tgid, f.child_start_ns, f.comm.clone());
                let source = info.source;
                to_log_record(&rec, &self.ctx, ProcContext { info: Some(&info), source }, raw.observed_ns, None)
            }
            Event::Exit(x) => {
                let info = self.table.on_exit(h.tgid, x.start_ns);
                let source = info.as_ref().map_or(ContextSource::Unknown, |i| i.source);
                to_log_record(&rec, &self.ctx, ProcContext { info: info.as_ref(), source }, raw.observed_ns, None)
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
    loop {
        tokio::select! {
            raw = rx.recv() => match raw {
                Some(raw) => {
                    if let Some(lr) = mapper.map(&raw) {
                        batch.push(lr);
                    }
                    if batch.len() >= max && tx.send(encoder.encode(&std::mem::take(&mut batch))).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            _ = flush_tick.tick() => {
                if !batch.is_empty() && tx.send(encoder.encode(&std::mem::take(&mut batch))).await.is_err() {
                    break;
                }
            }
            _ = clock_tick.tick() => mapper.refresh_clock(),
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(encoder.encode(&batch)).await;
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
