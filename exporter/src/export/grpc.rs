//! OTLP/gRPC exporter. Requests are sent as the pre-encoded bytes the map
//! stage built (see `otel::wire`), framed and (by default) gzipped here,
//! over a tonic [`Channel`] (HTTP/2, TLS, timeouts, lazy reconnects); the
//! export method and the response type follow the batch's [`Signal`].
//! Logs and traces share one channel.
//!
//! vigil frames the gRPC message itself rather than through
//! `tonic::client::Grpc`, which compresses at gzip level 6 with no way to
//! choose: at the fastest level (as the OTLP/HTTP exporter uses) gzip took
//! a third of the CPU time in an open storm (docs/performance.md), and the
//! request is not copied into another buffer before it is compressed.

use super::{Batch, Delivered, ExportError, ExportResponse, Signal};
use crate::config::ExportConfig;
use bytes::Bytes;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use std::io::Read;
use tonic::codegen::http;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// The OTLP export method for `signal`.
pub fn grpc_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    }
}

/// Largest response message accepted (decompressed).
const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Sends requests of both signals over one lazily connected channel.
#[derive(Debug)]
pub struct GrpcExporter {
    url: String,
    channel: Channel,
    /// The configured headers (gRPC metadata) and the fixed gRPC ones.
    headers: http::HeaderMap,
    gzip: bool,
}

/// An error with its sources (a TLS failure is several levels down).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A length-prefixed gRPC message: the compressed flag, the length (4
/// bytes, big endian), the message (gzipped when `gzip`).
pub fn frame(message: &[u8], gzip: bool) -> Result<Bytes, ExportError> {
    let out = vec![u8::from(gzip), 0, 0, 0, 0];
    let mut out = if gzip {
        super::gzip_fast(out, message).map_err(|e| ExportError::Permanent(format!("gzip: {e}")))?
    } else {
        let mut out = out;
        out.extend_from_slice(message);
        out
    };
    let len =
        u32::try_from(out.len() - 5).map_err(|_| ExportError::Permanent(format!("a {} byte request is too large for gRPC", out.len())))?;
    out[1..5].copy_from_slice(&len.to_be_bytes());
    Ok(out.into())
}

/// The message of a response body (its first length-prefixed message;
/// empty when there is none), decompressed when flagged.
pub fn unframe(body: &[u8], encoding: Option<&[u8]>) -> Result<Vec<u8>, Status> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let (flag, len) = match body {
        [flag, a, b, c, d, ..] => (*flag, u32::from_be_bytes([*a, *b, *c, *d]) as usize),
        _ => return Err(Status::internal(format!("a {} byte response is shorter than a gRPC message prefix", body.len()))),
    };
    let message =
        body.get(5..5 + len).ok_or_else(|| Status::internal(format!("response message of {len} bytes, {} received", body.len() - 5)))?;
    match (flag, encoding) {
        (0, _) if len <= MAX_RESPONSE_BYTES => Ok(message.to_vec()),
        (1, Some(b"gzip")) => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(message)
                .take(MAX_RESPONSE_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| Status::internal(format!("gunzip of the response: {e}")))?;
            if out.len() > MAX_RESPONSE_BYTES {
                return Err(Status::internal(format!("response larger than {MAX_RESPONSE_BYTES} bytes")));
            }
            Ok(out)
        }
        (0, _) => Err(Status::internal(format!("response message of {len} bytes is over {MAX_RESPONSE_BYTES}"))),
        (1, other) => Err(Status::internal(format!("compressed response with grpc-encoding {:?}", other.map(String::from_utf8_lossy)))),
        (f, _) => Err(Status::internal(format!("response message flag {f}"))),
    }
}

/// The gRPC status of a non-200 HTTP response without one (the gRPC
/// spec's HTTP to gRPC status mapping).
pub fn status_of_http(status: http::StatusCode) -> Status {
    let code = match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(code, format!("HTTP {status} without a gRPC status"))
}

impl GrpcExporter {
    /// A client for `url` (e.g. `http://127.0.0.1:4317`). No connection is
    /// made until the first export.
    pub fn new(url: &str, cfg: &ExportConfig) -> Result<Self, ExportError> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| ExportError::Permanent(format!("bad endpoint {url}: {e}")))?
            .timeout(cfg.timeout())
            .connect_timeout(cfg.timeout());
        let endpoint = if url.to_ascii_lowercase().starts_with("https://") {
            endpoint.tls_config(super::tls::grpc_config(&cfg.tls)?).map_err(|e| ExportError::Permanent(format!("TLS for {url}: {e}")))?
        } else {
            endpoint
        };
        let mut metadata = MetadataMap::new();
        for (k, v) in &cfg.headers {
            let key = MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                .map_err(|e| ExportError::Permanent(format!("header {k}: {e}")))?;
            let value = MetadataValue::try_from(v.as_str()).map_err(|e| ExportError::Permanent(format!("header {k}: {e}")))?;
            metadata.insert(key, value);
        }
        let mut headers = metadata.into_headers();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
        headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        headers.insert("grpc-accept-encoding", http::HeaderValue::from_static("gzip"));
        if cfg.gzip {
            headers.insert("grpc-encoding", http::HeaderValue::from_static("gzip"));
        }
        Ok(GrpcExporter { url: url.to_owned(), channel: endpoint.connect_lazy(), headers, gzip: cfg.gzip })
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One attempt, to the export method of `req.signal`.
    pub async fn export(&mut self, req: &Batch) -> Result<Delivered, ExportError> {
        match req.signal {
            Signal::Logs => self.unary::<ExportLogsServiceResponse>(req).await,
            Signal::Traces => self.unary::<ExportTraceServiceResponse>(req).await,
        }
    }

    async fn unary<R: ExportResponse>(&mut self, req: &Batch) -> Result<Delivered, ExportError> {
        let body = frame(&req.bytes, self.gzip)?;
        let mut request = http::Request::new(tonic::body::Body::new(http_body_util::Full::new(body)));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = http::Uri::from_static(grpc_path(req.signal));
        *request.headers_mut() = self.headers.clone();
        let transport = |what: &str, e: &dyn std::error::Error| ExportError::Retryable {
            message: format!("{what} {}: {}", self.url, error_chain(e)),
            delay: None,
        };
        let channel = tower::ServiceExt::ready(&mut self.channel).await.map_err(|e| transport("connecting to", &e))?;
        let response = tower::Service::call(channel, request).await.map_err(|e| transport("sending to", &e))?;
        let (parts, body) = response.into_parts();
        // An error before any message comes as headers only ("trailers-only").
        if let Some(status) = Status::from_header_map(&parts.headers).filter(|s| s.code() != Code::Ok) {
            return Err(super::retry::classify_grpc(&status));
        }
        if parts.status != http::StatusCode::OK {
            return Err(super::retry::classify_grpc(&status_of_http(parts.status)));
        }
        let collected = body.collect().await.map_err(|e| transport("reading the response from", &e))?;
        let status = collected.trailers().and_then(Status::from_header_map).or_else(|| Status::from_header_map(&parts.headers));
        match status {
            Some(s) if s.code() == Code::Ok => {}
            Some(s) => return Err(super::retry::classify_grpc(&s)),
            None => return Err(super::retry::classify_grpc(&Status::internal("the response has no grpc-status"))),
        }
        let encoding = parts.headers.get("grpc-encoding").map(http::HeaderValue::as_bytes);
        let message = unframe(&collected.to_bytes(), encoding).map_err(|s| super::retry::classify_grpc(&s))?;
        let response = R::decode(message.as_slice())
            .map_err(|e| super::retry::classify_grpc(&Status::internal(format!("decoding the export response: {e}"))))?;
        Ok(Delivered { rejected: response.rejected() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_method_per_signal() {
        assert_eq!(grpc_path(Signal::Logs), "/opentelemetry.proto.collector.logs.v1.LogsService/Export");
        assert_eq!(grpc_path(Signal::Traces), "/opentelemetry.proto.collector.trace.v1.TraceService/Export");
        for s in [Signal::Logs, Signal::Traces] {
            // A valid request path, as tonic needs it.
            let p = tonic::codegen::http::uri::PathAndQuery::from_static(grpc_path(s));
            assert_eq!(p.path(), grpc_path(s));
        }
    }

    #[test]
    fn bad_endpoint_is_permanent() {
        assert!(matches!(GrpcExporter::new("not a url", &ExportConfig::default()), Err(ExportError::Permanent(_))));
    }

    mod receiver {
        //! A logs + traces receiver on one port: logs answer 7 rejected
        //! records, traces as many rejected spans as they held.
        use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
        use opentelemetry_proto::tonic::collector::logs::v1::{
            ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
        };
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
        use opentelemetry_proto::tonic::collector::trace::v1::{
            ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
        };
        use std::sync::{Arc, Mutex};
        use tonic::codec::CompressionEncoding;
        use tonic::codegen::{http, BoxFuture, Service};

        /// A request received: the signal and its bytes (re-encoded).
        pub type Call = (&'static str, Vec<u8>);

        #[derive(Debug, Clone, Default)]
        pub struct Seen(pub Arc<Mutex<Vec<Call>>>);

        #[tonic::codegen::async_trait]
        impl LogsService for Seen {
            async fn export(
                &self,
                req: tonic::Request<ExportLogsServiceRequest>,
            ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
                self.0.lock().expect("lock").push(("logs", prost::Message::encode_to_vec(req.get_ref())));
                let p = ExportLogsPartialSuccess { rejected_log_records: 7, error_message: String::new() };
                Ok(tonic::Response::new(ExportLogsServiceResponse { partial_success: Some(p) }))
            }
        }

        #[tonic::codegen::async_trait]
        impl TraceService for Seen {
            async fn export(
                &self,
                req: tonic::Request<ExportTraceServiceRequest>,
            ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
                let spans = req.get_ref().resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as i64).sum();
                self.0.lock().expect("lock").push(("traces", prost::Message::encode_to_vec(req.get_ref())));
                let p = ExportTracePartialSuccess { rejected_spans: spans, error_message: String::new() };
                Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: Some(p) }))
            }
        }

        /// Routes by path between the two generated servers.
        #[derive(Clone)]
        struct Both(LogsServiceServer<Seen>, TraceServiceServer<Seen>);

        impl Service<http::Request<tonic::body::Body>> for Both {
            type Response = http::Response<tonic::body::Body>;
            type Error = std::convert::Infallible;
            type Future = BoxFuture<Self::Response, Self::Error>;
            fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
                if req.uri().path().starts_with("/opentelemetry.proto.collector.trace.v1.TraceService/") {
                    Box::pin(self.1.call(req))
                } else {
                    Box::pin(self.0.call(req))
                }
            }
        }

        /// Answers every logs export with `0`'s status.
        #[derive(Debug, Clone)]
        pub struct Failing(pub tonic::Code);

        #[tonic::codegen::async_trait]
        impl LogsService for Failing {
            async fn export(
                &self,
                _: tonic::Request<ExportLogsServiceRequest>,
            ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
                Err(tonic::Status::new(self.0, "refused by the test"))
            }
        }

        /// Starts a receiver that fails every logs export; returns its endpoint.
        pub async fn start_failing(code: tonic::Code) -> String {
            serve(LogsServiceServer::new(Failing(code)).accept_compressed(CompressionEncoding::Gzip)).await
        }

        /// Serves `svc` on a free loopback port; returns its endpoint.
        async fn serve<S>(svc: S) -> String
        where
            S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = std::convert::Infallible>
                + Clone
                + Send
                + 'static,
            S::Future: Send + 'static,
        {
            let incoming = tonic::transport::server::TcpIncoming::bind(([127, 0, 0, 1], 0).into()).expect("bind");
            let addr = incoming.local_addr().expect("addr");
            tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(svc, incoming));
            format!("http://{addr}")
        }

        /// Starts the receiver; returns its endpoint.
        pub async fn start(seen: Seen) -> String {
            serve(Both(
                LogsServiceServer::new(seen.clone()).accept_compressed(CompressionEncoding::Gzip),
                TraceServiceServer::new(seen).accept_compressed(CompressionEncoding::Gzip),
            ))
            .await
        }
    }

    #[tokio::test]
    async fn both_signals_share_one_channel_and_read_their_partial_success() {
        use crate::export::RequestEncoder;
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use opentelemetry_proto::tonic::trace::v1::Span;

        let seen = receiver::Seen::default();
        let url = receiver::start(seen.clone()).await;
        let mut g = GrpcExporter::new(&url, &ExportConfig::default()).expect("client");
        let mut enc = RequestEncoder::new(&Resource::default());
        let spans = enc.encode_spans(vec![Span::default(), Span::default(), Span::default()]);
        let logs = enc.encode(&[]);
        assert_eq!(g.export(&spans).await.expect("traces delivered"), Delivered { rejected: 3 });
        assert_eq!(g.export(&logs).await.expect("logs delivered"), Delivered { rejected: 7 });
        let seen = seen.0.lock().expect("lock").clone();
        assert_eq!(seen, vec![("traces", spans.bytes.to_vec()), ("logs", logs.bytes.to_vec())]);
    }

    /// The same requests arrive with gzip off (flag 0, no grpc-encoding).
    #[tokio::test]
    async fn uncompressed_requests_arrive_intact() {
        use crate::export::RequestEncoder;
        use opentelemetry_proto::tonic::resource::v1::Resource;
        let seen = receiver::Seen::default();
        let url = receiver::start(seen.clone()).await;
        let mut g = GrpcExporter::new(&url, &ExportConfig { gzip: false, ..ExportConfig::default() }).expect("client");
        let logs = RequestEncoder::new(&Resource::default()).encode(&[crate::otel::wire::EncodedLog(vec![0x09, 1, 2, 3, 4, 5, 6, 7, 8])]);
        assert_eq!(g.export(&logs).await.expect("delivered"), Delivered { rejected: 7 });
        assert_eq!(seen.0.lock().expect("lock").clone(), vec![("logs", logs.bytes.to_vec())]);
    }

    /// A status the server answers is classified as tonic's was: Unavailable
    /// is retried, InvalidArgument is not (the batch would never succeed).
    #[tokio::test]
    async fn error_statuses_are_classified() {
        use crate::export::RequestEncoder;
        use opentelemetry_proto::tonic::resource::v1::Resource;
        let logs = RequestEncoder::new(&Resource::default()).encode(&[]);
        let url = receiver::start_failing(Code::Unavailable).await;
        let mut g = GrpcExporter::new(&url, &ExportConfig::default()).expect("client");
        match g.export(&logs).await {
            Err(ExportError::Retryable { message, delay: None }) => {
                assert!(message.contains("Unavailable") && message.contains("refused by the test"), "{message}")
            }
            other => panic!("Unavailable: {other:?}"),
        }
        let url = receiver::start_failing(Code::InvalidArgument).await;
        let mut g = GrpcExporter::new(&url, &ExportConfig::default()).expect("client");
        match g.export(&logs).await {
            Err(ExportError::Permanent(message)) => assert!(message.contains("InvalidArgument"), "{message}"),
            other => panic!("InvalidArgument: {other:?}"),
        }
        // Nobody listening: a transport failure, retried.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let mut g = GrpcExporter::new(&url, &ExportConfig::default()).expect("client");
        assert!(matches!(g.export(&logs).await, Err(ExportError::Retryable { .. })));
    }

    #[test]
    fn messages_are_framed_and_unframed() {
        let msg: Vec<u8> = (0..10_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let plain = frame(&msg, false).expect("frame");
        assert_eq!(plain[0], 0);
        assert_eq!(u32::from_be_bytes([plain[1], plain[2], plain[3], plain[4]]) as usize, msg.len());
        assert_eq!(&plain[5..], &msg[..]);
        assert_eq!(unframe(&plain, None).expect("plain"), msg);
        let gz = frame(&msg, true).expect("frame");
        assert_eq!(gz[0], 1, "compressed flag");
        assert_eq!(u32::from_be_bytes([gz[1], gz[2], gz[3], gz[4]]) as usize, gz.len() - 5);
        assert!(gz.len() < msg.len() / 2, "compressed: {} bytes", gz.len());
        assert_eq!(unframe(&gz, Some(b"gzip")).expect("gzip"), msg);
        // Untrusted responses: errors, never panics.
        assert!(unframe(&gz, None).is_err(), "compressed without grpc-encoding");
        assert!(unframe(&gz[..gz.len() - 1], Some(b"gzip")).is_err(), "truncated");
        assert!(unframe(&[0, 0, 0], None).is_err(), "short prefix");
        assert!(unframe(&[7, 0, 0, 0, 0], None).is_err(), "unknown flag");
        assert_eq!(unframe(&[], None).expect("no message"), Vec::<u8>::new());
        assert_eq!(unframe(&[0, 0, 0, 0, 0], None).expect("empty message"), Vec::<u8>::new());
    }

    #[test]
    fn http_statuses_without_grpc_status_map_as_the_grpc_spec_says() {
        let code = |s: u16| status_of_http(http::StatusCode::from_u16(s).expect("status")).code();
        assert_eq!(
            [400, 401, 403, 404, 429, 502, 503, 504, 500].map(code),
            [
                Code::Internal,
                Code::Unauthenticated,
                Code::PermissionDenied,
                Code::Unimplemented,
                Code::Unavailable,
                Code::Unavailable,
                Code::Unavailable,
                Code::Unavailable,
                Code::Unknown
            ]
        );
    }
}
