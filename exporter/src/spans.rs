//! Process lifetimes as spans (OTEL-MAPPING.md, "Spans").
//!
//! One span per executed program image: it starts at exec (or at fork, for
//! a child that has not exec'd; or at the process start for processes found
//! in /proc) and ends at the next exec or at exit. Its parent is the parent
//! process's current image span, or, after an exec, the previous image of
//! the same process. New traces start at session leaders, container init
//! processes and children of configured daemons, with a link to the span
//! they descend from.
//!
//! Ids are deterministic: a keyed SipHash (the key is derived from
//! /etc/machine-id, so ids cannot be predicted off the host) of the boot id,
//! pid, process start (in clock ticks, the resolution /proc offers), the
//! image's executable path and the segment number. A child can therefore
//! name its parent before the parent's span is exported, and a process seen
//! in /proc after a restart of vigil gets the ids it had. Re-executing the
//! same file within one process would repeat the key; such images add the
//! exec count (those ids do not survive a restart).
//!
//! Long-lived images are cut into segments of `spans.max_duration_s`,
//! aligned to the span's start, each linked to the previous one, so parents
//! are visible without waiting for exit.

use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher24;
use siphasher::sip128::{Hasher128, SipHasher24 as SipHasher128};
use std::collections::HashMap;
use std::hash::Hasher;

/// Why a span ended (`vigil.span.end_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The process exited.
    Exit,
    /// The process executed another image.
    Exec,
    /// vigil stopped while the image was running.
    AgentShutdown,
    /// The segment reached `spans.max_duration_s`.
    MaxDuration,
    /// The process is gone but its exit was not observed.
    ExitLost,
    /// The process table dropped the process.
    StateEvicted,
}

impl EndReason {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Exit => "exit",
            EndReason::Exec => "exec",
            EndReason::AgentShutdown => "agent_shutdown",
            EndReason::MaxDuration => "max_duration",
            EndReason::ExitLost => "exit_lost",
            EndReason::StateEvicted => "state_evicted",
        }
    }

    /// Whether the end was not observed in the kernel.
    pub fn synthetic(self) -> bool {
        !matches!(self, EndReason::Exit | EndReason::Exec)
    }
}

/// How a span started (`vigil.span.start_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartSource {
    /// At an observed exec.
    Exec,
    /// At an observed fork (the child runs its parent's image).
    Fork,
    /// Found in /proc (start = process start).
    Procfs,
}

impl StartSource {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            StartSource::Exec => "exec",
            StartSource::Fork => "fork",
            StartSource::Procfs => "procfs",
        }
    }
}

/// Derives span and trace ids.
#[derive(Debug, Clone)]
pub struct SpanIds {
    key: [u8; 16],
    boot_id: String,
}

/// What identifies an image span (all deterministic inputs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanKey {
    /// tgid.
    pub pid: u32,
    /// Process start in clock ticks since boot.
    pub start_ticks: u64,
    /// Executable path of the image (escaped).
    pub image: String,
    /// 0, or the exec count when the same file was re-executed.
    pub disambiguator: u32,
}

impl SpanIds {
    /// Ids keyed by `machine_id` (any secret-ish, stable host string) for
    /// the boot `boot_id`.
    pub fn new(machine_id: &str, boot_id: &str) -> Self {
        let mut h = SipHasher128::new_with_keys(0x7669_6769_6c2d_6b65, 0x792d_6465_7269_7665);
        h.write(machine_id.as_bytes());
        SpanIds { key: h.finish128().as_bytes(), boot_id: boot_id.to_owned() }
    }

    fn write_key(&self, h: &mut impl Hasher, domain: &[u8], key: &SpanKey, segment: u32) {
        h.write(domain);
        h.write(self.boot_id.as_bytes());
        h.write(&key.pid.to_le_bytes());
        h.write(&key.start_ticks.to_le_bytes());
        h.write(&(key.image.len() as u64).to_le_bytes());
        h.write(key.image.as_bytes());
        h.write(&key.disambiguator.to_le_bytes());
        h.write(&segment.to_le_bytes());
    }

    /// The span id of segment `segment` of the image `key` (never zero).
    pub fn span_id(&self, key: &SpanKey, segment: u32) -> [u8; 8] {
        let (k0, k1) = self.keys();
        let mut h = SipHasher24::new_with_keys(k0, k1);
        self.write_key(&mut h, b"span", key, segment);
        let v = h.finish().max(1);
        v.to_be_bytes()
    }

    /// The trace id of a trace rooted at the image `key` (never zero).
    pub fn trace_id(&self, key: &SpanKey) -> [u8; 16] {
        let (k0, k1) = self.keys();
        let mut h = SipHasher128::new_with_keys(k0, k1);
        self.write_key(&mut h, b"trace", key, 0);
        let mut id = h.finish128().as_bytes();
        if id == [0; 16] {
            id[15] = 1;
        }
        id
    }

    fn keys(&self) -> (u64, u64) {
        let (a, b) = self.key.split_at(8);
        (u64::from_le_bytes(a.try_into().unwrap_or([0; 8])), u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }
}

/// A span that has started and not yet ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSpan {
    /// Deterministic inputs.
    pub key: SpanKey,
    /// Trace.
    #[serde(with = "hex16")]
    pub trace_id: [u8; 16],
    /// This segment's span id.
    #[serde(with = "hex8")]
    pub span_id: [u8; 8],
    /// Parent span (another process's image, or this process's previous image).
    #[serde(with = "hex8_opt")]
    pub parent_span_id: Option<[u8; 8]>,
    /// A link: the span a trace root descends from, or the previous segment.
    pub link: Option<SpanLink>,
    /// Span name: the executable's base name.
    pub name: String,
    /// Start of this segment, Unix ns.
    pub start_unix_ns: u64,
    /// Segment number (0 for the first).
    pub segment: u32,
    /// How the span started.
    pub start_source: StartSource,
    /// Parent process.
    pub ppid: u32,
    /// argv (escaped), when known.
    pub argv: Option<Vec<String>>,
    /// Effective uid, when known.
    pub uid: Option<u32>,
    /// The process led its session when this image started.
    #[serde(default)]
    pub session_leader: bool,
    /// Hashes of the images this process ran before (to tell a re-exec of
    /// an earlier image from the first one).
    #[serde(default)]
    pub prior_images: Vec<u64>,
}

/// A span link (trace, span).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanLink {
    /// Linked trace.
    #[serde(with = "hex16")]
    pub trace_id: [u8; 16],
    /// Linked span.
    #[serde(with = "hex8")]
    pub span_id: [u8; 8],
}

macro_rules! hex_serde {
    ($name:ident, $n:expr) => {
        mod $name {
            use serde::{Deserialize, Deserializer, Serializer};
            pub fn serialize<S: Serializer>(v: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&v.iter().map(|b| format!("{b:02x}")).collect::<String>())
            }
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; $n], D::Error> {
                let s = String::deserialize(d)?;
                super::parse_hex(&s).ok_or_else(|| serde::de::Error::custom("bad hex id"))
            }
        }
    };
}
hex_serde!(hex16, 16);
hex_serde!(hex8, 8);

mod hex8_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<[u8; 8]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&v.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 8]>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => super::parse_hex(&s).map(Some).ok_or_else(|| serde::de::Error::custom("bad hex id")),
            None => Ok(None),
        }
    }
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A span that ended, ready to be mapped to OTLP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedSpan {
    /// The span as it was open.
    pub span: OpenSpan,
    /// End, Unix ns.
    pub end_unix_ns: u64,
    /// Why it ended.
    pub reason: EndReason,
    /// Exit code, when the process exited normally.
    pub exit_code: Option<i64>,
    /// Terminating signal, when killed.
    pub signal: Option<u32>,
}

/// Base name of a path, for span names.
pub fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Open spans by tgid, and the rules that create and end them.
#[derive(Debug)]
pub struct SpanBook {
    ids: SpanIds,
    open: HashMap<u32, OpenSpan>,
    root_daemons: Vec<String>,
    max_duration_ns: u64,
    ticks_per_s: u64,
}

/// Everything needed to start a span.
#[derive(Debug, Clone)]
pub struct SpanStart<'a> {
    /// tgid.
    pub pid: u32,
    /// Parent tgid.
    pub ppid: u32,
    /// Process start, boot clock ns.
    pub process_start_ns: u64,
    /// Image start, Unix ns.
    pub start_unix_ns: u64,
    /// Executable path (escaped), if known.
    pub exe: Option<&'a str>,
    /// argv (escaped), if known.
    pub argv: Option<Vec<String>>,
    /// Effective uid.
    pub uid: Option<u32>,
    /// The process leads its session.
    pub session_leader: bool,
    /// The process is pid 1 of a non-initial pid namespace.
    pub container_init: bool,
    /// How it starts.
    pub source: StartSource,
}

impl SpanBook {
    /// An empty book.
    pub fn new(ids: SpanIds, root_daemons: Vec<String>, max_duration_s: u64) -> Self {
        SpanBook {
            ids,
            open: HashMap::new(),
            root_daemons,
            max_duration_ns: max_duration_s.saturating_mul(1_000_000_000),
            ticks_per_s: crate::procfs::clock_ticks(),
        }
    }

    /// The open span of a process.
    pub fn get(&self, pid: u32) -> Option<&OpenSpan> {
        self.open.get(&pid)
    }

    /// Number of open spans.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no span is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    fn ticks(&self, boot_ns: u64) -> u64 {
        boot_ns / (1_000_000_000 / self.ticks_per_s.max(1))
    }

    /// Start the span of a new image of `s.pid`. The previous image of the
    /// same process (if any) becomes the parent, else the parent process's
    /// current span. Returns the previous image's span, ended, when there
    /// was one.
    pub fn start(&mut self, s: SpanStart<'_>) -> Option<FinishedSpan> {
        let image = s.exe.unwrap_or("").to_owned();
        let start_ticks = self.ticks(s.process_start_ns);
        let mut previous = self.open.remove(&s.pid);
        // A span under this pid from another process (pid reused, its exit
        // never seen) is not this process's previous image.
        let mut lost = None;
        if previous.as_ref().is_some_and(|p| p.key.start_ticks != start_ticks) {
            lost = previous.take().map(|span| FinishedSpan {
                span,
                end_unix_ns: s.start_unix_ns,
                reason: EndReason::ExitLost,
                exit_code: None,
                signal: None,
            });
        }
        let image_hash = {
            let mut h = SipHasher24::new_with_keys(0, 0);
            h.write(image.as_bytes());
            h.finish()
        };
        let mut prior_images = previous.as_ref().map(|p| p.prior_images.clone()).unwrap_or_default();
        // Re-running an image this process ran before would repeat the key:
        // such images are told apart by how many images came before.
        let disambiguator = if prior_images.contains(&image_hash) { u32::try_from(prior_images.len()).unwrap_or(u32::MAX) } else { 0 };
        prior_images.push(image_hash);
        let key = SpanKey { pid: s.pid, start_ticks, image, disambiguator };
        let parent = previous.as_ref().or_else(|| self.open.get(&s.ppid));
        // Children of a configured daemon start traces, but not children of
        // the daemon's own workers (an sshd forked by sshd), so a connection
        // and the session it spawns stay one trace.
        let daemon_child = s.ppid <= 1
            || self.open.get(&s.ppid).is_some_and(|p| {
                let grandparent_is_same = self.open.get(&p.ppid).is_some_and(|g| g.name == p.name);
                self.root_daemons.contains(&p.name) && !grandparent_is_same
            });
        // A process that became a session leader (setsid) since its previous
        // image starts a trace; later execs in the session continue it.
        let new_session = s.session_leader && !previous.as_ref().is_some_and(|p| p.session_leader);
        let root = parent.is_none() || s.container_init || new_session || (previous.is_none() && daemon_child);
        let span_id = self.ids.span_id(&key, 0);
        let (trace_id, parent_span_id, link) = match parent {
            Some(p) if !root => (p.trace_id, Some(p.span_id), None),
            Some(p) => (self.ids.trace_id(&key), None, Some(SpanLink { trace_id: p.trace_id, span_id: p.span_id })),
            None => (self.ids.trace_id(&key), None, None),
        };
        let name = if key.image.is_empty() { String::from("unknown") } else { base_name(&key.image).to_owned() };
        let span = OpenSpan {
            key,
            trace_id,
            span_id,
            parent_span_id,
            link,
            name,
            start_unix_ns: s.start_unix_ns,
            segment: 0,
            start_source: s.source,
            ppid: s.ppid,
            argv: s.argv,
            uid: s.uid,
            session_leader: s.session_leader,
            prior_images,
        };
        self.open.insert(s.pid, span);
        let replaced = previous.map(|span| FinishedSpan {
            span,
            end_unix_ns: s.start_unix_ns,
            reason: EndReason::Exec,
            exit_code: None,
            signal: None,
        });
        replaced.or(lost)
    }

    /// End the span of `pid`.
    pub fn end(
        &mut self,
        pid: u32,
        end_unix_ns: u64,
        reason: EndReason,
        exit_code: Option<i64>,
        signal: Option<u32>,
    ) -> Option<FinishedSpan> {
        let span = self.open.remove(&pid)?;
        Some(FinishedSpan { span, end_unix_ns, reason, exit_code, signal })
    }

    /// End every open span (vigil is stopping).
    pub fn end_all(&mut self, end_unix_ns: u64, reason: EndReason) -> Vec<FinishedSpan> {
        let mut pids: Vec<u32> = self.open.keys().copied().collect();
        pids.sort_unstable();
        pids.into_iter().filter_map(|p| self.end(p, end_unix_ns, reason, None, None)).collect()
    }

    /// Cut every span whose segment is older than the maximum duration:
    /// the segment ends (`max_duration`) and the next one starts where it
    /// ended, linked to it.
    pub fn cut_segments(&mut self, now_unix_ns: u64) -> Vec<FinishedSpan> {
        if self.max_duration_ns == 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        for span in self.open.values_mut() {
            while now_unix_ns.saturating_sub(span.start_unix_ns) >= self.max_duration_ns {
                let end = span.start_unix_ns + self.max_duration_ns;
                let ended = span.clone();
                span.segment += 1;
                span.span_id = self.ids.span_id(&span.key, span.segment);
                span.start_unix_ns = end;
                span.link = Some(SpanLink { trace_id: ended.trace_id, span_id: ended.span_id });
                out.push(FinishedSpan { span: ended, end_unix_ns: end, reason: EndReason::MaxDuration, exit_code: None, signal: None });
            }
        }
        out
    }

    /// For a process found in /proc whose span started at its process start
    /// long ago: move it to the segment that covers `now` (deterministic:
    /// the same segment and ids after a restart of vigil).
    pub fn fast_forward(&mut self, pid: u32, now_unix_ns: u64) {
        let max = self.max_duration_ns;
        if max == 0 {
            return;
        }
        if let Some(span) = self.open.get_mut(&pid) {
            let k = now_unix_ns.saturating_sub(span.start_unix_ns) / max;
            if k > 0 {
                let k32 = u32::try_from(k).unwrap_or(u32::MAX);
                let prev_id = self.ids.span_id(&span.key, k32 - 1);
                span.segment = k32;
                span.span_id = self.ids.span_id(&span.key, k32);
                span.start_unix_ns += k * max;
                span.link = Some(SpanLink { trace_id: span.trace_id, span_id: prev_id });
            }
        }
    }

    /// Put back a span saved by a previous run of vigil for a process that
    /// still runs the same image (it keeps its start, parent, trace and
    /// segment, instead of the approximation rebuilt from /proc).
    pub fn restore(&mut self, pid: u32, span: OpenSpan) {
        self.open.insert(pid, span);
    }

    /// Spans still open (to persist at shutdown).
    pub fn open_spans(&self) -> Vec<(u32, OpenSpan)> {
        let mut v: Vec<(u32, OpenSpan)> = self.open.iter().map(|(p, s)| (*p, s.clone())).collect();
        v.sort_by_key(|(p, _)| *p);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> SpanBook {
        SpanBook::new(SpanIds::new("machine", "boot"), vec!["sshd".into()], 300)
    }

    fn start(pid: u32, ppid: u32, exe: &str, source: StartSource) -> SpanStart<'_> {
        SpanStart {
            pid,
            ppid,
            process_start_ns: 1_000_000_000 * u64::from(pid),
            start_unix_ns: 1_700_000_000_000_000_000 + u64::from(pid),
            exe: Some(exe),
            argv: None,
            uid: Some(0),
            session_leader: false,
            container_init: false,
            source,
        }
    }

    #[test]
    fn ids_are_deterministic_and_keyed() {
        let a = SpanIds::new("m", "b");
        let k = SpanKey { pid: 1, start_ticks: 2, image: "/bin/sh".into(), disambiguator: 0 };
        assert_eq!(a.span_id(&k, 0), SpanIds::new("m", "b").span_id(&k, 0));
        assert_ne!(a.span_id(&k, 0), a.span_id(&k, 1));
        assert_ne!(a.span_id(&k, 0), SpanIds::new("other machine", "b").span_id(&k, 0));
        assert_ne!(a.span_id(&k, 0), SpanIds::new("m", "other boot").span_id(&k, 0));
        assert_ne!(a.trace_id(&k), [0; 16]);
    }

    #[test]
    fn process_tree_becomes_a_span_tree() {
        let mut b = book();
        assert!(b.start(start(100, 1, "/usr/bin/bash", StartSource::Procfs)).is_none());
        let bash = b.get(100).cloned().expect("bash");
        assert!(bash.parent_span_id.is_none(), "no parent known: a root");
        // fork: the child runs bash's image under bash's span.
        b.start(start(200, 100, "/usr/bin/bash", StartSource::Fork));
        let child = b.get(200).cloned().expect("child");
        assert_eq!(child.parent_span_id, Some(bash.span_id));
        assert_eq!(child.trace_id, bash.trace_id);
        // exec: the fork span ends, the new image is its child.
        let ended = b.start(start(200, 100, "/usr/bin/ls", StartSource::Exec)).expect("fork span ended");
        assert_eq!((ended.reason, ended.span.span_id), (EndReason::Exec, child.span_id));
        let ls = b.get(200).cloned().expect("ls");
        assert_eq!(ls.parent_span_id, Some(child.span_id));
        assert_eq!(ls.name, "ls");
        let exit = b.end(200, 5, EndReason::Exit, Some(0), None).expect("exit");
        assert_eq!(exit.span.span_id, ls.span_id);
        assert!(b.get(200).is_none());
    }

    #[test]
    fn daemons_children_and_session_leaders_start_traces() {
        let mut b = book();
        b.start(start(50, 1, "/usr/sbin/sshd", StartSource::Procfs));
        let sshd = b.get(50).cloned().expect("sshd");
        b.start(start(60, 50, "/usr/sbin/sshd", StartSource::Fork));
        let conn = b.get(60).cloned().expect("connection");
        assert_ne!(conn.trace_id, sshd.trace_id, "children of sshd start a trace");
        assert_eq!(conn.link, Some(SpanLink { trace_id: sshd.trace_id, span_id: sshd.span_id }));
        b.start(start(61, 60, "/usr/sbin/sshd", StartSource::Fork));
        let mut s = start(61, 60, "/usr/bin/bash", StartSource::Exec);
        s.session_leader = true;
        b.start(s);
        let shell = b.get(61).cloned().expect("shell");
        assert_ne!(shell.trace_id, conn.trace_id, "a new session leader starts a trace");
        let fork61 = SpanLink {
            trace_id: conn.trace_id,
            span_id: b.ids.span_id(&SpanKey { pid: 61, start_ticks: 6100, image: "/usr/sbin/sshd".into(), disambiguator: 0 }, 0),
        };
        assert_eq!(shell.link, Some(fork61), "linked to the image it descends from");
        let mut s = start(61, 60, "/usr/bin/id", StartSource::Exec);
        s.session_leader = true;
        b.start(s);
        assert_eq!(b.get(61).map(|x| x.trace_id), Some(shell.trace_id), "later execs in the session continue its trace");
    }

    #[test]
    fn an_exec_chain_back_to_an_earlier_image_gets_a_new_id() {
        let mut b = book();
        b.start(start(8, 1, "/bin/a", StartSource::Exec));
        let a1 = b.get(8).cloned().expect("a");
        b.start(start(8, 1, "/bin/b", StartSource::Exec));
        b.start(start(8, 1, "/bin/a", StartSource::Exec));
        let a2 = b.get(8).cloned().expect("a again");
        assert_ne!(a1.span_id, a2.span_id, "A -> B -> A: the second A is a new span");
    }

    #[test]
    fn a_reused_pid_is_not_the_previous_image() {
        let mut b = book();
        b.start(start(9, 1, "/bin/old", StartSource::Exec));
        let old = b.get(9).cloned().expect("old");
        let mut s = start(9, 1, "/bin/new", StartSource::Exec);
        s.process_start_ns += 60_000_000_000;
        let ended = b.start(s).expect("the stale span ends");
        assert_eq!((ended.reason, ended.span.span_id), (EndReason::ExitLost, old.span_id));
        assert_ne!(b.get(9).and_then(|n| n.parent_span_id), Some(old.span_id));
    }

    #[test]
    fn re_exec_of_the_same_file_gets_a_new_id() {
        let mut b = book();
        b.start(start(7, 1, "/bin/sh", StartSource::Exec));
        let first = b.get(7).cloned().expect("first");
        b.start(start(7, 1, "/bin/sh", StartSource::Exec));
        let second = b.get(7).cloned().expect("second");
        assert_ne!(first.span_id, second.span_id);
        assert_eq!(second.parent_span_id, Some(first.span_id));
    }

    #[test]
    fn segments_are_cut_and_linked() {
        let mut b = SpanBook::new(SpanIds::new("m", "b"), vec![], 10);
        b.start(start(9, 1, "/bin/daemon", StartSource::Exec));
        let s0 = b.get(9).cloned().expect("open");
        let cut = b.cut_segments(s0.start_unix_ns + 25_000_000_000);
        assert_eq!(cut.len(), 2, "two whole segments elapsed");
        assert_eq!(cut[0].span.span_id, s0.span_id);
        assert_eq!(cut[0].end_unix_ns, s0.start_unix_ns + 10_000_000_000);
        let s2 = b.get(9).cloned().expect("open");
        assert_eq!(s2.segment, 2);
        assert_eq!(s2.link.map(|l| l.span_id), Some(cut[1].span.span_id));
        assert_eq!(s2.parent_span_id, s0.parent_span_id, "segments keep the parent");
        // A restarted agent that finds the process in /proc lands on the same segment and ids.
        let mut again = SpanBook::new(SpanIds::new("m", "b"), vec![], 10);
        again.start(start(9, 1, "/bin/daemon", StartSource::Exec));
        again.fast_forward(9, s0.start_unix_ns + 25_000_000_000);
        assert_eq!(again.get(9).map(|s| s.span_id), Some(s2.span_id));
    }

    #[test]
    fn open_spans_round_trip_through_json() {
        let mut b = book();
        b.start(start(3, 1, "/bin/x", StartSource::Exec));
        let open = b.open_spans();
        let json = serde_json::to_string(&open).expect("json");
        let back: Vec<(u32, OpenSpan)> = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, open);
    }
}
