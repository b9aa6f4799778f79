//! OTLP/gRPC exporter (tonic, optional gzip). Requests are sent as the
//! pre-encoded bytes the map stage built (see `otel::wire`), through a
//! codec that writes them as they are; the export method and the response
//! type follow the batch's [`Signal`]. Logs and traces share one channel.

use super::{Batch, Delivered, ExportError, ExportResponse, Signal};
use crate::config::ExportConfig;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use std::marker::PhantomData;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

/// The OTLP export method for `signal`.
pub fn grpc_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    }
}

/// Sends requests of both signals over one lazily connected channel.
#[derive(Debug)]
pub struct GrpcExporter {
    url: String,
    client: tonic::client::Grpc<Channel>,
    metadata: MetadataMap,
}

/// Writes pre-encoded request bytes; decodes the response (`R`, the
/// service's export response) with prost.
#[derive(Debug)]
struct PreEncoded<R>(PhantomData<fn() -> R>);

impl<R> PreEncoded<R> {
    fn new() -> Self {
        PreEncoded(PhantomData)
    }
}

impl<R> Encoder for PreEncoded<R> {
    type Item = bytes::Bytes;
    type Error = Status;
    fn encode(&mut self, item: bytes::Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl<R: ExportResponse> Decoder for PreEncoded<R> {
    type Item = R;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        R::decode(src).map(Some).map_err(|e| Status::internal(format!("decoding the export response: {e}")))
    }
}

impl<R: ExportResponse> Codec for PreEncoded<R> {
    type Encode = bytes::Bytes;
    type Decode = R;
    type Encoder = PreEncoded<R>;
    type Decoder = PreEncoded<R>;
    fn encoder(&mut self) -> PreEncoded<R> {
        PreEncoded::new()
    }
    fn decoder(&mut self) -> PreEncoded<R> {
        PreEncoded::new()
    }
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
        let mut client = tonic::client::Grpc::new(endpoint.connect_lazy()).max_decoding_message_size(16 << 20);
        if cfg.gzip {
            client = client.send_compressed(CompressionEncoding::Gzip).accept_compressed(CompressionEncoding::Gzip);
        }
        let mut metadata = MetadataMap::new();
        for (k, v) in &cfg.headers {
            let key = MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                .map_err(|e| ExportError::Permanent(format!("header {k}: {e}")))?;
            let value = MetadataValue::try_from(v.as_str()).map_err(|e| ExportError::Permanent(format!("header {k}: {e}")))?;
            metadata.insert(key, value);
        }
        Ok(GrpcExporter { url: url.to_owned(), client, metadata })
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
        self.client
            .ready()
            .await
            .map_err(|e| ExportError::Retryable { message: format!("connecting to {}: {}", self.url, error_chain(&e)), delay: None })?;
        let mut request = tonic::Request::new(req.bytes.clone());
        *request.metadata_mut() = self.metadata.clone();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(grpc_path(req.signal));
        match self.client.unary(request, path, PreEncoded::<R>::new()).await {
            Ok(resp) => Ok(Delivered { rejected: resp.into_inner().rejected() }),
            Err(status) => Err(super::retry::classify_grpc(&status)),
        }
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

        /// Starts the receiver; returns its endpoint.
        pub async fn start(seen: Seen) -> String {
            let incoming = tonic::transport::server::TcpIncoming::bind(([127, 0, 0, 1], 0).into()).expect("bind");
            let addr = incoming.local_addr().expect("addr");
            let svc = Both(
                LogsServiceServer::new(seen.clone()).accept_compressed(CompressionEncoding::Gzip),
                TraceServiceServer::new(seen).accept_compressed(CompressionEncoding::Gzip),
            );
            tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(svc, incoming));
            format!("http://{addr}")
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
}
