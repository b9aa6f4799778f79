//! Open storm and exec storm, without a monitor and with vigil exporting to
//! a loopback OTLP/gRPC receiver, interleaved (issue "Security event
//! families", benchmark). Run as root through `bench/storm.sh`.
//!
//! ```text
//! vigil-storm --vigil target/release/vigil [--rounds 5] [--opens 300000] [--execs 10000] [--only open|exec|uring] [--urings 1000000]
//! ```
//!
//! `--only uring` runs an io_uring storm instead (no-ops in batches of 32:
//! nothing vigil reports, but its io_uring submission and completion
//! programs run for every request), for the cost those programs add to
//! io_uring-heavy workloads.
//!
//! Each round runs every storm twice: once with no vigil running, once with
//! vigil running (default configuration, exporting over gRPC to a receiver
//! in this process). The storm itself runs in a child process that times
//! only its own loop. After a monitored storm the receiver must have every
//! storm event (open records of the child's pid and the storm file; exec
//! records of /bin/true children of the storm process, recognised by their
//! body): anything missing is reported as loss and makes the run fail.
//! Printed: per-round times, the median monitored/unmonitored ratio and the
//! median added microseconds per event, and the same ratio of the storm's
//! own CPU time (its children's included): that one counts the probes'
//! in-kernel work but not the time the storm waited for a CPU that vigil or
//! the receiver held, so it separates the two on a small machine. Each
//! monitored round also prints the CPU time vigil and the receiver used
//! while the storm ran (what competes with the storm for the CPUs). The
//! receiver decodes only each record's event name and body (attributes are
//! skipped unparsed), so the loopback collector's own cost stays small next
//! to vigil's.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::codegen::{http, BoxFuture, Service};

// The receiver decodes only what it counts: each record's event name,
// body and uid (attributes are skipped unparsed), so the loopback
// collector costs little next to vigil, as a real collector on another
// host would. Field numbers from opentelemetry/proto/logs/v1/logs.proto.
#[derive(Clone, PartialEq, prost::Message)]
struct LiteRequest {
    #[prost(message, repeated, tag = "1")]
    resource_logs: Vec<LiteResourceLogs>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LiteResourceLogs {
    #[prost(message, repeated, tag = "2")]
    scope_logs: Vec<LiteScopeLogs>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LiteScopeLogs {
    #[prost(message, repeated, tag = "2")]
    log_records: Vec<LiteLogRecord>,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LiteLogRecord {
    #[prost(message, optional, tag = "5")]
    body: Option<LiteAnyValue>,
    #[prost(string, tag = "12")]
    event_name: String,
}
#[derive(Clone, PartialEq, prost::Message)]
struct LiteAnyValue {
    #[prost(string, tag = "1")]
    string_value: String,
}

/// Any other OTLP request (spans, metrics): accepted, not decoded.
#[derive(Clone, PartialEq, prost::Message)]
struct Ignored {}

/// What the receiver is looking for and what it found.
#[derive(Debug, Default)]
struct Tally {
    /// Storm process whose events count.
    storm_pid: i64,
    /// The file the open storm opens.
    open_path: String,
    /// Matching open records.
    opens: u64,
    /// Exec records of /bin/true children of the storm.
    execs: u64,
    /// Every record received.
    total: u64,
    /// vigil.telemetry.loss records received.
    loss_records: u64,
    /// The marker open arrived (vigil is up).
    marker_seen: bool,
    marker_path: String,
}

#[derive(Debug, Clone, Default)]
struct Receiver(Arc<Mutex<Tally>>);

impl Receiver {
    fn count(&self, req: &LiteRequest) {
        let Ok(mut t) = self.0.lock() else { return };
        // Bodies: "open <path> by <exe> pid=<pid>: ..." and
        // "exec /usr/bin/true [...] pid=<pid> ppid=<ppid> uid=0".
        let open_prefix = format!("open {} by ", t.open_path);
        let open_pid = format!(" pid={}:", t.storm_pid);
        let marker = format!("open {} by ", t.marker_path);
        let exec_ppid = format!(" ppid={} ", t.storm_pid);
        for rl in &req.resource_logs {
            for sl in &rl.scope_logs {
                for r in &sl.log_records {
                    t.total += 1;
                    let body = r.body.as_ref().map_or("", |b| b.string_value.as_str());
                    match r.event_name.as_str() {
                        "vigil.file.open" if body.starts_with(&marker) => t.marker_seen = true,
                        "vigil.file.open" if body.starts_with(&open_prefix) && body.contains(&open_pid) => t.opens += 1,
                        "vigil.process.exec" if body.starts_with("exec ") && body.contains("/true [") && body.contains(&exec_ppid) => {
                            t.execs += 1
                        }
                        "vigil.telemetry.loss" => t.loss_records += 1,
                        _ => {}
                    }
                }
            }
        }
    }
}

struct Export(Receiver);

struct Accept;

impl tonic::server::UnaryService<Ignored> for Accept {
    type Response = ExportLogsServiceResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(&mut self, _request: tonic::Request<Ignored>) -> Self::Future {
        // An empty response encodes the same for every OTLP signal.
        Box::pin(async { Ok(tonic::Response::new(ExportLogsServiceResponse { partial_success: None })) })
    }
}

impl tonic::server::UnaryService<LiteRequest> for Export {
    type Response = ExportLogsServiceResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<LiteRequest>) -> Self::Future {
        self.0.count(request.get_ref());
        Box::pin(async { Ok(tonic::Response::new(ExportLogsServiceResponse { partial_success: None })) })
    }
}

impl Service<http::Request<tonic::body::Body>> for Receiver {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let rx = self.clone();
        Box::pin(async move {
            let mut accept = tonic::codec::EnabledCompressionEncodings::default();
            accept.enable(tonic::codec::CompressionEncoding::Gzip);
            let none = tonic::codec::EnabledCompressionEncodings::default();
            if req.uri().path() == "/opentelemetry.proto.collector.logs.v1.LogsService/Export" {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<ExportLogsServiceResponse, LiteRequest>::default())
                    .apply_compression_config(accept, none)
                    .apply_max_message_size_config(Some(256 << 20), None);
                Ok(grpc.unary(Export(rx), req).await)
            } else {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<ExportLogsServiceResponse, Ignored>::default())
                    .apply_compression_config(accept, none)
                    .apply_max_message_size_config(Some(256 << 20), None);
                Ok(grpc.unary(Accept, req).await)
            }
        })
    }
}

/// The storm workloads, run in a child (`vigil-storm open N PATH` /
/// `vigil-storm exec N`): print the loop's time in nanoseconds.
fn child_main(args: &[String]) -> ! {
    let n: u64 = args[1].parse().unwrap();
    let start = Instant::now();
    match args[0].as_str() {
        "open" => {
            let path = CString::new(args[2].as_bytes()).unwrap();
            for _ in 0..n {
                // SAFETY: a valid C string; the descriptor is closed at once.
                let fd = unsafe { libc::openat(libc::AT_FDCWD, path.as_ptr(), libc::O_WRONLY) };
                assert!(fd >= 0, "open: {}", std::io::Error::last_os_error());
                // SAFETY: our descriptor.
                unsafe { libc::close(fd) };
            }
        }
        "exec" => {
            let prog = CString::new("/bin/true").unwrap();
            let argv = [prog.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null()];
            for _ in 0..n {
                // SAFETY: fork in a single-threaded child; the child only
                // calls execve and _exit (async-signal-safe).
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: valid NUL-terminated arrays.
                    unsafe {
                        libc::execve(prog.as_ptr(), argv.as_ptr(), envp.as_ptr());
                        libc::_exit(127);
                    }
                }
                assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
                let mut status = 0;
                // SAFETY: waiting for our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
            }
        }
        "uring" => {
            // io_uring no-ops in batches: nothing vigil reports, but its
            // submission and completion programs run for every request.
            let mut ring = io_uring::IoUring::new(URING_BATCH).unwrap();
            let mut left = n;
            while left > 0 {
                let batch = left.min(u64::from(URING_BATCH)) as usize;
                for _ in 0..batch {
                    let nop = io_uring::opcode::Nop::new().build();
                    // SAFETY: a no-op refers to no memory.
                    unsafe { ring.submission().push(&nop).unwrap() };
                }
                ring.submit_and_wait(batch).unwrap();
                assert_eq!(ring.completion().count(), batch);
                left -= batch as u64;
            }
        }
        other => panic!("unknown storm {other}"),
    }
    // The loop's wall time, then the CPU time the storm used, its own and
    // its reaped children's (user + system: the probes' in-kernel work is
    // part of it, waiting for a CPU is not).
    let cpu = |who: libc::c_int| {
        // SAFETY: a plain struct of integers, filled by getrusage.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is ours and large enough.
        unsafe { libc::getrusage(who, &mut ru) };
        let ns = |t: libc::timeval| t.tv_sec as u128 * 1_000_000_000 + t.tv_usec as u128 * 1000;
        ns(ru.ru_utime) + ns(ru.ru_stime)
    };
    println!("{} {}", start.elapsed().as_nanos(), cpu(libc::RUSAGE_SELF) + cpu(libc::RUSAGE_CHILDREN));
    std::process::exit(0)
}

/// io_uring no-ops per submission in the io_uring storm.
const URING_BATCH: u32 = 32;

struct Vigil(Child);

/// CPU time (user + system) process `pid` has used so far, from
/// /proc/<pid>/stat (zero when it can not be read).
fn proc_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may contain spaces):
    // state is field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().skip(11).take(2).filter_map(|v| v.parse().ok()).collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(f.iter().sum::<u64>() * 1_000_000_000 / hz)
}

/// CPU time this process (the OTLP receiver's threads, and this loop) has
/// used so far.
fn own_cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(u.ru_utime) + tv(u.ru_stime)
}

impl Vigil {
    fn start(bin: &Path, endpoint: &str, log: &Path) -> Vigil {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(bin)
            .args(["--endpoint", endpoint, "--log-level", "warn"])
            .env("VIGIL_HEALTH__LISTEN", "")
            .env("VIGIL_SPANS__STATE_PATH", "")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Vigil(child)
    }

    fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run one storm in a child; its pid is published to the receiver before
/// the child starts its loop (the child waits for a byte on stdin).
fn run_storm(rx: &Receiver, kind: &str, n: u64, path: &Path) -> (u32, Duration, Duration) {
    let me = std::env::current_exe().unwrap();
    let mut child = Command::new(me)
        .arg("--child")
        .arg(kind)
        .arg(n.to_string())
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    {
        let mut t = rx.0.lock().unwrap();
        t.storm_pid = i64::from(pid);
        t.opens = 0;
        t.execs = 0;
    }
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"go").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "storm child failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap());
    let (ns, cpu) = (fields.next().unwrap(), fields.next().unwrap());
    (pid, Duration::from_nanos(ns), Duration::from_nanos(cpu))
}

/// One storm's measurements over the rounds (seconds).
struct Storm {
    kind: &'static str,
    n: u64,
    /// Wall time of the loop, unmonitored and monitored.
    base: Vec<f64>,
    mon: Vec<f64>,
    /// CPU time of the storm process, unmonitored and monitored.
    base_cpu: Vec<f64>,
    mon_cpu: Vec<f64>,
}

impl Storm {
    fn new(kind: &'static str, n: u64) -> Storm {
        Storm { kind, n, base: vec![], mon: vec![], base_cpu: vec![], mon_cpu: vec![] }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let mut go = [0u8; 2];
        use std::io::Read;
        std::io::stdin().read_exact(&mut go).unwrap();
        child_main(&args[1..]);
    }
    let mut vigil_bin = PathBuf::from("target/release/vigil");
    let (mut rounds, mut opens, mut execs, mut urings) = (5usize, 300_000u64, 10_000u64, 1_000_000u64);
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{a} needs a value")).clone();
        match a.as_str() {
            "--vigil" => vigil_bin = PathBuf::from(val()),
            "--rounds" => rounds = val().parse().unwrap(),
            "--opens" => opens = val().parse().unwrap(),
            "--execs" => execs = val().parse().unwrap(),
            "--urings" => urings = val().parse().unwrap(),
            "--only" => only = Some(val()),
            other => panic!("unknown argument {other}"),
        }
    }
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "run as root (vigil loads eBPF programs)");
    let dir = std::env::temp_dir().join(format!("vigil-storm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let open_path = dir.join("storm-file");
    std::fs::write(&open_path, b"").unwrap();
    let marker = dir.join("marker");

    let rx = Receiver::default();
    {
        let mut t = rx.0.lock().unwrap();
        t.open_path = open_path.to_string_lossy().into_owned();
        t.marker_path = marker.to_string_lossy().into_owned();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let incoming =
        runtime.block_on(async { tonic::transport::server::TcpIncoming::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0))) }).unwrap();
    let addr = incoming.local_addr().unwrap();
    let svc = rx.clone();
    runtime.spawn(async move {
        tonic::transport::Server::builder().serve_with_incoming(svc, incoming).await.unwrap();
    });
    let endpoint = format!("http://{addr}");
    println!("receiver on {endpoint}; {rounds} rounds; open storm {opens}; exec storm {execs}");

    let mut results = vec![Storm::new("open", opens), Storm::new("exec", execs)];
    // The io_uring storm runs only when asked for (--only uring).
    if only.as_deref() == Some("uring") {
        results.push(Storm::new("uring", urings));
    }
    if let Some(kind) = &only {
        results.retain(|r| r.kind == kind);
        assert!(!results.is_empty(), "--only takes open, exec or uring, not {kind:?}");
    }
    let mut lost_total = 0u64;
    for round in 0..rounds {
        for Storm { kind, n, base, mon, base_cpu, mon_cpu } in results.iter_mut() {
            // Unmonitored.
            let (_, t0, c0) = run_storm(&rx, kind, *n, &open_path);
            // Monitored: start vigil, wait until it reports, run, wait for
            // every event to arrive, stop it.
            let log = dir.join(format!("vigil-{kind}-{round}.log"));
            let v = Vigil::start(&vigil_bin, &endpoint, &log);
            rx.0.lock().unwrap().marker_seen = false;
            let ready = Instant::now() + Duration::from_secs(60);
            while !rx.0.lock().unwrap().marker_seen {
                assert!(Instant::now() < ready, "vigil never reported (log: {})", log.display());
                std::fs::write(&marker, b"").unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
            let (vigil_cpu0, rx_cpu0) = (proc_cpu(v.0.id()), own_cpu());
            let (_, t1, c1) = run_storm(&rx, kind, *n, &open_path);
            let (vigil_cpu, rx_cpu) = (proc_cpu(v.0.id()) - vigil_cpu0, own_cpu() - rx_cpu0);
            // Wait for every event, or until nothing arrived for 10 s. The
            // io_uring storm's no-ops are not events: nothing to wait for.
            let expected = if *kind == "uring" { 0 } else { *n };
            let mut deadline = Instant::now() + Duration::from_secs(10);
            let mut last = u64::MAX;
            let got = loop {
                let got = {
                    let t = rx.0.lock().unwrap();
                    if *kind == "open" {
                        t.opens
                    } else {
                        t.execs
                    }
                };
                if got >= expected || Instant::now() > deadline {
                    break got;
                }
                if got != last {
                    last = got;
                    deadline = Instant::now() + Duration::from_secs(10);
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            v.stop();
            let lost = expected.saturating_sub(got);
            lost_total += lost;
            if lost > 0 {
                // Say where: vigil logs each loss window (stage, reason).
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                for line in text.lines().filter(|l| l.contains("records lost")).take(5) {
                    println!("  vigil: {line}");
                }
            }
            base.push(t0.as_secs_f64());
            mon.push(t1.as_secs_f64());
            base_cpu.push(c0.as_secs_f64());
            mon_cpu.push(c1.as_secs_f64());
            println!(
                "round {round} {kind:4}: unmonitored {:8.3} s  monitored {:8.3} s  ratio {:5.3}  (storm CPU {:.3} -> {:.3} s, {:5.3}x; \
                 during it vigil {:.3} s, receiver {:.3} s CPU)  reported {got}/{expected}  lost {lost}",
                t0.as_secs_f64(),
                t1.as_secs_f64(),
                t1.as_secs_f64() / t0.as_secs_f64(),
                c0.as_secs_f64(),
                c1.as_secs_f64(),
                c1.as_secs_f64() / c0.as_secs_f64(),
                vigil_cpu.as_secs_f64(),
                rx_cpu.as_secs_f64()
            );
        }
    }
    println!();
    for Storm { kind, n, base, mon, base_cpu, mon_cpu } in &results {
        let mut ratios: Vec<f64> = base.iter().zip(mon).map(|(b, m)| m / b).collect();
        let mut cpu_ratios: Vec<f64> = base_cpu.iter().zip(mon_cpu).map(|(b, m)| m / b).collect();
        let mut added: Vec<f64> = base.iter().zip(mon).map(|(b, m)| (m - b) / *n as f64 * 1e6).collect();
        let mut b = base.clone();
        let mut m = mon.clone();
        println!(
            "{kind} storm ({n} events): median unmonitored {:.3} s, monitored {:.3} s, median ratio {:.3}x, added {:.2} us/event; \
             the storm's own CPU time (in-kernel probe work included, waiting for a CPU not): median ratio {:.3}x",
            median(&mut b),
            median(&mut m),
            median(&mut ratios),
            median(&mut added),
            median(&mut cpu_ratios)
        );
    }
    let t = rx.0.lock().unwrap();
    println!("records received {}; vigil loss records {}; storm events lost {lost_total}", t.total, t.loss_records);
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
    if lost_total > 0 {
        std::process::exit(1);
    }
}
