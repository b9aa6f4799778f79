//! Map stage: decoded records -> OTLP log records and resources.

pub mod attr;
pub mod key;
pub mod logs;
pub mod resource;
pub mod spans;
pub mod telemetry;
pub mod wire;

use crate::decode::Field;
use crate::escape::escape;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, ArrayValue, KeyValue};
use wire::{AnyRef, AttrKey};

/// Writes a LogRecord's attributes straight into protobuf (see [`wire`])
/// and keeps the missing-versus-absent lists, which [`Attrs::finish`]
/// appends after the attributes.
#[derive(Debug, Default)]
pub struct Attrs {
    out: Vec<u8>,
    truncated: Vec<&'static str>,
    unavailable: Vec<&'static str>,
    extra: Vec<u8>,
}

/// A string `KeyValue` (resource and scope attributes, built once).
pub fn kv_str(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }), ..KeyValue::default() }
}

/// An integer `KeyValue`.
pub fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(Value::IntValue(value)) }), ..KeyValue::default() }
}

/// A boolean `KeyValue`.
pub fn kv_bool(key: &str, value: bool) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(Value::BoolValue(value)) }), ..KeyValue::default() }
}

/// A string-array `KeyValue`.
pub fn kv_str_array(key: &str, values: impl IntoIterator<Item = String>) -> KeyValue {
    let values = values.into_iter().map(|s| AnyValue { value: Some(Value::StringValue(s)) }).collect();
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(Value::ArrayValue(ArrayValue { values })) }), ..KeyValue::default() }
}

const ATTRIBUTES: u32 = wire::log_record::ATTRIBUTES;

impl Attrs {
    /// An empty builder with room for `bytes` of encoded attributes.
    pub fn with_capacity(bytes: usize) -> Self {
        Self::appending_to(Vec::with_capacity(bytes))
    }

    /// A builder appending to `out` ([`Attrs::finish`] gives it back).
    pub fn appending_to(out: Vec<u8>) -> Self {
        Attrs { out, ..Attrs::default() }
    }

    /// Add a string.
    pub fn str<K: AttrKey + ?Sized>(&mut self, key: &K, value: &str) -> &mut Self {
        wire::put_key_value(&mut self.out, ATTRIBUTES, key, AnyRef::Str(value));
        self
    }

    /// Add a string the mapper formatted itself ([`wire::AnyRef::Utf8`]:
    /// UTF-8 by construction, from `&str`s and ASCII digits; checked in
    /// debug builds, and by the golden tests' decoding).
    pub fn utf8<K: AttrKey + ?Sized>(&mut self, key: &K, value: &[u8]) -> &mut Self {
        debug_assert!(std::str::from_utf8(value).is_ok(), "{value:?}");
        wire::put_key_value(&mut self.out, ATTRIBUTES, key, AnyRef::Utf8(value));
        self
    }

    /// Add kernel-supplied bytes, escaped (see [`crate::escape`]).
    pub fn bytes<K: AttrKey + ?Sized>(&mut self, key: &K, value: &[u8]) -> &mut Self {
        self.str(key, &escape(value))
    }

    /// Add an integer.
    pub fn int<K: AttrKey + ?Sized>(&mut self, key: &K, value: impl Into<i64>) -> &mut Self {
        wire::put_key_value(&mut self.out, ATTRIBUTES, key, AnyRef::Int(value.into()));
        self
    }

    /// Add a boolean.
    pub fn bool<K: AttrKey + ?Sized>(&mut self, key: &K, value: bool) -> &mut Self {
        wire::put_key_value(&mut self.out, ATTRIBUTES, key, AnyRef::Bool(value));
        self
    }

    /// Add a string array.
    pub fn str_array<K: AttrKey + ?Sized, S: AsRef<str>>(&mut self, key: &K, values: &[S]) -> &mut Self {
        wire::put_key_str_array(&mut self.out, ATTRIBUTES, key, values);
        self
    }

    /// Mark `key` as tried and unreadable, with a reason.
    pub fn unavailable(&mut self, key: &'static str, reason: &str) -> &mut Self {
        self.unavailable.push(key);
        wire::put_key_value(&mut self.extra, ATTRIBUTES, &format!("{}{key}", attr::VIGIL_UNAVAILABLE_REASON_PREFIX), AnyRef::Str(reason));
        self
    }

    /// Mark `key` as cut, with the original size when known and the reason
    /// for the cut when known.
    pub fn truncated(&mut self, key: &'static str, original_size: Option<u64>, reason: Option<&str>) -> &mut Self {
        self.truncated.push(key);
        if let Some(size) = original_size {
            let size = AnyRef::Int(i64::try_from(size).unwrap_or(i64::MAX));
            wire::put_key_value(&mut self.extra, ATTRIBUTES, &format!("{}{key}", attr::VIGIL_ORIGINAL_SIZE_PREFIX), size);
        }
        if let Some(reason) = reason {
            wire::put_key_value(&mut self.extra, ATTRIBUTES, &format!("{}{key}", attr::VIGIL_TRUNCATED_REASON_PREFIX), AnyRef::Str(reason));
        }
        self
    }

    /// Add a kernel field as a string, or its missing-versus-absent markers.
    pub fn field<B: std::ops::Deref<Target = [u8]>>(&mut self, key: &'static str, field: &Field<B>) -> &mut Self {
        self.field_escaped(key, field, field.bytes.as_deref().map(escape).as_deref())
    }

    /// [`Attrs::field`], with the field's bytes already escaped by the
    /// caller (`shown`: [`escape`] of `field.bytes`, `None` when absent),
    /// for a caller that shows them elsewhere too (the body).
    pub fn field_escaped<B>(&mut self, key: &'static str, field: &Field<B>, shown: Option<&str>) -> &mut Self {
        debug_assert_eq!(shown.is_some(), field.bytes.is_some());
        match shown {
            Some(s) => {
                self.str(key, s);
                if field.truncated {
                    self.truncated(key, field.original_size, field.reason.map(|r| r.as_str()));
                }
            }
            None => {
                let reason = field.reason.map_or("unknown", |r| r.as_str());
                self.unavailable(key, reason);
                if let Some(size) = field.original_size {
                    let size = AnyRef::Int(i64::try_from(size).unwrap_or(i64::MAX));
                    wire::put_key_value(&mut self.extra, ATTRIBUTES, &format!("{}{key}", attr::VIGIL_ORIGINAL_SIZE_PREFIX), size);
                }
            }
        }
        self
    }

    /// Finish: the attributes, then the missing-versus-absent lists and
    /// their per-key details, as encoded LogRecord fields.
    pub fn finish(mut self) -> Vec<u8> {
        for (key, list) in [(attr::VIGIL_TRUNCATED_FIELDS, &self.truncated), (attr::VIGIL_UNAVAILABLE_FIELDS, &self.unavailable)] {
            if !list.is_empty() {
                wire::put_key_str_array(&mut self.out, ATTRIBUTES, key, list);
            }
        }
        self.out.extend_from_slice(&self.extra);
        self.out
    }
}

/// RFC 3339 UTC timestamp with nanoseconds for Unix nanoseconds
/// (semconv `process.creation.time` and `process.exit.time`).
pub fn rfc3339_nanos(unix_ns: u64) -> String {
    Rfc3339::new(unix_ns).as_str().to_owned()
}

/// [`rfc3339_nanos`] formatted on the stack (hot path: no allocation).
/// Always 30 bytes: a `u64` of Unix ns is a four-digit year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339 {
    unix_ns: u64,
    text: [u8; 30],
}

impl Rfc3339 {
    /// Format `unix_ns`.
    pub fn new(unix_ns: u64) -> Self {
        let secs = unix_ns / 1_000_000_000;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let mut text = *b"0000-00-00T00:00:00.000000000Z";
        for (value, at, width) in [
            (y as u64, 0, 4),
            (u64::from(m), 5, 2),
            (u64::from(d), 8, 2),
            (rem / 3600, 11, 2),
            ((rem % 3600) / 60, 14, 2),
            (rem % 60, 17, 2),
            (unix_ns % 1_000_000_000, 20, 9),
        ] {
            let mut v = value;
            for b in text[at..at + width].iter_mut().rev() {
                *b = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        Rfc3339 { unix_ns, text }
    }

    /// The Unix ns it shows.
    pub fn unix_ns(&self) -> u64 {
        self.unix_ns
    }

    /// The timestamp.
    pub fn as_str(&self) -> &str {
        // ASCII digits and separators only, so this always succeeds.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// The timestamp's bytes (ASCII; for [`Attrs::utf8`]).
    pub fn as_bytes(&self) -> &[u8] {
        &self.text
    }
}

/// Append `v` in decimal, zero-padded to `width` digits (hot path: no
/// formatting machinery).
pub fn push_padded(out: &mut String, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    while v > 0 || i == buf.len() {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let start = buf.len().saturating_sub(width).min(i);
    // ASCII digits only, so this always succeeds (and checks a handful of
    // bytes: pushing them as chars one by one measured slower).
    out.push_str(std::str::from_utf8(&buf[start..]).unwrap_or_default());
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
        assert_eq!(rfc3339_nanos(u64::MAX), "2554-07-21T23:34:33.709551615Z");
        let mut s = String::new();
        push_padded(&mut s, 0, 1);
        push_padded(&mut s, 7, 3);
        push_padded(&mut s, 123_456, 2);
        push_padded(&mut s, u64::MAX, 1);
        assert_eq!(s, format!("0007123456{}", u64::MAX));
    }

    #[test]
    fn field_markers() {
        use crate::abi::Reason;
        let mut a = Attrs::default();
        a.field("a", &Field::complete(b"x".to_vec()));
        a.field("b", &Field::<Vec<u8>> { bytes: None, truncated: false, original_size: None, reason: Some(Reason::ReadFault) });
        a.field("c", &Field { bytes: Some(b"pre".to_vec()), truncated: true, original_size: Some(10), reason: Some(Reason::SizeLimit) });
        let rec = wire::EncodedLog(a.finish()).decode().expect("decodes");
        let keys: Vec<&str> = rec.attributes.iter().map(|k| k.key.as_str()).collect();
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
