//! Export stage: batches of log records -> OTLP/gRPC, OTLP/HTTP or stdout.
//!
//! Guarantees: a batch is either delivered (the receiver accepted it, in
//! whole or in part), or counted as failed with its record count. Errors are
//! classified as the OTLP specification says: only retryable ones are retried,
//! with exponential backoff, until the retry budget runs out; a partial
//! success is never retried and its rejected records are counted.

pub mod grpc;
pub mod http;
pub mod stdout;

use crate::config::{Config, StdoutFormat};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
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

/// The outcome of a delivered request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Records the receiver said it rejected (partial success).
    pub rejected: u64,
}

/// Build one export request: one Resource, one scope, the records.
pub fn build_request(resource: &Resource, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource.clone()),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "vigil".into(),
                    version: crate::otel::resource::VERSION.into(),
                    ..InstrumentationScope::default()
                }),
                log_records: records,
                schema_url: crate::otel::attr::SCHEMA_URL.into(),
            }],
            schema_url: crate::otel::attr::SCHEMA_URL.into(),
        }],
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
    /// The exporter the configuration asks for.
    pub fn from_config(cfg: &Config) -> Result<Self, ExportError> {
        let e = &cfg.export;
        Ok(match cfg.logs_url() {
            None => Exporter::Stdout(stdout::StdoutExporter::new(e.stdout_format == StdoutFormat::OtlpJson)),
            Some(url) => match e.protocol {
                crate::config::Protocol::Grpc => Exporter::Grpc(grpc::GrpcExporter::new(&url, e)?),
                crate::config::Protocol::HttpProtobuf => Exporter::Http(http::HttpExporter::new(&url, e)?),
            },
        })
    }

    /// A short description for start-up logs.
    pub fn describe(&self) -> String {
        match self {
            Exporter::Grpc(g) => format!("OTLP/gRPC {}", g.url()),
            Exporter::Http(h) => format!("OTLP/HTTP {}", h.url()),
            Exporter::Stdout(s) => format!("stdout ({})", if s.is_json() { "otlp-json" } else { "text" }),
        }
    }

    /// One attempt.
    pub async fn export_once(&mut self, req: &ExportLogsServiceRequest) -> Result<Delivered, ExportError> {
        match self {
            Exporter::Grpc(g) => g.export(req).await,
            Exporter::Http(h) => h.export(req).await,
            Exporter::Stdout(s) => s.export(req),
        }
    }

    /// Export with retries: retryable failures are retried with exponential
    /// backoff (100 ms doubling to 5 s, honouring server-requested delays)
    /// until `budget` has elapsed.
    pub async fn export(&mut self, req: &ExportLogsServiceRequest, budget: Duration) -> Result<Delivered, ExportError> {
        let start = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.export_once(req).await {
                Err(ExportError::Retryable { message, delay }) => {
                    let wait = delay.unwrap_or(backoff);
                    if start.elapsed() + wait > budget {
                        return Err(ExportError::Retryable { message: format!("{message} (gave up after {:?})", start.elapsed()), delay });
                    }
                    tracing::warn!(%message, ?wait, "export failed, retrying");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }
}

/// Records in a request.
pub fn record_count(req: &ExportLogsServiceRequest) -> u64 {
    req.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len() as u64).sum()
}
