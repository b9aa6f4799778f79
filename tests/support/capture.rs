//! Load the real probes, collect what they report, decode and map it.

use opentelemetry_proto::tonic::logs::v1::LogRecord;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use vigil::clock::BootClock;
use vigil::config::ProbesConfig;
use vigil::decode::{decode, Record};
use vigil::otel::logs::MapContext;
use vigil::pipeline::Mapper;
use vigil::probes::{self, ProbeSettings, RawRecord, Receiver};
use vigil::stats::Stats;

/// One captured record: decoded, and as the OTLP log record vigil emits.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The decoded kernel record.
    pub record: Record,
    /// The mapped OTLP record.
    pub log: LogRecord,
    /// The workload part of the record's Resource (`None`: host alone).
    pub resource: Option<Arc<vigil::otel::resource::WorkloadResource>>,
    /// The record as the map stage encoded it.
    pub encoded: vigil::otel::wire::EncodedLog,
}

impl Captured {
    /// The workload attributes of the record's Resource.
    pub fn workload(&self) -> &[opentelemetry_proto::tonic::common::v1::KeyValue] {
        self.resource.as_ref().map_or(&[], |r| r.attributes.as_slice())
    }
}

/// Spans as vigil configures them by default (ids keyed by this host).
fn with_spans(m: Mapper, ctx: &MapContext) -> Mapper {
    let cfg = vigil::config::SpansConfig::default();
    let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    let ids = vigil::spans::SpanIds::new(machine.trim(), &ctx.boot_id);
    m.with_spans(vigil::spans::SpanBook::new(ids, cfg.root_daemons, cfg.max_duration_s), cfg.error_on_signal)
}

/// Probes attached for the lifetime of the value.
#[derive(Debug)]
pub struct Capture {
    rx: mpsc::Receiver<RawRecord>,
    receiver: Option<Receiver>,
    mapper: Mapper,
    mapper_ctx: MapContext,
    schema: crate::schema::Schema,
    /// Every record seen so far.
    pub seen: Vec<Captured>,
    /// Every span that ended so far.
    pub spans: Vec<vigil::spans::FinishedSpan>,
    /// The pipeline counters.
    pub stats: Arc<Stats>,
}

impl Capture {
    /// Attach the probes with `probes` settings (events of every process,
    /// this test process included).
    pub fn start(probes: ProbesConfig) -> Capture {
        Capture::start_with(ProbeSettings { probes, self_tgid: 0, ..ProbeSettings::default() })
    }

    /// Attach with full probe settings (filters, queue reserve).
    pub fn start_with(settings: ProbeSettings) -> Capture {
        crate::require_root();
        let stats = Arc::new(Stats::default());
        let (tx, rx) = mpsc::channel(1 << 20);
        let receiver = probes::start(settings, tx, stats.clone()).expect("probes load and attach");
        let ctx = MapContext {
            clock: BootClock::sample(),
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id").trim().to_owned(),
            session: format!("{:x}", receiver.status.loaded_at_boot_ns),
        };
        let mut mapper = with_spans(Mapper::new(ctx.clone(), 1 << 16, "/proc".into(), stats.clone()), &ctx);
        mapper.load_snapshot(vigil::procfs::snapshot(std::path::Path::new("/proc")));
        Capture {
            rx,
            receiver: Some(receiver),
            mapper,
            mapper_ctx: ctx,
            schema: crate::schema::Schema::load(),
            seen: Vec::new(),
            spans: Vec::new(),
            stats,
        }
    }

    /// Attach without loading the /proc snapshot: every process that
    /// predates the capture is unknown to the table (to test rebuilding).
    pub fn start_without_snapshot(probes: ProbesConfig) -> Capture {
        let mut c = Capture::start(probes);
        c.mapper = with_spans(Mapper::new(c.mapper_ctx.clone(), 1 << 16, "/proc".into(), c.stats.clone()), &c.mapper_ctx);
        c
    }

    /// Attach with default settings but a small ring buffer.
    pub fn start_default() -> Capture {
        Capture::start(ProbesConfig { ringbuf_kib: 4096, poll_interval_ms: 5, ..ProbesConfig::default() })
    }

    fn pump(&mut self) {
        while let Ok(raw) = self.rx.try_recv() {
            let record = decode(&raw.bytes).expect("every record from the real probes decodes");
            let (resource, encoded) = self.mapper.map_grouped(&raw).expect("maps");
            let log = encoded.decode().expect("our encoding decodes");
            self.schema.validate(&log);
            if let Some(r) = &resource {
                self.schema.validate_resource(&opentelemetry_proto::tonic::resource::v1::Resource {
                    attributes: r.attributes.clone(),
                    ..Default::default()
                });
            }
            self.seen.push(Captured { record, log, resource, encoded });
        }
        let ended = self.mapper.take_finished_spans();
        self.spans.extend(ended);
    }

    /// Detach the probes, drain the ring buffer and map what is left; the
    /// kernel counters in `stats` are final afterwards.
    pub fn stop(&mut self) {
        if let Some(r) = self.receiver.take() {
            r.stop();
        }
        self.pump();
    }

    /// Stop or resume draining the ring buffer (see `Receiver::hold_drain`).
    pub fn hold_drain(&self, hold: bool) {
        if let Some(r) = &self.receiver {
            r.hold_drain(hold);
        }
    }

    /// What the receiver attached (hooks in use, refused preferred hooks).
    pub fn status(&self) -> Option<&vigil::probes::ProbeStatus> {
        self.receiver.as_ref().map(|r| &r.status)
    }

    /// The map stage (loss records, heartbeats, stream tracking).
    pub fn mapper(&mut self) -> &mut Mapper {
        &mut self.mapper
    }

    /// Wait until `pred` matches a captured record; panics after `timeout`.
    pub fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Captured) -> bool) -> Captured {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump();
            if let Some(c) = self.seen.iter().find(|c| pred(c)) {
                return c.clone();
            }
            assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}; {} records seen", self.seen.len());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait until a span matching `pred` has ended; panics after `timeout`.
    pub fn wait_for_span(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&vigil::spans::FinishedSpan) -> bool,
    ) -> vigil::spans::FinishedSpan {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump();
            if let Some(s) = self.spans.iter().find(|s| pred(s)) {
                return s.clone();
            }
            assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for span {what}; {} spans ended", self.spans.len());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Collect for `dur` more and return every record matching `pred`.
    pub fn all_matching(&mut self, dur: Duration, pred: impl Fn(&Captured) -> bool) -> Vec<Captured> {
        let deadline = Instant::now() + dur;
        while Instant::now() < deadline {
            self.pump();
            std::thread::sleep(Duration::from_millis(5));
        }
        self.pump();
        self.seen.iter().filter(|c| pred(c)).cloned().collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(r) = self.receiver.take() {
            r.stop();
        }
    }
}
