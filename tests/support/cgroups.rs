//! cgroup v2 directories made by a test (privileged and end-to-end).

use std::path::{Path, PathBuf};

/// cgroups made for a test, removed (deepest first) when dropped.
#[derive(Debug)]
pub struct TestCgroups(Vec<PathBuf>);

impl TestCgroups {
    /// Create `rel` (and its parents) under the cgroup2 root.
    pub fn create(root: &Path, rel: &str) -> (TestCgroups, PathBuf) {
        let mut made = Vec::new();
        let mut dir = root.to_path_buf();
        for seg in rel.split('/') {
            dir.push(seg);
            if !dir.exists() {
                std::fs::create_dir(&dir).unwrap_or_else(|e| {
                    panic!("cannot create cgroup {}: {e} (the cgroup2 hierarchy must be writable by root here)", dir.display())
                });
                made.push(dir.clone());
            }
        }
        (TestCgroups(made), dir)
    }
}

impl Drop for TestCgroups {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            // An emptied cgroup may stay busy for a moment.
            for _ in 0..100 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}
