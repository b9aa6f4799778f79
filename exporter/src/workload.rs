//! Which workload a cgroup path belongs to: container runtime and id,
//! Kubernetes pod and QoS class, systemd unit.
//!
//! Pure string parsing of cgroup v2 (and v1-style) paths as the common
//! runtimes and cgroup drivers lay them out; nothing is looked up.

/// What a cgroup path says about its workload. Every field is absent when
/// the path does not say it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Workload {
    /// `container.id`: the runtime's 64-hex-digit id.
    pub container_id: Option<String>,
    /// `container.runtime.name` (semconv values: docker, containerd,
    /// cri-o, podman).
    pub runtime: Option<&'static str>,
    /// `k8s.pod.uid`, with its dashes.
    pub pod_uid: Option<String>,
    /// `vigil.k8s.pod.qos_class`: guaranteed, burstable or besteffort.
    pub qos_class: Option<&'static str>,
    /// `vigil.systemd.unit`: the innermost `.service` unit.
    pub systemd_unit: Option<String>,
}

impl Workload {
    /// Nothing recognised.
    pub fn is_empty(&self) -> bool {
        *self == Workload::default()
    }
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// `<prefix><64hex>.scope` (systemd driver) or `<prefix><64hex>` -> the id.
fn scoped_id<'a>(seg: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = seg.strip_prefix(prefix)?;
    let id = rest.strip_suffix(".scope").unwrap_or(rest);
    is_container_id(id).then_some(id)
}

/// A pod uid as it appears in a cgroup name (systemd driver: underscores
/// for dashes) -> the canonical uid.
fn pod_uid(raw: &str) -> Option<String> {
    let uid = raw.replace('_', "-");
    let ok = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { b.is_ascii_hexdigit() });
    ok.then_some(uid)
}

fn qos(s: &str) -> Option<&'static str> {
    match s {
        "besteffort" => Some("besteffort"),
        "burstable" => Some("burstable"),
        _ => None,
    }
}

/// Parse a cgroup path (as in `/proc/<pid>/cgroup` or the cgroup2 tree,
/// relative to its root).
pub fn parse_cgroup_path(path: &str) -> Workload {
    let mut w = Workload::default();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut in_kubepods = false;
    for (i, seg) in segs.iter().enumerate() {
        let seg = *seg;
        if seg == "kubepods" || seg == "kubepods.slice" {
            in_kubepods = true;
            w.qos_class = Some("guaranteed");
            continue;
        }
        if in_kubepods {
            // systemd driver: kubepods-<qos>.slice, kubepods[-<qos>]-pod<uid>.slice
            if let Some(rest) = seg.strip_prefix("kubepods-").and_then(|r| r.strip_suffix(".slice")) {
                if let Some(q) = qos(rest) {
                    w.qos_class = Some(q);
                    continue;
                }
                let pod = rest.split_once("pod").map(|(_, p)| p);
                if let Some(uid) = pod.and_then(pod_uid) {
                    w.pod_uid = Some(uid);
                    continue;
                }
            }
            // cgroupfs driver: kubepods/<qos>/pod<uid>/<id>
            if let Some(q) = qos(seg) {
                w.qos_class = Some(q);
                continue;
            }
            if let Some(uid) = seg.strip_prefix("pod").and_then(pod_uid) {
                w.pod_uid = Some(uid);
                continue;
            }
        }
        const RUNTIMES: [(&str, &str); 5] = [
            ("docker-", "docker"),
            ("cri-containerd-", "containerd"),
            ("containerd-", "containerd"),
            ("crio-", "cri-o"),
            ("libpod-", "podman"),
        ];
        if let Some((id, runtime)) = RUNTIMES.iter().find_map(|(prefix, rt)| scoped_id(seg, prefix).map(|id| (id, *rt))) {
            w.container_id = Some(id.to_owned());
            w.runtime = Some(runtime);
        } else if is_container_id(seg) {
            // A bare id: `/docker/<id>`, or kubepods' cgroupfs driver (which
            // does not name the runtime).
            w.container_id = Some(seg.to_owned());
            w.runtime = (i > 0 && segs[i - 1] == "docker").then_some("docker");
        }
        if let Some(unit) = seg.strip_suffix(".service") {
            if !unit.is_empty() && !seg.starts_with("user@") {
                w.systemd_unit = Some(seg.to_owned());
            }
        }
    }
    if !in_kubepods {
        w.qos_class = None;
    }
    if w.container_id.is_some() {
        // A container's own cgroup is not its runtime's unit.
        w.systemd_unit = None;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e2b1c9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
    const UID: &str = "6c2b0b7e-1f2a-4c3d-9e8f-0a1b2c3d4e5f";

    fn w(path: &str) -> Workload {
        parse_cgroup_path(path)
    }

    #[test]
    fn docker_cgroupfs_and_systemd_drivers() {
        for p in [format!("/docker/{ID}"), format!("/system.slice/docker-{ID}.scope")] {
            let got = w(&p);
            assert_eq!(got.container_id.as_deref(), Some(ID), "{p}");
            assert_eq!(got.runtime, Some("docker"), "{p}");
            assert_eq!(got.pod_uid, None);
            assert_eq!(got.qos_class, None);
            assert_eq!(got.systemd_unit, None, "{p}");
        }
    }

    #[test]
    fn kubernetes_systemd_driver() {
        let u = UID.replace('-', "_");
        let p = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{ID}.scope");
        let got = w(&p);
        assert_eq!(got.container_id.as_deref(), Some(ID));
        assert_eq!(got.runtime, Some("containerd"));
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        assert_eq!(got.qos_class, Some("burstable"));
        let p = format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/crio-{ID}.scope");
        let got = w(&p);
        assert_eq!((got.runtime, got.qos_class), (Some("cri-o"), Some("besteffort")));
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        // Guaranteed pods sit directly under kubepods.slice.
        let got = w(&format!("/kubepods.slice/kubepods-pod{u}.slice/cri-containerd-{ID}.scope"));
        assert_eq!(got.qos_class, Some("guaranteed"));
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        assert_eq!(got.container_id.as_deref(), Some(ID));
    }

    #[test]
    fn kubernetes_cgroupfs_driver() {
        let got = w(&format!("/kubepods/besteffort/pod{UID}/{ID}"));
        assert_eq!(got.container_id.as_deref(), Some(ID));
        assert_eq!(got.runtime, None, "the cgroupfs layout does not name the runtime");
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        assert_eq!(got.qos_class, Some("besteffort"));
        let got = w(&format!("/kubepods/pod{UID}/{ID}"));
        assert_eq!(got.qos_class, Some("guaranteed"));
        // The pod cgroup itself (e.g. the pause process's parent).
        let got = w(&format!("/kubepods/burstable/pod{UID}"));
        assert_eq!((got.container_id, got.pod_uid.as_deref(), got.qos_class), (None, Some(UID), Some("burstable")));
    }

    #[test]
    fn podman() {
        for p in [
            format!("/machine.slice/libpod-{ID}.scope"),
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
        ] {
            let got = w(&p);
            assert_eq!(got.container_id.as_deref(), Some(ID), "{p}");
            assert_eq!(got.runtime, Some("podman"));
            assert_eq!(got.systemd_unit, None);
        }
        // conmon is not the container.
        assert!(w(&format!("/machine.slice/libpod-conmon-{ID}.scope")).container_id.is_none());
    }

    #[test]
    fn systemd_units() {
        let got = w("/system.slice/nginx.service");
        assert_eq!(got.systemd_unit.as_deref(), Some("nginx.service"));
        assert_eq!(got.container_id, None);
        let got = w("/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo.service");
        assert_eq!(got.systemd_unit.as_deref(), Some("app-foo.service"));
        // The user manager itself.
        let got = w("/user.slice/user-1000.slice/user@1000.service/init.scope");
        assert_eq!(got.systemd_unit, None);
        // Template instances keep their instance name.
        assert_eq!(w("/system.slice/system-getty.slice/getty@tty1.service").systemd_unit.as_deref(), Some("getty@tty1.service"));
    }

    #[test]
    fn nothing_recognised() {
        for p in [
            "/",
            "",
            "/user.slice/user-1000.slice/session-3.scope",
            "/init.scope",
            "/docker/notanid",
            "/system.slice/docker-abc.scope",
            &format!("/docker/{}", ID.to_uppercase()),
            &format!("/docker/{ID}0"),
            "/kubepods.slice/kubepods-burstable.slice",
            "/kubepods/podnot-a-uid",
        ] {
            let got = w(p);
            assert_eq!(got.container_id, None, "{p}");
            assert_eq!(got.runtime, None, "{p}");
            assert_eq!(got.pod_uid, None, "{p}");
            assert_eq!(got.systemd_unit, None, "{p}");
        }
        assert!(w("/init.scope").is_empty());
        assert!(w("/docker.service").systemd_unit.is_some());
    }
}
