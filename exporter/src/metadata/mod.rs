//! Optional container and pod metadata: names, images, pod names,
//! namespaces, labels and owning workloads, from the container runtime
//! (Docker Engine API, CRI) and the Kubernetes API.
//!
//! Guarantees:
//! - Every lookup is off by default ([`crate::config::MetadataConfig`]).
//! - The map stage never waits: [`Metadata::resolve`] answers from memory at
//!   once. A container not looked up yet is queued for a background task
//!   (bounded queue; when full the lookup is skipped and counted) and
//!   reported as [`Lookup::Pending`]; a failed lookup as
//!   [`Lookup::Unavailable`] with a short reason (`timeout`,
//!   `connection_refused`, `not_found`, `http_500`, ...). The ids from the
//!   cgroup path stay in place either way.
//! - Container answers are cached (at most `cache_max` entries, the oldest
//!   evicted first); failures are retried after `negative_ttl_s`. Each
//!   lookup is given up after `timeout_ms`; at most [`MAX_CONCURRENT`] run at
//!   once.
//! - Pods come from one node-scoped list + watch of the Kubernetes API
//!   ([`kubernetes`]), never from one request per record.
//! - [`Metadata::epoch`] grows whenever an answer changes what `resolve`
//!   returns, so callers can cache what they build from it.

pub mod cri;
pub mod docker;
pub mod http;
pub mod kubernetes;

use crate::config::MetadataConfig;
use crate::workload::Workload;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Container lookups running at once, at most.
pub const MAX_CONCURRENT: usize = 8;
/// Container lookups waiting, at most (beyond: skipped, counted).
pub const QUEUE_MAX: usize = 1024;

/// What a container runtime says about a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    /// `container.name`.
    pub name: Option<String>,
    /// `container.image.name` (without tag or digest).
    pub image_name: Option<String>,
    /// `container.image.tags`.
    pub image_tags: Vec<String>,
    /// `container.image.id` (runtime-specific, e.g. `sha256:...`).
    pub image_id: Option<String>,
    /// `k8s.pod.name` from the runtime's labels (CRI, cri-dockerd).
    pub pod_name: Option<String>,
    /// `k8s.namespace.name` from the runtime's labels.
    pub pod_namespace: Option<String>,
}

/// What the Kubernetes API says about a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodMeta {
    /// `k8s.pod.uid`.
    pub uid: String,
    /// `k8s.pod.name`.
    pub name: String,
    /// `k8s.namespace.name`.
    pub namespace: String,
    /// `k8s.pod.label.<key>`, sorted by key.
    pub labels: Vec<(String, String)>,
    /// Owning workload: (`k8s.<kind>.name` key, name), outermost last
    /// (e.g. the ReplicaSet, then its Deployment).
    pub owners: Vec<(&'static str, String)>,
}

/// The state of one lookup at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    /// Known.
    Ready(Arc<T>),
    /// Asked, no answer yet (reason: why it is not known yet).
    Pending(&'static str),
    /// Failed (reason).
    Unavailable(String),
}

impl<T> Lookup<T> {
    /// `vigil.metadata.*.status`: `ok`, `pending` or `unavailable`.
    pub fn status(&self) -> &'static str {
        match self {
            Lookup::Ready(_) => "ok",
            Lookup::Pending(_) => "pending",
            Lookup::Unavailable(_) => "unavailable",
        }
    }

    /// `vigil.metadata.*.reason` (none when known).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Lookup::Ready(_) => None,
            Lookup::Pending(r) => Some(r),
            Lookup::Unavailable(r) => Some(r),
        }
    }

    /// The answer, when known.
    pub fn ready(&self) -> Option<&T> {
        match self {
            Lookup::Ready(v) => Some(v),
            _ => None,
        }
    }
}

/// Why a lookup failed; [`LookupError::reason`] is the attribute value.
#[derive(Debug, Error)]
pub enum LookupError {
    /// No answer within `metadata.timeout_ms`.
    #[error("timed out")]
    Timeout,
    /// Nothing listens on the socket or port.
    #[error("connection refused")]
    ConnectionRefused,
    /// The socket file does not exist.
    #[error("socket missing")]
    SocketMissing,
    /// The runtime does not know the container (HTTP 404, gRPC NOT_FOUND).
    #[error("not found")]
    NotFound,
    /// Any other HTTP status.
    #[error("HTTP status {0}")]
    Http(u16),
    /// Any other gRPC status.
    #[error("gRPC status {0:?}")]
    Grpc(tonic::Code),
    /// The answer did not parse.
    #[error("undecodable answer: {0}")]
    Decode(String),
    /// TLS set-up or handshake failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// Any other I/O or protocol error.
    #[error("I/O: {0}")]
    Io(String),
}

impl LookupError {
    /// A short token for `vigil.metadata.*.reason`.
    pub fn reason(&self) -> String {
        match self {
            LookupError::Timeout => "timeout".into(),
            LookupError::ConnectionRefused => "connection_refused".into(),
            LookupError::SocketMissing => "socket_missing".into(),
            LookupError::NotFound => "not_found".into(),
            LookupError::Http(code) => format!("http_{code}"),
            LookupError::Grpc(code) => format!("grpc_{}", grpc_code_name(*code)),
            LookupError::Decode(_) => "decode_error".into(),
            LookupError::Tls(_) => "tls_error".into(),
            LookupError::Io(_) => "io_error".into(),
        }
    }

    /// Classify an I/O error from connecting or talking.
    pub fn from_io(e: &std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused => LookupError::ConnectionRefused,
            std::io::ErrorKind::NotFound => LookupError::SocketMissing,
            std::io::ErrorKind::TimedOut => LookupError::Timeout,
            _ => LookupError::Io(e.to_string()),
        }
    }
}

fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// A problem with the metadata configuration found at start-up.
#[derive(Debug, Error)]
pub enum MetadataError {
    /// The Kubernetes lookup cannot start.
    #[error("metadata.kubernetes: {0}")]
    Kubernetes(String),
}

/// What is known about a workload's metadata at one moment. `None`: no
/// lookup applies (not enabled, or nothing to look up).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadMeta {
    /// From the container runtime.
    pub container: Option<Lookup<ContainerMeta>>,
    /// From the Kubernetes API.
    pub pod: Option<Lookup<PodMeta>>,
}

/// Lookup counters (cumulative).
#[derive(Debug, Default)]
pub struct MetadataStats {
    /// Container lookups started.
    pub lookups: AtomicU64,
    /// Container lookups that failed (timeouts included).
    pub failures: AtomicU64,
    /// Container lookups skipped because the queue was full.
    pub skipped: AtomicU64,
    /// Kubernetes (re)lists.
    pub k8s_lists: AtomicU64,
    /// Kubernetes list or watch failures.
    pub k8s_failures: AtomicU64,
}

/// Which runtime API answers for a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Docker Engine API.
    Docker,
    /// CRI RuntimeService.
    Cri,
}

#[derive(Debug)]
enum State {
    InFlight,
    Ready(Arc<ContainerMeta>),
    Failed(String),
}

#[derive(Debug)]
struct Entry {
    state: State,
    at: Instant,
}

/// Container id -> what the runtime said, bounded.
#[derive(Debug)]
struct Cache {
    map: HashMap<String, Entry>,
    max: usize,
    negative_ttl: Duration,
}

impl Cache {
    /// Make room for one entry: drop the oldest eighth when full.
    fn make_room(&mut self) {
        if self.map.len() < self.max {
            return;
        }
        let mut ages: Vec<(Instant, String)> = self.map.iter().map(|(k, e)| (e.at, k.clone())).collect();
        ages.sort();
        for (_, k) in ages.into_iter().take((self.max / 8).max(1)) {
            self.map.remove(&k);
        }
    }
}

#[derive(Debug)]
struct Request {
    id: String,
    source: Source,
}

/// Handle on the lookups (cheap to clone).
#[derive(Debug, Clone)]
pub struct Metadata {
    cache: Arc<Mutex<Cache>>,
    tx: mpsc::Sender<Request>,
    docker: bool,
    cri: bool,
    pods: Option<Arc<kubernetes::PodStore>>,
    epoch: Arc<AtomicU64>,
    stats: Arc<MetadataStats>,
    _stop: Arc<DropGuard>,
}

/// The container runtime clients.
#[derive(Debug, Clone)]
struct Clients {
    docker: Option<PathBuf>,
    cri: Option<cri::CriClient>,
    timeout: Duration,
}

impl Clients {
    async fn lookup(&self, req: &Request) -> Result<ContainerMeta, LookupError> {
        let fut = async {
            match req.source {
                Source::Docker => match &self.docker {
                    Some(sock) => docker::inspect(sock, &req.id).await,
                    None => Err(LookupError::Io("docker lookup is off".into())),
                },
                Source::Cri => match &self.cri {
                    Some(c) => c.container_status(&req.id).await,
                    None => Err(LookupError::Io("CRI lookup is off".into())),
                },
            }
        };
        tokio::time::timeout(self.timeout, fut).await.unwrap_or(Err(LookupError::Timeout))
    }
}

impl Metadata {
    /// Start the lookups `cfg` enables (on the current tokio runtime).
    /// `None` when all are off. `env` reads environment variables
    /// (`KUBERNETES_SERVICE_HOST`, `K8S_NODE_NAME`, ...).
    pub fn start(cfg: &MetadataConfig, env: impl Fn(&str) -> Option<String>) -> Result<Option<Metadata>, MetadataError> {
        if !cfg.docker.enabled && !cfg.cri.enabled && !cfg.kubernetes.enabled {
            return Ok(None);
        }
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let stop = CancellationToken::new();
        let epoch = Arc::new(AtomicU64::new(0));
        let stats = Arc::new(MetadataStats::default());
        let pods = if cfg.kubernetes.enabled {
            let settings = kubernetes::Settings::from_config(&cfg.kubernetes, timeout, &env).map_err(MetadataError::Kubernetes)?;
            let store = Arc::new(kubernetes::PodStore::default());
            tokio::spawn(kubernetes::run(settings, store.clone(), epoch.clone(), stats.clone(), stop.clone()));
            Some(store)
        } else {
            None
        };
        let clients = Clients {
            docker: cfg.docker.enabled.then(|| PathBuf::from(&cfg.docker.socket)),
            cri: cfg.cri.enabled.then(|| cri::CriClient::new(PathBuf::from(&cfg.cri.socket), timeout)),
            timeout,
        };
        let cache = Arc::new(Mutex::new(Cache {
            map: HashMap::new(),
            max: cfg.cache_max.max(1),
            negative_ttl: Duration::from_secs(cfg.negative_ttl_s),
        }));
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(serve(rx, clients, cache.clone(), epoch.clone(), stats.clone(), stop.clone()));
        Ok(Some(Metadata {
            cache,
            tx,
            docker: cfg.docker.enabled,
            cri: cfg.cri.enabled,
            pods,
            epoch,
            stats,
            _stop: Arc::new(stop.drop_guard()),
        }))
    }

    /// Which runtime API answers for a container of `runtime` (as the
    /// cgroup path names it; `None` for kubepods' cgroupfs layout).
    pub fn source_for(&self, runtime: Option<&str>) -> Option<Source> {
        match runtime {
            Some("docker") | Some("podman") => self.docker.then_some(Source::Docker),
            Some("containerd") | Some("cri-o") => self.cri.then_some(Source::Cri),
            _ if self.cri => Some(Source::Cri),
            _ => self.docker.then_some(Source::Docker),
        }
    }

    /// What is known about `w` now; queues lookups of what is not. Never
    /// blocks on I/O.
    pub fn resolve(&self, w: &Workload) -> WorkloadMeta {
        let container = w.container_id.as_deref().and_then(|id| Some(self.container(id, self.source_for(w.runtime)?)));
        let pod = match (&self.pods, w.pod_uid.as_deref()) {
            (Some(store), Some(uid)) => Some(store.get(uid)),
            _ => None,
        };
        WorkloadMeta { container, pod }
    }

    fn container(&self, id: &str, source: Source) -> Lookup<ContainerMeta> {
        let Ok(mut cache) = self.cache.lock() else { return Lookup::Unavailable("internal_error".into()) };
        let now = Instant::now();
        let ttl = cache.negative_ttl;
        match cache.map.get(id) {
            Some(Entry { state: State::Ready(m), .. }) => return Lookup::Ready(m.clone()),
            Some(Entry { state: State::InFlight, .. }) => return Lookup::Pending("lookup_in_flight"),
            Some(Entry { state: State::Failed(r), at }) if now.duration_since(*at) < ttl => return Lookup::Unavailable(r.clone()),
            _ => {}
        }
        match self.tx.try_send(Request { id: id.to_owned(), source }) {
            Ok(()) => {
                cache.make_room();
                cache.map.insert(id.to_owned(), Entry { state: State::InFlight, at: now });
                Lookup::Pending("lookup_in_flight")
            }
            Err(_) => {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                Lookup::Unavailable("queue_full".into())
            }
        }
    }

    /// Grows whenever an answer arrives or the pods change.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The lookup counters.
    pub fn stats(&self) -> &MetadataStats {
        &self.stats
    }

    /// The lookup counters, shared (for vigil's own metrics).
    pub fn shared_stats(&self) -> Arc<MetadataStats> {
        self.stats.clone()
    }
}

/// Run container lookups until the handle is dropped.
async fn serve(
    mut rx: mpsc::Receiver<Request>,
    clients: Clients,
    cache: Arc<Mutex<Cache>>,
    epoch: Arc<AtomicU64>,
    stats: Arc<MetadataStats>,
    stop: CancellationToken,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    loop {
        let req = tokio::select! {
            r = rx.recv() => match r { Some(r) => r, None => return },
            _ = stop.cancelled() => return,
        };
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let (clients, cache, epoch, stats) = (clients.clone(), cache.clone(), epoch.clone(), stats.clone());
        stats.lookups.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let result = clients.lookup(&req).await;
            drop(permit);
            let state = match result {
                Ok(m) => State::Ready(Arc::new(m)),
                Err(e) => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(container = %req.id, source = ?req.source, "metadata lookup failed: {e}");
                    State::Failed(e.reason())
                }
            };
            if let Ok(mut c) = cache.lock() {
                c.map.insert(req.id, Entry { state, at: Instant::now() });
            }
            epoch.fetch_add(1, Ordering::AcqRel);
        });
    }
}

/// `repo[:tag][@digest]` -> (name, tag). The tag is what follows the last
/// `:` after the last `/` (a registry port is not a tag).
pub fn split_image(reference: &str) -> (String, Option<String>) {
    let name = reference.split_once('@').map_or(reference, |(n, _)| n);
    let leaf = name.rfind('/').map_or(0, |i| i + 1);
    match name[leaf..].rfind(':') {
        Some(i) => (name[..leaf + i].to_owned(), Some(name[leaf + i + 1..].to_owned())),
        None => (name.to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        assert_eq!(split_image("nginx:1.25"), ("nginx".into(), Some("1.25".into())));
        assert_eq!(split_image("registry:5000/team/app"), ("registry:5000/team/app".into(), None));
        assert_eq!(split_image("registry:5000/team/app:v2"), ("registry:5000/team/app".into(), Some("v2".into())));
        assert_eq!(split_image("ghcr.io/x/y@sha256:abcd"), ("ghcr.io/x/y".into(), None));
        assert_eq!(split_image("busybox"), ("busybox".into(), None));
    }

    #[test]
    fn cache_evicts_the_oldest_when_full() {
        let mut c = Cache { map: HashMap::new(), max: 16, negative_ttl: Duration::from_secs(1) };
        let t0 = Instant::now();
        for i in 0..16u64 {
            c.make_room();
            c.map.insert(format!("{i}"), Entry { state: State::InFlight, at: t0 + Duration::from_millis(i) });
        }
        assert_eq!(c.map.len(), 16);
        c.make_room();
        assert_eq!(c.map.len(), 14, "an eighth goes");
        assert!(!c.map.contains_key("0") && !c.map.contains_key("1") && c.map.contains_key("2"), "the oldest go first");
    }

    #[test]
    fn reasons_are_short_tokens() {
        assert_eq!(LookupError::Http(500).reason(), "http_500");
        assert_eq!(LookupError::Grpc(tonic::Code::Unavailable).reason(), "grpc_unavailable");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(LookupError::from_io(&refused).reason(), "connection_refused");
    }
}
