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
        kv_int(attr::VIGIL_CONFIG_BULK_RINGBUF_KIB, i64::from(p.bulk_ringbuf_kib)),
        kv_int(attr::VIGIL_CONFIG_ARGS_MAX, i64::from(p.args_max_bytes)),
        kv_int(attr::VIGIL_CONFIG_PATH_MAX, i64::from(p.path_max_bytes)),
        kv_str_array(attr::VIGIL_CONFIG_LANES, crate::abi::LANES.iter().map(|l| crate::abi::lane_name(*l).to_owned())),
        kv_str(attr::VIGIL_POLICY, effective_policy(&cfg.policy, crate::policy::bpf_lsm_active()).as_str()),
        super::kv_bool(attr::VIGIL_CONFIG_SPANS, cfg.spans.enabled),
        kv_str(attr::VIGIL_EXPORTER_TARGET, exporter_target),
    ]);
}

/// The policy in force: `fail_closed` degraded (no BPF LSM,
/// `policy.allow_degraded`) runs as `shed`, and the resource says so.
pub fn effective_policy(p: &crate::config::PolicyConfig, lsm_active: bool) -> crate::config::PolicyMode {
    match crate::policy::fail_closed_gate(p, lsm_active) {
        Ok(Some(_)) => crate::config::PolicyMode::Shed,
        _ => p.mode,
    }
}

/// Node and agent-pod identity from the Kubernetes downward API: with
/// `K8S_NODE_NAME` set (e.g. `fieldRef: spec.nodeName`), `k8s.node.name`;
/// `K8S_POD_NAME`, `K8S_NAMESPACE` and `K8S_POD_UID` name vigil's own pod
/// (`vigil.agent.k8s.*`: the events are not about that pod). Unset or empty
/// variables add nothing. `env` looks a variable up (`std::env::var`).
pub fn add_k8s_node(resource: &mut Resource, env: impl Fn(&str) -> Option<String>) {
    let vars = [
        ("K8S_NODE_NAME", attr::K8S_NODE_NAME),
        ("K8S_POD_NAME", attr::VIGIL_AGENT_K8S_POD_NAME),
        ("K8S_NAMESPACE", attr::VIGIL_AGENT_K8S_NAMESPACE),
        ("K8S_POD_UID", attr::VIGIL_AGENT_K8S_POD_UID),
    ];
    for (var, key) in vars {
        if let Some(v) = env(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            resource.attributes.push(kv_str(key, v));
        }
    }
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

    #[test]
    fn k8s_node_from_downward_api_env() {
        let mut r = Resource::default();
        add_k8s_node(&mut r, |_| None);
        assert!(r.attributes.is_empty(), "nothing outside Kubernetes");
        let env = |k: &str| match k {
            "K8S_NODE_NAME" => Some("node-a".to_owned()),
            "K8S_POD_NAME" => Some("vigil-x7k2p".to_owned()),
            "K8S_NAMESPACE" => Some("vigil-system".to_owned()),
            "K8S_POD_UID" => Some(String::new()),
            _ => None,
        };
        add_k8s_node(&mut r, env);
        let got: Vec<(String, String)> = r
            .attributes
            .iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => s.clone(),
                    other => panic!("{other:?}"),
                };
                (kv.key.clone(), v)
            })
            .collect();
        let want: Vec<(String, String)> =
            [("k8s.node.name", "node-a"), ("vigil.agent.k8s.pod.name", "vigil-x7k2p"), ("vigil.agent.k8s.namespace.name", "vigil-system")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        assert_eq!(got, want, "empty K8S_POD_UID is left out");
    }
}
