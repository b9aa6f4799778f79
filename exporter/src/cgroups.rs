//! cgroup id -> cgroup path, without stalling the pipeline.
//!
//! The probes report `bpf_get_current_cgroup_id()`, the inode number of the
//! task's directory in the cgroup v2 tree. The map stage looks ids up in a
//! shared table; a miss asks a background task to rescan the tree (in a
//! blocking thread, at most once a second) and falls back to
//! `/proc/<pid>/cgroup` for that one record, without caching it: by then the
//! pid may belong to another process, and a wrong path must not be stored
//! under the kernel's id.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// cgroup directories mapped at most.
pub const CGROUP_CACHE_MAX: usize = 65_536;

/// Shared id -> path table with a refresh request.
#[derive(Debug, Clone, Default)]
pub struct CgroupCache {
    /// Paths shared with each exec that resolves them (a reference count,
    /// not a copy, per exec).
    map: Arc<RwLock<crate::fasthash::FastMap<u64, Arc<str>>>>,
    /// Ids that missed since the last scan: one /proc fallback each, then
    /// unresolved until the rescan (keeps misses off the hot path).
    missed: Arc<RwLock<std::collections::HashSet<u64>>>,
    wanted: Arc<Notify>,
    root: Option<PathBuf>,
}

impl CgroupCache {
    /// A cache over the cgroup2 tree at `root` (`None`: ids are never
    /// resolved from the tree).
    pub fn new(root: Option<PathBuf>) -> Self {
        CgroupCache { root, ..CgroupCache::default() }
    }

    /// Rescan the tree now (blocking: call from a blocking thread).
    pub fn refresh_blocking(&self) {
        if let Some(root) = &self.root {
            let ids = crate::procfs::cgroup_ids(root, CGROUP_CACHE_MAX);
            if let Ok(mut map) = self.map.write() {
                *map = ids.into_iter().map(|(id, path)| (id, Arc::from(path))).collect();
            }
            if let Ok(mut missed) = self.missed.write() {
                missed.clear();
            }
        }
    }

    /// The path of `cgroup_id`; on a miss, request a rescan and fall back to
    /// `/proc/<tgid>/cgroup` under `proc_root` (not cached).
    pub fn lookup(&self, cgroup_id: u64, tgid: u32, proc_root: &Path) -> Option<Arc<str>> {
        if self.root.is_none() {
            // No cgroup2 tree (a cgroup v1 host): the kernel's cgroup id
            // names no directory and is the same for every process, so the
            // process's own /proc entry is read every time.
            return crate::procfs::cgroup_path(proc_root, tgid).map(Arc::from);
        }
        if let Some(p) = self.map.read().ok().and_then(|m| m.get(&cgroup_id).cloned()) {
            return Some(p);
        }
        if self.missed.read().is_ok_and(|m| m.contains(&cgroup_id)) {
            return None;
        }
        if let Ok(mut missed) = self.missed.write() {
            if missed.len() < CGROUP_CACHE_MAX {
                missed.insert(cgroup_id);
            }
        }
        if self.root.is_some() {
            self.wanted.notify_one();
        }
        crate::procfs::cgroup_path(proc_root, tgid).map(Arc::from)
    }

    /// Whether records' cgroup ids name cgroups (a cgroup2 tree is mounted):
    /// only then may anything be cached by cgroup id.
    pub fn ids_name_cgroups(&self) -> bool {
        self.root.is_some()
    }

    /// Serve rescan requests until the task is dropped: each request
    /// rescans once, then requests are ignored for `min_interval`.
    pub async fn refresher(self, min_interval: Duration) {
        loop {
            self.wanted.notified().await;
            let this = self.clone();
            if tokio::task::spawn_blocking(move || this.refresh_blocking()).await.is_err() {
                tracing::warn!("cgroup rescan failed");
            }
            tokio::time::sleep(min_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_cgroup2_tree_every_lookup_reads_the_process_own_entry() {
        let dir = std::env::temp_dir().join(format!("vigil-cg-v1-{}", std::process::id()));
        for (pid, path) in [(81, "/docker/aaa"), (82, "/kubepods/besteffort/podb/ccc")] {
            std::fs::create_dir_all(dir.join(format!("proc/{pid}"))).expect("proc");
            std::fs::write(dir.join(format!("proc/{pid}/cgroup")), format!("4:memory:{path}\n1:name=systemd:{path}\n0::/\n"))
                .expect("cgroup");
        }
        let cache = CgroupCache::new(None);
        assert!(!cache.ids_name_cgroups());
        // cgroup v1: one kernel id (the v2 root's) for every process.
        for _ in 0..2 {
            assert_eq!(cache.lookup(1, 81, &dir.join("proc")).as_deref(), Some("/docker/aaa"));
            assert_eq!(cache.lookup(1, 82, &dir.join("proc")).as_deref(), Some("/kubepods/besteffort/podb/ccc"));
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn resolves_from_the_tree_and_falls_back_without_caching() {
        let dir = std::env::temp_dir().join(format!("vigil-cg-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tree/system.slice/app.service")).expect("tree");
        std::fs::create_dir_all(dir.join("proc/77")).expect("proc");
        std::fs::write(dir.join("proc/77/cgroup"), "0::/from/proc\n").expect("cgroup file");
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(dir.join("tree/system.slice/app.service")).expect("meta"));
        let cache = CgroupCache::new(Some(dir.join("tree")));
        assert_eq!(cache.lookup(ino, 77, &dir.join("proc")).as_deref(), Some("/from/proc"), "miss before a scan: /proc fallback");
        assert_eq!(cache.lookup(ino, 77, &dir.join("proc")), None, "once per id until the rescan");
        cache.refresh_blocking();
        assert_eq!(cache.lookup(ino, 77, &dir.join("proc")).as_deref(), Some("/system.slice/app.service"));
        assert_eq!(cache.lookup(u64::MAX, 78, &dir.join("proc")), None, "unknown id and no /proc entry");
        assert!(cache.map.read().expect("lock").get(&u64::MAX).is_none(), "fallbacks are not cached");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
