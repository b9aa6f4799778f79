//! The OTLP Resource: where the events happened and who reported them.

use super::{attr, kv_int, kv_str, kv_str_array};
use crate::host::HostInfo;
use opentelemetry_proto::tonic::resource::v1::Resource;

/// vigil's own version, as `service.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Build the host Resource. `hooks` lists the active hooks as
/// `event=hook` (e.g. `vigil.process.exec=tp_btf/sched_process_exec`).
/// Host facts that could not be read are left out (absent), not invented.
pub fn host_resource(host: &HostInfo, instance_id: &str, hooks: &[String]) -> Resource {
    let mut attributes = vec![
        kv_str(attr::SERVICE_NAME, "vigil"),
        kv_str(attr::SERVICE_VERSION, VERSION),
        kv_str(attr::SERVICE_INSTANCE_ID, instance_id),
        kv_str(attr::HOST_ARCH, host.host_arch.clone()),
        kv_str(attr::OS_TYPE, "linux"),
    ];
    let optional = [
        (attr::HOST_ID, &host.host_id),
        (attr::HOST_NAME, &host.host_name),
        (attr::OS_NAME, &host.os_name),
        (attr::OS_VERSION, &host.os_version),
        (attr::OS_DESCRIPTION, &host.os_description),
        (attr::VIGIL_HOST_BOOT_ID, &host.boot_id),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            attributes.push(kv_str(key, v.clone()));
        }
    }
    attributes.push(kv_str_array(attr::VIGIL_HOOKS_ACTIVE, hooks.iter().cloned()));
    attributes.push(kv_int(attr::VIGIL_ABI_VERSION, i64::from(crate::abi::ABI_VERSION)));
    Resource { attributes, ..Resource::default() }
}

/// Add the running configuration (the start-up summary) to the resource,
/// so a backend sees the limits and policy the data was captured under.
pub fn add_config(resource: &mut Resource, cfg: &crate::config::Config, exporter_target: &str) {
    let p = &cfg.probes;
    resource.attributes.extend([
        kv_int(attr::VIGIL_CONFIG_RINGBUF_KIB, i64::from(p.ringbuf_kib)),
        kv_int(attr::VIGIL_CONFIG_ARGS_MAX, i64::from(p.args_max_bytes)),
        kv_int(attr::VIGIL_CONFIG_PATH_MAX, i64::from(p.path_max_bytes)),
        kv_str_array(attr::VIGIL_CONFIG_LANES, ["critical".to_owned()]),
        kv_str(attr::VIGIL_CONFIG_DROP_POLICY, "count_and_report"),
        super::kv_bool(attr::VIGIL_CONFIG_SPANS, cfg.spans.enabled),
        kv_str(attr::VIGIL_EXPORTER_TARGET, exporter_target),
    ]);
}

/// A fresh `service.instance.id` (a random UUID from the kernel).
pub fn new_instance_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid").ok().map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_host_facts_are_left_out() {
        let host = HostInfo { host_arch: "amd64".into(), boot_id: Some("b".into()), ..HostInfo::default() };
        let r = host_resource(&host, "i", &["vigil.process.exec=tp_btf/sched_process_exec".into()]);
        let keys: Vec<&str> = r.attributes.iter().map(|k| k.key.as_str()).collect();
        assert!(keys.contains(&"vigil.host.boot_id"));
        assert!(!keys.contains(&"host.name"));
        assert!(keys.contains(&"vigil.hooks.active"));
    }
}
