//! decode -> map -> encode throughput for exec-sized records, and for the
//! bulk records of the event families (file opens, network connects).
//!
//! One iteration takes a batch of raw exec records (the bytes the probes
//! write: a 232-byte fixed part, a 38-byte executable path, a 14-byte
//! filename, seven arguments in 104 bytes, a 27-byte cwd), decodes and maps
//! each one (process table update included) straight into OTLP protobuf,
//! groups the records by workload as the map stage does, and assembles the
//! export request (one ResourceLogs per workload), exactly what the gRPC and
//! HTTP exporters send. Criterion
//! reports records per second (Throughput::Elements). The goal
//! (docs/performance.md): at least 500,000 records per second per core.
//!
//! `decode_map_encode_file_open` and `decode_map_encode_network_connect`
//! do the same with bulk records as the probes write them during an open
//! or connect storm: an `openat(O_WRONLY|O_CREAT|O_CLOEXEC)` with its
//! 32-byte path, a TCP/IPv4 `connect`, each by one of eight processes the
//! process table knows from their exec (steady state).

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::sync::Arc;
use std::time::Duration;
use vigil::abi::{self, EventType, HookKind, RawCreds, RawExec, RawFile, RawHdr, RawNet};
use vigil::clock::BootClock;
use vigil::export::RequestEncoder;
use vigil::host::HostInfo;
use vigil::otel::logs::MapContext;
use vigil::otel::resource::host_resource;
use vigil::pipeline::{LogBatch, Mapper};
use vigil::probes::RawRecord;
use vigil::stats::Stats;

/// The allocator the vigil binary uses (see src/bin/vigil.rs), tuned the
/// same way (`vigil::allocator::tune`, called in `bench`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 512;

/// CPU time of the benchmarking thread instead of wall time: the goal is
/// per core, and this machine is shared, so time spent descheduled while
/// other work runs must not count (cache and memory-bandwidth interference
/// still does).
struct ThreadCpuTime;

fn thread_cpu_now() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively
    // borrowed `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu_now()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

/// The header the probes fill for record `seq` of process `tgid` (its
/// main thread), alternating between two CPUs.
fn header(seq: u64, tgid: u32) -> RawHdr {
    RawHdr { cpu: (seq % 2) as u32, seq, ktime_ns: 5_000_000_000 + seq, tgid, pid: tgid, ..RawHdr::default() }
}

fn exec_record(seq: u64, tgid: u32, cgroup_id: u64) -> Vec<u8> {
    let mut raw = RawExec {
        hdr: header(seq, tgid),
        ppid: 900,
        creds: RawCreds {
            uid: 1000,
            euid: 1000,
            suid: 1000,
            fsuid: 1000,
            gid: 1000,
            egid: 1000,
            sgid: 1000,
            fsgid: 1000,
            loginuid: 1000,
            sessionid: 3,
        },
        sid: 900,
        pgid: tgid,
        cgroup_id,
        start_ns: 4_000_000_000,
        argc: 7,
        vpid: tgid,
        ..RawExec::default()
    };
    raw.comm[..6].copy_from_slice(b"python");
    let args = b"python3\0-m\0pip\0install\0--no-cache-dir\0--requirement\0/srv/app/requirements-production.txt\0";
    abi::encode_exec(raw, [b"/usr/lib/python3.11/bin/python3.11-real", b"/usr/bin/python3", args, b"/srv/app/releases/2026-11-21"])
}

/// The processes the bulk records come from (each known from its exec).
const BULK_PIDS: u32 = 8;

/// An `openat` that created or opened `/srv/app/cache/session-0042.tmp`
/// for writing, as `file_openat_exit` writes it (path from the opened file).
fn file_open_record(seq: u64, tgid: u32) -> Vec<u8> {
    let mut raw = RawFile {
        hdr: header(seq, tgid),
        ret: 3,
        syscall: 2, // openat
        hook: HookKind::SyscallTp as u32,
        flags: 0o2000101, // O_WRONLY | O_CREAT | O_CLOEXEC
        mode: 0o644,
        uid: u32::MAX,
        gid: u32::MAX,
        ino: 1_837_421,
        dev: 0x0080_0001,
        path_source: abi::path_source::OBJECT,
        ..RawFile::default()
    };
    raw.comm[..6].copy_from_slice(b"python");
    abi::encode_var(raw, EventType::FileOpen, |r| &mut r.hdr, &[(|r| &mut r.path, b"/srv/app/cache/session-0042.tmp")])
}

/// A TCP/IPv4 `connect` from 10.0.3.17:48212 to 10.0.9.4:5432, as
/// `net_connect_exit` writes it.
fn network_connect_record(seq: u64, tgid: u32) -> Vec<u8> {
    let mut raw = RawNet {
        hdr: header(seq, tgid),
        ret: 0,
        syscall: 32, // connect
        hook: HookKind::SyscallTp as u32,
        family: 2,
        type_: 1,
        protocol: 6,
        lport: 48_212,
        rport: 5432,
        addr_source: abi::path_source::OBJECT as u16,
        fd: 7,
        ..RawNet::default()
    };
    raw.laddr[..4].copy_from_slice(&[10, 0, 3, 17]);
    raw.raddr[..4].copy_from_slice(&[10, 0, 9, 4]);
    raw.comm[..6].copy_from_slice(b"python");
    abi::encode_var(raw, EventType::NetworkConnect, |r| &mut r.hdr, &[])
}

/// Print the size of the last request a benchmark encoded (when it ran).
fn report_size(name: &str, encoded_bytes: &mut usize) {
    if *encoded_bytes > 0 {
        eprintln!("{name}: encoded request of {encoded_bytes} bytes for {BATCH} records ({} bytes/record)", *encoded_bytes / BATCH);
    }
    *encoded_bytes = 0;
}

/// One iteration: map `batch` into `logs` (cleared first, its buffer kept
/// as the map stage's batcher keeps it) and encode the request. The request
/// is dropped on return, as the export stage drops it once delivered: the
/// encoder then reuses its buffer.
fn map_and_encode(
    mapper: &mut Mapper,
    logs: &mut LogBatch,
    encoder: &mut RequestEncoder,
    batch: &[RawRecord],
    encoded_bytes: &mut usize,
) -> u64 {
    logs.clear();
    for r in batch {
        logs.push_mapped(|out| mapper.map_into(r, out));
    }
    assert_eq!(logs.len(), BATCH);
    // As the map stage does: a one-workload batch becomes its request in
    // place, others are copied into the encoder's buffer.
    let request = encoder.encode_batch(logs);
    *encoded_bytes = request.bytes.len();
    request.records
}

fn bench(c: &mut Criterion<ThreadCpuTime>) {
    // As the binary runs it: purge delay 1 s, no transparent huge pages
    // (`MIMALLOC_PURGE_DELAY` / `MIMALLOC_ALLOW_THP` in the environment
    // override, as for vigil).
    vigil::allocator::tune();
    let dir = std::env::temp_dir().join(format!("vigil-bench-{}", std::process::id()));
    // A fixture cgroup tree: the records' cgroup id is a directory's inode,
    // resolved from the cache as in steady state.
    let cgroup_dir = dir.join("cgroup/system.slice/app.service");
    std::fs::create_dir_all(&cgroup_dir).expect("fixture dir");
    let cgroup_id = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&cgroup_dir).expect("fixture"));
    let raws: Vec<Vec<u8>> = (0..BATCH as u64).map(|i| exec_record(i + 1, 10_000 + i as u32, cgroup_id)).collect();
    let stats = Arc::new(Stats::default());
    let ctx = MapContext { clock: BootClock::sample(), boot_id: "3f1c2b9e-0000-4000-8000-000000000001".into(), session: "1a2b3c".into() };
    let mut mapper = Mapper::new(ctx, 1 << 16, dir.clone(), stats.clone()).with_roots(dir.clone(), Some(dir.join("cgroup")));
    mapper.cgroups().refresh_blocking();
    let resource = host_resource(&HostInfo::detect(), "bench", &["vigil.process.exec=tp_btf/sched_process_exec".into()]);
    let mut encoder = RequestEncoder::new(&resource);
    let mut encoded_bytes = 0usize;
    // Kept across iterations, as the map stage's batcher recycles its
    // batches: records are written into the same buffer each time.
    let mut logs = LogBatch::default();

    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("decode_map_encode_exec", |b| {
        b.iter_batched(
            || raws.iter().map(|bytes| RawRecord { bytes: bytes.clone(), observed_ns: 1 }).collect::<Vec<_>>(),
            |batch| map_and_encode(&mut mapper, &mut logs, &mut encoder, &batch, &mut encoded_bytes),
            BatchSize::SmallInput,
        );
    });
    report_size("decode_map_encode_exec", &mut encoded_bytes);
    // The same with process spans on (the default): each exec also ends the
    // previous image's span of that pid and starts a new one; the ended
    // spans are encoded as an OTLP traces request as well.
    let ids = vigil::spans::SpanIds::new("bench-machine", "3f1c2b9e-0000-4000-8000-000000000001");
    let ctx2 = MapContext { clock: BootClock::sample(), boot_id: "3f1c2b9e-0000-4000-8000-000000000001".into(), session: "1a2b3c".into() };
    let mut with_spans = Mapper::new(ctx2, 1 << 16, dir.clone(), stats.clone())
        .with_roots(dir.clone(), Some(dir.join("cgroup")))
        .with_spans(vigil::spans::SpanBook::new(ids, vec!["sshd".into()], 300), true);
    with_spans.cgroups().refresh_blocking();
    g.bench_function("decode_map_encode_exec_with_spans", |b| {
        b.iter_batched(
            || raws.iter().map(|bytes| RawRecord { bytes: bytes.clone(), observed_ns: 1 }).collect::<Vec<_>>(),
            |batch| {
                logs.clear();
                for r in &batch {
                    logs.push_mapped(|out| with_spans.map_into(r, out));
                }
                assert_eq!(logs.len(), BATCH);
                let spans = with_spans.take_span_groups();
                (encoder.encode_batch(&mut logs).records, encoder.encode_span_groups(spans).records)
            },
            BatchSize::SmallInput,
        );
    });
    // Bulk records: the acting processes are in the table (their execs
    // mapped once, not timed), as in steady state.
    for pid in 0..BULK_PIDS {
        let exec = RawRecord { bytes: exec_record(1, 20_000 + pid, cgroup_id), observed_ns: 1 };
        assert!(mapper.map_into(&exec, &mut Vec::new()).is_some(), "exec maps");
    }
    for (name, make) in [
        ("decode_map_encode_file_open", file_open_record as fn(u64, u32) -> Vec<u8>),
        ("decode_map_encode_network_connect", network_connect_record),
    ] {
        let bulk: Vec<Vec<u8>> = (0..BATCH as u64).map(|i| make(i + 1, 20_000 + (i as u32 % BULK_PIDS))).collect();
        g.bench_function(name, |b| {
            b.iter_batched(
                || bulk.iter().map(|bytes| RawRecord { bytes: bytes.clone(), observed_ns: 1 }).collect::<Vec<_>>(),
                |batch| map_and_encode(&mut mapper, &mut logs, &mut encoder, &batch, &mut encoded_bytes),
                BatchSize::SmallInput,
            );
        });
        report_size(name, &mut encoded_bytes);
    }
    g.finish();
    assert_eq!(stats.decode_errors.load(std::sync::atomic::Ordering::Relaxed), 0);
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = bench
}
criterion_main!(benches);
