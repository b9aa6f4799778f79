//! Fake metadata servers: a Docker Engine API on a unix socket (hyper), a CRI
//! RuntimeService on a unix socket (tonic), and a Kubernetes API on a local
//! TCP port (hyper). Each can answer, hold its answer for a minute, fail,
//! or close the connection, switchable while it runs.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use vigil::metadata::cri::{ContainerMetadata, ContainerStatus, ContainerStatusRequest, ContainerStatusResponse, ImageSpec, ProstCodec};

/// How a fake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answer from the fixtures.
    Ok,
    /// Hold the answer for a minute (longer than any test waits).
    Slow,
    /// HTTP 500 / gRPC INTERNAL.
    Fail,
    /// Close the connection without answering.
    Close,
}

/// What every fake shares: its mode and counters.
#[derive(Debug)]
pub struct Control {
    mode: Mutex<Mode>,
    /// Requests received.
    pub requests: AtomicU64,
    /// Answers sent (any status).
    pub answered: AtomicU64,
}

impl Control {
    fn new(mode: Mode) -> Arc<Self> {
        Arc::new(Control { mode: Mutex::new(mode), requests: AtomicU64::new(0), answered: AtomicU64::new(0) })
    }

    /// Switch how the next requests are answered.
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap()
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Answers sent so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::SeqCst)
    }
}

pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("metadata/fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder().status(status).header("content-type", "application/json").body(Full::new(body.into()).boxed()).unwrap()
}

const HOLD: Duration = Duration::from_secs(60);

/// A fake Docker daemon knowing one container.
#[derive(Debug)]
pub struct FakeDocker {
    pub socket: PathBuf,
    pub control: Arc<Control>,
}

impl FakeDocker {
    /// Serve on `<dir>/docker.sock`; `known` is the one container id it knows.
    pub fn start(dir: &Path, known: &str, mode: Mode) -> FakeDocker {
        let socket = dir.join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind docker socket");
        let control = Control::new(mode);
        let (c, known) = (control.clone(), known.to_owned());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (c, known) = (c.clone(), known.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (c, known) = (c.clone(), known.clone());
                        async move { docker_answer(&c, &known, req.uri().path()).await.ok_or("closing without an answer") }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        FakeDocker { socket, control }
    }
}

async fn docker_answer(c: &Control, known: &str, path: &str) -> Option<Response<Body>> {
    c.requests.fetch_add(1, Ordering::SeqCst);
    match c.mode() {
        Mode::Slow => tokio::time::sleep(HOLD).await,
        Mode::Fail => {
            c.answered.fetch_add(1, Ordering::SeqCst);
            return Some(full(500, r#"{"message":"internal error"}"#));
        }
        // An error from the service makes hyper drop the connection unanswered.
        Mode::Close => return None,
        Mode::Ok => {}
    }
    c.answered.fetch_add(1, Ordering::SeqCst);
    Some(if path == format!("/containers/{known}/json") {
        full(200, fixture("docker-inspect.json").replace("ID_PLACEHOLDER", known))
    } else {
        full(404, format!(r#"{{"message":"No such container: {path}"}}"#))
    })
}

/// A fake CRI runtime knowing one container of one pod.
#[derive(Debug)]
pub struct FakeCri {
    pub socket: PathBuf,
    pub control: Arc<Control>,
}

#[derive(Debug, Clone)]
struct CriService {
    control: Arc<Control>,
    known: String,
}

impl tonic::server::UnaryService<ContainerStatusRequest> for CriService {
    type Response = ContainerStatusResponse;
    type Future = tonic::codegen::BoxFuture<tonic::Response<ContainerStatusResponse>, tonic::Status>;

    fn call(&mut self, req: tonic::Request<ContainerStatusRequest>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let c = &this.control;
            c.requests.fetch_add(1, Ordering::SeqCst);
            match c.mode() {
                Mode::Slow => tokio::time::sleep(HOLD).await,
                Mode::Fail | Mode::Close => {
                    c.answered.fetch_add(1, Ordering::SeqCst);
                    return Err(tonic::Status::internal("fake CRI failure"));
                }
                Mode::Ok => {}
            }
            c.answered.fetch_add(1, Ordering::SeqCst);
            let id = req.into_inner().container_id;
            if id != this.known {
                return Err(tonic::Status::not_found(format!("container \"{id}\" not found")));
            }
            let labels = [
                ("io.kubernetes.container.name", "redis"),
                ("io.kubernetes.pod.name", "cache-0"),
                ("io.kubernetes.pod.namespace", "shop"),
                ("io.kubernetes.pod.uid", "6c2b0b7e-1f2a-4c3d-9e8f-0a1b2c3d4e5f"),
            ];
            Ok(tonic::Response::new(ContainerStatusResponse {
                status: Some(ContainerStatus {
                    id,
                    metadata: Some(ContainerMetadata { name: "redis".into(), attempt: 0 }),
                    image: Some(ImageSpec { image: "docker.io/library/redis:7.4".into(), user_specified_image: String::new() }),
                    image_ref: "sha256:5f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4".into(),
                    labels: labels.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
                }),
            }))
        })
    }
}

impl FakeCri {
    /// Serve on `<dir>/cri.sock`; `known` is the one container id it knows.
    pub fn start(dir: &Path, known: &str, mode: Mode) -> FakeCri {
        let socket = dir.join("cri.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind CRI socket");
        let control = Control::new(mode);
        let svc = CriService { control: control.clone(), known: known.to_owned() };
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let svc = svc.clone();
                tokio::spawn(async move {
                    // gRPC over HTTP/2: tonic's server-side unary handling on a
                    // plain hyper connection.
                    let handler = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let svc = svc.clone();
                        async move {
                            if req.uri().path() != vigil::metadata::cri::CONTAINER_STATUS_PATH {
                                return Ok::<_, Infallible>(tonic::Status::unimplemented("fake CRI").into_http::<tonic::body::Body>());
                            }
                            let mut grpc =
                                tonic::server::Grpc::new(ProstCodec::<ContainerStatusResponse, ContainerStatusRequest>::default());
                            Ok(grpc.unary(svc, req).await)
                        }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), handler)
                        .await;
                });
            }
        });
        FakeCri { socket, control }
    }
}

/// A fake Kubernetes API: the pod list fixture, then a watch that sends the
/// `pod-added.json` event once [`FakeK8s::release_added`] is called.
#[derive(Debug)]
pub struct FakeK8s {
    pub url: String,
    pub control: Arc<Control>,
    state: Arc<K8sState>,
}

#[derive(Debug, Default)]
struct K8sState {
    /// Lists answered with 200.
    lists_ok: AtomicU64,
    /// Watches opened.
    watches: AtomicU64,
    /// Answer the first watch with 410 Gone.
    gone_first: bool,
    added: Notify,
    added_released: std::sync::atomic::AtomicBool,
    /// End each watch right after its ADDED event (as an API server does
    /// at its timeout, or a load balancer at its idle limit).
    close_watch: std::sync::atomic::AtomicBool,
    /// Every request's (path and query, Authorization header).
    seen: Mutex<Vec<(String, Option<String>)>>,
}

impl FakeK8s {
    pub async fn start(mode: Mode, gone_first_watch: bool) -> FakeK8s {
        FakeK8s::start_with(mode, gone_first_watch, None).await
    }

    /// Serve HTTPS with the `tls/server.crt` fixture (issued by
    /// `tls/ca.crt` for 127.0.0.1).
    pub async fn start_tls(mode: Mode) -> FakeK8s {
        use rustls_pki_types::pem::PemObject;
        use tokio_rustls::rustls;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("metadata/fixtures/tls");
        let certs =
            rustls_pki_types::CertificateDer::pem_file_iter(dir.join("server.crt")).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        FakeK8s::start_with(mode, false, Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))).await
    }

    async fn start_with(mode: Mode, gone_first_watch: bool, tls: Option<tokio_rustls::TlsAcceptor>) -> FakeK8s {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().expect("addr"));
        let control = Control::new(mode);
        let state = Arc::new(K8sState { gone_first: gone_first_watch, ..K8sState::default() });
        let (c, s) = (control.clone(), state.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (c, s, tls) = (c.clone(), s.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (c, s) = (c.clone(), s.clone());
                        async move { Ok::<_, Infallible>(k8s_answer(&c, &s, &req).await) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            // A client that refuses our certificate ends here.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                            }
                        }
                    }
                });
            }
        });
        FakeK8s { url, control, state }
    }

    /// Let the watch send its ADDED event.
    pub fn release_added(&self) {
        self.state.added_released.store(true, Ordering::SeqCst);
        self.state.added.notify_waiters();
    }

    /// End every watch stream after its ADDED event.
    pub fn close_watch_after_event(&self) {
        self.state.close_watch.store(true, Ordering::SeqCst);
    }

    pub fn lists_ok(&self) -> u64 {
        self.state.lists_ok.load(Ordering::SeqCst)
    }

    pub fn watches(&self) -> u64 {
        self.state.watches.load(Ordering::SeqCst)
    }

    /// Every request so far: (path and query, Authorization).
    pub fn seen(&self) -> Vec<(String, Option<String>)> {
        self.state.seen.lock().unwrap().clone()
    }
}

async fn k8s_answer(c: &Control, s: &Arc<K8sState>, req: &Request<hyper::body::Incoming>) -> Response<Body> {
    c.requests.fetch_add(1, Ordering::SeqCst);
    let pq = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    s.seen.lock().unwrap().push((pq.clone(), auth));
    if req.uri().path() != "/api/v1/pods" || !pq.contains("fieldSelector=spec.nodeName%3Dnode-a") {
        c.answered.fetch_add(1, Ordering::SeqCst);
        return full(404, r#"{"kind":"Status","code":404}"#);
    }
    match c.mode() {
        Mode::Slow => tokio::time::sleep(HOLD).await,
        Mode::Fail | Mode::Close => {
            c.answered.fetch_add(1, Ordering::SeqCst);
            return full(500, r#"{"kind":"Status","status":"Failure","code":500}"#);
        }
        Mode::Ok => {}
    }
    c.answered.fetch_add(1, Ordering::SeqCst);
    if !pq.contains("watch=1") {
        s.lists_ok.fetch_add(1, Ordering::SeqCst);
        return full(200, fixture("pod-list.json"));
    }
    let n = s.watches.fetch_add(1, Ordering::SeqCst);
    if s.gone_first && n == 0 {
        return full(410, r#"{"kind":"Status","status":"Failure","reason":"Expired","code":410}"#);
    }
    // Stream: a bookmark at once, the ADDED event when released, then hold.
    let s = s.clone();
    let stream = async_stream(s);
    Response::builder().status(200).header("content-type", "application/json").body(BodyExt::boxed(StreamBody::new(stream))).unwrap()
}

fn async_stream(s: Arc<K8sState>) -> impl tokio_stream::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    tokio::spawn(async move {
        let bookmark = r#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"48215"}}}"#;
        if tx.send(Ok(Frame::data(Bytes::from(format!("{bookmark}\n"))))).await.is_err() {
            return;
        }
        let released = s.added.notified();
        if !s.added_released.load(Ordering::SeqCst) {
            released.await;
        }
        let _ = tx.send(Ok(Frame::data(Bytes::from(fixture("pod-added.json"))))).await;
        if !s.close_watch.load(Ordering::SeqCst) {
            tokio::time::sleep(HOLD).await;
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
