//! The OTLP Resource: where the events happened and who reported them.

use super::{attr, kv_int, kv_str, kv_str_array};
use crate::host::HostInfo;
use crate::metadata::WorkloadMeta;
use crate::workload::Workload;
use opentelemetry_proto::tonic::common::v1::KeyValue;
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
/// `K8S_POD_NAME`, `K8S_POD_NAMESPACE` (or `K8S_NAMESPACE`) and
/// `K8S_POD_UID` name vigil's own pod (`vigil.agent.k8s.*`: the events are
/// not about that pod). Unset or empty variables add nothing. `env` looks a
/// variable up (`std::env::var`).
pub fn add_k8s_node(resource: &mut Resource, env: impl Fn(&str) -> Option<String>) {
    let vars: [(&[&str], &str); 4] = [
        (&["K8S_NODE_NAME"], attr::K8S_NODE_NAME),
        (&["K8S_POD_NAME"], attr::VIGIL_AGENT_K8S_POD_NAME),
        (&["K8S_POD_NAMESPACE", "K8S_NAMESPACE"], attr::VIGIL_AGENT_K8S_NAMESPACE),
        (&["K8S_POD_UID"], attr::VIGIL_AGENT_K8S_POD_UID),
    ];
    for (names, key) in vars {
        let value = names.iter().find_map(|var| env(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()));
        if let Some(v) = value {
            resource.attributes.push(kv_str(key, v));
        }
    }
}

/// The attributes that say which workload records came from: the ids the
/// cgroup path names, then what the metadata lookups know, then the state
/// of each lookup that applies (`vigil.metadata.{container,k8s}.status`
/// and `.reason`). Only what is known is listed; the order is fixed, so the
/// same workload always gives the same attributes.
pub fn workload_attributes(w: &Workload, m: &WorkloadMeta) -> Vec<KeyValue> {
    let mut out = Vec::new();
    let mut push = |key: &str, v: Option<&str>| {
        if let Some(v) = v {
            out.push(kv_str(key, v));
        }
    };
    push(attr::CONTAINER_ID, w.container_id.as_deref());
    push(attr::CONTAINER_RUNTIME_NAME, w.runtime);
    let c = m.container.as_ref().and_then(|l| l.ready());
    let pod = m.pod.as_ref().and_then(|l| l.ready());
    push(attr::CONTAINER_NAME, c.and_then(|c| c.name.as_deref()));
    push(attr::CONTAINER_IMAGE_NAME, c.and_then(|c| c.image_name.as_deref()));
    let tags = c.map(|c| c.image_tags.clone()).unwrap_or_default();
    push(attr::CONTAINER_IMAGE_ID, c.and_then(|c| c.image_id.as_deref()));
    push(attr::K8S_POD_UID, w.pod_uid.as_deref());
    push(attr::K8S_POD_NAME, pod.map(|p| p.name.as_str()).or_else(|| c.and_then(|c| c.pod_name.as_deref())));
    push(attr::K8S_NAMESPACE_NAME, pod.map(|p| p.namespace.as_str()).or_else(|| c.and_then(|c| c.pod_namespace.as_deref())));
    push(attr::VIGIL_K8S_POD_QOS_CLASS, w.qos_class);
    if let Some(p) = pod {
        for (key, name) in &p.owners {
            push(key, Some(name));
        }
    }
    push(attr::VIGIL_SYSTEMD_UNIT, w.systemd_unit.as_deref());
    if !tags.is_empty() {
        out.push(kv_str_array(attr::CONTAINER_IMAGE_TAGS, tags));
    }
    if let Some(p) = pod {
        for (k, v) in &p.labels {
            out.push(kv_str(&format!("{}{k}", attr::K8S_POD_LABEL_PREFIX), v.clone()));
        }
    }
    for (lookup, status, reason) in [
        (
            m.container.as_ref().map(|l| (l.status(), l.reason())),
            attr::VIGIL_METADATA_CONTAINER_STATUS,
            attr::VIGIL_METADATA_CONTAINER_REASON,
        ),
        (m.pod.as_ref().map(|l| (l.status(), l.reason())), attr::VIGIL_METADATA_K8S_STATUS, attr::VIGIL_METADATA_K8S_REASON),
    ] {
        if let Some((s, r)) = lookup {
            out.push(kv_str(status, s));
            if let Some(r) = r {
                out.push(kv_str(reason, r));
            }
        }
    }
    out
}

/// Whether `key` is one of the attributes [`workload_attributes`] emits
/// (as opposed to the host's and vigil's own).
pub fn is_workload_key(key: &str) -> bool {
    const EXACT: [&str; 4] = [attr::CONTAINER_ID, attr::CONTAINER_RUNTIME_NAME, attr::VIGIL_SYSTEMD_UNIT, attr::VIGIL_K8S_POD_QOS_CLASS];
    EXACT.contains(&key)
        || key.starts_with("container.")
        || key.starts_with("vigil.metadata.")
        || (key.starts_with("k8s.") && key != attr::K8S_NODE_NAME)
}

/// One workload's part of a Resource: its attributes, and the same encoded
/// as `Resource` fields. The request encoder appends `encoded` to the host
/// resource's bytes (repeated protobuf fields concatenate), so the host part
/// is encoded once per run and each workload's once per change.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadResource {
    /// [`workload_attributes`] of the workload.
    pub attributes: Vec<KeyValue>,
    /// `attributes` as `Resource.attributes` fields.
    pub encoded: Vec<u8>,
    /// Computed once: see [`WorkloadResource::is_settled`].
    settled: bool,
}

impl WorkloadResource {
    /// Encode `attributes` once.
    pub fn new(attributes: Vec<KeyValue>) -> Self {
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        let encoded = prost::Message::encode_to_vec(&Resource { attributes: attributes.clone(), ..Resource::default() });
        let settled = attributes
            .iter()
            .filter(|kv| kv.key.starts_with("vigil.metadata.") && kv.key.ends_with(".status"))
            .all(|kv| matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()), Some(Value::StringValue(s)) if s == "ok"));
        WorkloadResource { attributes, encoded, settled }
    }

    /// Whether every lookup that applies has answered (nothing pending or
    /// unavailable that a later retry could fill in).
    pub fn is_settled(&self) -> bool {
        self.settled
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
            "K8S_POD_NAMESPACE" => Some("vigil-system".to_owned()),
            "K8S_NAMESPACE" => Some("ignored-when-K8S_POD_NAMESPACE-is-set".to_owned()),
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
