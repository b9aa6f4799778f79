//! OTLP/gRPC exporter (tonic, optional gzip). Requests are sent as the
//! pre-encoded bytes the map stage built (see `otel::wire`), through a
//! codec that writes them as they are.

use super::{Batch, Delivered, ExportError};
use crate::config::ExportConfig;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// The OTLP logs export method.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// Sends requests over one lazily connected channel.
#[derive(Debug)]
pub struct GrpcExporter {
    url: String,
    client: tonic::client::Grpc<Channel>,
    metadata: MetadataMap,
}

/// Writes pre-encoded request bytes; decodes the response with prost.
#[derive(Debug, Clone, Copy, Default)]
struct PreEncoded;

impl Encoder for PreEncoded {
    type Item = bytes::Bytes;
    type Error = Status;
    fn encode(&mut self, item: bytes::Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl Decoder for PreEncoded {
    type Item = ExportLogsServiceResponse;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ExportLogsServiceResponse>, Status> {
        prost::Message::decode(src).map(Some).map_err(|e| Status::internal(format!("decoding the export response: {e}")))
    }
}

impl Codec for PreEncoded {
    type Encode = bytes::Bytes;
    type Decode = ExportLogsServiceResponse;
    type Encoder = PreEncoded;
    type Decoder = PreEncoded;
    fn encoder(&mut self) -> PreEncoded {
        PreEncoded
    }
    fn decoder(&mut self) -> PreEncoded {
        PreEncoded
    }
}

/// OTLP retry rules for gRPC status codes. RESOURCE_EXHAUSTED is retryable
/// only with RetryInfo, which this build does not parse yet, so it is
/// treated as permanent.
pub fn is_retryable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled | Code::OutOfRange | Code::DataLoss)
}

impl GrpcExporter {
    /// A client for `url` (e.g. `http://127.0.0.1:4317`). No connection is
    /// made until the first export.
    pub fn new(url: &str, cfg: &ExportConfig) -> Result<Self, ExportError> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| ExportError::Permanent(format!("bad endpoint {url}: {e}")))?
            .timeout(cfg.timeout())
            .connect_timeout(cfg.timeout());
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

    /// One attempt.
    pub async fn export(&mut self, req: &Batch) -> Result<Delivered, ExportError> {
        self.client
            .ready()
            .await
            .map_err(|e| ExportError::Retryable { message: format!("connecting to {}: {e}", self.url), delay: None })?;
        let mut request = tonic::Request::new(req.bytes.clone());
        *request.metadata_mut() = self.metadata.clone();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(EXPORT_PATH);
        match self.client.unary(request, path, PreEncoded).await {
            Ok(resp) => {
                let rejected = resp.into_inner().partial_success.map_or(0, |p| u64::try_from(p.rejected_log_records).unwrap_or(0));
                Ok(Delivered { rejected })
            }
            Err(status) if is_retryable(status.code()) => {
                Err(ExportError::Retryable { message: format!("{}: {}", status.code(), status.message()), delay: None })
            }
            Err(status) => Err(ExportError::Permanent(format!("{}: {}", status.code(), status.message()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification_follows_otlp() {
        for c in [Code::Unavailable, Code::DeadlineExceeded, Code::Aborted, Code::Cancelled, Code::OutOfRange, Code::DataLoss] {
            assert!(is_retryable(c), "{c:?}");
        }
        for c in [
            Code::InvalidArgument,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::Unimplemented,
            Code::Internal,
            Code::ResourceExhausted,
        ] {
            assert!(!is_retryable(c), "{c:?}");
        }
    }
}
