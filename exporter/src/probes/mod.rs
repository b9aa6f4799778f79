//! Receiver stage: load the eBPF programs, attach them, drain the ring
//! buffer, read the kernel's loss counters.
//!
//! Guarantees:
//! - the receiver never blocks on the pipeline: a record it cannot hand on
//!   (queue full) is counted per event type in [`crate::stats::Stats`];
//! - the kernel numbers every record per CPU before it tries to output it,
//!   and counts every failed output per event type and cause, so kernel
//!   losses are visible as sequence gaps and as counters;
//! - on stop, the programs are detached first, then the ring buffer is
//!   drained one last time, so no record that reached the buffer is left.
//!
//! libbpf objects are not `Send`, so one dedicated thread owns them for
//! their whole life: it loads, attaches, reports the outcome, then drains.

pub mod hooks;

use crate::abi::{self, EventType};
use crate::config::ProbesConfig;
use crate::stats::Stats;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::mpsc;

#[allow(clippy::all, clippy::pedantic, missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn, unused_qualifications)]
mod process_skel {
    include!(concat!(env!("OUT_DIR"), "/process.skel.rs"));
}
use process_skel::{ProcessSkel, ProcessSkelBuilder};

/// Path of the compiled BPF object (for the ABI test against its BTF).
pub const PROCESS_OBJECT_PATH: &str = concat!(env!("OUT_DIR"), "/process.bpf.o");

/// Loading or attaching failed.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// libbpf refused to open or load the object.
    #[error("loading the eBPF programs: {0}")]
    Load(String),
    /// A program could not be attached.
    #[error("attaching {hook}: {message}")]
    Attach {
        /// hook name
        hook: &'static str,
        /// libbpf's error
        message: String,
    },
    /// The receiver thread could not start or died.
    #[error("receiver thread: {0}")]
    Thread(String),
}

/// Settings the probes get before load (`.rodata`) and at run time.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// From the configuration.
    pub probes: ProbesConfig,
    /// vigil's own tgid, whose events the probes ignore.
    pub self_tgid: u32,
}

/// What is attached, for `vigil check`, logs and the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeStatus {
    /// `event_name=hook` for every attached program.
    pub active_hooks: Vec<String>,
    /// Boot-clock ns when the probes were loaded (the stream session).
    pub loaded_at_boot_ns: u64,
}

/// A raw record handed from the receiver to the decode stage, with the time
/// vigil read it.
#[derive(Debug)]
pub struct RawRecord {
    /// Record bytes, exactly as in the ring buffer.
    pub bytes: Vec<u8>,
    /// Unix ns when the receiver read it.
    pub observed_ns: u64,
}

/// Handle to the running receiver thread.
#[derive(Debug)]
pub struct Receiver {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// What was attached.
    pub status: ProbeStatus,
}

impl Receiver {
    /// Ask the thread to detach and drain, and wait for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("receiver thread panicked");
            }
        }
    }
}

fn open_and_load(settings: &ProbeSettings) -> Result<ProcessSkel<'static>, ProbeError> {
    // The open object must outlive the skeleton, which lives until the
    // receiver thread ends; one small allocation per load is leaked for it.
    let storage: &'static mut MaybeUninit<libbpf_rs::OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    let builder = ProcessSkelBuilder::default();
    let mut open = builder.open(storage).map_err(|e| ProbeError::Load(format!("{e:#}")))?;
    let rodata = open.maps.rodata_data.as_deref_mut().ok_or_else(|| ProbeError::Load("object has no .rodata".into()))?;
    rodata.vigil_tgid = settings.self_tgid;
    rodata.args_max = settings.probes.args_max_bytes;
    rodata.wakeup_every = settings.probes.wakeup_every;
    open.maps
        .events
        .set_max_entries(settings.probes.ringbuf_kib.saturating_mul(1024))
        .map_err(|e| ProbeError::Load(format!("ring buffer size: {e:#}")))?;
    let cpus = libbpf_rs::num_possible_cpus().map_err(|e| ProbeError::Load(format!("possible CPUs: {e:#}")))?;
    open.maps
        .scratch
        .set_max_entries(u32::try_from(cpus.max(1)).unwrap_or(u32::MAX))
        .map_err(|e| ProbeError::Load(format!("scratch map size: {e:#}")))?;
    open.load().map_err(|e| ProbeError::Load(format!("{e:#}")))
}

fn attach_all(skel: &mut ProcessSkel<'static>) -> Result<(Vec<libbpf_rs::Link>, Vec<String>), ProbeError> {
    let mut links = Vec::new();
    let mut active = Vec::new();
    for hook in hooks::HOOKS {
        let link = program(skel, hook.event).attach().map_err(|e| ProbeError::Attach { hook: hook.attach_point, message: format!("{e:#}") })?;
        links.push(link);
        active.push(format!("{}={}", hook.event.event_name(), hook.attach_point));
    }
    Ok((links, active))
}

/// The program that serves `event` (the hook table names it; this is the
/// one place that maps it to the skeleton's typed field).
fn program<'a>(skel: &'a mut ProcessSkel<'static>, event: EventType) -> &'a mut libbpf_rs::ProgramMut<'static> {
    match event {
        EventType::Exec => &mut skel.progs.handle_exec,
        EventType::Fork => &mut skel.progs.handle_fork,
        EventType::Exit => &mut skel.progs.handle_exit,
    }
}

/// Sum a per-CPU `u64` array entry over all CPUs.
fn percpu_sum(map: &dyn MapCore, index: u32) -> u64 {
    match map.lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY) {
        Ok(Some(values)) => values.iter().filter_map(|v| v.get(..8)).map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]))).sum(),
        _ => 0,
    }
}

/// Copy the kernel counters into `stats`.
fn read_kernel_counters(skel: &ProcessSkel<'static>, stats: &Stats) {
    for t in EventType::ALL {
        let ti = t as u32;
        stats.kernel_emitted(t).store(percpu_sum(&skel.maps.emit_counters, ti), Ordering::Relaxed);
        for cause in abi::DropCause::ALL {
            let idx = ti * abi::DROP_MAX as u32 + cause as u32;
            stats.kernel_dropped(t, cause).store(percpu_sum(&skel.maps.drop_counters, idx), Ordering::Relaxed);
        }
        for problem in abi::FieldProblem::ALL {
            let idx = ti * abi::FIELDP_MAX as u32 + problem as u32;
            stats.kernel_field_problem(t, problem).store(percpu_sum(&skel.maps.field_counters, idx), Ordering::Relaxed);
        }
    }
}

/// Load, attach and start draining into `tx`. Returns once the programs are
/// attached (or failed to be). The caller must have started the consumers
/// of `tx` already.
pub fn start(settings: ProbeSettings, tx: mpsc::Sender<RawRecord>, stats: Arc<Stats>) -> Result<Receiver, ProbeError> {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<ProbeStatus, ProbeError>>();
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("vigil-receiver".into())
        .spawn(move || receiver_thread(settings, tx, stats, thread_stop, ready_tx))
        .map_err(|e| ProbeError::Thread(e.to_string()))?;
    match ready_rx.recv() {
        Ok(Ok(status)) => Ok(Receiver { stop, thread: Some(thread), status }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(ProbeError::Thread("receiver thread exited before reporting".into()))
        }
    }
}

fn receiver_thread(
    settings: ProbeSettings,
    tx: mpsc::Sender<RawRecord>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<Result<ProbeStatus, ProbeError>>,
) {
    let mut skel = match open_and_load(&settings) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let loaded_at_boot_ns = crate::clock::boot_now_ns();
    let cb_stats = stats.clone();
    let mut builder = RingBufferBuilder::new();
    let added = builder.add(&skel.maps.events, move |data: &[u8]| {
        let observed_ns = crate::clock::unix_now_ns();
        cb_stats.received.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(RawRecord { bytes: data.to_vec(), observed_ns }) {
            Ok(()) => {}
            Err(_) => cb_stats.count_queue_full(data),
        }
        0
    });
    let ring = match added.map(|_| ()).and_then(|()| builder.build()) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(ProbeError::Load(format!("ring buffer reader: {e:#}"))));
            return;
        }
    };
    let (links, active_hooks) = match attach_all(&mut skel) {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(ProbeStatus { active_hooks, loaded_at_boot_ns }));
    let interval = Duration::from_millis(settings.probes.poll_interval_ms);
    let mut last_counters = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        // poll() returns early on a forced wake-up; consume() then drains
        // whatever was submitted without one.
        if let Err(e) = ring.poll(interval) {
            tracing::warn!("ring buffer poll: {e:#}");
        }
        if let Err(e) = ring.consume() {
            tracing::warn!("ring buffer consume: {e:#}");
        }
        if last_counters.elapsed() >= Duration::from_millis(500) {
            read_kernel_counters(&skel, &stats);
            last_counters = Instant::now();
        }
    }
    // Detach first, so nothing new arrives, then drain what is left.
    drop(links);
    if let Err(e) = ring.consume() {
        tracing::warn!("final ring buffer drain: {e:#}");
    }
    read_kernel_counters(&skel, &stats);
    drop(ring);
}
