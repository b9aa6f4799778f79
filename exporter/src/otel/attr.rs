//! Attribute keys and enum values, each defined once.
//!
//! Semantic-convention names (semconv 1.44) come first; vigil's own names
//! carry the `vigil.` prefix. `schemas/otel-attributes.json` documents each
//! key, and a test checks that every key here is listed there.

/// Semantic-convention schema this mapping follows.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.44.0";

// Process (semconv)
pub const PROCESS_PID: &str = "process.pid";
pub const PROCESS_PARENT_PID: &str = "process.parent_pid";
pub const PROCESS_VPID: &str = "process.vpid";
pub const PROCESS_EXECUTABLE_PATH: &str = "process.executable.path";
pub const PROCESS_EXECUTABLE_NAME: &str = "process.executable.name";
pub const PROCESS_COMMAND_ARGS: &str = "process.command_args";
pub const PROCESS_ARGS_COUNT: &str = "process.args_count";
pub const PROCESS_WORKING_DIRECTORY: &str = "process.working_directory";
pub const PROCESS_USER_ID: &str = "process.user.id";
pub const PROCESS_REAL_USER_ID: &str = "process.real_user.id";
pub const PROCESS_SAVED_USER_ID: &str = "process.saved_user.id";
pub const PROCESS_SESSION_LEADER_PID: &str = "process.session_leader.pid";
pub const PROCESS_GROUP_LEADER_PID: &str = "process.group_leader.pid";
pub const PROCESS_INTERACTIVE: &str = "process.interactive";
pub const PROCESS_CREATION_TIME: &str = "process.creation.time";
pub const PROCESS_EXIT_CODE: &str = "process.exit.code";
pub const PROCESS_EXIT_TIME: &str = "process.exit.time";
pub const PROCESS_LINUX_CGROUP: &str = "process.linux.cgroup";
pub const THREAD_ID: &str = "thread.id";
pub const THREAD_NAME: &str = "thread.name";
pub const LOG_RECORD_UID: &str = "log.record.uid";

// Process (vigil)
pub const VIGIL_FS_USER_ID: &str = "vigil.process.fs_user.id";
pub const VIGIL_GROUP_ID: &str = "vigil.process.group.id";
pub const VIGIL_REAL_GROUP_ID: &str = "vigil.process.real_group.id";
pub const VIGIL_SAVED_GROUP_ID: &str = "vigil.process.saved_group.id";
pub const VIGIL_FS_GROUP_ID: &str = "vigil.process.fs_group.id";
pub const VIGIL_LOGIN_USER_ID: &str = "vigil.process.login_user.id";
pub const VIGIL_AUDIT_SESSION_ID: &str = "vigil.process.audit_session.id";
pub const VIGIL_CGROUP_ID: &str = "vigil.process.cgroup.id";
pub const VIGIL_PID_NAMESPACE: &str = "vigil.process.pid_namespace.inode";
pub const VIGIL_EXEC_FILENAME: &str = "vigil.process.exec.filename";
pub const VIGIL_EXECUTABLE_INODE: &str = "vigil.process.executable.inode";
pub const VIGIL_EXECUTABLE_DELETED: &str = "vigil.process.executable.deleted";
pub const VIGIL_EXECUTABLE_MEMFD: &str = "vigil.process.executable.memfd";
pub const VIGIL_PARENT_THREAD_ID: &str = "vigil.process.parent_thread.id";
pub const VIGIL_EXIT_SIGNAL: &str = "vigil.process.exit.signal";
pub const VIGIL_EXIT_SIGNAL_NAME: &str = "vigil.process.exit.signal_name";
pub const VIGIL_EXIT_CORE_DUMPED: &str = "vigil.process.exit.core_dumped";
pub const VIGIL_EXIT_GROUP_DEAD: &str = "vigil.process.exit.group_dead";

// Users (names resolved from /etc/passwd and /etc/group)
pub const USER_NAME: &str = "user.name";
pub const VIGIL_REAL_USER_NAME: &str = "vigil.process.real_user.name";
pub const VIGIL_GROUP_NAME: &str = "vigil.process.group.name";

// Workload (from the cgroup path)
pub const CONTAINER_ID: &str = "container.id";
pub const CONTAINER_RUNTIME_NAME: &str = "container.runtime.name";
pub const K8S_POD_UID: &str = "k8s.pod.uid";
pub const VIGIL_K8S_POD_QOS_CLASS: &str = "vigil.k8s.pod.qos_class";
pub const VIGIL_SYSTEMD_UNIT: &str = "vigil.systemd.unit";

// Workload (from the metadata lookups)
pub const CONTAINER_NAME: &str = "container.name";
pub const CONTAINER_IMAGE_NAME: &str = "container.image.name";
pub const CONTAINER_IMAGE_TAGS: &str = "container.image.tags";
pub const CONTAINER_IMAGE_ID: &str = "container.image.id";
pub const K8S_POD_NAME: &str = "k8s.pod.name";
pub const K8S_NAMESPACE_NAME: &str = "k8s.namespace.name";
/// `k8s.pod.label.<label key>`.
pub const K8S_POD_LABEL_PREFIX: &str = "k8s.pod.label.";
pub const K8S_REPLICASET_NAME: &str = "k8s.replicaset.name";
pub const K8S_DEPLOYMENT_NAME: &str = "k8s.deployment.name";
pub const K8S_DAEMONSET_NAME: &str = "k8s.daemonset.name";
pub const K8S_STATEFULSET_NAME: &str = "k8s.statefulset.name";
pub const K8S_JOB_NAME: &str = "k8s.job.name";
pub const K8S_CRONJOB_NAME: &str = "k8s.cronjob.name";
pub const VIGIL_METADATA_CONTAINER_STATUS: &str = "vigil.metadata.container.status";
pub const VIGIL_METADATA_CONTAINER_REASON: &str = "vigil.metadata.container.reason";
pub const VIGIL_METADATA_K8S_STATUS: &str = "vigil.metadata.k8s.status";
pub const VIGIL_METADATA_K8S_REASON: &str = "vigil.metadata.k8s.reason";

// Missing versus absent
pub const VIGIL_TRUNCATED_FIELDS: &str = "vigil.truncated_fields";
pub const VIGIL_ORIGINAL_SIZE_PREFIX: &str = "vigil.original_size.";
pub const VIGIL_TRUNCATED_REASON_PREFIX: &str = "vigil.truncated_reason.";
pub const VIGIL_UNAVAILABLE_FIELDS: &str = "vigil.unavailable_fields";
pub const VIGIL_UNAVAILABLE_REASON_PREFIX: &str = "vigil.unavailable_reason.";
pub const VIGIL_STREAM_ID: &str = "vigil.stream.id";
pub const VIGIL_STREAM_SEQ: &str = "vigil.stream.seq";
pub const VIGIL_CONTEXT_SOURCE: &str = "vigil.context.source";

pub const VIGIL_STREAM_GAP_BEFORE: &str = "vigil.stream.gap_before";
pub const VIGIL_PROCESS_NAME_MISMATCH: &str = "vigil.process.name_mismatch";

// Spans
pub const VIGIL_SPAN_END_REASON: &str = "vigil.span.end_reason";
pub const VIGIL_SPAN_SYNTHETIC_END: &str = "vigil.span.synthetic_end";
pub const VIGIL_SPAN_START_SOURCE: &str = "vigil.span.start_source";
pub const VIGIL_SPAN_SEGMENT: &str = "vigil.span.segment";
pub const VIGIL_SPAN_LINK: &str = "vigil.span.link";

// Telemetry (the agent's own records)
pub const EVENT_TELEMETRY_LOSS: &str = "vigil.telemetry.loss";
pub const EVENT_TELEMETRY_HEARTBEAT: &str = "vigil.telemetry.heartbeat";
pub const EVENT_TELEMETRY_SUPPRESSED: &str = "vigil.telemetry.suppressed";
pub const VIGIL_SUPPRESSED_EVENT_NAME: &str = "vigil.suppressed.event_name";
pub const VIGIL_SUPPRESSED_COUNT: &str = "vigil.suppressed.count";
pub const VIGIL_SUPPRESSED_FIRST: &str = "vigil.suppressed.first_time";
pub const VIGIL_SUPPRESSED_LAST: &str = "vigil.suppressed.last_time";
pub const HB_RATELIMITED: &str = "vigil.heartbeat.ratelimited";
pub const ERROR_TYPE: &str = "error.type";
pub const VIGIL_TELEMETRY_SEQ: &str = "vigil.telemetry.seq";
pub const VIGIL_LOSS_STAGE: &str = "vigil.loss.stage";
pub const VIGIL_LOSS_LANE: &str = "vigil.loss.lane";
pub const VIGIL_LOSS_COUNT: &str = "vigil.loss.count";
pub const VIGIL_LOSS_TOTAL: &str = "vigil.loss.total";
pub const VIGIL_LOSS_EVENT_NAME: &str = "vigil.loss.event_name";
pub const VIGIL_LOSS_SEQ_FIRST: &str = "vigil.loss.seq.first";
pub const VIGIL_LOSS_SEQ_LAST: &str = "vigil.loss.seq.last";
pub const VIGIL_LOSS_WINDOW_START: &str = "vigil.loss.window.start_time";
pub const VIGIL_LOSS_WINDOW_END: &str = "vigil.loss.window.end_time";
pub const VIGIL_HEARTBEAT_INTERVAL: &str = "vigil.heartbeat.interval";
pub const VIGIL_PROBES_STATUS: &str = "vigil.probes.status";
pub const HB_KERNEL_EMITTED: &str = "vigil.heartbeat.kernel.emitted";
pub const HB_KERNEL_DROPPED: &str = "vigil.heartbeat.kernel.dropped";
pub const HB_KERNEL_SKIPPED: &str = "vigil.heartbeat.kernel.skipped";
pub const HB_KERNEL_READ_FAULTS: &str = "vigil.heartbeat.kernel.read_faults";
pub const HB_KERNEL_TRUNCATIONS: &str = "vigil.heartbeat.kernel.truncations";
pub const HB_KERNEL_PATH_DEPTH: &str = "vigil.heartbeat.kernel.path_depth_exceeded";
pub const HB_AGENT_RECEIVED: &str = "vigil.heartbeat.agent.received";
pub const HB_AGENT_QUEUE_FULL: &str = "vigil.heartbeat.agent.queue_full";
/// Per-lane heartbeat counters: `[critical, bulk]` (index = lane id).
pub const HB_LANE_GENERATED: [&str; 2] = ["vigil.heartbeat.lane.critical.generated", "vigil.heartbeat.lane.bulk.generated"];
pub const HB_LANE_RECEIVED: [&str; 2] = ["vigil.heartbeat.lane.critical.received", "vigil.heartbeat.lane.bulk.received"];
pub const HB_LANE_KERNEL_DROPPED: [&str; 2] = ["vigil.heartbeat.lane.critical.kernel_dropped", "vigil.heartbeat.lane.bulk.kernel_dropped"];
pub const HB_LANE_QUEUE_FULL: [&str; 2] = ["vigil.heartbeat.lane.critical.queue_full", "vigil.heartbeat.lane.bulk.queue_full"];
/// Records excluded by filters, by reason (`FilterReason` order).
pub const HB_EXCLUDED: [&str; 4] =
    ["vigil.heartbeat.excluded.cgroup", "vigil.heartbeat.excluded.uid", "vigil.heartbeat.excluded.exe", "vigil.heartbeat.excluded.file"];
pub const HB_AGENT_MALFORMED: &str = "vigil.heartbeat.agent.malformed";
pub const HB_AGENT_MAPPED: &str = "vigil.heartbeat.agent.mapped";
pub const HB_AGENT_STREAM_GAPS: &str = "vigil.heartbeat.agent.stream_gaps";
pub const HB_AGENT_LATE_RECORDS: &str = "vigil.heartbeat.agent.late_records";
pub const HB_AGENT_PROCESSES: &str = "vigil.heartbeat.agent.processes_tracked";
pub const HB_AGENT_TABLE_EVICTED: &str = "vigil.heartbeat.agent.process_table_evicted";
pub const HB_AGENT_MISSED_EXEC: &str = "vigil.heartbeat.agent.missed_exec";
pub const HB_AGENT_MISSED_EXIT: &str = "vigil.heartbeat.agent.missed_exit";
pub const HB_EXPORT_EXPORTED: &str = "vigil.heartbeat.export.exported";
pub const HB_EXPORT_FAILED: &str = "vigil.heartbeat.export.failed";
pub const HB_EXPORT_REJECTED: &str = "vigil.heartbeat.export.rejected";
pub const HB_EXPORT_SPOOLED: &str = "vigil.heartbeat.export.spooled";
pub const HB_EXPORT_REPLAYED: &str = "vigil.heartbeat.export.replayed";
pub const HB_EXPORT_SPOOL_FULL: &str = "vigil.heartbeat.export.spool_full";
pub const HB_EXPORT_SPOOL_CORRUPT: &str = "vigil.heartbeat.export.spool_corrupt";
pub const HB_LOSS_TOTAL: &str = "vigil.heartbeat.loss.total";
pub const HB_METADATA_LOOKUPS: &str = "vigil.heartbeat.metadata.lookups";
pub const HB_METADATA_FAILURES: &str = "vigil.heartbeat.metadata.failures";
pub const HB_METADATA_SKIPPED: &str = "vigil.heartbeat.metadata.skipped";
pub const HB_METADATA_K8S_LISTS: &str = "vigil.heartbeat.metadata.k8s_lists";

/// `vigil.unavailable_reason.<key>` for context the agent never saw.
pub const REASON_LOST_CONTEXT: &str = "lost_context";

// Event families (file, network, privilege, kernel, fileless)
pub const VIGIL_SYSCALL: &str = "vigil.syscall";
pub const VIGIL_SYSCALL_RETURN: &str = "vigil.syscall.return";
pub const VIGIL_HOOK: &str = "vigil.hook";
pub const VIGIL_IO_URING: &str = "vigil.io_uring";
pub const FILE_PATH: &str = "file.path";
pub const FILE_NAME: &str = "file.name";
pub const FILE_MODE: &str = "file.mode";
pub const FILE_SIZE: &str = "file.size";
pub const VIGIL_FILE_PATH_SOURCE: &str = "vigil.file.path_source";
pub const VIGIL_FILE_TARGET_PATH: &str = "vigil.file.target_path";
pub const VIGIL_FILE_TARGET_PATH_SOURCE: &str = "vigil.file.target_path_source";
pub const VIGIL_FILE_INODE: &str = "vigil.file.inode";
pub const VIGIL_FILE_DEVICE: &str = "vigil.file.device";
pub const VIGIL_FILE_FLAGS: &str = "vigil.file.flags";
pub const VIGIL_FILE_FLAG_NAMES: &str = "vigil.file.flag_names";
pub const VIGIL_FILE_ACCESS: &str = "vigil.file.access";
pub const VIGIL_FILE_NEW_OWNER_ID: &str = "vigil.file.new_owner.id";
pub const VIGIL_FILE_NEW_GROUP_ID: &str = "vigil.file.new_group.id";
pub const VIGIL_MEMFD_NAME: &str = "vigil.memfd.name";
pub const VIGIL_MEMFD_NAME_SOURCE: &str = "vigil.memfd.name_source";
pub const VIGIL_MEMFD_FLAGS: &str = "vigil.memfd.flags";
pub const VIGIL_MEMFD_FLAG_NAMES: &str = "vigil.memfd.flag_names";
pub const VIGIL_PRIV_REQUESTED: &str = "vigil.privilege.requested";
pub const VIGIL_PRIV_CHANGED: &str = "vigil.privilege.changed";
pub const VIGIL_NS_FLAGS: &str = "vigil.namespace.flags";
pub const VIGIL_NS_TYPES: &str = "vigil.namespace.types";
pub const VIGIL_NS_TYPES_SOURCE: &str = "vigil.namespace.types_source";
pub const VIGIL_NS_CHANGED: &str = "vigil.namespace.changed";
pub const VIGIL_NS_FD: &str = "vigil.namespace.fd";
/// `vigil.privilege.old.<field>` / `vigil.privilege.new.<field>`.
pub const VIGIL_PRIV_OLD_PREFIX: &str = "vigil.privilege.old.";
pub const VIGIL_PRIV_NEW_PREFIX: &str = "vigil.privilege.new.";
/// Credential fields of the privilege records, in order.
pub const CRED_FIELDS: [&str; 11] =
    ["uid", "euid", "suid", "fsuid", "gid", "egid", "sgid", "fsgid", "cap_effective", "cap_permitted", "cap_inheritable"];
/// `vigil.namespace.old.<type>` / `vigil.namespace.new.<type>` (inode numbers).
pub const VIGIL_NS_OLD_PREFIX: &str = "vigil.namespace.old.";
pub const VIGIL_NS_NEW_PREFIX: &str = "vigil.namespace.new.";
pub const VIGIL_BPF_COMMAND: &str = "vigil.bpf.command";
pub const VIGIL_BPF_PROGRAM_TYPE: &str = "vigil.bpf.program.type";
pub const VIGIL_BPF_MAP_TYPE: &str = "vigil.bpf.map.type";
pub const VIGIL_BPF_NAME: &str = "vigil.bpf.name";
pub const VIGIL_BPF_INSTRUCTIONS: &str = "vigil.bpf.program.instructions";
pub const VIGIL_BPF_ATTACH_TYPE: &str = "vigil.bpf.attach_type";
pub const VIGIL_BPF_ID: &str = "vigil.bpf.id";
pub const VIGIL_BPF_SOURCE: &str = "vigil.bpf.source";
pub const VIGIL_MODULE_SIZE: &str = "vigil.module.size";
pub const VIGIL_MODULE_FLAGS: &str = "vigil.module.flags";
pub const VIGIL_MODULE_FD: &str = "vigil.module.fd";
pub const VIGIL_PTRACE_REQUEST: &str = "vigil.ptrace.request";
pub const VIGIL_PTRACE_REQUEST_NAME: &str = "vigil.ptrace.request_name";
pub const VIGIL_PTRACE_ADDR: &str = "vigil.ptrace.addr";
pub const VIGIL_PTRACE_TARGET_PID: &str = "vigil.ptrace.target.pid";
pub const VIGIL_PTRACE_TARGET_EXE: &str = "vigil.ptrace.target.executable.path";
pub const VIGIL_PTRACE_TARGET_PROCESS_PID: &str = "vigil.ptrace.target.process.pid";
pub const VIGIL_MOUNT_SOURCE: &str = "vigil.mount.source";
pub const VIGIL_MOUNT_TARGET: &str = "vigil.mount.target";
pub const VIGIL_MOUNT_FSTYPE: &str = "vigil.mount.fstype";
pub const VIGIL_MOUNT_FLAGS: &str = "vigil.mount.flags";
pub const VIGIL_MOUNT_FLAG_NAMES: &str = "vigil.mount.flag_names";
pub const NETWORK_TRANSPORT: &str = "network.transport";
pub const NETWORK_TYPE: &str = "network.type";
pub const NETWORK_LOCAL_ADDRESS: &str = "network.local.address";
pub const NETWORK_LOCAL_PORT: &str = "network.local.port";
pub const NETWORK_PEER_ADDRESS: &str = "network.peer.address";
pub const NETWORK_PEER_PORT: &str = "network.peer.port";
pub const VIGIL_NET_SOCKET_TYPE: &str = "vigil.network.socket.type";
pub const VIGIL_NET_ADDRESS_SOURCE: &str = "vigil.network.address_source";
pub const VIGIL_NET_BACKLOG: &str = "vigil.network.listen.backlog";
pub const VIGIL_NET_FD: &str = "vigil.network.fd";

// Resource
pub const SERVICE_NAME: &str = "service.name";
pub const SERVICE_VERSION: &str = "service.version";
pub const SERVICE_INSTANCE_ID: &str = "service.instance.id";
pub const HOST_ID: &str = "host.id";
pub const HOST_NAME: &str = "host.name";
pub const HOST_ARCH: &str = "host.arch";
pub const OS_TYPE: &str = "os.type";
pub const OS_NAME: &str = "os.name";
pub const OS_VERSION: &str = "os.version";
pub const OS_DESCRIPTION: &str = "os.description";
pub const VIGIL_HOST_BOOT_ID: &str = "vigil.host.boot_id";
pub const VIGIL_HOOKS_ACTIVE: &str = "vigil.hooks.active";
pub const VIGIL_ABI_VERSION: &str = "vigil.abi.version";
pub const VIGIL_CONFIG_RINGBUF_KIB: &str = "vigil.config.ringbuf_kib";
pub const VIGIL_CONFIG_BULK_RINGBUF_KIB: &str = "vigil.config.bulk_ringbuf_kib";
pub const VIGIL_CONFIG_ARGS_MAX: &str = "vigil.config.args_max_bytes";
pub const VIGIL_CONFIG_PATH_MAX: &str = "vigil.config.path_max_bytes";
pub const VIGIL_CONFIG_LANES: &str = "vigil.config.lanes";
pub const VIGIL_POLICY: &str = "vigil.policy";
pub const VIGIL_CONFIG_SPANS: &str = "vigil.config.spans_enabled";
pub const VIGIL_EXPORTER_TARGET: &str = "vigil.exporter.target";
pub const K8S_NODE_NAME: &str = "k8s.node.name";
pub const VIGIL_AGENT_K8S_POD_NAME: &str = "vigil.agent.k8s.pod.name";
pub const VIGIL_AGENT_K8S_NAMESPACE: &str = "vigil.agent.k8s.namespace.name";
pub const VIGIL_AGENT_K8S_POD_UID: &str = "vigil.agent.k8s.pod.uid";

/// Every attribute key above (resource and record), for the schema test.
pub const ALL_KEYS: &[&str] = &[
    PROCESS_PID,
    PROCESS_PARENT_PID,
    PROCESS_VPID,
    PROCESS_EXECUTABLE_PATH,
    PROCESS_EXECUTABLE_NAME,
    PROCESS_COMMAND_ARGS,
    PROCESS_ARGS_COUNT,
    PROCESS_WORKING_DIRECTORY,
    PROCESS_USER_ID,
    PROCESS_REAL_USER_ID,
    PROCESS_SAVED_USER_ID,
    PROCESS_SESSION_LEADER_PID,
    PROCESS_GROUP_LEADER_PID,
    PROCESS_INTERACTIVE,
    PROCESS_CREATION_TIME,
    PROCESS_EXIT_CODE,
    PROCESS_EXIT_TIME,
    PROCESS_LINUX_CGROUP,
    THREAD_ID,
    THREAD_NAME,
    LOG_RECORD_UID,
    VIGIL_FS_USER_ID,
    VIGIL_GROUP_ID,
    VIGIL_REAL_GROUP_ID,
    VIGIL_SAVED_GROUP_ID,
    VIGIL_FS_GROUP_ID,
    VIGIL_LOGIN_USER_ID,
    VIGIL_AUDIT_SESSION_ID,
    VIGIL_CGROUP_ID,
    VIGIL_PID_NAMESPACE,
    VIGIL_EXEC_FILENAME,
    VIGIL_EXECUTABLE_INODE,
    VIGIL_EXECUTABLE_DELETED,
    VIGIL_EXECUTABLE_MEMFD,
    VIGIL_PARENT_THREAD_ID,
    VIGIL_EXIT_SIGNAL,
    VIGIL_EXIT_SIGNAL_NAME,
    VIGIL_EXIT_CORE_DUMPED,
    VIGIL_EXIT_GROUP_DEAD,
    USER_NAME,
    VIGIL_REAL_USER_NAME,
    VIGIL_GROUP_NAME,
    CONTAINER_ID,
    CONTAINER_RUNTIME_NAME,
    K8S_POD_UID,
    VIGIL_K8S_POD_QOS_CLASS,
    VIGIL_SYSTEMD_UNIT,
    CONTAINER_NAME,
    CONTAINER_IMAGE_NAME,
    CONTAINER_IMAGE_TAGS,
    CONTAINER_IMAGE_ID,
    K8S_POD_NAME,
    K8S_NAMESPACE_NAME,
    K8S_REPLICASET_NAME,
    K8S_DEPLOYMENT_NAME,
    K8S_DAEMONSET_NAME,
    K8S_STATEFULSET_NAME,
    K8S_JOB_NAME,
    K8S_CRONJOB_NAME,
    VIGIL_METADATA_CONTAINER_STATUS,
    VIGIL_METADATA_CONTAINER_REASON,
    VIGIL_METADATA_K8S_STATUS,
    VIGIL_METADATA_K8S_REASON,
    VIGIL_TRUNCATED_FIELDS,
    VIGIL_UNAVAILABLE_FIELDS,
    VIGIL_STREAM_ID,
    VIGIL_STREAM_SEQ,
    VIGIL_CONTEXT_SOURCE,
    VIGIL_STREAM_GAP_BEFORE,
    VIGIL_PROCESS_NAME_MISMATCH,
    VIGIL_SPAN_END_REASON,
    VIGIL_SPAN_SYNTHETIC_END,
    VIGIL_SPAN_START_SOURCE,
    VIGIL_SPAN_SEGMENT,
    VIGIL_SPAN_LINK,
    ERROR_TYPE,
    VIGIL_TELEMETRY_SEQ,
    VIGIL_LOSS_STAGE,
    VIGIL_LOSS_LANE,
    VIGIL_LOSS_COUNT,
    VIGIL_LOSS_TOTAL,
    VIGIL_LOSS_EVENT_NAME,
    VIGIL_LOSS_SEQ_FIRST,
    VIGIL_LOSS_SEQ_LAST,
    VIGIL_LOSS_WINDOW_START,
    VIGIL_LOSS_WINDOW_END,
    VIGIL_HEARTBEAT_INTERVAL,
    VIGIL_PROBES_STATUS,
    HB_KERNEL_EMITTED,
    HB_KERNEL_DROPPED,
    HB_KERNEL_SKIPPED,
    HB_KERNEL_READ_FAULTS,
    HB_KERNEL_TRUNCATIONS,
    HB_KERNEL_PATH_DEPTH,
    HB_AGENT_RECEIVED,
    HB_AGENT_QUEUE_FULL,
    HB_LANE_GENERATED[0],
    HB_LANE_GENERATED[1],
    HB_LANE_RECEIVED[0],
    HB_LANE_RECEIVED[1],
    HB_LANE_KERNEL_DROPPED[0],
    HB_LANE_KERNEL_DROPPED[1],
    HB_LANE_QUEUE_FULL[0],
    HB_LANE_QUEUE_FULL[1],
    HB_EXCLUDED[0],
    HB_EXCLUDED[1],
    HB_EXCLUDED[2],
    HB_EXCLUDED[3],
    HB_RATELIMITED,
    VIGIL_SUPPRESSED_EVENT_NAME,
    VIGIL_SUPPRESSED_COUNT,
    VIGIL_SUPPRESSED_FIRST,
    VIGIL_SUPPRESSED_LAST,
    HB_AGENT_MALFORMED,
    HB_AGENT_MAPPED,
    HB_AGENT_STREAM_GAPS,
    HB_AGENT_LATE_RECORDS,
    HB_AGENT_PROCESSES,
    HB_AGENT_TABLE_EVICTED,
    HB_AGENT_MISSED_EXEC,
    HB_AGENT_MISSED_EXIT,
    HB_EXPORT_EXPORTED,
    HB_EXPORT_FAILED,
    HB_EXPORT_REJECTED,
    HB_EXPORT_SPOOLED,
    HB_EXPORT_REPLAYED,
    HB_EXPORT_SPOOL_FULL,
    HB_EXPORT_SPOOL_CORRUPT,
    HB_LOSS_TOTAL,
    HB_METADATA_LOOKUPS,
    HB_METADATA_FAILURES,
    HB_METADATA_SKIPPED,
    HB_METADATA_K8S_LISTS,
    SERVICE_NAME,
    SERVICE_VERSION,
    SERVICE_INSTANCE_ID,
    HOST_ID,
    HOST_NAME,
    HOST_ARCH,
    OS_TYPE,
    OS_NAME,
    OS_VERSION,
    OS_DESCRIPTION,
    VIGIL_HOST_BOOT_ID,
    VIGIL_HOOKS_ACTIVE,
    VIGIL_ABI_VERSION,
    VIGIL_CONFIG_RINGBUF_KIB,
    VIGIL_CONFIG_BULK_RINGBUF_KIB,
    VIGIL_CONFIG_ARGS_MAX,
    VIGIL_CONFIG_PATH_MAX,
    VIGIL_CONFIG_LANES,
    VIGIL_POLICY,
    VIGIL_CONFIG_SPANS,
    VIGIL_EXPORTER_TARGET,
    K8S_NODE_NAME,
    VIGIL_AGENT_K8S_POD_NAME,
    VIGIL_AGENT_K8S_NAMESPACE,
    VIGIL_AGENT_K8S_POD_UID,
    VIGIL_SYSCALL,
    VIGIL_SYSCALL_RETURN,
    VIGIL_HOOK,
    VIGIL_IO_URING,
    FILE_PATH,
    FILE_NAME,
    FILE_MODE,
    FILE_SIZE,
    VIGIL_FILE_PATH_SOURCE,
    VIGIL_FILE_TARGET_PATH,
    VIGIL_FILE_TARGET_PATH_SOURCE,
    VIGIL_FILE_INODE,
    VIGIL_FILE_DEVICE,
    VIGIL_FILE_FLAGS,
    VIGIL_FILE_FLAG_NAMES,
    VIGIL_FILE_ACCESS,
    VIGIL_FILE_NEW_OWNER_ID,
    VIGIL_FILE_NEW_GROUP_ID,
    VIGIL_MEMFD_NAME,
    VIGIL_MEMFD_NAME_SOURCE,
    VIGIL_MEMFD_FLAGS,
    VIGIL_MEMFD_FLAG_NAMES,
    VIGIL_PRIV_REQUESTED,
    VIGIL_PRIV_CHANGED,
    VIGIL_NS_FLAGS,
    VIGIL_NS_TYPES,
    VIGIL_NS_TYPES_SOURCE,
    VIGIL_NS_CHANGED,
    VIGIL_NS_FD,
    VIGIL_BPF_COMMAND,
    VIGIL_BPF_PROGRAM_TYPE,
    VIGIL_BPF_MAP_TYPE,
    VIGIL_BPF_NAME,
    VIGIL_BPF_INSTRUCTIONS,
    VIGIL_BPF_ATTACH_TYPE,
    VIGIL_BPF_ID,
    VIGIL_BPF_SOURCE,
    VIGIL_MODULE_SIZE,
    VIGIL_MODULE_FLAGS,
    VIGIL_MODULE_FD,
    VIGIL_PTRACE_REQUEST,
    VIGIL_PTRACE_REQUEST_NAME,
    VIGIL_PTRACE_ADDR,
    VIGIL_PTRACE_TARGET_PID,
    VIGIL_PTRACE_TARGET_EXE,
    VIGIL_PTRACE_TARGET_PROCESS_PID,
    VIGIL_MOUNT_SOURCE,
    VIGIL_MOUNT_TARGET,
    VIGIL_MOUNT_FSTYPE,
    VIGIL_MOUNT_FLAGS,
    VIGIL_MOUNT_FLAG_NAMES,
    NETWORK_TRANSPORT,
    NETWORK_TYPE,
    NETWORK_LOCAL_ADDRESS,
    NETWORK_LOCAL_PORT,
    NETWORK_PEER_ADDRESS,
    NETWORK_PEER_PORT,
    VIGIL_NET_SOCKET_TYPE,
    VIGIL_NET_ADDRESS_SOURCE,
    VIGIL_NET_BACKLOG,
    VIGIL_NET_FD,
];

/// Keys built from a prefix and a fixed list (privilege and namespace
/// records), every one documented in the schema.
pub fn generated_keys() -> Vec<String> {
    let mut out = Vec::new();
    for f in CRED_FIELDS {
        out.push(format!("{VIGIL_PRIV_OLD_PREFIX}{f}"));
        out.push(format!("{VIGIL_PRIV_NEW_PREFIX}{f}"));
    }
    for n in crate::abi::NAMESPACES {
        out.push(format!("{VIGIL_NS_OLD_PREFIX}{n}"));
        out.push(format!("{VIGIL_NS_NEW_PREFIX}{n}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> serde_json::Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/otel-attributes.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema file")).expect("schema is JSON")
    }

    /// Every key the code can emit is documented, and the schema documents
    /// no key the code does not know.
    #[test]
    fn schema_and_code_list_the_same_keys() {
        let s = schema();
        let mut documented = std::collections::BTreeSet::new();
        for section in ["record_attributes", "resource_attributes", "span_attributes"] {
            documented.extend(s[section].as_object().expect(section).keys().cloned());
        }
        let mut code: std::collections::BTreeSet<String> = ALL_KEYS.iter().map(|k| (*k).to_owned()).collect();
        code.extend(generated_keys());
        assert_eq!(documented, code);
        let prefixes: Vec<&String> = s["record_attribute_prefixes"].as_object().expect("prefixes").keys().collect();
        for p in [VIGIL_ORIGINAL_SIZE_PREFIX, VIGIL_TRUNCATED_REASON_PREFIX, VIGIL_UNAVAILABLE_REASON_PREFIX] {
            assert!(prefixes.iter().any(|d| d.as_str() == p), "{p} undocumented");
        }
        for t in crate::abi::EventType::ALL {
            assert!(s["events"].get(t.event_name()).is_some(), "{} undocumented", t.event_name());
        }
    }
}
