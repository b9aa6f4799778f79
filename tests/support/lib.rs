//! Shared helpers for vigil's integration tests.
//!
//! - `golden`: raw record bytes in, OTLP out; no root needed.
//! - `privileged`: load the real probes into this kernel, trigger real
//!   actions, assert exact fields. Marked `#[ignore]` so a plain
//!   `cargo test` lists them as ignored (never as passed) without root;
//!   `ci/test.sh` runs them with `--ignored` as root.
//! - `e2e`: the vigil binary exporting through a real rotel collector.
#![allow(clippy::unwrap_used)]

pub mod attrs;
pub mod capture;
pub mod cgroups;
pub mod schema;

/// Panic with a clear message unless running as root: a privileged test
/// that cannot load probes must fail loudly, never pass.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test loads eBPF programs and needs root; run ci/test.sh as root");
}

/// The workspace root.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}
pub mod collector;

/// The `vigil` binary in the workspace's target directory
/// (`$CARGO_TARGET_DIR` if set). `ci/test.sh` builds it before the tests.
pub fn vigil_binary() -> std::path::PathBuf {
    let root = workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    let bin = target.join("debug").join("vigil");
    assert!(bin.is_file(), "{} not found: run `cargo build -p vigil` first (ci/test.sh does)", bin.display());
    bin
}

/// A `vigil` command whose span state file and spool directory are private
/// to this invocation (never the system's /var/lib/vigil), so tests cannot
/// close each other's or a real agent's spans or replay each other's
/// records (a test that restarts vigil on the same spool sets
/// `VIGIL_SPOOL__PATH` itself).
pub fn vigil_command() -> std::process::Command {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let state = std::env::temp_dir().join(format!("vigil-test-spans-{}-{n}.json", std::process::id()));
    let spool = std::env::temp_dir().join(format!("vigil-test-spool-{}-{n}", std::process::id()));
    let mut cmd = std::process::Command::new(vigil_binary());
    cmd.env("VIGIL_SPANS__STATE_PATH", state);
    // Nor the system's spool: a test's undelivered records must not be
    // replayed into another test's collector.
    cmd.env("VIGIL_SPOOL__PATH", spool);
    cmd
}
