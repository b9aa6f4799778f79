//! The hook table (which program serves which event) and `vigil check`.
//!
//! Every event has one entry here. Preferred hooks come first; start-up and
//! `vigil check` report which one is in use. This build has one hook per
//! event: BTF raw tracepoints (`tp_btf`), which see the kernel's own objects
//! (task, binprm) after the kernel has used them. Whether BPF-LSM is active
//! is reported so operators know what the kernel would allow; fentry and
//! LSM programs are not part of this build.

use super::{open_and_load, program, ProbeSettings};
use crate::abi::EventType;
use std::fmt::Write as _;

/// One event's hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hook {
    /// The event it produces.
    pub event: EventType,
    /// BPF program name in the object.
    pub program: &'static str,
    /// Section / attach point.
    pub attach_point: &'static str,
}

/// The hook table.
pub const HOOKS: &[Hook] = &[
    Hook { event: EventType::Exec, program: "handle_exec", attach_point: "tp_btf/sched_process_exec" },
    Hook { event: EventType::Fork, program: "handle_fork", attach_point: "tp_btf/sched_process_fork" },
    Hook { event: EventType::Exit, program: "handle_exit", attach_point: "tp_btf/sched_process_exit" },
];

/// One line of the `vigil check` report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    /// What was checked.
    pub name: String,
    /// Whether it is fine.
    pub ok: bool,
    /// Whether vigil can run without it.
    pub required: bool,
    /// Details.
    pub detail: String,
}

/// Effective capabilities of this process (from /proc/self/status).
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    u64::from_str_radix(hex, 16).ok()
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Run every check. Loading is tried for real (and undone).
pub fn check(settings: &ProbeSettings) -> Vec<CheckItem> {
    let mut items = Vec::new();
    let mut item =
        |name: &str, ok: bool, required: bool, detail: String| items.push(CheckItem { name: name.to_owned(), ok, required, detail });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default();
    item("kernel", !kernel.is_empty(), false, format!("Linux {kernel}"));
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    item(
        "kernel BTF",
        btf,
        true,
        if btf {
            "/sys/kernel/btf/vmlinux present (CO-RE, tp_btf)".into()
        } else {
            "missing: a kernel built with CONFIG_DEBUG_INFO_BTF=y is required".into()
        },
    );
    let caps = effective_caps().unwrap_or(0);
    let has = |c: u32| caps & (1u64 << c) != 0;
    let caps_ok = has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
    item("capabilities", caps_ok, true, format!("CapEff={caps:#x}: needs CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN); CAP_SYS_RESOURCE is not needed (BPF memory is charged to the memory cgroup on kernels >= 5.11)"));
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    let bpf_lsm = lsm.split(',').any(|l| l.trim() == "bpf");
    item(
        "BPF LSM",
        bpf_lsm,
        false,
        format!("active LSMs: {}; not used by this build", if lsm.trim().is_empty() { "unreadable" } else { lsm.trim() }),
    );
    match open_and_load(settings) {
        Ok(mut skel) => {
            item("load programs", true, true, "verifier accepted every program; ring buffer and maps created".into());
            for hook in HOOKS {
                match program(&mut skel, hook.event).attach() {
                    Ok(link) => {
                        drop(link);
                        item(&format!("hook {}", hook.event.event_name()), true, true, format!("{} ({})", hook.attach_point, hook.program));
                    }
                    Err(e) => item(&format!("hook {}", hook.event.event_name()), false, true, format!("{}: {e:#}", hook.attach_point)),
                }
            }
        }
        Err(e) => item("load programs", false, true, e.to_string()),
    }
    items
}

/// Render the report; the bool says whether vigil can run.
pub fn render(items: &[CheckItem]) -> (String, bool) {
    let mut out = String::new();
    let mut can_run = true;
    for i in items {
        let mark = match (i.ok, i.required) {
            (true, _) => "ok  ",
            (false, true) => "FAIL",
            (false, false) => "no  ",
        };
        can_run &= i.ok || !i.required;
        let _ = writeln!(out, "[{mark}] {:<28} {}", i.name, i.detail);
    }
    let _ = writeln!(out, "{}", if can_run { "vigil can run on this host" } else { "vigil cannot run on this host" });
    (out, can_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_exactly_one_hook() {
        for t in EventType::ALL {
            assert_eq!(HOOKS.iter().filter(|h| h.event == t).count(), 1, "{t:?}");
        }
    }

    #[test]
    fn render_fails_only_on_required_items() {
        let mk = |ok, required| CheckItem { name: "x".into(), ok, required, detail: String::new() };
        assert!(render(&[mk(true, true), mk(false, false)]).1);
        assert!(!render(&[mk(true, true), mk(false, true)]).1);
    }
}
