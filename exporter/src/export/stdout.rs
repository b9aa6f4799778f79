//! Console exporter, used when no OTLP endpoint is configured.
//!
//! - `text`: one line per record: time, severity, event name, body, then
//!   every attribute as `key=value`, then `trace_id=` and `span_id=` of the
//!   acting process's span when spans are on. Values are already escaped
//!   (no control characters, see `crate::escape`); the body and any value
//!   holding a space, `"`, `=`, `,`, `[`, `]` or `|` are double-quoted with
//!   `"` written as `\"`, so nothing a process controls can pose as another
//!   attribute. The resource is printed once, as a line starting with
//!   `# resource`.
//!   Spans take one line each too:
//!   `<start> SPAN <name> trace=<hex> span=<hex> parent=<hex or -> end=<end>
//!   duration_ms=<ms> status=<UNSET|OK|ERROR> | key=value ...` (with
//!   `status_message=<text>` after the status when there is one; the name is
//!   quoted like a value).
//! - `otlp-json`: one OTLP/JSON `ExportLogsServiceRequest` or
//!   `ExportTraceServiceRequest` per line, as the Collector's file exporter
//!   writes them.

use super::{Batch, Delivered, ExportError, Signal};
use crate::otel::rfc3339_nanos;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::fmt::Write as _;
use std::io::Write;

/// Writes requests to stdout.
#[derive(Debug)]
pub struct StdoutExporter {
    json: bool,
    resource_printed: bool,
}

/// Render an attribute value for the text format.
pub fn text_value(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => quote(s),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::ArrayValue(a)) => format!("[{}]", a.values.iter().map(|v| text_value(Some(v))).collect::<Vec<_>>().join(",")),
        Some(Value::BytesValue(b)) => format!("<{} bytes>", b.len()),
        Some(Value::KvlistValue(l)) => format!("{{{}}}", text_attrs(&l.values)),
        Some(Value::StringValueStrindex(i)) => format!("strindex:{i}"),
        None => "null".to_owned(),
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty() && !s.contains([' ', '"', '=', ',', '[', ']', '|']) {
        return s.to_owned();
    }
    format!("\"{}\"", s.replace('"', "\\\""))
}

/// `key=value` pairs separated by spaces.
pub fn text_attrs(kvs: &[KeyValue]) -> String {
    kvs.iter().map(|kv| format!("{}={}", kv.key, text_value(kv.value.as_ref()))).collect::<Vec<_>>().join(" ")
}

/// The text lines of a request (without the resource line).
pub fn text_lines(req: &ExportLogsServiceRequest) -> Vec<String> {
    let mut out = Vec::new();
    for rl in &req.resource_logs {
        // The workload this group of records came from (the host part of
        // the resource is the same on every line and left out).
        let workload: Vec<_> = rl
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .filter(|kv| crate::otel::resource::is_workload_key(&kv.key))
            .cloned()
            .collect();
        for sl in &rl.scope_logs {
            for r in &sl.log_records {
                let body = text_value(r.body.as_ref());
                let mut line = format!(
                    "{} {} {} {} | {}",
                    rfc3339_nanos(r.time_unix_nano),
                    r.severity_text,
                    r.event_name,
                    body,
                    text_attrs(&r.attributes)
                );
                if !r.trace_id.is_empty() {
                    line.push_str(&format!(" trace_id={} span_id={}", hex(&r.trace_id), hex(&r.span_id)));
                }
                if !workload.is_empty() {
                    line.push_str(&format!(" | resource: {}", text_attrs(&workload)));
                }
                out.push(line);
            }
        }
    }
    out
}

/// Lowercase hex of an identifier (trace or span id).
fn hex(id: &[u8]) -> String {
    id.iter().fold(String::with_capacity(id.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The text line of one span.
pub fn span_text_line(span: &Span) -> String {
    let parent = if span.parent_span_id.iter().all(|&b| b == 0) { "-".to_owned() } else { hex(&span.parent_span_id) };
    let duration_ns = span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano);
    let (code, message) = span.status.as_ref().map_or((0, ""), |s| (s.code, s.message.as_str()));
    let status = match code {
        0 => "UNSET".to_owned(),
        1 => "OK".to_owned(),
        2 => "ERROR".to_owned(),
        other => other.to_string(),
    };
    let mut line = format!(
        "{} SPAN {} trace={} span={} parent={parent} end={} duration_ms={}.{:03} status={status}",
        rfc3339_nanos(span.start_time_unix_nano),
        quote(&span.name),
        hex(&span.trace_id),
        hex(&span.span_id),
        rfc3339_nanos(span.end_time_unix_nano),
        duration_ns / 1_000_000,
        duration_ns % 1_000_000 / 1_000,
    );
    if !message.is_empty() {
        let _ = write!(line, " status_message={}", quote(message));
    }
    let _ = write!(line, " | {}", text_attrs(&span.attributes));
    line
}

/// The text lines of a traces request, one per span (without the resource
/// line).
pub fn span_text_lines(req: &ExportTraceServiceRequest) -> Vec<String> {
    req.resource_spans.iter().flat_map(|rs| &rs.scope_spans).flat_map(|ss| &ss.spans).map(span_text_line).collect()
}

impl StdoutExporter {
    /// A console exporter, OTLP/JSON when `json`.
    pub fn new(json: bool) -> Self {
        StdoutExporter { json, resource_printed: false }
    }

    /// Whether the format is OTLP/JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Write one request (logs or traces, as the batch says).
    pub fn export(&mut self, batch: &Batch) -> Result<Delivered, ExportError> {
        let buf = self.format(batch)?;
        let mut out = std::io::stdout().lock();
        out.write_all(&buf).and_then(|()| out.flush()).map_err(|e| ExportError::Permanent(format!("stdout: {e}")))?;
        Ok(Delivered::default())
    }

    /// The bytes [`StdoutExporter::export`] writes for `batch` (the resource
    /// line counts as printed once returned).
    pub fn format(&mut self, batch: &Batch) -> Result<Vec<u8>, ExportError> {
        let undecodable =
            |e: prost::DecodeError| ExportError::Permanent(format!("decoding our own {} request: {e}", batch.signal.as_str()));
        match batch.signal {
            Signal::Logs => {
                let req = batch.decode().map_err(undecodable)?;
                self.render(&req, req.resource_logs.first().and_then(|r| r.resource.as_ref()), text_lines)
            }
            Signal::Traces => {
                let req = batch.decode_traces().map_err(undecodable)?;
                self.render(&req, req.resource_spans.first().and_then(|r| r.resource.as_ref()), span_text_lines)
            }
        }
    }

    /// The output for one decoded request: its JSON line, or its text lines
    /// after the resource line when that was not printed yet.
    fn render<T: serde::Serialize>(
        &mut self,
        req: &T,
        resource: Option<&Resource>,
        lines: impl FnOnce(&T) -> Vec<String>,
    ) -> Result<Vec<u8>, ExportError> {
        let mut buf = Vec::new();
        if self.json {
            serde_json::to_writer(&mut buf, req).map_err(|e| ExportError::Permanent(format!("JSON encoding: {e}")))?;
            buf.push(b'\n');
            return Ok(buf);
        }
        if let Some(res) = resource.filter(|_| !self.resource_printed) {
            buf.extend_from_slice(format!("# resource {}\n", text_attrs(&res.attributes)).as_bytes());
            self.resource_printed = true;
        }
        for line in lines(req) {
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::RequestEncoder;
    use crate::otel::{kv_int, kv_str, kv_str_array};
    use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Status};

    fn span() -> Span {
        Span {
            trace_id: (0..16).collect(),
            span_id: vec![0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18],
            name: "exec /bin/sh".into(),
            // 2023-11-14T22:13:20.000000001Z
            start_time_unix_nano: 1_700_000_000_000_000_001,
            end_time_unix_nano: 1_700_000_001_234_567_891,
            attributes: vec![kv_int("process.pid", 42), kv_str("process.command_line", "sh -c \"x=1\"")],
            ..Span::default()
        }
    }

    #[test]
    fn text_values_are_unambiguous() {
        let kvs = vec![
            kv_str("a", "plain"),
            kv_str("b", "two words"),
            kv_str("c", "say \"hi\""),
            kv_int("d", 3),
            kv_str_array("e", ["x".to_owned(), "y z".to_owned()]),
            kv_str("f", ""),
        ];
        assert_eq!(text_attrs(&kvs), "a=plain b=\"two words\" c=\"say \\\"hi\\\"\" d=3 e=[x,\"y z\"] f=\"\"");
    }

    #[test]
    fn span_text_line_format() {
        let mut s = span();
        assert_eq!(
            span_text_line(&s),
            "2023-11-14T22:13:20.000000001Z SPAN \"exec /bin/sh\" trace=000102030405060708090a0b0c0d0e0f span=a1b2c3d4e5f60718 \
             parent=- end=2023-11-14T22:13:21.234567891Z duration_ms=1234.567 status=UNSET | process.pid=42 \
             process.command_line=\"sh -c \\\"x=1\\\"\""
        );
        s.name = "fork".into();
        s.parent_span_id = vec![0, 0, 0, 0, 0, 0, 0, 9];
        s.status = Some(Status { code: StatusCode::Error as i32, message: "exit code 1".into() });
        s.attributes.clear();
        s.end_time_unix_nano = s.start_time_unix_nano - 1;
        assert_eq!(
            span_text_line(&s),
            "2023-11-14T22:13:20.000000001Z SPAN fork trace=000102030405060708090a0b0c0d0e0f span=a1b2c3d4e5f60718 \
             parent=0000000000000009 end=2023-11-14T22:13:20.000000000Z duration_ms=0.000 status=ERROR status_message=\"exit code 1\" | "
        );
        s.status = Some(Status { code: StatusCode::Ok as i32, message: String::new() });
        assert!(span_text_line(&s).contains(" status=OK | "));
    }

    #[test]
    fn both_signals_print_with_one_resource_line() {
        let resource = opentelemetry_proto::tonic::resource::v1::Resource {
            attributes: vec![kv_str("host.name", "h1")],
            ..opentelemetry_proto::tonic::resource::v1::Resource::default()
        };
        let mut enc = RequestEncoder::new(&resource);
        let mut text = StdoutExporter::new(false);
        let out = String::from_utf8(text.format(&enc.encode_spans(vec![span(), span()])).expect("spans")).expect("utf-8");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(lines[0], "# resource host.name=h1");
        assert!(lines[1].contains(" SPAN ") && lines[2].contains(" SPAN "), "{out}");
        assert_eq!(text.format(&enc.encode(&[])).expect("logs"), b"", "resource printed once, no records");

        let mut json = StdoutExporter::new(true);
        let out = String::from_utf8(json.format(&enc.encode_spans(vec![span()])).expect("spans")).expect("utf-8");
        assert_eq!(out.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "000102030405060708090a0b0c0d0e0f");
        assert_eq!(s["name"], "exec /bin/sh");
        let back: ExportTraceServiceRequest = serde_json::from_str(&out).expect("OTLP/JSON decodes");
        assert_eq!(back.resource_spans[0].scope_spans[0].spans, vec![span()]);
        let out = String::from_utf8(json.format(&enc.encode(&[])).expect("logs")).expect("utf-8");
        assert!(out.starts_with("{\"resourceLogs\":"), "{out}");
    }
}
