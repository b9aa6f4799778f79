//! Finished process spans -> OTLP spans.

use super::{attr, kv_bool, kv_int, kv_str, kv_str_array};
use crate::otel::logs::signal_name;
use crate::spans::{base_name, FinishedSpan};
use opentelemetry_proto::tonic::trace::v1::span::{Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};

/// Map a finished span. `error_on_signal`: death by a signal sets status
/// ERROR (configurable, `spans.error_on_signal`).
pub fn to_span(f: &FinishedSpan, error_on_signal: bool) -> Span {
    let s = &f.span;
    let mut attributes = vec![kv_int(attr::PROCESS_PID, i64::from(s.key.pid)), kv_int(attr::PROCESS_PARENT_PID, i64::from(s.ppid))];
    if !s.key.image.is_empty() {
        attributes.push(kv_str(attr::PROCESS_EXECUTABLE_PATH, s.key.image.clone()));
        attributes.push(kv_str(attr::PROCESS_EXECUTABLE_NAME, base_name(&s.key.image)));
    }
    if let Some(argv) = &s.argv {
        attributes.push(kv_str_array(attr::PROCESS_COMMAND_ARGS, argv.iter().cloned()));
    }
    if let Some(uid) = s.uid {
        attributes.push(kv_int(attr::PROCESS_USER_ID, i64::from(uid)));
    }
    if let Some(code) = f.exit_code {
        attributes.push(kv_int(attr::PROCESS_EXIT_CODE, code));
    }
    if let Some(sig) = f.signal {
        attributes.push(kv_int(attr::VIGIL_EXIT_SIGNAL, i64::from(sig)));
        if let Some(name) = signal_name(sig) {
            attributes.push(kv_str(attr::VIGIL_EXIT_SIGNAL_NAME, name));
        }
    }
    attributes.push(kv_str(attr::VIGIL_SPAN_END_REASON, f.reason.as_str()));
    attributes.push(kv_bool(attr::VIGIL_SPAN_SYNTHETIC_END, f.reason.synthetic()));
    attributes.push(kv_str(attr::VIGIL_SPAN_START_SOURCE, s.start_source.as_str()));
    attributes.push(kv_int(attr::VIGIL_SPAN_SEGMENT, i64::from(s.segment)));
    let status = match f.signal {
        Some(sig) if error_on_signal => Some(Status {
            code: StatusCode::Error as i32,
            message: format!("killed by {}", signal_name(sig).map_or_else(|| format!("signal {sig}"), str::to_owned)),
        }),
        _ => None,
    };
    let links = s
        .link
        .map(|l| Link {
            trace_id: l.trace_id.to_vec(),
            span_id: l.span_id.to_vec(),
            attributes: vec![kv_str(attr::VIGIL_SPAN_LINK, if s.segment > 0 { "previous_segment" } else { "descends_from" })],
            ..Link::default()
        })
        .into_iter()
        .collect();
    Span {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        parent_span_id: s.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        name: s.name.clone(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: s.start_unix_ns,
        end_time_unix_nano: f.end_unix_ns.max(s.start_unix_ns),
        attributes,
        links,
        status,
        ..Span::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spans::{EndReason, OpenSpan, SpanKey, StartSource};

    fn finished(signal: Option<u32>, reason: EndReason) -> FinishedSpan {
        FinishedSpan {
            span: OpenSpan {
                key: SpanKey { pid: 5, start_ticks: 1, image: "/usr/bin/sleep".into(), disambiguator: 0 },
                trace_id: [1; 16],
                span_id: [2; 8],
                parent_span_id: Some([3; 8]),
                link: None,
                name: "sleep".into(),
                start_unix_ns: 10,
                segment: 0,
                start_source: StartSource::Exec,
                ppid: 4,
                argv: Some(vec!["sleep".into(), "1".into()]),
                uid: Some(0),
                session_leader: false,
                prior_images: vec![],
            },
            end_unix_ns: 20,
            reason,
            exit_code: None,
            signal,
        }
    }

    #[test]
    fn killed_process_span_is_an_error() {
        let s = to_span(&finished(Some(9), EndReason::Exit), true);
        assert_eq!(s.status.as_ref().map(|st| st.code), Some(StatusCode::Error as i32));
        assert_eq!(s.status.as_ref().map(|st| st.message.as_str()), Some("killed by SIGKILL"));
        assert_eq!(s.kind, SpanKind::Internal as i32);
        assert_eq!(s.parent_span_id, vec![3; 8]);
        assert!(to_span(&finished(Some(9), EndReason::Exit), false).status.is_none(), "configurable");
        assert!(to_span(&finished(None, EndReason::Exit), true).status.is_none());
    }

    #[test]
    fn synthetic_ends_are_marked() {
        let s = to_span(&finished(None, EndReason::AgentShutdown), true);
        let get = |k: &str| s.attributes.iter().find(|a| a.key == k).and_then(|a| a.value.clone()).and_then(|v| v.value);
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        assert_eq!(get("vigil.span.end_reason"), Some(Value::StringValue("agent_shutdown".into())));
        assert_eq!(get("vigil.span.synthetic_end"), Some(Value::BoolValue(true)));
        assert_eq!(get("vigil.span.start_source"), Some(Value::StringValue("exec".into())));
    }
}
