//! vigil's own records: `vigil.telemetry.loss` and `vigil.telemetry.heartbeat`
//! (OTEL-MAPPING.md, "Loss records" and "Heartbeat").
//!
//! These records describe the agent, not a process: they carry no process
//! attributes, and `vigil.context.source` is `observed` (the agent's own). They are numbered on the agent's
//! own stream (`vigil.telemetry.seq`, and `log.record.uid` =
//! `<boot_id>:<session>-agent:<seq>`), so a lost loss record or heartbeat is
//! itself visible as a gap; `vigil.loss.total` is cumulative for the same
//! reason. On a loss record, `vigil.stream.id` names the kernel stream the
//! records were lost from, as OTEL-MAPPING.md says.

use super::wire::{self, log_record, AnyRef, EncodedLog};
use super::{attr, push_padded, rfc3339_nanos, Attrs};
use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
use std::borrow::Cow;

/// Where a loss happened (`vigil.loss.stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LossStage {
    /// In the kernel, before the ring buffer.
    Kernel,
    /// In the agent, between ring buffer and exporter.
    Agent,
    /// At export.
    Export,
}

impl LossStage {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            LossStage::Kernel => "kernel",
            LossStage::Agent => "agent",
            LossStage::Export => "export",
        }
    }
}

/// One loss window of one stage and cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// Stage.
    pub stage: LossStage,
    /// `error.type`: `ringbuf_full`, `queue_full`, `malformed_record`, ...
    pub error_type: &'static str,
    /// Records lost in this window.
    pub count: u64,
    /// Records lost for this stage, cause, event and stream since start.
    pub total: u64,
    /// Event name of the lost records, when known.
    pub event_name: Option<&'static str>,
    /// Lane of the lost records (`critical`, `bulk`), when known.
    pub lane: Option<&'static str>,
    /// Kernel stream the loss happened on, when known.
    pub stream: Option<String>,
    /// Sequence range of the stream's gaps observed in this window.
    pub seq_range: Option<(u64, u64)>,
    /// Window start and end, Unix ns.
    pub window: (u64, u64),
}

/// The agent's own stream id.
pub fn agent_stream(session: &str) -> String {
    format!("{session}-agent")
}

/// Where and when an agent record is stamped.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    /// The probes' load session (see `MapContext::session`).
    pub session: &'a str,
    /// The host's boot id.
    pub boot_id: &'a str,
    /// Sequence number on the agent stream.
    pub seq: u64,
    /// Unix ns.
    pub now_ns: u64,
}

fn finish(mut a: Attrs, st: Stamp<'_>, severity: SeverityNumber, body: &str, event_name: &str) -> EncodedLog {
    let stream = agent_stream(st.session);
    let mut uid = String::with_capacity(st.boot_id.len() + stream.len() + 22);
    uid.push_str(st.boot_id);
    uid.push(':');
    uid.push_str(&stream);
    uid.push(':');
    push_padded(&mut uid, st.seq, 1);
    // The agent describes itself: its context is observed, not inferred.
    a.str(attr::VIGIL_CONTEXT_SOURCE, "observed").str(attr::LOG_RECORD_UID, &uid).int(attr::VIGIL_TELEMETRY_SEQ, int(st.seq));
    let mut out = a.finish();
    wire::put_fixed64(&mut out, log_record::TIME_UNIX_NANO, st.now_ns);
    wire::put_fixed64(&mut out, log_record::OBSERVED_TIME_UNIX_NANO, st.now_ns);
    wire::put_varint_field(&mut out, log_record::SEVERITY_NUMBER, severity as u64);
    let text = match severity {
        SeverityNumber::Error => "ERROR",
        SeverityNumber::Warn => "WARN",
        _ => "INFO",
    };
    wire::put_bytes(&mut out, log_record::SEVERITY_TEXT, text.as_bytes());
    wire::put_any_field(&mut out, log_record::BODY, AnyRef::Str(body));
    wire::put_bytes(&mut out, log_record::EVENT_NAME, event_name.as_bytes());
    EncodedLog(out)
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Encode a loss record (policy `shed`).
pub fn loss_record(loss: &Loss, st: Stamp<'_>) -> EncodedLog {
    loss_record_under(loss, crate::config::PolicyMode::Shed, st)
}

/// Encode a loss record under a drop policy: `vigil.policy` names it, and
/// under `alert` the record is an ERROR instead of a WARN.
pub fn loss_record_under(loss: &Loss, policy: crate::config::PolicyMode, st: Stamp<'_>) -> EncodedLog {
    let mut a = Attrs::with_capacity(512);
    a.str(attr::VIGIL_POLICY, policy.as_str());
    a.str(attr::ERROR_TYPE, loss.error_type)
        .str(attr::VIGIL_LOSS_STAGE, loss.stage.as_str())
        .int(attr::VIGIL_LOSS_COUNT, int(loss.count))
        .int(attr::VIGIL_LOSS_TOTAL, int(loss.total));
    if let Some(e) = loss.event_name {
        a.str(attr::VIGIL_LOSS_EVENT_NAME, e);
    }
    if let Some(l) = loss.lane {
        a.str(attr::VIGIL_LOSS_LANE, l);
    }
    if let Some(s) = &loss.stream {
        a.str(attr::VIGIL_STREAM_ID, s);
    }
    if let Some((first, last)) = loss.seq_range {
        a.int(attr::VIGIL_LOSS_SEQ_FIRST, int(first)).int(attr::VIGIL_LOSS_SEQ_LAST, int(last));
    }
    a.str(attr::VIGIL_LOSS_WINDOW_START, &rfc3339_nanos(loss.window.0)).str(attr::VIGIL_LOSS_WINDOW_END, &rfc3339_nanos(loss.window.1));
    let what = loss.event_name.unwrap_or("records");
    let on = loss.stream.as_deref().map_or(Cow::Borrowed(""), |s| Cow::Owned(format!(" on stream {s}")));
    let body = format!("lost {} {what} at stage {} ({}){on}; {} lost so far", loss.count, loss.stage.as_str(), loss.error_type, loss.total);
    let severity = if policy == crate::config::PolicyMode::Alert { SeverityNumber::Error } else { SeverityNumber::Warn };
    finish(a, st, severity, &body, attr::EVENT_TELEMETRY_LOSS)
}

/// Cumulative counters carried by a heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatCounters {
    /// `(attribute key, value)` pairs, in a stable order.
    pub counters: Vec<(&'static str, u64)>,
    /// `event=hook:state` for every probe.
    pub probes: Vec<String>,
}

/// Encode a heartbeat record.
pub fn heartbeat_record(hb: &HeartbeatCounters, interval_s: u64, st: Stamp<'_>) -> EncodedLog {
    let mut a = Attrs::with_capacity(1024);
    a.int(attr::VIGIL_HEARTBEAT_INTERVAL, int(interval_s));
    for (k, v) in &hb.counters {
        a.int(k, int(*v));
    }
    let probes: Vec<Cow<'_, str>> = hb.probes.iter().map(|p| Cow::Borrowed(p.as_str())).collect();
    a.str_array(attr::VIGIL_PROBES_STATUS, &probes);
    let lost: u64 = hb.counters.iter().filter(|(k, _)| *k == attr::HB_LOSS_TOTAL).map(|(_, v)| *v).sum();
    let body = format!("vigil heartbeat: {} probes, {lost} records lost so far", hb.probes.len());
    finish(a, st, SeverityNumber::Info, &body, attr::EVENT_TELEMETRY_HEARTBEAT)
}

/// Encode a rate-limit summary: `s.count` records of `s.event` by `s.tgid`
/// were suppressed between `first_unix_ns` and `last_unix_ns`.
pub fn suppressed_record(s: &crate::ratelimit::Suppressed, first_unix_ns: u64, last_unix_ns: u64, st: Stamp<'_>) -> EncodedLog {
    let mut a = Attrs::with_capacity(384);
    let (first, last) = (rfc3339_nanos(first_unix_ns), rfc3339_nanos(last_unix_ns));
    a.int(attr::PROCESS_PID, i64::from(s.tgid))
        .str(attr::VIGIL_SUPPRESSED_EVENT_NAME, s.event.event_name())
        .int(attr::VIGIL_SUPPRESSED_COUNT, int(s.count))
        .str(attr::VIGIL_SUPPRESSED_FIRST, &first)
        .str(attr::VIGIL_SUPPRESSED_LAST, &last);
    let body = format!("pid {} produced {} suppressed {} events between {first} and {last}", s.tgid, s.count, s.event.event_name());
    finish(a, st, SeverityNumber::Info, &body, attr::EVENT_TELEMETRY_SUPPRESSED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    fn get(l: &opentelemetry_proto::tonic::logs::v1::LogRecord, key: &str) -> Option<Value> {
        l.attributes.iter().find(|k| k.key == key).and_then(|k| k.value.clone()).and_then(|v| v.value)
    }

    #[test]
    fn loss_record_fields() {
        let loss = Loss {
            stage: LossStage::Kernel,
            error_type: "ringbuf_full",
            count: 5,
            total: 12,
            event_name: Some("vigil.process.exec"),
            lane: Some("critical"),
            stream: Some("s-1-0".into()),
            seq_range: Some((100, 104)),
            window: (1_000_000_000, 2_000_000_000),
        };
        let l = loss_record(&loss, Stamp { session: "s", boot_id: "boot", seq: 3, now_ns: 7 }).decode().expect("decodes");
        assert_eq!(l.event_name, "vigil.telemetry.loss");
        assert_eq!(l.severity_number, SeverityNumber::Warn as i32);
        assert_eq!(get(&l, "error.type"), Some(Value::StringValue("ringbuf_full".into())));
        assert_eq!(get(&l, "vigil.loss.count"), Some(Value::IntValue(5)));
        assert_eq!(get(&l, "vigil.loss.total"), Some(Value::IntValue(12)));
        assert_eq!(get(&l, "vigil.loss.seq.first"), Some(Value::IntValue(100)));
        assert_eq!(get(&l, "vigil.loss.lane"), Some(Value::StringValue("critical".into())));
        assert_eq!(get(&l, "vigil.stream.id"), Some(Value::StringValue("s-1-0".into())), "the stream the loss happened on");
        assert_eq!(get(&l, "vigil.telemetry.seq"), Some(Value::IntValue(3)));
        assert_eq!(get(&l, "log.record.uid"), Some(Value::StringValue("boot:s-agent:3".into())));
        assert_eq!(get(&l, "vigil.context.source"), Some(Value::StringValue("observed".into())), "on every record");
        assert_eq!(get(&l, "vigil.policy"), Some(Value::StringValue("shed".into())));
        let alert = loss_record_under(&loss, crate::config::PolicyMode::Alert, Stamp { session: "s", boot_id: "boot", seq: 4, now_ns: 7 })
            .decode()
            .expect("decodes");
        assert_eq!(
            (alert.severity_number, alert.severity_text.as_str()),
            (SeverityNumber::Error as i32, "ERROR"),
            "alert raises loss records"
        );
        assert_eq!(get(&alert, "vigil.policy"), Some(Value::StringValue("alert".into())));
    }

    #[test]
    fn suppressed_record_fields() {
        let s = crate::ratelimit::Suppressed { tgid: 77, event: crate::abi::EventType::FileOpen, count: 895, first_ns: 1, last_ns: 2 };
        let l = suppressed_record(&s, 1_000_000_000, 2_000_000_000, Stamp { session: "s", boot_id: "b", seq: 4, now_ns: 9 })
            .decode()
            .expect("decodes");
        assert_eq!(l.event_name, "vigil.telemetry.suppressed");
        assert_eq!(l.severity_text, "INFO");
        assert_eq!(get(&l, "process.pid"), Some(Value::IntValue(77)));
        assert_eq!(get(&l, "vigil.suppressed.event_name"), Some(Value::StringValue("vigil.file.open".into())));
        assert_eq!(get(&l, "vigil.suppressed.count"), Some(Value::IntValue(895)));
        assert_eq!(get(&l, "vigil.suppressed.first_time"), Some(Value::StringValue("1970-01-01T00:00:01.000000000Z".into())));
        let body = format!("{:?}", l.body);
        assert!(body.contains("pid 77 produced 895 suppressed vigil.file.open events between"), "{body}");
    }

    #[test]
    fn heartbeat_fields() {
        let hb = HeartbeatCounters {
            counters: vec![(attr::HB_KERNEL_EMITTED, 10), (attr::HB_LOSS_TOTAL, 2)],
            probes: vec!["a=b:attached".into()],
        };
        let l = heartbeat_record(&hb, 10, Stamp { session: "s", boot_id: "boot", seq: 1, now_ns: 7 }).decode().expect("decodes");
        assert_eq!(l.event_name, "vigil.telemetry.heartbeat");
        assert_eq!(get(&l, attr::HB_KERNEL_EMITTED), Some(Value::IntValue(10)));
        assert_eq!(get(&l, "vigil.heartbeat.interval"), Some(Value::IntValue(10)));
    }
}
