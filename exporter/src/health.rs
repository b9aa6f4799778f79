//! vigil watching itself: a small HTTP endpoint for liveness, readiness and
//! Prometheus metrics of the agent's own counters.
//!
//! - `GET /healthz`: 200 `ok` while the pipeline runs (the server only runs
//!   inside [`crate::pipeline::run`]).
//! - `GET /readyz`: 200 `ready`, or 503 with a one-line reason: the probes
//!   are not attached yet, vigil is shutting down, or exports have been
//!   failing (no success since the first failure) for longer than
//!   `health.unready_after_s`.
//! - `GET /metrics`: Prometheus text exposition format 0.0.4 of [`Stats`]
//!   ([`prometheus_text`]).
//!
//! The server is deliberately minimal: HTTP/1.1, one request per connection
//! (`Connection: close`), the request line parsed and the headers ignored,
//! requests bounded in size and each connection in time. Only `GET` and
//! `HEAD` are answered.
//!
//! The module also holds what `vigil status` needs to read the endpoint
//! back ([`parse_metrics`], [`status_report`]).

use crate::abi::{DropCause, EventType, DROP_MAX};
use crate::config::HealthConfig;
use crate::stats::Stats;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Largest request head (request line and headers) read, in bytes.
pub const MAX_REQUEST_BYTES: usize = 8192;
/// How long one connection may take, from accept to the last byte written.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// `Content-Type` of `/metrics`.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// What readiness is decided from, shared with the pipeline.
#[derive(Debug, Clone)]
pub struct HealthState {
    /// The pipeline's counters.
    pub stats: Arc<Stats>,
    /// Set by the pipeline once the probes are attached.
    pub probes_attached: Arc<AtomicBool>,
    /// Cancelled when vigil starts shutting down.
    pub shutdown: CancellationToken,
    /// Exports failing for longer than this make vigil not ready.
    pub unready_after: Duration,
}

impl HealthState {
    /// `Ok` when ready, else the reason (one line).
    pub fn readiness(&self, now_unix_ns: u64) -> Result<(), String> {
        if self.shutdown.is_cancelled() {
            return Err("shutting down".into());
        }
        if !self.probes_attached.load(Ordering::Acquire) {
            return Err("probes not attached yet".into());
        }
        let since = self.stats.export_failing_since_ns.load(Ordering::Relaxed);
        let failing = Duration::from_nanos(now_unix_ns.saturating_sub(since));
        if since != 0 && failing > self.unready_after {
            return Err(format!(
                "exports failing for {:.1} s (more than health.unready_after_s = {} s)",
                failing.as_secs_f64(),
                self.unready_after.as_secs()
            ));
        }
        Ok(())
    }
}

/// The health server task; aborted (with its connections) when dropped.
#[derive(Debug)]
pub struct HealthServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HealthServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start the health server on `cfg.listen`; `None` when disabled (empty
/// `listen`) or when the address cannot be bound. A bind failure is logged
/// and vigil runs on without the endpoint: capturing events matters more
/// than reporting on it.
pub async fn spawn(
    cfg: &HealthConfig,
    stats: Arc<Stats>,
    probes_attached: Arc<AtomicBool>,
    shutdown: CancellationToken,
) -> Option<HealthServer> {
    if cfg.listen.is_empty() {
        return None;
    }
    let state = HealthState { stats, probes_attached, shutdown, unready_after: Duration::from_secs(cfg.unready_after_s) };
    let bound = TcpListener::bind(cfg.listen.as_str()).await.and_then(|l| Ok((l.local_addr()?, l)));
    match bound {
        Ok((addr, listener)) => {
            tracing::info!("health endpoint on http://{addr} (/healthz, /readyz, /metrics)");
            Some(HealthServer { addr, task: tokio::spawn(serve(listener, state)) })
        }
        Err(e) => {
            tracing::error!("health endpoint disabled: cannot listen on {} (health.listen): {e}", cfg.listen);
            None
        }
    }
}

/// Accept connections until aborted; each is served in its own task, bounded
/// in time ([`CONNECTION_TIMEOUT`]) and in number ([`MAX_CONNECTIONS`]).
pub async fn serve(listener: TcpListener, state: HealthState) {
    let state = Arc::new(state);
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off a little.
                tracing::warn!("health endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if connections.len() >= MAX_CONNECTIONS {
            continue; // dropped: closed at once
        }
        let state = state.clone();
        connections.spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, serve_connection(stream, &state)).await;
        });
    }
}

async fn serve_connection(mut stream: TcpStream, state: &HealthState) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let response = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(()); // closed before a whole request head arrived
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_request(&buf) {
            Parsed::Incomplete if buf.len() < MAX_REQUEST_BYTES => continue,
            Parsed::Incomplete => break Response::text(431, "request head too large\n"),
            Parsed::Bad(why) => break Response::text(400, &format!("bad request: {why}\n")),
            Parsed::Request(req) => break respond(&req, state, crate::clock::unix_now_ns()),
        }
    };
    stream.write_all(&response.to_bytes()).await?;
    stream.shutdown().await
}

/// A parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The target's path, without a query string.
    pub path: String,
}

/// The result of parsing what arrived so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The request head is not complete yet (no empty line).
    Incomplete,
    /// A malformed request line.
    Bad(&'static str),
    /// A complete request head.
    Request(Request),
}

/// Parse a request head: the request line (`METHOD target HTTP/1.x`) is
/// checked, headers are skipped up to the empty line that ends the head.
pub fn parse_request(buf: &[u8]) -> Parsed {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").or_else(|| buf.windows(2).position(|w| w == b"\n\n"));
    if end.is_none() {
        return Parsed::Incomplete;
    }
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let Ok(line) = std::str::from_utf8(&buf[..line_end]) else { return Parsed::Bad("request line is not UTF-8") };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Parsed::Bad("request line is not `METHOD target HTTP/1.x`");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Parsed::Bad("bad method");
    }
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Parsed::Bad("unsupported HTTP version");
    }
    // Origin form (`/path?query`) or absolute form (`http://host/path`).
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    if !path.starts_with('/') {
        return Parsed::Bad("target is not a path");
    }
    let path = path.split(['?', '#']).next().unwrap_or(path);
    Parsed::Request(Request { method: method.to_owned(), path: path.to_owned() })
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body (empty for `HEAD`, with `Content-Length` still that of `GET`).
    pub body: String,
    /// `Content-Length` (the body's, or for `HEAD` the one `GET` would send).
    pub content_length: usize,
    /// Extra header lines (`Name: value`).
    pub extra_headers: Vec<String>,
}

impl Response {
    fn new(status: u16, content_type: &'static str, body: String) -> Self {
        Response { status, content_type, content_length: body.len(), body, extra_headers: Vec::new() }
    }

    fn text(status: u16, body: &str) -> Self {
        Response::new(status, TEXT_CONTENT_TYPE, body.to_owned())
    }

    /// The response on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason_phrase(self.status),
            self.content_type,
            self.content_length
        );
        for h in &self.extra_headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Route one request.
pub fn respond(req: &Request, state: &HealthState, now_unix_ns: u64) -> Response {
    let head = req.method == "HEAD";
    if req.method != "GET" && !head {
        let mut r = Response::text(405, "method not allowed\n");
        r.extra_headers.push("Allow: GET, HEAD".into());
        return r;
    }
    let mut r = match req.path.as_str() {
        "/healthz" => Response::text(200, "ok\n"),
        "/readyz" => match state.readiness(now_unix_ns) {
            Ok(()) => Response::text(200, "ready\n"),
            Err(reason) => Response::text(503, &format!("not ready: {reason}\n")),
        },
        "/metrics" => {
            let ready = state.readiness(now_unix_ns).is_ok();
            Response::new(200, METRICS_CONTENT_TYPE, prometheus_text(&state.stats, ready))
        }
        _ => Response::text(404, "not found: try /healthz, /readyz or /metrics\n"),
    };
    if head {
        r.body.clear();
    }
    r
}

// ---------------------------------------------------------------------------
// Prometheus text exposition format 0.0.4
// ---------------------------------------------------------------------------

/// Escape a label value: backslash, double quote and line feed.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escape `# HELP` text: backslash and line feed.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Writes metric families: `# HELP` and `# TYPE` once, then the samples.
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label_value(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Resource usage of this process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessUsage {
    /// Resident set size, bytes (`VmRSS` of /proc/self/status).
    pub resident_bytes: u64,
    /// User and system CPU time, seconds (/proc/self/stat).
    pub cpu_seconds: f64,
}

impl ProcessUsage {
    /// Read from /proc/self; `None` if it cannot be read.
    pub fn read_self() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        Self::parse(&stat, &status, crate::procfs::clock_ticks())
    }

    /// Parse /proc/self/stat and /proc/self/status contents.
    pub fn parse(stat: &str, status: &str, ticks_per_second: u64) -> Option<Self> {
        // Fields after the comm (which may hold spaces and parentheses):
        // state is field 3, utime 14 and stime 15.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let rss_kib: u64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(ProcessUsage { resident_bytes: rss_kib * 1024, cpu_seconds: (utime + stime) as f64 / ticks_per_second.max(1) as f64 })
    }
}

fn ns_to_seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// vigil's counters in the Prometheus text exposition format 0.0.4, with
/// this process's memory and CPU usage.
pub fn prometheus_text(stats: &Stats, ready: bool) -> String {
    render(stats, ready, ProcessUsage::read_self())
}

/// One loss series of `vigil_records_lost_total`: stage, cause, event (if
/// any), value. The series are those of the `vigil.telemetry.loss` records
/// (see `accounting.rs`), summed over CPUs and streams.
pub fn loss_series(stats: &Stats) -> Vec<(&'static str, &'static str, Option<&'static str>, u64)> {
    let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let drops = stats.kernel_drops_by_cpu();
    let mut out = Vec::new();
    for t in EventType::ALL {
        for cause in DropCause::ALL {
            let v = drops.iter().filter_map(|cpu| cpu.get(t as usize * DROP_MAX + cause as usize)).sum();
            out.push(("kernel", cause.error_type(), Some(t.event_name()), v));
        }
    }
    for t in EventType::ALL {
        out.push(("kernel", "probe_skipped", Some(t.event_name()), stats.program_recursion_misses(t).unwrap_or(0)));
    }
    for t in EventType::ALL {
        out.push(("agent", "queue_full", Some(t.event_name()), stats.queue_full(t)));
    }
    out.push(("agent", "queue_full", None, l(&stats.queue_full_untyped)));
    out.push(("agent", "malformed_record", None, l(&stats.decode_errors)));
    out.push(("agent", "missed_exec", Some(EventType::Exec.event_name()), l(&stats.missed_exec)));
    out.push(("agent", "missed_exit", Some(EventType::Exit.event_name()), l(&stats.missed_exit)));
    out.push(("export", "export_failed", None, l(&stats.export_failed)));
    out.push(("export", "export_rejected", None, l(&stats.export_rejected)));
    out.push(("export", "export_failed", Some(crate::accounting::SPANS), l(&stats.spans_export_failed)));
    out.push(("export", "export_rejected", Some(crate::accounting::SPANS), l(&stats.spans_rejected)));
    out.push(("export", "spool_full", None, l(&stats.spool.full)));
    out.push(("export", "spool_corrupt", None, l(&stats.spool.corrupt)));
    out.push(("export", "spool_full", Some(crate::accounting::SPANS), l(&stats.spool.spans_full)));
    out.push(("export", "spool_corrupt", Some(crate::accounting::SPANS), l(&stats.spool.spans_corrupt)));
    out
}

fn render(stats: &Stats, ready: bool, process: Option<ProcessUsage>) -> String {
    let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut e = Exposition { out: String::with_capacity(8192) };
    e.family("vigil_build_info", "gauge", "vigil's version, as a label; always 1.");
    e.sample("vigil_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
    e.single(
        "vigil_ready",
        "gauge",
        "1 when /readyz answers 200 (probes attached, exports not failing for too long), else 0.",
        u8::from(ready),
    );

    e.family("vigil_kernel_records_emitted_total", "counter", "Records the probes wrote to the ring buffer, by event.");
    for t in EventType::ALL {
        e.sample("vigil_kernel_records_emitted_total", &[("event", t.event_name())], l(stats.kernel_emitted(t)));
    }
    e.single("vigil_records_received_total", "counter", "Records read from the ring buffer.", l(&stats.received));
    e.family("vigil_records_received_by_event_total", "counter", "Records read from the ring buffer, by event.");
    for t in EventType::ALL {
        e.sample("vigil_records_received_by_event_total", &[("event", t.event_name())], stats.received_of(t));
    }
    e.family("vigil_records_excluded_total", "counter", "Records excluded in the kernel by [filters], by event and filter (not lost).");
    for (t, r, v) in stats.excluded_series() {
        e.sample("vigil_records_excluded_total", &[("event", t.event_name()), ("filter", r.as_str())], v);
    }
    e.family(
        "vigil_records_suppressed_total",
        "counter",
        "Bulk records over their process's rate limit, by event (summarised in vigil.telemetry.suppressed records, not lost).",
    );
    for (t, v) in stats.ratelimited_series() {
        e.sample("vigil_records_suppressed_total", &[("event", t.event_name())], v);
    }
    e.single("vigil_ringbuf_used_bytes", "gauge", "Bytes waiting in the ring buffer at the last read.", l(&stats.ringbuf_used_bytes));
    e.single("vigil_ringbuf_size_bytes", "gauge", "Size of the ring buffer.", l(&stats.ringbuf_size_bytes));
    e.single("vigil_processes_tracked", "gauge", "Processes in the process table.", l(&stats.processes_tracked));
    e.single("vigil_records_mapped_total", "counter", "Records mapped to OTLP log records.", l(&stats.mapped));
    e.single(
        "vigil_records_exported_total",
        "counter",
        "Log records (events and vigil's own) accepted by the collector, including those it rejected in a partial success.",
        l(&stats.exported),
    );
    e.single("vigil_export_failed_total", "counter", "Log records whose export failed for good.", l(&stats.export_failed));
    e.single(
        "vigil_export_rejected_total",
        "counter",
        "Log records the collector rejected in a partial success.",
        l(&stats.export_rejected),
    );
    e.single(
        "vigil_spans_exported_total",
        "counter",
        "Spans accepted by the collector, including rejected ones.",
        l(&stats.spans_exported),
    );
    e.single("vigil_spans_export_failed_total", "counter", "Spans whose export failed for good.", l(&stats.spans_export_failed));
    e.single("vigil_spans_rejected_total", "counter", "Spans the collector rejected in a partial success.", l(&stats.spans_rejected));
    let sp = &stats.spool;
    e.single("vigil_spool_spooled_total", "counter", "Log records written to the on-disk spool.", l(&sp.spooled));
    e.single("vigil_spool_replayed_total", "counter", "Log records delivered from the spool.", l(&sp.replayed));
    e.single("vigil_spool_bytes", "gauge", "Bytes in the spool.", l(&sp.bytes));
    e.single("vigil_spool_segments", "gauge", "Requests (segment files) in the spool.", l(&sp.segments));
    e.single("vigil_spool_corrupt_segments_total", "counter", "Spool segments found corrupt and deleted.", l(&sp.corrupt_segments));

    e.family(
        "vigil_records_lost_total",
        "counter",
        "Records lost, by stage, cause and event: the series of the vigil.telemetry.loss records, summed over CPUs.",
    );
    for (stage, cause, event, v) in loss_series(stats) {
        match event {
            Some(ev) => e.sample("vigil_records_lost_total", &[("stage", stage), ("cause", cause), ("event", ev)], v),
            None => e.sample("vigil_records_lost_total", &[("stage", stage), ("cause", cause)], v),
        }
    }

    e.single(
        "vigil_queue_depth",
        "gauge",
        "Records waiting in the queue between the ring-buffer reader and the map stage.",
        l(&stats.queue_depth),
    );
    e.single(
        "vigil_in_flight",
        "gauge",
        "Records and spans handed to the export stage and not yet delivered or failed.",
        l(&stats.in_flight),
    );
    e.single("vigil_export_retries_total", "counter", "Export attempts that failed and were retried.", l(&stats.export_retries));
    e.family("vigil_export_latency_seconds", "summary", "Time spent in successful export calls, retries included.");
    e.sample("vigil_export_latency_seconds_sum", &[], ns_to_seconds(l(&stats.export_latency_ns_sum)));
    e.sample("vigil_export_latency_seconds_count", &[], l(&stats.export_calls_ok));
    e.single(
        "vigil_last_export_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful export (0: none yet).",
        ns_to_seconds(l(&stats.last_export_ok_ns)),
    );
    e.single(
        "vigil_export_failing_since_timestamp_seconds",
        "gauge",
        "Unix time since when exports have been failing without a success in between (0: not failing).",
        ns_to_seconds(l(&stats.export_failing_since_ns)),
    );

    let runs: Vec<(EventType, u64)> = EventType::ALL.into_iter().filter_map(|t| stats.program_run_count(t).map(|v| (t, v))).collect();
    if !runs.is_empty() {
        e.family("vigil_program_runs_total", "counter", "Runs of the eBPF program serving each event (needs BPF run-time statistics).");
        for (t, v) in runs {
            e.sample("vigil_program_runs_total", &[("event", t.event_name())], v);
        }
    }
    let times: Vec<(EventType, u64)> = EventType::ALL.into_iter().filter_map(|t| stats.program_run_time_ns(t).map(|v| (t, v))).collect();
    if !times.is_empty() {
        e.family(
            "vigil_program_run_seconds_total",
            "counter",
            "Time spent in the eBPF program serving each event (needs BPF run-time statistics).",
        );
        for (t, v) in times {
            e.sample("vigil_program_run_seconds_total", &[("event", t.event_name())], ns_to_seconds(v));
        }
    }
    let skipped: Vec<(EventType, u64)> =
        EventType::ALL.into_iter().filter_map(|t| stats.program_recursion_misses(t).map(|v| (t, v))).collect();
    if !skipped.is_empty() {
        e.family(
            "vigil_program_skipped_total",
            "counter",
            "Runs of the eBPF program serving each event that the kernel skipped (recursion): events never seen.",
        );
        for (t, v) in skipped {
            e.sample("vigil_program_skipped_total", &[("event", t.event_name())], v);
        }
    }
    e.family(
        "vigil_processes_missed_total",
        "counter",
        "Processes whose exec or exit was never observed (found by reconciling with /proc).",
    );
    e.sample("vigil_processes_missed_total", &[("kind", "exec")], l(&stats.missed_exec));
    e.sample("vigil_processes_missed_total", &[("kind", "exit")], l(&stats.missed_exit));

    if let Some(p) = process {
        e.single("vigil_process_resident_memory_bytes", "gauge", "Resident memory of the vigil process.", p.resident_bytes);
        e.single("vigil_process_cpu_seconds_total", "counter", "User and system CPU time of the vigil process.", p.cpu_seconds);
    }
    e.out
}

// ---------------------------------------------------------------------------
// Reading the endpoint back (`vigil status`)
// ---------------------------------------------------------------------------

/// One sample of a text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels, in order, values unescaped.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Parse the samples of a Prometheus text exposition (comments skipped;
/// lines that do not parse are ignored).
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).filter_map(parse_sample).collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices();
        let mut key = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '}' if key.is_empty() => {
                    end = Some(i + 1);
                    break;
                }
                ',' | ' ' if key.is_empty() => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                c => value.push(c),
                            },
                            c => value.push(c),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        }
        rest = &after[end?..];
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample { name, labels, value })
}

/// Sum of the samples named `name` whose labels include all of `labels`
/// (`None` if there is none).
pub fn metric_sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = false;
    let mut sum = 0.0;
    for s in samples.iter().filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(v))) {
        found = true;
        sum += s.value;
    }
    found.then_some(sum)
}

/// A readable summary for `vigil status`, from the `/readyz` answer
/// (status code and body) and the `/metrics` text.
pub fn status_report(url: &str, ready_code: u16, ready_body: &str, metrics: &str) -> String {
    let samples = parse_metrics(metrics);
    let get = |name: &str| metric_sum(&samples, name, &[]);
    let int = |name: &str| get(name).map_or_else(|| "?".to_owned(), |v| format!("{v:.0}"));
    let mut out = String::new();
    let state = if ready_code == 200 {
        "ready".to_owned()
    } else {
        let reason = ready_body.trim();
        format!("NOT READY ({})", reason.strip_prefix("not ready: ").unwrap_or(reason))
    };
    let _ = writeln!(out, "vigil at {url}");
    let _ = writeln!(out, "  status:    {state}");
    let _ = writeln!(
        out,
        "  records:   {} received, {} exported, {} in flight, queue depth {}",
        int("vigil_records_received_total"),
        int("vigil_records_exported_total"),
        int("vigil_in_flight"),
        int("vigil_queue_depth")
    );
    let lost: Vec<String> = ["kernel", "agent", "export"]
        .iter()
        .map(|stage| {
            let v = metric_sum(&samples, "vigil_records_lost_total", &[("stage", stage)]);
            format!("{stage} {}", v.map_or_else(|| "?".to_owned(), |v| format!("{v:.0}")))
        })
        .collect();
    let _ = writeln!(out, "  lost:      {}", lost.join(", "));
    let latency = match (get("vigil_export_latency_seconds_sum"), get("vigil_export_latency_seconds_count")) {
        (Some(sum), Some(count)) if count > 0.0 => format!("mean latency {:.1} ms over {count:.0} calls", sum / count * 1000.0),
        _ => "no successful export yet".to_owned(),
    };
    let _ = writeln!(
        out,
        "  export:    {latency}, {} retries, {} spans exported",
        int("vigil_export_retries_total"),
        int("vigil_spans_exported_total")
    );
    let memory = get("vigil_process_resident_memory_bytes").map_or_else(|| "?".to_owned(), |b| format!("{:.1} MiB", b / 1048576.0));
    let cpu = get("vigil_process_cpu_seconds_total").map_or_else(|| "?".to_owned(), |s| format!("{s:.2} s"));
    let _ = writeln!(out, "  process:   {memory} resident, {cpu} CPU");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(stats: Arc<Stats>) -> HealthState {
        HealthState {
            stats,
            probes_attached: Arc::new(AtomicBool::new(true)),
            shutdown: CancellationToken::new(),
            unready_after: Duration::from_secs(30),
        }
    }

    fn get(path: &str) -> Request {
        Request { method: "GET".into(), path: path.into() }
    }

    /// The value of the one sample of `name` with exactly `labels`.
    fn value_of(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
        let samples = parse_metrics(text);
        let matching: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == name && s.labels.len() == labels.len() && labels.iter().all(|(k, v)| s.label(k) == Some(v)))
            .collect();
        assert_eq!(matching.len(), 1, "one sample {name}{labels:?} in:\n{text}");
        matching[0].value
    }

    #[test]
    fn request_line_is_parsed_and_headers_ignored() {
        assert_eq!(parse_request(b"GET /metrics HTTP/1.1\r\nHost: x"), Parsed::Incomplete);
        let req = |p: &str| Parsed::Request(Request { method: "GET".into(), path: p.into() });
        assert_eq!(parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"), req("/metrics"));
        assert_eq!(parse_request(b"GET /readyz?verbose=1 HTTP/1.0\r\n\r\n"), req("/readyz"));
        assert_eq!(parse_request(b"GET http://127.0.0.1:9464/healthz HTTP/1.1\r\n\r\n"), req("/healthz"));
        assert_eq!(parse_request(b"GET /healthz HTTP/1.1\n\n"), req("/healthz"), "bare line feeds");
        assert!(matches!(parse_request(b"HEAD / HTTP/1.1\r\n\r\n"), Parsed::Request(r) if r.method == "HEAD"));
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET /metrics HTTP/2.0\r\n\r\n",
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(parse_request(bad), Parsed::Bad(_)), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn routes() {
        let st = state(Arc::new(Stats::default()));
        let now = crate::clock::unix_now_ns();
        let r = respond(&get("/healthz"), &st, now);
        assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
        assert_eq!(respond(&get("/readyz"), &st, now).status, 200);
        let m = respond(&get("/metrics"), &st, now);
        assert_eq!((m.status, m.content_type), (200, METRICS_CONTENT_TYPE));
        assert!(m.body.contains("\nvigil_ready 1\n"), "{}", m.body);
        assert_eq!(respond(&get("/"), &st, now).status, 404);
        assert_eq!(respond(&get("/metrics/x"), &st, now).status, 404);
        let post = respond(&Request { method: "POST".into(), path: "/metrics".into() }, &st, now);
        assert_eq!(post.status, 405);
        assert!(String::from_utf8_lossy(&post.to_bytes()).contains("\r\nAllow: GET, HEAD\r\n"));
        let head = respond(&Request { method: "HEAD".into(), path: "/healthz".into() }, &st, now);
        assert_eq!((head.status, head.body.as_str(), head.content_length), (200, "", 3));
    }

    #[test]
    fn response_has_length_and_closes() {
        let wire = String::from_utf8(Response::text(503, "not ready: x\n").to_bytes()).expect("utf-8");
        assert!(wire.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{wire}");
        assert!(wire.contains("\r\nContent-Length: 13\r\n") && wire.contains("\r\nConnection: close\r\n"), "{wire}");
        assert!(wire.ends_with("\r\n\r\nnot ready: x\n"), "{wire}");
    }

    #[test]
    fn readiness_follows_attach_export_failures_and_shutdown() {
        let stats = Arc::new(Stats::default());
        let st = state(stats.clone());
        st.probes_attached.store(false, Ordering::Release);
        let now = 1_000_000_000_000u64;
        let r = respond(&get("/readyz"), &st, now);
        assert_eq!((r.status, r.body.as_str()), (503, "not ready: probes not attached yet\n"));
        st.probes_attached.store(true, Ordering::Release);
        assert_eq!(st.readiness(now), Ok(()));
        // Failing, but not for longer than the threshold yet.
        stats.export_failing_since_ns.store(now - 30_000_000_000, Ordering::Relaxed);
        assert_eq!(st.readiness(now), Ok(()), "exactly the threshold is still ready");
        let why = st.readiness(now + 1).expect_err("past the threshold");
        assert!(why.starts_with("exports failing for 30.0 s") && why.contains("health.unready_after_s = 30"), "{why}");
        assert!(respond(&get("/metrics"), &st, now + 1).body.contains("\nvigil_ready 0\n"));
        // One successful export clears it.
        stats.export_failing_since_ns.store(0, Ordering::Relaxed);
        assert_eq!(st.readiness(now + 1), Ok(()));
        st.shutdown.cancel();
        assert_eq!(st.readiness(now), Err("shutting down".into()));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("x\ny"), "x\\ny");
        assert_eq!(escape_label_value("vigil.process.exec"), "vigil.process.exec");
        let mut e = Exposition { out: String::new() };
        e.family("m", "counter", "help with \\ and\nnewline");
        e.sample("m", &[("a", "q\"\\\n"), ("b", "")], 3);
        assert_eq!(e.out, "# HELP m help with \\\\ and\\nnewline\n# TYPE m counter\nm{a=\"q\\\"\\\\\\n\",b=\"\"} 3\n");
        // Read back, the values are the originals.
        let s = parse_metrics(&e.out);
        assert_eq!(s[0].labels, vec![("a".to_owned(), "q\"\\\n".to_owned()), ("b".to_owned(), String::new())]);
    }

    #[test]
    fn exposition_is_well_formed() {
        let text = render(&Stats::default(), true, Some(ProcessUsage { resident_bytes: 4096, cpu_seconds: 1.5 }));
        let mut typed = std::collections::HashMap::new();
        let mut seen_families = Vec::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert!(["counter", "gauge", "summary"].contains(&kind), "{line}");
                assert!(typed.insert(name.to_owned(), kind.to_owned()).is_none(), "TYPE of {name} twice");
                assert!(!seen_families.contains(&name.to_owned()), "{name}'s samples are not together");
                seen_families.push(name.to_owned());
                current = Some(name.to_owned());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().expect("HELP name");
                assert!(!typed.contains_key(name), "HELP of {name} after its TYPE");
            } else {
                let s = parse_sample(line).unwrap_or_else(|| panic!("sample line does not parse: {line}"));
                let family = current.as_deref().expect("a sample after a TYPE");
                let kind = &typed[family];
                assert!(s.name.starts_with("vigil_"), "{line}");
                assert!(s.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{line}");
                match kind.as_str() {
                    "counter" => assert!(s.name == family && s.name.ends_with("_total"), "counter {line}"),
                    "summary" => assert!(s.name == format!("{family}_sum") || s.name == format!("{family}_count"), "{line}"),
                    _ => assert_eq!(s.name, family, "{line}"),
                }
            }
        }
        assert!(text.ends_with('\n'));
        assert_eq!(value_of(&text, "vigil_process_resident_memory_bytes", &[]), 4096.0);
        assert_eq!(value_of(&text, "vigil_process_cpu_seconds_total", &[]), 1.5);
        assert!(!text.contains("vigil_program_runs_total"), "run counts are left out while unavailable");
    }

    #[test]
    fn values_are_those_of_stats() {
        let s = Stats::default();
        let set = |c: &AtomicU64, v: u64| c.store(v, Ordering::Relaxed);
        set(&s.received, 101);
        set(&s.mapped, 97);
        set(&s.exported, 90);
        set(&s.export_failed, 5);
        set(&s.export_rejected, 2);
        set(&s.spans_exported, 40);
        set(&s.spans_export_failed, 3);
        set(&s.spans_rejected, 1);
        set(&s.queue_depth, 7);
        set(&s.in_flight, 11);
        set(&s.export_retries, 4);
        set(&s.export_latency_ns_sum, 2_500_000_000);
        set(&s.export_calls_ok, 10);
        set(&s.last_export_ok_ns, 1_700_000_000_500_000_000);
        set(&s.missed_exec, 6);
        set(&s.missed_exit, 8);
        set(&s.decode_errors, 2);
        set(s.kernel_emitted(EventType::Exit), 55);
        s.count_queue_full(&(EventType::Fork as u16).to_ne_bytes());
        s.count_queue_full(&[0]);
        // Two CPUs: ringbuf_full of exec 3 + 4, too large of exit 1.
        let mut cpu0 = vec![0; crate::abi::EV_SLOTS * DROP_MAX];
        let mut cpu1 = cpu0.clone();
        cpu0[EventType::Exec as usize * DROP_MAX + DropCause::RingbufFull as usize] = 3;
        cpu1[EventType::Exec as usize * DROP_MAX + DropCause::RingbufFull as usize] = 4;
        cpu1[EventType::Exit as usize * DROP_MAX + DropCause::TooLarge as usize] = 1;
        s.set_kernel_drops_by_cpu(vec![cpu0, cpu1]);
        s.program(EventType::Exec).store(1000, 2_000_000_000, 9);
        s.set_bpf_run_stats_enabled(true);
        set(s.excluded_of(EventType::FileOpen, crate::filters::FilterReason::Uid), 12);
        set(s.ratelimited_of(EventType::NetworkConnect), 21);

        let text = render(&s, false, None);
        let v = |name: &str, labels: &[(&str, &str)]| value_of(&text, name, labels);
        assert_eq!(v("vigil_records_excluded_total", &[("event", "vigil.file.open"), ("filter", "uid")]), 12.0);
        assert_eq!(text.matches("\nvigil_records_excluded_total{").count(), 1, "only series that counted");
        assert_eq!(v("vigil_records_suppressed_total", &[("event", "vigil.network.connect")]), 21.0);
        assert_eq!(v("vigil_ready", &[]), 0.0);
        assert_eq!(v("vigil_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
        assert_eq!(v("vigil_records_received_total", &[]), 101.0);
        assert_eq!(v("vigil_records_mapped_total", &[]), 97.0);
        assert_eq!(v("vigil_records_exported_total", &[]), 90.0);
        assert_eq!(v("vigil_export_failed_total", &[]), 5.0);
        assert_eq!(v("vigil_export_rejected_total", &[]), 2.0);
        assert_eq!(v("vigil_spans_exported_total", &[]), 40.0);
        assert_eq!(v("vigil_spans_export_failed_total", &[]), 3.0);
        assert_eq!(v("vigil_spans_rejected_total", &[]), 1.0);
        assert_eq!(v("vigil_queue_depth", &[]), 7.0);
        assert_eq!(v("vigil_in_flight", &[]), 11.0);
        assert_eq!(v("vigil_export_retries_total", &[]), 4.0);
        assert_eq!(v("vigil_export_latency_seconds_sum", &[]), 2.5);
        assert_eq!(v("vigil_export_latency_seconds_count", &[]), 10.0);
        assert_eq!(v("vigil_last_export_success_timestamp_seconds", &[]), 1_700_000_000.5);
        assert_eq!(v("vigil_export_failing_since_timestamp_seconds", &[]), 0.0);
        assert_eq!(v("vigil_kernel_records_emitted_total", &[("event", "vigil.process.exit")]), 55.0);
        assert_eq!(v("vigil_kernel_records_emitted_total", &[("event", "vigil.process.exec")]), 0.0);
        let lost = |stage: &str, cause: &str, event: Option<&str>| {
            let mut labels = vec![("stage", stage), ("cause", cause)];
            labels.extend(event.map(|e| ("event", e)));
            v("vigil_records_lost_total", &labels)
        };
        assert_eq!(lost("kernel", "ringbuf_full", Some("vigil.process.exec")), 7.0, "summed over CPUs");
        assert_eq!(lost("kernel", "record_too_large", Some("vigil.process.exit")), 1.0);
        assert_eq!(lost("kernel", "map_full", Some("vigil.process.fork")), 0.0);
        assert_eq!(lost("kernel", "probe_skipped", Some("vigil.process.exec")), 9.0);
        assert_eq!(lost("agent", "queue_full", Some("vigil.process.fork")), 1.0);
        assert_eq!(lost("agent", "queue_full", None), 1.0, "untyped queue drops");
        assert_eq!(lost("agent", "malformed_record", None), 2.0);
        assert_eq!(lost("agent", "missed_exec", Some("vigil.process.exec")), 6.0);
        assert_eq!(lost("agent", "missed_exit", Some("vigil.process.exit")), 8.0);
        assert_eq!(lost("export", "export_failed", None), 5.0);
        assert_eq!(lost("export", "export_rejected", None), 2.0);
        assert_eq!(lost("export", "export_failed", Some("span")), 3.0);
        assert_eq!(lost("export", "export_rejected", Some("span")), 1.0);
        let samples = parse_metrics(&text);
        assert_eq!(metric_sum(&samples, "vigil_records_lost_total", &[("stage", "kernel")]), Some(17.0));
        assert_eq!(v("vigil_program_runs_total", &[("event", "vigil.process.exec")]), 1000.0);
        assert_eq!(v("vigil_program_run_seconds_total", &[("event", "vigil.process.exec")]), 2.0);
        assert_eq!(v("vigil_program_skipped_total", &[("event", "vigil.process.exec")]), 9.0);
        assert!(!text.contains("vigil_program_runs_total{event=\"vigil.process.fork\"}"), "unread programs are left out");
        assert_eq!(v("vigil_processes_missed_total", &[("kind", "exec")]), 6.0);
        assert_eq!(v("vigil_processes_missed_total", &[("kind", "exit")]), 8.0);
        assert!(!text.contains("vigil_process_resident_memory_bytes"), "no process usage given");
    }

    #[test]
    fn process_usage_parses_proc_files() {
        let stat = "42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 123 456 789";
        let status = "Name:\tvigil\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t3\n";
        assert_eq!(ProcessUsage::parse(stat, status, 100), Some(ProcessUsage { resident_bytes: 2048 * 1024, cpu_seconds: 3.0 }));
        assert_eq!(ProcessUsage::parse("42 (x) S 1", status, 100), None);
        let own = ProcessUsage::read_self().expect("/proc/self readable");
        assert!(own.resident_bytes > 0);
    }

    #[test]
    fn status_report_summarises() {
        let s = Stats::default();
        s.received.store(1234, Ordering::Relaxed);
        s.exported.store(1200, Ordering::Relaxed);
        s.export_latency_ns_sum.store(30_000_000, Ordering::Relaxed);
        s.export_calls_ok.store(10, Ordering::Relaxed);
        s.export_failed.store(3, Ordering::Relaxed);
        let text = render(&s, true, Some(ProcessUsage { resident_bytes: 3 << 20, cpu_seconds: 0.5 }));
        let report = status_report("http://127.0.0.1:9464", 200, "ready\n", &text);
        assert!(report.contains("status:    ready\n"), "{report}");
        assert!(report.contains("1234 received, 1200 exported"), "{report}");
        assert!(report.contains("lost:      kernel 0, agent 0, export 3"), "{report}");
        assert!(report.contains("mean latency 3.0 ms over 10 calls"), "{report}");
        assert!(report.contains("3.0 MiB resident, 0.50 s CPU"), "{report}");
        let report = status_report("u", 503, "not ready: probes not attached yet\n", &text);
        assert!(report.contains("status:    NOT READY (probes not attached yet)"), "{report}");
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let cfg = HealthConfig { listen: "127.0.0.1:0".into(), unready_after_s: 30 };
        let attached = Arc::new(AtomicBool::new(false));
        let server =
            spawn(&cfg, Arc::new(Stats::default()), attached.clone(), CancellationToken::new()).await.expect("health server starts");
        let addr = server.local_addr();
        let fetch = |request: &'static [u8]| async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(request).await.expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).await.expect("read");
            out
        };
        assert!(fetch(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").await.starts_with("HTTP/1.1 503 "));
        attached.store(true, Ordering::Release);
        let ok = fetch(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("\r\n\r\nready\n"), "{ok}");
        assert!(fetch(b"GET /metrics HTTP/1.1\r\n\r\n").await.contains("vigil_process_resident_memory_bytes "));
        assert!(fetch(b"GET / HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404 "));
        assert!(fetch(b"BAD\r\n\r\n").await.starts_with("HTTP/1.1 400 "));
        let mut big = b"GET /".to_vec();
        big.resize(MAX_REQUEST_BYTES, b'a');
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(&big).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        drop(server);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(addr).await.is_err(), "the listener closes with the server");
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn ring_fill_table_size_and_per_event_reads_are_exposed() {
        let stats = Stats::default();
        stats.ringbuf_used_bytes.store(4096, Ordering::Relaxed);
        stats.ringbuf_size_bytes.store(8 << 20, Ordering::Relaxed);
        stats.processes_tracked.store(77, Ordering::Relaxed);
        let exec = (EventType::Exec as u16).to_ne_bytes();
        stats.count_received(&exec);
        stats.count_received(&exec);
        let text = prometheus_text(&stats, true);
        for line in [
            "vigil_ringbuf_used_bytes 4096",
            "vigil_ringbuf_size_bytes 8388608",
            "vigil_processes_tracked 77",
            "vigil_records_received_by_event_total{event=\"vigil.process.exec\"} 2",
            "vigil_records_received_total 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
    }
}
