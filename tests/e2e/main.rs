//! End to end: the vigil binary, run as root, exports through a real rotel
//! collector; what rotel forwards is captured by an OTLP/gRPC sink in this
//! process and asserted field by field.
//!
//! Needs root (to load the probes), the rotel Python package and a built
//! `target/debug/vigil` (`cargo build -p vigil`). `ci/test.sh` runs these
//! with `--ignored --test-threads=1`.
#![allow(clippy::unwrap_used)]

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use vigil_tests::collector::{tail, unix_now_ns, wait_until, ChildGuard, Received, Rotel, Sink, TempDir, WAIT};

/// `vigil` from the workspace's target directory (`$CARGO_TARGET_DIR` if set).
fn vigil_binary() -> PathBuf {
    let root = vigil_tests::workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    let bin = target.join("debug").join("vigil");
    assert!(bin.is_file(), "{} not found: run `cargo build -p vigil` first (ci/test.sh does)", bin.display());
    bin
}

fn value<'a>(kvs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    kvs.iter().find(|k| k.key == key).and_then(|k| k.value.as_ref()).and_then(|v| v.value.as_ref())
}

fn str_attr<'a>(kvs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match value(kvs, key) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int_attr(kvs: &[KeyValue], key: &str) -> Option<i64> {
    match value(kvs, key) {
        Some(Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

/// A string-array attribute; None if absent or any element is not a string.
fn str_array_attr(kvs: &[KeyValue], key: &str) -> Option<Vec<String>> {
    match value(kvs, key) {
        Some(Value::ArrayValue(a)) => a
            .values
            .iter()
            .map(|v| match &v.value {
                Some(Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

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
    let vigil_bin = vigil_binary();
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
