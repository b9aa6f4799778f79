//! Configuration: one validated [`Config`] from defaults, a file, the
//! environment and the command line.
//!
//! Precedence, lowest first:
//! 1. built-in defaults (documented in `vigil.example.toml`);
//! 2. the configuration file (`--config FILE` or `VIGIL_CONFIG`);
//! 3. the standard `OTEL_EXPORTER_OTLP_*` variables (endpoint, protocol,
//!    headers, timeout, compression; the `_LOGS_` forms win over the
//!    generic ones; `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` sets the full
//!    OTLP/HTTP traces URL);
//! 4. `VIGIL_*` variables, nested keys joined with `__`
//!    (`VIGIL_PROBES__RINGBUF_KIB=64` sets `probes.ringbuf_kib`);
//! 5. command-line flags.
//!
//! Unknown keys and bad values are errors that name the key; the binary
//! turns them into exit code 2 before anything is loaded into the kernel.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// A configuration problem, naming the key at fault.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file or environment could not be parsed or had unknown keys.
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value is out of its allowed range.
    #[error("configuration key `{key}`: {message}")]
    Invalid {
        /// dotted key, e.g. `probes.ringbuf_kib`
        key: String,
        /// what is wrong and what is allowed
        message: String,
    },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_owned(), message: message.into() }
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// OTLP/gRPC (default port 4317).
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318).
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl Protocol {
    /// Parse the `OTEL_EXPORTER_OTLP_PROTOCOL` spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "grpc" => Some(Protocol::Grpc),
            "http/protobuf" | "http" => Some(Protocol::HttpProtobuf),
            _ => None,
        }
    }
}

/// Console output format when no endpoint is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StdoutFormat {
    /// One readable line per record.
    Text,
    /// One OTLP/JSON `ExportLogsServiceRequest` or `ExportTraceServiceRequest`
    /// per line (the Collector file exporter's format).
    OtlpJson,
}

/// Kernel probe settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbesConfig {
    /// Largest argv area captured per exec, in bytes (cut beyond, with argc
    /// still exact). 1..=65536, default 16384.
    pub args_max_bytes: u32,
    /// Size in KiB of the critical lane's ring buffer (process lifecycle,
    /// privilege, fileless, kernel records); a power of two, at least 4 (one
    /// page). Default 8192.
    pub ringbuf_kib: u32,
    /// Size in KiB of the bulk lane's ring buffer (file and network
    /// records), same rules. A flood of bulk records fills only this one.
    /// Default 8192.
    pub bulk_ringbuf_kib: u32,
    /// Force a consumer wake-up every N records per CPU and lane (records
    /// are otherwise submitted without wake-up and drained on a timer). A
    /// wake-up is an interrupt (a VM exit in a guest: ~20 us measured here),
    /// so small values cost the producers. Default 1024.
    pub wakeup_every: u32,
    /// How often the ring buffers are drained while records arrive, in
    /// milliseconds (records submitted without a wake-up wait at most this
    /// long; the export batch waits up to `export.batch_timeout_ms`, 200,
    /// anyway).
    /// Default 25: each drain wakes the pipeline's threads, and at a steady
    /// few thousand records a second 10 ms cost ~30% more of vigil's CPU
    /// (docs/performance.md).
    pub poll_interval_ms: u64,
    /// The longest drain interval when the rings are idle, in milliseconds:
    /// after each drain that found nothing the interval doubles, from
    /// `poll_interval_ms` up to this, and the first record found brings it
    /// back (so an idle agent wakes ~10 times a second, not 100; a lone
    /// record after a quiet spell waits at most this long). At or below
    /// `poll_interval_ms`: no backoff. Default 100.
    pub idle_poll_interval_ms: u64,
    /// Bytes kept of each resolved path (executable, working directory: the
    /// leaf end) and of the exec filename (the start); longer values are cut
    /// and flagged, with their exact original size.
    /// [`PATH_MAX_BYTES_MIN`]..=4096, default 4096.
    pub path_max_bytes: u32,
    /// File events (open/creat of files for writing, creating or
    /// truncating; reads under `file_read_prefixes`; unlink, rename, chmod,
    /// chown, truncate). Default on.
    pub file: bool,
    /// Opens for reading are reported when the kernel-resolved absolute
    /// path starts with one of these (at most [`READ_PREFIXES_MAX`], each
    /// absolute and at most [`READ_PREFIX_LEN_MAX`] bytes). Matching is done
    /// in the kernel. Empty: no read opens are reported.
    pub file_read_prefixes: Vec<String>,
    /// Fileless-execution events (memfd_create). Executions of a memfd or a
    /// deleted file are always marked on the exec record. Default on.
    pub fileless: bool,
    /// Privilege events: setuid family, capset (old and new credentials),
    /// unshare and setns (namespaces before and after). Default on.
    pub privilege: bool,
    /// Network events: connect, accept, bind, listen on IPv4/IPv6 sockets,
    /// connects of unix sockets. Default on.
    pub network: bool,
    /// Kernel events: bpf() loads and attachments, module loading, ptrace,
    /// mount and umount. Default on.
    pub kernel: bool,
    /// Use BPF-LSM / fentry hooks where the kernel allows them, falling back
    /// to syscall tracepoints. Default on.
    pub prefer_lsm: bool,
    /// Turn on the kernel's BPF run-time statistics while vigil runs, so
    /// heartbeats and `/metrics` report each program's runs and time
    /// (needs `CAP_SYS_ADMIN`). Off by default: the kernel then reads the
    /// clock twice around every run of every BPF program on the host
    /// (measured here: ~4% of an open storm's time).
    pub run_time_stats: bool,
    /// Read kernel objects on the hot paths (path walks, descriptor
    /// lookups) with direct loads where the kernel allows them (Linux 6.2+,
    /// `bpf_rdonly_cast`); off forces `bpf_probe_read_kernel` everywhere,
    /// as on older kernels (slower; for diagnosis). Default on.
    pub direct_loads: bool,
}

/// Most entries of `probes.file_read_prefixes` (the kernel's table size).
pub const READ_PREFIXES_MAX: usize = 8;
/// Longest entry of `probes.file_read_prefixes`, in bytes.
pub const READ_PREFIX_LEN_MAX: usize = 64;

/// Smallest `probes.path_max_bytes` (the probes clamp to the same bound,
/// `VIGIL_PATH_MIN` in kernel-probes/include/maps.bpf.h).
pub const PATH_MAX_BYTES_MIN: u32 = 64;

impl Default for ProbesConfig {
    fn default() -> Self {
        ProbesConfig {
            args_max_bytes: crate::abi::ARGS_DEFAULT as u32,
            ringbuf_kib: 8192,
            bulk_ringbuf_kib: 8192,
            wakeup_every: 1024,
            poll_interval_ms: 25,
            idle_poll_interval_ms: 100,
            path_max_bytes: crate::abi::PATH_MAX as u32,
            file: true,
            file_read_prefixes: ["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/root/.ssh/"].map(str::to_owned).to_vec(),
            fileless: true,
            privilege: true,
            kernel: true,
            network: true,
            prefer_lsm: true,
            run_time_stats: false,
            direct_loads: true,
        }
    }
}

/// Pipeline settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Records the receiver can hand on before it must count drops.
    pub queue_records: usize,
    /// Slots of that queue that bulk records may not take: the receiver
    /// queues a bulk record only while more than this many are free, so
    /// critical records always find room after a bulk flood. At most half
    /// the queue is reserved ([`PipelineConfig::effective_reserve`]).
    pub critical_queue_reserve: usize,
    /// Processes tracked at most.
    pub process_table_max: usize,
}

impl PipelineConfig {
    /// The reserve in force: `critical_queue_reserve`, but at most half of
    /// `queue_records` (so a small queue still takes bulk records).
    pub fn effective_reserve(&self) -> usize {
        self.critical_queue_reserve.min(self.queue_records / 2)
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { queue_records: 65536, critical_queue_reserve: 8192, process_table_max: 131_072 }
    }
}

/// In-kernel exclusion filters (docs/overload.md). Excluded records are
/// counted per reason (heartbeats), never numbered, never reported as loss.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FiltersConfig {
    /// cgroup v2 directories whose tasks (the whole subtree) are excluded:
    /// paths relative to the cgroup2 mount (`system.slice/foo.service`),
    /// absolute paths under it, or numeric cgroup ids. At most
    /// [`FILTER_IDS_MAX`]; each must exist at start-up.
    pub exclude_cgroups: Vec<String>,
    /// Processes whose kernel-resolved executable path starts with one of
    /// these are excluded (and their children until they exec something
    /// else). At most [`FILTER_PREFIXES_MAX`], absolute, each at most
    /// [`FILTER_PREFIX_LEN_MAX`] bytes.
    pub exclude_exe_prefixes: Vec<String>,
    /// File records whose path starts with one of these are excluded; same
    /// limits.
    pub exclude_file_prefixes: Vec<String>,
    /// Tasks with one of these real uids are excluded. At most
    /// [`FILTER_IDS_MAX`].
    pub exclude_uids: Vec<u32>,
}

/// Per-process rate limit of bulk records, applied in the kernel
/// (docs/overload.md). Records over the budget are not output but counted
/// per process and event type and reported as `vigil.telemetry.suppressed`
/// summary records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Bulk records per second one process may produce, sustained
    /// (0: no limit). Default 1000000: generous, it only caps a runaway
    /// process; set it lower to shed a flooding process's detail early.
    pub bulk_per_process_rate: u64,
    /// Bulk records one process may produce at once above the rate
    /// (1..=100000000 when the rate is set). Default 1000000.
    pub bulk_per_process_burst: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig { bulk_per_process_rate: 1_000_000, bulk_per_process_burst: 1_000_000 }
    }
}

/// What vigil does about loss (docs/overload.md), visible to the backend as
/// `vigil.policy` on the resource and on every loss record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// Drop bulk records first (lanes, queue reserve) and report every loss.
    Shed,
    /// As `shed`, and loss records are raised to ERROR and the alert hook
    /// (command and/or webhook) runs.
    Alert,
    /// Where BPF-LSM is available, deny an exec when its record could not be
    /// recorded in the critical lane; elsewhere vigil refuses to start
    /// unless `policy.allow_degraded` is set.
    FailClosed,
}

impl PolicyMode {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Shed => "shed",
            PolicyMode::Alert => "alert",
            PolicyMode::FailClosed => "fail_closed",
        }
    }
}

/// The drop policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// `shed` (default), `alert` or `fail_closed`.
    pub mode: PolicyMode,
    /// `alert`: a program and its arguments, run (never awaited by the
    /// pipeline) when records are lost; the loss is described in its
    /// environment (`VIGIL_LOSS_COUNT`, `VIGIL_LOSS_SUMMARY`). Empty: none.
    pub alert_command: Vec<String>,
    /// `alert`: an `http://` URL that gets a JSON POST when records are
    /// lost. Empty: none.
    pub alert_webhook: String,
    /// `alert`: the hook runs at most once per this many seconds
    /// (1..=86400); losses in between are summed into the next run.
    pub alert_min_interval_s: u64,
    /// `fail_closed` where the kernel does not allow it (no BPF-LSM): run
    /// anyway, in `shed` mode, saying so (default: refuse to start).
    pub allow_degraded: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            mode: PolicyMode::Shed,
            alert_command: Vec::new(),
            alert_webhook: String::new(),
            alert_min_interval_s: 60,
            allow_degraded: false,
        }
    }
}

/// Most exe prefixes, and most file prefixes (`VIGIL_FILTER_PREFIXES`).
pub const FILTER_PREFIXES_MAX: usize = 8;
/// Longest filter prefix in bytes (`VIGIL_FILTER_PREFIX_LEN`).
pub const FILTER_PREFIX_LEN_MAX: usize = 64;
/// Most excluded cgroups, and most excluded uids (`VIGIL_FILTER_IDS_MAX`).
pub const FILTER_IDS_MAX: usize = 64;

/// Process lifetimes as spans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpansConfig {
    /// Export one span per executed program image.
    pub enabled: bool,
    /// Long-lived images are cut into segments of this many seconds
    /// (10..=86400), each linked to the previous one.
    pub max_duration_s: u64,
    /// A process killed by a signal gets span status ERROR.
    pub error_on_signal: bool,
    /// Children of these programs (by executable base name) start new
    /// traces; so do children of pid 1, session leaders and container init.
    pub root_daemons: Vec<String>,
    /// Where open spans are saved at shutdown, so a process that exits while
    /// vigil is stopped gets a synthetic end (`exit_lost`) at the next start.
    /// Empty: not saved.
    pub state_path: String,
}

impl Default for SpansConfig {
    fn default() -> Self {
        SpansConfig {
            enabled: true,
            max_duration_s: 300,
            error_on_signal: true,
            root_daemons: ["systemd", "init", "sshd", "cron", "crond", "containerd-shim", "containerd-shim-runc-v2", "runc"]
                .into_iter()
                .map(String::from)
                .collect(),
            state_path: "/var/lib/vigil/open-spans.json".into(),
        }
    }
}

/// The agent's own records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Seconds between `vigil.telemetry.heartbeat` records (1..=3600).
    pub heartbeat_interval_s: u64,
    /// Length of a loss window in milliseconds: losses are summed and
    /// reported once per window (100..=60000).
    pub loss_window_ms: u64,
    /// Seconds between exports of vigil's own metrics (OpenTelemetry SDK,
    /// same endpoint as the data; 1..=3600).
    pub metrics_interval_s: u64,
    /// Seconds between reconciliations of the process table with /proc
    /// (5..=3600); also run early (at most every 5 s) after a sequence gap.
    pub reconcile_interval_s: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { heartbeat_interval_s: 10, loss_window_ms: 1000, metrics_interval_s: 10, reconcile_interval_s: 30 }
    }
}

/// Export settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// OTLP endpoint. Empty: print to stdout. For gRPC `http://host:4317`;
    /// for HTTP the base URL (`/v1/logs` is appended) unless
    /// `logs_endpoint_is_full` is set (the `_LOGS_ENDPOINT` variable).
    pub endpoint: String,
    /// The endpoint already names the logs path (HTTP).
    pub logs_endpoint_is_full: bool,
    /// Full OTLP/HTTP traces URL (the `_TRACES_ENDPOINT` variable). Empty:
    /// derived from `endpoint` (see [`Config::traces_url`]). gRPC sends
    /// spans to `endpoint`, over the logs channel, and ignores it.
    pub traces_endpoint: String,
    /// `grpc` or `http/protobuf`.
    pub protocol: Protocol,
    /// Extra request headers (gRPC metadata).
    pub headers: BTreeMap<String, String>,
    /// Compress requests with gzip.
    pub gzip: bool,
    /// Per-request timeout, milliseconds.
    pub timeout_ms: u64,
    /// Records per export request at most.
    pub batch_max_records: usize,
    /// Encoded bytes per export request at most (uncompressed); gRPC
    /// servers commonly refuse messages over 4 MiB.
    pub batch_max_bytes: usize,
    /// A partial batch is sent after this many milliseconds.
    pub batch_timeout_ms: u64,
    /// On shutdown, how long the exporter may keep sending.
    pub shutdown_deadline_ms: u64,
    /// First wait before retrying a retryable failure, milliseconds; each
    /// further wait doubles, up to `retry_max_backoff_ms`, and is jittered
    /// (drawn from the upper half). A server-requested delay (gRPC
    /// RetryInfo, HTTP Retry-After) replaces it.
    pub retry_initial_backoff_ms: u64,
    /// Cap of the backoff between attempts, milliseconds.
    pub retry_max_backoff_ms: u64,
    /// How long one batch is retried at most, milliseconds (from its first
    /// attempt); then it goes to the spool.
    pub retry_max_elapsed_ms: u64,
    /// Console format when `endpoint` is empty.
    pub stdout_format: StdoutFormat,
    /// TLS to the collector (used by `https://` endpoints).
    pub tls: TlsConfig,
}

/// TLS settings of the export connection (`[export.tls]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM CA certificate(s) that sign the collector's certificate. Empty:
    /// the system trust store. (`OTEL_EXPORTER_OTLP_CERTIFICATE`)
    pub ca_file: String,
    /// PEM client certificate (chain) for mutual TLS; needs `key_file`.
    /// (`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`)
    pub cert_file: String,
    /// PEM private key of `cert_file`. (`OTEL_EXPORTER_OTLP_CLIENT_KEY`)
    pub key_file: String,
    /// Verify the collector's certificate for this name (and send it in
    /// SNI) instead of the endpoint's host. Empty: the endpoint's host.
    pub server_name: String,
    /// An endpoint given without a scheme (`collector:4317`) is plaintext
    /// `http://` when true, `https://` when false (the OTLP specification's
    /// `OTEL_EXPORTER_OTLP_INSECURE`). An explicit scheme always decides.
    pub insecure: bool,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            endpoint: String::new(),
            logs_endpoint_is_full: false,
            traces_endpoint: String::new(),
            protocol: Protocol::Grpc,
            headers: BTreeMap::new(),
            gzip: true,
            timeout_ms: 10_000,
            batch_max_records: 512,
            batch_max_bytes: 2 << 20,
            batch_timeout_ms: 200,
            shutdown_deadline_ms: 5_000,
            retry_initial_backoff_ms: 100,
            retry_max_backoff_ms: 5_000,
            retry_max_elapsed_ms: 10_000,
            stdout_format: StdoutFormat::Text,
            tls: TlsConfig::default(),
        }
    }
}

impl ExportConfig {
    /// Give scheme-less endpoints (`host:port`) their scheme: `http://`
    /// when `tls.insecure`, else `https://`.
    pub fn add_schemes(&mut self) {
        let scheme = if self.tls.insecure { "http://" } else { "https://" };
        for url in [&mut self.endpoint, &mut self.traces_endpoint] {
            let t = url.trim();
            if !t.is_empty() && !t.contains("://") {
                *url = format!("{scheme}{t}");
            }
        }
    }

    /// Whether the endpoint is `https://`.
    pub fn uses_tls(&self) -> bool {
        self.endpoint.to_ascii_lowercase().starts_with("https://")
    }

    /// Per-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// The on-disk spool of requests the collector could not accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Directory of the spool segments. Empty: no spool (requests that
    /// cannot be delivered are counted as lost, `export_failed`).
    pub path: String,
    /// Bytes the spool may hold at most (4 MiB..=1 TiB); the oldest bulk,
    /// then the oldest critical segments make room (`spool_full`).
    pub max_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig { path: "/var/lib/vigil/spool".into(), max_bytes: 256 << 20 }
    }
}

/// The health endpoint (`/healthz`, `/readyz`, `/metrics`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Address (`ip:port`) of the HTTP health endpoint. Empty: disabled.
    pub listen: String,
    /// `/readyz` answers 503 once exports have been failing, without a
    /// success in between, for longer than this many seconds (1..=3600).
    pub unready_after_s: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig { listen: "127.0.0.1:9464".into(), unready_after_s: 30 }
    }
}

/// The Docker Engine API lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// Ask Docker (or Podman's compatible API) for container names and images.
    pub enabled: bool,
    /// Its unix socket.
    pub socket: String,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig { enabled: false, socket: "/var/run/docker.sock".into() }
    }
}

/// The CRI (containerd, CRI-O) lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CriConfig {
    /// Ask the CRI runtime for container names, images and pod labels.
    pub enabled: bool,
    /// Its unix socket.
    pub socket: String,
}

impl Default for CriConfig {
    fn default() -> Self {
        CriConfig { enabled: false, socket: "/run/containerd/containerd.sock".into() }
    }
}

/// The Kubernetes API lookup (pods of this node, list + watch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesConfig {
    /// Watch the pods of this node for names, namespaces, labels and owners.
    pub enabled: bool,
    /// API server base URL. Empty: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
    pub api_url: String,
    /// Bearer token file (the pod's service account). Empty: no token.
    pub token_path: String,
    /// CA bundle for an https API URL. Empty: TLS is refused (no system roots).
    pub ca_path: String,
    /// Node whose pods are watched. Empty: `K8S_NODE_NAME` (downward API).
    pub node_name: String,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            enabled: false,
            api_url: String::new(),
            token_path: "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
            ca_path: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt".into(),
            node_name: String::new(),
        }
    }
}

/// Optional metadata lookups (all off by default); see `metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataConfig {
    /// Each lookup (one HTTP or gRPC call) is given up after this many
    /// milliseconds (10..=60000).
    pub timeout_ms: u64,
    /// Container entries cached at most (16..=1048576).
    pub cache_max: usize,
    /// A failed container lookup is retried after this many seconds (1..=3600).
    pub negative_ttl_s: u64,
    /// Docker Engine API.
    pub docker: DockerConfig,
    /// CRI (containerd, CRI-O) RuntimeService.
    pub cri: CriConfig,
    /// Kubernetes API.
    pub kubernetes: KubernetesConfig,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            timeout_ms: 2000,
            cache_max: 4096,
            negative_ttl_s: 30,
            docker: DockerConfig::default(),
            cri: CriConfig::default(),
            kubernetes: KubernetesConfig::default(),
        }
    }
}

/// Where user and group names come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersConfig {
    /// The host's passwd file (in a container: the host's, mounted, e.g.
    /// `/host/etc/passwd`). Empty: names are not resolved.
    pub passwd_path: String,
    /// The host's group file. Empty: group names are not resolved.
    pub group_path: String,
}

impl Default for UsersConfig {
    fn default() -> Self {
        UsersConfig { passwd_path: "/etc/passwd".into(), group_path: "/etc/group".into() }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Kernel probes.
    pub probes: ProbesConfig,
    /// Pipeline.
    pub pipeline: PipelineConfig,
    /// Export.
    pub export: ExportConfig,
    /// The on-disk spool.
    pub spool: SpoolConfig,
    /// The agent's own records.
    pub telemetry: TelemetryConfig,
    /// Process spans.
    pub spans: SpansConfig,
    /// In-kernel exclusion filters.
    pub filters: FiltersConfig,
    /// Per-process rate limit of bulk records.
    pub ratelimit: RateLimitConfig,
    /// The drop policy.
    pub policy: PolicyConfig,
    /// The health endpoint.
    pub health: HealthConfig,
    /// Container and pod metadata lookups.
    pub metadata: MetadataConfig,
    /// User and group names.
    pub users: UsersConfig,
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--endpoint`
    pub endpoint: Option<String>,
    /// `--protocol`
    pub protocol: Option<Protocol>,
    /// `--stdout-format`
    pub stdout_format: Option<StdoutFormat>,
    /// `--args-max-bytes`
    pub args_max_bytes: Option<u32>,
    /// `--ringbuf-kib`
    pub ringbuf_kib: Option<u32>,
}

/// Parse `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`, values percent-encoded).
pub fn parse_headers(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| format!("`{pair}` is not key=value"))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("`{pair}` has an empty key"));
        }
        out.insert(k.to_owned(), percent_decode(v.trim()).ok_or_else(|| format!("`{v}` has a bad percent escape"))?);
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `OTEL_EXPORTER_OTLP_*` settings found in `env`, as config key/values.
fn otel_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, config::Value)>, ConfigError> {
    let get = |logs: &str, generic: &str| env(logs).map(|v| (logs.to_owned(), v)).or_else(|| env(generic).map(|v| (generic.to_owned(), v)));
    let non_empty = |var: &str| env(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let mut out: Vec<(String, config::Value)> = Vec::new();
    let generic = non_empty("OTEL_EXPORTER_OTLP_ENDPOINT");
    let logs = non_empty("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT");
    match (&logs, &generic) {
        (Some(v), _) => {
            out.push(("export.endpoint".into(), v.as_str().into()));
            out.push(("export.logs_endpoint_is_full".into(), true.into()));
        }
        (None, Some(v)) => out.push(("export.endpoint".into(), v.as_str().into())),
        (None, None) => {}
    }
    if let Some(v) = non_empty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        out.push(("export.traces_endpoint".into(), v.into()));
    } else if let (Some(_), Some(base)) = (&logs, &generic) {
        // The logs variable replaced the generic endpoint; spans still go
        // where the generic one says (the OTLP exporter specification).
        out.push(("export.traces_endpoint".into(), format!("{}/v1/traces", base.trim_end_matches('/')).into()));
    }
    if let Some((var, v)) = get("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") {
        let p = Protocol::parse(&v).ok_or_else(|| invalid(&var, format!("`{v}` is not supported (use grpc or http/protobuf)")))?;
        out.push(("export.protocol".into(), if p == Protocol::Grpc { "grpc" } else { "http/protobuf" }.into()));
    }
    if let Some((var, v)) = get("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS") {
        let headers = parse_headers(&v).map_err(|e| invalid(&var, e))?;
        for (k, v) in headers {
            out.push((format!("export.headers.{k}"), v.into()));
        }
    }
    if let Some((var, v)) = get("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT") {
        let ms: u64 = v.trim().parse().map_err(|_| invalid(&var, format!("`{v}` is not a number of milliseconds")))?;
        out.push(("export.timeout_ms".into(), ms.into()));
    }
    if let Some((var, v)) = get("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION") {
        let gzip = match v.trim() {
            "gzip" => true,
            "none" => false,
            other => return Err(invalid(&var, format!("`{other}` is not supported (use gzip or none)"))),
        };
        out.push(("export.gzip".into(), gzip.into()));
    }
    for (suffix, key) in [("CERTIFICATE", "ca_file"), ("CLIENT_CERTIFICATE", "cert_file"), ("CLIENT_KEY", "key_file")] {
        if let Some((_, v)) = get(&format!("OTEL_EXPORTER_OTLP_LOGS_{suffix}"), &format!("OTEL_EXPORTER_OTLP_{suffix}")) {
            out.push((format!("export.tls.{key}"), v.trim().into()));
        }
    }
    if let Some((var, v)) = get("OTEL_EXPORTER_OTLP_LOGS_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE") {
        let insecure = match v.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            other => return Err(invalid(&var, format!("`{other}` is not true or false"))),
        };
        out.push(("export.tls.insecure".into(), insecure.into()));
    }
    Ok(out)
}

impl Config {
    /// Load from an optional file, the given environment and overrides, and
    /// validate. `env` is injectable so tests do not touch the process
    /// environment.
    pub fn load(file: Option<&Path>, env: &[(String, String)], overrides: &Overrides) -> Result<Self, ConfigError> {
        let lookup = |k: &str| env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.clone());
        let mut b = config::Config::builder();
        if let Some(path) = file {
            if !path.exists() {
                return Err(invalid("--config", format!("file {} does not exist", path.display())));
            }
            b = b.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        for (k, v) in otel_env(&lookup)? {
            b = b.set_override(k, v)?;
        }
        // VIGIL_* after OTEL_*: both are overrides, and a later override of
        // the same key wins, which gives the documented precedence.
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("VIGIL_") else { continue };
            if k == "VIGIL_CONFIG" || k == "VIGIL_LOG" || k == "VIGIL_LOG_FORMAT" {
                continue;
            }
            b = b.set_override(rest.to_ascii_lowercase().replace("__", "."), v.clone())?;
        }
        let o = overrides;
        b = b.set_override_option("export.endpoint", o.endpoint.clone())?;
        b = b.set_override_option("export.protocol", o.protocol.map(|p| if p == Protocol::Grpc { "grpc" } else { "http/protobuf" }))?;
        b = b.set_override_option(
            "export.stdout_format",
            o.stdout_format.map(|f| match f {
                StdoutFormat::Text => "text",
                StdoutFormat::OtlpJson => "otlp-json",
            }),
        )?;
        b = b.set_override_option("probes.args_max_bytes", o.args_max_bytes.map(u64::from))?;
        b = b.set_override_option("probes.ringbuf_kib", o.ringbuf_kib.map(u64::from))?;
        let mut cfg: Config = b.build()?.try_deserialize()?;
        cfg.export.add_schemes();
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.probes;
        if p.args_max_bytes == 0 || p.args_max_bytes as usize > crate::abi::ARGS_CAP {
            return Err(invalid("probes.args_max_bytes", format!("{} is outside 1..={}", p.args_max_bytes, crate::abi::ARGS_CAP)));
        }
        for (key, kib) in [("probes.ringbuf_kib", p.ringbuf_kib), ("probes.bulk_ringbuf_kib", p.bulk_ringbuf_kib)] {
            if kib < 4 || !kib.is_power_of_two() || kib > 1 << 20 {
                return Err(invalid(key, format!("{kib} must be a power of two between 4 and 1048576")));
            }
        }
        if p.wakeup_every == 0 {
            return Err(invalid("probes.wakeup_every", "must be at least 1"));
        }
        if !(PATH_MAX_BYTES_MIN..=crate::abi::PATH_MAX as u32).contains(&p.path_max_bytes) {
            return Err(invalid(
                "probes.path_max_bytes",
                format!("{} is outside {PATH_MAX_BYTES_MIN}..={}", p.path_max_bytes, crate::abi::PATH_MAX),
            ));
        }
        if p.file_read_prefixes.len() > READ_PREFIXES_MAX {
            return Err(invalid(
                "probes.file_read_prefixes",
                format!("{} entries, at most {READ_PREFIXES_MAX}", p.file_read_prefixes.len()),
            ));
        }
        if let Some(bad) = p.file_read_prefixes.iter().find(|x| !x.starts_with('/') || x.len() > READ_PREFIX_LEN_MAX) {
            return Err(invalid(
                "probes.file_read_prefixes",
                format!("{bad:?} must be an absolute path of at most {READ_PREFIX_LEN_MAX} bytes"),
            ));
        }
        let f = &self.filters;
        for (key, list) in
            [("filters.exclude_exe_prefixes", &f.exclude_exe_prefixes), ("filters.exclude_file_prefixes", &f.exclude_file_prefixes)]
        {
            if list.len() > FILTER_PREFIXES_MAX {
                return Err(invalid(key, format!("{} entries, at most {FILTER_PREFIXES_MAX}", list.len())));
            }
            if let Some(bad) = list.iter().find(|x| !x.starts_with('/') || x.len() > FILTER_PREFIX_LEN_MAX) {
                return Err(invalid(key, format!("{bad:?} must be an absolute path of at most {FILTER_PREFIX_LEN_MAX} bytes")));
            }
        }
        if f.exclude_cgroups.len() > FILTER_IDS_MAX {
            return Err(invalid("filters.exclude_cgroups", format!("{} entries, at most {FILTER_IDS_MAX}", f.exclude_cgroups.len())));
        }
        if let Some(bad) = f.exclude_cgroups.iter().find(|c| c.trim().is_empty()) {
            return Err(invalid("filters.exclude_cgroups", format!("{bad:?} is empty (use a cgroup path or id)")));
        }
        if f.exclude_uids.len() > FILTER_IDS_MAX {
            return Err(invalid("filters.exclude_uids", format!("{} entries, at most {FILTER_IDS_MAX}", f.exclude_uids.len())));
        }
        let pol = &self.policy;
        if !(1..=86_400).contains(&pol.alert_min_interval_s) {
            return Err(invalid("policy.alert_min_interval_s", format!("{} is outside 1..=86400", pol.alert_min_interval_s)));
        }
        if !pol.alert_webhook.is_empty() && !pol.alert_webhook.to_ascii_lowercase().starts_with("http://") {
            return Err(invalid("policy.alert_webhook", format!("`{}` must start with http:// (empty: no webhook)", pol.alert_webhook)));
        }
        if pol.alert_command.first().is_some_and(String::is_empty) {
            return Err(invalid("policy.alert_command", "the program (first element) is empty"));
        }
        let r = &self.ratelimit;
        if r.bulk_per_process_rate > 1_000_000_000 {
            return Err(invalid("ratelimit.bulk_per_process_rate", format!("{} is above 1000000000", r.bulk_per_process_rate)));
        }
        if r.bulk_per_process_rate > 0 && !(1..=100_000_000).contains(&r.bulk_per_process_burst) {
            return Err(invalid("ratelimit.bulk_per_process_burst", format!("{} is outside 1..=100000000", r.bulk_per_process_burst)));
        }
        if !(1..=1000).contains(&p.poll_interval_ms) {
            return Err(invalid("probes.poll_interval_ms", format!("{} is outside 1..=1000", p.poll_interval_ms)));
        }
        if !(1..=1000).contains(&p.idle_poll_interval_ms) {
            return Err(invalid("probes.idle_poll_interval_ms", format!("{} is outside 1..=1000", p.idle_poll_interval_ms)));
        }
        if self.pipeline.queue_records == 0 {
            return Err(invalid("pipeline.queue_records", "must be at least 1"));
        }
        if self.pipeline.process_table_max == 0 {
            return Err(invalid("pipeline.process_table_max", "must be at least 1"));
        }
        let t = &self.telemetry;
        if !(1..=3600).contains(&t.heartbeat_interval_s) {
            return Err(invalid("telemetry.heartbeat_interval_s", format!("{} is outside 1..=3600", t.heartbeat_interval_s)));
        }
        if !(100..=60_000).contains(&t.loss_window_ms) {
            return Err(invalid("telemetry.loss_window_ms", format!("{} is outside 100..=60000", t.loss_window_ms)));
        }
        if !(10..=86_400).contains(&self.spans.max_duration_s) {
            return Err(invalid("spans.max_duration_s", format!("{} is outside 10..=86400", self.spans.max_duration_s)));
        }
        if !(1..=3600).contains(&t.metrics_interval_s) {
            return Err(invalid("telemetry.metrics_interval_s", format!("{} is outside 1..=3600", t.metrics_interval_s)));
        }
        if !(5..=3600).contains(&t.reconcile_interval_s) {
            return Err(invalid("telemetry.reconcile_interval_s", format!("{} is outside 5..=3600", t.reconcile_interval_s)));
        }
        let e = &self.export;
        for (key, url) in [("export.endpoint", &e.endpoint), ("export.traces_endpoint", &e.traces_endpoint)] {
            if url.is_empty() {
                continue;
            }
            let lower = url.to_ascii_lowercase();
            if !lower.starts_with("http://") && !lower.starts_with("https://") {
                return Err(invalid(key, format!("`{url}` must start with http:// or https://")));
            }
        }
        crate::export::tls::check_files(&e.tls).map_err(|(key, message)| invalid(key, message))?;
        if e.batch_max_records == 0 || e.batch_max_records > 100_000 {
            return Err(invalid("export.batch_max_records", format!("{} is outside 1..=100000", e.batch_max_records)));
        }
        if !(65_536..=16 << 20).contains(&e.batch_max_bytes) {
            return Err(invalid("export.batch_max_bytes", format!("{} is outside 65536..=16777216", e.batch_max_bytes)));
        }
        if !(1..=60_000).contains(&e.retry_initial_backoff_ms) {
            return Err(invalid("export.retry_initial_backoff_ms", format!("{} is outside 1..=60000", e.retry_initial_backoff_ms)));
        }
        if !(e.retry_initial_backoff_ms..=600_000).contains(&e.retry_max_backoff_ms) {
            return Err(invalid(
                "export.retry_max_backoff_ms",
                format!(
                    "{} is outside retry_initial_backoff_ms..=600000 ({}..=600000)",
                    e.retry_max_backoff_ms, e.retry_initial_backoff_ms
                ),
            ));
        }
        if e.retry_max_elapsed_ms > 3_600_000 {
            return Err(invalid("export.retry_max_elapsed_ms", format!("{} is outside 0..=3600000", e.retry_max_elapsed_ms)));
        }
        if e.timeout_ms == 0 {
            return Err(invalid("export.timeout_ms", "must be at least 1"));
        }
        for k in e.headers.keys() {
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(invalid(&format!("export.headers.{k}"), "header names may hold only letters, digits, '-' and '_'"));
            }
        }
        if !(4 << 20..=1 << 40).contains(&self.spool.max_bytes) {
            return Err(invalid("spool.max_bytes", format!("{} is outside 4194304..=1099511627776", self.spool.max_bytes)));
        }
        if self.spool.max_bytes < (e.batch_max_bytes as u64) * 2 {
            return Err(invalid(
                "spool.max_bytes",
                format!("{} must hold at least two requests of export.batch_max_bytes", self.spool.max_bytes),
            ));
        }
        let h = &self.health;
        if !h.listen.is_empty() && h.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid("health.listen", format!("`{}` is not an ip:port address (empty disables the endpoint)", h.listen)));
        }
        if !(1..=3600).contains(&h.unready_after_s) {
            return Err(invalid("health.unready_after_s", format!("{} is outside 1..=3600", h.unready_after_s)));
        }
        let m = &self.metadata;
        if !(10..=60_000).contains(&m.timeout_ms) {
            return Err(invalid("metadata.timeout_ms", format!("{} is outside 10..=60000", m.timeout_ms)));
        }
        if !(16..=1 << 20).contains(&m.cache_max) {
            return Err(invalid("metadata.cache_max", format!("{} is outside 16..=1048576", m.cache_max)));
        }
        if !(1..=3600).contains(&m.negative_ttl_s) {
            return Err(invalid("metadata.negative_ttl_s", format!("{} is outside 1..=3600", m.negative_ttl_s)));
        }
        for (key, enabled, socket) in
            [("metadata.docker.socket", m.docker.enabled, &m.docker.socket), ("metadata.cri.socket", m.cri.enabled, &m.cri.socket)]
        {
            if enabled && socket.is_empty() {
                return Err(invalid(key, "must name a unix socket when the lookup is enabled"));
            }
        }
        let k = &m.kubernetes;
        let url = k.api_url.to_ascii_lowercase();
        if !k.api_url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(invalid("metadata.kubernetes.api_url", format!("`{}` must start with https:// or http://", k.api_url)));
        }
        Ok(())
    }

    /// Where log records are sent: `None` for stdout, else (URL, protocol).
    pub fn logs_url(&self) -> Option<String> {
        let e = &self.export;
        if e.endpoint.is_empty() {
            return None;
        }
        Some(match e.protocol {
            Protocol::Grpc => e.endpoint.clone(),
            Protocol::HttpProtobuf if e.logs_endpoint_is_full => e.endpoint.clone(),
            Protocol::HttpProtobuf => format!("{}/v1/logs", e.endpoint.trim_end_matches('/')),
        })
    }

    /// Where spans are sent: `None` for stdout (no `export.endpoint`, as for
    /// logs), else the URL. gRPC: the endpoint (one channel for logs and
    /// traces). HTTP, first that applies: `export.traces_endpoint` as the
    /// full URL; when the endpoint is the full logs URL, that URL with its
    /// `/v1/logs` suffix replaced by `/v1/traces` (without that suffix, its
    /// scheme and authority followed by `/v1/traces`); else
    /// `<endpoint>/v1/traces`.
    pub fn traces_url(&self) -> Option<String> {
        let e = &self.export;
        if e.endpoint.is_empty() {
            return None;
        }
        Some(match e.protocol {
            Protocol::Grpc => e.endpoint.clone(),
            Protocol::HttpProtobuf if !e.traces_endpoint.is_empty() => e.traces_endpoint.clone(),
            Protocol::HttpProtobuf if e.logs_endpoint_is_full => {
                let logs = e.endpoint.trim_end_matches('/');
                match logs.strip_suffix("/v1/logs") {
                    Some(base) => format!("{base}/v1/traces"),
                    None => format!("{}/v1/traces", origin(logs)),
                }
            }
            Protocol::HttpProtobuf => format!("{}/v1/traces", e.endpoint.trim_end_matches('/')),
        })
    }
}

/// `scheme://authority` of an absolute URL (the whole string without a path).
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find(['/', '?', '#']) {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// The config file named by `--config` or `VIGIL_CONFIG`.
pub fn config_path(flag: Option<PathBuf>, env: &[(String, String)]) -> Option<PathBuf> {
    flag.or_else(|| env.iter().find(|(k, _)| k == "VIGIL_CONFIG").map(|(_, v)| PathBuf::from(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_are_valid_and_print_to_stdout() {
        let c = Config::load(None, &[], &Overrides::default()).expect("defaults");
        assert_eq!(c, Config::default());
        assert_eq!(c.logs_url(), None);
    }

    #[test]
    fn lane_and_filter_settings_are_checked_by_key() {
        let bad = |f: &dyn Fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            match c.validate() {
                Err(ConfigError::Invalid { key, .. }) => key,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(bad(&|c| c.probes.bulk_ringbuf_kib = 6), "probes.bulk_ringbuf_kib");
        assert_eq!(bad(&|c| c.probes.idle_poll_interval_ms = 0), "probes.idle_poll_interval_ms");
        assert_eq!(bad(&|c| c.probes.idle_poll_interval_ms = 1001), "probes.idle_poll_interval_ms");
        let small = PipelineConfig { queue_records: 1024, ..PipelineConfig::default() };
        assert_eq!(small.effective_reserve(), 512, "a small queue keeps half for bulk records");
        assert_eq!(PipelineConfig::default().effective_reserve(), 8192);
        assert_eq!(bad(&|c| c.filters.exclude_file_prefixes = vec!["relative/".into()]), "filters.exclude_file_prefixes");
        assert_eq!(bad(&|c| c.filters.exclude_exe_prefixes = vec![format!("/{}", "x".repeat(64))]), "filters.exclude_exe_prefixes");
        assert_eq!(bad(&|c| c.filters.exclude_uids = (0..65).collect()), "filters.exclude_uids");
        assert_eq!(bad(&|c| c.filters.exclude_cgroups = vec![" ".into()]), "filters.exclude_cgroups");
        assert_eq!(bad(&|c| c.ratelimit.bulk_per_process_burst = 0), "ratelimit.bulk_per_process_burst");
        assert_eq!(bad(&|c| c.policy.alert_webhook = "ftp://x".into()), "policy.alert_webhook");
        assert_eq!(bad(&|c| c.policy.alert_min_interval_s = 0), "policy.alert_min_interval_s");
        assert_eq!(bad(&|c| c.policy.alert_command = vec![String::new()]), "policy.alert_command");
        let e = Config::load(None, &env(&[("VIGIL_POLICY__MODE", "panic")]), &Overrides::default()).expect_err("unknown mode");
        assert!(e.to_string().contains("policy.mode") || e.to_string().contains("panic"), "{e}");
        let c = Config::load(None, &env(&[("VIGIL_POLICY__MODE", "fail_closed")]), &Overrides::default()).expect("loads");
        assert_eq!(c.policy.mode, PolicyMode::FailClosed);
        let off = Config { ratelimit: RateLimitConfig { bulk_per_process_rate: 0, bulk_per_process_burst: 0 }, ..Config::default() };
        assert!(off.validate().is_ok(), "no limit: the burst does not matter");
        let f = std::env::temp_dir().join(format!("vigil-cfg-filters-{}.toml", std::process::id()));
        std::fs::write(&f, "[filters]\nexclude_uids = [1000, 1001]\nexclude_file_prefixes = [\"/var/log/\"]\n").expect("write");
        let c = Config::load(Some(&f), &[], &Overrides::default()).expect("loads");
        assert_eq!(c.filters.exclude_uids, vec![1000, 1001]);
        assert_eq!(c.filters.exclude_file_prefixes, vec!["/var/log/".to_owned()]);
        std::fs::remove_file(f).expect("cleanup");
    }

    #[test]
    fn precedence_file_otel_vigil_cli() {
        let dir = std::env::temp_dir().join(format!("vigil-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("v.toml");
        std::fs::write(&f, "[probes]\nringbuf_kib = 64\nargs_max_bytes = 100\n[export]\nendpoint = \"http://file:1\"\n").expect("write");
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("VIGIL_PROBES__RINGBUF_KIB", "128"),
        ]);
        let c = Config::load(Some(&f), &e, &Overrides { args_max_bytes: Some(200), ..Overrides::default() }).expect("loads");
        assert_eq!(c.probes.ringbuf_kib, 128, "VIGIL_ beats the file");
        assert_eq!(c.probes.args_max_bytes, 200, "CLI beats the file");
        assert_eq!(c.export.endpoint, "http://otel:4318", "OTEL_ beats the file");
        let mut both = e.clone();
        both.push(("VIGIL_EXPORT__ENDPOINT".into(), "http://vigil:4318".into()));
        let with_vigil = Config::load(Some(&f), &both, &Overrides::default()).expect("loads");
        assert_eq!(with_vigil.export.endpoint, "http://vigil:4318", "VIGIL_ beats OTEL_");
        assert_eq!(c.logs_url().as_deref(), Some("http://otel:4318/v1/logs"));
        let c = Config::load(
            Some(&f),
            &e,
            &Overrides { endpoint: Some("http://cli:4317".into()), protocol: Some(Protocol::Grpc), ..Overrides::default() },
        )
        .expect("loads");
        assert_eq!(c.logs_url().as_deref(), Some("http://cli:4317"));
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn otel_logs_variables_win_and_headers_parse() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://b:4318/custom/logs"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret, x-tenant = t1"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ]);
        let c = Config::load(None, &e, &Overrides::default()).expect("loads");
        assert_eq!(c.logs_url().as_deref(), Some("http://b:4318/custom/logs"));
        assert_eq!(c.export.headers.get("api-key").map(String::as_str), Some("s=cret"));
        assert_eq!(c.export.headers.get("x-tenant").map(String::as_str), Some("t1"));
        assert!(!c.export.gzip);
    }

    fn urls(e: &[(&str, &str)]) -> (Option<String>, Option<String>) {
        let c = Config::load(None, &env(e), &Overrides::default()).expect("loads");
        (c.logs_url(), c.traces_url())
    }

    fn some(logs: &str, traces: &str) -> (Option<String>, Option<String>) {
        (Some(logs.to_owned()), Some(traces.to_owned()))
    }

    #[test]
    fn traces_url_derivation() {
        assert_eq!(urls(&[]), (None, None), "no endpoint: stdout for both");
        let http = ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
        assert_eq!(urls(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]), some("http://c:4317", "http://c:4317"), "gRPC: the endpoint");
        assert_eq!(
            urls(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"), http]),
            some("http://c:4318/v1/logs", "http://c:4318/v1/traces")
        );
        assert_eq!(
            urls(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/base"), http]),
            some("http://c:4318/base/v1/logs", "http://c:4318/base/v1/traces")
        );
        // Only the full logs URL: spans go next to it.
        assert_eq!(
            urls(&[("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://c:4318/otlp/v1/logs"), http]),
            some("http://c:4318/otlp/v1/logs", "http://c:4318/otlp/v1/traces")
        );
        assert_eq!(
            urls(&[("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://c:4318/custom"), http]),
            some("http://c:4318/custom", "http://c:4318/v1/traces")
        );
        assert_eq!(origin("http://h:1"), "http://h:1");
        assert_eq!(origin("http://h:1/a/b"), "http://h:1");
        assert_eq!(origin("http://h?x=/y"), "http://h");
    }

    #[test]
    fn traces_url_precedence() {
        let http = ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
        let generic = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318");
        let logs = ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://b:4318/custom/logs");
        let traces = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", " http://t:4318/custom/traces ");
        // The traces variable is the full URL and wins over everything else.
        assert_eq!(urls(&[generic, traces, http]), some("http://a:4318/v1/logs", "http://t:4318/custom/traces"));
        assert_eq!(urls(&[generic, logs, traces, http]), some("http://b:4318/custom/logs", "http://t:4318/custom/traces"));
        // The logs variable does not move the spans away from the generic endpoint.
        assert_eq!(urls(&[generic, logs, http]), some("http://b:4318/custom/logs", "http://a:4318/v1/traces"));
        // An empty variable is unset.
        assert_eq!(
            urls(&[generic, ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", " "), http]),
            some("http://a:4318/v1/logs", "http://a:4318/v1/traces")
        );
        // export.traces_endpoint: VIGIL_ beats OTEL_, and gRPC ignores it (one channel to the endpoint).
        let vigil = ("VIGIL_EXPORT__TRACES_ENDPOINT", "http://v:4318/t");
        assert_eq!(urls(&[generic, traces, vigil, http]), some("http://a:4318/v1/logs", "http://v:4318/t"));
        assert_eq!(urls(&[generic, traces, vigil]), some("http://a:4318", "http://a:4318"));
        // Without an endpoint, a traces endpoint alone does not leave stdout.
        assert_eq!(urls(&[traces, http]), (None, None));
        // From the file, below the variables.
        let dir = std::env::temp_dir().join(format!("vigil-cfg-traces-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("v.toml");
        std::fs::write(&f, "[export]\nendpoint = \"http://f:4318\"\nprotocol = \"http/protobuf\"\ntraces_endpoint = \"http://f:4318/t\"\n")
            .expect("write");
        let c = Config::load(Some(&f), &[], &Overrides::default()).expect("loads");
        assert_eq!((c.logs_url(), c.traces_url()), some("http://f:4318/v1/logs", "http://f:4318/t"));
        let c = Config::load(Some(&f), &env(&[traces]), &Overrides::default()).expect("loads");
        assert_eq!(c.traces_url().as_deref(), Some("http://t:4318/custom/traces"), "OTEL_ beats the file");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    fn err_text(e: &[(&str, &str)]) -> String {
        Config::load(None, &env(e), &Overrides::default()).expect_err("must fail").to_string()
    }

    #[test]
    fn bad_values_name_their_key() {
        assert!(err_text(&[("VIGIL_PROBES__RINGBUF_KIB", "100")]).contains("probes.ringbuf_kib"));
        assert!(err_text(&[("VIGIL_PROBES__ARGS_MAX_BYTES", "0")]).contains("probes.args_max_bytes"));
        assert!(err_text(&[("VIGIL_PROBES__ARGS_MAX_BYTES", "lots")]).contains("args_max_bytes"));
        assert!(err_text(&[("VIGIL_PROBES__PATH_MAX_BYTES", "63")]).contains("probes.path_max_bytes"));
        assert!(err_text(&[("VIGIL_PROBES__PATH_MAX_BYTES", "4097")]).contains("probes.path_max_bytes"));
        assert!(err_text(&[("VIGIL_PROBES__BOGUS", "1")]).contains("bogus"));
        assert!(err_text(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).contains("OTEL_EXPORTER_OTLP_PROTOCOL"));
        assert!(err_text(&[("OTEL_EXPORTER_OTLP_HEADERS", "novalue")]).contains("OTEL_EXPORTER_OTLP_HEADERS"));
        assert!(err_text(&[("VIGIL_EXPORT__ENDPOINT", "ftp://collector:4317")]).contains("export.endpoint"));
        assert!(err_text(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector:4318")]).contains("export.traces_endpoint"));
        assert!(err_text(&[("VIGIL_EXPORT__TRACES_ENDPOINT", "ftp://c:4318/v1/traces")]).contains("export.traces_endpoint"));
        assert!(err_text(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem")]).contains("export.tls.ca_file"));
        assert!(err_text(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/nonexistent/key.pem")]).contains("export.tls"));
        assert!(err_text(&[("OTEL_EXPORTER_OTLP_INSECURE", "maybe")]).contains("OTEL_EXPORTER_OTLP_INSECURE"));
        assert!(err_text(&[("VIGIL_EXPORT__STDOUT_FORMAT", "xml")]).contains("stdout_format"));
        assert!(err_text(&[("VIGIL_HEALTH__LISTEN", "localhost")]).contains("health.listen"));
        assert!(err_text(&[("VIGIL_HEALTH__UNREADY_AFTER_S", "0")]).contains("health.unready_after_s"));
        assert!(err_text(&[("VIGIL_HEALTH__UNREADY_AFTER_S", "3601")]).contains("health.unready_after_s"));
    }

    #[test]
    fn tls_variables_and_scheme_less_endpoints() {
        let dir = std::env::temp_dir().join(format!("vigil-cfg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let cert = rcgen::generate_simple_self_signed(vec!["collector".into()]).expect("cert");
        let (ca, key) = (dir.join("ca.pem"), dir.join("key.pem"));
        std::fs::write(&ca, cert.cert.pem()).expect("write");
        std::fs::write(&key, cert.signing_key.serialize_pem()).expect("write");
        let (ca, key) = (ca.to_string_lossy().into_owned(), key.to_string_lossy().into_owned());
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/generic.pem"),
            ("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", ca.as_str()),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", ca.as_str()),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", key.as_str()),
        ]);
        let c = Config::load(None, &e, &Overrides::default()).expect("loads");
        assert_eq!(c.export.tls.ca_file, ca, "the _LOGS_ variable wins");
        assert_eq!((c.export.tls.cert_file.as_str(), c.export.tls.key_file.as_str()), (ca.as_str(), key.as_str()));
        assert_eq!(c.export.endpoint, "https://collector:4317", "no scheme and not insecure: TLS");
        assert!(c.export.uses_tls());
        let mut insecure = e.clone();
        insecure.push(("OTEL_EXPORTER_OTLP_INSECURE".into(), "TRUE".into()));
        let c = Config::load(None, &insecure, &Overrides::default()).expect("loads");
        assert_eq!(c.export.endpoint, "http://collector:4317");
        let c = Config::load(
            None,
            &env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317"), ("OTEL_EXPORTER_OTLP_INSECURE", "true")]),
            &Overrides::default(),
        )
        .expect("loads");
        assert_eq!(c.export.endpoint, "https://c:4317", "an explicit scheme decides");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn path_max_bytes_bounds_are_accepted() {
        for v in ["64", "4096"] {
            let c = Config::load(None, &env(&[("VIGIL_PROBES__PATH_MAX_BYTES", v)]), &Overrides::default()).expect("in range");
            assert_eq!(c.probes.path_max_bytes.to_string(), v);
        }
    }

    #[test]
    fn health_listen_may_be_disabled_or_any_address() {
        for v in ["", "0.0.0.0:9464", "[::1]:8080"] {
            let c = Config::load(None, &env(&[("VIGIL_HEALTH__LISTEN", v)]), &Overrides::default()).expect("valid");
            assert_eq!(c.health.listen, v);
        }
    }

    #[test]
    fn missing_file_is_an_error() {
        let e = Config::load(Some(Path::new("/nonexistent/vigil.toml")), &[], &Overrides::default()).expect_err("fails");
        assert!(e.to_string().contains("/nonexistent/vigil.toml"));
    }

    #[test]
    fn example_file_matches_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vigil.example.toml");
        let c = Config::load(Some(&example), &[], &Overrides::default()).expect("example loads");
        assert_eq!(c, Config::default(), "vigil.example.toml must document the defaults exactly");
    }
}
