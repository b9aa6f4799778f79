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
