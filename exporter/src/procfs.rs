//! Reading process state from /proc.
//!
//! Used at start-up so that processes that started before vigil are known,
//! and by the process table when it must fill in context it did not observe.
//! Everything read here is a snapshot that can race with the process exiting;
//! a value that cannot be read is `None`, never a placeholder.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One process as seen in /proc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcEntry {
    /// Thread group id.
    pub tgid: u32,
    /// Parent tgid.
    pub ppid: u32,
    /// Start time since boot in ns (tick resolution: /proc/<pid>/stat
    /// field 22 counts CLOCK_BOOTTIME ticks since Linux 5.5).
    pub start_ns: u64,
    /// comm.
    pub comm: Vec<u8>,
    /// Executable path (`/proc/<pid>/exe`), without the " (deleted)" suffix.
    pub exe: Option<Vec<u8>>,
    /// The executable has been unlinked.
    pub exe_deleted: bool,
    /// Effective uid.
    pub euid: Option<u32>,
    /// argv (NUL-separated, as in the argument area).
    pub cmdline: Option<Vec<u8>>,
    /// Session id.
    pub sid: Option<u32>,
    /// The process is pid 1 of its own (non-initial) pid namespace.
    pub ns_init: bool,
}

/// Clock ticks per second for /proc times.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// Parse `/proc/<pid>/stat` into (comm, ppid, starttime ticks, session).
/// The comm is enclosed in parentheses and may itself contain ") ", so the
/// last ')' ends it.
pub fn parse_stat(stat: &[u8]) -> Option<(Vec<u8>, u32, u64, u32)> {
    let open = stat.iter().position(|b| *b == b'(')?;
    let close = stat.iter().rposition(|b| *b == b')')?;
    let comm = stat.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, starttime field 22.
    let ppid = fields.get(1)?.parse().ok()?;
    let session = fields.get(3)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((comm, ppid, start, session))
}

/// The effective uid from `/proc/<pid>/status` content.
pub fn parse_status_euid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_ascii_whitespace().nth(2)?.parse().ok()
}

/// The innermost pid from the `NSpid:` line of `/proc/<pid>/status`.
pub fn parse_status_nspid_last(status: &str) -> Option<u32> {
    status.lines().find_map(|l| l.strip_prefix("NSpid:"))?.split_ascii_whitespace().last()?.parse().ok()
}

/// Read one process from `root` (normally `/proc`).
pub fn read_entry(root: &Path, tgid: u32, ticks: u64) -> Option<ProcEntry> {
    let dir = root.join(tgid.to_string());
    let stat = std::fs::read(dir.join("stat")).ok()?;
    let (comm, ppid, start_ticks, sid) = parse_stat(&stat)?;
    let status = std::fs::read_to_string(dir.join("status")).ok();
    let (exe, exe_deleted) = match std::fs::read_link(dir.join("exe")) {
        Ok(p) => {
            let b = p.as_os_str().as_bytes();
            match b.strip_suffix(b" (deleted)") {
                Some(stripped) => (Some(stripped.to_vec()), true),
                None => (Some(b.to_vec()), false),
            }
        }
        Err(_) => (None, false),
    };
    Some(ProcEntry {
        tgid,
        ppid,
        start_ns: start_ticks.saturating_mul(1_000_000_000 / ticks.max(1)),
        comm,
        exe,
        exe_deleted,
        euid: status.as_deref().and_then(parse_status_euid),
        cmdline: std::fs::read(dir.join("cmdline")).ok(),
        sid: Some(sid),
        ns_init: tgid != 1 && status.as_deref().and_then(parse_status_nspid_last) == Some(1),
    })
}

/// Every process in `root` (normally `/proc`); processes that vanish while
/// being read are skipped.
pub fn snapshot(root: &Path) -> Vec<ProcEntry> {
    let ticks = clock_ticks();
    let Ok(dir) = std::fs::read_dir(root) else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::str::from_utf8(e.file_name().as_bytes()).ok().and_then(|n| n.parse::<u32>().ok()))
        .filter_map(|tgid| read_entry(root, tgid, ticks))
        .collect()
}

/// The cgroup path of a process from /proc/<pid>/cgroup: the cgroup v2
/// (`0::/path`) line; on a cgroup v1 host, which has none (or only `0::/`
/// in hybrid mode with the controllers on v1), the `name=systemd`
/// hierarchy's path, else the first controller's. The runtimes lay their
/// v1 paths out like their v2 ones (`/docker/<id>`, `/kubepods/...`,
/// `/system.slice/...`), so the workload parsing is the same.
pub fn cgroup_path(root: &Path, tgid: u32) -> Option<String> {
    let content = std::fs::read_to_string(root.join(tgid.to_string()).join("cgroup")).ok()?;
    parse_cgroup_file(&content)
}

fn parse_cgroup_file(content: &str) -> Option<String> {
    let mut v1_systemd = None;
    let mut v1_first = None;
    for line in content.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if id == "0" && controllers.is_empty() {
            if path != "/" {
                return Some(path.to_owned());
            }
        } else if controllers == "name=systemd" {
            v1_systemd.get_or_insert_with(|| path.to_owned());
        } else if !controllers.is_empty() {
            v1_first.get_or_insert_with(|| path.to_owned());
        }
    }
    // v2 at the root ("0::/") with no v1 hierarchy says "/" too.
    v1_systemd.or(v1_first).or_else(|| content.lines().any(|l| l == "0::/").then(|| "/".to_owned()))
}

/// Map every cgroup v2 directory under `root` (normally `/sys/fs/cgroup`)
/// from its id (the directory's inode number, which is what
/// `bpf_get_current_cgroup_id()` returns) to its path relative to `root`.
/// Bounded: at most `max` directories are visited.
pub fn cgroup_ids(root: &Path, max: usize) -> std::collections::HashMap<u64, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::HashMap::new();
    let mut stack = vec![(root.to_path_buf(), "/".to_owned())];
    while let Some((dir, rel)) = stack.pop() {
        if out.len() >= max {
            break;
        }
        let Ok(meta) = std::fs::metadata(&dir) else { continue };
        out.insert(meta.ino(), rel.clone());
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let name = e.file_name().to_string_lossy().into_owned();
                let child = if rel == "/" { format!("/{name}") } else { format!("{rel}/{name}") };
                stack.push((e.path(), child));
            }
        }
    }
    out
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup` on unified
/// hosts, `/sys/fs/cgroup/unified` on hybrid ones), from /proc/self/mounts.
pub fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_ascii_whitespace();
        let (_src, target, fstype) = (f.next()?, f.next()?, f.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(target.replace("\\040", " ")))
    })
}

/// Where procfs is mounted on the host (callers pass the root explicitly so
/// tests can point at a fixture tree).
pub fn default_root() -> PathBuf {
    PathBuf::from("/proc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_path_from_v2_v1_and_hybrid_files() {
        assert_eq!(parse_cgroup_file("0::/system.slice/a.service\n").as_deref(), Some("/system.slice/a.service"));
        assert_eq!(parse_cgroup_file("0::/\n").as_deref(), Some("/"));
        let v1 = "12:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc-unit\n";
        assert_eq!(parse_cgroup_file(v1).as_deref(), Some("/docker/abc-unit"), "name=systemd preferred on v1");
        assert_eq!(parse_cgroup_file("4:pids:/kubepods/burstable/podx/cid\n").as_deref(), Some("/kubepods/burstable/podx/cid"));
        let hybrid = "5:memory:/kubepods/pod1/c1\n1:name=systemd:/kubepods/pod1/c1\n0::/\n";
        assert_eq!(parse_cgroup_file(hybrid).as_deref(), Some("/kubepods/pod1/c1"), "hybrid: v2 at the root, v1 has the path");
        let hybrid_v2 = "1:name=systemd:/user.slice\n0::/system.slice/b.service\n";
        assert_eq!(parse_cgroup_file(hybrid_v2).as_deref(), Some("/system.slice/b.service"), "a real v2 path wins");
        assert_eq!(parse_cgroup_file("garbage\n"), None);
    }

    #[test]
    fn parses_stat_with_hostile_comm() {
        let stat = b"1234 (evil) 1 (x) S 99 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 5555 1000 100";
        let (comm, ppid, start, sid) = parse_stat(stat).expect("parses");
        assert_eq!(comm, b"evil) 1 (x");
        assert_eq!(ppid, 99);
        assert_eq!(start, 5555);
        assert_eq!(sid, 1234);
    }

    #[test]
    fn parses_status_uid() {
        assert_eq!(parse_status_euid("Name:\tx\nUid:\t1000\t0\t0\t0\n"), Some(0));
        assert_eq!(parse_status_euid("Name:\tx\n"), None);
        assert_eq!(parse_status_nspid_last("NSpid:\t4242\t1\n"), Some(1));
        assert_eq!(parse_status_nspid_last("NSpid:\t4242\n"), Some(4242));
    }

    #[test]
    fn cgroup_ids_resolve_this_process() {
        let Some(mine) = cgroup_path(&default_root(), std::process::id()) else { return };
        let root = cgroup2_root().expect("cgroup2 mounted");
        let ids = cgroup_ids(&root, 100_000);
        assert!(ids.values().any(|p| *p == mine), "{mine} not among {} cgroups", ids.len());
    }

    #[test]
    fn snapshot_sees_this_process() {
        let me = std::process::id();
        let all = snapshot(&default_root());
        let entry = all.iter().find(|e| e.tgid == me).expect("own process in /proc");
        assert!(entry.start_ns > 0);
        let exe = std::env::current_exe().expect("current exe");
        assert_eq!(entry.exe.as_deref(), Some(exe.as_os_str().as_bytes()));
    }
}
