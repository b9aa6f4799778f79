//! Validate OTLP log records against `schemas/otel-attributes.json`: every
//! event name and attribute must be documented, with the documented type
//! and, for enums, a documented value.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde_json::Value as Json;

/// The parsed schema.
#[derive(Debug)]
pub struct Schema(Json);

impl Schema {
    /// Load the schema from the workspace.
    pub fn load() -> Schema {
        let text = std::fs::read_to_string(crate::workspace_root().join("schemas/otel-attributes.json")).expect("schema file");
        Schema(serde_json::from_str(&text).expect("schema is JSON"))
    }

    /// The documentation of a record attribute key (exact or by prefix).
    fn spec(&self, key: &str) -> Option<&Json> {
        if let Some(s) = self.0["record_attributes"].get(key) {
            return Some(s);
        }
        let prefixes = self.0["record_attribute_prefixes"].as_object()?;
        prefixes.iter().find_map(|(p, spec)| {
            key.strip_prefix(p.as_str()).filter(|rest| self.0["record_attributes"].get(*rest).is_some()).map(|_| spec)
        })
    }

    /// Panic with a precise message unless every attribute of `resource`
    /// is a documented resource attribute (exact or by prefix) of its type.
    pub fn validate_resource(&self, resource: &opentelemetry_proto::tonic::resource::v1::Resource) {
        for kv in &resource.attributes {
            let spec = self.0["resource_attributes"].get(&kv.key).or_else(|| {
                let prefixes = self.0["resource_attribute_prefixes"].as_object()?;
                prefixes.iter().find(|(p, _)| kv.key.starts_with(p.as_str()) && kv.key.len() > p.len()).map(|(_, s)| s)
            });
            let spec = spec.unwrap_or_else(|| panic!("resource attribute {} is not in the schema", kv.key));
            check_value(spec, "resource", &kv.key, kv.value.as_ref().and_then(|v| v.value.as_ref()));
        }
    }

    /// Panic with a precise message unless `log` conforms.
    pub fn validate(&self, log: &LogRecord) {
        assert!(self.0["events"].get(&log.event_name).is_some(), "event {} is not in the schema", log.event_name);
        for kv in &log.attributes {
            let spec = self.spec(&kv.key).unwrap_or_else(|| panic!("{}: attribute {} is not in the schema", log.event_name, kv.key));
            check_value(spec, &log.event_name, &kv.key, kv.value.as_ref().and_then(|v| v.value.as_ref()));
        }
    }
}

/// Panic unless `value` has the type (and, for enums, a value) `spec` documents.
fn check_value(spec: &Json, context: &str, key: &str, value: Option<&Value>) {
    let ty = spec["type"].as_str().unwrap_or("");
    let ok = match (ty, value) {
        ("string", Some(Value::StringValue(s))) => {
            if let Some(allowed) = spec["enum"].as_array() {
                assert!(allowed.iter().any(|a| a.as_str() == Some(s)), "{context}: {key} = {s:?} is not one of {allowed:?}");
            }
            true
        }
        ("int", Some(Value::IntValue(_))) | ("bool", Some(Value::BoolValue(_))) => true,
        ("string[]", Some(Value::ArrayValue(a))) => a.values.iter().all(|v| matches!(v.value, Some(Value::StringValue(_)))),
        _ => false,
    };
    assert!(ok, "{context}: attribute {key} should be {ty}, is {value:?}");
}
