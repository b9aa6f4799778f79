//! The `vigil` command line without root: configuration errors stop it with
//! exit code 2 and a message naming the key, before anything is loaded.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn vigil(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(vigil_tests::vigil_binary());
    cmd.args(args).env_clear().env("PATH", "/usr/bin:/bin");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn assert_config_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit code; stderr: {stderr}");
    assert!(stderr.contains(needle), "stderr does not name {needle}: {stderr}");
    assert!(!stderr.contains("probes attached"), "nothing may be loaded on a configuration error: {stderr}");
    assert!(out.stdout.is_empty(), "no records on a configuration error");
}

#[test]
fn bad_environment_value_names_the_key() {
    assert_config_error(&vigil(&[], &[("VIGIL_PROBES__RINGBUF_KIB", "1000")]), "probes.ringbuf_kib");
    assert_config_error(&vigil(&["check"], &[("VIGIL_EXPORT__BATCH_MAX_RECORDS", "0")]), "export.batch_max_records");
}

#[test]
fn unknown_key_in_file_is_named() {
    let dir = std::env::temp_dir().join(format!("vigil-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(&f, "[probes]\nring_buffer_kib = 64\n").unwrap();
    assert_config_error(&vigil(&["--config", f.to_str().unwrap()], &[]), "ring_buffer_kib");
    assert_config_error(&vigil(&[], &[("VIGIL_CONFIG", "/nonexistent/vigil.toml")]), "/nonexistent/vigil.toml");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_otel_variables_and_flags_are_refused() {
    assert_config_error(&vigil(&[], &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]), "OTEL_EXPORTER_OTLP_PROTOCOL");
    assert_config_error(&vigil(&["--endpoint", "ftp://collector:4317"], &[]), "export.endpoint");
    assert_config_error(&vigil(&["--args-max-bytes", "999999"], &[]), "probes.args_max_bytes");
    // clap's own usage errors use the same exit code.
    assert_config_error(&vigil(&["--protocol", "carrier-pigeon"], &[]), "carrier-pigeon");
}

#[test]
fn example_configuration_is_accepted() {
    let example = vigil_tests::workspace_root().join("vigil.example.toml");
    // `check` with a valid configuration gets past configuration; as non-root
    // it then fails to load (exit 1), as root it succeeds (exit 0): never 2.
    let out = vigil(&["check", "--config", example.to_str().unwrap()], &[]);
    assert_ne!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hook vigil.process.exec"));
}

#[test]
fn fail_closed_without_bpf_lsm_refuses_to_start_unless_degraded() {
    if vigil::policy::bpf_lsm_active() {
        eprintln!("SKIPPED: this kernel runs the BPF LSM, so fail_closed is available here");
        return;
    }
    let out = vigil(&[], &[("VIGIL_POLICY__MODE", "fail_closed")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(i32::from(vigil::policy::EXIT_POLICY)), "{stderr}");
    assert!(stderr.contains("fail_closed") && stderr.contains("BPF LSM") && stderr.contains("allow_degraded"), "{stderr}");
    assert!(!stderr.contains("probes attached"), "refused before loading anything: {stderr}");
    // `vigil check` says so plainly.
    let out = vigil(&["check"], &[("VIGIL_POLICY__MODE", "fail_closed")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("[FAIL] drop policy") && stdout.contains("fail_closed unavailable"), "{stdout}");
    let out = vigil(&["check"], &[("VIGIL_POLICY__MODE", "fail_closed"), ("VIGIL_POLICY__ALLOW_DEGRADED", "true")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("[ok  ] drop policy") && stdout.contains("DEGRADED"), "{stdout}");
}
