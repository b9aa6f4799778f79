//! uid/gid -> user and group names, from the host's /etc/passwd and
//! /etc/group.
//!
//! Each file is parsed once and cached; its mtime is checked at most once a
//! second and the file re-read when it changed, so users added after start
//! resolve. An id without an entry resolves to nothing (no placeholder).

use crate::fasthash::FastMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// How often a file's mtime is checked (ns of
/// [`coarse_now_ns`](crate::clock::coarse_now_ns)).
const RECHECK_NS: u64 = 1_000_000_000;

/// One `name:x:id:...` file.
#[derive(Debug)]
struct IdFile {
    path: PathBuf,
    /// Shared, so that each exec record takes a reference, not a copy.
    names: FastMap<u32, Arc<str>>,
    /// mtime (and size) of the version loaded; `None`: not loaded.
    loaded: Option<(SystemTime, u64)>,
    /// When the mtime was last checked (coarse monotonic ns).
    checked: Option<u64>,
}

impl IdFile {
    fn new(path: PathBuf) -> Self {
        IdFile { path, names: FastMap::default(), loaded: None, checked: None }
    }

    fn refresh(&mut self, now: u64) {
        if self.checked.is_some_and(|t| now.saturating_sub(t) < RECHECK_NS) {
            return;
        }
        self.checked = Some(now);
        let stamp = std::fs::metadata(&self.path).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        if stamp.is_some() && stamp == self.loaded {
            return;
        }
        self.names = std::fs::read(&self.path).map(|b| parse(&String::from_utf8_lossy(&b))).unwrap_or_default();
        self.loaded = stamp;
    }

    fn name(&mut self, id: u32, now: u64) -> Option<&Arc<str>> {
        self.refresh(now);
        self.names.get(&id)
    }
}

/// `name:password:id:...` lines -> id -> name (the first entry of an id
/// wins, as with getpwuid).
fn parse(text: &str) -> FastMap<u32, Arc<str>> {
    let mut out = FastMap::default();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut f = line.split(':');
        let (Some(name), Some(_), Some(id)) = (f.next(), f.next(), f.next()) else { continue };
        let Ok(id) = id.trim().parse::<u32>() else { continue };
        if !name.is_empty() {
            out.entry(id).or_insert_with(|| Arc::from(name));
        }
    }
    out
}

/// (user name of the effective uid, of the real uid, group name of the
/// effective gid) of an exec.
pub type ExecNames = (Option<Arc<str>>, Option<Arc<str>>, Option<Arc<str>>);

/// User and group names.
#[derive(Debug)]
pub struct UserNames {
    passwd: IdFile,
    group: IdFile,
}

impl Default for UserNames {
    fn default() -> Self {
        UserNames::new("/etc/passwd".into(), "/etc/group".into())
    }
}

impl UserNames {
    /// Names from these files.
    pub fn new(passwd: PathBuf, group: PathBuf) -> Self {
        UserNames { passwd: IdFile::new(passwd), group: IdFile::new(group) }
    }

    /// The user name of `uid`, if it has one.
    pub fn user(&mut self, uid: u32) -> Option<String> {
        self.user_at(uid, crate::clock::coarse_now_ns())
    }

    /// The group name of `gid`, if it has one.
    pub fn group(&mut self, gid: u32) -> Option<String> {
        self.group.name(gid, crate::clock::coarse_now_ns()).map(|n| n.to_string())
    }

    fn user_at(&mut self, uid: u32, now: u64) -> Option<String> {
        self.passwd.name(uid, now).map(|n| n.to_string())
    }

    /// (user name of `euid`, user name of `uid`, group name of `egid`),
    /// with one clock read for all three (this runs for every exec).
    /// The names are shared with the cache (a reference count each, no
    /// copy).
    pub fn exec_names(&mut self, euid: u32, uid: u32, egid: u32) -> ExecNames {
        let now = crate::clock::coarse_now_ns();
        let user = self.passwd.name(euid, now).cloned();
        let real = if uid == euid { user.clone() } else { self.passwd.name(uid, now).cloned() };
        (user, real, self.group.name(egid, now).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-users-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("tmpdir");
        d
    }

    #[test]
    fn parses_and_skips_junk() {
        let m =
            parse("root:x:0:0:root:/root:/bin/bash\n# comment\nbad line\nnobody:x:65534:65534::/:/sbin/nologin\ndup:x:0:0::/:\n:x:5:5::\n");
        assert_eq!(m.get(&0).map(|n| &**n), Some("root"));
        assert_eq!(m.get(&65534).map(|n| &**n), Some("nobody"));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_user_added_after_start_resolves() {
        let d = tmpdir("added");
        let (passwd, group) = (d.join("passwd"), d.join("group"));
        std::fs::write(&passwd, "root:x:0:0:root:/root:/bin/sh\n").expect("write");
        std::fs::write(&group, "root:x:0:\nwheel:x:10:alice\n").expect("write");
        let mut names = UserNames::new(passwd.clone(), group);
        let t0 = crate::clock::coarse_now_ns();
        assert_eq!(names.user_at(0, t0).as_deref(), Some("root"));
        assert_eq!(names.user_at(1001, t0), None, "unknown uid: absent, no placeholder");
        assert_eq!(names.group(10).as_deref(), Some("wheel"));

        let mut f = std::fs::OpenOptions::new().append(true).open(&passwd).expect("open");
        writeln!(f, "alice:x:1001:1001::/home/alice:/bin/sh").expect("append");
        drop(f);
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(&passwd).expect("open").set_modified(later).expect("bump mtime");

        // Within the recheck interval the cached version answers.
        assert_eq!(names.user_at(1001, t0 + 100_000_000), None);
        assert_eq!(names.user_at(1001, t0 + 2_000_000_000).as_deref(), Some("alice"));
        assert_eq!(names.user_at(0, t0 + 2_000_000_000).as_deref(), Some("root"));
        std::fs::remove_dir_all(d).expect("cleanup");
    }

    #[test]
    fn missing_files_resolve_nothing() {
        let d = tmpdir("missing");
        let mut names = UserNames::new(d.join("nope"), d.join("nope2"));
        assert_eq!(names.user(0), None);
        assert_eq!(names.group(0), None);
        std::fs::remove_dir_all(d).expect("cleanup");
    }
}
