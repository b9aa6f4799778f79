//! Metadata lookups against fake servers (no root needed): a Docker Engine
//! API and a CRI runtime on unix sockets, a Kubernetes API on a local port,
//! each answering, holding its answer, failing or hanging up.
//!
//! What must hold: the map stage maps every record at once whatever the
//! lookups do (a record whose metadata is not known yet carries the ids from
//! the cgroup path and `vigil.metadata.*.status` pending/unavailable with a
//! reason), and the metadata appears once the fake answers.
#![allow(clippy::unwrap_used)]

mod fakes;

use fakes::{FakeCri, FakeDocker, FakeK8s, Mode};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil::abi::{self, RawCreds, RawExec, RawHdr};
use vigil::clock::BootClock;
use vigil::config::MetadataConfig;
use vigil::metadata::Metadata;
use vigil::otel::logs::MapContext;
use vigil::pipeline::Mapper;
use vigil::probes::RawRecord;
use vigil::stats::Stats;
use vigil_tests::attrs::{str_array_attr, str_attr};
use vigil_tests::collector::TempDir;

const DOCKER_ID: &str = "d0c4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";
const CRI_ID: &str = "c41d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d";
const OTHER_ID: &str = "0000000000000000000000000000000000000000000000000000000000000001";
const POD_LISTED: &str = "6c2b0b7e-1f2a-4c3d-9e8f-0a1b2c3d4e5f";
const POD_ADDED: &str = "3d4e5f60-7182-4394-a5b6-c7d8e9f0a1b2";
/// How long a test waits for a state it expects, at most.
const WAIT: Duration = Duration::from_secs(20);

thread_local! {
    static SCHEMA: vigil_tests::schema::Schema = vigil_tests::schema::Schema::load();
}

/// A mapper over a fake /proc: each exec's process has the cgroup path the
/// test gives.
struct Harness {
    dir: TempDir,
    mapper: Mapper,
    n: u32,
}

impl Harness {
    fn new(metadata: Option<Metadata>) -> Harness {
        let dir = TempDir::new("vigil-metadata");
        let proc = dir.path().join("proc");
        let ctx = MapContext { clock: BootClock::with_offset(1_700_000_000_000_000_000), boot_id: "b00t".into(), session: "1".into() };
        let mapper = Mapper::new(ctx, 4096, proc.clone(), Arc::new(Stats::default())).with_roots(proc, None).with_metadata(metadata);
        Harness { dir, mapper, n: 0 }
    }

    /// Map one exec of a process in `cgroup`; its attributes, the record's
    /// followed by its workload Resource's.
    fn exec_in(&mut self, cgroup: &str) -> Vec<KeyValue> {
        self.n += 1;
        let pid = 20_000 + self.n;
        let pdir = self.dir.path().join(format!("proc/{pid}"));
        std::fs::create_dir_all(&pdir).unwrap();
        std::fs::write(pdir.join("cgroup"), format!("0::{cgroup}\n")).unwrap();
        let raw = RawExec {
            hdr: RawHdr { cpu: 0, seq: u64::from(self.n), ktime_ns: 1_000_000 * u64::from(self.n), tgid: pid, pid, ..RawHdr::default() },
            ppid: 1,
            old_pid: pid,
            creds: RawCreds { loginuid: u32::MAX, sessionid: u32::MAX, ..RawCreds::default() },
            // A new cgroup id each time: the fake /proc is read once per id.
            cgroup_id: 1_000_000 + u64::from(self.n),
            start_ns: 1_000_000 * u64::from(self.n),
            argc: 1,
            vpid: pid,
            ..RawExec::default()
        };
        let bytes = abi::encode_exec(raw, [b"/bin/true", b"/bin/true", b"true\0", b"/"]);
        let (resource, log) = self.mapper.map_grouped(&RawRecord { bytes, observed_ns: 1 }).expect("maps");
        let log = log.decode().expect("decodes");
        let workload = resource.map(|r| r.attributes.clone()).unwrap_or_default();
        for kv in &workload {
            assert!(log.attributes.iter().all(|l| l.key != kv.key), "{} is on the resource, not the record", kv.key);
        }
        // Every workload attribute is documented for the resource.
        SCHEMA.with(|s| s.validate_resource(&Resource { attributes: workload.clone(), ..Resource::default() }));
        [log.attributes, workload].concat()
    }
}

fn s<'a>(a: &'a [KeyValue], key: &str) -> Option<&'a str> {
    str_attr(a, key)
}

/// Map records in `cgroup` until `done` says so (every record is mapped at
/// once; between records the test yields so the lookups can progress).
async fn until(h: &mut Harness, cgroup: &str, what: &str, done: impl Fn(&[KeyValue]) -> bool) -> Vec<KeyValue> {
    let deadline = Instant::now() + WAIT;
    loop {
        let a = h.exec_in(cgroup);
        if done(&a) {
            return a;
        }
        assert!(Instant::now() < deadline, "{what}: still not so after {WAIT:?}; last record's attributes: {a:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn status_is(key: &'static str, status: &'static str, reason: Option<&'static str>) -> impl Fn(&[KeyValue]) -> bool {
    let reason_key = key.replace(".status", ".reason");
    move |a| s(a, key) == Some(status) && s(a, &reason_key) == reason
}

/// Map records while the held lookup is pending (up to 5000): each carries
/// the container id and "pending", and the runtime saw one request only.
/// Returns how many were mapped.
async fn map_while_pending(h: &mut Harness, cgroup: &str, fake: &fakes::Control) -> usize {
    let deadline = Instant::now() + WAIT;
    while fake.requests() == 0 {
        assert!(Instant::now() < deadline, "the lookup never reached the fake runtime");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for n in 0..5000 {
        let a = h.exec_in(cgroup);
        assert!(s(&a, "container.id").is_some());
        if s(&a, C_STATUS) != Some("pending") {
            return n;
        }
        assert_eq!(fake.requests(), 1, "one lookup per container, not one per record");
        assert_eq!(fake.answered(), 0);
    }
    5000
}

/// Lookups given up after 1.5 s (a held answer is held for a minute),
/// failures retried after 1 s.
fn config(f: impl FnOnce(&mut MetadataConfig)) -> MetadataConfig {
    let mut c = MetadataConfig { timeout_ms: 1500, negative_ttl_s: 1, ..MetadataConfig::default() };
    f(&mut c);
    c
}

const C_STATUS: &str = "vigil.metadata.container.status";
const K_STATUS: &str = "vigil.metadata.k8s.status";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_lookups_never_stall_mapping_and_fill_in_when_the_daemon_answers() {
    let dir = TempDir::new("vigil-fake-docker");
    let docker = FakeDocker::start(dir.path(), DOCKER_ID, Mode::Slow);
    let cfg = config(|c| {
        c.docker.enabled = true;
        c.docker.socket = docker.socket.to_string_lossy().into_owned();
    });
    let md = Metadata::start(&cfg, |_| None).unwrap().expect("docker lookup on");
    let mut h = Harness::new(Some(md.clone()));
    let cg = format!("/system.slice/docker-{DOCKER_ID}.scope");

    // The daemon holds its answer: every record is still mapped, with the id
    // and "pending".
    let first = h.exec_in(&cg);
    assert_eq!(s(&first, "container.id"), Some(DOCKER_ID));
    assert_eq!(s(&first, "container.runtime.name"), Some("docker"));
    assert_eq!(s(&first, C_STATUS), Some("pending"));
    assert_eq!(s(&first, "vigil.metadata.container.reason"), Some("lookup_in_flight"));
    assert_eq!(s(&first, "container.name"), None);
    let held = map_while_pending(&mut h, &cg, &docker.control).await;
    assert!(held >= 50, "only {held} records mapped while the lookup was held");

    // Given up after timeout_ms.
    until(&mut h, &cg, "slow daemon: timeout", status_is(C_STATUS, "unavailable", Some("timeout"))).await;
    assert_eq!(docker.control.answered(), 0, "the daemon never answered");

    // Failing daemon (retried after negative_ttl_s).
    docker.control.set(Mode::Fail);
    until(&mut h, &cg, "HTTP 500", status_is(C_STATUS, "unavailable", Some("http_500"))).await;
    docker.control.set(Mode::Close);
    until(&mut h, &cg, "connection closed", status_is(C_STATUS, "unavailable", Some("io_error"))).await;

    // Healthy: the fixture's names.
    docker.control.set(Mode::Ok);
    let a = until(&mut h, &cg, "answered", status_is(C_STATUS, "ok", None)).await;
    assert_eq!(s(&a, "container.id"), Some(DOCKER_ID));
    assert_eq!(s(&a, "container.name"), Some("shop-web-1"));
    assert_eq!(s(&a, "container.image.name"), Some("registry.example.com:5000/shop/web"));
    assert_eq!(str_array_attr(&a, "container.image.tags"), Some(vec!["1.27.2".to_owned()]));
    assert_eq!(s(&a, "container.image.id"), Some("sha256:4f2a1c3b5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081"));

    // A container the daemon does not know.
    let other = format!("/docker/{OTHER_ID}");
    until(&mut h, &other, "unknown container", status_is(C_STATUS, "unavailable", Some("not_found"))).await;
    let st = md.stats();
    assert!(st.failures.load(std::sync::atomic::Ordering::Relaxed) >= 4, "timeout, 500, hang-up and not found are counted");
    let hb = h.mapper.heartbeat_counters().counters;
    let counter = |k: &str| hb.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    assert!(counter("vigil.heartbeat.metadata.failures") >= Some(4), "heartbeats carry the lookup counters: {hb:?}");
    assert!(counter("vigil.heartbeat.metadata.lookups") >= Some(5));
    assert_eq!(counter("vigil.heartbeat.metadata.skipped"), Some(0));

    // A host process: no container, no lookup, no status.
    let host = h.exec_in("/system.slice/cron.service");
    assert_eq!((s(&host, "container.id"), s(&host, C_STATUS)), (None, None));
    assert_eq!(s(&host, "vigil.systemd.unit"), Some("cron.service"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_lookups_give_container_and_pod_names() {
    let dir = TempDir::new("vigil-fake-cri");
    let u = POD_LISTED.replace('-', "_");
    let cg = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{CRI_ID}.scope");

    // No runtime listening yet.
    let missing = dir.path().join("cri.sock");
    let cfg = config(|c| {
        c.cri.enabled = true;
        c.cri.socket = missing.to_string_lossy().into_owned();
    });
    let mut h = Harness::new(Metadata::start(&cfg, |_| None).unwrap());
    until(&mut h, &cg, "no socket", status_is(C_STATUS, "unavailable", Some("socket_missing"))).await;

    let cri = FakeCri::start(dir.path(), CRI_ID, Mode::Slow);
    assert_eq!(cri.socket, missing);
    let md = Metadata::start(&cfg, |_| None).unwrap();
    let mut h = Harness::new(md);
    let first = h.exec_in(&cg);
    assert_eq!(s(&first, C_STATUS), Some("pending"));
    assert_eq!((s(&first, "container.id"), s(&first, "k8s.pod.uid")), (Some(CRI_ID), Some(POD_LISTED)));
    assert_eq!(s(&first, "container.runtime.name"), Some("containerd"));
    let held = map_while_pending(&mut h, &cg, &cri.control).await;
    assert!(held >= 50, "only {held} records mapped while the lookup was held");
    until(&mut h, &cg, "slow runtime: timeout", status_is(C_STATUS, "unavailable", Some("timeout"))).await;
    assert_eq!(cri.control.answered(), 0);

    cri.control.set(Mode::Fail);
    until(&mut h, &cg, "gRPC INTERNAL", status_is(C_STATUS, "unavailable", Some("grpc_internal"))).await;

    cri.control.set(Mode::Ok);
    let a = until(&mut h, &cg, "answered", status_is(C_STATUS, "ok", None)).await;
    assert_eq!(s(&a, "container.name"), Some("redis"));
    assert_eq!(s(&a, "container.image.name"), Some("docker.io/library/redis"));
    assert_eq!(str_array_attr(&a, "container.image.tags"), Some(vec!["7.4".to_owned()]));
    assert_eq!(s(&a, "k8s.pod.name"), Some("cache-0"), "the pod name label the CRI exposes");
    assert_eq!(s(&a, "k8s.namespace.name"), Some("shop"));
    assert_eq!(s(&a, "vigil.k8s.pod.qos_class"), Some("burstable"));

    let other = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{OTHER_ID}.scope");
    until(&mut h, &other, "unknown container", status_is(C_STATUS, "unavailable", Some("not_found"))).await;
}

fn k8s_config(url: &str, token: &std::path::Path) -> MetadataConfig {
    config(|c| {
        c.kubernetes.enabled = true;
        c.kubernetes.api_url = url.to_owned();
        c.kubernetes.token_path = token.to_string_lossy().into_owned();
        c.kubernetes.ca_path = String::new();
    })
}

fn pod_cgroup(uid: &str, id: &str) -> String {
    format!("/kubepods/besteffort/pod{uid}/{id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_list_and_watch_name_pods_and_owners() {
    let dir = TempDir::new("vigil-fake-k8s");
    let token = dir.path().join("token");
    std::fs::write(&token, "test-token\n").unwrap();
    let api = FakeK8s::start(Mode::Fail, true).await;
    let md = Metadata::start(&k8s_config(&api.url, &token), |k| (k == "K8S_NODE_NAME").then(|| "node-a".to_owned())).unwrap();
    let mut h = Harness::new(md);
    let listed = pod_cgroup(POD_LISTED, CRI_ID);
    let added = pod_cgroup(POD_ADDED, DOCKER_ID);

    // The API fails: records flow, marked unavailable with the status.
    until(&mut h, &listed, "API failing", status_is(K_STATUS, "unavailable", Some("http_500"))).await;
    let a = h.exec_in(&listed);
    assert_eq!(s(&a, "k8s.pod.uid"), Some(POD_LISTED));
    assert_eq!(s(&a, "container.id"), Some(CRI_ID), "ids stay in place");

    // It recovers: the list names the pod (after one 410 on the first watch,
    // the pods are listed again).
    api.control.set(Mode::Ok);
    let a = until(&mut h, &listed, "listed pod", status_is(K_STATUS, "ok", None)).await;
    assert_eq!(s(&a, "k8s.pod.name"), Some("checkout-7c9d8f6b5-x2x9q"));
    assert_eq!(s(&a, "k8s.namespace.name"), Some("shop"));
    assert_eq!(s(&a, "k8s.replicaset.name"), Some("checkout-7c9d8f6b5"));
    assert_eq!(s(&a, "k8s.deployment.name"), Some("checkout"));
    assert_eq!(s(&a, "k8s.pod.label.tier"), Some("backend"));
    assert_eq!(s(&a, "k8s.pod.label.app.kubernetes.io/name"), Some("checkout"));

    // A pod the watch has not reported yet.
    let a = h.exec_in(&added);
    assert_eq!(s(&a, K_STATUS), Some("pending"));
    let deadline = Instant::now() + WAIT;
    while api.watches() < 2 || api.lists_ok() < 2 {
        assert!(Instant::now() < deadline, "410 Gone on the first watch must lead to a new list and watch");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until(&mut h, &added, "not yet seen", status_is(K_STATUS, "pending", Some("not_yet_seen"))).await;
    api.release_added();
    let a = until(&mut h, &added, "added by the watch", status_is(K_STATUS, "ok", None)).await;
    assert_eq!(s(&a, "k8s.pod.name"), Some("vigil-agent-8kq2z"));
    assert_eq!(s(&a, "k8s.daemonset.name"), Some("vigil-agent"));

    for (pq, auth) in api.seen() {
        assert!(pq.starts_with("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a"), "node-scoped: {pq}");
        assert_eq!(auth.as_deref(), Some("Bearer test-token"), "{pq}");
    }
    let watches: Vec<String> = api.seen().into_iter().map(|(pq, _)| pq).filter(|pq| pq.contains("watch=1")).collect();
    assert!(watches.iter().all(|w| w.contains("resourceVersion=48211")), "watch from the list's resourceVersion: {watches:?}");
}

/// A watch that ends (server timeout, proxy idle limit) is resumed from the
/// last resourceVersion it delivered, without listing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_watch_resumes_from_the_last_resource_version() {
    let dir = TempDir::new("vigil-fake-k8s-resume");
    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    let api = FakeK8s::start(Mode::Ok, false).await;
    api.close_watch_after_event();
    api.release_added();
    let md = Metadata::start(&k8s_config(&api.url, &token), |k| (k == "K8S_NODE_NAME").then(|| "node-a".to_owned())).unwrap();
    let mut h = Harness::new(md);
    until(&mut h, &pod_cgroup(POD_ADDED, DOCKER_ID), "pod added by the watch", status_is(K_STATUS, "ok", None)).await;
    let deadline = Instant::now() + WAIT;
    while api.watches() < 3 {
        assert!(Instant::now() < deadline, "the ended watch was not resumed: {:?}", api.seen());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let watches: Vec<String> = api.seen().into_iter().map(|(pq, _)| pq).filter(|pq| pq.contains("watch=1")).collect();
    assert!(watches[0].ends_with("resourceVersion=48211"), "first watch from the list: {watches:?}");
    assert!(watches[1..].iter().all(|w| w.ends_with("resourceVersion=48230")), "then from the ADDED event's version: {watches:?}");
    assert_eq!(api.lists_ok(), 1, "resumed, not listed again");
    // Records keep flowing and the pod stays known across the reconnects.
    assert_eq!(s(&h.exec_in(&pod_cgroup(POD_LISTED, CRI_ID)), K_STATUS), Some("ok"));
}

/// In a pod the API is HTTPS with the service account's CA: vigil trusts that
/// CA only (no system roots), and a server it cannot verify is reported as
/// `tls_error`, never trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_api_over_tls_trusts_only_the_configured_ca() {
    let dir = TempDir::new("vigil-fake-k8s-tls");
    let token = dir.path().join("token");
    std::fs::write(&token, "tls-token").unwrap();
    let api = FakeK8s::start_tls(Mode::Ok).await;
    assert!(api.url.starts_with("https://127.0.0.1:"));
    let tls = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("metadata/fixtures/tls");
    let listed = pod_cgroup(POD_LISTED, CRI_ID);
    let node = |k: &str| (k == "K8S_NODE_NAME").then(|| "node-a".to_owned());

    for ca in [tls.join("other-ca.crt"), dir.path().join("missing-ca.crt")] {
        let mut cfg = k8s_config(&api.url, &token);
        cfg.kubernetes.ca_path = ca.to_string_lossy().into_owned();
        let mut h = Harness::new(Metadata::start(&cfg, node).unwrap());
        until(&mut h, &listed, &format!("CA {}", ca.display()), status_is(K_STATUS, "unavailable", Some("tls_error"))).await;
    }
    assert!(api.seen().is_empty(), "no request reaches a server vigil could not verify");

    let mut cfg = k8s_config(&api.url, &token);
    cfg.kubernetes.ca_path = tls.join("ca.crt").to_string_lossy().into_owned();
    let mut h = Harness::new(Metadata::start(&cfg, node).unwrap());
    let a = until(&mut h, &listed, "listed over TLS", status_is(K_STATUS, "ok", None)).await;
    assert_eq!(s(&a, "k8s.pod.name"), Some("checkout-7c9d8f6b5-x2x9q"));
    assert!(api.seen().iter().all(|(_, auth)| auth.as_deref() == Some("Bearer tls-token")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_kubernetes_api_does_not_stall_mapping() {
    let dir = TempDir::new("vigil-fake-k8s-slow");
    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    let api = FakeK8s::start(Mode::Slow, false).await;
    let mut cfg = k8s_config(&api.url, &token);
    cfg.kubernetes.node_name = "node-a".into();
    let mut h = Harness::new(Metadata::start(&cfg, |_| None).unwrap());
    let listed = pod_cgroup(POD_LISTED, CRI_ID);
    let a = h.exec_in(&listed);
    assert_eq!(s(&a, K_STATUS), Some("pending"));
    assert_eq!(s(&a, "vigil.metadata.k8s.reason"), Some("not_synced"));
    let deadline = Instant::now() + WAIT;
    while api.control.requests() == 0 {
        assert!(Instant::now() < deadline, "the list never reached the fake API");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut held = 0;
    while s(&h.exec_in(&listed), K_STATUS) == Some("pending") {
        assert_eq!((api.control.requests(), api.control.answered()), (1, 0), "one list, held");
        held += 1;
    }
    assert!(held >= 50, "only {held} records mapped while the list was held");
    until(&mut h, &listed, "slow API: timeout", status_is(K_STATUS, "unavailable", Some("timeout"))).await;
    assert_eq!(api.control.answered(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_lookups_off_adds_nothing() {
    assert!(Metadata::start(&MetadataConfig::default(), |_| None).unwrap().is_none(), "off by default");
    let mut h = Harness::new(None);
    let a = h.exec_in(&format!("/docker/{DOCKER_ID}"));
    assert_eq!(s(&a, "container.id"), Some(DOCKER_ID));
    assert!(a.iter().all(|kv| !kv.key.starts_with("vigil.metadata.")), "no lookup, no status");
    let hb = h.mapper.heartbeat_counters().counters;
    assert!(hb.iter().all(|(k, _)| !k.starts_with("vigil.heartbeat.metadata.")), "no lookup, no lookup counters");
}
