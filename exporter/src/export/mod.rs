//! Export stage: batches of log records or spans -> OTLP/gRPC, OTLP/HTTP or
//! stdout. Every [`Batch`] says which [`Signal`] it carries; the exporters
//! route it to the matching OTLP service (gRPC method, HTTP URL, response
//! type).
//!
//! Guarantees: a batch is either delivered (the receiver accepted it, in
//! whole or in part), or counted as failed with its item count. Errors are
//! classified as the OTLP specification says: only retryable ones are retried,
//! with exponential backoff, until the retry budget runs out; a partial
//! success is never retried and its rejected records are counted.

pub mod deliver;
pub mod grpc;
pub mod http;
pub mod retry;
pub mod stdout;
pub mod tls;

/// `message` gzipped at the fastest level, appended to `out` (both
/// exporters). Level 1 against tonic's former level 6 on an open storm's
/// requests: a third of the time for ~15% more bytes (docs/performance.md);
/// a host agent's CPU is worth more than loopback or LAN bytes.
pub fn gzip_fast(out: Vec<u8>, message: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    enc.write_all(message)?;
    enc.finish()
}

use crate::config::{Config, StdoutFormat};
use crate::otel::resource::WorkloadResource;
use crate::otel::wire::{encode_request, encode_request_groups, EncodedLog, FramedLogs};
use crate::pipeline::LogBatch;
pub use crate::spool::Lane;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::time::Duration;
use thiserror::Error;

/// Why an export attempt failed.
#[derive(Debug, Error)]
pub enum ExportError {
    /// Worth trying again (after `delay` when the server asked for one).
    #[error("retryable export failure: {message}")]
    Retryable {
        /// what happened
        message: String,
        /// server-requested delay (RetryInfo / Retry-After)
        delay: Option<Duration>,
    },
    /// Will not succeed if repeated.
    #[error("permanent export failure: {0}")]
    Permanent(String),
}

/// The OTLP signal a batch carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `ExportLogsServiceRequest` (log records).
    Logs,
    /// `ExportTraceServiceRequest` (spans).
    Traces,
}

impl Signal {
    /// `logs` or `traces`, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Traces => "traces",
        }
    }
}

/// The outcome of a delivered request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Items of the batch's signal (log records or spans) the receiver said
    /// it rejected (partial success).
    pub rejected: u64,
}

/// An OTLP export response: how many items the receiver rejected.
pub trait ExportResponse: prost::Message + Default + Send + 'static {
    /// `partial_success.rejected_log_records` / `rejected_spans` (0 when
    /// absent; a negative count is read as 0).
    fn rejected(&self) -> u64;
}

impl ExportResponse for ExportLogsServiceResponse {
    fn rejected(&self) -> u64 {
        self.partial_success.as_ref().map_or(0, |p| u64::try_from(p.rejected_log_records).unwrap_or(0))
    }
}

impl ExportResponse for ExportTraceServiceResponse {
    fn rejected(&self) -> u64 {
        self.partial_success.as_ref().map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
    }
}

/// One encoded OTLP export request (`ExportLogsServiceRequest` or
/// `ExportTraceServiceRequest`, as `signal` says) and the number of items
/// in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Protobuf bytes, cheap to clone for retries.
    pub bytes: bytes::Bytes,
    /// Items in the request: log records (logs) or spans (traces).
    pub records: u64,
    /// Which request `bytes` holds.
    pub signal: Signal,
    /// The priority lane of its records (a request never mixes lanes): when
    /// the spool is full, bulk-lane requests are evicted first. Spans and
    /// vigil's own telemetry records are critical.
    pub lane: Lane,
}

impl Batch {
    /// The same request, tagged with the lane of its records.
    pub fn in_lane(mut self, lane: Lane) -> Self {
        self.lane = lane;
        self
    }

    /// Decode a logs batch into the opentelemetry-proto type (console
    /// output, tests). A traces batch does not decode as logs meaningfully:
    /// use [`Batch::decode_traces`].
    pub fn decode(&self) -> Result<ExportLogsServiceRequest, prost::DecodeError> {
        debug_assert_eq!(self.signal, Signal::Logs, "decode() on a traces batch");
        prost::Message::decode(self.bytes.as_ref())
    }

    /// Decode a traces batch into the opentelemetry-proto type.
    pub fn decode_traces(&self) -> Result<ExportTraceServiceRequest, prost::DecodeError> {
        debug_assert_eq!(self.signal, Signal::Traces, "decode_traces() on a logs batch");
        prost::Message::decode(self.bytes.as_ref())
    }
}

/// Builds requests: for log records from pre-encoded records with the
/// resource and the instrumentation scope encoded once; for spans with
/// prost (spans are far fewer than log records).
#[derive(Debug, Clone)]
pub struct RequestEncoder {
    /// Kept across requests so its allocation is reused (see
    /// [`encode_request`]).
    buf: bytes::BytesMut,
    resource: Vec<u8>,
    scope: Vec<u8>,
    resource_value: Resource,
    scope_value: InstrumentationScope,
}

impl RequestEncoder {
    /// An encoder for records of `resource`, scope `vigil`.
    pub fn new(resource: &Resource) -> Self {
        let scope = InstrumentationScope {
            name: "vigil".into(),
            version: crate::otel::resource::VERSION.into(),
            ..InstrumentationScope::default()
        };
        RequestEncoder {
            buf: bytes::BytesMut::new(),
            resource: resource.encode_to_vec(),
            scope: scope.encode_to_vec(),
            resource_value: resource.clone(),
            scope_value: scope,
        }
    }

    /// One `ExportLogsServiceRequest` holding `logs`.
    pub fn encode(&mut self, logs: &[EncodedLog]) -> Batch {
        let bytes = encode_request(&mut self.buf, &self.resource, &self.scope, crate::otel::attr::SCHEMA_URL, logs);
        Batch { bytes, records: logs.len() as u64, signal: Signal::Logs, lane: Lane::Critical }
    }

    /// One `ExportLogsServiceRequest` with one ResourceLogs per group: the
    /// host resource plus the group's workload attributes (`None`: the host
    /// resource alone), each encoded once beforehand.
    pub fn encode_groups(&mut self, groups: &[(Option<&WorkloadResource>, FramedLogs<'_>)]) -> Batch {
        let parts: Vec<(&[u8], &FramedLogs<'_>)> =
            groups.iter().map(|(w, logs)| (w.map_or(&[][..], |w| w.encoded.as_slice()), logs)).collect();
        let bytes = encode_request_groups(&mut self.buf, &self.resource, &self.scope, crate::otel::attr::SCHEMA_URL, &parts);
        let records = groups.iter().map(|(_, l)| l.count as u64).sum();
        Batch { bytes, records, signal: Signal::Logs, lane: Lane::Critical }
    }

    /// The request of `batch`: its buffer becomes the request without a
    /// copy of the records when they are all of one workload
    /// ([`LogBatch::take_request`], which empties the batch), otherwise
    /// [`RequestEncoder::encode_groups`] (the batch unchanged). The same
    /// bytes either way.
    pub fn encode_batch(&mut self, batch: &mut LogBatch) -> Batch {
        let records = batch.len() as u64;
        let (host, scope) = (&self.resource, &self.scope);
        let around = |w: Option<&WorkloadResource>, n| {
            crate::otel::wire::request_around(host, w.map_or(&[][..], |w| w.encoded.as_slice()), scope, crate::otel::attr::SCHEMA_URL, n)
        };
        match batch.take_request(around) {
            Some(bytes) => Batch { bytes, records, signal: Signal::Logs, lane: Lane::Critical },
            None => self.encode_groups(&batch.groups()),
        }
    }

    /// One `ExportTraceServiceRequest` with one ResourceSpans per group
    /// (host resource plus the group's workload attributes).
    pub fn encode_span_groups(&self, groups: Vec<(Option<std::sync::Arc<WorkloadResource>>, Vec<Span>)>) -> Batch {
        let records = groups.iter().map(|(_, s)| s.len() as u64).sum();
        let schema_url = crate::otel::attr::SCHEMA_URL.to_owned();
        let resource_spans = groups
            .into_iter()
            .map(|(w, spans)| {
                let mut resource = self.resource_value.clone();
                if let Some(w) = &w {
                    resource.attributes.extend(w.attributes.iter().cloned());
                }
                ResourceSpans {
                    resource: Some(resource),
                    scope_spans: vec![ScopeSpans { scope: Some(self.scope_value.clone()), spans, schema_url: schema_url.clone() }],
                    schema_url: schema_url.clone(),
                }
            })
            .collect();
        let req = ExportTraceServiceRequest { resource_spans };
        Batch { bytes: req.encode_to_vec().into(), records, signal: Signal::Traces, lane: Lane::Critical }
    }

    /// One `ExportTraceServiceRequest` holding `spans`: one ResourceSpans
    /// (the same resource as the logs) with one ScopeSpans (scope `vigil`).
    pub fn encode_spans(&self, spans: Vec<Span>) -> Batch {
        let records = spans.len() as u64;
        let schema_url = crate::otel::attr::SCHEMA_URL.to_owned();
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource_value.clone()),
                scope_spans: vec![ScopeSpans { scope: Some(self.scope_value.clone()), spans, schema_url: schema_url.clone() }],
                schema_url,
            }],
        };
        Batch { bytes: req.encode_to_vec().into(), records, signal: Signal::Traces, lane: Lane::Critical }
    }
}

/// Where batches go.
#[derive(Debug)]
pub enum Exporter {
    /// OTLP/gRPC.
    Grpc(grpc::GrpcExporter),
    /// OTLP/HTTP protobuf.
    Http(http::HttpExporter),
    /// Console.
    Stdout(stdout::StdoutExporter),
}

impl Exporter {
    /// The exporter the configuration asks for (logs and traces go through
    /// the same one; see [`Config::logs_url`] and [`Config::traces_url`]).
    pub fn from_config(cfg: &Config) -> Result<Self, ExportError> {
        let e = &cfg.export;
        tls::install_crypto_provider();
        let (Some(logs_url), Some(traces_url)) = (cfg.logs_url(), cfg.traces_url()) else {
            if !e.traces_endpoint.is_empty() {
                tracing::warn!(traces_endpoint = %e.traces_endpoint, "export.traces_endpoint is ignored without export.endpoint: printing to stdout");
            }
            return Ok(Exporter::Stdout(stdout::StdoutExporter::new(e.stdout_format == StdoutFormat::OtlpJson)));
        };
        Ok(match e.protocol {
            // One channel for both signals: `traces_url` is the endpoint too.
            crate::config::Protocol::Grpc => Exporter::Grpc(grpc::GrpcExporter::new(&logs_url, e)?),
            crate::config::Protocol::HttpProtobuf => Exporter::Http(http::HttpExporter::new(&logs_url, &traces_url, e)?),
        })
    }

    /// A short description for start-up logs.
    pub fn describe(&self) -> String {
        match self {
            Exporter::Grpc(g) => format!("OTLP/gRPC {}", g.url()),
            Exporter::Http(h) => format!("OTLP/HTTP logs {}, traces {}", h.url(Signal::Logs), h.url(Signal::Traces)),
            Exporter::Stdout(s) => format!("stdout ({})", if s.is_json() { "otlp-json" } else { "text" }),
        }
    }

    /// One attempt, to the service of the batch's signal.
    pub async fn export_once(&mut self, req: &Batch) -> Result<Delivered, ExportError> {
        match self {
            Exporter::Grpc(g) => g.export(req).await,
            Exporter::Http(h) => h.export(req).await,
            Exporter::Stdout(s) => s.export(req),
        }
    }

    /// Export with retries: retryable failures are retried with jittered
    /// exponential backoff ([`RetryPolicy`]), or after the delay the server
    /// asked for (RetryInfo, Retry-After), until the policy's budget would
    /// be exceeded. `Delivered::rejected` counts items of `req.signal`.
    ///
    /// Every failed attempt is recorded in `stats` as it happens
    /// (`export_failing_since_ns`, `export_retries`), so health checks see
    /// an unreachable collector while the retries are still running.
    pub async fn export(&mut self, req: &Batch, policy: &RetryPolicy, stats: &crate::stats::Stats) -> Result<Delivered, ExportError> {
        use std::sync::atomic::Ordering;
        let start = tokio::time::Instant::now();
        let mut backoff = retry::Backoff::new(policy.initial_backoff, policy.max_backoff);
        loop {
            let attempt = self.export_once(req).await;
            if attempt.is_err() {
                let now = crate::clock::unix_now_ns();
                let _ = stats.export_failing_since_ns.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            }
            match attempt {
                Err(ExportError::Retryable { message, delay }) => {
                    stats.export_retries.fetch_add(1, Ordering::Relaxed);
                    // A server-requested delay is honoured as it is (no
                    // jitter below it); else the backoff.
                    let wait = delay.unwrap_or_else(|| backoff.next_wait());
                    if start.elapsed() + wait > policy.budget {
                        return Err(ExportError::Retryable { message: format!("{message} (gave up after {:?})", start.elapsed()), delay });
                    }
                    tracing::warn!(%message, ?wait, "export failed, retrying");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }
}

/// How long and how often a batch is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first backoff (before jitter).
    pub initial_backoff: Duration,
    /// The backoff never grows beyond this.
    pub max_backoff: Duration,
    /// No retry starts that would end after this much time since the first
    /// attempt.
    pub budget: Duration,
}

impl RetryPolicy {
    /// `export.retry_*` of the configuration.
    pub fn from_config(e: &crate::config::ExportConfig) -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(e.retry_initial_backoff_ms),
            max_backoff: Duration::from_millis(e.retry_max_backoff_ms),
            budget: Duration::from_millis(e.retry_max_elapsed_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otel::{kv_int, kv_str};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
    use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Status};

    fn resource() -> Resource {
        Resource { attributes: vec![kv_str("service.name", "vigil"), kv_str("host.name", "h1")], ..Resource::default() }
    }

    fn span(n: u8, parent: Option<u8>) -> Span {
        Span {
            trace_id: vec![0xab; 16],
            span_id: vec![n; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: format!("process {n}"),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(n),
            end_time_unix_nano: 1_700_000_001_000_000_000,
            attributes: vec![kv_int("process.pid", i64::from(n)), kv_str("process.executable.name", "sh")],
            status: Some(Status { code: StatusCode::Ok as i32, message: String::new() }),
            ..Span::default()
        }
    }

    #[test]
    fn spans_round_trip_with_the_logs_resource_and_scope() {
        let mut enc = RequestEncoder::new(&resource());
        let spans = vec![span(1, None), span(2, Some(1)), span(3, Some(1))];
        let batch = enc.encode_spans(spans.clone());
        assert_eq!(batch.signal, Signal::Traces);
        assert_eq!(batch.records, 3);
        let req = batch.decode_traces().expect("decodes");
        assert_eq!(req.resource_spans.len(), 1);
        let rs = &req.resource_spans[0];
        assert_eq!(rs.resource.as_ref(), Some(&resource()));
        assert_eq!(rs.schema_url, crate::otel::attr::SCHEMA_URL);
        assert_eq!(rs.scope_spans.len(), 1);
        let ss = &rs.scope_spans[0];
        assert_eq!(ss.schema_url, crate::otel::attr::SCHEMA_URL);
        let scope = ss.scope.as_ref().expect("scope");
        assert_eq!((scope.name.as_str(), scope.version.as_str()), ("vigil", crate::otel::resource::VERSION));
        assert_eq!(ss.spans, spans);

        // The same resource and scope as the logs requests.
        let logs = enc.encode(&[]);
        assert_eq!(logs.signal, Signal::Logs);
        assert_eq!(logs.records, 0);
        let logs = logs.decode().expect("decodes");
        assert_eq!(logs.resource_logs[0].resource, rs.resource);
        assert_eq!(logs.resource_logs[0].scope_logs[0].scope.as_ref(), Some(scope));
    }

    #[test]
    fn encoder_reuses_its_buffer_once_a_request_is_dropped() {
        use crate::otel::wire::EncodedLog;
        let mut enc = RequestEncoder::new(&resource());
        // LogRecords holding only severity_number = i (field 2, varint).
        let logs: Vec<EncodedLog> = (1..=64u8).map(|i| EncodedLog(vec![0x10, i])).collect();
        let first = enc.encode(&logs);
        let (first_ptr, first_copy) = (first.bytes.as_ptr(), first.bytes.to_vec());
        drop(first);
        // Delivered and dropped: the next request is written into the same
        // allocation instead of fresh pages.
        let second = enc.encode(&logs);
        assert!(std::ptr::eq(second.bytes.as_ptr(), first_ptr), "allocation reused");
        assert_eq!(second.bytes.as_ref(), first_copy.as_slice());
        // Still in flight (a retry may resend it): the next request must not
        // touch its bytes.
        let third = enc.encode(&logs[..10]);
        assert!(!std::ptr::eq(third.bytes.as_ptr(), first_ptr));
        assert_eq!(second.bytes.as_ref(), first_copy.as_slice());
        let records = |b: &Batch| b.decode().expect("decodes").resource_logs[0].scope_logs[0].log_records.clone();
        let severities: Vec<i32> = records(&second).iter().map(|r| r.severity_number).collect();
        assert_eq!(severities, (1..=64).collect::<Vec<i32>>());
        assert_eq!(records(&third).len(), 10);
    }

    #[test]
    fn grouped_requests_reuse_the_buffer_too() {
        use crate::otel::resource::WorkloadResource;
        use crate::otel::wire::EncodedLog;
        let mut enc = RequestEncoder::new(&resource());
        let pod = WorkloadResource::new(vec![kv_str("k8s.pod.uid", "u")]);
        let logs: Vec<EncodedLog> = (1..=8u8).map(|i| EncodedLog(vec![0x10, i])).collect();
        let (a, b) = (crate::otel::wire::frame_logs(&logs[..4]), crate::otel::wire::frame_logs(&logs[4..]));
        let groups = [(None, FramedLogs { chunks: vec![&a], count: 4 }), (Some(&pod), FramedLogs { chunks: vec![&b], count: 4 })];
        let first = enc.encode_groups(&groups);
        let (ptr, copy) = (first.bytes.as_ptr(), first.bytes.to_vec());
        drop(first);
        let second = enc.encode_groups(&groups);
        assert!(std::ptr::eq(second.bytes.as_ptr(), ptr), "allocation reused once the request is dropped");
        assert_eq!(second.bytes.as_ref(), copy.as_slice());
        let req = second.decode().expect("decodes");
        assert_eq!((req.resource_logs.len(), second.records), (2, 8));
        assert_eq!(req.resource_logs[0].resource.as_ref(), Some(&resource()));
        let mut with_pod = resource();
        with_pod.attributes.push(kv_str("k8s.pod.uid", "u"));
        assert_eq!(req.resource_logs[1].resource.as_ref(), Some(&with_pod));
    }

    #[test]
    fn empty_span_batch_is_a_valid_request() {
        let batch = RequestEncoder::new(&resource()).encode_spans(Vec::new());
        assert_eq!((batch.signal, batch.records), (Signal::Traces, 0));
        assert!(batch.decode_traces().expect("decodes").resource_spans[0].scope_spans[0].spans.is_empty());
    }

    #[test]
    fn responses_report_rejected_items_of_their_signal() {
        let logs = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess { rejected_log_records: 7, error_message: "x".into() }),
        };
        let traces = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 4, error_message: "y".into() }),
        };
        let logs = ExportLogsServiceResponse::decode(logs.encode_to_vec().as_slice()).expect("decodes");
        let traces = ExportTraceServiceResponse::decode(traces.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!((logs.rejected(), traces.rejected()), (7, 4));
        assert_eq!(ExportTraceServiceResponse::default().rejected(), 0);
        let negative = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: -1, error_message: String::new() }),
        };
        assert_eq!(negative.rejected(), 0);
    }
}
