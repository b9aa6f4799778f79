//! Reading attributes out of OTLP key/value lists.

use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};

/// The value of `key`.
pub fn value<'a>(kvs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    kvs.iter().find(|k| k.key == key).and_then(|k| k.value.as_ref()).and_then(|v| v.value.as_ref())
}

/// A string attribute.
pub fn str_attr<'a>(kvs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match value(kvs, key) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// An integer attribute.
pub fn int_attr(kvs: &[KeyValue], key: &str) -> Option<i64> {
    match value(kvs, key) {
        Some(Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

/// A string-array attribute; `None` if absent or any element is not a string.
pub fn str_array_attr(kvs: &[KeyValue], key: &str) -> Option<Vec<String>> {
    match value(kvs, key) {
        Some(Value::ArrayValue(a)) => a
            .values
            .iter()
            .map(|v| match &v.value {
                Some(Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}
