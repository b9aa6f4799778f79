//! End to end: the vigil binary, run as root, exports through a real rotel
//! collector; what rotel forwards is captured by an OTLP/gRPC sink in this
//! process and asserted field by field.
//!
//! Needs root (to load the probes), the rotel Python package and a built
//! `target/debug/vigil` (`cargo build -p vigil`). `ci/test.sh` runs these
//! with `--ignored --test-threads=1`.
#![allow(clippy::unwrap_used)]

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
    let vigil_bin = vigil_tests::vigil_binary();
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
        Command::new(&vigil_bin)
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

    // The marker command.
    let marker = format!("vigil-e2e-{}", vigil_tests::collector::random_id());
    let before_ns = unix_now_ns();
    let mut echo = Command::new("/bin/echo").arg(&marker).current_dir(&cwd).stdout(Stdio::null()).spawn().expect("run /bin/echo");
    let echo_pid = i64::from(echo.id());
    let echo_status = echo.wait().expect("wait for /bin/echo");
    let after_ns = unix_now_ns();
    assert!(echo_status.success(), "/bin/echo failed: {echo_status}");

    // Wait for both records to come out of rotel, then stop vigil (it
    // flushes) and rotel.
    let arrived = wait_until(WAIT, || {
        let records = sink.records();
        find_exec(&records, &marker).is_some() && find_exit(&records, echo_pid).is_some()
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
        Command::new(vigil_tests::vigil_binary())
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
    let exec: Vec<&&str> = lines.iter().filter(|l| l.contains(" vigil.process.exec ")).collect();
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
    let out = Command::new(vigil_tests::vigil_binary()).arg("check").output().expect("vigil check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for hook in ["tp_btf/sched_process_exec", "tp_btf/sched_process_fork", "tp_btf/sched_process_exit"] {
        assert!(stdout.lines().any(|l| l.starts_with("[ok  ]") && l.contains(hook)), "{hook} not reported ok:\n{stdout}");
    }
    assert!(stdout.contains("vigil can run on this host"), "{stdout}");
}

#[test]
#[ignore = "needs root: run by ci/test.sh"]
fn shutdown_with_an_unreachable_collector_keeps_its_deadline() {
    vigil_tests::require_root();
    let dir = TempDir::new("vigil-deadline");
    let err_path = dir.path().join("vigil.stderr");
    let port = vigil_tests::collector::free_port();
    let mut vigil = ChildGuard::spawn(
        "vigil",
        Command::new(vigil_tests::vigil_binary())
            .args(["--endpoint", &format!("http://127.0.0.1:{port}"), "--protocol", "grpc"])
            .env("VIGIL_EXPORT__SHUTDOWN_DEADLINE_MS", "2000")
            .env("VIGIL_EXPORT__BATCH_TIMEOUT_MS", "50")
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
    assert!(lost > 0, "records were pending at the deadline:\n{err}");
}
