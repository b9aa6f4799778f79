//! The pods of this node, from the Kubernetes API: one list, then one watch
//! from the list's `resourceVersion` (`fieldSelector=spec.nodeName=<node>`,
//! bookmarks on), re-listing when the server answers 410 Gone and
//! reconnecting with backoff (1 s doubling to 30 s) after failures.
//!
//! In a pod: the API server from `KUBERNETES_SERVICE_HOST`/`_PORT`, the
//! service account's token (re-read at each connection: tokens rotate) and
//! CA certificate. The URL, token and CA paths are configurable, so tests
//! point them at a local fake.
//!
//! The owning workload comes from the pod's controller `ownerReference`:
//! `k8s.replicaset.name`, `k8s.daemonset.name`, `k8s.statefulset.name`,
//! `k8s.job.name`. Two names are derived from naming conventions, not read
//! from the API (that would need more requests and RBAC): a ReplicaSet named
//! `<deployment>-<pod-template-hash>` (the hash being the pod's
//! `pod-template-hash` label) belongs to Deployment `<deployment>`, and a Job
//! named `<cronjob>-<digits>` (8 or more: the CronJob controller appends
//! the scheduled time in minutes) to CronJob `<cronjob>`.

use super::http::{self, Target};
use super::{Lookup, LookupError, MetadataStats, PodMeta};
use crate::config::KubernetesConfig;
use crate::otel::attr;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The watch asks the server to end it after this long (then it resumes).
const WATCH_TIMEOUT_S: u64 = 300;
/// Deleted pods are kept this long: their last processes may still report.
const DELETED_GRACE: Duration = Duration::from_secs(60);
/// A pod list larger than this is refused.
const MAX_LIST_BYTES: usize = 256 << 20;
/// A single watch event larger than this is refused.
const MAX_EVENT_BYTES: usize = 16 << 20;
/// Reconnection backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where and how to reach the API.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `scheme://host:port` parts.
    host: String,
    port: u16,
    https: bool,
    /// Path prefix of the API URL (usually empty).
    prefix: String,
    token_path: Option<PathBuf>,
    ca_path: PathBuf,
    node: String,
    timeout: Duration,
}

impl Settings {
    /// From the configuration and the environment (`env`).
    pub fn from_config(cfg: &KubernetesConfig, timeout: Duration, env: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let nonempty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let url = match nonempty(Some(cfg.api_url.clone())) {
            Some(u) => u,
            None => {
                let host = nonempty(env("KUBERNETES_SERVICE_HOST"))
                    .ok_or("no API server: set metadata.kubernetes.api_url or run in a pod (KUBERNETES_SERVICE_HOST)")?;
                let port = nonempty(env("KUBERNETES_SERVICE_PORT")).unwrap_or_else(|| "443".into());
                let host = if host.contains(':') { format!("[{host}]") } else { host };
                format!("https://{host}:{port}")
            }
        };
        let node = nonempty(Some(cfg.node_name.clone()))
            .or_else(|| nonempty(env("K8S_NODE_NAME")))
            .ok_or("no node name: set metadata.kubernetes.node_name or K8S_NODE_NAME (downward API, spec.nodeName)")?;
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("api_url `{url}` must start with https:// or http://"));
        };
        let (authority, prefix) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| format!("api_url `{url}`: unclosed ["))?;
            (h.to_owned(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| format!("api_url `{url}`: bad port"))?,
            None if https => 443,
            None => 80,
        };
        if host.is_empty() {
            return Err(format!("api_url `{url}`: no host"));
        }
        let prefix = prefix.trim_end_matches('/');
        Ok(Settings {
            host,
            port,
            https,
            prefix: if prefix.is_empty() { String::new() } else { format!("/{prefix}") },
            token_path: Some(PathBuf::from(&cfg.token_path)).filter(|p| !p.as_os_str().is_empty()),
            ca_path: PathBuf::from(&cfg.ca_path),
            node,
            timeout,
        })
    }

    /// The node whose pods are watched.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn target(&self) -> Result<Target, LookupError> {
        let tls = if self.https { Some(http::tls_config(&self.ca_path).map_err(LookupError::Tls)?) } else { None };
        Ok(Target::Tcp { host: self.host.clone(), port: self.port, tls })
    }

    fn token(&self) -> Option<String> {
        let t = std::fs::read_to_string(self.token_path.as_ref()?).ok()?;
        Some(t.trim().to_owned()).filter(|t| !t.is_empty())
    }

    fn pods_path(&self, watch: Option<&str>) -> String {
        let mut node = String::new();
        for b in self.node.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                node.push(char::from(b));
            } else {
                node.push_str(&format!("%{b:02X}"));
            }
        }
        let mut p = format!("{}/api/v1/pods?fieldSelector=spec.nodeName%3D{node}", self.prefix);
        match watch {
            Some(rv) => p.push_str(&format!("&watch=1&allowWatchBookmarks=true&timeoutSeconds={WATCH_TIMEOUT_S}&resourceVersion={rv}")),
            // Served from the API server's watch cache, not etcd: one list per
            // node agent at roll-out must stay cheap; the watch catches up.
            None => p.push_str("&resourceVersion=0"),
        }
        p
    }
}

#[derive(Debug, Default)]
struct StoreInner {
    pods: HashMap<String, Arc<PodMeta>>,
    deleted: VecDeque<(Instant, String)>,
    synced: bool,
    error: Option<String>,
}

/// The pods known now, by uid.
#[derive(Debug, Default)]
pub struct PodStore {
    inner: RwLock<StoreInner>,
}

impl PodStore {
    /// What is known about pod `uid`: known; pending (not listed yet, or not
    /// seen yet by the watch: a pod's first processes may start before the
    /// API server's event reaches vigil); unavailable while the API fails.
    pub fn get(&self, uid: &str) -> Lookup<PodMeta> {
        let Ok(s) = self.inner.read() else { return Lookup::Unavailable("internal_error".into()) };
        if let Some(p) = s.pods.get(uid) {
            return Lookup::Ready(p.clone());
        }
        match (&s.error, s.synced) {
            (Some(e), _) => Lookup::Unavailable(e.clone()),
            (None, false) => Lookup::Pending("not_synced"),
            (None, true) => Lookup::Pending("not_yet_seen"),
        }
    }

    fn with(&self, f: impl FnOnce(&mut StoreInner)) {
        if let Ok(mut s) = self.inner.write() {
            f(&mut s);
        }
    }

    fn replace(&self, pods: Vec<PodMeta>) {
        self.with(|s| {
            s.pods = pods.into_iter().map(|p| (p.uid.clone(), Arc::new(p))).collect();
            s.deleted.clear();
            s.synced = true;
            s.error = None;
        });
    }

    /// Add or replace a pod; whether what vigil keeps of it changed (a pod
    /// is MODIFIED at every status change, which vigil does not keep).
    fn upsert(&self, pod: PodMeta) -> bool {
        let mut changed = false;
        self.with(|s| {
            if s.pods.get(&pod.uid).is_none_or(|old| **old != pod) {
                s.pods.insert(pod.uid.clone(), Arc::new(pod));
                changed = true;
            }
        });
        changed
    }

    fn delete(&self, uid: String, now: Instant) {
        self.with(|s| {
            while s.deleted.front().is_some_and(|(t, _)| now.duration_since(*t) >= DELETED_GRACE) {
                if let Some((_, old)) = s.deleted.pop_front() {
                    s.pods.remove(&old);
                }
            }
            s.deleted.push_back((now, uid));
        });
    }

    fn set_error(&self, error: Option<String>) {
        self.with(|s| s.error = error);
    }

    /// Pods known (tests).
    pub fn len(&self) -> usize {
        self.inner.read().map_or(0, |s| s.pods.len())
    }

    /// Whether no pod is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A pod object (JSON) -> what vigil keeps of it.
pub fn pod_from_json(v: &serde_json::Value) -> Option<PodMeta> {
    let md = &v["metadata"];
    let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let uid = s(&md["uid"]).filter(|u| !u.is_empty())?;
    let mut labels: Vec<(String, String)> = md["labels"]
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default();
    labels.sort();
    let refs = md["ownerReferences"].as_array().map(Vec::as_slice).unwrap_or_default();
    let controller = refs.iter().find(|r| r["controller"].as_bool() == Some(true)).or(refs.first());
    let mut owners = Vec::new();
    if let Some(r) = controller {
        let name = s(&r["name"]).unwrap_or_default();
        match r["kind"].as_str().unwrap_or("") {
            "ReplicaSet" => {
                let hash = labels.iter().find(|(k, _)| k == "pod-template-hash").map(|(_, v)| v.as_str());
                let deployment = hash.and_then(|h| name.strip_suffix(h)).and_then(|n| n.strip_suffix('-')).filter(|d| !d.is_empty());
                let deployment = deployment.map(str::to_owned);
                owners.push((attr::K8S_REPLICASET_NAME, name));
                if let Some(d) = deployment {
                    owners.push((attr::K8S_DEPLOYMENT_NAME, d));
                }
            }
            "DaemonSet" => owners.push((attr::K8S_DAEMONSET_NAME, name)),
            "StatefulSet" => owners.push((attr::K8S_STATEFULSET_NAME, name)),
            "Job" => {
                let cronjob = name
                    .rsplit_once('-')
                    .filter(|(c, d)| !c.is_empty() && d.len() >= 8 && d.bytes().all(|b| b.is_ascii_digit()))
                    .map(|(c, _)| c.to_owned());
                owners.push((attr::K8S_JOB_NAME, name));
                if let Some(c) = cronjob {
                    owners.push((attr::K8S_CRONJOB_NAME, c));
                }
            }
            _ => {}
        }
    }
    Some(PodMeta { uid, name: s(&md["name"]).unwrap_or_default(), namespace: s(&md["namespace"]).unwrap_or_default(), labels, owners })
}

/// A pod list answer -> pods and the list's resourceVersion.
pub fn parse_list(body: &[u8]) -> Result<(Vec<PodMeta>, String), LookupError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| LookupError::Decode(e.to_string()))?;
    let rv = v["metadata"]["resourceVersion"].as_str().ok_or_else(|| LookupError::Decode("list without resourceVersion".into()))?;
    let pods = v["items"].as_array().map(|items| items.iter().filter_map(pod_from_json).collect()).unwrap_or_default();
    Ok((pods, rv.to_owned()))
}

#[derive(Debug)]
enum WatchEnd {
    /// The resourceVersion is too old: list again.
    Gone,
    Failed(LookupError),
}

impl From<LookupError> for WatchEnd {
    fn from(e: LookupError) -> Self {
        WatchEnd::Failed(e)
    }
}

async fn list(s: &Settings) -> Result<(Vec<PodMeta>, String), LookupError> {
    let target = s.target()?;
    let token = s.token();
    let resp = tokio::time::timeout(s.timeout, http::get(&target, &s.pods_path(None), token.as_deref()))
        .await
        .map_err(|_| LookupError::Timeout)??;
    match resp.status().as_u16() {
        200 => {}
        404 => return Err(LookupError::NotFound),
        other => return Err(LookupError::Http(other)),
    }
    // A list can be large: give the body ten times the request timeout.
    let body = tokio::time::timeout(s.timeout * 10, http::body(resp, MAX_LIST_BYTES)).await.map_err(|_| LookupError::Timeout)??;
    parse_list(&body)
}

/// Apply one watch event line; `Err(Gone)` when the server says 410.
fn apply_event(line: &[u8], rv: &mut String, store: &PodStore, epoch: &AtomicU64) -> Result<(), WatchEnd> {
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| LookupError::Decode(e.to_string()))?;
    let obj = &v["object"];
    let new_rv = obj["metadata"]["resourceVersion"].as_str().map(str::to_owned);
    match v["type"].as_str().unwrap_or("") {
        "ADDED" | "MODIFIED" => {
            if let Some(p) = pod_from_json(obj) {
                if store.upsert(p) {
                    epoch.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
        "DELETED" => {
            if let Some(uid) = obj["metadata"]["uid"].as_str() {
                store.delete(uid.to_owned(), Instant::now());
            }
        }
        "BOOKMARK" => {}
        "ERROR" => {
            let code = obj["code"].as_u64().unwrap_or(0);
            return Err(if code == 410 { WatchEnd::Gone } else { WatchEnd::Failed(LookupError::Http(code as u16)) });
        }
        other => return Err(WatchEnd::Failed(LookupError::Decode(format!("unknown watch event type `{other}`")))),
    }
    if let Some(r) = new_rv {
        *rv = r;
    }
    Ok(())
}

async fn watch(s: &Settings, rv: &mut String, store: &PodStore, epoch: &AtomicU64) -> Result<(), WatchEnd> {
    use http_body_util::BodyExt;
    let target = s.target()?;
    let token = s.token();
    let resp = tokio::time::timeout(s.timeout, http::get(&target, &s.pods_path(Some(rv)), token.as_deref()))
        .await
        .map_err(|_| LookupError::Timeout)??;
    match resp.status().as_u16() {
        200 => {}
        410 => return Err(WatchEnd::Gone),
        other => return Err(WatchEnd::Failed(LookupError::Http(other))),
    }
    store.set_error(None);
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let idle = Duration::from_secs(WATCH_TIMEOUT_S + 30);
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(WatchEnd::Failed(LookupError::Timeout)),
            Ok(None) => return Ok(()),
            Ok(Some(f)) => f.map_err(|e| LookupError::Io(format!("watch stream: {e}")))?,
        };
        let Ok(data) = frame.into_data() else { continue };
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            apply_event(&line, rv, store, epoch)?;
        }
        if buf.len() > MAX_EVENT_BYTES {
            return Err(WatchEnd::Failed(LookupError::Decode(format!("watch event over {MAX_EVENT_BYTES} bytes"))));
        }
    }
}

/// List and watch until `stop`.
pub async fn run(s: Settings, store: Arc<PodStore>, epoch: Arc<AtomicU64>, stats: Arc<MetadataStats>, stop: CancellationToken) {
    let mut rv: Option<String> = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = Instant::now();
        let attempt = async {
            if rv.is_none() {
                stats.k8s_lists.fetch_add(1, Ordering::Relaxed);
                let (pods, v) = list(&s).await?;
                tracing::info!(pods = pods.len(), node = %s.node, "Kubernetes pods listed");
                store.replace(pods);
                epoch.fetch_add(1, Ordering::AcqRel);
                rv = Some(v);
            }
            match rv.as_mut() {
                Some(v) => watch(&s, v, &store, &epoch).await,
                None => Ok(()),
            }
        };
        let end = tokio::select! {
            r = attempt => r,
            _ = stop.cancelled() => return,
        };
        let wait = match end {
            Ok(()) if started.elapsed() >= BACKOFF_MIN => {
                backoff = BACKOFF_MIN;
                None
            }
            Ok(()) => Some(backoff),
            Err(WatchEnd::Gone) => {
                tracing::info!("Kubernetes watch expired (410 Gone): listing again");
                rv = None;
                None
            }
            Err(WatchEnd::Failed(e)) => {
                stats.k8s_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(retry_in = ?backoff, "Kubernetes pod watch failed: {e}");
                store.set_error(Some(e.reason()));
                epoch.fetch_add(1, Ordering::AcqRel);
                Some(backoff)
            }
        };
        if let Some(w) = wait {
            backoff = (backoff * 2).min(BACKOFF_MAX);
            tokio::select! {
                _ = tokio::time::sleep(w) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str, node: &str) -> KubernetesConfig {
        KubernetesConfig { api_url: url.into(), node_name: node.into(), ..KubernetesConfig::default() }
    }

    #[test]
    fn settings_from_config_and_environment() {
        let env = |k: &str| match k {
            "KUBERNETES_SERVICE_HOST" => Some("fd00::1".to_owned()),
            "KUBERNETES_SERVICE_PORT" => Some("6443".to_owned()),
            "K8S_NODE_NAME" => Some("node-a".to_owned()),
            _ => None,
        };
        let s = Settings::from_config(&cfg("", ""), Duration::from_secs(1), env).expect("in-cluster");
        assert_eq!((s.host.as_str(), s.port, s.https, s.node()), ("fd00::1", 6443, true, "node-a"));
        let s = Settings::from_config(&cfg("http://127.0.0.1:8080/k8s/", "n 1"), Duration::from_secs(1), |_| None).expect("explicit");
        assert_eq!((s.host.as_str(), s.port, s.https), ("127.0.0.1", 8080, false));
        assert_eq!(s.pods_path(None), "/k8s/api/v1/pods?fieldSelector=spec.nodeName%3Dn%201&resourceVersion=0");
        assert!(s.pods_path(Some("42")).ends_with("&resourceVersion=42"));
        assert!(Settings::from_config(&cfg("", "n"), Duration::from_secs(1), |_| None).is_err(), "no API server");
        assert!(Settings::from_config(&cfg("http://h", ""), Duration::from_secs(1), |_| None).is_err(), "no node");
    }

    #[test]
    fn owners_from_references_and_naming_conventions() {
        let pod = |kind: &str, name: &str, hash: Option<&str>| {
            let labels = match hash {
                Some(h) => serde_json::json!({"app": "web", "pod-template-hash": h}),
                None => serde_json::json!({"app": "web"}),
            };
            serde_json::json!({"metadata": {"uid": "u1", "name": "p", "namespace": "ns", "labels": labels,
                "ownerReferences": [{"kind": kind, "name": name, "controller": true}]}})
        };
        let p = pod_from_json(&pod("ReplicaSet", "web-5d9f8c7b6", Some("5d9f8c7b6"))).expect("pod");
        assert_eq!(p.owners, [(attr::K8S_REPLICASET_NAME, "web-5d9f8c7b6".to_owned()), (attr::K8S_DEPLOYMENT_NAME, "web".to_owned())]);
        assert_eq!(p.labels[0], ("app".to_owned(), "web".to_owned()));
        let p = pod_from_json(&pod("ReplicaSet", "standalone", Some("abc"))).expect("pod");
        assert_eq!(p.owners, [(attr::K8S_REPLICASET_NAME, "standalone".to_owned())], "no hash suffix: no deployment");
        let p = pod_from_json(&pod("Job", "backup-28930140", None)).expect("pod");
        assert_eq!(p.owners, [(attr::K8S_JOB_NAME, "backup-28930140".to_owned()), (attr::K8S_CRONJOB_NAME, "backup".to_owned())]);
        let p = pod_from_json(&pod("Job", "migrate-1", None)).expect("pod");
        assert_eq!(p.owners.len(), 1);
        let p = pod_from_json(&pod("DaemonSet", "vigil", None)).expect("pod");
        assert_eq!(p.owners, [(attr::K8S_DAEMONSET_NAME, "vigil".to_owned())]);
        assert!(pod_from_json(&serde_json::json!({"metadata": {"name": "x"}})).is_none(), "no uid");
    }

    #[test]
    fn watch_events_update_the_store() {
        let store = PodStore::default();
        let epoch = AtomicU64::new(0);
        assert_eq!(store.get("u1"), Lookup::Pending("not_synced"));
        store.replace(Vec::new());
        assert_eq!(store.get("u1"), Lookup::Pending("not_yet_seen"));
        let mut rv = "1".to_owned();
        let added = br#"{"type":"ADDED","object":{"metadata":{"uid":"u1","name":"a","namespace":"n","resourceVersion":"5"}}}"#;
        apply_event(added, &mut rv, &store, &epoch).expect("applies");
        assert_eq!((rv.as_str(), epoch.load(Ordering::Relaxed)), ("5", 1));
        let status_only =
            br#"{"type":"MODIFIED","object":{"metadata":{"uid":"u1","name":"a","namespace":"n","resourceVersion":"6"},"status":{"phase":"Running"}}}"#;
        apply_event(status_only, &mut rv, &store, &epoch).expect("applies");
        assert_eq!((rv.as_str(), epoch.load(Ordering::Relaxed)), ("6", 1), "a status change is not a metadata change");
        assert_eq!(store.get("u1").ready().map(|p| p.name.as_str()), Some("a"));
        let bookmark = br#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}"#;
        apply_event(bookmark, &mut rv, &store, &epoch).expect("applies");
        assert_eq!(rv, "9");
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","code":410}}"#;
        assert!(matches!(apply_event(gone, &mut rv, &store, &epoch), Err(WatchEnd::Gone)));
        store.set_error(Some("http_500".into()));
        assert_eq!(store.get("u2"), Lookup::Unavailable("http_500".into()));
        assert!(store.get("u1").ready().is_some(), "known pods stay known while the API fails");
    }
}
