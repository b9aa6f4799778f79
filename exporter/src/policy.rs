//! The drop policy (`[policy]`): the alert hook, and whether `fail_closed`
//! can be honoured on this kernel.
//!
//! Guarantees:
//! - the alert hook never blocks the pipeline: it runs on its own thread,
//!   at most one at a time and at most once per `alert_min_interval_s`;
//!   losses that arrive meanwhile are summed into the next run;
//! - `fail_closed` is only claimed when the kernel runs the BPF LSM; vigil
//!   refuses to start otherwise unless `policy.allow_degraded` is set.

use crate::config::{PolicyConfig, PolicyMode};
use crate::otel::telemetry::Loss;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Exit code when `fail_closed` cannot be honoured and degrading is not
/// allowed.
pub const EXIT_POLICY: u8 = 3;

/// Whether the running kernel has the BPF LSM active (`bpf` in
/// `/sys/kernel/security/lsm`). Needed, not sufficient: the kernel may
/// still refuse to load or attach an LSM program (this is checked by
/// loading it).
pub fn bpf_lsm_active() -> bool {
    std::fs::read_to_string("/sys/kernel/security/lsm").is_ok_and(|l| l.split(',').any(|x| x.trim() == "bpf"))
}

/// What start-up must do about `fail_closed`: `Ok(None)` nothing to say,
/// `Ok(Some(warning))` run degraded, `Err(message)` refuse to start.
pub fn fail_closed_gate(cfg: &PolicyConfig, lsm_active: bool) -> Result<Option<String>, String> {
    if cfg.mode != PolicyMode::FailClosed || lsm_active {
        return Ok(None);
    }
    let why = "policy.mode = \"fail_closed\" needs the BPF LSM (\"bpf\" in /sys/kernel/security/lsm, kernel booted with lsm=...,bpf), which this kernel does not run";
    if cfg.allow_degraded {
        Ok(Some(format!(
            "{why}: running DEGRADED as \"shed\" (policy.allow_degraded = true): critical records can be lost, operations are never denied"
        )))
    } else {
        Err(format!(
            "{why}; refusing to start. Set policy.allow_degraded = true to run without it (as \"shed\"), or choose another policy.mode"
        ))
    }
}

/// The `vigil check` line for the drop policy: `fail_closed` without the
/// BPF LSM fails the check unless degrading is allowed.
pub fn check_item(cfg: &PolicyConfig, lsm_active: bool) -> crate::probes::hooks::CheckItem {
    let (ok, detail) = match (cfg.mode, fail_closed_gate(cfg, lsm_active)) {
        (PolicyMode::FailClosed, Ok(None)) => {
            (true, "fail_closed: BPF LSM active; execs whose record can not be recorded are denied (if the LSM program loads)".to_owned())
        }
        (_, Ok(Some(warning))) => (true, format!("fail_closed unavailable: {warning}")),
        (_, Err(e)) => (false, format!("fail_closed unavailable: {e}")),
        (mode, Ok(None)) => (
            true,
            format!(
                "{}: losses are counted and reported (fail_closed needs the BPF LSM: {})",
                mode.as_str(),
                if lsm_active { "active" } else { "not active" }
            ),
        ),
    };
    crate::probes::hooks::CheckItem { name: "drop policy".into(), ok, required: true, detail }
}

/// Counters of the alert hook.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// Hook runs started.
    pub runs: AtomicU64,
    /// Hook runs that failed (command exit status, webhook error).
    pub failures: AtomicU64,
}

/// Runs the alert command and webhook on loss, rate limited, off the
/// pipeline's threads.
#[derive(Debug)]
pub struct AlertHook {
    command: Vec<String>,
    webhook: String,
    min_interval: Duration,
    host: String,
    last: Option<Instant>,
    pending: u64,
    pending_summary: Vec<String>,
    running: Arc<AtomicBool>,
    /// Runs and failures.
    pub stats: Arc<AlertStats>,
}

impl AlertHook {
    /// A hook for `cfg` (`None` unless the mode is `alert` with a command or
    /// a webhook). `host` names this host in the webhook body.
    pub fn new(cfg: &PolicyConfig, host: &str) -> Option<AlertHook> {
        if cfg.mode != PolicyMode::Alert || (cfg.alert_command.is_empty() && cfg.alert_webhook.is_empty()) {
            return None;
        }
        Some(AlertHook {
            command: cfg.alert_command.clone(),
            webhook: cfg.alert_webhook.clone(),
            min_interval: Duration::from_secs(cfg.alert_min_interval_s),
            host: host.to_owned(),
            last: None,
            pending: 0,
            pending_summary: Vec::new(),
            running: Arc::new(AtomicBool::new(false)),
            stats: Arc::new(AlertStats::default()),
        })
    }

    /// Account for one window's losses (possibly none) and run the hook if
    /// there is something to report and it may run now. Returns whether a
    /// run was started. Never waits.
    pub fn on_losses(&mut self, losses: &[Loss], now: Instant) -> bool {
        for l in losses {
            self.pending += l.count;
            if self.pending_summary.len() < 16 {
                self.pending_summary.push(format!(
                    "{} {} at {} ({})",
                    l.count,
                    l.event_name.unwrap_or("records"),
                    l.stage.as_str(),
                    l.error_type
                ));
            }
        }
        if self.pending == 0 || self.last.is_some_and(|t| now.duration_since(t) < self.min_interval) {
            return false;
        }
        if self.running.swap(true, Ordering::AcqRel) {
            return false; // the previous run is still going: report later
        }
        let count = std::mem::take(&mut self.pending);
        let summary = std::mem::take(&mut self.pending_summary).join("; ");
        self.last = Some(now);
        let (command, webhook, host) = (self.command.clone(), self.webhook.clone(), self.host.clone());
        let (running, stats) = (self.running.clone(), self.stats.clone());
        stats.runs.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new().name("vigil-alert".into()).spawn(move || {
            let mut ok = true;
            if let Some((prog, args)) = command.split_first() {
                match std::process::Command::new(prog)
                    .args(args)
                    .env("VIGIL_LOSS_COUNT", count.to_string())
                    .env("VIGIL_LOSS_SUMMARY", &summary)
                    .stdin(std::process::Stdio::null())
                    .status()
                {
                    Ok(s) if s.success() => {}
                    Ok(s) => {
                        tracing::warn!("policy.alert_command exited with {s}");
                        ok = false;
                    }
                    Err(e) => {
                        tracing::warn!("policy.alert_command could not run: {e}");
                        ok = false;
                    }
                }
            }
            if !webhook.is_empty() {
                let body = serde_json::json!({ "host": host, "policy": "alert", "lost": count, "summary": summary }).to_string();
                if let Err(e) = post_json(&webhook, &body, Duration::from_secs(5)) {
                    tracing::warn!("policy.alert_webhook {webhook}: {e}");
                    ok = false;
                }
            }
            if !ok {
                stats.failures.fetch_add(1, Ordering::Relaxed);
            }
            running.store(false, Ordering::Release);
        });
        if spawned.is_err() {
            self.running.store(false, Ordering::Release);
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
        }
        true
    }
}

/// POST `body` as JSON to an `http://host[:port][/path]` URL (HTTP/1.1,
/// one connection), succeeding on a 2xx answer.
fn post_json(url: &str, body: &str, timeout: Duration) -> Result<(), String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("HTTP://")).ok_or("not an http:// URL")?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let addr = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
    let sock = std::net::ToSocketAddrs::to_socket_addrs(&addr).map_err(|e| e.to_string())?.next().ok_or("no address")?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut head = [0u8; 32];
    let n = s.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    match line.split_ascii_whitespace().nth(1) {
        Some(code) if code.starts_with('2') => Ok(()),
        Some(code) => Err(format!("answered HTTP {code}")),
        None => Err("no HTTP answer".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otel::telemetry::LossStage;

    fn loss(count: u64) -> Loss {
        Loss {
            stage: LossStage::Kernel,
            error_type: "ringbuf_full",
            count,
            total: count,
            event_name: Some("vigil.file.open"),
            lane: Some("bulk"),
            stream: None,
            seq_range: None,
            window: (0, 1),
        }
    }

    fn wait_idle(h: &AlertHook) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while h.running.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "alert hook still running");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn check_says_fail_closed_is_unavailable_plainly() {
        let fc = PolicyConfig { mode: PolicyMode::FailClosed, ..PolicyConfig::default() };
        let item = check_item(&fc, false);
        assert!(!item.ok && item.required, "fails the check: vigil would refuse to start");
        assert!(item.detail.starts_with("fail_closed unavailable"), "{}", item.detail);
        let degraded = check_item(&PolicyConfig { allow_degraded: true, ..fc.clone() }, false);
        assert!(degraded.ok && degraded.detail.contains("DEGRADED"), "{}", degraded.detail);
        assert!(check_item(&fc, true).ok);
        assert!(check_item(&PolicyConfig::default(), false).ok);
    }

    #[test]
    fn fail_closed_without_bpf_lsm_refuses_unless_degraded() {
        let mut cfg = PolicyConfig { mode: PolicyMode::FailClosed, ..PolicyConfig::default() };
        let refused = fail_closed_gate(&cfg, false).expect_err("no BPF LSM: refuse");
        assert!(refused.contains("fail_closed") && refused.contains("allow_degraded"), "{refused}");
        assert_eq!(fail_closed_gate(&cfg, true), Ok(None), "with the BPF LSM: nothing to say");
        cfg.allow_degraded = true;
        assert!(fail_closed_gate(&cfg, false).expect("degraded").expect("a warning").contains("DEGRADED"));
        assert_eq!(fail_closed_gate(&PolicyConfig::default(), false), Ok(None), "shed needs nothing");
    }

    #[test]
    fn the_command_runs_off_thread_rate_limited_with_the_loss_in_its_environment() {
        let dir = std::env::temp_dir().join(format!("vigil-alert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let out = dir.join("alert.txt");
        let script = format!("echo \"$VIGIL_LOSS_COUNT|$VIGIL_LOSS_SUMMARY\" >> '{}'", out.display());
        let cfg = PolicyConfig {
            mode: PolicyMode::Alert,
            alert_command: vec!["/bin/sh".into(), "-c".into(), script],
            alert_min_interval_s: 3600,
            ..PolicyConfig::default()
        };
        assert!(AlertHook::new(&PolicyConfig { mode: PolicyMode::Shed, ..cfg.clone() }, "h").is_none(), "only in alert mode");
        let mut h = AlertHook::new(&cfg, "h").expect("hook");
        let t0 = Instant::now();
        assert!(!h.on_losses(&[], t0), "nothing lost: nothing to run");
        assert!(h.on_losses(&[loss(5), loss(2)], t0));
        wait_idle(&h);
        assert!(!h.on_losses(&[loss(4)], t0 + Duration::from_secs(1)), "rate limited");
        assert_eq!(
            std::fs::read_to_string(&out).expect("the command wrote"),
            "7|5 vigil.file.open at kernel (ringbuf_full); 2 vigil.file.open at kernel (ringbuf_full)\n"
        );
        assert!(h.on_losses(&[], t0 + Duration::from_secs(3601)), "the held-back loss is reported once allowed");
        wait_idle(&h);
        let lines: Vec<String> = std::fs::read_to_string(&out).expect("read").lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("4|"), "{lines:?}");
        assert_eq!(h.stats.runs.load(Ordering::Relaxed), 2);
        assert_eq!(h.stats.failures.load(Ordering::Relaxed), 0);
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn the_webhook_gets_a_json_post() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().expect("accept");
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            while !String::from_utf8_lossy(&got).contains("}") {
                let n = c.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            c.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n").expect("answer");
            String::from_utf8(got).expect("utf-8")
        });
        let cfg =
            PolicyConfig { mode: PolicyMode::Alert, alert_webhook: format!("http://127.0.0.1:{port}/hook"), ..PolicyConfig::default() };
        let mut h = AlertHook::new(&cfg, "node-1").expect("hook");
        assert!(h.on_losses(&[loss(3)], Instant::now()));
        let req = server.join().expect("server");
        wait_idle(&h);
        assert!(req.starts_with("POST /hook HTTP/1.1\r\n"), "{req}");
        let body = &req[req.find("\r\n\r\n").expect("body") + 4..];
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!((v["host"].as_str(), v["lost"].as_u64(), v["policy"].as_str()), (Some("node-1"), Some(3), Some("alert")));
        assert_eq!(h.stats.failures.load(Ordering::Relaxed), 0);
    }
}
