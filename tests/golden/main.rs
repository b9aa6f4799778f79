//! Golden tests: raw record bytes, laid out as the probes lay them out, go
//! through decode -> process table -> map -> request, and the OTLP/JSON and
//! text output must equal the reviewed files in `tests/golden/expected/`.
//! No root needed. `VIGIL_UPDATE_GOLDEN=1 cargo test -p vigil-tests --test
//! golden` rewrites the files; review the diff before committing it.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use vigil::abi::{self, field_flags, EventType, HookKind, RawCreds, RawExec, RawExit, RawFile, RawFork, RawHdr, RawNet};
use vigil::clock::BootClock;
use vigil::export::{stdout::text_lines, RequestEncoder};
use vigil::host::HostInfo;
use vigil::otel::logs::MapContext;
use vigil::otel::resource::host_resource;
use vigil::pipeline::Mapper;
use vigil::probes::RawRecord;
use vigil::procfs::ProcEntry;
use vigil::stats::Stats;

const OBSERVED_NS: u64 = 1_763_700_000_500_000_000;
const BOOT_OFFSET_NS: i128 = 1_763_700_000_000_000_000 - 5_000_000_000;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn mapper(stats: Arc<Stats>) -> Mapper {
    let ctx = MapContext {
        clock: BootClock::with_offset(BOOT_OFFSET_NS),
        boot_id: "3f1c2b9e-0000-4000-8000-000000000001".into(),
        session: "1a2b3c".into(),
    };
    let fixtures = golden_dir().join("fixtures");
    let mut m = Mapper::new(ctx, 1024, fixtures.join("proc"), stats)
        .with_roots(fixtures.join("proc"), None)
        .with_user_files(fixtures.join("etc/passwd"), fixtures.join("etc/group"));
    m.table_mut().load_snapshot([ProcEntry {
        tgid: 900,
        ppid: 1,
        start_ns: 1_000_000_000,
        comm: b"bash".to_vec(),
        exe: Some(b"/usr/bin/bash".to_vec()),
        exe_deleted: false,
        euid: Some(1000),
        cmdline: None,
        sid: None,
        ns_init: false,
    }]);
    m
}

fn resource() -> opentelemetry_proto::tonic::resource::v1::Resource {
    let host = HostInfo {
        host_id: Some("0123456789abcdef0123456789abcdef".into()),
        host_name: Some("golden-host".into()),
        host_arch: "amd64".into(),
        os_name: Some("Debian GNU/Linux".into()),
        os_version: Some("6.18.0".into()),
        os_description: Some("Debian GNU/Linux 12 (bookworm) (Linux 6.18.0)".into()),
        boot_id: Some("3f1c2b9e-0000-4000-8000-000000000001".into()),
    };
    let mut r = host_resource(&host, "instance-1", &["vigil.process.exec=tp_btf/sched_process_exec".into()]);
    // service.version changes with every release; the golden files should not.
    for kv in &mut r.attributes {
        if kv.key == "service.version" {
            kv.value = Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue("golden".into())),
            });
        }
    }
    r
}

fn exec_raw(seq: u64, tgid: u32) -> RawExec {
    let mut raw = RawExec {
        hdr: RawHdr { cpu: 1, seq, ktime_ns: 5_000_000_000 + seq * 1000, tgid, pid: tgid, ..RawHdr::default() },
        ppid: 900,
        old_pid: tgid,
        creds: RawCreds {
            uid: 1000,
            euid: 0,
            suid: 0,
            fsuid: 0,
            gid: 1000,
            egid: 1000,
            sgid: 1000,
            fsgid: 1000,
            loginuid: 1000,
            sessionid: 4,
        },
        sid: 900,
        pgid: tgid,
        tty: 1,
        cgroup_id: 1 << 60,
        start_ns: 4_900_000_000,
        parent_start_ns: 1_000_000_000,
        exe_ino: 131_090,
        argc: 4,
        nsid: 4_026_531_836,
        vpid: tgid,
        ..RawExec::default()
    };
    raw.comm[..4].copy_from_slice(b"sudo");
    raw
}

fn raw(bytes: Vec<u8>) -> RawRecord {
    RawRecord { bytes, observed_ns: OBSERVED_NS }
}

/// Map the records, compare OTLP/JSON and text output with the golden files.
fn check(name: &str, records: Vec<Vec<u8>>) {
    let stats = Arc::new(Stats::default());
    let mut m = mapper(stats.clone());
    let mut batch = vigil::pipeline::LogBatch::default();
    // As the map stage does: each record written straight into the batch.
    for b in records {
        assert!(batch.push_mapped(|out| m.map_into(&raw(b), out)), "maps");
    }
    assert_eq!(stats.decode_errors.load(Ordering::Relaxed), 0);
    let req = RequestEncoder::new(&resource()).encode_groups(&batch.groups()).decode().expect("our encoding decodes");
    for rl in &req.resource_logs {
        assert_documented(&rl.scope_logs[0].log_records);
        assert_resource_documented(rl.resource.as_ref().expect("resource"));
    }
    let json = serde_json::to_string_pretty(&req).unwrap() + "\n";
    let text = text_lines(&req).join("\n") + "\n";
    for (ext, actual) in [("json", json), ("txt", text)] {
        let path = golden_dir().join("expected").join(format!("{name}.{ext}"));
        if std::env::var_os("VIGIL_UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (VIGIL_UPDATE_GOLDEN=1 creates it)", path.display()));
        assert!(expected == actual, "{} differs from the output:\n{actual}", path.display());
    }
}

/// Every record conforms to schemas/otel-attributes.json.
fn assert_resource_documented(r: &opentelemetry_proto::tonic::resource::v1::Resource) {
    vigil_tests::schema::Schema::load().validate_resource(r);
}

fn assert_documented(logs: &[opentelemetry_proto::tonic::logs::v1::LogRecord]) {
    let schema = vigil_tests::schema::Schema::load();
    for l in logs {
        schema.validate(l);
    }
}

#[test]
fn exec_with_hostile_strings() {
    // argv with a newline, an ANSI escape and invalid UTF-8: escaped, kept as
    // an array, the body stays one line.
    let args = b"sudo\0-u\0root\0evil\nINFO forged line \x1b[31m\xff\0";
    check("exec_hostile_strings", vec![abi::encode_exec(exec_raw(7, 4242), [b"/usr/bin/sudo", b"/usr/bin/sudo", args, b"/home/alice"])]);
}

#[test]
fn exec_with_cut_and_unreadable_fields() {
    let mut r = exec_raw(8, 4243);
    r.argc = 5000;
    r.args.flags = field_flags::PRESENT | field_flags::TRUNCATED | field_flags::SIZE_KNOWN;
    r.args.orig_len = 250_000;
    r.args.reason = 7; // size limit
    r.exe.flags = field_flags::PRESENT | field_flags::TRUNCATED;
    r.exe.reason = 6; // depth limit: the leaf end is kept
    r.cwd.flags = field_flags::UNAVAILABLE;
    r.cwd.reason = 1; // read fault
    check("exec_cut_and_unreadable", vec![abi::encode_exec(r, [b"/deep/er/bin/tool", b"tool", b"tool\0--flag\0part", b""])]);
}

#[test]
fn fork_exec_exit_of_one_process() {
    let fork = RawFork {
        hdr: RawHdr { cpu: 0, seq: 1, ktime_ns: 4_900_000_000, tgid: 900, pid: 900, ..RawHdr::default() },
        child_tgid: 4244,
        child_pid: 4244,
        child_start_ns: 4_900_000_000,
        parent_start_ns: 1_000_000_000,
        child_vpid: 4244,
        comm: *b"bash\0\0\0\0\0\0\0\0\0\0\0\0",
        ..RawFork::default()
    };
    let mut exec = exec_raw(2, 4244);
    exec.argc = 2;
    let exec = abi::encode_exec(exec, [b"/usr/bin/sudo", b"/usr/bin/sudo", b"sudo\0id\0", b"/"]);
    let exit = RawExit {
        hdr: RawHdr { cpu: 0, seq: 3, ktime_ns: 6_000_000_000, tgid: 4244, pid: 4244, ..RawHdr::default() },
        ppid: 900,
        exit_code: 1 << 8,
        start_ns: 4_900_000_000,
        group_dead: 1,
        comm: *b"sudo\0\0\0\0\0\0\0\0\0\0\0\0",
        ..RawExit::default()
    };
    check(
        "fork_exec_exit",
        vec![abi::encode_fixed(fork, EventType::Fork, |r| &mut r.hdr), exec, abi::encode_fixed(exit, EventType::Exit, |r| &mut r.hdr)],
    );
}

/// Execs of a host session process, a container and a systemd service in
/// one batch: one ResourceLogs per workload, the host's without workload
/// attributes, and the records of each under their own.
#[test]
fn one_resource_per_workload() {
    let execs: Vec<Vec<u8>> = [(1, 4242u32, 1u64 << 40), (2, 4343, 1 << 41), (3, 4444, 1 << 42), (4, 4343, 1 << 41)]
        .into_iter()
        .map(|(seq, pid, cgroup_id)| {
            let mut raw = exec_raw(seq, pid);
            raw.cgroup_id = cgroup_id;
            raw.argc = 1;
            abi::encode_exec(raw, [b"/usr/bin/id", b"/usr/bin/id", b"id\0", b"/"])
        })
        .collect();
    check("one_resource_per_workload", execs);
}

/// Process spans are grouped like the records: the span of a process in a
/// container goes out under that container's Resource, a host process's
/// under the host resource alone.
#[test]
fn spans_are_grouped_by_workload() {
    let ids = vigil::spans::SpanIds::new("0123456789abcdef0123456789abcdef", "3f1c2b9e-0000-4000-8000-000000000001");
    let mut m = mapper(Arc::new(Stats::default())).with_spans(vigil::spans::SpanBook::new(ids, Vec::new(), 300), true);
    for (seq, pid, cgroup_id) in [(1, 4343u32, 1u64 << 41), (2, 4242, 1 << 40)] {
        let mut exec = exec_raw(seq, pid);
        exec.cgroup_id = cgroup_id;
        exec.argc = 1;
        m.map(&raw(abi::encode_exec(exec, [b"/usr/bin/id", b"/usr/bin/id", b"id\0", b"/"]))).unwrap();
        let exit = RawExit {
            hdr: RawHdr { cpu: 1, seq: seq + 10, ktime_ns: 6_000_000_000 + seq, tgid: pid, pid, ..RawHdr::default() },
            ppid: 900,
            start_ns: 4_900_000_000,
            group_dead: 1,
            comm: *b"id\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            ..RawExit::default()
        };
        m.map(&raw(abi::encode_fixed(exit, EventType::Exit, |r| &mut r.hdr))).unwrap();
    }
    let groups = m.take_span_groups();
    let req = RequestEncoder::new(&resource()).encode_span_groups(groups).decode_traces().unwrap();
    let by_pid = |pid: i64| {
        req.resource_spans
            .iter()
            .find(|rs| rs.scope_spans[0].spans.iter().any(|sp| vigil_tests::attrs::int_attr(&sp.attributes, "process.pid") == Some(pid)))
            .unwrap_or_else(|| panic!("no span of pid {pid}"))
    };
    let container = by_pid(4343).resource.as_ref().unwrap();
    assert_eq!(
        vigil_tests::attrs::str_attr(&container.attributes, "container.id"),
        Some("3f4e2b1c9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f")
    );
    assert_eq!(by_pid(4242).resource.as_ref(), Some(&resource()), "a host session process: the host resource alone");
    assert_eq!(req.resource_spans.len(), 2);
}

/// Ended spans wait in a batch for a traces request (one request per ended
/// span cost ~240 us of exporter CPU per short-lived process), and each
/// span's workload is resolved when it is collected: a pid reused by a
/// host process before the batch leaves does not move the container
/// process's span to the host resource.
#[test]
fn ended_spans_are_batched_with_the_workload_they_ended_in() {
    let ids = vigil::spans::SpanIds::new("0123456789abcdef0123456789abcdef", "3f1c2b9e-0000-4000-8000-000000000001");
    // A /proc of our own: pid 4343's cgroup file changes when its pid is
    // reused (this mapper has no cgroup2 root, so each exec's cgroup path is
    // read from /proc/<pid>/cgroup).
    let proc = std::env::temp_dir().join(format!("vigil-golden-spans-{}", std::process::id()));
    let cgroup_of = |pid: u32, path: &str| {
        std::fs::create_dir_all(proc.join(pid.to_string())).unwrap();
        std::fs::write(proc.join(format!("{pid}/cgroup")), format!("0::{path}\n")).unwrap();
    };
    let pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6c2b0b7e_1f2a_4c3d_9e8f_0a1b2c3d4e5f.slice/cri-containerd-3f4e2b1c9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f.scope";
    let session = "/user.slice/user-1000.slice/session-4.scope";
    let ctx = MapContext {
        clock: BootClock::with_offset(BOOT_OFFSET_NS),
        boot_id: "3f1c2b9e-0000-4000-8000-000000000001".into(),
        session: "1a2b3c".into(),
    };
    let mut m = Mapper::new(ctx, 1024, proc.clone(), Arc::new(Stats::default()))
        .with_roots(proc.clone(), None)
        .with_spans(vigil::spans::SpanBook::new(ids, Vec::new(), 300), true);
    let exec = |seq: u64, pid: u32, cgroup_id: u64| {
        let mut exec = exec_raw(seq, pid);
        exec.cgroup_id = cgroup_id;
        exec.argc = 1;
        raw(abi::encode_exec(exec, [b"/usr/bin/id", b"/usr/bin/id", b"id\0", b"/"]))
    };
    let exit = |seq: u64, pid: u32| {
        let exit = RawExit {
            hdr: RawHdr { cpu: 1, seq, ktime_ns: 6_000_000_000 + seq, tgid: pid, pid, ..RawHdr::default() },
            ppid: 900,
            start_ns: 4_900_000_000,
            group_dead: 1,
            comm: *b"id\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            ..RawExit::default()
        };
        raw(abi::encode_fixed(exit, EventType::Exit, |r| &mut r.hdr))
    };
    cgroup_of(4242, session);
    m.map(&exec(1, 4242, 1 << 40)).unwrap();
    // A container process ends.
    cgroup_of(4343, pod);
    m.map(&exec(2, 4343, 1 << 41)).unwrap();
    m.map(&exit(3, 4343)).unwrap();
    assert!(m.collect_spans(512, 1 << 20).is_empty(), "one span does not fill a batch");
    assert_eq!(m.pending_spans(), 1);
    // Its pid is reused by a host process, which ends too.
    cgroup_of(4343, session);
    m.map(&exec(4, 4343, 1 << 40)).unwrap();
    m.map(&exit(5, 4343)).unwrap();
    let full = m.collect_spans(2, 1 << 20);
    assert_eq!(full.len(), 0, "two spans fit a batch of two");
    m.map(&exit(6, 4242)).unwrap();
    let full = m.collect_spans(2, 1 << 20);
    assert_eq!((full.len(), m.pending_spans()), (1, 1), "the third span starts the next batch");
    let req = RequestEncoder::new(&resource()).encode_span_groups(full.into_iter().next().unwrap()).decode_traces().unwrap();
    let containers: Vec<Option<String>> = req
        .resource_spans
        .iter()
        .flat_map(|rs| {
            let c = vigil_tests::attrs::str_attr(&rs.resource.as_ref().unwrap().attributes, "container.id").map(str::to_owned);
            rs.scope_spans[0].spans.iter().map(move |_| c.clone())
        })
        .collect();
    assert_eq!(
        containers,
        [Some("3f4e2b1c9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f".to_owned()), None],
        "the first span keeps its container, the second (same pid, host) has none"
    );
    let rest = m.take_span_groups();
    assert_eq!((rest.len(), rest[0].1.len(), m.pending_spans()), (1, 1, 0));
    let _ = std::fs::remove_dir_all(&proc);
}

/// An exec in a Kubernetes container (cgroup path from the fixture
/// /proc/4343/cgroup): workload attributes on the exec, `container.id` on
/// the fork and exit of its child.
#[test]
fn container_exec_fork_exit() {
    let exec = abi::encode_exec(exec_raw(1, 4343), [b"/usr/bin/sudo", b"/usr/bin/sudo", b"sudo\0-u\0bob\0id\0", b"/"]);
    let fork = RawFork {
        hdr: RawHdr { cpu: 1, seq: 2, ktime_ns: 5_100_000_000, tgid: 4343, pid: 4343, ..RawHdr::default() },
        child_tgid: 4345,
        child_pid: 4345,
        child_start_ns: 5_100_000_000,
        parent_start_ns: 4_900_000_000,
        child_vpid: 7,
        comm: *b"sudo\0\0\0\0\0\0\0\0\0\0\0\0",
        ..RawFork::default()
    };
    let exit = RawExit {
        hdr: RawHdr { cpu: 1, seq: 3, ktime_ns: 5_200_000_000, tgid: 4345, pid: 4345, ..RawHdr::default() },
        ppid: 4343,
        start_ns: 5_100_000_000,
        group_dead: 1,
        comm: *b"sudo\0\0\0\0\0\0\0\0\0\0\0\0",
        ..RawExit::default()
    };
    check(
        "container_exec_fork_exit",
        vec![exec, abi::encode_fixed(fork, EventType::Fork, |r| &mut r.hdr), abi::encode_fixed(exit, EventType::Exit, |r| &mut r.hdr)],
    );
}

#[test]
fn exit_by_signal_of_an_unknown_process() {
    let exit = RawExit {
        hdr: RawHdr { cpu: 1, seq: 9, ktime_ns: 7_000_000_000, tgid: 5555, pid: 5555, ..RawHdr::default() },
        ppid: 1,
        exit_code: 9,
        start_ns: 100_000_000,
        group_dead: 1,
        comm: *b"miner\0\0\0\0\0\0\0\0\0\0\0",
        ..RawExit::default()
    };
    check("exit_signal_unknown", vec![abi::encode_fixed(exit, EventType::Exit, |r| &mut r.hdr)]);
}

#[test]
fn malformed_records_are_counted_not_mapped() {
    let stats = Arc::new(Stats::default());
    let mut m = mapper(stats.clone());
    let good = abi::encode_exec(exec_raw(1, 1), [b"/a", b"a", b"a\0", b"/"]);
    let mut bad_version = good.clone();
    bad_version[2] = 0xee;
    for bytes in [vec![], good[..10].to_vec(), good[..100].to_vec(), bad_version] {
        assert!(m.map(&raw(bytes)).is_none());
    }
    assert_eq!(stats.decode_errors.load(Ordering::Relaxed), 4);
    assert_eq!(stats.mapped.load(Ordering::Relaxed), 0);
    assert!(m.map(&raw(good)).is_some());
    assert_eq!(stats.mapped.load(Ordering::Relaxed), 1);
}

#[test]
fn renamed_process_is_flagged_on_exit() {
    let mut exit = RawExit {
        hdr: RawHdr { cpu: 0, seq: 2, ktime_ns: 6_000_000_000, tgid: 4242, pid: 4242, ..RawHdr::default() },
        ppid: 900,
        start_ns: 4_900_000_000,
        group_dead: 1,
        ..RawExit::default()
    };
    exit.comm[..11].copy_from_slice(b"kworker/0:1");
    let mut exec = exec_raw(1, 4242);
    exec.hdr.cpu = 0;
    check(
        "renamed_exit",
        vec![
            abi::encode_exec(exec, [b"/usr/bin/sudo", b"/usr/bin/sudo", b"sudo\0-u\0root\0x\0", b"/"]),
            abi::encode_fixed(exit, EventType::Exit, |r| &mut r.hdr),
        ],
    );
}

#[test]
fn telemetry_records_are_documented() {
    let stats = Arc::new(Stats::default());
    let mut m = mapper(stats.clone());
    let mut drops = vec![vec![0u64; abi::EV_SLOTS * abi::DROP_MAX]; 2];
    drops[1][EventType::Exec as usize * abi::DROP_MAX] = 3;
    stats.set_kernel_drops_by_cpu(drops);
    stats.count_queue_full(&(EventType::Exit as u16).to_ne_bytes());
    stats.export_rejected.fetch_add(2, Ordering::Relaxed);
    m.map(&raw(abi::encode_exec(exec_raw(5, 1), [b"/a", b"a", b"a\0", b"/"]))).expect("maps");
    let mut logs = m.loss_records(OBSERVED_NS);
    assert_eq!(logs.len(), 3, "kernel, agent and export losses");
    logs.push(m.heartbeat_record(10, OBSERVED_NS));
    let req = RequestEncoder::new(&resource()).encode(&logs).decode().expect("decodes");
    let records = &req.resource_logs[0].scope_logs[0].log_records;
    assert_documented(records);
    let kernel = &records[0];
    assert_eq!(kernel.event_name, "vigil.telemetry.loss");
    let seq_first = kernel.attributes.iter().find(|k| k.key == "vigil.loss.seq.first").expect("seq range of the gap");
    assert_eq!(
        format!("{:?}", seq_first.value),
        format!(
            "{:?}",
            Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(1))
            })
        )
    );
    let hb = records.last().expect("heartbeat");
    assert_eq!(hb.event_name, "vigil.telemetry.heartbeat");
    let total = hb.attributes.iter().find(|k| k.key == "vigil.heartbeat.loss.total").expect("loss total");
    assert_eq!(
        format!("{:?}", total.value),
        format!(
            "{:?}",
            Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(6))
            })
        )
    );
}

fn log_with(key: &str, value: opentelemetry_proto::tonic::common::v1::any_value::Value) -> opentelemetry_proto::tonic::logs::v1::LogRecord {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    opentelemetry_proto::tonic::logs::v1::LogRecord {
        event_name: "vigil.process.exec".into(),
        attributes: vec![KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }],
        ..Default::default()
    }
}

#[test]
#[should_panic(expected = "is not in the schema")]
fn schema_validation_rejects_undocumented_attributes() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    vigil_tests::schema::Schema::load().validate(&log_with("process.favourite_colour", Value::StringValue("blue".into())));
}

#[test]
#[should_panic(expected = "should be int")]
fn schema_validation_rejects_wrong_types() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    vigil_tests::schema::Schema::load().validate(&log_with("process.pid", Value::StringValue("1".into())));
}

#[test]
#[should_panic(expected = "is not one of")]
fn schema_validation_rejects_undocumented_enum_values() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    vigil_tests::schema::Schema::load().validate(&log_with("vigil.context.source", Value::StringValue("guessed".into())));
}

/// docs/attributes.md is generated from the schema and must be current
/// (`VIGIL_UPDATE_GOLDEN=1` regenerates it).
#[test]
fn attribute_docs_match_the_schema() {
    let root = vigil_tests::workspace_root();
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("schemas/otel-attributes.json")).unwrap()).unwrap();
    let mut out = String::from(
        "# Events and attributes\n\n<!-- Generated from schemas/otel-attributes.json by tests/golden (VIGIL_UPDATE_GOLDEN=1); do not edit. -->\n\n",
    );
    out.push_str(&format!(
        "Schema version {}, ABI version {}, semantic conventions {}.\n\n",
        schema["schema_version"],
        schema["abi_version"],
        schema["semconv"].as_str().unwrap()
    ));
    out.push_str(&format!("{}\n\n## Events\n\n| event_name | meaning |\n|---|---|\n", schema["note"].as_str().unwrap()));
    for (k, v) in schema["events"].as_object().unwrap() {
        out.push_str(&format!("| `{k}` | {} |\n", v["meaning"].as_str().unwrap()));
    }
    let table = |title: &str, section: &serde_json::Value, out: &mut String| {
        out.push_str(&format!("\n## {title}\n\n| attribute | type | can be cut | can be unavailable | meaning |\n|---|---|---|---|---|\n"));
        for (k, v) in section.as_object().unwrap() {
            let yes = |f: &str| if v[f].as_bool().unwrap_or(false) { "yes" } else { "" };
            let mut meaning = v["meaning"].as_str().unwrap().to_owned();
            if let Some(e) = v["enum"].as_array() {
                meaning.push_str(&format!(
                    " (one of: {})",
                    e.iter().map(|x| format!("`{}`", x.as_str().unwrap())).collect::<Vec<_>>().join(", ")
                ));
            }
            out.push_str(&format!(
                "| `{k}` | {} | {} | {} | {meaning} |\n",
                v["type"].as_str().unwrap(),
                yes("truncatable"),
                yes("may_be_unavailable")
            ));
        }
    };
    table("Record attributes", &schema["record_attributes"], &mut out);
    table("Attribute families (prefix + key)", &schema["record_attribute_prefixes"], &mut out);
    table("Span attributes (process lifetimes)", &schema["span_attributes"], &mut out);
    table("Resource attributes", &schema["resource_attributes"], &mut out);
    table("Resource attribute families (prefix + key)", &schema["resource_attribute_prefixes"], &mut out);
    let path = root.join("docs/attributes.md");
    if std::env::var_os("VIGIL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &out).unwrap();
    }
    assert!(
        std::fs::read_to_string(&path).unwrap_or_default() == out,
        "docs/attributes.md is stale: run VIGIL_UPDATE_GOLDEN=1 cargo test -p vigil-tests --test golden"
    );
}

/// The fixed part of a file record by `tgid` (known to the table, or not).
fn file_raw(seq: u64, tgid: u32, ret: i64, syscall: u32, hook: HookKind) -> RawFile {
    let mut raw = RawFile {
        hdr: RawHdr { cpu: 1, seq, ktime_ns: 5_500_000_000 + seq * 1000, tgid, pid: tgid + 1, ..RawHdr::default() },
        ret,
        syscall,
        hook: hook as u32,
        uid: u32::MAX,
        gid: u32::MAX,
        ino: if ret >= 0 { 1_837_421 } else { 0 },
        dev: if ret >= 0 { 0x0080_0001 } else { 0 },
        path_source: if ret >= 0 { abi::path_source::OBJECT } else { abi::path_source::ARG },
        ..RawFile::default()
    };
    raw.comm[..6].copy_from_slice(b"worker");
    raw
}

/// The bulk file records of a process the table knows (from its exec)
/// and of one it does not: every file event, flags with and without a
/// mode, unknown flag bits, errors with and without a name, each kind of
/// hook.
#[test]
fn file_records() {
    let mut exec = exec_raw(1, 4242);
    exec.argc = 1;
    let exec = abi::encode_exec(exec, [b"/usr/bin/python3.11", b"/usr/bin/python3", b"python3\0", b"/srv"]);
    let mut records = vec![exec];
    let open = |seq, tgid, ret, flags: u32, mode: u32, hook, path: &[u8]| {
        let mut r = file_raw(seq, tgid, ret, 2, hook);
        r.flags = flags;
        r.mode = mode;
        abi::encode_file(r, EventType::FileOpen, path, None)
    };
    records.push(open(2, 4242, 3, 0o2000101, 0o100644, HookKind::SyscallTp, b"/srv/app/cache/session-0042.tmp"));
    records.push(open(3, 4242, 4, 0, 0, HookKind::SyscallTp, b"/etc/ssl/openssl.cnf"));
    records.push(open(4, 4242, -13, 0o2, 0, HookKind::RawSyscall, b"/root/.ssh/id_ed25519"));
    records.push(open(5, 4242, 5, 0o20200000 | 0o40000000, 0o600, HookKind::TpBtf, b"/tmp"));
    records.push(open(6, 7777, -28, 0o1, 0, HookKind::Fentry, b"/var/log/x\nforged"));
    let mut unlink = file_raw(7, 4242, 0, 6, HookKind::Lsm);
    unlink.flags = 0x200;
    records.push(abi::encode_file(unlink, EventType::FileUnlink, b"/tmp/a", None));
    let mut rename = file_raw(8, 4242, 0, 10, HookKind::SyscallTp);
    rename.flags = 1;
    records.push(abi::encode_file(rename, EventType::FileRename, b"/tmp/a", Some(b"/tmp/b")));
    let mut chmod = file_raw(9, 4242, 0, 13, HookKind::SyscallTp);
    chmod.mode = 0o104755;
    records.push(abi::encode_file(chmod, EventType::FileChmod, b"/srv/run.sh", None));
    let mut chown = file_raw(10, 4242, -1, 14, HookKind::SyscallTp);
    chown.uid = 0;
    chown.gid = 1000;
    records.push(abi::encode_file(chown, EventType::FileChown, b"/srv/run.sh", None));
    let mut truncate = file_raw(11, 4242, 0, 19, HookKind::SyscallTp);
    truncate.length = 4096;
    records.push(abi::encode_file(truncate, EventType::FileTruncate, b"/srv/data.db", None));
    check("file_records", records);
}

/// The network records of a process the table knows and of one it does
/// not: TCP/IPv4 and UDP/IPv6 connects, a failed connect, bind and listen
/// without a peer, an accept, Unix sockets (path and abstract name), an
/// unknown protocol.
#[test]
fn network_records() {
    let mut exec = exec_raw(1, 4242);
    exec.argc = 1;
    let exec = abi::encode_exec(exec, [b"/usr/bin/python3.11", b"/usr/bin/python3", b"python3\0", b"/srv"]);
    let mut records = vec![exec];
    let net = |seq: u64, tgid: u32, syscall: u32, ret: i64, family: u16, protocol: u16| RawNet {
        hdr: RawHdr { cpu: 0, seq, ktime_ns: 5_600_000_000 + seq * 1000, tgid, pid: tgid, ..RawHdr::default() },
        ret,
        syscall,
        hook: HookKind::SyscallTp as u32,
        family,
        type_: if protocol == 17 { 2 } else { 1 },
        protocol,
        addr_source: abi::path_source::OBJECT as u16,
        fd: 7,
        comm: *b"worker\0\0\0\0\0\0\0\0\0\0",
        ..RawNet::default()
    };
    let encode = |raw: RawNet, event: EventType| abi::encode_var(raw, event, |r| &mut r.hdr, &[]);
    let mut tcp4 = net(2, 4242, 32, 0, 2, 6);
    tcp4.laddr[..4].copy_from_slice(&[10, 0, 3, 17]);
    tcp4.raddr[..4].copy_from_slice(&[10, 0, 9, 4]);
    (tcp4.lport, tcp4.rport) = (48_212, 5432);
    records.push(encode(tcp4, EventType::NetworkConnect));
    let mut udp6 = net(3, 4242, 32, 0, 10, 17);
    udp6.laddr = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x16, 0x3e, 0xff, 0xfe, 0x12, 0x34, 0x56];
    udp6.raddr = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53];
    (udp6.lport, udp6.rport) = (51_000, 53);
    records.push(encode(udp6, EventType::NetworkConnect));
    let mut refused = net(4, 7777, 32, -111, 2, 6);
    refused.raddr[..4].copy_from_slice(&[192, 168, 1, 1]);
    refused.rport = 22;
    refused.addr_source = abi::path_source::ARG as u16;
    records.push(encode(refused, EventType::NetworkConnect));
    let mut bind = net(5, 4242, 35, 0, 10, 6);
    bind.lport = 8443;
    records.push(encode(bind, EventType::NetworkBind));
    let mut listen = net(6, 4242, 36, 0, 2, 6);
    listen.laddr[..4].copy_from_slice(&[127, 0, 0, 1]);
    (listen.lport, listen.backlog) = (8080, 511);
    records.push(encode(listen, EventType::NetworkListen));
    let mut accept = net(7, 4242, 34, 9, 2, 6);
    accept.laddr[..4].copy_from_slice(&[127, 0, 0, 1]);
    accept.raddr[..4].copy_from_slice(&[127, 0, 0, 1]);
    (accept.lport, accept.rport) = (8080, 40_000);
    records.push(encode(accept, EventType::NetworkAccept));
    let mut raw_proto = net(8, 4242, 32, 0, 2, 132);
    raw_proto.type_ = 5;
    raw_proto.raddr[..4].copy_from_slice(&[10, 0, 0, 2]);
    raw_proto.rport = 9;
    records.push(encode(raw_proto, EventType::NetworkConnect));
    for (seq, path) in [(9u64, &b"/run/docker.sock"[..]), (10, b"\0vigil-abstract")] {
        let unix = net(seq, 4242, 32, 0, 1, 0);
        records.push(abi::encode_var(unix, EventType::NetworkConnect, |r| &mut r.hdr, &[(|r| &mut r.unix_path, path)]));
    }
    check("network_records", records);
}
