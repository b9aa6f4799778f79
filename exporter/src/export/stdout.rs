//! Console exporter, used when no OTLP endpoint is configured.
//!
//! - `text`: one line per record: time, severity, event name, body, then
//!   every attribute as `key=value`. Values are already escaped (no control
//!   characters, see `crate::escape`); the body and any value holding a
//!   space, `"`, `=`, `,`, `[`, `]` or `|` are double-quoted with `"` written
//!   as `\"`, so nothing a process controls can pose as another attribute. The resource is printed once,
//!   as a line starting with `# resource`.
//! - `otlp-json`: one OTLP/JSON `ExportLogsServiceRequest` per line, as the
//!   Collector's file exporter writes them.

use super::{Batch, Delivered, ExportError};
use crate::otel::rfc3339_nanos;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
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
        for sl in &rl.scope_logs {
            for r in &sl.log_records {
                let body = text_value(r.body.as_ref());
                out.push(format!(
                    "{} {} {} {} | {}",
                    rfc3339_nanos(r.time_unix_nano),
                    r.severity_text,
                    r.event_name,
                    body,
                    text_attrs(&r.attributes)
                ));
            }
        }
    }
    out
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

    /// Write one request.
    pub fn export(&mut self, batch: &Batch) -> Result<Delivered, ExportError> {
        let req = batch.decode().map_err(|e| ExportError::Permanent(format!("decoding our own request: {e}")))?;
        let req = &req;
        let mut buf = Vec::new();
        if self.json {
            serde_json::to_writer(&mut buf, req).map_err(|e| ExportError::Permanent(format!("JSON encoding: {e}")))?;
            buf.push(b'\n');
        } else {
            if !self.resource_printed {
                if let Some(res) = req.resource_logs.first().and_then(|r| r.resource.as_ref()) {
                    buf.extend_from_slice(format!("# resource {}\n", text_attrs(&res.attributes)).as_bytes());
                    self.resource_printed = true;
                }
            }
            for line in text_lines(req) {
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
            }
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&buf).and_then(|()| out.flush()).map_err(|e| ExportError::Permanent(format!("stdout: {e}")))?;
        Ok(Delivered::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otel::{kv_int, kv_str, kv_str_array};

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
}
