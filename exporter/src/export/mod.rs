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
use crate::otel::wire::{encode_request, EncodedLog};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
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

/// The outcome of a delivered request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Records the receiver said it rejected (partial success).
    pub rejected: u64,
}

/// One encoded `ExportLogsServiceRequest` and the number of records in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Protobuf bytes, cheap to clone for retries.
    pub bytes: bytes::Bytes,
    /// Log records in the request.
    pub records: u64,
}

impl Batch {
    /// Decode into the opentelemetry-proto type (console output, tests).
    pub fn decode(&self) -> Result<ExportLogsServiceRequest, prost::DecodeError> {
        prost::Message::decode(self.bytes.as_ref())
    }
}

/// Builds requests from encoded records: the resource and the
/// instrumentation scope are encoded once.
#[derive(Debug, Clone)]
pub struct RequestEncoder {
    resource: Vec<u8>,
    scope: Vec<u8>,
}

impl RequestEncoder {
    /// An encoder for records of `resource`, scope `vigil`.
    pub fn new(resource: &Resource) -> Self {
        let scope = InstrumentationScope {
            name: "vigil".into(),
            version: crate::otel::resource::VERSION.into(),
            ..InstrumentationScope::default()
        };
        RequestEncoder { resource: resource.encode_to_vec(), scope: scope.encode_to_vec() }
    }

    /// One request holding `logs`.
    pub fn encode(&self, logs: &[EncodedLog]) -> Batch {
        let bytes = encode_request(&self.resource, &self.scope, crate::otel::attr::SCHEMA_URL, logs);
        Batch { bytes: bytes.into(), records: logs.len() as u64 }
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
    pub async fn export_once(&mut self, req: &Batch) -> Result<Delivered, ExportError> {
        match self {
            Exporter::Grpc(g) => g.export(req).await,
            Exporter::Http(h) => h.export(req).await,
            Exporter::Stdout(s) => s.export(req),
        }
    }

    /// Export with retries: retryable failures are retried with exponential
    /// backoff (100 ms doubling to 5 s, honouring server-requested delays)
    /// until `budget` has elapsed.
    pub async fn export(&mut self, req: &Batch, budget: Duration) -> Result<Delivered, ExportError> {
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
