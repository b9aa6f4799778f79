//! OTLP/HTTP exporter: protobuf bodies, optional gzip. Logs batches go to
//! the logs URL, traces batches to the traces URL.

use super::{Batch, Delivered, ExportError, ExportResponse, Signal};
use crate::config::ExportConfig;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;

/// POSTs requests to the URL of their signal.
#[derive(Debug)]
pub struct HttpExporter {
    logs_url: String,
    traces_url: String,
    client: reqwest::Client,
    gzip: bool,
    headers: reqwest::header::HeaderMap,
}

/// Items rejected according to a 2xx response body of `signal`'s service
/// (an empty or undecodable body means none).
fn rejected(signal: Signal, body: &[u8]) -> u64 {
    fn decode<R: ExportResponse>(body: &[u8]) -> u64 {
        R::decode(body).map_or(0, |r| r.rejected())
    }
    match signal {
        Signal::Logs => decode::<ExportLogsServiceResponse>(body),
        Signal::Traces => decode::<ExportTraceServiceResponse>(body),
    }
}

impl HttpExporter {
    /// A client for the full logs URL (`.../v1/logs`) and the full traces
    /// URL (`.../v1/traces`).
    pub fn new(logs_url: &str, traces_url: &str, cfg: &ExportConfig) -> Result<Self, ExportError> {
        super::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder().timeout(cfg.timeout());
        if [logs_url, traces_url].iter().any(|u| u.to_ascii_lowercase().starts_with("https://")) {
            builder = builder.tls_backend_preconfigured(super::tls::http_config(&cfg.tls)?);
        }
        let client = builder.build().map_err(|e| ExportError::Permanent(format!("HTTP client: {e}")))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name =
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|e| ExportError::Permanent(format!("header {k}: {e}")))?;
            let value = reqwest::header::HeaderValue::from_str(v).map_err(|e| ExportError::Permanent(format!("header {k}: {e}")))?;
            headers.insert(name, value);
        }
        Ok(HttpExporter { logs_url: logs_url.to_owned(), traces_url: traces_url.to_owned(), client, gzip: cfg.gzip, headers })
    }

    /// The URL batches of `signal` are POSTed to.
    pub fn url(&self, signal: Signal) -> &str {
        match signal {
            Signal::Logs => &self.logs_url,
            Signal::Traces => &self.traces_url,
        }
    }

    /// One attempt, to the URL of `req.signal`.
    pub async fn export(&mut self, req: &Batch) -> Result<Delivered, ExportError> {
        let url = self.url(req.signal);
        let mut body = req.bytes.clone();
        let mut builder = self.client.post(url).headers(self.headers.clone()).header("content-type", "application/x-protobuf");
        if self.gzip {
            body = super::gzip_fast(Vec::with_capacity(body.len() / 4), &body)
                .map_err(|e| ExportError::Permanent(format!("gzip: {e}")))?
                .into();
            builder = builder.header("content-encoding", "gzip");
        }
        let resp = builder
            .body(body)
            .send()
            .await
            .map_err(|e| ExportError::Retryable { message: format!("POST {url}: {}", super::grpc::error_chain(&e)), delay: None })?;
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = resp.bytes().await.map_err(|e| ExportError::Retryable { message: format!("reading response: {e}"), delay: None })?;
        match status {
            200..=299 => Ok(Delivered { rejected: rejected(req.signal, &bytes) }),
            s => Err(super::retry::classify_http(s, retry_after.as_deref(), &bytes, std::time::SystemTime::now())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::RequestEncoder;
    use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceRequest};
    use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceRequest};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use prost::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn url_per_signal() {
        let h = HttpExporter::new("http://c:4318/v1/logs", "http://c:4318/v1/traces", &ExportConfig::default()).expect("client");
        assert_eq!(h.url(Signal::Logs), "http://c:4318/v1/logs");
        assert_eq!(h.url(Signal::Traces), "http://c:4318/v1/traces");
    }

    #[test]
    fn partial_success_is_read_with_the_signal_response_type() {
        let traces = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 3, error_message: "no".into() }),
        };
        let logs = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess { rejected_log_records: 9, error_message: "no".into() }),
        };
        assert_eq!(rejected(Signal::Traces, &traces.encode_to_vec()), 3);
        assert_eq!(rejected(Signal::Logs, &logs.encode_to_vec()), 9);
        assert_eq!(rejected(Signal::Traces, b""), 0);
        assert_eq!(rejected(Signal::Logs, b"\xff\xff not protobuf"), 0);
    }

    /// Answers OTLP/HTTP requests (one per connection): /v1/logs with
    /// 7 rejected log records, /v1/traces with the span count as rejected
    /// spans, anything else 404. Returns the address and the requests seen.
    async fn collector() -> (std::net::SocketAddr, tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let head_end = loop {
                    let mut chunk = [0u8; 4096];
                    let n = conn.read(&mut chunk).await.expect("read");
                    assert!(n > 0, "request ended early");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let path = head.split_whitespace().nth(1).expect("path").to_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().expect("length"))
                    .expect("content-length");
                while buf.len() < head_end + len {
                    let mut chunk = [0u8; 4096];
                    let n = conn.read(&mut chunk).await.expect("read");
                    assert!(n > 0, "body ended early");
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[head_end..head_end + len].to_vec();
                let (status, answer) = match path.as_str() {
                    "/v1/logs" => {
                        ExportLogsServiceRequest::decode(body.as_slice()).expect("a logs request");
                        let p = ExportLogsPartialSuccess { rejected_log_records: 7, error_message: String::new() };
                        ("200 OK", ExportLogsServiceResponse { partial_success: Some(p) }.encode_to_vec())
                    }
                    "/v1/traces" => {
                        let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("a traces request");
                        let spans = req.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as i64).sum();
                        let p = ExportTracePartialSuccess { rejected_spans: spans, error_message: String::new() };
                        ("200 OK", ExportTraceServiceResponse { partial_success: Some(p) }.encode_to_vec())
                    }
                    _ => ("404 Not Found", Vec::new()),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    answer.len()
                );
                conn.write_all(resp.as_bytes()).await.expect("write");
                conn.write_all(&answer).await.expect("write");
                let _ = tx.send((path, body));
            }
        });
        (addr, rx)
    }

    #[tokio::test]
    async fn each_signal_goes_to_its_url() {
        let (addr, mut seen) = collector().await;
        let cfg = ExportConfig { gzip: false, ..ExportConfig::default() };
        let mut h = HttpExporter::new(&format!("http://{addr}/v1/logs"), &format!("http://{addr}/v1/traces"), &cfg).expect("client");
        let mut enc = RequestEncoder::new(&Resource::default());

        let spans = enc.encode_spans(vec![Span::default(), Span::default()]);
        assert_eq!(h.export(&spans).await.expect("traces delivered"), Delivered { rejected: 2 });
        assert_eq!(seen.recv().await, Some(("/v1/traces".to_owned(), spans.bytes.to_vec())));

        let logs = enc.encode(&[]);
        assert_eq!(h.export(&logs).await.expect("logs delivered"), Delivered { rejected: 7 });
        assert_eq!(seen.recv().await, Some(("/v1/logs".to_owned(), logs.bytes.to_vec())));

        let mut wrong = HttpExporter::new(&format!("http://{addr}/v1/logs"), &format!("http://{addr}/nope"), &cfg).expect("client");
        assert!(matches!(wrong.export(&spans).await, Err(ExportError::Permanent(m)) if m.starts_with("HTTP 404")));
    }
}
