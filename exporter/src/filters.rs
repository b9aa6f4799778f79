//! In-kernel exclusion filters: configuration -> BPF maps, and the names of
//! the reasons a record was excluded.
//!
//! The probes apply the filters in `vigil_emit()` (kernel-probes/include/
//! filter.bpf.h) before a record is numbered, so an excluded record leaves
//! no sequence gap and is not a loss; it is counted per event type and
//! reason (`filter_counters`), and heartbeats report the counts
//! (`vigil.heartbeat.excluded.<reason>`). Which filters are configured is a
//! `.rodata` flag word, so with none configured the verifier removes the
//! filter code altogether.

use crate::config::{FiltersConfig, FILTER_IDS_MAX, FILTER_PREFIXES_MAX, FILTER_PREFIX_LEN_MAX};
use libbpf_rs::{MapCore, MapFlags};
use std::path::Path;

/// `enum vigil_filter_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FilterReason {
    /// `VIGIL_FILTER_CGROUP`: the task's cgroup or an ancestor is excluded.
    Cgroup = 0,
    /// `VIGIL_FILTER_UID`: the task's real uid is excluded.
    Uid = 1,
    /// `VIGIL_FILTER_EXE`: the process runs an excluded executable.
    Exe = 2,
    /// `VIGIL_FILTER_FILE`: the file record's path has an excluded prefix.
    File = 3,
}

/// `VIGIL_FILTER_MAX`.
pub const FILTER_MAX: usize = 4;

impl FilterReason {
    /// Every reason, in id order.
    pub const ALL: [FilterReason; FILTER_MAX] = [FilterReason::Cgroup, FilterReason::Uid, FilterReason::Exe, FilterReason::File];

    /// The name used in heartbeat keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterReason::Cgroup => "cgroup",
            FilterReason::Uid => "uid",
            FilterReason::Exe => "exe",
            FilterReason::File => "file",
        }
    }
}

/// Size of `struct vigil_filter_prefix`: `u32 len` + the bytes.
pub const PREFIX_ENTRY_SIZE: usize = 4 + FILTER_PREFIX_LEN_MAX;

/// A filter that could not be set up (names the configuration key).
#[derive(Debug, thiserror::Error)]
#[error("configuration key `{key}`: {message}")]
pub struct FilterError {
    /// The key at fault.
    pub key: &'static str,
    /// What went wrong.
    pub message: String,
}

fn err(key: &'static str, message: impl Into<String>) -> FilterError {
    FilterError { key, message: message.into() }
}

/// The cgroup v2 id of one `filters.exclude_cgroups` entry: a number is an
/// id; a path is relative to `root` (the cgroup2 mount) or absolute under
/// it, and its directory's inode number is the id.
pub fn resolve_cgroup(entry: &str, root: Option<&Path>) -> Result<u64, FilterError> {
    let key = "filters.exclude_cgroups";
    let entry = entry.trim();
    if let Ok(id) = entry.parse::<u64>() {
        return Ok(id);
    }
    let root = root.ok_or_else(|| err(key, format!("{entry:?}: no cgroup2 hierarchy is mounted to resolve it in")))?;
    let path = Path::new(entry);
    let dir = if path.is_absolute() && path.starts_with(root) { path.to_path_buf() } else { root.join(entry.trim_start_matches('/')) };
    let meta = std::fs::metadata(&dir).map_err(|e| err(key, format!("{entry:?}: {}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(err(key, format!("{entry:?}: {} is not a cgroup directory", dir.display())));
    }
    Ok(std::os::unix::fs::MetadataExt::ino(&meta))
}

/// The `filter_flags` word: bit `1 << reason` for every configured filter.
pub fn flags(cfg: &FiltersConfig) -> u32 {
    let mut f = 0;
    let mut set = |on: bool, r: FilterReason| {
        if on {
            f |= 1 << r as u32;
        }
    };
    set(!cfg.exclude_cgroups.is_empty(), FilterReason::Cgroup);
    set(!cfg.exclude_uids.is_empty(), FilterReason::Uid);
    set(!cfg.exclude_exe_prefixes.is_empty(), FilterReason::Exe);
    set(!cfg.exclude_file_prefixes.is_empty(), FilterReason::File);
    f
}

/// One `struct vigil_filter_prefix` value.
pub fn prefix_entry(prefix: &str) -> [u8; PREFIX_ENTRY_SIZE] {
    let mut v = [0u8; PREFIX_ENTRY_SIZE];
    let b = &prefix.as_bytes()[..prefix.len().min(FILTER_PREFIX_LEN_MAX)];
    v[..4].copy_from_slice(&(b.len() as u32).to_ne_bytes());
    v[4..4 + b.len()].copy_from_slice(b);
    v
}

/// The filter maps of the loaded object.
#[derive(Clone, Copy)]
pub struct FilterMaps<'a> {
    /// `filter_cgroups`: cgroup id -> 1.
    pub cgroups: &'a dyn MapCore,
    /// `filter_uids`: uid -> 1.
    pub uids: &'a dyn MapCore,
    /// `filter_prefixes`: exe prefixes, then file prefixes.
    pub prefixes: &'a dyn MapCore,
    /// `excluded_tgids`: processes running an excluded executable.
    pub tgids: &'a dyn MapCore,
}

impl std::fmt::Debug for FilterMaps<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FilterMaps")
    }
}

fn update(map: &dyn MapCore, key: &[u8], value: &[u8], what: &'static str) -> Result<(), FilterError> {
    map.update(key, value, MapFlags::ANY).map_err(|e| err(what, format!("writing the kernel's filter map: {e:#}")))
}

/// Write the configuration into the maps, and mark the running processes
/// whose executable (`<proc_root>/<pid>/exe`) starts with an excluded
/// prefix. Returns the number of processes so marked.
pub fn populate(maps: FilterMaps<'_>, cfg: &FiltersConfig, cgroup_root: Option<&Path>, proc_root: &Path) -> Result<usize, FilterError> {
    for entry in cfg.exclude_cgroups.iter().take(FILTER_IDS_MAX) {
        let id = resolve_cgroup(entry, cgroup_root)?;
        update(maps.cgroups, &id.to_ne_bytes(), &[1], "filters.exclude_cgroups")?;
    }
    for uid in cfg.exclude_uids.iter().take(FILTER_IDS_MAX) {
        update(maps.uids, &uid.to_ne_bytes(), &[1], "filters.exclude_uids")?;
    }
    let lists: [(&'static str, &Vec<String>, u32); 2] = [
        ("filters.exclude_exe_prefixes", &cfg.exclude_exe_prefixes, 0),
        ("filters.exclude_file_prefixes", &cfg.exclude_file_prefixes, FILTER_PREFIXES_MAX as u32),
    ];
    for (key, list, first) in lists {
        for (i, p) in list.iter().take(FILTER_PREFIXES_MAX).enumerate() {
            update(maps.prefixes, &(first + i as u32).to_ne_bytes(), &prefix_entry(p), key)?;
        }
    }
    let mut marked = 0;
    if !cfg.exclude_exe_prefixes.is_empty() {
        for tgid in excluded_running(&cfg.exclude_exe_prefixes, proc_root) {
            update(maps.tgids, &tgid.to_ne_bytes(), &[1], "filters.exclude_exe_prefixes")?;
            marked += 1;
        }
    }
    Ok(marked)
}

/// Processes under `proc_root` whose executable starts with a prefix.
fn excluded_running(prefixes: &[String], proc_root: &Path) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir(proc_root) else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read_link(proc_root.join(pid.to_string()).join("exe"))
                .is_ok_and(|exe| prefixes.iter().any(|p| exe.as_os_str().as_encoded_bytes().starts_with(p.as_bytes())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_resolve_from_ids_and_paths() {
        assert_eq!(resolve_cgroup("12345", None).expect("an id needs no tree"), 12345);
        let root = std::env::temp_dir().join(format!("vigil-filter-cg-{}", std::process::id()));
        std::fs::create_dir_all(root.join("a/b")).expect("dirs");
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(root.join("a/b")).expect("meta"));
        assert_eq!(resolve_cgroup("a/b", Some(&root)).expect("relative"), ino);
        assert_eq!(resolve_cgroup("/a/b", Some(&root)).expect("slash-relative"), ino);
        assert_eq!(resolve_cgroup(root.join("a/b").to_str().expect("utf-8"), Some(&root)).expect("absolute"), ino);
        let e = resolve_cgroup("nope", Some(&root)).expect_err("missing");
        assert_eq!(e.key, "filters.exclude_cgroups");
        assert!(e.message.contains("nope"), "{e}");
        assert!(resolve_cgroup("x", None).is_err(), "a path without a cgroup2 mount");
        std::fs::remove_dir_all(root).expect("cleanup");
    }

    #[test]
    fn flags_name_the_configured_filters() {
        assert_eq!(flags(&FiltersConfig::default()), 0, "nothing configured: the kernel code is pruned");
        let cfg = FiltersConfig { exclude_uids: vec![7], exclude_file_prefixes: vec!["/tmp/".into()], ..FiltersConfig::default() };
        assert_eq!(flags(&cfg), 1 << FilterReason::Uid as u32 | 1 << FilterReason::File as u32);
    }

    #[test]
    fn prefix_entries_are_length_then_bytes() {
        let e = prefix_entry("/usr/");
        assert_eq!(u32::from_ne_bytes(e[..4].try_into().expect("4")), 5);
        assert_eq!(&e[4..9], b"/usr/");
        assert!(e[9..].iter().all(|b| *b == 0));
    }

    #[test]
    fn running_processes_are_marked_by_their_executable() {
        let root = std::env::temp_dir().join(format!("vigil-filter-proc-{}", std::process::id()));
        for (pid, exe) in [("10", "/opt/backup/bin/agent"), ("11", "/usr/bin/true"), ("self", "/opt/backup/x")] {
            std::fs::create_dir_all(root.join(pid)).expect("dir");
            std::os::unix::fs::symlink(exe, root.join(pid).join("exe")).expect("link");
        }
        assert_eq!(excluded_running(&["/opt/backup/".into()], &root), vec![10], "numeric entries only, by prefix");
        std::fs::remove_dir_all(root).expect("cleanup");
    }

    /// The C enum and struct match these constants.
    #[test]
    fn abi_matches_the_bpf_object_btf() {
        use libbpf_rs::btf::types::{Enum, Struct};
        use libbpf_rs::btf::{Btf, HasSize};
        let btf = Btf::from_path(crate::probes::PROCESS_OBJECT_PATH).expect("BTF of the compiled object");
        let e: Enum<'_> = btf.type_by_name("vigil_filter_reason").expect("enum vigil_filter_reason in BTF");
        let values: std::collections::BTreeMap<String, i64> =
            e.iter().map(|m| (m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), m.value)).collect();
        for r in FilterReason::ALL {
            assert_eq!(values.get(&format!("VIGIL_FILTER_{}", r.as_str().to_ascii_uppercase())), Some(&(r as i64)));
        }
        assert_eq!(values.get("VIGIL_FILTER_MAX"), Some(&(FILTER_MAX as i64)));
        assert_eq!(values.get("VIGIL_FILTER_PREFIXES"), Some(&(FILTER_PREFIXES_MAX as i64)));
        assert_eq!(values.get("VIGIL_FILTER_PREFIX_LEN"), Some(&(FILTER_PREFIX_LEN_MAX as i64)));
        assert_eq!(values.get("VIGIL_FILTER_IDS_MAX"), Some(&(FILTER_IDS_MAX as i64)));
        let s: Struct<'_> = btf.type_by_name("vigil_filter_prefix").expect("struct vigil_filter_prefix in BTF");
        assert_eq!(s.size(), PREFIX_ENTRY_SIZE, "struct vigil_filter_prefix size");
    }
}
