//! One OTLP LogRecord per security event (OTEL-MAPPING.md, "Log records").

use super::wire::{self, log_record, AnyRef};
use super::{attr, key, push_padded, Attrs, Rfc3339};
use crate::clock::BootClock;
use crate::decode::{BpfEvent, ModuleEvent, MountEvent, NetEvent, PtraceEvent};
use crate::decode::{
    CredChangeEvent, Event, ExecEvent, ExitEvent, FileEvent, ForkEvent, Header, MemfdEvent, NamespaceEvent, Record, SyscallInfo,
};
use crate::escape::escape;
use crate::proctable::{ContextSource, ProcessInfo};
use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
use std::borrow::Cow;

/// Per-run values every record needs.
#[derive(Debug, Clone)]
pub struct MapContext {
    /// Boot clock -> wall clock.
    pub clock: BootClock,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// Identifies this load of the probes: sequence numbers restart at each
    /// load, so the stream id includes it (hex boot-clock ns at load).
    pub session: String,
}

impl MapContext {
    /// `vigil.stream.id` of a kernel stream: `<session>-<cpu>-<lane>`.
    pub fn stream_id(&self, cpu: u32, lane: u32) -> String {
        let mut s = String::with_capacity(self.session.len() + 12);
        self.push_stream_id(&mut s, cpu, lane);
        s
    }

    fn push_stream_id(&self, s: &mut String, cpu: u32, lane: u32) {
        s.push_str(&self.session);
        s.push('-');
        push_padded(s, u64::from(cpu), 1);
        s.push('-');
        push_padded(s, u64::from(lane), 1);
    }

    /// `log.record.uid` of a record: `<boot_id>:<stream id>:<seq>`; its
    /// stream id is [`MapContext::stream_of`] it (one string for both: this
    /// runs for every record).
    pub fn record_uid(&self, cpu: u32, lane: u32, seq: u64) -> String {
        let mut s = String::with_capacity(self.boot_id.len() + self.session.len() + 34);
        // Writing to a String cannot fail.
        let _ = self.write_record_uid(&mut s, cpu, lane, seq);
        s
    }

    /// [`MapContext::record_uid`], written to `w` (the map stage writes it
    /// on the stack: no allocation per record).
    pub fn write_record_uid<W: std::fmt::Write>(&self, w: &mut W, cpu: u32, lane: u32, seq: u64) -> std::fmt::Result {
        w.write_str(&self.boot_id)?;
        w.write_char(':')?;
        w.write_str(&self.session)?;
        w.write_char('-')?;
        write_decimal(w, u64::from(cpu))?;
        w.write_char('-')?;
        write_decimal(w, u64::from(lane))?;
        w.write_char(':')?;
        write_decimal(w, seq)
    }

    /// The stream id in a [`MapContext::record_uid`].
    pub fn stream_of<'u>(&self, uid: &'u str) -> &'u str {
        let end = uid.as_bytes().iter().rposition(|b| *b == b':').unwrap_or(uid.len());
        uid.get(self.boot_id.len() + 1..end).unwrap_or_default()
    }

    /// [`MapContext::stream_of`] a uid's bytes (cut at ASCII `:`s, so
    /// UTF-8 stays UTF-8).
    fn stream_of_bytes<'u>(&self, uid: &'u [u8]) -> &'u [u8] {
        let end = uid.iter().rposition(|b| *b == b':').unwrap_or(uid.len());
        uid.get(self.boot_id.len() + 1..end).unwrap_or_default()
    }
}

/// Write `v` in decimal (as [`push_padded`] with width 1).
fn write_decimal<W: std::fmt::Write>(w: &mut W, v: u64) -> std::fmt::Result {
    let mut buf = [0u8; 20];
    let i = wire::decimal_digits(v, &mut buf);
    // Digit by digit as chars: no UTF-8 check of text known to be ASCII.
    buf[i..].iter().try_for_each(|d| w.write_char(char::from(*d)))
}

/// Text formatted on the stack, up to `N` bytes (a write that does not fit
/// fails, and the caller falls back to a `String`).
struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    fn new() -> Self {
        StackText { buf: [0; N], len: 0 }
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s and chars are copied in, so this is UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    /// The text's bytes (UTF-8: only whole `&str`s and chars are copied
    /// in; for [`Attrs::utf8`]).
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> std::fmt::Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let to = self.buf.get_mut(self.len..self.len + s.len()).ok_or(std::fmt::Error)?;
        to.copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }

    fn write_char(&mut self, c: char) -> std::fmt::Result {
        if c.is_ascii() {
            *self.buf.get_mut(self.len).ok_or(std::fmt::Error)? = c as u8;
            self.len += 1;
            Ok(())
        } else {
            self.write_str(c.encode_utf8(&mut [0; 4]))
        }
    }
}

/// Context the process table provides for records that do not carry it.
#[derive(Debug, Clone, Copy)]
pub struct ProcContext<'a> {
    /// The table entry, if any.
    pub info: Option<&'a ProcessInfo>,
    /// Where it came from.
    pub source: ContextSource,
    /// Whether the task's comm differs from the one it had at exec (or in
    /// /proc at start-up), when that is known.
    pub name_mismatch: Option<bool>,
    /// Trace and span of the acting process's current image, when spans
    /// are on.
    pub span: Option<([u8; 16], [u8; 8])>,
    /// Workload and names resolved for an exec record.
    pub exec: Option<&'a ExecExtra>,
    /// The process a record acts on (ptrace's target), from the table.
    pub target: Option<&'a ProcessInfo>,
}

/// What the map stage resolves for an exec record beyond the record itself
/// (the workload goes on the record's Resource, not on the record).
#[derive(Debug, Clone, Default)]
pub struct ExecExtra {
    /// `user.name` (effective uid).
    pub user_name: Option<std::sync::Arc<str>>,
    /// `vigil.process.real_user.name`.
    pub real_user_name: Option<std::sync::Arc<str>>,
    /// `vigil.process.group.name` (effective gid).
    pub group_name: Option<std::sync::Arc<str>>,
    /// `process.creation.time` if already formatted (the process table
    /// keeps it from the process's fork or an earlier exec); used when it
    /// shows the same Unix ns.
    pub creation_time: Option<Rfc3339>,
}

impl<'a> ProcContext<'a> {
    /// Context from a table entry (or its absence).
    pub fn from_table(info: Option<&'a ProcessInfo>, name_mismatch: Option<bool>) -> Self {
        ProcContext { info, source: info.map_or(ContextSource::Unknown, |i| i.source), name_mismatch, span: None, exec: None, target: None }
    }

    /// The same context, with what was resolved for an exec.
    pub fn with_exec(mut self, exec: &'a ExecExtra) -> Self {
        self.exec = Some(exec);
        self
    }

    /// The same context, acting on `target`.
    pub fn on_target(mut self, target: Option<&'a ProcessInfo>) -> Self {
        self.target = target;
        self
    }

    /// The same context, in the span `span`.
    pub fn in_span(mut self, span: Option<([u8; 16], [u8; 8])>) -> Self {
        self.span = span;
        self
    }
}

/// Context for records that carry their own (exec).
pub const OBSERVED: ProcContext<'static> =
    ProcContext { info: None, source: ContextSource::Observed, name_mismatch: None, span: None, exec: None, target: None };

/// Map one decoded record to an OTLP LogRecord, appending its encoded
/// fields to `out` (the map stage writes straight into the batch's buffer:
/// no allocation and no copy per record) and returning it. `observed_ns`
/// is when vigil read it (Unix ns); `cgroup_path` the resolved cgroup of
/// an exec, if known. `gap_before` is the number of sequence numbers
/// missing on the record's stream just before it.
pub fn write_log_record<B: std::ops::Deref<Target = [u8]>>(
    rec: &Record<B>,
    ctx: &MapContext,
    proc: ProcContext<'_>,
    observed_ns: u64,
    cgroup_path: Option<&str>,
    gap_before: u64,
    out: Vec<u8>,
) -> Vec<u8> {
    let h = &rec.header;
    let mut a = Attrs::appending_to(out);
    let body = match &rec.event {
        Event::Exec(e) => Body::Exec(exec_attrs(&mut a, h, e, ctx, cgroup_path, proc.exec)),
        Event::Fork(f) => Body::Text(fork_attrs(&mut a, h, f, ctx, proc)),
        Event::Exit(x) => Body::Text(exit_attrs(&mut a, h, x, ctx, proc)),
        Event::File(f) => Body::Text(file_attrs(&mut a, h, f, proc)),
        Event::Memfd(m) => Body::Text(memfd_attrs(&mut a, h, m, proc)),
        Event::CredChange(c) => Body::Text(cred_attrs(&mut a, h, c, proc)),
        Event::Namespace(n) => Body::Text(ns_attrs(&mut a, h, n, proc)),
        Event::Net(n) => Body::Text(net_attrs(&mut a, h, n, proc)),
        Event::Bpf(b) => Body::Text(bpf_attrs(&mut a, h, b, proc)),
        Event::Module(m) => Body::Text(module_attrs(&mut a, h, m, proc)),
        Event::Ptrace(p) => Body::Text(ptrace_attrs(&mut a, h, p, proc)),
        Event::Mount(m) => Body::Text(mount_attrs(&mut a, h, m, proc)),
    };
    // On the stack when it fits (it does for a 36-byte boot id).
    let mut stack = StackText::<128>::new();
    let heap;
    let uid = match ctx.write_record_uid(&mut stack, h.cpu, h.lane, h.seq) {
        Ok(()) => stack.as_bytes(),
        Err(_) => {
            heap = ctx.record_uid(h.cpu, h.lane, h.seq);
            heap.as_bytes()
        }
    };
    if let Some(m) = proc.name_mismatch {
        a.bool(&key::VIGIL_PROCESS_NAME_MISMATCH, m);
    }
    if gap_before > 0 {
        a.int(&key::VIGIL_STREAM_GAP_BEFORE, i64::try_from(gap_before).unwrap_or(i64::MAX));
    }
    a.str(&key::VIGIL_CONTEXT_SOURCE, proc.source.as_str())
        .utf8(&key::LOG_RECORD_UID, uid)
        .utf8(&key::VIGIL_STREAM_ID, ctx.stream_of_bytes(uid))
        .int(&key::VIGIL_STREAM_SEQ, i64::try_from(h.seq).unwrap_or(i64::MAX));
    let mut out = a.finish();
    wire::put_fixed64(&mut out, log_record::TIME_UNIX_NANO, ctx.clock.to_unix_ns(h.ktime_ns));
    wire::put_fixed64(&mut out, log_record::OBSERVED_TIME_UNIX_NANO, observed_ns);
    wire::put_varint_field(&mut out, log_record::SEVERITY_NUMBER, SeverityNumber::Info as u64);
    wire::put_bytes(&mut out, log_record::SEVERITY_TEXT, b"INFO");
    match &body {
        Body::Text(text) => wire::put_any_field(&mut out, log_record::BODY, AnyRef::Str(text)),
        Body::Exec(exec) => wire::put_any_str_with(&mut out, log_record::BODY, exec.len(), |w| exec.write(w)),
    }
    wire::put_bytes(&mut out, log_record::EVENT_NAME, h.event.event_name().as_bytes());
    if let Some((trace_id, span_id)) = proc.span {
        wire::put_bytes(&mut out, log_record::TRACE_ID, &trace_id);
        wire::put_bytes(&mut out, log_record::SPAN_ID, &span_id);
    }
    out
}

/// `process.creation.time` of a process started at `start_ns` (boot
/// clock): `cached` when it shows the same Unix ns, formatted otherwise.
pub fn creation_time(ctx: &MapContext, start_ns: u64, cached: Option<Rfc3339>) -> Rfc3339 {
    let unix_ns = ctx.clock.to_unix_ns(start_ns);
    cached.filter(|c| c.unix_ns() == unix_ns).unwrap_or_else(|| Rfc3339::new(unix_ns))
}

/// The last component of a path (the mapping takes it from the escaped
/// path instead: [`escaped_basename`]).
#[cfg(test)]
fn basename(path: &[u8]) -> &[u8] {
    path.rsplit(|b| *b == b'/').next().unwrap_or(path)
}

/// Kernel "unset" value for audit login uid and session id.
const AUDIT_UNSET: u32 = u32::MAX;

fn exec_attrs<'a, B: std::ops::Deref<Target = [u8]>>(
    a: &mut Attrs,
    h: &Header,
    e: &'a ExecEvent<B>,
    ctx: &MapContext,
    cgroup_path: Option<&str>,
    extra: Option<&ExecExtra>,
) -> ExecBody<'a> {
    let c = &e.creds;
    a.int(&key::PROCESS_PID, h.tgid)
        .int(&key::PROCESS_PARENT_PID, e.ppid)
        .int(&key::PROCESS_VPID, e.vpid)
        .int(&key::THREAD_ID, h.pid)
        .bytes(&key::THREAD_NAME, &e.comm);
    // Escaped once, for the path, the name and the body.
    let exe = e.exe.bytes.as_deref().map(escape);
    a.field_escaped(attr::PROCESS_EXECUTABLE_PATH, &e.exe, exe.as_deref());
    match &exe {
        Some(p) => {
            a.str(&key::PROCESS_EXECUTABLE_NAME, escaped_basename(p));
        }
        None => {
            a.unavailable(attr::PROCESS_EXECUTABLE_NAME, e.exe.reason.map_or("unknown", |r| r.as_str()));
        }
    }
    // One vector, sized from argc (a hint: the record may hold fewer).
    let mut args: Vec<Cow<'_, str>> = Vec::new();
    if let Some(b) = e.args.bytes.as_deref() {
        args.reserve((e.argc as usize).min(256));
        args.extend(crate::decode::args(b).map(escape));
    }
    match &e.args.bytes {
        Some(_) => {
            a.str_array(&key::PROCESS_COMMAND_ARGS, &args);
            if e.args.truncated {
                // Arrays report their original size in elements: argc is exact.
                a.truncated(attr::PROCESS_COMMAND_ARGS, Some(u64::from(e.argc)), e.args.reason.map(|r| r.as_str()));
            }
        }
        None => {
            a.unavailable(attr::PROCESS_COMMAND_ARGS, e.args.reason.map_or("unknown", |r| r.as_str()));
        }
    }
    a.int(&key::PROCESS_ARGS_COUNT, e.argc);
    a.field(attr::PROCESS_WORKING_DIRECTORY, &e.cwd);
    a.int(&key::PROCESS_USER_ID, c.euid)
        .int(&key::PROCESS_REAL_USER_ID, c.uid)
        .int(&key::PROCESS_SAVED_USER_ID, c.suid)
        .int(&key::VIGIL_FS_USER_ID, c.fsuid);
    a.int(&key::VIGIL_GROUP_ID, c.egid)
        .int(&key::VIGIL_REAL_GROUP_ID, c.gid)
        .int(&key::VIGIL_SAVED_GROUP_ID, c.sgid)
        .int(&key::VIGIL_FS_GROUP_ID, c.fsgid);
    if c.loginuid != AUDIT_UNSET {
        a.int(&key::VIGIL_LOGIN_USER_ID, c.loginuid);
    }
    if c.sessionid != AUDIT_UNSET {
        a.int(&key::VIGIL_AUDIT_SESSION_ID, c.sessionid);
    }
    a.int(&key::PROCESS_SESSION_LEADER_PID, e.sid).int(&key::PROCESS_GROUP_LEADER_PID, e.pgid).bool(&key::PROCESS_INTERACTIVE, e.tty);
    a.utf8(&key::PROCESS_CREATION_TIME, creation_time(ctx, e.start_ns, extra.and_then(|x| x.creation_time)).as_bytes());
    a.int(&key::VIGIL_CGROUP_ID, i64::try_from(e.cgroup_id).unwrap_or(i64::MAX));
    match cgroup_path {
        Some(p) => {
            a.bytes(&key::PROCESS_LINUX_CGROUP, p.as_bytes());
        }
        None => {
            a.unavailable(attr::PROCESS_LINUX_CGROUP, "lookup_failed");
        }
    }
    if let Some(x) = extra {
        for (key, name) in
            [(attr::USER_NAME, &x.user_name), (attr::VIGIL_REAL_USER_NAME, &x.real_user_name), (attr::VIGIL_GROUP_NAME, &x.group_name)]
        {
            if let Some(n) = name {
                a.str(key, n);
            }
        }
    }
    a.int(&key::VIGIL_PID_NAMESPACE, e.pidns);
    a.field(attr::VIGIL_EXEC_FILENAME, &e.filename);
    a.int(&key::VIGIL_EXECUTABLE_INODE, i64::try_from(e.exe_ino).unwrap_or(i64::MAX));
    a.bool(&key::VIGIL_EXECUTABLE_DELETED, e.exe_deleted).bool(&key::VIGIL_EXECUTABLE_MEMFD, e.exe_memfd);

    ExecBody {
        exe: exe.unwrap_or(Cow::Borrowed("(executable unavailable)")),
        args,
        truncated: e.args.truncated,
        numbers: [(" pid=", h.tgid), (" ppid=", e.ppid), (" uid=", c.euid)],
    }
}

/// A record's body: text the mapper built, or an exec's, written straight
/// into the record ([`ExecBody`]).
enum Body<'a> {
    Text(String),
    Exec(ExecBody<'a>),
}

/// An exec record's body, `exec <executable> [<args>]` (then ` [argv
/// truncated]` when cut) and ` pid=<tgid> ppid=<ppid> uid=<euid>`, from
/// the escaped values the attributes show. Its length is computed and its
/// parts are written into the record (`wire::put_any_str_with`): no
/// `String` is built and copied per exec (unit test
/// `exec_bodies_written_in_place_are_the_formatted_ones`).
struct ExecBody<'a> {
    exe: Cow<'a, str>,
    args: Vec<Cow<'a, str>>,
    truncated: bool,
    numbers: [(&'static str, u32); 3],
}

impl ExecBody<'_> {
    const CUT: &'static str = " [argv truncated]";

    /// Bytes of the body.
    fn len(&self) -> usize {
        let args = self.args.iter().map(|a| a.len()).sum::<usize>() + self.args.len().saturating_sub(1);
        let numbers: usize = self.numbers.iter().map(|(label, v)| label.len() + wire::decimal_len(u64::from(*v))).sum();
        "exec ".len() + self.exe.len() + " [".len() + args + "]".len() + if self.truncated { Self::CUT.len() } else { 0 } + numbers
    }

    /// Write the body's [`ExecBody::len`] bytes.
    fn write(&self, w: &mut wire::Spare<'_>) {
        w.text("exec ").text(&self.exe).text(" [");
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                w.text(" ");
            }
            w.text(arg);
        }
        w.text("]");
        if self.truncated {
            w.text(Self::CUT);
        }
        for (label, v) in self.numbers {
            w.text(label).decimal(u64::from(v));
        }
    }
}

/// The executable path and name from the process table, or their
/// unavailability when the agent never saw the process. Returns the
/// escaped executable for the body (escaped once, borrowed when it needs
/// no escaping).
fn table_exe<'a>(a: &mut Attrs, proc: ProcContext<'a>) -> Option<Cow<'a, str>> {
    match proc.info.and_then(|p| p.exe.as_deref()) {
        Some(exe) => {
            let shown = escape(exe);
            a.str(&key::PROCESS_EXECUTABLE_PATH, &shown).str(&key::PROCESS_EXECUTABLE_NAME, escaped_basename(&shown));
            Some(shown)
        }
        None => {
            a.unavailable(attr::PROCESS_EXECUTABLE_PATH, attr::REASON_LOST_CONTEXT)
                .unavailable(attr::PROCESS_EXECUTABLE_NAME, attr::REASON_LOST_CONTEXT);
            None
        }
    }
}

/// The basename of an [`escape`]d path: equal to the escaped basename of
/// the path, as escaping keeps every `/` and never makes one (unit test
/// `basename_of_escaped_path_is_escaped_basename`), so the path is escaped
/// once for both.
fn escaped_basename(shown: &str) -> &str {
    match shown.as_bytes().iter().rposition(|b| *b == b'/') {
        // Just after an ASCII byte: a character boundary.
        Some(i) => shown.get(i + 1..).unwrap_or_default(),
        None => shown,
    }
}

fn fork_attrs(a: &mut Attrs, h: &Header, f: &ForkEvent, ctx: &MapContext, proc: ProcContext<'_>) -> String {
    a.int(&key::PROCESS_PID, f.child_tgid)
        .int(&key::PROCESS_PARENT_PID, h.tgid)
        .int(&key::PROCESS_VPID, f.child_vpid)
        .int(&key::THREAD_ID, f.child_pid);
    a.bytes(&key::THREAD_NAME, &f.comm).int(&key::VIGIL_PARENT_THREAD_ID, h.pid);
    a.utf8(&key::PROCESS_CREATION_TIME, creation_time(ctx, f.child_start_ns, proc.info.and_then(|p| p.creation_time)).as_bytes());
    let exe = table_exe(a, proc);
    if let Some(uid) = proc.info.and_then(|p| p.euid) {
        a.int(&key::PROCESS_USER_ID, uid);
    }
    format!("fork {} pid={} -> pid={}", exe.unwrap_or_else(|| escape(&f.comm)), h.tgid, f.child_tgid)
}

/// Signal names for the body and `vigil.process.exit.signal_name` (x86-64
/// and arm64 numbering, which agree for 1-31).
pub fn signal_name(sig: u32) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES.get(usize::try_from(sig).ok()?.checked_sub(1)?).copied()
}

fn exit_attrs(a: &mut Attrs, h: &Header, x: &ExitEvent, ctx: &MapContext, proc: ProcContext<'_>) -> String {
    a.int(&key::PROCESS_PID, h.tgid).int(&key::PROCESS_PARENT_PID, x.ppid).int(&key::THREAD_ID, h.pid).bytes(&key::THREAD_NAME, &x.comm);
    a.utf8(&key::PROCESS_CREATION_TIME, creation_time(ctx, x.start_ns, proc.info.and_then(|p| p.creation_time)).as_bytes());
    a.utf8(&key::PROCESS_EXIT_TIME, Rfc3339::new(ctx.clock.to_unix_ns(h.ktime_ns)).as_bytes());
    let exe = table_exe(a, proc);
    if let Some(uid) = proc.info.and_then(|p| p.euid) {
        a.int(&key::PROCESS_USER_ID, uid);
    }
    let how = match (x.exit_code(), x.signal()) {
        (Some(code), _) => {
            a.int(&key::PROCESS_EXIT_CODE, code);
            format!("code={code}")
        }
        (None, Some(sig)) => {
            a.int(&key::VIGIL_EXIT_SIGNAL, sig);
            let name = signal_name(sig);
            if let Some(name) = name {
                a.str(&key::VIGIL_EXIT_SIGNAL_NAME, name);
            }
            format!("signal={}", name.map_or_else(|| sig.to_string(), str::to_owned))
        }
        (None, None) => String::new(),
    };
    a.bool(&key::VIGIL_EXIT_CORE_DUMPED, x.core_dumped()).bool(&key::VIGIL_EXIT_GROUP_DEAD, x.group_dead);
    let core = if x.core_dumped() { " core-dumped" } else { "" };
    format!("exit {} pid={} {how}{core}", exe.unwrap_or_else(|| escape(&x.comm)), h.tgid)
}

/// `vigil.hook` of a record produced at the exit of `syscall` by a hook of
/// `kind` (the attach point, as `vigil check` lists it). Formatted once per
/// (kind, syscall) and then borrowed: this runs for every event-family
/// record.
pub fn hook_name(kind: Option<crate::abi::HookKind>, syscall: u32, event: crate::abi::EventType) -> std::borrow::Cow<'static, str> {
    use crate::abi::HookKind;
    /// Syscall ids below this are cached (every id in `abi::SYSCALLS` is).
    const IDS: usize = 128;
    static NAMES: std::sync::OnceLock<Vec<Option<String>>> = std::sync::OnceLock::new();
    match kind {
        // An LSM hook's name depends on the event, not the syscall.
        Some(k) if k != HookKind::Lsm && (syscall as usize) < IDS => {
            let names = NAMES.get_or_init(|| {
                let mut names = vec![None; HookKind::ALL.len() * IDS];
                for k in HookKind::ALL.into_iter().filter(|k| *k != HookKind::Lsm) {
                    for (id, _) in crate::abi::SYSCALLS.iter().filter(|(id, _)| (*id as usize) < IDS) {
                        names[(k as usize - 1) * IDS + *id as usize] = Some(format_hook_name(Some(k), *id, event).into_owned());
                    }
                }
                names
            });
            match names.get((k as usize - 1) * IDS + syscall as usize).and_then(Option::as_deref) {
                Some(n) => std::borrow::Cow::Borrowed(n),
                // Not a syscall the probes report.
                None => format_hook_name(kind, syscall, event),
            }
        }
        _ => format_hook_name(kind, syscall, event),
    }
}

/// [`hook_name`], formatted.
fn format_hook_name(kind: Option<crate::abi::HookKind>, syscall: u32, event: crate::abi::EventType) -> std::borrow::Cow<'static, str> {
    use crate::abi::HookKind;
    let name = crate::abi::syscall_name(syscall).unwrap_or("unknown");
    if kind == Some(HookKind::Lsm) {
        // The one LSM program per event, from the hook table.
        if let Some(h) = crate::probes::hooks::HOOKS.iter().find(|h| h.event == event && h.kind == HookKind::Lsm) {
            return h.attach_point.into();
        }
    }
    match kind {
        Some(HookKind::SyscallTp) => format!("tracepoint/syscalls/sys_exit_{}", crate::abi::syscall_tracepoint_name(name)).into(),
        Some(HookKind::RawSyscall) => format!("tp_btf/sys_exit({name})").into(),
        Some(
            k @ (HookKind::TpBtf
            | HookKind::Lsm
            | HookKind::Fentry
            | HookKind::IoUring
            | HookKind::IoUringSubmit
            | HookKind::IoUringOverflow),
        ) => format!("{}({name})", k.as_str()).into(),
        None => "unknown".into(),
    }
}

/// Attributes every event-family record has: the acting process (from the
/// record and the process table), the syscall, its outcome and the hook.
/// Returns the executable (or comm) for the body.
fn syscall_attrs<'a>(a: &mut Attrs, h: &Header, sys: &'a SyscallInfo, proc: ProcContext<'a>) -> Cow<'a, str> {
    a.int(&key::PROCESS_PID, h.tgid).int(&key::THREAD_ID, h.pid).bytes(&key::THREAD_NAME, &sys.comm);
    let exe = table_exe(a, proc);
    if let Some(uid) = proc.info.and_then(|p| p.euid) {
        a.int(&key::PROCESS_USER_ID, uid);
    }
    a.str(&key::VIGIL_SYSCALL, crate::abi::syscall_name(sys.syscall).unwrap_or("unknown"));
    if sys.outcome_unknown() {
        // Reported at submission (a success posts nothing later, a failure
        // is reported again at its completion, with its errno), or by an
        // LSM hook before the operation's own checks ran.
        a.unavailable(attr::VIGIL_SYSCALL_RETURN, crate::abi::Reason::NotSupported.as_str());
    } else {
        a.int(&key::VIGIL_SYSCALL_RETURN, sys.ret);
    }
    if let Some(errno) = sys.errno() {
        a.str(&key::ERROR_TYPE, crate::errno::name(errno).unwrap_or(crate::errno::OTHER));
    }
    a.str(&key::VIGIL_HOOK, &hook_name(sys.hook, sys.syscall, h.event));
    if sys.hook.is_some_and(crate::abi::HookKind::is_io_uring) {
        // No syscall ran: vigil.syscall names the operation's equivalent.
        a.bool(attr::VIGIL_IO_URING, true);
    }
    exe.unwrap_or_else(|| escape(&sys.comm))
}

/// Open flags (asm-generic numbering, as on x86-64 and arm64), in order.
const OPEN_FLAGS: &[(u32, &str)] = &[
    (0o1, "O_WRONLY"),
    (0o2, "O_RDWR"),
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o4000000, "O_SYNC"),
    (0o10000000, "O_PATH"),
    (0o20000000, "O_TMPFILE"),
];

/// Most names [`open_flag_names_known`] gives: `O_RDONLY` and every bit.
const OPEN_FLAG_NAMES_MAX: usize = OPEN_FLAGS.len() + 1;

/// The names of the bits of open flags, as [`open_flag_names`], in `buf`
/// (no allocation: this runs for every open record); `None` when `flags`
/// has bits [`OPEN_FLAGS`] does not name (shown in octal by
/// [`open_flag_names`]).
fn open_flag_names_known(flags: u32, buf: &mut [&'static str; OPEN_FLAG_NAMES_MAX]) -> Option<usize> {
    let mut n = 0;
    if flags & 0o3 == 0 {
        buf[n] = "O_RDONLY";
        n += 1;
    }
    let mut known = 0;
    for (bit, name) in OPEN_FLAGS {
        known |= bit;
        if flags & bit != 0 {
            buf[n] = name;
            n += 1;
        }
    }
    (flags & !known == 0).then_some(n)
}

/// Names of the bits of open flags (`O_RDONLY` when no access bit is set).
pub fn open_flag_names(flags: u32) -> Vec<std::borrow::Cow<'static, str>> {
    let mut out: Vec<std::borrow::Cow<'static, str>> = Vec::new();
    if flags & 0o3 == 0 {
        out.push("O_RDONLY".into());
    }
    let mut known = 0;
    for (bit, name) in OPEN_FLAGS {
        known |= bit;
        if flags & bit != 0 {
            out.push((*name).into());
        }
    }
    if flags & !known != 0 {
        out.push(format!("{:#o}", flags & !known).into());
    }
    out
}

/// `mode & 0o7777` as four octal digits (`file.mode`), on the stack.
fn octal_mode(mode: u32) -> [u8; 4] {
    let mut out = [b'0'; 4];
    for (i, b) in out.iter_mut().rev().enumerate() {
        *b = b'0' + ((mode >> (3 * i)) & 0o7) as u8;
    }
    out
}

/// Append `v` in decimal, with its sign.
fn push_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_padded(out, v.unsigned_abs(), 1);
}

/// Append the end of an event-family body: ` by <who> pid=<tgid>: <outcome>`.
fn push_actor_outcome(out: &mut String, who: &str, tgid: u32, sys: &SyscallInfo) {
    out.push_str(" by ");
    out.push_str(who);
    out.push_str(" pid=");
    push_padded(out, u64::from(tgid), 1);
    out.push_str(": ");
    push_outcome(out, sys);
}

/// Append a syscall's outcome for a body: the errno's name (`errno <n>`
/// when it has none), or `ok (<return value>)`.
fn push_outcome(out: &mut String, sys: &SyscallInfo) {
    if sys.outcome_unknown() {
        out.push_str(if sys.hook == Some(crate::abi::HookKind::Lsm) {
            "attempted, outcome not reported"
        } else {
            "submitted, outcome not reported"
        });
        return;
    }
    match sys.errno() {
        Some(e) => match crate::errno::name(e) {
            Some(n) => out.push_str(n),
            None => {
                out.push_str("errno ");
                push_i64(out, e.into());
            }
        },
        None => {
            out.push_str("ok (");
            push_i64(out, sys.ret);
            out.push(')');
        }
    }
}

fn file_attrs(a: &mut Attrs, h: &Header, f: &FileEvent, proc: ProcContext<'_>) -> String {
    use crate::abi::EventType;
    let who = syscall_attrs(a, h, &f.sys, proc);
    // Escaped once, for the attributes and the body.
    let path = f.path.bytes.as_deref().map(escape);
    a.field_escaped(attr::FILE_PATH, &f.path, path.as_deref());
    if let Some(p) = &path {
        a.str(&key::FILE_NAME, escaped_basename(p));
    }
    a.str(&key::VIGIL_FILE_PATH_SOURCE, f.path_source.as_str());
    if let Some(ino) = f.ino {
        a.int(&key::VIGIL_FILE_INODE, i64::try_from(ino).unwrap_or(i64::MAX));
    }
    if let Some(dev) = f.dev {
        a.int(&key::VIGIL_FILE_DEVICE, dev);
    }
    let mode = |a: &mut Attrs| {
        let m = octal_mode(f.mode);
        // Octal digits only, so this always succeeds.
        a.str(&key::FILE_MODE, std::str::from_utf8(&m).unwrap_or_default());
    };
    let verb = match h.event {
        EventType::FileOpen => {
            a.int(&key::VIGIL_FILE_FLAGS, f.flags);
            let mut names = [""; OPEN_FLAG_NAMES_MAX];
            match open_flag_names_known(f.flags, &mut names) {
                Some(n) => a.str_array(&key::VIGIL_FILE_FLAG_NAMES, &names[..n]),
                None => a.str_array(&key::VIGIL_FILE_FLAG_NAMES, &open_flag_names(f.flags)),
            };
            a.str(
                attr::VIGIL_FILE_ACCESS,
                match f.flags & 0o3 {
                    0 => "read",
                    1 => "write",
                    _ => "read_write",
                },
            );
            if f.flags & (0o100 | 0o20000000) != 0 {
                mode(a);
            }
            "open"
        }
        EventType::FileUnlink => {
            a.int(&key::VIGIL_FILE_FLAGS, f.flags);
            "unlink"
        }
        EventType::FileRename => {
            a.int(&key::VIGIL_FILE_FLAGS, f.flags);
            if let Some(p2) = &f.path2 {
                a.field(attr::VIGIL_FILE_TARGET_PATH, p2);
                a.str(&key::VIGIL_FILE_TARGET_PATH_SOURCE, f.path2_source.as_str());
            }
            "rename"
        }
        EventType::FileChmod => {
            mode(a);
            if f.flags != 0 {
                a.int(&key::VIGIL_FILE_FLAGS, f.flags);
            }
            "chmod"
        }
        EventType::FileChown => {
            if f.flags != 0 {
                a.int(&key::VIGIL_FILE_FLAGS, f.flags);
            }
            if let Some(uid) = f.uid {
                a.int(&key::VIGIL_FILE_NEW_OWNER_ID, uid);
            }
            if let Some(gid) = f.gid {
                a.int(&key::VIGIL_FILE_NEW_GROUP_ID, gid);
            }
            "chown"
        }
        EventType::FileTruncate => {
            a.int(&key::FILE_SIZE, f.length);
            "truncate"
        }
        EventType::Exec
        | EventType::Fork
        | EventType::Exit
        | EventType::FilelessMemfdCreate
        | EventType::PrivilegeCredChange
        | EventType::PrivilegeNamespace
        | EventType::KernelBpf
        | EventType::KernelModule
        | EventType::KernelPtrace
        | EventType::KernelMount
        | EventType::KernelUmount
        | EventType::NetworkConnect
        | EventType::NetworkAccept
        | EventType::NetworkBind
        | EventType::NetworkListen => "file",
    };
    // `<verb> <path>[ -> <target>] by <who> pid=<tgid>: <outcome>`, built by
    // hand: this runs for every file record.
    let path = path.unwrap_or(Cow::Borrowed("(path unavailable)"));
    let target = f.path2.as_ref().and_then(|p| p.bytes.as_deref()).map(escape);
    let mut body = String::with_capacity(verb.len() + path.len() + target.as_ref().map_or(0, |t| t.len() + 4) + who.len() + 48);
    body.push_str(verb);
    body.push(' ');
    body.push_str(&path);
    if let Some(t) = &target {
        body.push_str(" -> ");
        body.push_str(t);
    }
    push_actor_outcome(&mut body, &who, h.tgid, &f.sys);
    body
}

/// `MFD_*` flags (include/uapi/linux/memfd.h), in order.
const MEMFD_FLAGS: &[(u32, &str)] =
    &[(0x1, "MFD_CLOEXEC"), (0x2, "MFD_ALLOW_SEALING"), (0x4, "MFD_HUGETLB"), (0x8, "MFD_NOEXEC_SEAL"), (0x10, "MFD_EXEC")];

fn flag_names(flags: u32, table: &[(u32, &'static str)]) -> Vec<std::borrow::Cow<'static, str>> {
    let mut out: Vec<std::borrow::Cow<'static, str>> = Vec::new();
    let mut known = 0;
    for (bit, name) in table {
        known |= bit;
        if flags & bit != 0 {
            out.push((*name).into());
        }
    }
    if flags & !known != 0 {
        out.push(format!("{:#x}", flags & !known).into());
    }
    out
}

fn memfd_attrs(a: &mut Attrs, h: &Header, m: &MemfdEvent, proc: ProcContext<'_>) -> String {
    let who = syscall_attrs(a, h, &m.sys, proc);
    match m.given_name() {
        Some(n) => {
            a.bytes(&key::VIGIL_MEMFD_NAME, n);
        }
        None => {
            a.unavailable(attr::VIGIL_MEMFD_NAME, m.name.reason.map_or("unknown", |r| r.as_str()));
        }
    }
    a.str(&key::VIGIL_MEMFD_NAME_SOURCE, m.name_source.as_str());
    a.int(&key::VIGIL_MEMFD_FLAGS, m.flags).str_array(&key::VIGIL_MEMFD_FLAG_NAMES, &flag_names(m.flags, MEMFD_FLAGS));
    if let Some(ino) = m.ino {
        a.int(&key::VIGIL_FILE_INODE, i64::try_from(ino).unwrap_or(i64::MAX));
    }
    let name = m.given_name().map_or(std::borrow::Cow::Borrowed("(name unavailable)"), escape);
    let outcome = match m.sys.errno() {
        Some(e) => crate::errno::name(e).map_or_else(|| format!("errno {e}"), str::to_owned),
        None => format!("fd {}", m.sys.ret),
    };
    format!("memfd_create {name} by {who} pid={}: {outcome}", h.tgid)
}

fn cred_values(c: &crate::abi::RawCreds, caps: &crate::abi::RawCaps) -> [u64; 11] {
    [
        c.uid.into(),
        c.euid.into(),
        c.suid.into(),
        c.fsuid.into(),
        c.gid.into(),
        c.egid.into(),
        c.sgid.into(),
        c.fsgid.into(),
        caps.effective,
        caps.permitted,
        caps.inheritable,
    ]
}

fn outcome(sys: &SyscallInfo) -> String {
    let mut s = String::new();
    push_outcome(&mut s, sys);
    s
}

fn cred_attrs(a: &mut Attrs, h: &Header, c: &CredChangeEvent, proc: ProcContext<'_>) -> String {
    let who = syscall_attrs(a, h, &c.sys, proc);
    // setfsuid/setfsgid return the previous id, never an errno (the raw
    // value stays in vigil.syscall.return): a refusal is seen in the
    // credentials after the call, and reported as the EPERM it stands for.
    let refused = c.fs_id_refused();
    if refused {
        a.str(&key::ERROR_TYPE, "EPERM");
    }
    let old = cred_values(&c.old_creds, &c.old_caps);
    let new = cred_values(&c.new_creds, &c.new_caps);
    let mut changed: Vec<std::borrow::Cow<'static, str>> = Vec::new();
    let mut key = String::with_capacity(48);
    for (i, f) in attr::CRED_FIELDS.iter().enumerate() {
        for (prefix, v) in [(attr::VIGIL_PRIV_OLD_PREFIX, old[i]), (attr::VIGIL_PRIV_NEW_PREFIX, new[i])] {
            key.clear();
            key.push_str(prefix);
            key.push_str(f);
            a.int(&key, i64::try_from(v).unwrap_or(i64::MAX));
        }
        if old[i] != new[i] {
            changed.push((*f).into());
        }
    }
    let requested: Vec<std::borrow::Cow<'_, str>> =
        c.requested.iter().map(|v| if *v == u32::MAX { "-1".into() } else { v.to_string().into() }).collect();
    a.str_array(&key::VIGIL_PRIV_REQUESTED, &requested).str_array(&key::VIGIL_PRIV_CHANGED, &changed);
    let name = crate::abi::syscall_name(c.sys.syscall).unwrap_or("unknown");
    let result = if refused { format!("EPERM (refused; returned the previous id {})", c.sys.ret) } else { outcome(&c.sys) };
    format!("{name}({}) by {who} pid={}: {result}; euid {} -> {}", requested.join(", "), h.tgid, c.old_creds.euid, c.new_creds.euid)
}

/// CLONE_NEW* flags (include/uapi/linux/sched.h), by namespace index.
const CLONE_NEW: [u32; crate::abi::NS_MAX] =
    [0x0002_0000, 0x0400_0000, 0x0800_0000, 0x2000_0000, 0x4000_0000, 0x80, 0x0200_0000, 0x1000_0000];

fn ns_attrs(a: &mut Attrs, h: &Header, n: &NamespaceEvent, proc: ProcContext<'_>) -> String {
    let who = syscall_attrs(a, h, &n.sys, proc);
    a.int(&key::VIGIL_NS_FLAGS, n.flags);
    if let Some(fd) = n.fd {
        a.int(&key::VIGIL_NS_FD, fd);
    }
    // From the namespace file setns used when there was one (its nstype
    // may be 0, "any"), else from the flags.
    let types: Vec<std::borrow::Cow<'static, str>> =
        crate::abi::NAMESPACES.iter().zip(CLONE_NEW).filter(|(_, bit)| n.types & bit != 0).map(|(t, _)| (*t).into()).collect();
    a.str(&key::VIGIL_NS_TYPES_SOURCE, n.types_source.as_str());
    let mut changed: Vec<std::borrow::Cow<'static, str>> = Vec::new();
    let mut key = String::with_capacity(40);
    for (i, t) in crate::abi::NAMESPACES.iter().enumerate() {
        for (prefix, v) in [(attr::VIGIL_NS_OLD_PREFIX, n.old_ns[i]), (attr::VIGIL_NS_NEW_PREFIX, n.new_ns[i])] {
            key.clear();
            key.push_str(prefix);
            key.push_str(t);
            a.int(&key, v);
        }
        if n.old_ns[i] != n.new_ns[i] {
            changed.push((*t).into());
        }
    }
    a.str_array(&key::VIGIL_NS_TYPES, &types).str_array(&key::VIGIL_NS_CHANGED, &changed);
    let name = crate::abi::syscall_name(n.sys.syscall).unwrap_or("unknown");
    format!("{name} [{}] by {who} pid={}: {}; changed [{}]", types.join(" "), h.tgid, outcome(&n.sys), changed.join(" "))
}

/// An IP address as text, formatted on the stack (no allocation: this runs
/// for every network record); empty for no address. The same text as
/// `IpAddr`'s `Display`; 64 bytes is more than the longest IPv6 text (45,
/// `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`).
fn ip_text(ip: Option<std::net::IpAddr>) -> StackText<64> {
    use std::fmt::Write;
    let mut t = StackText::new();
    // Cannot fail: the text fits.
    let _ = match ip {
        None => Ok(()),
        Some(std::net::IpAddr::V4(v4)) => {
            let [a, b, c, d] = v4.octets();
            write_decimal(&mut t, a.into())
                .and_then(|()| t.write_char('.'))
                .and_then(|()| write_decimal(&mut t, b.into()))
                .and_then(|()| t.write_char('.'))
                .and_then(|()| write_decimal(&mut t, c.into()))
                .and_then(|()| t.write_char('.'))
                .and_then(|()| write_decimal(&mut t, d.into()))
        }
        Some(v6 @ std::net::IpAddr::V6(_)) => write!(t, "{v6}"),
    };
    t
}

fn net_attrs(a: &mut Attrs, h: &Header, n: &NetEvent, proc: ProcContext<'_>) -> String {
    let who = syscall_attrs(a, h, &n.sys, proc);
    let sock_type = match n.sock_type {
        1 => "stream",
        2 => "dgram",
        3 => "raw",
        5 => "seqpacket",
        _ => "other",
    };
    a.str(&key::VIGIL_NET_SOCKET_TYPE, sock_type).str(&key::VIGIL_NET_ADDRESS_SOURCE, n.addr_source.as_str()).int(&key::VIGIL_NET_FD, n.fd);
    let verb = crate::abi::syscall_name(n.sys.syscall).unwrap_or("unknown");
    if h.event == crate::abi::EventType::NetworkListen {
        a.int(&key::VIGIL_NET_BACKLOG, n.backlog);
    }
    // `<verb> <what> by <who> pid=<tgid>: <outcome>`, built by hand: this
    // runs for every network record.
    let mut body = String::with_capacity(verb.len() + who.len() + 128);
    body.push_str(verb);
    body.push(' ');
    if let Some(path) = &n.unix_path {
        a.str(&key::NETWORK_TRANSPORT, "unix");
        // An abstract name starts with a NUL; shown as '@' like ss(8) does.
        let shown: Option<Cow<'_, [u8]>> = path.bytes.as_ref().map(|b| match b.split_first() {
            Some((0, rest)) => Cow::Owned([b"@".as_slice(), rest].concat()),
            _ => Cow::Borrowed(b.as_slice()),
        });
        let shown = shown.as_deref().map(escape);
        match &shown {
            Some(p) => {
                a.str(&key::NETWORK_PEER_ADDRESS, p);
            }
            None => {
                a.unavailable(attr::NETWORK_PEER_ADDRESS, path.reason.map_or("unknown", |r| r.as_str()));
            }
        }
        body.push_str("unix ");
        body.push_str(shown.as_deref().unwrap_or("(unknown)"));
    } else {
        let transport: Cow<'_, str> = match n.protocol {
            6 => "tcp".into(),
            17 => "udp".into(),
            other => other.to_string().into(),
        };
        a.str(&key::NETWORK_TRANSPORT, &transport).str(&key::NETWORK_TYPE, if n.family == 10 { "ipv6" } else { "ipv4" });
        let local = ip_text(n.ip(&n.local.0));
        a.str(&key::NETWORK_LOCAL_ADDRESS, local.as_str()).int(&key::NETWORK_LOCAL_PORT, n.local.1);
        let has_peer = n.peer.1 != 0 || n.peer.0 != [0; 16];
        let peer = has_peer.then(|| ip_text(n.ip(&n.peer.0)));
        if let Some(peer) = &peer {
            a.str(&key::NETWORK_PEER_ADDRESS, peer.as_str()).int(&key::NETWORK_PEER_PORT, n.peer.1);
        }
        let push_endpoint = |body: &mut String, ip: &StackText<64>, port: u16| {
            if n.family == 10 {
                body.push('[');
                body.push_str(ip.as_str());
                body.push(']');
            } else {
                body.push_str(ip.as_str());
            }
            body.push(':');
            push_padded(body, u64::from(port), 1);
        };
        body.push_str(&transport);
        body.push(' ');
        push_endpoint(&mut body, &local, n.local.1);
        if let Some(peer) = &peer {
            body.push_str(" -> ");
            push_endpoint(&mut body, peer, n.peer.1);
        }
    }
    push_actor_outcome(&mut body, &who, h.tgid, &n.sys);
    body
}

/// `enum bpf_prog_type` names, by value.
const BPF_PROG_TYPES: &[&str] = &[
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
    "netfilter",
];

/// `enum bpf_map_type` names, by value.
const BPF_MAP_TYPES: &[&str] = &[
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

fn table_name(table: &[&'static str], v: u32) -> std::borrow::Cow<'static, str> {
    table.get(v as usize).map_or_else(|| v.to_string().into(), |n| (*n).into())
}

fn bpf_command(cmd: u32) -> std::borrow::Cow<'static, str> {
    match cmd {
        0 => "map_create".into(),
        5 => "prog_load".into(),
        8 => "prog_attach".into(),
        17 => "raw_tracepoint_open".into(),
        18 => "btf_load".into(),
        28 => "link_create".into(),
        other => other.to_string().into(),
    }
}

fn bpf_attrs(a: &mut Attrs, h: &Header, b: &BpfEvent, proc: ProcContext<'_>) -> String {
    let who = syscall_attrs(a, h, &b.sys, proc);
    let cmd = bpf_command(b.cmd);
    a.str(&key::VIGIL_BPF_COMMAND, &cmd).str(&key::VIGIL_BPF_SOURCE, b.source.as_str());
    let what = match b.cmd {
        5 => {
            let t = table_name(BPF_PROG_TYPES, b.prog_type);
            a.str(&key::VIGIL_BPF_PROGRAM_TYPE, &t).int(&key::VIGIL_BPF_INSTRUCTIONS, b.insn_cnt);
            a.int(&key::VIGIL_BPF_ATTACH_TYPE, b.attach_type);
            format!(" {t} program")
        }
        0 => {
            let t = table_name(BPF_MAP_TYPES, b.map_type);
            a.str(&key::VIGIL_BPF_MAP_TYPE, &t);
            format!(" {t} map")
        }
        // Attaching: the attach type as passed, and the program attached
        // when the kernel object was found (name, id and these).
        8 | 17 | 28 => {
            if b.cmd != 17 {
                a.int(&key::VIGIL_BPF_ATTACH_TYPE, b.attach_type);
            }
            if b.source == crate::decode::PathSource::KernelObject {
                let t = table_name(BPF_PROG_TYPES, b.prog_type);
                a.str(&key::VIGIL_BPF_PROGRAM_TYPE, &t).int(&key::VIGIL_BPF_INSTRUCTIONS, b.insn_cnt);
                format!(" of {t} program")
            } else {
                String::new()
            }
        }
        _ => String::new(),
    };
    if !b.name.is_empty() {
        a.bytes(&key::VIGIL_BPF_NAME, &b.name);
    }
    if let Some(id) = b.id {
        a.int(&key::VIGIL_BPF_ID, id);
    }
    format!("bpf {cmd}{what} {} by {who} pid={}: {}", escape(&b.name), h.tgid, outcome(&b.sys))
}

fn module_attrs(a: &mut Attrs, h: &Header, m: &ModuleEvent, proc: ProcContext<'_>) -> String {
    let who = syscall_attrs(a, h, &m.sys, proc);
    let what = match (&m.path, m.fd) {
        (Some(p), Some(fd)) => {
            a.field(attr::FILE_PATH, p).int(&key::VIGIL_MODULE_FD, fd).int(&key::VIGIL_MODULE_FLAGS, m.flags);
            p.bytes.as_deref().map_or_else(|| "(file unavailable)".to_owned(), |b| escape(b).into_owned())
        }
        _ => {
            a.int(&key::VIGIL_MODULE_SIZE, i64::try_from(m.len).unwrap_or(i64::MAX));
            format!("image of {} bytes", m.len)
        }
    };
    format!("module load {what} by {who} pid={}: {}", h.tgid, outcome(&m.sys))
}

fn ptrace_request_name(req: i64) -> Option<&'static str> {
    Some(match req {
        0 => "PTRACE_TRACEME",
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        6 => "PTRACE_POKEUSER",
        13 => "PTRACE_SETREGS",
        15 => "PTRACE_SETFPREGS",
        16 => "PTRACE_ATTACH",
        17 => "PTRACE_DETACH",
        0x4205 => "PTRACE_SETREGSET",
        0x4206 => "PTRACE_SEIZE",
        _ => return None,
    })
}

fn ptrace_attrs(a: &mut Attrs, h: &Header, p: &PtraceEvent, proc: ProcContext<'_>) -> String {
    let who = syscall_attrs(a, h, &p.sys, proc);
    a.int(&key::VIGIL_PTRACE_REQUEST, p.request).int(&key::VIGIL_PTRACE_ADDR, i64::try_from(p.addr).unwrap_or(i64::MAX));
    let name = ptrace_request_name(p.request);
    if let Some(n) = name {
        a.str(&key::VIGIL_PTRACE_REQUEST_NAME, n);
    }
    // TRACEME names no target: the tracer is the parent.
    let target = if p.request != 0 {
        a.int(&key::VIGIL_PTRACE_TARGET_PID, p.target_pid);
        if let Some(tgid) = p.target_tgid {
            a.int(&key::VIGIL_PTRACE_TARGET_PROCESS_PID, tgid);
        }
        match proc.target.and_then(|t| t.exe.as_deref()) {
            Some(exe) => {
                a.bytes(&key::VIGIL_PTRACE_TARGET_EXE, exe);
                format!(" pid={} ({})", p.target_pid, escape(exe))
            }
            None => {
                a.unavailable(attr::VIGIL_PTRACE_TARGET_EXE, attr::REASON_LOST_CONTEXT);
                format!(" pid={}", p.target_pid)
            }
        }
    } else {
        String::new()
    };
    format!("ptrace {}{target} by {who} pid={}: {}", name.map_or_else(|| p.request.to_string(), str::to_owned), h.tgid, outcome(&p.sys))
}

/// MS_* flags (include/uapi/linux/mount.h), in order.
const MOUNT_FLAGS: &[(u32, &str)] = &[
    (1, "MS_RDONLY"),
    (2, "MS_NOSUID"),
    (4, "MS_NODEV"),
    (8, "MS_NOEXEC"),
    (16, "MS_SYNCHRONOUS"),
    (32, "MS_REMOUNT"),
    (64, "MS_MANDLOCK"),
    (128, "MS_DIRSYNC"),
    (256, "MS_NOSYMFOLLOW"),
    (1024, "MS_NOATIME"),
    (2048, "MS_NODIRATIME"),
    (4096, "MS_BIND"),
    (8192, "MS_MOVE"),
    (16384, "MS_REC"),
    (32768, "MS_SILENT"),
    (1 << 16, "MS_POSIXACL"),
    (1 << 17, "MS_UNBINDABLE"),
    (1 << 18, "MS_PRIVATE"),
    (1 << 19, "MS_SLAVE"),
    (1 << 20, "MS_SHARED"),
    (1 << 21, "MS_RELATIME"),
    (1 << 22, "MS_KERNMOUNT"),
    (1 << 23, "MS_I_VERSION"),
    (1 << 24, "MS_STRICTATIME"),
    (1 << 25, "MS_LAZYTIME"),
];

fn mount_attrs(a: &mut Attrs, h: &Header, m: &MountEvent, proc: ProcContext<'_>) -> String {
    let who = syscall_attrs(a, h, &m.sys, proc);
    a.field(attr::VIGIL_MOUNT_TARGET, &m.target).int(&key::VIGIL_MOUNT_FLAGS, i64::try_from(m.flags).unwrap_or(i64::MAX));
    let target = m.target.bytes.as_deref().map_or(std::borrow::Cow::Borrowed("(target unavailable)"), escape);
    let mut body = String::new();
    if let (Some(source), Some(fstype)) = (&m.source, &m.fstype) {
        // A NULL source or type (remount, bind, propagation change) is absent.
        if source.bytes.is_some() || source.reason != Some(crate::abi::Reason::NotSupported) {
            a.field(attr::VIGIL_MOUNT_SOURCE, source);
        }
        if fstype.bytes.is_some() || fstype.reason != Some(crate::abi::Reason::NotSupported) {
            a.field(attr::VIGIL_MOUNT_FSTYPE, fstype);
        }
        a.str_array(&key::VIGIL_MOUNT_FLAG_NAMES, &flag_names(u32::try_from(m.flags & 0xffff_ffff).unwrap_or(0), MOUNT_FLAGS));
        body = format!(
            "mount {} on {target} type {}",
            source.bytes.as_deref().map_or(std::borrow::Cow::Borrowed("none"), escape),
            fstype.bytes.as_deref().map_or(std::borrow::Cow::Borrowed("none"), escape)
        );
    } else {
        body.push_str("umount ");
        body.push_str(&target);
    }
    format!("{body} by {who} pid={}: {}", h.tgid, outcome(&m.sys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, tests::exec_record};
    use crate::otel::wire::EncodedLog;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};

    fn to_log_record(rec: &Record, proc: ProcContext<'_>, observed_ns: u64, cgroup_path: Option<&str>, gap: u64) -> EncodedLog {
        EncodedLog(write_log_record(rec, &ctx(), proc, observed_ns, cgroup_path, gap, Vec::new()))
    }

    fn ctx() -> MapContext {
        MapContext { clock: BootClock::with_offset(1_700_000_000_000_000_000), boot_id: "b00t".into(), session: "5".into() }
    }

    /// A creation time kept from an earlier record is used only when the
    /// clock still maps the start to the same Unix ns.
    #[test]
    fn cached_creation_times_are_used_only_when_current() {
        let c = ctx();
        let fresh = creation_time(&c, 5_000, None);
        assert_eq!(fresh, Rfc3339::new(c.clock.to_unix_ns(5_000)));
        assert_eq!(fresh.as_str(), "2023-11-14T22:13:20.000005000Z");
        // A stale one (the clock moved, or another start): formatted anew.
        let stale = Rfc3339::new(c.clock.to_unix_ns(5_001));
        assert_eq!(creation_time(&c, 5_000, Some(stale)), fresh);
        let moved = MapContext { clock: BootClock::with_offset(1_700_000_000_000_000_007), ..ctx() };
        assert_eq!(creation_time(&moved, 5_000, Some(fresh)).as_str(), "2023-11-14T22:13:20.000005007Z");
        // A current one is reused as it is.
        assert_eq!(creation_time(&c, 5_000, Some(fresh)), fresh);
    }

    /// An exec body written in place has the length it announces and the
    /// text `format!` gives, whatever the numbers' widths and the arguments.
    #[test]
    fn exec_bodies_written_in_place_are_the_formatted_ones() {
        let cases: [(&str, &[&str], bool, [u32; 3]); 5] = [
            ("/usr/bin/python3", &["python3", "-m", "pip"], false, [10_000, 900, 1000]),
            ("/bin/true", &[], false, [0, 0, 0]),
            ("(executable unavailable)", &[""], true, [9, 10, 99]),
            ("/tmp/\\x1b[31m", &["a b", "", "é\\xff"], true, [u32::MAX, 100_000, 1_000_000_000]),
            ("x", &["1", "22", "333", "4444"], false, [1, 12, 123]),
        ];
        for (exe, args, truncated, [pid, ppid, uid]) in cases {
            let body = ExecBody {
                exe: Cow::Borrowed(exe),
                args: args.iter().map(|a| Cow::Borrowed(*a)).collect(),
                truncated,
                numbers: [(" pid=", pid), (" ppid=", ppid), (" uid=", uid)],
            };
            let cut = if truncated { " [argv truncated]" } else { "" };
            let want = format!("exec {exe} [{}]{cut} pid={pid} ppid={ppid} uid={uid}", args.join(" "));
            assert_eq!(body.len(), want.len(), "{want}");
            let mut got = vec![0xee];
            wire::put_any_str_with(&mut got, log_record::BODY, body.len(), |w| body.write(w));
            let mut expected = vec![0xee];
            wire::put_any_field(&mut expected, log_record::BODY, AnyRef::Str(&want));
            assert_eq!(got, expected, "{want}");
        }
    }

    fn get<'a>(kvs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
        kvs.iter().find(|k| k.key == key).and_then(|k| k.value.as_ref()).and_then(|v| v.value.as_ref())
    }

    #[test]
    fn exec_maps_semconv_attributes() {
        let rec = decode(&exec_record(b"/usr/bin/ls", b"ls", b"ls\0-la\0a\nb\0", b"/home/u")).expect("decode");
        let lr = to_log_record(&rec, OBSERVED, 1, Some("/user.slice"), 0).decode().expect("decodes");
        assert_eq!(lr.event_name, "vigil.process.exec");
        assert_eq!(lr.time_unix_nano, 1_700_000_005_000_000_000);
        assert_eq!(get(&lr.attributes, "process.executable.name"), Some(&Value::StringValue("ls".into())));
        assert_eq!(get(&lr.attributes, "process.pid"), Some(&Value::IntValue(1234)));
        assert_eq!(get(&lr.attributes, "log.record.uid"), Some(&Value::StringValue("b00t:5-1-0:42".into())));
        assert_eq!(get(&lr.attributes, "vigil.stream.id"), Some(&Value::StringValue("5-1-0".into())));
        let Some(Value::ArrayValue(args)) = get(&lr.attributes, "process.command_args") else { panic!("argv array") };
        let args: Vec<_> = args.values.iter().map(|v| v.value.clone()).collect();
        assert_eq!(
            args,
            vec![Some(Value::StringValue("ls".into())), Some(Value::StringValue("-la".into())), Some(Value::StringValue("a\\x0ab".into()))]
        );
        let Some(AnyValue { value: Some(Value::StringValue(body)) }) = &lr.body else { panic!("body") };
        assert!(!body.contains('\n'), "{body}");
        assert!(get(&lr.attributes, "vigil.truncated_fields").is_none());
        assert!(get(&lr.attributes, "vigil.unavailable_fields").is_none());
    }

    #[test]
    fn exit_without_context_marks_lost_context() {
        let rec = Record {
            header: Header { event: crate::abi::EventType::Exit, cpu: 0, lane: 0, seq: 1, ktime_ns: 10, tgid: 9, pid: 9 },
            event: Event::Exit(ExitEvent { ppid: 1, status: 9, start_ns: 1, group_dead: true, comm: b"x".to_vec() }),
        };
        let lr = to_log_record(&rec, ProcContext::from_table(None, None), 1, None, 3).decode().expect("decodes");
        assert_eq!(get(&lr.attributes, "vigil.process.exit.signal_name"), Some(&Value::StringValue("SIGKILL".into())));
        assert_eq!(get(&lr.attributes, "process.exit.code"), None);
        assert_eq!(
            get(&lr.attributes, "vigil.unavailable_reason.process.executable.path"),
            Some(&Value::StringValue("lost_context".into()))
        );
        assert_eq!(get(&lr.attributes, "vigil.context.source"), Some(&Value::StringValue("unknown".into())));
        assert_eq!(get(&lr.attributes, "vigil.stream.gap_before"), Some(&Value::IntValue(3)));
        assert_eq!(get(&lr.attributes, "vigil.process.name_mismatch"), None, "unknown without context");
    }

    /// An open submitted through io_uring: the hook and the io_uring mark
    /// say so, vigil.syscall names the syscall equivalent.
    #[test]
    fn io_uring_open_is_marked() {
        use crate::abi::{EventType, HookKind};
        use crate::decode::tests::file_record;
        let mut raw = file_record(EventType::FileOpen, 3, b"/etc/passwd", None);
        let hook = std::mem::offset_of!(crate::abi::RawFile, hook);
        raw[hook..hook + 4].copy_from_slice(&(HookKind::IoUring as u32).to_ne_bytes());
        let rec = decode(&raw).expect("decode");
        let lr = to_log_record(&rec, ProcContext::from_table(None, None), 1, None, 0).decode().expect("decodes");
        assert_eq!(get(&lr.attributes, "vigil.hook"), Some(&Value::StringValue("tp_btf/io_uring_complete(openat)".into())));
        assert_eq!(get(&lr.attributes, "vigil.io_uring"), Some(&Value::BoolValue(true)));
        assert_eq!(get(&lr.attributes, "vigil.syscall"), Some(&Value::StringValue("openat".into())));
    }

    /// An io_uring open that posts no completion on success, reported at
    /// submission: its outcome is unavailable (never read as a result or
    /// an errno), and hook and body say so.
    #[test]
    fn io_uring_submission_has_no_outcome() {
        use crate::abi::{EventType, HookKind};
        use crate::decode::tests::file_record;
        let mut raw = file_record(EventType::FileOpen, -13, b"/etc/passwd", None);
        let hook = std::mem::offset_of!(crate::abi::RawFile, hook);
        raw[hook..hook + 4].copy_from_slice(&(HookKind::IoUringSubmit as u32).to_ne_bytes());
        let rec = decode(&raw).expect("decode");
        let lr = to_log_record(&rec, ProcContext::from_table(None, None), 1, None, 0).decode().expect("decodes");
        assert_eq!(get(&lr.attributes, "vigil.hook"), Some(&Value::StringValue("tp_btf/io_uring_submit_req(openat)".into())));
        assert_eq!(get(&lr.attributes, "vigil.io_uring"), Some(&Value::BoolValue(true)));
        assert_eq!(get(&lr.attributes, "vigil.syscall.return"), None);
        assert_eq!(get(&lr.attributes, "error.type"), None, "no outcome, no errno");
        assert_eq!(get(&lr.attributes, "vigil.unavailable_reason.vigil.syscall.return"), Some(&Value::StringValue("not_supported".into())));
        let Some(Value::ArrayValue(missing)) = get(&lr.attributes, "vigil.unavailable_fields") else { panic!("unavailable fields") };
        assert!(missing.values.iter().any(|v| v.value == Some(Value::StringValue("vigil.syscall.return".into()))));
        let Some(AnyValue { value: Some(Value::StringValue(body)) }) = &lr.body else { panic!("body") };
        assert!(body.ends_with(": submitted, outcome not reported"), "{body}");
    }

    /// An unlink seen by the BPF-LSM hook: allowed so far is not an
    /// outcome (the kernel's own checks come after the hook); a denial by
    /// an earlier LSM is.
    #[test]
    fn lsm_records_report_an_outcome_only_for_a_denial() {
        use crate::abi::{EventType, HookKind};
        use crate::decode::tests::file_record;
        let hook = std::mem::offset_of!(crate::abi::RawFile, hook);
        let map = |ret: i64| {
            let mut raw = file_record(EventType::FileUnlink, ret, b"/srv/x", None);
            raw[hook..hook + 4].copy_from_slice(&(HookKind::Lsm as u32).to_ne_bytes());
            to_log_record(&decode(&raw).expect("decode"), ProcContext::from_table(None, None), 1, None, 0).decode().expect("decodes")
        };
        let body = |lr: &opentelemetry_proto::tonic::logs::v1::LogRecord| match &lr.body {
            Some(AnyValue { value: Some(Value::StringValue(b)) }) => b.clone(),
            other => panic!("body {other:?}"),
        };
        let allowed = map(0);
        assert_eq!(get(&allowed.attributes, "vigil.hook"), Some(&Value::StringValue("lsm/path_unlink".into())));
        assert_eq!(get(&allowed.attributes, "vigil.syscall.return"), None);
        assert_eq!(get(&allowed.attributes, "error.type"), None);
        assert_eq!(
            get(&allowed.attributes, "vigil.unavailable_reason.vigil.syscall.return"),
            Some(&Value::StringValue("not_supported".into()))
        );
        assert!(body(&allowed).ends_with(": attempted, outcome not reported"), "{}", body(&allowed));
        let denied = map(-1);
        assert_eq!(get(&denied.attributes, "vigil.syscall.return"), Some(&Value::IntValue(-1)));
        assert_eq!(get(&denied.attributes, "error.type"), Some(&Value::StringValue("EPERM".into())));
        assert!(body(&denied).ends_with(": EPERM"), "{}", body(&denied));
    }

    #[test]
    fn file_open_maps_path_flags_and_errno() {
        use crate::abi::EventType;
        use crate::decode::tests::file_record;
        let rec = decode(&file_record(EventType::FileOpen, 3, b"/etc/passwd", None)).expect("decode");
        let lr = to_log_record(&rec, ProcContext::from_table(None, None), 1, None, 0).decode().expect("decodes");
        assert_eq!(lr.event_name, "vigil.file.open");
        assert_eq!(get(&lr.attributes, "file.path"), Some(&Value::StringValue("/etc/passwd".into())));
        assert_eq!(get(&lr.attributes, "file.name"), Some(&Value::StringValue("passwd".into())));
        assert_eq!(get(&lr.attributes, "vigil.file.path_source"), Some(&Value::StringValue("kernel_object".into())));
        assert_eq!(get(&lr.attributes, "vigil.syscall"), Some(&Value::StringValue("openat".into())));
        assert_eq!(get(&lr.attributes, "vigil.hook"), Some(&Value::StringValue("tracepoint/syscalls/sys_exit_openat".into())));
        assert_eq!(get(&lr.attributes, "vigil.io_uring"), None, "a syscall");
        assert_eq!(get(&lr.attributes, "file.mode"), Some(&Value::StringValue("0644".into())));
        assert_eq!(get(&lr.attributes, "vigil.file.access"), Some(&Value::StringValue("write".into())));
        assert_eq!(get(&lr.attributes, "error.type"), None);
        assert_eq!(get(&lr.attributes, "vigil.stream.id"), Some(&Value::StringValue("5-0-1".into())), "bulk lane");
        let rec = decode(&file_record(EventType::FileOpen, -13, b"/root/x", None)).expect("decode");
        let lr = to_log_record(&rec, ProcContext::from_table(None, None), 1, None, 0).decode().expect("decodes");
        assert_eq!(get(&lr.attributes, "error.type"), Some(&Value::StringValue("EACCES".into())));
        assert_eq!(get(&lr.attributes, "vigil.syscall.return"), Some(&Value::IntValue(-13)));
        assert_eq!(get(&lr.attributes, "vigil.file.path_source"), Some(&Value::StringValue("syscall_argument".into())));
        assert_eq!(get(&lr.attributes, "vigil.file.inode"), None, "no object, no inode");
        for (ret, want) in [(-512, "ERESTARTSYS"), (-600, "_OTHER"), (-41, "_OTHER")] {
            let rec = decode(&file_record(EventType::FileOpen, ret, b"/root/x", None)).expect("decode");
            let lr = to_log_record(&rec, ProcContext::from_table(None, None), 1, None, 0).decode().expect("decodes");
            assert_eq!(get(&lr.attributes, "error.type"), Some(&Value::StringValue(want.into())), "{ret}");
            assert_eq!(get(&lr.attributes, "vigil.syscall.return"), Some(&Value::IntValue(ret)));
        }
    }

    /// vigil.namespace.types come from the record's types (the namespace
    /// file's type for setns(fd, 0)), not from the flags.
    #[test]
    fn setns_types_come_from_the_record_not_the_flags() {
        use crate::abi::{encode_fixed, path_source, EventType, RawNsChange};
        let map = |flags: u32, types: u32, source: u32| {
            let mut raw = RawNsChange {
                syscall: 58,
                hook: crate::abi::HookKind::SyscallTp as u32,
                flags,
                fd: 3,
                types,
                types_source: source,
                ..RawNsChange::default()
            };
            raw.new_ns[1] = 7;
            let rec = decode(&encode_fixed(raw, EventType::PrivilegeNamespace, |r| &mut r.hdr)).expect("decode");
            let lr = to_log_record(&rec, ProcContext::from_table(None, None), 1, None, 0).decode().expect("decodes");
            let Some(Value::ArrayValue(t)) = get(&lr.attributes, "vigil.namespace.types") else { panic!("types") };
            let names: Vec<_> = t.values.iter().map(|v| v.value.clone()).collect();
            (names, get(&lr.attributes, "vigil.namespace.types_source").cloned(), get(&lr.attributes, "vigil.namespace.flags").cloned())
        };
        let s = |v: &str| Some(Value::StringValue(v.into()));
        // setns(fd, 0) on /proc/<pid>/ns/uts: CLONE_NEWUTS from the file.
        assert_eq!(map(0, 0x0400_0000, path_source::OBJECT), (vec![s("uts")], s("kernel_object"), Some(Value::IntValue(0))));
        // A pidfd with CLONE_NEWNET | CLONE_NEWTIME: the flags.
        let both = 0x4000_0000 | 0x80;
        assert_eq!(
            map(both, both, path_source::ARG),
            (vec![s("net"), s("time")], s("syscall_argument"), Some(Value::IntValue(both.into())))
        );
    }

    /// setfsuid/setfsgid return the previous id: vigil.syscall.return keeps
    /// it, and only a refusal (fs id unchanged, a real other id asked for)
    /// is a failure.
    #[test]
    fn setfsuid_refusal_is_eperm_and_the_return_stays_raw() {
        use crate::abi::{encode_fixed, EventType, RawCredChange, RawCreds, SYS_SETFSGID, SYS_SETFSUID};
        let map = |syscall: u32, ret: i64, asked: u32, old: u32, new: u32| {
            let creds = |fs: u32| RawCreds {
                uid: 1000,
                euid: 1000,
                suid: 1000,
                fsuid: fs,
                gid: 100,
                egid: 100,
                sgid: 100,
                fsgid: fs,
                ..RawCreds::default()
            };
            let raw = RawCredChange {
                ret,
                syscall,
                hook: crate::abi::HookKind::SyscallTp as u32,
                requested: [asked, 0, 0],
                nrequested: 1,
                old_creds: creds(old),
                new_creds: creds(new),
                ..RawCredChange::default()
            };
            let rec = decode(&encode_fixed(raw, EventType::PrivilegeCredChange, |r| &mut r.hdr)).expect("decode");
            let Event::CredChange(c) = &rec.event else { panic!("cred change") };
            let refused = c.fs_id_refused();
            let lr = to_log_record(&rec, ProcContext::from_table(None, None), 1, None, 0).decode().expect("decodes");
            assert_eq!(get(&lr.attributes, "vigil.syscall.return"), Some(&Value::IntValue(ret)), "raw return");
            let Some(AnyValue { value: Some(Value::StringValue(body)) }) = &lr.body else { panic!("body") };
            (refused, get(&lr.attributes, "error.type").cloned(), body.clone())
        };
        let eperm = Some(Value::StringValue("EPERM".into()));
        for sys in [SYS_SETFSUID, SYS_SETFSGID] {
            // Refused: asked for 0, still 1000, the kernel returned 1000.
            let (refused, err, body) = map(sys, 1000, 0, 1000, 1000);
            assert!(refused);
            assert_eq!(err, eperm);
            assert!(body.contains(": EPERM (refused; returned the previous id 1000);"), "{body}");
            // Allowed: changed.
            assert_eq!(map(sys, 1000, 2000, 1000, 2000).1, None);
            // A query (-1) and asking for the id already held change nothing
            // and refuse nothing (the probes do not report them).
            assert!(!map(sys, 1000, u32::MAX, 1000, 1000).0);
            assert!(!map(sys, 1000, 1000, 1000, 1000).0);
        }
        // Any other syscall: its errno decides.
        let (refused, err, _) = map(48, 0, 0, 1000, 1000);
        assert!(!refused);
        assert_eq!(err, None);
        assert_eq!(map(48, -1, 0, 1000, 1000).1, eperm);
    }

    #[test]
    fn open_flag_names_cover_every_bit() {
        assert_eq!(open_flag_names(0), ["O_RDONLY"]);
        assert_eq!(open_flag_names(0o1101), ["O_WRONLY", "O_CREAT", "O_TRUNC"]);
        assert_eq!(open_flag_names(0o2 | 0o2000000 | 0o40000000), ["O_RDWR", "O_CLOEXEC", "0o40000000"]);
    }

    /// The names the file records use without allocating are those of
    /// [`open_flag_names`], and flags it cannot name are left to it.
    #[test]
    fn open_flag_names_on_the_stack_match() {
        let mut buf = [""; OPEN_FLAG_NAMES_MAX];
        let mut all_known = 0;
        for (bit, _) in OPEN_FLAGS {
            all_known |= bit;
        }
        for flags in [0, 0o1, 0o2, 0o3, 0o1101, 0o2000101, all_known, all_known & !0o3, 0o100 | 0o20000000] {
            let n = open_flag_names_known(flags, &mut buf).unwrap_or_else(|| panic!("{flags:o} is named"));
            assert_eq!(buf[..n], open_flag_names(flags), "{flags:o}");
        }
        for flags in [0o40000000, 0o1 | 0o40000000, u32::MAX] {
            assert_eq!(open_flag_names_known(flags, &mut buf), None, "{flags:o}");
        }
    }

    #[test]
    fn octal_modes_match_format() {
        for mode in [0, 0o644, 0o100644, 0o104755, 0o7777, u32::MAX, 0o10] {
            assert_eq!(std::str::from_utf8(&octal_mode(mode)).expect("digits"), format!("{:04o}", mode & 0o7777), "{mode:o}");
        }
    }

    /// Each (kind, syscall) hook name is formatted once and then borrowed,
    /// and is the name formatting gives, for every kind and syscall.
    #[test]
    fn cached_hook_names_are_the_formatted_ones() {
        use crate::abi::{EventType, HookKind, SYSCALLS};
        for kind in HookKind::ALL.into_iter().map(Some).chain([None]) {
            for id in SYSCALLS.iter().map(|(id, _)| *id).chain([0, 99, 127, 128, 5000, u32::MAX]) {
                for event in [EventType::FileOpen, EventType::FileUnlink, EventType::NetworkConnect] {
                    let got = hook_name(kind, id, event);
                    assert_eq!(got, format_hook_name(kind, id, event), "{kind:?} {id} {event:?}");
                    if kind != Some(HookKind::Lsm) {
                        // No kind: the constant "unknown".
                        let cached = kind.is_none() || SYSCALLS.iter().any(|(i, _)| *i == id);
                        assert_eq!(matches!(got, Cow::Borrowed(_)), cached, "{kind:?} {id}");
                    }
                }
            }
        }
        assert_eq!(hook_name(Some(HookKind::SyscallTp), 2, EventType::FileOpen), "tracepoint/syscalls/sys_exit_openat");
        assert_eq!(hook_name(Some(HookKind::RawSyscall), 2, EventType::FileOpen), "tp_btf/sys_exit(openat)");
        assert_eq!(hook_name(Some(HookKind::IoUring), 3, EventType::FileOpen), "tp_btf/io_uring_complete(openat2)");
        assert_eq!(hook_name(Some(HookKind::IoUringOverflow), 2, EventType::FileOpen), "tp_btf/io_uring_cqe_overflow(openat)");
        assert_eq!(hook_name(Some(HookKind::Lsm), 6, EventType::FileUnlink), "lsm/path_unlink");
        assert_eq!(hook_name(Some(HookKind::SyscallTp), 99, EventType::FileOpen), "tracepoint/syscalls/sys_exit_unknown");
    }

    /// A syscall tracepoint's hook name is the attach point of an emitting
    /// program in the hook table, for every syscall the probes report
    /// (umount2's tracepoint is sys_exit_umount).
    #[test]
    fn syscall_tracepoint_hook_names_are_attach_points() {
        use crate::abi::{HookKind, SYSCALLS};
        use crate::probes::hooks::{Role, HOOKS};
        for (id, name) in SYSCALLS {
            let emitting = |h: &&crate::probes::hooks::Hook| h.kind == HookKind::SyscallTp && h.role == Role::Emit;
            let Some(hook) =
                HOOKS.iter().filter(emitting).find(|h| format_hook_name(Some(HookKind::SyscallTp), *id, h.event) == h.attach_point)
            else {
                panic!(
                    "{name}: no syscall tracepoint program is named {}",
                    format_hook_name(Some(HookKind::SyscallTp), *id, crate::abi::EventType::Exec)
                );
            };
            assert_eq!(hook_name(Some(HookKind::SyscallTp), *id, hook.event), hook.attach_point, "{name}");
        }
    }

    /// Escaping a path once and taking the basename of the escaped text
    /// gives the escaped basename, whatever bytes the path holds.
    #[test]
    fn basename_of_escaped_path_is_escaped_basename() {
        let paths: [&[u8]; 12] = [
            b"/usr/bin/ls",
            b"",
            b"/",
            b"/tmp/",
            b"noslash",
            b"/a\\b/c\\d",
            b"/x\n/y\x1b[31m",
            b"/bad\xff/\xe2\x82/\xac",
            b"/\xe2\x82\xac/\xf0\x9f/\x98\x80x",
            b"/rtl\xe2\x80\xae/gpj.exe",
            b"/nul\0/x\0",
            b"//double//slash",
        ];
        for p in paths {
            assert_eq!(escaped_basename(&escape(p)), escape(basename(p)), "{p:?}");
        }
    }

    #[test]
    fn ip_text_is_display() {
        use std::net::IpAddr;
        let ips: [IpAddr; 10] = [
            [0, 0, 0, 0].into(),
            [255, 255, 255, 255].into(),
            [10, 0, 9, 4].into(),
            [1, 20, 100, 199].into(),
            [0u16; 8].into(),
            [0, 0, 0, 0, 0, 0, 0, 1].into(),
            [0xfe80, 0, 0, 0, 0x216, 0x3eff, 0xfe12, 0x3456].into(),
            [0, 0, 0, 0, 0, 0xffff, 0xc0a8, 0x0101].into(),
            [0xffff; 8].into(),
            [0x2001, 0xdb8, 0, 0, 1, 0, 0, 1].into(),
        ];
        for ip in ips {
            assert_eq!(ip_text(Some(ip)).as_str(), ip.to_string());
        }
        assert_eq!(ip_text(None).as_str(), "");
    }

    /// The record uid written on the stack is the allocated one, and one
    /// that does not fit is refused (the caller then allocates).
    #[test]
    fn record_uids_on_the_stack() {
        use std::fmt::Write;
        let c = ctx();
        for (cpu, lane, seq) in [(0, 0, 0), (1, 1, 42), (255, 1, u64::MAX), (u32::MAX, u32::MAX, 10)] {
            let mut t = StackText::<128>::new();
            c.write_record_uid(&mut t, cpu, lane, seq).expect("fits");
            assert_eq!(t.as_str(), c.record_uid(cpu, lane, seq));
        }
        assert_eq!(c.record_uid(1, 0, 42), "b00t:5-1-0:42");
        let long = MapContext { boot_id: "x".repeat(120), ..ctx() };
        assert!(long.write_record_uid(&mut StackText::<128>::new(), 1, 1, 1_000_000).is_err());
        let mut t = StackText::<4>::new();
        assert!(t.write_str("abcde").is_err());
        assert_eq!(t.as_str(), "", "nothing half-written");
    }

    #[test]
    fn outcomes() {
        let sys = |ret| SyscallInfo { syscall: 2, ret, hook: None, comm: Vec::new() };
        for (ret, want) in [(3, "ok (3)"), (0, "ok (0)"), (-13, "EACCES"), (-4000, "errno 4000"), (-5000, "ok (-5000)")] {
            assert_eq!(outcome(&sys(ret)), want);
        }
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(9), Some("SIGKILL"));
        assert_eq!(signal_name(15), Some("SIGTERM"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(64), None);
    }
}
