//! Map stage: decoded records -> OTLP log records and resources.

pub mod attr;
pub mod logs;
pub mod resource;

use crate::decode::Field;
use crate::escape::escape;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, ArrayValue, KeyValue};

/// Attribute list builder that also keeps the missing-versus-absent lists.
#[derive(Debug, Default)]
pub struct Attrs {
    kvs: Vec<KeyValue>,
    truncated: Vec<&'static str>,
    unavailable: Vec<&'static str>,
    extra: Vec<KeyValue>,
}

fn any(v: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

/// A string `KeyValue`.
pub fn kv_str(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue { key: key.to_owned(), value: any(Value::StringValue(value.into())), ..KeyValue::default() }
}

/// An integer `KeyValue`.
pub fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue { key: key.to_owned(), value: any(Value::IntValue(value)), ..KeyValue::default() }
}

/// A boolean `KeyValue`.
pub fn kv_bool(key: &str, value: bool) -> KeyValue {
    KeyValue { key: key.to_owned(), value: any(Value::BoolValue(value)), ..KeyValue::default() }
}

/// A string-array `KeyValue`.
pub fn kv_str_array(key: &str, values: impl IntoIterator<Item = String>) -> KeyValue {
    let values = values.into_iter().map(|s| AnyValue { value: Some(Value::StringValue(s)) }).collect();
    KeyValue { key: key.to_owned(), value: any(Value::ArrayValue(ArrayValue { values })), ..KeyValue::default() }
}

impl Attrs {
    /// An empty builder.
    pub fn with_capacity(n: usize) -> Self {
        Attrs { kvs: Vec::with_capacity(n), ..Attrs::default() }
    }

    /// Add a string.
    pub fn str(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.kvs.push(kv_str(key, value));
        self
    }

    /// Add kernel-supplied bytes, escaped (see [`crate::escape`]).
    pub fn bytes(&mut self, key: &'static str, value: &[u8]) -> &mut Self {
        self.str(key, escape(value))
    }

    /// Add an integer.
    pub fn int(&mut self, key: &'static str, value: impl Into<i64>) -> &mut Self {
        self.kvs.push(kv_int(key, value.into()));
        self
    }

    /// Add a boolean.
    pub fn bool(&mut self, key: &'static str, value: bool) -> &mut Self {
        self.kvs.push(kv_bool(key, value));
        self
    }

    /// Add a string array.
    pub fn str_array(&mut self, key: &'static str, values: impl IntoIterator<Item = String>) -> &mut Self {
        self.kvs.push(kv_str_array(key, values));
        self
    }

    /// Mark `key` as tried and unreadable, with a reason.
    pub fn unavailable(&mut self, key: &'static str, reason: &str) -> &mut Self {
        self.unavailable.push(key);
        self.extra.push(kv_str(&format!("{}{key}", attr::VIGIL_UNAVAILABLE_REASON_PREFIX), reason));
        self
    }

    /// Mark `key` as cut, with the original size when known and the reason
    /// for the cut when known.
    pub fn truncated(&mut self, key: &'static str, original_size: Option<u64>, reason: Option<&str>) -> &mut Self {
        self.truncated.push(key);
        if let Some(size) = original_size {
            self.extra.push(kv_int(&format!("{}{key}", attr::VIGIL_ORIGINAL_SIZE_PREFIX), i64::try_from(size).unwrap_or(i64::MAX)));
        }
        if let Some(reason) = reason {
            self.extra.push(kv_str(&format!("{}{key}", attr::VIGIL_TRUNCATED_REASON_PREFIX), reason));
        }
        self
    }

    /// Add a kernel field as a string, or its missing-versus-absent markers.
    /// `original_size` overrides the field's own (used for arrays, whose
    /// original size is an element count).
    pub fn field(&mut self, key: &'static str, field: &Field) -> &mut Self {
        match &field.bytes {
            Some(b) => {
                self.bytes(key, b);
                if field.truncated {
                    self.truncated(key, field.original_size, field.reason.map(|r| r.as_str()));
                }
            }
            None => {
                let reason = field.reason.map_or("unknown", |r| r.as_str());
                self.unavailable(key, reason);
            }
        }
        self
    }

    /// Finish: the attributes, then the missing-versus-absent lists and
    /// their per-key details.
    pub fn finish(mut self) -> Vec<KeyValue> {
        if !self.truncated.is_empty() {
            self.kvs.push(kv_str_array(attr::VIGIL_TRUNCATED_FIELDS, self.truncated.iter().map(|s| (*s).to_owned())));
        }
        if !self.unavailable.is_empty() {
            self.kvs.push(kv_str_array(attr::VIGIL_UNAVAILABLE_FIELDS, self.unavailable.iter().map(|s| (*s).to_owned())));
        }
        self.kvs.append(&mut self.extra);
        self.kvs
    }
}

/// RFC 3339 UTC timestamp with nanoseconds for Unix nanoseconds
/// (semconv `process.creation.time` and `process.exit.time`).
pub fn rfc3339_nanos(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let nanos = unix_ns % 1_000_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil-from-days algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339_nanos(1_700_000_000_123_456_789), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(rfc3339_nanos(951_782_400_000_000_000), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn field_markers() {
        use crate::abi::Reason;
        let mut a = Attrs::default();
        a.field("a", &Field::complete(b"x".to_vec()));
        a.field("b", &Field { bytes: None, truncated: false, original_size: None, reason: Some(Reason::ReadFault) });
        a.field("c", &Field { bytes: Some(b"pre".to_vec()), truncated: true, original_size: Some(10), reason: Some(Reason::SizeLimit) });
        let kvs = a.finish();
        let keys: Vec<&str> = kvs.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "a",
                "c",
                "vigil.truncated_fields",
                "vigil.unavailable_fields",
                "vigil.unavailable_reason.b",
                "vigil.original_size.c",
                "vigil.truncated_reason.c"
            ]
        );
    }
}
