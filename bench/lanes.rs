//! Events per second before the first loss, per lane, at the default ring
//! sizes (issue "Attack-resilient overload handling", benchmark). Run as
//! root through `bench/lanes.sh`.
//!
//! ```text
//! vigil-lanes-bench [--seconds 3] [--start 100000] [--step 100000] [--max 1500000] [--storms 2]
//! ```
//!
//! The probes are loaded with the default configuration (8 MiB per lane,
//! the default rate limit and queue) and their records are read by the
//! receiver as in vigil; a consumer thread takes them off the queue and only
//! counts them (decode, mapping and export are measured by
//! `cargo bench -p vigil --bench pipeline`). For each offered rate, `--storms`
//! child processes (separate processes, so each has its own rate-limit
//! budget) generate records at that rate together for `--seconds`:
//!
//! - bulk lane: `openat(O_WRONLY|O_CREAT)` + `close` of a file
//!   (`vigil.file.open`), and, a cheaper generator of the same lane,
//!   `connect()` of one UDP socket to 127.0.0.1:9 again and again
//!   (`vigil.network.connect`, one syscall per record);
//! - critical lane: `setresuid(-1, euid, -1)` with the effective uid
//!   alternating between 1 and 0, a real credential change each time
//!   (`vigil.privilege.cred_change`).
//!
//! A step is lossless when the lane's kernel drops and queue drops did not
//! grow and the rate limit suppressed nothing. The rate is the lane's
//! records generated (its sequence numbers) per second, measured, not the
//! offered one. The ramp stops at the first step with loss.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil::abi::{EventType, LANE_BULK, LANE_CRITICAL};
use vigil::probes::{self, ProbeSettings};
use vigil::stats::Stats;

/// Child: generate `rate` records per second of `kind` for `secs` (rate 0:
/// as fast as possible); prints how many it generated.
fn child_main(kind: &str, rate: u64, secs: f64, path: &str) -> ! {
    let c = std::ffi::CString::new(path).unwrap();
    let start = Instant::now();
    let total = if rate == 0 { u64::MAX } else { (rate as f64 * secs) as u64 };
    let batch = 64u64;
    let mut done = 0u64;
    let mut flip = 0u32;
    // SAFETY: plain socket(2); the descriptor lives until exit.
    let udp = if kind == "bulk-net" { unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) } } else { -1 };
    let discard = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 9u16.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be() },
        sin_zero: [0; 8],
    };
    while done < total && !(rate == 0 && start.elapsed().as_secs_f64() >= secs) {
        for _ in 0..batch {
            if kind == "bulk-net" {
                // SAFETY: our socket and a valid sockaddr_in of its size.
                let rc = unsafe {
                    libc::connect(udp, std::ptr::from_ref(&discard).cast(), std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
                };
                assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
            } else if kind == "bulk" {
                // SAFETY: a valid C string; the descriptor is closed at once.
                let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC, 0o600) };
                // SAFETY: our own descriptor.
                unsafe { libc::close(fd) };
            } else {
                // Alternate the effective uid between 1 and 0 (root keeps
                // its real and saved uid 0, so it can always switch back):
                // every call is a real credential change, reported.
                flip ^= 1;
                // SAFETY: plain syscall; u32::MAX leaves the real and saved uids.
                unsafe { libc::setresuid(u32::MAX, flip, u32::MAX) };
            }
        }
        done += batch;
        if rate == 0 {
            continue;
        }
        // Pace: sleep until this many records are due.
        let due = Duration::from_secs_f64(done as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    // SAFETY: back to euid 0 (the saved uid is 0).
    unsafe { libc::setresuid(u32::MAX, 0, u32::MAX) };
    println!("{done}");
    std::process::exit(0)
}

/// Run `storms` children of `kind` at `rate` in total for `secs`; returns
/// (syscalls made, seconds taken).
fn storm(me: &std::path::Path, kind: &str, rate: u64, storms: u64, secs: f64, file: &std::path::Path) -> (u64, f64) {
    let t0 = Instant::now();
    let children: Vec<_> = (0..storms)
        .map(|_| {
            std::process::Command::new(me)
                .args(["--child", kind, &(rate / storms).to_string(), &secs.to_string(), file.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let made: u64 = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().unwrap()
        })
        .sum();
    (made, t0.elapsed().as_secs_f64())
}

struct Lane {
    name: &'static str,
    /// Generator (`child_main`'s kind).
    kind: &'static str,
    lane: u32,
    event: EventType,
}

#[derive(Debug, Clone, Copy)]
struct Counters {
    generated: u64,
    lost: u64,
    suppressed: u64,
}

fn counters(s: &Stats, lane: u32, event: EventType) -> Counters {
    Counters {
        generated: s.lane_numbered(lane).load(Ordering::Relaxed),
        lost: s.kernel_dropped_in_lane(lane) + s.queue_full_in_lane(lane),
        suppressed: s.ratelimited_of(event).load(Ordering::Relaxed),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child_main(&args[1], args[2].parse().unwrap(), args[3].parse().unwrap(), &args[4]);
    }
    let (mut secs, mut start, mut step, mut max, mut storms) = (3.0f64, 100_000u64, 100_000u64, 1_500_000u64, 2u64);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{a} needs a value")).clone();
        match a.as_str() {
            "--seconds" => secs = val().parse().unwrap(),
            "--start" => start = val().parse().unwrap(),
            "--step" => step = val().parse().unwrap(),
            "--max" => max = val().parse().unwrap(),
            "--storms" => storms = val().parse().unwrap(),
            other => panic!("unknown argument {other}"),
        }
    }
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "run as root (loads eBPF programs)");
    let dir = std::env::temp_dir().join(format!("vigil-lanes-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("storm");

    let me = std::env::current_exe().unwrap();
    // The generators' own ceiling, with no probes loaded.
    let mut unmonitored = Vec::new();
    for kind in ["bulk", "bulk-net", "critical"] {
        let (made, took) = storm(&me, kind, 0, storms, secs, &file);
        unmonitored.push((kind, (made as f64 / took) as u64));
        println!("unmonitored {kind} generator, {storms} processes flat out: {} syscalls/s", (made as f64 / took) as u64);
    }
    let settings = ProbeSettings::default();
    let queue = vigil::config::PipelineConfig::default().queue_records;
    println!(
        "default sizes: critical ring {} KiB, bulk ring {} KiB, queue {queue} records (critical reserve {}), rate limit {}/s burst {} per process",
        settings.probes.ringbuf_kib,
        settings.probes.bulk_ringbuf_kib,
        settings.critical_queue_reserve,
        settings.ratelimit.bulk_per_process_rate,
        settings.ratelimit.bulk_per_process_burst
    );
    let stats = Arc::new(Stats::default());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<probes::RawRecord>(queue);
    let receiver = probes::start(settings, tx, stats.clone()).unwrap();
    let consumed = Arc::new(AtomicU64::new(0));
    let consumer = {
        let consumed = consumed.clone();
        std::thread::spawn(move || {
            // Ends when the receiver stops (the queue's senders are gone).
            while let Some(r) = rx.blocking_recv() {
                std::hint::black_box(&r.bytes);
                consumed.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let lanes = [
        Lane { name: "bulk", kind: "bulk", lane: LANE_BULK, event: EventType::FileOpen },
        Lane { name: "bulk", kind: "bulk-net", lane: LANE_BULK, event: EventType::NetworkConnect },
        Lane { name: "critical", kind: "critical", lane: LANE_CRITICAL, event: EventType::PrivilegeCredChange },
    ];
    let mut summary = Vec::new();
    for l in &lanes {
        println!("\n{} lane ({}), {storms} storm processes, {secs} s per step:", l.name, l.event.event_name());
        println!("{:>12} {:>14} {:>10} {:>12}", "offered/s", "generated/s", "lost", "suppressed");
        let mut best: Option<u64> = None;
        let mut first_loss: Option<u64> = None;
        // The offered rates, then flat out (0).
        let mut rates: Vec<u64> = (0..).map(|i| start + i * step).take_while(|r| *r <= max).collect();
        rates.push(0);
        for rate in rates {
            std::thread::sleep(Duration::from_millis(700)); // counters settle
            let before = counters(&stats, l.lane, l.event);
            let (_, elapsed) = storm(&me, l.kind, rate, storms, secs, &file);
            std::thread::sleep(Duration::from_millis(1200)); // drain, and the receiver's 500 ms counter read
            let after = counters(&stats, l.lane, l.event);
            let generated = after.generated - before.generated;
            let per_s = (generated as f64 / elapsed) as u64;
            let (lost, suppressed) = (after.lost - before.lost, after.suppressed - before.suppressed);
            let offered = if rate == 0 { "flat out".to_owned() } else { rate.to_string() };
            println!("{offered:>12} {per_s:>14} {lost:>10} {suppressed:>12}");
            if lost > 0 || suppressed > 0 {
                first_loss = Some(per_s);
                break;
            }
            best = Some(best.map_or(per_s, |b| b.max(per_s)));
        }
        summary.push((l.kind, best, first_loss));
    }
    // The reader's own drain rate: fill the bulk ring with the drain held,
    // release it, and time until every record is read.
    receiver.hold_drain(true);
    std::thread::sleep(Duration::from_millis(50));
    let before = counters(&stats, LANE_BULK, EventType::FileOpen);
    let received_before = stats.received_in_lane(LANE_BULK);
    let _ = storm(&me, "bulk", 40_000, storms, 1.0, &file); // ~40,000 records: fits the 8 MiB ring
    std::thread::sleep(Duration::from_millis(700));
    let filled = counters(&stats, LANE_BULK, EventType::FileOpen);
    let waiting = filled.generated - before.generated;
    let t0 = Instant::now();
    receiver.hold_drain(false);
    while stats.received_in_lane(LANE_BULK) - received_before < waiting && t0.elapsed() < Duration::from_secs(30) {
        std::hint::spin_loop();
    }
    let drained = (waiting as f64 / t0.elapsed().as_secs_f64()) as u64;
    let drain_lost = filled.lost - before.lost;
    println!("\nbulk ring drain: {waiting} records waiting (lost while filling: {drain_lost}), read at {drained} records/s");

    println!("\nsummary (records/s generated in the lane):");
    for (name, best, first) in &summary {
        println!(
            "  {name:<8} highest lossless step: {}; first step with loss: {}",
            best.map_or("none".into(), |b| b.to_string()),
            first.map_or(format!("none up to {max} offered"), |f| f.to_string())
        );
    }
    println!("  bulk     ring drain rate of the reader: {drained} records/s");
    for (kind, rate) in &unmonitored {
        println!("  {kind:<8} generator without probes: {rate} syscalls/s");
    }
    receiver.stop();
    let _ = consumer.join();
    println!("records consumed: {}; {}", consumed.load(Ordering::Relaxed), stats.summary());
    std::fs::remove_dir_all(dir).unwrap();
}
