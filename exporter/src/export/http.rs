//! OTLP/HTTP exporter: protobuf bodies, optional gzip.

use super::Batch;
use super::{Delivered, ExportError};
use crate::config::ExportConfig;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message;
use std::io::Write;
use std::time::Duration;

/// POSTs requests to the logs URL.
#[derive(Debug)]
pub struct HttpExporter {
    url: String,
    client: reqwest::Client,
    gzip: bool,
    headers: reqwest::header::HeaderMap,
}

/// OTLP/HTTP retry rules: 429, 502, 503 and 504 are retryable.
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// A `Retry-After` value in seconds (the HTTP-date form is not honoured).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl HttpExporter {
    /// A client for the full logs URL (`.../v1/logs`).
    pub fn new(url: &str, cfg: &ExportConfig) -> Result<Self, ExportError> {
        let client =
            reqwest::Client::builder().timeout(cfg.timeout()).build().map_err(|e| ExportError::Permanent(format!("HTTP client: {e}")))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name =
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|e| ExportError::Permanent(format!("header {k}: {e}")))?;
            let value = reqwest::header::HeaderValue::from_str(v).map_err(|e| ExportError::Permanent(format!("header {k}: {e}")))?;
            headers.insert(name, value);
        }
        Ok(HttpExporter { url: url.to_owned(), client, gzip: cfg.gzip, headers })
    }

    /// The logs URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One attempt.
    pub async fn export(&mut self, req: &Batch) -> Result<Delivered, ExportError> {
        let mut body = req.bytes.clone();
        let mut builder = self.client.post(&self.url).headers(self.headers.clone()).header("content-type", "application/x-protobuf");
        if self.gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
            enc.write_all(&body).map_err(|e| ExportError::Permanent(format!("gzip: {e}")))?;
            body = enc.finish().map_err(|e| ExportError::Permanent(format!("gzip: {e}")))?.into();
            builder = builder.header("content-encoding", "gzip");
        }
        let resp = builder
            .body(body)
            .send()
            .await
            .map_err(|e| ExportError::Retryable { message: format!("POST {}: {e}", self.url), delay: None })?;
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let bytes = resp.bytes().await.map_err(|e| ExportError::Retryable { message: format!("reading response: {e}"), delay: None })?;
        match status {
            200..=299 => {
                let rejected = ExportLogsServiceResponse::decode(bytes.as_ref())
                    .ok()
                    .and_then(|r| r.partial_success)
                    .map_or(0, |p| u64::try_from(p.rejected_log_records).unwrap_or(0));
                Ok(Delivered { rejected })
            }
            s if is_retryable(s) => Err(ExportError::Retryable { message: format!("HTTP {s}"), delay: retry_after }),
            s => Err(ExportError::Permanent(format!("HTTP {s}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(200)])))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_rules() {
        for s in [429, 502, 503, 504] {
            assert!(is_retryable(s));
        }
        for s in [400, 401, 403, 404, 413, 500] {
            assert!(!is_retryable(s));
        }
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
