//! CRI (Kubernetes Container Runtime Interface, `runtime.v1`):
//! `RuntimeService/ContainerStatus` over the runtime's unix socket
//! (containerd, CRI-O).
//!
//! Only the few messages and fields used are declared, by hand, with the
//! field numbers of `k8s.io/cri-api/pkg/apis/runtime/v1/api.proto`; prost
//! skips every other field. Used: `metadata.name` -> `container.name`,
//! `image.image` -> `container.image.name` and tags, `image_ref` ->
//! `container.image.id`, and the labels the kubelet sets
//! (`io.kubernetes.pod.name`, `io.kubernetes.pod.namespace`).

use super::{split_image, ContainerMeta, LookupError};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};

/// The method called.
pub const CONTAINER_STATUS_PATH: &str = "/runtime.v1.RuntimeService/ContainerStatus";

/// `runtime.v1.ContainerStatusRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerStatusRequest {
    /// Full or unique-prefix container id.
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// Ask for the runtime's extra `info` map (not used).
    #[prost(bool, tag = "2")]
    pub verbose: bool,
}

/// `runtime.v1.ContainerStatusResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerStatusResponse {
    /// The container.
    #[prost(message, optional, tag = "1")]
    pub status: Option<ContainerStatus>,
}

/// `runtime.v1.ContainerStatus` (the fields used).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerStatus {
    /// Container id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Name and attempt.
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<ContainerMetadata>,
    /// The image reference the container was created with.
    #[prost(message, optional, tag = "8")]
    pub image: Option<ImageSpec>,
    /// The image the runtime resolved (digest or id).
    #[prost(string, tag = "9")]
    pub image_ref: String,
    /// Labels (the kubelet's `io.kubernetes.*` among them).
    #[prost(map = "string, string", tag = "12")]
    pub labels: HashMap<String, String>,
}

/// `runtime.v1.ContainerMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerMetadata {
    /// Container name (the pod spec's container name under Kubernetes).
    #[prost(string, tag = "1")]
    pub name: String,
    /// Restart attempt.
    #[prost(uint32, tag = "2")]
    pub attempt: u32,
}

/// `runtime.v1.ImageSpec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageSpec {
    /// Image reference.
    #[prost(string, tag = "1")]
    pub image: String,
    /// The reference as the user wrote it.
    #[prost(string, tag = "18")]
    pub user_specified_image: String,
}

/// A prost codec for one request and one response type (tonic 0.14 moved
/// its own to a separate crate; this is all that is needed).
#[derive(Debug)]
pub struct ProstCodec<E, D>(PhantomData<fn(E) -> D>);

impl<E, D> Default for ProstCodec<E, D> {
    fn default() -> Self {
        ProstCodec(PhantomData)
    }
}

impl<E: prost::Message + Send + 'static, D: prost::Message + Default + Send + 'static> Encoder for ProstCodec<E, D> {
    type Item = E;
    type Error = tonic::Status;
    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        item.encode(dst).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl<E: prost::Message + Send + 'static, D: prost::Message + Default + Send + 'static> Decoder for ProstCodec<E, D> {
    type Item = D;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, tonic::Status> {
        D::decode(src).map(Some).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl<E: prost::Message + Send + 'static, D: prost::Message + Default + Send + 'static> Codec for ProstCodec<E, D> {
    type Encode = E;
    type Decode = D;
    type Encoder = ProstCodec<E, D>;
    type Decoder = ProstCodec<E, D>;
    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::default()
    }
    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::default()
    }
}

/// A lazily connected CRI client.
#[derive(Debug, Clone)]
pub struct CriClient {
    channel: Channel,
    socket: PathBuf,
}

impl CriClient {
    /// A client of the runtime at `socket` (connects on first use,
    /// reconnects after failures).
    pub fn new(socket: PathBuf, timeout: Duration) -> Self {
        let path = socket.clone();
        // The URI is required by tonic but unused: the connector dials the socket.
        let channel = Endpoint::from_static("http://cri.invalid").connect_timeout(timeout).timeout(timeout).connect_with_connector_lazy(
            tower::service_fn(move |_: tonic::transport::Uri| {
                let path = path.clone();
                async move { tokio::net::UnixStream::connect(path).await.map(hyper_util::rt::TokioIo::new) }
            }),
        );
        CriClient { channel, socket }
    }

    /// `ContainerStatus` of `id`.
    pub async fn container_status(&self, id: &str) -> Result<ContainerMeta, LookupError> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready().await.map_err(|e| self.transport_error(&e))?;
        let req = ContainerStatusRequest { container_id: id.to_owned(), verbose: false };
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(CONTAINER_STATUS_PATH);
        let resp = grpc
            .unary(tonic::Request::new(req), path, ProstCodec::<ContainerStatusRequest, ContainerStatusResponse>::default())
            .await
            .map_err(|s| self.status_error(&s))?;
        Ok(to_meta(resp.into_inner().status.unwrap_or_default()))
    }

    fn transport_error(&self, e: &(dyn std::error::Error + 'static)) -> LookupError {
        // Find the I/O error under tonic's transport error, if any.
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = cur {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                return LookupError::from_io(io);
            }
            cur = err.source();
        }
        if !self.socket.exists() {
            return LookupError::SocketMissing;
        }
        LookupError::Io(e.to_string())
    }

    fn status_error(&self, s: &tonic::Status) -> LookupError {
        match s.code() {
            tonic::Code::NotFound => LookupError::NotFound,
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled if s.message().contains("Timeout") => LookupError::Timeout,
            tonic::Code::Unavailable => {
                use std::error::Error as _;
                match s.source() {
                    Some(src) => self.transport_error(src),
                    None => LookupError::Grpc(s.code()),
                }
            }
            code => LookupError::Grpc(code),
        }
    }
}

/// The container metadata in a `ContainerStatus`.
pub fn to_meta(st: ContainerStatus) -> ContainerMeta {
    let nonempty = |s: String| Some(s).filter(|s| !s.is_empty());
    let mut m = ContainerMeta { name: st.metadata.map(|md| md.name).and_then(nonempty), ..ContainerMeta::default() };
    let image = st.image.map(|i| if i.user_specified_image.is_empty() { i.image } else { i.user_specified_image }).and_then(nonempty);
    if let Some(reference) = image {
        let (name, tag) = split_image(&reference);
        m.image_name = Some(name);
        m.image_tags = tag.into_iter().collect();
    }
    m.image_id = nonempty(st.image_ref);
    m.pod_name = st.labels.get("io.kubernetes.pod.name").cloned().and_then(nonempty);
    m.pod_namespace = st.labels.get("io.kubernetes.pod.namespace").cloned().and_then(nonempty);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn status_round_trips_and_maps() {
        let st = ContainerStatus {
            id: "c".into(),
            metadata: Some(ContainerMetadata { name: "app".into(), attempt: 1 }),
            image: Some(ImageSpec { image: "docker.io/library/redis:7".into(), user_specified_image: String::new() }),
            image_ref: "sha256:feed".into(),
            labels: [("io.kubernetes.pod.name", "redis-0"), ("io.kubernetes.pod.namespace", "db")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        };
        let resp = ContainerStatusResponse { status: Some(st) };
        let back = ContainerStatusResponse::decode(resp.encode_to_vec().as_slice()).expect("decodes");
        let m = to_meta(back.status.expect("status"));
        assert_eq!(m.name.as_deref(), Some("app"));
        assert_eq!(m.image_name.as_deref(), Some("docker.io/library/redis"));
        assert_eq!(m.image_tags, ["7"]);
        assert_eq!(m.image_id.as_deref(), Some("sha256:feed"));
        assert_eq!((m.pod_name.as_deref(), m.pod_namespace.as_deref()), (Some("redis-0"), Some("db")));
    }
}
