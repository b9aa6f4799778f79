//! Process table: what the agent knows about each live process.
//!
//! Fed by exec, fork and exit records and by the /proc snapshot taken at
//! start-up. Records that do not carry the full process context themselves
//! (fork, exit) take it from here, together with where it came from
//! (`vigil.context.source`). The table is bounded: when it is full, the
//! process that started first is evicted to make room; evictions are counted
//! (`evicted`, reported in heartbeats) and handed to the map stage, which
//! ends the evicted process's span (`state_evicted`). A later record about
//! an evicted process says its context is `unknown`.

use crate::fasthash::FastMap;
use crate::procfs::ProcEntry;

/// Where a record's process context came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContextSource {
    /// Captured by the probes for this process.
    Observed,
    /// Read from /proc at start-up (the process predates vigil).
    Procfs,
    /// Rebuilt from /proc after the agent missed events.
    Rebuilt,
    /// Not known: the process was never seen.
    Unknown,
}

impl ContextSource {
    /// The `vigil.context.source` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ContextSource::Observed => "observed",
            ContextSource::Procfs => "procfs",
            ContextSource::Rebuilt => "rebuilt",
            ContextSource::Unknown => "unknown",
        }
    }
}

/// What the table holds for one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Parent tgid.
    pub ppid: u32,
    /// Start time, boot clock ns.
    pub start_ns: u64,
    /// Executable path of the current image, when known.
    pub exe: Option<Vec<u8>>,
    /// comm.
    pub comm: Vec<u8>,
    /// Effective uid, when known.
    pub euid: Option<u32>,
    /// Number of execs observed in this process.
    pub exec_count: u32,
    /// Where the context came from.
    pub source: ContextSource,
    /// The workload (container, pod, unit) of the cgroup of the process's
    /// last exec, inherited by its forks.
    pub workload: Option<std::sync::Arc<crate::workload::Workload>>,
    /// `process.creation.time` as formatted for the process's fork or
    /// exec record, for its later records (its exec, further execs, its
    /// exit) to reuse when the boot clock still maps its start to the same
    /// Unix ns ([`Rfc3339::unix_ns`](crate::otel::Rfc3339::unix_ns)).
    pub creation_time: Option<crate::otel::Rfc3339>,
}

/// Bounded map of live processes by tgid.
#[derive(Debug)]
pub struct ProcessTable {
    procs: FastMap<u32, ProcessInfo>,
    capacity: usize,
    evicted: u64,
    evicted_pending: Vec<u32>,
    /// Entries absent from the previous /proc reconciliation.
    absent_once: std::collections::HashSet<u32>,
}

/// What a reconciliation with /proc found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Processes alive in /proc whose start or exec was never observed
    /// (now in the table with source `rebuilt`).
    pub missed_exec: Vec<u32>,
    /// Processes in the table that are gone from /proc without an observed
    /// exit (two reconciliations in a row), now removed.
    pub missed_exit: Vec<u32>,
}

impl ProcessTable {
    /// An empty table holding at most `capacity` processes.
    pub fn new(capacity: usize) -> Self {
        ProcessTable {
            // Grows with the processes actually running: a table sized for
            // 65,536 up front spread a host's few thousand entries over ~12
            // MB, and each exec's lookup missed the cache (~6% of the exec
            // path; docs/performance.md).
            procs: FastMap::default(),
            capacity: capacity.max(1),
            evicted: 0,
            evicted_pending: Vec::new(),
            absent_once: std::collections::HashSet::new(),
        }
    }

    /// Number of processes known.
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// Processes evicted because the table was full.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Processes evicted since the last call (their spans must end).
    pub fn take_evicted(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.evicted_pending)
    }

    /// Make room for one entry: evict the process that started first (a
    /// linear scan; the table is only full in abnormal conditions).
    fn evict_oldest(&mut self) {
        if let Some(tgid) = self.procs.iter().min_by_key(|(t, p)| (p.start_ns, **t)).map(|(t, _)| *t) {
            self.procs.remove(&tgid);
            self.evicted += 1;
            self.evicted_pending.push(tgid);
        }
    }

    /// Look a process up.
    pub fn get(&self, tgid: u32) -> Option<&ProcessInfo> {
        self.procs.get(&tgid)
    }

    fn insert(&mut self, tgid: u32, info: ProcessInfo) {
        if self.procs.len() >= self.capacity && !self.procs.contains_key(&tgid) {
            self.evict_oldest();
        }
        self.procs.insert(tgid, info);
    }

    /// Load the /proc snapshot; entries already observed are kept.
    pub fn load_snapshot(&mut self, entries: impl IntoIterator<Item = ProcEntry>) {
        for e in entries {
            if !self.procs.contains_key(&e.tgid) {
                self.insert_from_proc(e, ContextSource::Procfs);
            }
        }
    }

    /// Insert a process rebuilt from /proc (context the agent missed).
    pub fn insert_rebuilt(&mut self, e: ProcEntry) {
        self.insert_from_proc(e, ContextSource::Rebuilt);
    }

    fn insert_from_proc(&mut self, e: ProcEntry, source: ContextSource) {
        let info = ProcessInfo {
            ppid: e.ppid,
            start_ns: e.start_ns,
            exe: e.exe,
            comm: e.comm,
            euid: e.euid,
            exec_count: 0,
            source,
            workload: None,
            creation_time: None,
        };
        self.insert(e.tgid, info);
    }

    /// Compare the table with a /proc snapshot.
    ///
    /// - A live process the table does not know, started before
    ///   `settled_ns` (boot clock; later ones may still have their fork or
    ///   exec record in flight), or known with another executable than
    ///   /proc shows, was missed: it is (re)inserted as `rebuilt`.
    /// - A table entry missing from two snapshots in a row (its exit record
    ///   had a whole interval to arrive) lost its exit: it is removed.
    pub fn reconcile(&mut self, snapshot: Vec<ProcEntry>, settled_ns: u64) -> Reconciled {
        let mut out = Reconciled::default();
        let mut alive = std::collections::HashSet::with_capacity(snapshot.len());
        for e in snapshot {
            alive.insert(e.tgid);
            let known = self.procs.get(&e.tgid);
            let same_process = known.is_some_and(|p| same_start(p.start_ns, e.start_ns));
            let image_differs =
                known.is_some_and(|p| same_process && !e.exe_deleted && e.exe.is_some() && p.exe.is_some() && p.exe != e.exe);
            if (!same_process && e.start_ns < settled_ns) || image_differs {
                out.missed_exec.push(e.tgid);
                self.insert_rebuilt(e);
            }
        }
        let gone: Vec<u32> = self.procs.keys().copied().filter(|t| !alive.contains(t)).collect();
        let mut absent_now = std::collections::HashSet::new();
        for tgid in gone {
            if self.absent_once.contains(&tgid) {
                self.procs.remove(&tgid);
                out.missed_exit.push(tgid);
            } else {
                absent_now.insert(tgid);
            }
        }
        self.absent_once = absent_now;
        out.missed_exec.sort_unstable();
        out.missed_exit.sort_unstable();
        out
    }

    /// An exec replaced the image of `tgid`. The executable and comm are
    /// copied from the record into the entry, into the buffers of the
    /// entry's previous image when it has one (a process known from its
    /// fork or an earlier exec: no allocation).
    #[allow(clippy::too_many_arguments)]
    pub fn on_exec(
        &mut self,
        tgid: u32,
        ppid: u32,
        start_ns: u64,
        exe: Option<&[u8]>,
        comm: &[u8],
        euid: u32,
        workload: Option<std::sync::Arc<crate::workload::Workload>>,
        creation_time: Option<crate::otel::Rfc3339>,
    ) {
        let full = self.procs.len() >= self.capacity;
        match self.procs.entry(tgid) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                // Every field named: a new one must be considered here.
                let ProcessInfo {
                    ppid: old_ppid,
                    start_ns: old_start_ns,
                    exe: old_exe,
                    comm: old_comm,
                    euid: old_euid,
                    exec_count,
                    source,
                    workload: old_workload,
                    creation_time: old_creation_time,
                } = o.get_mut();
                *old_ppid = ppid;
                *old_start_ns = start_ns;
                match (exe, old_exe.as_mut()) {
                    (Some(new), Some(buf)) => {
                        buf.clear();
                        buf.extend_from_slice(new);
                    }
                    (new, _) => *old_exe = new.map(<[u8]>::to_vec),
                }
                old_comm.clear();
                old_comm.extend_from_slice(comm);
                *old_euid = Some(euid);
                *exec_count = exec_count.saturating_add(1);
                *source = ContextSource::Observed;
                *old_workload = workload;
                *old_creation_time = creation_time;
            }
            vacant => {
                let info = ProcessInfo {
                    ppid,
                    start_ns,
                    exe: exe.map(<[u8]>::to_vec),
                    comm: comm.to_vec(),
                    euid: Some(euid),
                    exec_count: 1,
                    source: ContextSource::Observed,
                    workload,
                    creation_time,
                };
                match vacant {
                    std::collections::hash_map::Entry::Vacant(v) if !full => {
                        v.insert(info);
                    }
                    _ => self.insert(tgid, info),
                }
            }
        }
    }

    /// `parent` forked `child`: the child inherits the parent's image.
    /// Returns the child's entry, and whether an entry of an earlier
    /// process with the same pid was still there (its exit was missed).
    /// `creation_time`: the child's, as its fork record shows it.
    pub fn on_fork(
        &mut self,
        parent: u32,
        child: u32,
        child_start_ns: u64,
        comm: Vec<u8>,
        creation_time: Option<crate::otel::Rfc3339>,
    ) -> (ProcessInfo, bool) {
        let stale = self.procs.get(&child).is_some_and(|p| !same_start(p.start_ns, child_start_ns));
        let (exe, euid, source, workload) = match self.procs.get(&parent) {
            Some(p) => (p.exe.clone(), p.euid, p.source, p.workload.clone()),
            None => (None, None, ContextSource::Unknown, None),
        };
        let info = ProcessInfo { ppid: parent, start_ns: child_start_ns, exe, comm, euid, exec_count: 0, source, workload, creation_time };
        self.insert(child, info.clone());
        (info, stale)
    }

    /// `tgid` changed its credentials (setuid family, capset): it acts with
    /// effective uid `euid` from now on. Nothing for an unknown process.
    pub fn on_cred_change(&mut self, tgid: u32, euid: u32) {
        if let Some(p) = self.procs.get_mut(&tgid) {
            p.euid = Some(euid);
        }
    }

    /// `tgid` exited; its entry is removed and returned. An entry whose
    /// start time differs belongs to an earlier process with a reused pid
    /// and is not returned as this one's context.
    pub fn on_exit(&mut self, tgid: u32, start_ns: u64) -> Option<ProcessInfo> {
        let info = self.procs.remove(&tgid)?;
        same_start(info.start_ns, start_ns).then_some(info)
    }
}

/// Start times from /proc have clock-tick resolution; kernel ones are exact.
/// Two start times name the same process when they agree to within a tick
/// (at most 10 ms with the usual CONFIG_HZ of 100 or more).
pub fn same_start(a: u64, b: u64) -> bool {
    a.abs_diff(b) < 10_000_000
}

/// Processes that exited recently, for records the kernel wrote before the
/// exit but that are mapped after it. The bulk lane (file and network
/// records) is drained after the critical lane (exec, fork, exit), so a
/// short-lived process's open (`cat /etc/shadow`) usually reaches the
/// mapper after its exit record has taken it out of the table; without
/// this its executable, workload and span were lost.
///
/// Bounded by count ([`RECENT_EXITS_MAX`]) and by age ([`RECENT_EXITS_NS`]
/// of kernel time after the newest exit): a record held back longer than
/// that is mapped without its process's context (`lost_context`), as
/// before.
#[derive(Debug, Default)]
pub struct RecentExits {
    by_tgid: FastMap<u32, Exited>,
    /// (tgid, exit time) in exit order, for expiry.
    order: std::collections::VecDeque<(u32, u64)>,
}

/// One exited process: its last context, its span, when it exited.
#[derive(Debug, Clone)]
pub struct Exited {
    /// The table's entry at the exit.
    pub info: ProcessInfo,
    /// Its span (trace id, span id), if it had one.
    pub span: Option<([u8; 16], [u8; 8])>,
    /// The exit record's time, boot clock ns.
    pub exit_ns: u64,
}

/// Most exited processes kept.
pub const RECENT_EXITS_MAX: usize = 4096;

/// How long (kernel time) an exited process is kept after the newest exit.
pub const RECENT_EXITS_NS: u64 = 10_000_000_000;

impl RecentExits {
    /// Process `tgid` exited at `exit_ns`.
    pub fn insert(&mut self, tgid: u32, info: ProcessInfo, span: Option<([u8; 16], [u8; 8])>, exit_ns: u64) {
        self.by_tgid.insert(tgid, Exited { info, span, exit_ns });
        self.order.push_back((tgid, exit_ns));
        while let Some(&(old, at)) = self.order.front() {
            if self.order.len() <= RECENT_EXITS_MAX && at.saturating_add(RECENT_EXITS_NS) >= exit_ns {
                break;
            }
            self.order.pop_front();
            // A later exit of the same pid (reused) replaced the entry: keep it.
            if self.by_tgid.get(&old).is_some_and(|e| e.exit_ns == at) {
                self.by_tgid.remove(&old);
            }
        }
    }

    /// The exited process `tgid` a record written at `ktime_ns` belongs
    /// to: one that exited at or after that time.
    pub fn get(&self, tgid: u32, ktime_ns: u64) -> Option<&Exited> {
        self.by_tgid.get(&tgid).filter(|e| ktime_ns <= e.exit_ns)
    }

    /// Number of exited processes kept.
    pub fn len(&self) -> usize {
        self.by_tgid.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.by_tgid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tgid: u32, exe: &str) -> ProcEntry {
        ProcEntry {
            tgid,
            ppid: 1,
            start_ns: 1_000_000_000,
            comm: b"x".to_vec(),
            exe: Some(exe.as_bytes().to_vec()),
            exe_deleted: false,
            euid: Some(0),
            cmdline: None,
            sid: None,
            ns_init: false,
        }
    }

    #[test]
    fn fork_inherits_parent_context_and_source() {
        let mut t = ProcessTable::new(16);
        t.load_snapshot([entry(10, "/bin/bash")]);
        let (child, stale) = t.on_fork(10, 11, 2_000_000_000, b"bash".to_vec(), None);
        assert!(!stale);
        assert_eq!(child.exe.as_deref(), Some(&b"/bin/bash"[..]));
        assert_eq!(child.source, ContextSource::Procfs);
        let (_, stale) = t.on_fork(10, 11, 9_000_000_000, b"bash".to_vec(), None);
        assert!(stale, "pid 11 reused: the earlier process's exit was missed");
        let (orphan, _) = t.on_fork(99, 100, 3, b"?".to_vec(), None);
        // The child's creation time, as its fork record showed it, is kept
        // for its exec; the exec keeps the one it showed.
        let shown = crate::otel::Rfc3339::new(1_700_000_000_000_000_000);
        let (child, _) = t.on_fork(10, 12, 4, b"bash".to_vec(), Some(shown));
        assert_eq!((child.creation_time, t.get(12).and_then(|p| p.creation_time)), (Some(shown), Some(shown)));
        let later = crate::otel::Rfc3339::new(1_700_000_000_000_000_001);
        t.on_exec(12, 10, 4, Some(b"/bin/ls"), b"ls", 0, None, Some(later));
        assert_eq!(t.get(12).and_then(|p| p.creation_time), Some(later));
        assert_eq!(orphan.source, ContextSource::Unknown);
        assert_eq!(orphan.exe, None);
    }

    #[test]
    fn exec_is_observed_and_counts_images() {
        let mut t = ProcessTable::new(16);
        t.on_exec(5, 1, 7, Some(b"/bin/a"), b"a", 0, None, None);
        t.on_exec(5, 1, 7, Some(b"/usr/bin/b"), b"b", 0, None, None);
        let p = t.get(5).expect("known");
        assert_eq!(p.exec_count, 2);
        assert_eq!(p.source, ContextSource::Observed);
        assert_eq!(p.exe.as_deref(), Some(&b"/usr/bin/b"[..]));
        assert_eq!(p.comm, b"b");
        // An image without a readable executable clears it; the next one
        // sets it again.
        t.on_exec(5, 2, 8, None, b"c", 1, None, None);
        let p = t.get(5).expect("known");
        assert_eq!((p.exe.as_deref(), p.comm.as_slice(), p.ppid, p.start_ns, p.euid, p.exec_count), (None, &b"c"[..], 2, 8, Some(1), 3));
        t.on_exec(5, 2, 8, Some(b"/d"), b"d", 1, None, None);
        assert_eq!(t.get(5).and_then(|p| p.exe.as_deref()), Some(&b"/d"[..]));
        // An entry from /proc becomes observed.
        t.load_snapshot([entry(6, "/bin/sh")]);
        t.on_exec(6, 1, 1_000_000_000, Some(b"/bin/ls"), b"ls", 0, None, None);
        let p = t.get(6).expect("known");
        assert_eq!((p.source, p.exec_count, p.exe.as_deref()), (ContextSource::Observed, 1, Some(&b"/bin/ls"[..])));
    }

    #[test]
    fn a_credential_change_sets_the_effective_uid_its_children_inherit() {
        let mut t = ProcessTable::new(16);
        t.load_snapshot([entry(10, "/usr/sbin/sshd")]);
        t.on_cred_change(10, 1000);
        assert_eq!(t.get(10).and_then(|p| p.euid), Some(1000));
        let (child, _) = t.on_fork(10, 11, 2_000_000_000, b"sshd".to_vec(), None);
        assert_eq!(child.euid, Some(1000), "forked after the change");
        t.on_cred_change(99, 0);
        assert!(t.get(99).is_none(), "an unknown process stays unknown");
    }

    #[test]
    fn exit_removes_and_checks_start_time() {
        let mut t = ProcessTable::new(16);
        t.on_exec(5, 1, 7_000_000_000, None, b"a", 0, None, None);
        assert!(t.on_exit(5, 9_000_000_000).is_none(), "pid reuse must not match");
        assert!(t.is_empty());
        t.on_exec(6, 1, 7_000_000_000, None, b"a", 0, None, None);
        assert!(t.on_exit(6, 7_004_000_000).is_some());
    }

    #[test]
    fn reconcile_finds_missed_execs_and_exits() {
        let mut t = ProcessTable::new(16);
        t.on_exec(10, 1, 1_000_000_000, Some(b"/bin/a"), b"a", 0, None, None);
        t.on_exec(11, 1, 1_000_000_000, Some(b"/bin/old"), b"old", 0, None, None);
        let mut e11 = entry(11, "/bin/new");
        e11.start_ns = 1_000_000_000;
        let young = ProcEntry { start_ns: 9_000_000_000, ..entry(13, "/bin/young") };
        let snap = vec![e11.clone(), entry(12, "/bin/unseen"), young.clone()];
        let r = t.reconcile(snap.clone(), 5_000_000_000);
        assert_eq!(r.missed_exec, vec![11, 12], "exec of 11 and start of 12 were missed; 13 may still be in flight");
        assert!(r.missed_exit.is_empty(), "10 is absent once: its exit may still be in flight");
        assert_eq!(t.get(12).map(|p| p.source), Some(ContextSource::Rebuilt));
        assert_eq!(t.get(11).and_then(|p| p.exe.clone()), Some(b"/bin/new".to_vec()));
        let r = t.reconcile(snap, 5_000_000_000);
        assert_eq!(r.missed_exit, vec![10]);
        assert!(r.missed_exec.is_empty(), "nothing new");
        assert!(t.get(10).is_none());
    }

    #[test]
    fn full_table_evicts_the_oldest_and_counts_it() {
        let mut t = ProcessTable::new(2);
        let old = ProcEntry { start_ns: 1, ..entry(1, "/a") };
        t.load_snapshot([old, entry(2, "/b"), entry(3, "/c")]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.evicted(), 1);
        assert!(t.get(1).is_none(), "the process that started first goes");
        assert_eq!(t.take_evicted(), vec![1]);
        assert!(t.take_evicted().is_empty());
    }
}

#[cfg(test)]
mod recent_exit_tests {
    use super::*;

    fn info(exe: &str) -> ProcessInfo {
        ProcessInfo {
            ppid: 1,
            start_ns: 5,
            exe: Some(exe.as_bytes().to_vec()),
            comm: b"x".to_vec(),
            euid: None,
            exec_count: 1,
            source: ContextSource::Observed,
            workload: None,
            creation_time: None,
        }
    }

    #[test]
    fn a_record_written_before_the_exit_finds_the_exited_process() {
        let mut r = RecentExits::default();
        r.insert(42, info("/usr/bin/cat"), Some(([1; 16], [2; 8])), 1_000);
        let e = r.get(42, 999).expect("written before the exit");
        assert_eq!(e.info.exe.as_deref(), Some(&b"/usr/bin/cat"[..]));
        assert_eq!(e.span, Some(([1; 16], [2; 8])));
        assert!(r.get(42, 1_001).is_none(), "written after the exit: another process");
        assert!(r.get(43, 999).is_none());
    }

    #[test]
    fn exited_processes_expire_by_age_and_by_count() {
        let mut r = RecentExits::default();
        r.insert(1, info("/a"), None, 0);
        r.insert(2, info("/b"), None, RECENT_EXITS_NS);
        assert!(r.get(1, 0).is_some(), "exactly the retention apart: kept");
        r.insert(3, info("/c"), None, RECENT_EXITS_NS + 1);
        assert!(r.get(1, 0).is_none(), "older than the retention");
        assert!(r.get(2, 0).is_some());
        for pid in 10..10 + RECENT_EXITS_MAX as u32 {
            r.insert(pid, info("/d"), None, RECENT_EXITS_NS + 2);
        }
        assert_eq!(r.len(), RECENT_EXITS_MAX);
        assert!(r.get(2, 0).is_none() && r.get(3, 0).is_none(), "the oldest go first");
    }

    #[test]
    fn a_reused_pid_keeps_its_latest_exit() {
        let mut r = RecentExits::default();
        r.insert(7, info("/first"), None, 100);
        r.insert(7, info("/second"), None, 200);
        assert_eq!(r.get(7, 150).map(|e| e.info.exe.clone()), Some(Some(b"/second".to_vec())));
        // Expiring the first exit's slot leaves the second's entry.
        r.insert(8, info("/x"), None, 100 + RECENT_EXITS_NS + 1);
        assert!(r.get(7, 150).is_some());
    }
}
