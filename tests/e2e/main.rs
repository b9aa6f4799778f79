//! End to end: the vigil binary, run as root, exports through a real rotel
//! collector; what rotel forwards is captured by an OTLP/gRPC sink in this
//! process and asserted field by field.
//!
//! Needs root (to load the probes), the rotel Python package and a built
//! `target/debug/vigil` (`cargo build -p vigil`). `ci/test.sh` runs these
//! with `--ignored --test-threads=1`.
#![allow(clippy::unwrap_used)]

mod delivery;
mod metadata;
mod metrics;

/// The fake metadata servers of the `metadata` test (only the Docker one is
/// used here).
#[allow(dead_code)]
#[path = "../metadata/fakes.rs"]
mod fakes;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use vigil_tests::attrs::{int_attr, str_array_attr, str_attr, value};
use vigil_tests::collector::{tail, unix_now_ns, wait_until, ChildGuard, Received, Rotel, Sink, TempDir, WAIT};

fn body(r: &Received) -> Option<&str> {
    match r.record.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// The exec record of the marker command, found by its argv (not by
/// event_name, so a collector that drops event_name fails on the assertion
/// about it rather than with "not found").
fn find_exec<'a>(records: &'a [Received], marker: &str) -> Option<&'a Received> {
    records
        .iter()
        .find(|r| str_array_attr(&r.record.attributes, "process.command_args").is_some_and(|args| args.iter().any(|a| a == marker)))
}

/// The exit record of `pid`: it alone carries `process.exit.time`.
fn find_exit(records: &[Received], pid: i64) -> Option<&Received> {
    records
        .iter()
        .find(|r| int_attr(&r.record.attributes, "process.pid") == Some(pid) && value(&r.record.attributes, "process.exit.time").is_some())
}

/// What to print when the pipeline misbehaves.
fn diagnostics(vigil_err: &Path, rotel: &Rotel, sink: &Sink, marker: &str) -> String {
    format!(
        "\n--- vigil stderr ---\n{}\n--- rotel ---\n{}\n--- sink: {} export requests, {} records",
        tail(vigil_err, 4000),
        rotel.summary(marker),
        sink.requests(),
        sink.records().len()
    )
}

#[derive(Debug, Clone, Copy)]
enum Protocol {
    Grpc,
    HttpProtobuf,
}

fn end_to_end(protocol: Protocol) {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-e2e");
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).expect("create cwd");

    let sink = Sink::start();
    let mut rotel = Rotel::start(dir.path(), &sink.endpoint());
    let (endpoint, proto) = match protocol {
        Protocol::Grpc => (rotel.grpc_endpoint(), "grpc"),
        Protocol::HttpProtobuf => (rotel.http_endpoint(), "http/protobuf"),
    };

    let vigil_err = dir.path().join("vigil.stderr");
    let mut vigil = ChildGuard::spawn(
        "vigil",
        vigil_tests::vigil_command()
            .args(["--endpoint", &endpoint, "--protocol", proto, "--log-level", "info"])
            .env("VIGIL_EXPORT__BATCH_TIMEOUT_MS", "50")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("vigil.stdout")).expect("vigil stdout file"))
            .stderr(std::fs::File::create(&vigil_err).expect("vigil stderr file")),
    );
    let attached = wait_until(WAIT, || vigil.try_status().is_some() || tail(&vigil_err, 1 << 20).contains("probes attached"));
    assert!(
        attached && vigil.try_status().is_none(),
        "vigil did not attach its probes within {WAIT:?} (status {:?}):\n{}",
        vigil.try_status(),
        tail(&vigil_err, 4000)
    );
    // vigil turns transparent huge pages off for its own memory (each fresh
    // 2 MiB page is zeroed whole; see tune_allocator in src/bin/vigil.rs).
    let status = std::fs::read_to_string(format!("/proc/{}/status", vigil.pid())).expect("vigil's /proc status");
    if let Some(thp) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert_eq!(thp.split_whitespace().nth(1), Some("0"), "vigil's {thp}");
    } else {
        eprintln!("NOTE: this kernel's /proc/<pid>/status has no THP_enabled line: not checked");
    }

    // The marker command.
    let marker = format!("vigil-e2e-{}", vigil_tests::collector::random_id());
    let before_ns = unix_now_ns();
    let mut echo = Command::new("/bin/echo").arg(&marker).current_dir(&cwd).stdout(Stdio::null()).spawn().expect("run /bin/echo");
    let echo_pid = i64::from(echo.id());
    let echo_status = echo.wait().expect("wait for /bin/echo");
    let after_ns = unix_now_ns();
    assert!(echo_status.success(), "/bin/echo failed: {echo_status}");

    // Wait for both records and the echo's spans to come out of rotel, then
    // stop vigil (it flushes) and rotel.
    let echo_spans = |sink: &Sink| -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
        sink.trace_requests()
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .filter(|sp| int_attr(&sp.attributes, "process.pid") == Some(echo_pid))
            .cloned()
            .collect()
    };
    let arrived = wait_until(WAIT, || {
        let records = sink.records();
        find_exec(&records, &marker).is_some() && find_exit(&records, echo_pid).is_some() && echo_spans(&sink).len() >= 2
    });
    let vigil_status = vigil.stop(libc::SIGINT, WAIT);
    assert!(
        arrived,
        "the exec and exit records of {marker} (pid {echo_pid}) did not arrive through rotel within {WAIT:?}{}",
        diagnostics(&vigil_err, &rotel, &sink, &marker)
    );
    assert!(
        vigil_status.is_some_and(|s| s.success()),
        "vigil did not exit 0 within {WAIT:?} of SIGINT: {vigil_status:?}{}",
        diagnostics(&vigil_err, &rotel, &sink, &marker)
    );
    let rotel_status = rotel.stop();
    assert!(
        rotel_status.is_some_and(|s| s.success()),
        "rotel did not exit 0 within {WAIT:?} of SIGTERM: {rotel_status:?}{}",
        diagnostics(&vigil_err, &rotel, &sink, &marker)
    );

    let records = sink.records();
    // Every record that came through the collector conforms to the schema.
    let schema = vigil_tests::schema::Schema::load();
    for r in &records {
        schema.validate(&r.record);
    }

    // The exec record.
    let exec = find_exec(&records, &marker).unwrap();
    let lr = &exec.record;
    let a = &lr.attributes;
    assert_eq!(lr.event_name, "vigil.process.exec", "event_name through rotel, body {:?}", lr.body);
    assert!(body(exec).is_some_and(|b| !b.is_empty()), "exec body: {:?}", lr.body);
    let slack = Duration::from_secs(3).as_nanos() as u64;
    assert!(
        lr.time_unix_nano >= before_ns - slack && lr.time_unix_nano <= after_ns + slack,
        "time_unix_nano {} not within 3 s of [{before_ns}, {after_ns}]",
        lr.time_unix_nano
    );
    let observed_slack = Duration::from_millis(250).as_nanos() as u64;
    assert!(
        lr.observed_time_unix_nano + observed_slack >= lr.time_unix_nano,
        "observed_time_unix_nano {} before time_unix_nano {}",
        lr.observed_time_unix_nano,
        lr.time_unix_nano
    );
    assert_eq!(str_array_attr(a, "process.command_args"), Some(vec!["/bin/echo".to_owned(), marker.clone()]));
    assert_eq!(int_attr(a, "process.pid"), Some(echo_pid));
    let echo_path = std::fs::canonicalize("/bin/echo").expect("canonicalize /bin/echo");
    assert_eq!(str_attr(a, "process.executable.path"), echo_path.to_str());
    assert_eq!(str_attr(a, "process.working_directory"), cwd.to_str());
    assert!(str_attr(a, "log.record.uid").is_some_and(|u| !u.is_empty()), "log.record.uid: {a:?}");
    assert!(int_attr(a, "vigil.stream.seq").is_some(), "vigil.stream.seq: {a:?}");

    // The Resource.
    let ra = &exec.resource.attributes;
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("read boot_id");
    assert_eq!(str_attr(ra, "service.name"), Some("vigil"));
    assert_eq!(str_attr(ra, "os.type"), Some("linux"));
    assert_eq!(str_attr(ra, "vigil.host.boot_id"), Some(boot_id.trim()));
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(str_attr(ra, "host.arch"), Some(arch));
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        assert_eq!(str_attr(ra, "host.name"), Some(host.trim()));
    }
    let hooks = str_array_attr(ra, "vigil.hooks.active").unwrap_or_default();
    assert!(hooks.iter().any(|h| h.starts_with("vigil.process.exec=")), "vigil.hooks.active: {hooks:?}");

    // The spans of the echo process: its fork span (this test's image) and
    // its exec span ("echo"), parent-linked, through rotel; the exec record
    // carries the exec span's ids.
    let spans = echo_spans(&sink);
    let exec_span = spans.iter().find(|sp| sp.name == "echo").unwrap_or_else(|| panic!("echo's exec span: {spans:#?}"));
    let fork_span = spans.iter().find(|sp| sp.name != "echo").unwrap_or_else(|| panic!("echo's fork span: {spans:#?}"));
    assert_eq!(exec_span.parent_span_id, fork_span.span_id, "the exec span is a child of the image it replaced");
    assert_eq!(exec_span.trace_id, fork_span.trace_id);
    assert_eq!(exec_span.trace_id.len(), 16);
    assert_eq!(str_attr(&exec_span.attributes, "vigil.span.end_reason"), Some("exit"));
    assert_eq!(int_attr(&exec_span.attributes, "process.exit.code"), Some(0));
    assert!(exec_span.start_time_unix_nano <= exec_span.end_time_unix_nano);
    assert_eq!(lr.span_id, exec_span.span_id, "the exec record carries its span");
    assert_eq!(lr.trace_id, exec_span.trace_id);

    // The exit record of the same process.
    let exit = find_exit(&records, echo_pid).unwrap();
    assert_eq!(exit.record.event_name, "vigil.process.exit", "event_name through rotel, body {:?}", exit.record.body);
    assert_eq!(int_attr(&exit.record.attributes, "process.exit.code"), Some(0), "exit record: {:?}", exit.record);
    assert!(exit.record.time_unix_nano >= lr.time_unix_nano, "exit before exec");
    assert_eq!(str_attr(&exit.resource.attributes, "vigil.host.boot_id"), Some(boot_id.trim()));
}

#[test]
#[ignore = "needs root and the rotel collector: run by ci/test.sh"]
fn grpc_end_to_end() {
    end_to_end(Protocol::Grpc);
}

#[test]
#[ignore = "needs root and the rotel collector: run by ci/test.sh"]
fn http_end_to_end() {
    end_to_end(Protocol::HttpProtobuf);
}

/// Run vigil without an endpoint, run `/bin/echo <args>`, stop vigil and
/// return (stdout, echo pid).
fn run_to_stdout(format: &str, echo_args: &[&str], stop_signal: libc::c_int) -> (String, u32) {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-stdout");
    let out_path = dir.path().join("vigil.stdout");
    let err_path = dir.path().join("vigil.stderr");
    let mut vigil = ChildGuard::spawn(
        "vigil",
        vigil_tests::vigil_command()
            .args(["--stdout-format", format])
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
            .env("VIGIL_EXPORT__BATCH_TIMEOUT_MS", "50")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("stderr file")),
    );
    assert!(wait_until(WAIT, || tail(&err_path, 1 << 20).contains("probes attached")), "vigil did not attach:\n{}", tail(&err_path, 4000));
    let mut echo = Command::new("/bin/echo").args(echo_args).stdout(Stdio::null()).spawn().expect("echo");
    let pid = echo.id();
    assert!(echo.wait().expect("echo").success());
    let needle = format!("process.pid={pid} ");
    let json_needle = format!("\"intValue\":\"{pid}\"");
    let seen = wait_until(WAIT, || {
        let out = std::fs::read_to_string(&out_path).unwrap_or_default();
        out.contains(&needle) || out.contains(&json_needle)
    });
    let status = vigil.stop(stop_signal, WAIT);
    assert!(status.is_some_and(|s| s.success()), "vigil did not exit 0 on signal {stop_signal}: {status:?}\n{}", tail(&err_path, 4000));
    assert!(seen, "no record of pid {pid} on stdout:\n{}", tail(&out_path, 4000));
    (std::fs::read_to_string(&out_path).expect("stdout"), pid)
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn stdout_otlp_json_lines_are_export_requests() {
    let marker = format!("vigil-json-{}", vigil_tests::collector::random_id());
    let (out, pid) = run_to_stdout("otlp-json", &[&marker], libc::SIGINT);
    let mut exec = None;
    for line in out.lines() {
        let req: opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not an OTLP/JSON export request ({e}): {line}"));
        for rl in &req.resource_logs {
            assert_eq!(str_attr(&rl.resource.as_ref().expect("resource").attributes, "service.name"), Some("vigil"));
            for sl in &rl.scope_logs {
                for r in &sl.log_records {
                    if r.event_name == "vigil.process.exec" && int_attr(&r.attributes, "process.pid") == Some(i64::from(pid)) {
                        exec = Some(r.clone());
                    }
                }
            }
        }
    }
    let exec = exec.expect("exec record of the marker in the JSON output");
    assert_eq!(str_array_attr(&exec.attributes, "process.command_args"), Some(vec!["/bin/echo".to_owned(), marker]));
    assert!(exec.time_unix_nano > 0 && exec.observed_time_unix_nano > 0);
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn stdout_text_keeps_one_line_per_record() {
    let forged = "x\n2026-01-01T00:00:00Z INFO vigil.process.exec forged";
    let (out, pid) = run_to_stdout("text", &["vigil-text", forged, "\x1b[2J"], libc::SIGTERM);
    assert!(out.starts_with("# resource service.name=vigil"), "resource line first:\n{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(&format!("process.pid={pid} "))).collect();
    // The third field of a record line is its event name (span lines say SPAN).
    let exec: Vec<&&str> = lines.iter().filter(|l| l.split(' ').nth(2) == Some("vigil.process.exec")).collect();
    assert_eq!(exec.len(), 1, "exactly one exec line for pid {pid}: {lines:#?}");
    assert!(exec[0].contains("\"x\\x0a2026-01-01T00:00:00Z INFO vigil.process.exec forged\""), "escaped, quoted argument: {}", exec[0]);
    assert!(exec[0].contains("\\x1b[2J"), "escape sequence neutralised: {}", exec[0]);
    assert!(!out.contains('\x1b'), "no raw escape byte on stdout");
    assert!(!out.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")), "no forged line");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn check_reports_every_hook_and_exits_zero() {
    vigil_tests::require_root();
    let out = vigil_tests::vigil_command().arg("check").output().expect("vigil check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for hook in ["tp_btf/sched_process_exec", "tp_btf/sched_process_fork", "tp_btf/sched_process_exit"] {
        assert!(stdout.lines().any(|l| l.starts_with("[ok  ]") && l.contains(hook)), "{hook} not reported ok:\n{stdout}");
    }
    assert!(stdout.contains("vigil can run on this host"), "{stdout}");
    // This kernel (6.18) has bpf_rdonly_cast, also to untyped pointers:
    // the probes use direct loads, for names too.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("[ok  ] direct kernel loads") && l.contains("plain loads") && l.contains("names and thread names too")),
        "{stdout}"
    );
    let forced = vigil_tests::vigil_command().arg("check").env("VIGIL_PROBES__DIRECT_LOADS", "false").output().expect("vigil check");
    let forced = String::from_utf8_lossy(&forced.stdout);
    assert!(forced.lines().any(|l| l.starts_with("[no  ] direct kernel loads") && l.contains("direct_loads = false")), "{forced}");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn shutdown_with_an_unreachable_collector_keeps_its_deadline() {
    shutdown_deadline_with_an_unreachable_collector(false);
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn shutdown_deadline_spools_what_is_unsent() {
    shutdown_deadline_with_an_unreachable_collector(true);
}

/// Stop vigil while its exporter retries against a closed port: it exits
/// within the deadline; without a spool the unsent records are counted
/// lost, with one they are spooled and nothing is lost.
fn shutdown_deadline_with_an_unreachable_collector(with_spool: bool) {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-deadline");
    let spool = if with_spool { dir.path().join("spool").to_string_lossy().into_owned() } else { String::new() };
    let err_path = dir.path().join("vigil.stderr");
    let port = vigil_tests::collector::free_port();
    let mut vigil = ChildGuard::spawn(
        "vigil",
        vigil_tests::vigil_command()
            .args(["--endpoint", &format!("http://127.0.0.1:{port}"), "--protocol", "grpc"])
            .env("VIGIL_EXPORT__SHUTDOWN_DEADLINE_MS", "2000")
            .env("VIGIL_EXPORT__BATCH_TIMEOUT_MS", "50")
            .env("VIGIL_SPOOL__PATH", &spool)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).expect("stderr file")),
    );
    assert!(wait_until(WAIT, || tail(&err_path, 1 << 20).contains("probes attached")), "vigil did not attach:\n{}", tail(&err_path, 4000));
    for _ in 0..5 {
        Command::new("/bin/true").status().expect("true");
    }
    // Let a batch reach the exporter, which now retries against a closed port.
    std::thread::sleep(Duration::from_millis(500));
    let start = std::time::Instant::now();
    let status = vigil.stop(libc::SIGINT, WAIT);
    let took = start.elapsed();
    let err = tail(&err_path, 1 << 20);
    assert!(status.is_some_and(|s| s.success()), "vigil did not exit 0: {status:?}\n{err}");
    assert!(took < Duration::from_secs(8), "shutdown took {took:?} with a 2 s deadline\n{err}");
    assert!(err.contains("shutdown deadline"), "the given-up records are reported:\n{err}");
    let lost: u64 = err
        .rsplit("shutdown_lost=")
        .next()
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("summary line with shutdown_lost");
    if with_spool {
        assert_eq!(lost, 0, "with a spool nothing is lost:\n{err}");
        let segments = std::fs::read_dir(&spool)
            .expect("spool dir")
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
            .count();
        assert!(segments > 0, "the unsent records are in the spool:\n{err}");
        assert!(err.contains("written to the spool"), "{err}");
    } else {
        assert!(lost > 0, "records were pending at the deadline:\n{err}");
    }
}

// ---------------------------------------------------------------------------
// vigil exporting directly to the in-test sink, which misbehaves on purpose:
// loss accounting, partial success, heartbeats.
// ---------------------------------------------------------------------------

/// Start vigil exporting over OTLP/gRPC straight to `sink`, with `env`
/// overrides, and wait until its probes are attached. Returns the guard and
/// the path of its stderr.
fn start_vigil_to_sink(dir: &TempDir, sink: &Sink, env: &[(&str, &str)]) -> (ChildGuard, std::path::PathBuf) {
    vigil_tests::require_root();
    let err_path = dir.path().join("vigil.stderr");
    let mut cmd = vigil_tests::vigil_command();
    cmd.args(["--endpoint", &sink.endpoint(), "--protocol", "grpc", "--log-level", "info"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("vigil.stdout")).expect("vigil stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("vigil stderr file"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut vigil = ChildGuard::spawn("vigil", &mut cmd);
    let attached = wait_until(WAIT, || vigil.try_status().is_some() || tail(&err_path, 1 << 20).contains("probes attached"));
    assert!(
        attached && vigil.try_status().is_none(),
        "vigil did not attach its probes within {WAIT:?} (status {:?}):\n{}",
        vigil.try_status(),
        tail(&err_path, 4000)
    );
    (vigil, err_path)
}

/// SIGINT vigil and require exit status 0 within [`WAIT`].
fn stop_vigil(vigil: &mut ChildGuard, err_path: &Path) {
    let status = vigil.stop(libc::SIGINT, WAIT);
    assert!(status.is_some_and(|s| s.success()), "vigil did not exit 0 within {WAIT:?} of SIGINT: {status:?}\n{}", tail(err_path, 4000));
}

/// Run `/bin/true` to completion; its pid.
fn run_true() -> i64 {
    let mut child = Command::new("/bin/true").stdin(Stdio::null()).stdout(Stdio::null()).spawn().expect("run /bin/true");
    let pid = i64::from(child.id());
    assert!(child.wait().expect("wait for /bin/true").success());
    pid
}

fn event_name(r: &Received) -> &str {
    &r.record.event_name
}

/// A `vigil.telemetry.loss` record.
#[derive(Debug, Clone)]
struct LossRec {
    telemetry_seq: i64,
    stage: String,
    error_type: String,
    count: i64,
    total: i64,
    event: Option<String>,
    stream: Option<String>,
    request: usize,
}

fn loss_records(records: &[Received]) -> Vec<LossRec> {
    records
        .iter()
        .filter(|r| event_name(r) == "vigil.telemetry.loss")
        .map(|r| {
            let a = &r.record.attributes;
            let need_int = |k: &str| int_attr(a, k).unwrap_or_else(|| panic!("loss record without {k}: {:?}", r.record));
            let need_str = |k: &str| str_attr(a, k).unwrap_or_else(|| panic!("loss record without {k}: {:?}", r.record)).to_owned();
            LossRec {
                telemetry_seq: need_int("vigil.telemetry.seq"),
                stage: need_str("vigil.loss.stage"),
                error_type: need_str("error.type"),
                count: need_int("vigil.loss.count"),
                total: need_int("vigil.loss.total"),
                event: str_attr(a, "vigil.loss.event_name").map(str::to_owned),
                stream: str_attr(a, "vigil.stream.id").map(str::to_owned),
                request: r.request,
            }
        })
        .collect()
}

/// A `vigil.telemetry.heartbeat` record: its `vigil.heartbeat.*` integers.
#[derive(Debug, Clone)]
struct Heartbeat {
    telemetry_seq: i64,
    time_ns: u64,
    counters: std::collections::BTreeMap<String, i64>,
}

impl Heartbeat {
    fn get(&self, key: &str) -> i64 {
        *self.counters.get(key).unwrap_or_else(|| panic!("heartbeat {} without {key}: {:?}", self.telemetry_seq, self.counters))
    }
}

/// Heartbeats in `vigil.telemetry.seq` order.
fn heartbeats(records: &[Received]) -> Vec<Heartbeat> {
    let mut out: Vec<Heartbeat> = records
        .iter()
        .filter(|r| event_name(r) == "vigil.telemetry.heartbeat")
        .map(|r| {
            let a = &r.record.attributes;
            Heartbeat {
                telemetry_seq: int_attr(a, "vigil.telemetry.seq").unwrap_or_else(|| panic!("heartbeat without vigil.telemetry.seq: {a:?}")),
                time_ns: r.record.time_unix_nano,
                counters: a
                    .iter()
                    .filter(|kv| kv.key.starts_with("vigil.heartbeat."))
                    .filter_map(|kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(Value::IntValue(i)) => Some((kv.key.clone(), *i)),
                        _ => None,
                    })
                    .collect(),
            }
        })
        .collect();
    out.sort_by_key(|h| h.telemetry_seq);
    out
}

/// Every `log.record.uid` appears once over all requests, and no two
/// requests have the same bytes: nothing was delivered twice.
fn assert_nothing_delivered_twice(sink: &Sink) {
    let calls = sink.export_requests();
    let mut uids = std::collections::HashMap::<String, usize>::new();
    for r in sink.records() {
        let uid =
            str_attr(&r.record.attributes, "log.record.uid").unwrap_or_else(|| panic!("record without log.record.uid: {:?}", r.record));
        if let Some(first) = uids.insert(uid.to_owned(), r.request) {
            panic!("log.record.uid {uid} delivered twice: in requests {first} and {}", r.request);
        }
    }
    let mut bytes = std::collections::HashMap::<&[u8], usize>::new();
    for (i, c) in calls.iter().enumerate() {
        if let Some(first) = bytes.insert(&c.bytes, i) {
            panic!("requests {first} and {i} are the same request sent twice");
        }
    }
}

/// The CPU number of a stream id `<session>-<cpu>-<lane>`.
fn stream_cpu(stream: &str) -> usize {
    stream.rsplit('-').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("stream id {stream:?} is not <session>-<cpu>-<lane>"))
}

/// CPU numbers in a kernel CPU list (`0-3,6`).
fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().expect("cpu number"), b.parse().expect("cpu number"));
        out.extend(a..=b);
    }
    out
}

/// The calling thread's CPU affinity.
fn thread_affinity() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data (all zeroes is the empty set);
    // sched_getaffinity writes at most `size_of::<cpu_set_t>()` bytes into
    // it and CPU_ISSET only reads it, with indices below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set), 0, "sched_getaffinity");
        (0..libc::CPU_SETSIZE as usize).filter(|c| libc::CPU_ISSET(*c, &set)).collect()
    }
}

/// Pin the calling thread to `cpus`; false if the kernel refuses.
fn set_thread_affinity(cpus: &[usize]) -> bool {
    // SAFETY: as in `thread_affinity`; CPU_SET writes inside `set` for
    // indices below CPU_SETSIZE, and sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus.iter().filter(|c| **c < libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Restores the thread's affinity on drop (also when a test panics).
struct AffinityGuard(Vec<usize>);

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        let _ = set_thread_affinity(&self.0);
    }
}

/// On every online CPU, run `/bin/true` with this thread (and so the child:
/// fork, exec and exit happen there) pinned to it, again until the sink has
/// the run's exit record (a run can be dropped like any other). Returns
/// (cpu, pid) of the delivered runs, or `None` if some online CPU could not
/// be used (affinity refused); panics if the records do not arrive.
fn deliver_a_record_on_every_cpu(sink: &Sink) -> Option<Vec<(usize, i64)>> {
    let online = parse_cpu_list(&std::fs::read_to_string("/sys/devices/system/cpu/online").expect("read /sys/devices/system/cpu/online"));
    let _restore = AffinityGuard(thread_affinity());
    let deadline = std::time::Instant::now() + WAIT;
    let mut delivered = Vec::new();
    for &cpu in &online {
        loop {
            assert!(std::time::Instant::now() < deadline, "no run pinned to CPU {cpu} was delivered within {WAIT:?}");
            if !set_thread_affinity(&[cpu]) {
                return None;
            }
            let pid = run_true();
            if wait_until(Duration::from_secs(2), || find_exit(&sink.records(), pid).is_some()) {
                delivered.push((cpu, pid));
                break;
            }
        }
    }
    Some(delivered)
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn slow_collector_queue_drops_are_reported_exactly() {
    vigil_tests::require_root();
    const STALL: Duration = Duration::from_secs(5);
    let dir = TempDir::new("vigil-stall");
    let sink = Sink::start();
    // A small queue after the ring buffer (1024 records, the default is
    // 65536) and small batches: with the collector stalled, the export queue
    // (8 batches of 16) fills, then the map stage blocks, then the
    // receiver's queue fills and it must drop. Not smaller: the receiver
    // hands records on in bursts (one per ring-buffer poll), so on a busy
    // host a tiny queue also drops while the collector is fine, and a drop
    // after the last delivered record of a stream (just before shutdown)
    // shows in no gap, which would make the exact comparison below fail.
    let (mut vigil, err_path) = start_vigil_to_sink(
        &dir,
        &sink,
        &[
            ("VIGIL_PIPELINE__QUEUE_RECORDS", "1024"),
            ("VIGIL_EXPORT__BATCH_MAX_RECORDS", "16"),
            ("VIGIL_EXPORT__BATCH_TIMEOUT_MS", "50"),
            ("VIGIL_TELEMETRY__LOSS_WINDOW_MS", "200"),
            ("VIGIL_TELEMETRY__HEARTBEAT_INTERVAL_S", "1"),
            // Process records only: the exact comparison of gaps and drops
            // below needs every stream's trailing losses made visible by a
            // later record (the pinned runs do that for the critical lane);
            // the host's file and network activity would keep a bulk stream
            // whose last drops no record follows.
            ("VIGIL_PROBES__FILE", "false"),
            ("VIGIL_PROBES__NETWORK", "false"),
        ],
    );
    let diag = |sink: &Sink| {
        format!("\n--- vigil stderr ---\n{}\n--- sink: {} calls, {} answered", tail(&err_path, 4000), sink.calls(), sink.requests())
    };
    assert!(wait_until(WAIT, || !heartbeats(&sink.records()).is_empty()), "no first heartbeat{}", diag(&sink));

    // Stall the collector, then the burst: 3 records (fork, exec, exit) per
    // run; about 1,200 records fit in the queues, the rest must be dropped.
    let stall_start = std::time::Instant::now();
    sink.stall_for(STALL);
    let mut burst = 0;
    while burst < 2000 && stall_start.elapsed() < STALL - Duration::from_millis(1500) {
        run_true();
        burst += 1;
    }
    assert!(sink.stalled_calls() > 0, "no export call is held by the stall after the burst{}", diag(&sink));
    assert!(stall_start.elapsed() < STALL, "the burst outlasted the stall");

    // The stall ends by itself; the backlog is delivered, then loss records
    // for the drops.
    let drained =
        wait_until(WAIT, || sink.stalled_calls() == 0 && loss_records(&sink.records()).iter().any(|l| l.error_type == "queue_full"));
    assert!(drained, "no queue_full loss record after the stall{}", diag(&sink));
    assert!(stall_start.elapsed() >= STALL, "the stall ended early");
    // Trailing losses: a number lost after the last delivered record of its
    // stream is invisible as a gap. A record delivered now on every CPU (the
    // queues are empty again) makes every loss of the burst a gap before it.
    let markers = deliver_a_record_on_every_cpu(&sink);
    stop_vigil(&mut vigil, &err_path);

    let records = sink.records();
    for (cpu, pid) in markers.iter().flatten() {
        let exit = find_exit(&records, *pid).unwrap();
        let stream = str_attr(&exit.record.attributes, "vigil.stream.id").expect("stream id on the exit record");
        assert_eq!(stream_cpu(stream), *cpu, "the pinned run's exit record is on the stream of CPU {cpu}");
    }
    assert_nothing_delivered_twice(&sink);
    assert_eq!(sink.calls(), sink.requests(), "every export call was answered once (none timed out and was retried)");
    assert!(sink.export_requests().iter().any(|c| c.stalled), "some requests were held by the stall");

    let losses = loss_records(&records);
    let hbs = heartbeats(&records);
    let last_hb = hbs.last().expect("a final heartbeat");
    let sum = |pred: &dyn Fn(&LossRec) -> bool| losses.iter().filter(|l| pred(l)).map(|l| l.count).sum::<i64>();

    // Queue drops: reported at stage agent, and the loss records add up to
    // the final heartbeat's cumulative counter.
    let queue_full = sum(&|l| l.error_type == "queue_full");
    assert!(losses.iter().filter(|l| l.error_type == "queue_full").all(|l| l.stage == "agent"), "queue_full is an agent loss: {losses:#?}");
    assert!(queue_full > 0, "the burst of {burst} runs caused no queue_full drop");
    assert_eq!(queue_full, last_hb.get("vigil.heartbeat.agent.queue_full"), "sum of queue_full loss counts vs the final heartbeat");
    let kernel_numbered = sum(&|l| l.stage == "kernel" && l.error_type != "probe_skipped");
    assert_eq!(kernel_numbered, last_hb.get("vigil.heartbeat.kernel.dropped"), "kernel loss records vs the final heartbeat");
    assert_eq!(sum(&|l| l.error_type == "probe_skipped"), last_hb.get("vigil.heartbeat.kernel.skipped"));
    assert_eq!(sum(&|l| l.stage == "export"), 0, "nothing was lost at export: {losses:#?}");
    assert_eq!(last_hb.get("vigil.heartbeat.export.failed") + last_hb.get("vigil.heartbeat.export.rejected"), 0);

    // The gaps the test sees in the delivered event records, per kernel
    // stream: numbers up to the highest one delivered that never arrived.
    let mut streams = std::collections::BTreeMap::<String, std::collections::BTreeSet<i64>>::new();
    for r in &records {
        let a = &r.record.attributes;
        if let (Some(stream), Some(seq)) = (str_attr(a, "vigil.stream.id"), int_attr(a, "vigil.stream.seq")) {
            assert!(!event_name(r).starts_with("vigil.telemetry."), "stream seq on a telemetry record: {:?}", r.record);
            assert!(seq >= 1, "kernel sequences start at 1: {seq}");
            streams.entry(stream.to_owned()).or_default().insert(seq);
        }
    }
    let gaps: i64 = streams.values().map(|seqs| seqs.last().copied().unwrap_or(0) - seqs.len() as i64).sum();
    // Every record vigil mapped was delivered (no export loss), so its own
    // tracker saw the same records: its gaps minus the late records (which
    // filled a gap already counted) are the test's.
    assert_eq!(
        gaps,
        last_hb.get("vigil.heartbeat.agent.stream_gaps") - last_hb.get("vigil.heartbeat.agent.late_records"),
        "gaps in the delivered records vs the final heartbeat's stream_gaps - late_records"
    );
    // Every numbered record that was lost, in the kernel (ring buffer full,
    // too large, no scratch) or in the agent (queue full, malformed), is a
    // gap. Not numbered, so not gaps: probe_skipped (the kernel skipped the
    // program before it ran) and missed_exec/missed_exit (inferred from
    // /proc, not records). Losses after the last delivered record of a
    // stream would be missing from the gaps; the per-CPU runs above leave
    // none, provided every online CPU could be used.
    let numbered = kernel_numbered + sum(&|l| l.stage == "agent" && (l.error_type == "queue_full" || l.error_type == "malformed_record"));
    eprintln!(
        "e2e: {burst} runs during the stall; queue_full {queue_full}, kernel {kernel_numbered}, gaps {gaps} on {} streams, {} requests",
        streams.len(),
        sink.requests()
    );
    if markers.is_some() {
        assert_eq!(gaps, numbered, "sequence gaps vs loss counts (kernel + queue_full + malformed); streams {:?}", streams.keys());
    } else {
        assert!(gaps <= numbered, "sequence gaps {gaps} exceed the reported losses {numbered}");
    }

    // vigil.loss.total is cumulative per stage, cause, event and stream: in
    // telemetry order it is exactly the running sum of the counts.
    let mut running = std::collections::BTreeMap::<(String, String, Option<String>, Option<String>), i64>::new();
    let mut ordered = losses.clone();
    ordered.sort_by_key(|l| l.telemetry_seq);
    for l in &ordered {
        assert!(l.count > 0 && l.total >= l.count, "loss record with total < count: {l:?}");
        let acc = running.entry((l.stage.clone(), l.error_type.clone(), l.event.clone(), l.stream.clone())).or_insert(0);
        *acc += l.count;
        assert_eq!(l.total, *acc, "vigil.loss.total is not the running sum of the counts: {l:?}");
    }
    // The agent's own records are numbered without gaps: none was lost.
    let mut tseqs: Vec<i64> = ordered.iter().map(|l| l.telemetry_seq).chain(hbs.iter().map(|h| h.telemetry_seq)).collect();
    tseqs.sort_unstable();
    assert_eq!(tseqs, (1..=tseqs.len() as i64).collect::<Vec<_>>(), "vigil.telemetry.seq of loss records and heartbeats");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn partial_success_is_counted_not_retried() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-partial");
    let sink = Sink::start();
    // The first request of at least 3 records is answered "3 rejected".
    sink.reject_in_partial_success(1, 3, "e2e test rejects 3 records");
    let (mut vigil, err_path) =
        start_vigil_to_sink(&dir, &sink, &[("VIGIL_EXPORT__BATCH_TIMEOUT_MS", "50"), ("VIGIL_TELEMETRY__LOSS_WINDOW_MS", "200")]);
    let diag = |sink: &Sink| {
        format!("\n--- vigil stderr ---\n{}\n--- sink: {} calls, {} answered", tail(&err_path, 4000), sink.calls(), sink.requests())
    };
    for _ in 0..10 {
        run_true();
    }
    let reported = wait_until(WAIT, || loss_records(&sink.records()).iter().any(|l| l.error_type == "export_rejected"));
    assert!(reported, "no export_rejected loss record{}", diag(&sink));
    // A little more traffic after the report, to see that nothing is resent.
    for _ in 0..5 {
        run_true();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop_vigil(&mut vigil, &err_path);

    let calls = sink.export_requests();
    assert_eq!(sink.calls(), calls.len(), "every export call was answered");
    let partial: Vec<usize> = calls.iter().enumerate().filter(|(_, c)| c.rejected != 0).map(|(i, _)| i).collect();
    assert_eq!(partial.len(), 1, "exactly one request was answered with a partial success");
    assert_eq!(calls[partial[0]].rejected, 3);
    assert_nothing_delivered_twice(&sink);

    let records = sink.records();
    let losses = loss_records(&records);
    let rejected: Vec<&LossRec> = losses.iter().filter(|l| l.error_type == "export_rejected").collect();
    assert_eq!(rejected.len(), 1, "one export_rejected loss record: {losses:#?}");
    let r = rejected[0];
    assert_eq!((r.stage.as_str(), r.count, r.total), ("export", 3, 3), "{r:?}");
    assert!(r.stream.is_none(), "an export loss names no kernel stream: {r:?}");
    assert!(r.request > partial[0], "the loss record came in a later request ({}) than the rejected one ({})", r.request, partial[0]);
    assert!(!losses.iter().any(|l| l.error_type == "export_failed"), "{losses:#?}");
    let hbs = heartbeats(&records);
    let last_hb = hbs.last().expect("a final heartbeat");
    assert_eq!(last_hb.get("vigil.heartbeat.export.rejected"), 3);
    assert_eq!(last_hb.get("vigil.heartbeat.export.failed"), 0);
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn heartbeats_arrive_at_the_interval_with_monotonic_counters() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-heartbeat");
    let sink = Sink::start();
    let (mut vigil, err_path) =
        start_vigil_to_sink(&dir, &sink, &[("VIGIL_TELEMETRY__HEARTBEAT_INTERVAL_S", "1"), ("VIGIL_EXPORT__BATCH_TIMEOUT_MS", "50")]);
    let diag = |sink: &Sink| {
        format!("\n--- vigil stderr ---\n{}\n--- sink: {} calls, {} answered", tail(&err_path, 4000), sink.calls(), sink.requests())
    };
    assert!(wait_until(WAIT, || !heartbeats(&sink.records()).is_empty()), "no first heartbeat{}", diag(&sink));
    // Activity for ~4.5 s after the first heartbeat.
    let start = std::time::Instant::now();
    let mut runs = 0;
    while start.elapsed() < Duration::from_millis(4500) {
        run_true();
        runs += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_vigil(&mut vigil, &err_path);

    let hbs = heartbeats(&sink.records());
    let (last, periodic) = hbs.split_last().expect("heartbeats");
    assert!(periodic.len() >= 4, "{} periodic heartbeats in ~4.5 s at a 1 s interval{}", periodic.len(), diag(&sink));
    for pair in hbs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(b.telemetry_seq > a.telemetry_seq && b.time_ns >= a.time_ns, "heartbeats out of order: {a:?} then {b:?}");
        for (key, va) in &a.counters {
            // processes_tracked is the table's current size, a gauge.
            if key == "vigil.heartbeat.agent.processes_tracked" {
                continue;
            }
            let vb = b.get(key);
            assert!(vb >= *va, "{key} went down from {va} (heartbeat {}) to {vb} (heartbeat {})", a.telemetry_seq, b.telemetry_seq);
        }
        assert_eq!(a.counters.keys().collect::<Vec<_>>(), b.counters.keys().collect::<Vec<_>>(), "heartbeats carry the same counters");
    }
    for pair in periodic.windows(2) {
        let dt = Duration::from_nanos(pair[1].time_ns - pair[0].time_ns);
        assert!(
            dt >= Duration::from_millis(500) && dt <= Duration::from_millis(2000),
            "heartbeats {} and {} are {dt:?} apart at a 1 s interval",
            pair[0].telemetry_seq,
            pair[1].telemetry_seq
        );
    }
    assert!(hbs.iter().all(|h| h.get("vigil.heartbeat.interval") == 1), "vigil.heartbeat.interval");
    // Each run is at least an exec and an exit record, after the first
    // heartbeat; the final heartbeat reads the kernel counters after the
    // probes were detached.
    let emitted = |h: &Heartbeat| h.get("vigil.heartbeat.kernel.emitted");
    let first = &hbs[0];
    assert!(emitted(last) - emitted(first) >= 2 * runs, "kernel.emitted {} -> {} over {runs} runs", emitted(first), emitted(last));
    let last_periodic = periodic.last().unwrap();
    assert!(emitted(last_periodic) > emitted(first), "kernel.emitted grows between periodic heartbeats while events happen");
}

// ---------------------------------------------------------------------------
// vigil watching itself: the health endpoint and `vigil status`.
// ---------------------------------------------------------------------------

/// `GET path` from 127.0.0.1:`port`: (status code, body), or `None` if
/// nothing answers. One request per connection, as the endpoint serves.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let code = head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let length: usize = head.lines().find_map(|l| l.strip_prefix("Content-Length: "))?.parse().ok()?;
    assert_eq!(length, body.len(), "Content-Length of {path}");
    Some((code, body.to_owned()))
}

/// The value of the one unlabelled sample `name` of a `/metrics` text.
fn metric(text: &str, name: &str) -> f64 {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{name} {v}: {e}")))
        .collect();
    assert_eq!(values.len(), 1, "one sample of {name} in:\n{text}");
    values[0]
}

/// Scrape `/metrics` (200 required).
fn scrape(port: u16) -> String {
    let (code, text) = http_get(port, "/metrics").expect("/metrics answers");
    assert_eq!(code, 200, "/metrics: {text}");
    text
}

/// `vigil status --health-url http://127.0.0.1:<port>`: (exit code, stdout, stderr).
fn vigil_status(port: u16) -> (Option<i32>, String, String) {
    let out =
        vigil_tests::vigil_command().args(["status", "--health-url", &format!("http://127.0.0.1:{port}")]).output().expect("vigil status");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn health_endpoint_follows_probes_and_exports() {
    vigil_tests::require_root();
    const RUNS: usize = 20;
    let dir = TempDir::new("vigil-health");
    let mut sink = Sink::start();
    let port = vigil_tests::collector::free_port();
    let listen = format!("127.0.0.1:{port}");
    let (mut vigil, err_path) = start_vigil_to_sink(
        &dir,
        &sink,
        &[
            ("VIGIL_HEALTH__LISTEN", listen.as_str()),
            ("VIGIL_HEALTH__UNREADY_AFTER_S", "2"),
            ("VIGIL_EXPORT__BATCH_TIMEOUT_MS", "50"),
            ("VIGIL_TELEMETRY__HEARTBEAT_INTERVAL_S", "1"),
        ],
    );
    let diag = |sink: &Sink| {
        format!(
            "\n--- vigil stderr ---\n{}\n--- sink: {} calls, {} answered\n--- /readyz: {:?}",
            tail(&err_path, 4000),
            sink.calls(),
            sink.requests(),
            http_get(port, "/readyz")
        )
    };

    // Attached: live and ready.
    assert_eq!(http_get(port, "/healthz"), Some((200, "ok\n".to_owned())), "{}", diag(&sink));
    assert!(wait_until(WAIT, || http_get(port, "/readyz") == Some((200, "ready\n".to_owned()))), "not ready after attach{}", diag(&sink));
    assert_eq!(http_get(port, "/nope").map(|r| r.0), Some(404));

    // Known traffic, delivered.
    let pids: Vec<i64> = (0..RUNS).map(|_| run_true()).collect();
    let execs_of_runs = |sink: &Sink| {
        sink.records()
            .iter()
            .filter(|r| event_name(r) == "vigil.process.exec")
            .filter(|r| int_attr(&r.record.attributes, "process.pid").is_some_and(|p| pids.contains(&p)))
            .count()
    };
    assert!(wait_until(WAIT, || execs_of_runs(&sink) == RUNS), "{} of {RUNS} exec records arrived{}", execs_of_runs(&sink), diag(&sink));

    // vigil_records_exported_total agrees with the sink: every record the
    // sink had before the scrape is counted once its answer is back, and
    // nothing the sink did not store yet is counted.
    let stored_before = sink.records().len() as u64;
    let mut text = String::new();
    let caught_up = wait_until(WAIT, || {
        text = scrape(port);
        metric(&text, "vigil_records_exported_total") >= stored_before as f64
    });
    let stored_after = sink.records().len() as u64;
    let scraped_at = unix_now_ns();
    let exported = metric(&text, "vigil_records_exported_total") as u64;
    assert!(caught_up, "vigil_records_exported_total {exported} < {stored_before} records in the sink{}", diag(&sink));
    assert!(exported <= stored_after, "vigil_records_exported_total {exported} > {stored_after} records in the sink");
    assert!(exported >= RUNS as u64);
    assert_eq!(metric(&text, "vigil_ready"), 1.0);
    assert_eq!(metric(&text, "vigil_export_failed_total"), 0.0);
    assert!(metric(&text, "vigil_export_latency_seconds_count") > 0.0);
    // vigil_records_received_total is the counter the heartbeats carry:
    // between the last heartbeat sent before the scrape and the first one
    // made after it. Each run is at least an exec and an exit record.
    let received = metric(&text, "vigil_records_received_total") as u64;
    assert!(received >= 2 * RUNS as u64, "vigil_records_received_total {received} after {RUNS} runs");
    let hb_received = |h: &Heartbeat| u64::try_from(h.get("vigil.heartbeat.agent.received")).expect("non-negative");
    let before = heartbeats(&sink.records()).into_iter().filter(|h| h.time_ns < scraped_at).map(|h| hb_received(&h)).max();
    assert!(before.is_some_and(|b| b <= received), "heartbeat before the scrape: received {before:?} > scraped {received}");
    let mut after = None;
    assert!(
        wait_until(WAIT, || {
            after = heartbeats(&sink.records()).iter().find(|h| h.time_ns > scraped_at).map(hb_received);
            after.is_some()
        }),
        "no heartbeat after the scrape{}",
        diag(&sink)
    );
    assert!(after.is_some_and(|a| a >= received), "heartbeat after the scrape: received {after:?} < scraped {received}");

    let (code, out, err) = vigil_status(port);
    assert_eq!(code, Some(0), "vigil status while ready:\n{out}{err}");
    assert!(out.contains("status:    ready\n") && out.contains(" received, "), "vigil status output:\n{out}");
    // Without --health-url, the address comes from the configuration.
    let derived = vigil_tests::vigil_command().arg("status").env("VIGIL_HEALTH__LISTEN", &listen).output().expect("vigil status");
    assert_eq!(derived.status.code(), Some(0), "vigil status from health.listen:\n{}", String::from_utf8_lossy(&derived.stderr));

    // The collector goes away: connections are refused, every export
    // attempt fails (heartbeats and these runs keep vigil exporting). Past
    // health.unready_after_s of failing, vigil is not ready, still live.
    sink.stop();
    let stopped = std::time::Instant::now();
    for _ in 0..3 {
        run_true();
    }
    let unready = wait_until(WAIT, || http_get(port, "/readyz").is_some_and(|(c, body)| c == 503 && body.contains("exports failing for")));
    assert!(unready, "/readyz did not turn 503 while the collector was gone{}", diag(&sink));
    assert!(stopped.elapsed() > Duration::from_secs(2), "not ready before 2 s of failing exports: {:?}", stopped.elapsed());
    assert_eq!(http_get(port, "/healthz").map(|r| r.0), Some(200), "live while exports fail");
    let text = scrape(port);
    assert_eq!(metric(&text, "vigil_ready"), 0.0);
    assert!(metric(&text, "vigil_export_retries_total") > 0.0, "failed attempts are retried");
    assert!(metric(&text, "vigil_export_failing_since_timestamp_seconds") > 0.0);
    let (code, out, err) = vigil_status(port);
    assert_eq!(code, Some(1), "vigil status while not ready:\n{out}{err}");
    assert!(out.contains("NOT READY (exports failing for"), "vigil status output:\n{out}");

    // The collector is back on the same port: the next successful export
    // (a retry) makes vigil ready again.
    sink.restart();
    let ready = wait_until(WAIT, || http_get(port, "/readyz").is_some_and(|(c, _)| c == 200));
    assert!(ready, "/readyz did not return to 200 after the collector came back{}", diag(&sink));
    assert_eq!(metric(&scrape(port), "vigil_export_failing_since_timestamp_seconds"), 0.0);

    stop_vigil(&mut vigil, &err_path);
    assert_eq!(http_get(port, "/healthz"), None, "the endpoint closes with vigil");
    let (code, _, err) = vigil_status(port);
    assert_eq!(code, Some(2), "vigil status with vigil stopped: {err}");
    assert!(err.contains("cannot reach vigil's health endpoint"), "{err}");
}
