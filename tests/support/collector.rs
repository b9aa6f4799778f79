//! The collector chain of the end-to-end tests:
//!
//! ```text
//! vigil --OTLP (gRPC or HTTP)--> rotel --OTLP/gRPC--> Sink (in this process)
//! ```
//!
//! rotel is the real collector process (the PyPI package `rotel`). What it
//! forwards is captured by [`Sink`], a small OTLP/gRPC logs server that keeps
//! every decoded `ExportLogsServiceRequest`, so tests assert exact protobuf
//! field values instead of parsing rotel's human-readable debug log (which
//! renders values as `Str(...)`, ambiguous for strings containing
//! parentheses or commas). rotel's own output is still kept in a file and
//! shown when a test fails.
//!
//! The sink also serves as the collector itself, with vigil exporting to it
//! directly, when a test needs a collector that misbehaves on purpose: it
//! can stall its answers or answer with a partial success (see [`Sink`]).
//!
//! Every child process lives in a [`ChildGuard`], which kills it on drop, so
//! a panicking test leaves nothing running. Every wait is bounded.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::codegen::{http, BoxFuture, Service};

/// How long any single wait of the e2e tests may take before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// Nanoseconds since the Unix epoch, now.
pub fn unix_now_ns() -> u64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    u64::try_from(d.as_nanos()).expect("time fits u64")
}

/// A fresh random UUID from the kernel.
pub fn random_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid").expect("read /proc/sys/kernel/random/uuid").trim().to_owned()
}

/// Poll `ready` every 25 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The last `max` bytes of a file, lossily decoded (diagnostics only).
pub fn tail(path: &Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// A scratch directory, removed on drop unless the test is panicking (then
/// it is kept for inspection and its path printed).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", random_id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path.canonicalize().expect("canonicalize temp dir"))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("e2e: keeping {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process that is killed (SIGKILL) and reaped on drop unless it
/// was already waited for.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
}

impl ChildGuard {
    pub fn spawn(name: &str, cmd: &mut Command) -> Self {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Self { name: name.to_owned(), child, status: None }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    /// The exit status if the process has exited (reaping it).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap_or_else(|e| panic!("wait for {}: {e}", self.name));
        }
        self.status
    }

    /// Send `sig` (a no-op once the process was reaped).
    pub fn signal(&mut self, sig: libc::c_int) {
        if self.try_status().is_none() {
            // SAFETY: kill has no memory-safety preconditions; the pid is our
            // own unreaped child, so it cannot have been reused.
            let rc = unsafe { libc::kill(self.pid(), sig) };
            assert_eq!(rc, 0, "kill({}, {sig}) for {}: {}", self.pid(), self.name, io::Error::last_os_error());
        }
    }

    /// Send `sig` and wait up to `timeout` for the process to exit.
    pub fn stop(&mut self, sig: libc::c_int, timeout: Duration) -> Option<ExitStatus> {
        self.signal(sig);
        wait_until(timeout, || self.try_status().is_some());
        self.status
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.try_status_quiet().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl ChildGuard {
    fn try_status_quiet(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }
}

/// The `rotel-agent` binary: `$ROTEL_AGENT` if set, else the one shipped in
/// the installed `rotel` Python package.
pub fn rotel_agent() -> PathBuf {
    if let Some(p) = std::env::var_os("ROTEL_AGENT") {
        return PathBuf::from(p);
    }
    let out = Command::new("python3")
        .args(["-c", "import os, rotel; print(os.path.dirname(rotel.__file__))"])
        .output()
        .expect("run python3 to locate the rotel package");
    assert!(
        out.status.success(),
        "the rotel collector is not installed (pip install rotel) or python3 is missing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("rotel-agent");
    assert!(path.is_file(), "{} does not exist; reinstall the rotel Python package", path.display());
    path
}

/// `s` without ANSI escape sequences (`ESC [ ... final-byte`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip the introducer and parameters up to the final byte.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An unused TCP port on 127.0.0.1 (the listener is closed again; the
/// caller must cope with the small chance that someone takes it meanwhile).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// One LogRecord as received by the sink, with the Resource it came under.
#[derive(Debug, Clone)]
pub struct Received {
    pub resource: Resource,
    pub record: LogRecord,
    /// Index of the export request it came in (in the order the sink
    /// answered them, see [`Sink::export_requests`]).
    pub request: usize,
}

/// One export request the sink answered successfully, as it arrived.
#[derive(Debug, Clone)]
pub struct ExportCall {
    pub request: ExportLogsServiceRequest,
    /// The request re-encoded (prost's encoding is deterministic): two
    /// deliveries of the same batch have equal bytes.
    pub bytes: Vec<u8>,
    /// `partial_success.rejected_log_records` of the answer (0: full success).
    pub rejected: i64,
    /// Whether the call was held by a stall before it was answered.
    pub stalled: bool,
}

/// How the sink answers, switched at run time. The default accepts every
/// request at once.
#[derive(Debug, Default)]
struct Behaviour {
    /// Hold every export call (without answering) until this instant.
    stall_until: Option<Instant>,
    /// Answer this many more requests of at least `rejected` records with a
    /// partial success rejecting `rejected` of them.
    partial_left: usize,
    partial_rejected: i64,
    partial_message: String,
    /// Answer this many more export calls with UNAVAILABLE carrying a
    /// `google.rpc.RetryInfo` of `throttle_delay` (records not kept).
    throttle_left: usize,
    throttle_delay: Duration,
}

#[derive(Debug, Default)]
struct State {
    behaviour: Behaviour,
    /// Export calls that arrived, answered or not.
    calls: usize,
    /// When each export call arrived, and whether it was throttled.
    arrivals: Vec<(Instant, bool)>,
    /// Calls being held by a stall right now.
    stalled_now: usize,
    answered: Vec<ExportCall>,
    /// Trace export requests (accepted at once, whatever the behaviour).
    traces: Vec<ExportTraceServiceRequest>,
}

#[derive(Debug, Default, Clone)]
struct Store(Arc<Mutex<State>>);

impl Store {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, tonic::Status> {
        self.0.lock().map_err(|_| tonic::Status::internal("sink store poisoned"))
    }
}

/// Counts a call in `stalled_now` while it is held, also when the client
/// gives up and the call is dropped mid-stall.
struct Held<'a> {
    store: &'a Store,
    counted: bool,
}

impl Held<'_> {
    fn set(&mut self, on: bool) {
        if on != self.counted {
            if let Ok(mut st) = self.store.0.lock() {
                if on {
                    st.stalled_now += 1;
                } else {
                    st.stalled_now -= 1;
                }
            }
            self.counted = on;
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.set(false);
    }
}

#[tonic::async_trait]
impl LogsService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        {
            let mut st = self.lock()?;
            st.calls += 1;
            let throttled = st.behaviour.throttle_left > 0;
            st.arrivals.push((Instant::now(), throttled));
            if throttled {
                st.behaviour.throttle_left -= 1;
                let details = vigil::export::retry::rpc::Status::with_retry_delay(
                    tonic::Code::Unavailable as i32,
                    "throttled by the test sink",
                    st.behaviour.throttle_delay,
                );
                return Err(tonic::Status::with_details(
                    tonic::Code::Unavailable,
                    "throttled by the test sink",
                    prost::Message::encode_to_vec(&details).into(),
                ));
            }
        }
        // Stall: poll the switch so a release or a new deadline takes effect
        // within a few milliseconds. Nothing is stored until the answer.
        let mut held = Held { store: self, counted: false };
        loop {
            let wait = self.lock()?.behaviour.stall_until.and_then(|t| t.checked_duration_since(Instant::now()));
            match wait {
                Some(left) => {
                    held.set(true);
                    tokio::time::sleep(left.min(Duration::from_millis(10))).await;
                }
                None => break,
            }
        }
        let stalled = held.counted;
        drop(held);
        let request = request.into_inner();
        let records: usize = request.resource_logs.iter().flat_map(|rl| &rl.scope_logs).map(|sl| sl.log_records.len()).sum();
        let mut st = self.lock()?;
        let b = &mut st.behaviour;
        let partial = if b.partial_left > 0 && i64::try_from(records).unwrap_or(i64::MAX) >= b.partial_rejected {
            b.partial_left -= 1;
            Some(ExportLogsPartialSuccess { rejected_log_records: b.partial_rejected, error_message: b.partial_message.clone() })
        } else {
            None
        };
        let bytes = prost::Message::encode_to_vec(&request);
        let rejected = partial.as_ref().map_or(0, |p| p.rejected_log_records);
        st.answered.push(ExportCall { request, bytes, rejected, stalled });
        Ok(tonic::Response::new(ExportLogsServiceResponse { partial_success: partial }))
    }
}

#[tonic::async_trait]
impl TraceService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.lock()?.traces.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Both services on one server, routed by the gRPC path (tonic's own router
/// needs its `router` feature, which pulls in axum).
#[derive(Debug, Clone)]
struct LogsAndTraces {
    logs: LogsServiceServer<Store>,
    traces: TraceServiceServer<Store>,
}

impl Service<http::Request<tonic::body::Body>> for LogsAndTraces {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        if req.uri().path().starts_with("/opentelemetry.proto.collector.trace.") {
            Box::pin(self.traces.call(req))
        } else {
            Box::pin(self.logs.call(req))
        }
    }
}

/// An OTLP/gRPC logs receiver on 127.0.0.1 (free port) that keeps what it
/// gets. Stops when dropped.
///
/// By default it accepts every request at once. Tests can switch it, while
/// it runs, to stall ([`Sink::stall_for`]: calls are held, unanswered, and
/// their records kept once answered) or to answer with a partial success
/// ([`Sink::reject_in_partial_success`]: the records are kept, as delivered,
/// and the answer says some were rejected). It also accepts and keeps OTLP
/// trace requests, at once and apart from the logs
/// ([`Sink::trace_requests`]), so that a vigil exporting spans to the same
/// endpoint sees no export failure. It can also go away and come back on
/// the same port ([`Sink::stop`], [`Sink::restart`]): a collector that
/// refuses connections for a while.
#[derive(Debug)]
pub struct Sink {
    addr: SocketAddr,
    store: Store,
    runtime: Option<tokio::runtime::Runtime>,
    tls: Option<tonic::transport::ServerTlsConfig>,
}

impl Sink {
    pub fn start() -> Self {
        let store = Store::default();
        let (runtime, addr) = Self::serve(SocketAddr::from(([127, 0, 0, 1], 0)), &store, None);
        Self { addr, store, runtime: Some(runtime), tls: None }
    }

    /// A sink that serves OTLP/gRPC over TLS with `pki`'s server
    /// certificate and requires a client certificate signed by `pki`'s CA
    /// (mutual TLS). Its endpoint is `https://`.
    pub fn start_tls(pki: &TestPki) -> Self {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&pki.server_cert_pem, &pki.server_key_pem))
            .client_ca_root(Certificate::from_pem(&pki.ca_pem));
        let store = Store::default();
        let (runtime, addr) = Self::serve(SocketAddr::from(([127, 0, 0, 1], 0)), &store, Some(tls.clone()));
        Self { addr, store, runtime: Some(runtime), tls: Some(tls) }
    }

    /// Serve `store` on `addr` (retrying for up to [`WAIT`] while the
    /// address is still in use); the runtime it runs on and the bound
    /// address.
    fn serve(addr: SocketAddr, store: &Store, tls: Option<tonic::transport::ServerTlsConfig>) -> (tokio::runtime::Runtime, SocketAddr) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio runtime");
        let deadline = Instant::now() + WAIT;
        let incoming = loop {
            match runtime.block_on(async { tonic::transport::server::TcpIncoming::bind(addr) }) {
                Ok(incoming) => break incoming,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("bind sink on {addr}: {e}"),
            }
        };
        let addr = incoming.local_addr().expect("sink local addr");
        let gzip = tonic::codec::CompressionEncoding::Gzip;
        let service = LogsAndTraces {
            logs: LogsServiceServer::new(store.clone()).accept_compressed(gzip),
            traces: TraceServiceServer::new(store.clone()).accept_compressed(gzip),
        };
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).expect("sink TLS config");
        }
        runtime.spawn(async move {
            if let Err(e) = builder.serve_with_incoming(service, incoming).await {
                eprintln!("e2e sink stopped: {e}");
            }
        });
        (runtime, addr)
    }

    /// Stop serving, as a collector that went away: the listener and every
    /// connection close, so clients get "connection refused" until
    /// [`Sink::restart`]. What was received is kept. A no-op when stopped.
    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }

    /// Serve again on the same address, with what was received so far and
    /// the same behaviour switches (stopping first if still running).
    pub fn restart(&mut self) {
        self.stop();
        let (runtime, _) = Self::serve(self.addr, &self.store, self.tls.clone());
        self.runtime = Some(runtime);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.store.0.lock().expect("sink store poisoned")
    }

    /// `http://127.0.0.1:<port>` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        format!("{}://{}", if self.tls.is_some() { "https" } else { "http" }, self.addr)
    }

    /// Every record received so far, flattened.
    pub fn records(&self) -> Vec<Received> {
        let st = self.state();
        let mut out = Vec::new();
        for (request, call) in st.answered.iter().enumerate() {
            for rl in &call.request.resource_logs {
                let resource = rl.resource.clone().unwrap_or_default();
                for sl in &rl.scope_logs {
                    for record in &sl.log_records {
                        out.push(Received { resource: resource.clone(), record: record.clone(), request });
                    }
                }
            }
        }
        out
    }

    /// Visit every record received so far, under the sink's lock and
    /// without copying (cheap enough to poll while the sink receives a
    /// lot).
    pub fn for_each_record(&self, mut f: impl FnMut(&LogRecord)) {
        let st = self.state();
        for call in &st.answered {
            for rl in &call.request.resource_logs {
                for sl in &rl.scope_logs {
                    sl.log_records.iter().for_each(&mut f);
                }
            }
        }
    }

    /// Number of export requests received (answered successfully) so far.
    pub fn requests(&self) -> usize {
        self.state().answered.len()
    }

    /// Every export request answered so far, in answer order.
    pub fn export_requests(&self) -> Vec<ExportCall> {
        self.state().answered.clone()
    }

    /// Every trace export request received so far.
    pub fn trace_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.state().traces.clone()
    }

    /// Logs export calls that arrived so far, including those not answered
    /// yet.
    pub fn calls(&self) -> usize {
        self.state().calls
    }

    /// Export calls held by a stall right now.
    pub fn stalled_calls(&self) -> usize {
        self.state().stalled_now
    }

    /// From now until `d` has passed (or [`Sink::release`]), hold every
    /// export call without answering; held calls are then answered as usual
    /// and their records kept.
    pub fn stall_for(&self, d: Duration) {
        self.state().behaviour.stall_until = Some(Instant::now() + d);
    }

    /// Answer the next `calls` logs export calls with UNAVAILABLE and a
    /// `google.rpc.RetryInfo` asking for `delay` (their records are not
    /// kept: the client must send them again).
    pub fn throttle(&self, calls: usize, delay: Duration) {
        let b = &mut self.state().behaviour;
        b.throttle_left = calls;
        b.throttle_delay = delay;
    }

    /// When each logs export call arrived, and whether it was answered
    /// with a throttle.
    pub fn arrivals(&self) -> Vec<(Instant, bool)> {
        self.state().arrivals.clone()
    }

    /// End a stall now.
    pub fn release(&self) {
        self.state().behaviour.stall_until = None;
    }

    /// Answer the next `requests` export requests that hold at least
    /// `rejected` records with `partial_success { rejected_log_records:
    /// rejected, error_message: message }`. Their records are kept: the
    /// request was delivered, the collector just says it dropped some.
    pub fn reject_in_partial_success(&self, requests: usize, rejected: i64, message: &str) {
        let b = &mut self.state().behaviour;
        b.partial_left = requests;
        b.partial_rejected = rejected;
        b.partial_message = message.to_owned();
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running rotel collector: OTLP gRPC and HTTP receivers on free
/// 127.0.0.1 ports, forwarding logs over OTLP/gRPC to `forward_to`.
#[derive(Debug)]
pub struct Rotel {
    child: ChildGuard,
    grpc_port: u16,
    http_port: u16,
    output: PathBuf,
    dir: PathBuf,
    forward_to: String,
}

impl Rotel {
    /// Start rotel in `dir` (pid file and output go there). Retries with new
    /// ports if rotel exits before listening (a port taken meanwhile).
    pub fn start(dir: &Path, forward_to: &str) -> Self {
        let mut last_failure = String::new();
        for attempt in 0..3 {
            let (grpc_port, http_port) = (free_port(), free_port());
            if grpc_port == http_port {
                continue;
            }
            match Self::spawn_on(dir, forward_to, grpc_port, http_port, &format!("{attempt}")) {
                Ok(r) => return r,
                Err(e) => last_failure = e,
            }
        }
        panic!("rotel did not start listening within {WAIT:?}: {last_failure}");
    }

    /// Start rotel again on the same ports (stopping it first if it runs):
    /// a collector that went away and came back.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + WAIT;
        let mut n = 0;
        loop {
            n += 1;
            match Self::spawn_on(&self.dir.clone(), &self.forward_to.clone(), self.grpc_port, self.http_port, &format!("restart-{n}")) {
                Ok(r) => {
                    *self = r;
                    return;
                }
                // The old ports may linger for a moment.
                Err(e) if Instant::now() >= deadline => panic!("rotel did not restart on its ports: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn spawn_on(dir: &Path, forward_to: &str, grpc_port: u16, http_port: u16, tag: &str) -> Result<Self, String> {
        let bin = rotel_agent();
        {
            let attempt = tag;
            let output = dir.join(format!("rotel-{attempt}.out"));
            let out = File::create(&output).expect("create rotel output file");
            let err = out.try_clone().expect("clone rotel output file");
            let mut cmd = Command::new(&bin);
            cmd.arg("start")
                .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc_port}")])
                .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http_port}")])
                .args(["--otlp-receiver-metrics-disabled"])
                .args(["--exporter", "otlp"])
                .args(["--otlp-exporter-endpoint", forward_to])
                .args(["--otlp-exporter-protocol", "grpc"])
                .args(["--batch-timeout", "50ms"])
                .args(["--otlp-exporter-retry-initial-backoff", "100ms"])
                // The debug log lands in the output file: a second view of
                // what rotel received, printed when a test fails.
                .args(["--debug-log", "logs", "--debug-log-verbosity", "detailed"])
                .arg("--pid-file")
                .arg(dir.join("rotel.pid"))
                .arg("--log-file")
                .arg(dir.join("rotel.log"))
                .env_remove("ROTEL_DAEMON")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err);
            let mut child = ChildGuard::spawn("rotel", &mut cmd);
            let up = wait_until(WAIT, || child.try_status().is_some() || (listening(grpc_port) && listening(http_port)));
            if up && child.try_status().is_none() {
                return Ok(Self { child, grpc_port, http_port, output, dir: dir.to_path_buf(), forward_to: forward_to.to_owned() });
            }
            Err(format!("status {:?}, output:\n{}", child.try_status(), strip_ansi(&tail(&output, 4000))))
        }
    }

    /// The gRPC receiver, `http://127.0.0.1:<port>`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// The HTTP receiver base URL, `http://127.0.0.1:<port>`.
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// rotel's stdout and stderr: its own log lines and the debug log of
    /// what it received, ANSI colours removed.
    pub fn output(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(&std::fs::read(&self.output).unwrap_or_default()))
    }

    /// Diagnostics: rotel's own last log lines (export errors and the like,
    /// without the debug log) and whether the debug log shows `needle`, i.e.
    /// whether it reached rotel at all.
    pub fn summary(&self, needle: &str) -> String {
        let out = self.output();
        let own: Vec<&str> = out.lines().filter(|l| [" INFO ", " WARN ", " ERROR ", " DEBUG "].iter().any(|lvl| l.contains(lvl))).collect();
        let own = own[own.len().saturating_sub(30)..].join("\n");
        format!("rotel's debug log {} {needle:?}; its last log lines:\n{own}", if out.contains(needle) { "shows" } else { "does not show" })
    }

    /// Stop with SIGTERM and wait (bounded); the exit status, if it exited.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.child.stop(libc::SIGTERM, WAIT)
    }
}

/// One request an [`HttpSink`] received.
#[derive(Debug, Clone)]
pub struct HttpCall {
    pub at: Instant,
    pub path: String,
    /// The status it was answered with.
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug, Default)]
struct HttpState {
    /// Answer this many more /v1/logs requests with 429 and this
    /// `Retry-After` value.
    throttle_left: usize,
    retry_after: String,
    calls: Vec<HttpCall>,
}

/// A minimal OTLP/HTTP receiver (uncompressed protobuf bodies, HTTP/1.1,
/// keep-alive) on 127.0.0.1 that can throttle: [`HttpSink::throttle`]
/// makes it answer `429 Too Many Requests` with a `Retry-After` header.
/// Every other /v1/logs and /v1/traces request gets 200 with an empty
/// export response. Stops when dropped.
#[derive(Debug)]
pub struct HttpSink {
    addr: SocketAddr,
    state: Arc<Mutex<HttpState>>,
    tls: bool,
    _runtime: tokio::runtime::Runtime,
}

impl HttpSink {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A sink that serves over TLS with `pki`'s server certificate and
    /// requires a client certificate signed by `pki`'s CA (mutual TLS).
    pub fn start_tls(pki: &TestPki) -> Self {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(pki.ca_der.clone())).expect("CA");
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().expect("verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(pki.server_cert_der.clone())],
                PrivateKeyDer::try_from(pki.server_key_der.clone()).expect("key"),
            )
            .expect("server config");
        Self::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let with_tls = tls.is_some();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio runtime");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind http sink");
        let addr = listener.local_addr().expect("http sink addr");
        let state = Arc::new(Mutex::new(HttpState::default()));
        let st = state.clone();
        runtime.spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let st = st.clone();
                match tls.clone() {
                    None => drop(tokio::spawn(Self::serve(conn, st))),
                    Some(acceptor) => drop(tokio::spawn(async move {
                        match acceptor.accept(conn).await {
                            Ok(conn) => Self::serve(conn, st).await,
                            Err(e) => eprintln!("e2e http sink: TLS handshake failed: {e}"),
                        }
                    })),
                }
            }
        });
        Self { addr, state, tls: with_tls, _runtime: runtime }
    }

    async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut conn: S, state: Arc<Mutex<HttpState>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 8192];
                match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
            let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
            while buf.len() < head_end + len {
                let mut chunk = [0u8; 8192];
                match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = buf[head_end..head_end + len].to_vec();
            buf.drain(..head_end + len);
            let (status, extra) = {
                let Ok(mut st) = state.lock() else { return };
                let throttled = path == "/v1/logs" && st.throttle_left > 0;
                let (status, extra) = if throttled {
                    st.throttle_left -= 1;
                    (429, format!("retry-after: {}\r\n", st.retry_after))
                } else if path == "/v1/logs" || path == "/v1/traces" {
                    (200, String::new())
                } else {
                    (404, String::new())
                };
                st.calls.push(HttpCall { at: Instant::now(), path, status, body });
                (status, extra)
            };
            let reason = match status {
                200 => "OK",
                429 => "Too Many Requests",
                _ => "Not Found",
            };
            let resp = format!("HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-protobuf\r\n{extra}content-length: 0\r\n\r\n");
            if conn.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// The base URL, `http://127.0.0.1:<port>` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Answer the next `requests` /v1/logs requests with 429 and
    /// `Retry-After: <retry_after>`.
    pub fn throttle(&self, requests: usize, retry_after: &str) {
        let mut st = self.state.lock().expect("http sink state");
        st.throttle_left = requests;
        st.retry_after = retry_after.to_owned();
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<HttpCall> {
        self.state.lock().expect("http sink state").calls.clone()
    }

    /// Log records accepted (answered 200) so far.
    pub fn records(&self) -> Vec<LogRecord> {
        self.calls()
            .iter()
            .filter(|c| c.path == "/v1/logs" && c.status == 200)
            .flat_map(|c| {
                let req: ExportLogsServiceRequest = prost::Message::decode(c.body.as_slice()).expect("an uncompressed logs request");
                req.resource_logs.into_iter().flat_map(|rl| rl.scope_logs).flat_map(|sl| sl.log_records).collect::<Vec<_>>()
            })
            .collect()
    }
}

/// A test PKI made at run time: a CA, a server certificate for
/// [`TestPki::SERVER_NAME`] (and no other name, so clients must set the
/// server name), a client certificate, and an unrelated CA; PEM files of
/// each in `dir`.
#[derive(Debug)]
pub struct TestPki {
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub server_cert_der: Vec<u8>,
    pub server_key_der: Vec<u8>,
    pub ca_file: PathBuf,
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    pub other_ca_file: PathBuf,
}

impl TestPki {
    /// The only name in the server certificate.
    pub const SERVER_NAME: &'static str = "collector.vigil.test";

    pub fn new(dir: &Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_issuer = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA cert")
        };
        let ca = ca_issuer("vigil e2e CA");
        let other = ca_issuer("some other CA");
        let leaf = |name: &str| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.signed_by(&key, &ca).expect("sign");
            (cert, key)
        };
        let (server, server_key) = leaf(Self::SERVER_NAME);
        let (client, client_key) = leaf("vigil-agent");
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("write PEM");
            p
        };
        Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().to_vec(),
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            server_cert_der: server.der().to_vec(),
            server_key_der: server_key.serialize_der(),
            ca_file: write("ca.pem", &ca.pem()),
            client_cert_file: write("client.pem", &client.pem()),
            client_key_file: write("client-key.pem", &client_key.serialize_pem()),
            other_ca_file: write("other-ca.pem", &other.pem()),
        }
    }
}
