//! Per-process rate limiting of bulk records: what the kernel suppressed.
//!
//! The probes keep a token bucket per process for bulk-lane records
//! (kernel-probes/include/ratelimit.bpf.h, `[ratelimit]`). A record over the
//! budget is not output, but the kernel counts it per (tgid, event type)
//! with the first and last time in `rate_suppressed`. The receiver takes
//! those entries out of the map (lookup-and-delete, so no count is read
//! twice or lost between read and delete) and the map stage turns each into
//! one `vigil.telemetry.suppressed` record: the count survives even when
//! the detail is shed.

use crate::abi::EventType;
use libbpf_rs::MapCore;

/// One process's suppressed records of one event type since the last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed {
    /// The process (tgid).
    pub tgid: u32,
    /// Event type of the suppressed records.
    pub event: EventType,
    /// How many.
    pub count: u64,
    /// Boot-clock ns of the first and the last one.
    pub first_ns: u64,
    /// Boot-clock ns of the last one.
    pub last_ns: u64,
}

/// `struct vigil_suppressed_key` size.
pub const KEY_SIZE: usize = 8;
/// `struct vigil_suppressed` size.
pub const VALUE_SIZE: usize = 24;

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| u64::from_ne_bytes(s.try_into().unwrap_or([0; 8])))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_ne_bytes(s.try_into().unwrap_or([0; 4])))
}

/// Parse one map entry; `None` for a malformed one or an unknown type.
pub fn parse(key: &[u8], value: &[u8]) -> Option<Suppressed> {
    if key.len() != KEY_SIZE || value.len() != VALUE_SIZE {
        return None;
    }
    let event = EventType::from_raw(u16::try_from(u32_at(key, 4)).ok()?)?;
    Some(Suppressed { tgid: u32_at(key, 0), event, count: u64_at(value, 0), first_ns: u64_at(value, 8), last_ns: u64_at(value, 16) })
}

/// Take every entry out of the `rate_suppressed` map.
pub fn drain(map: &dyn MapCore) -> Vec<Suppressed> {
    let keys: Vec<Vec<u8>> = map.keys().collect();
    keys.iter()
        .filter_map(|k| match map.lookup_and_delete(k) {
            Ok(Some(v)) => parse(k, &v),
            _ => None,
        })
        .filter(|s| s.count > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_and_bad_ones_are_skipped() {
        let mut key = Vec::new();
        key.extend(4242u32.to_ne_bytes());
        key.extend((EventType::FileOpen as u32).to_ne_bytes());
        let mut value = Vec::new();
        for v in [17u64, 100, 900] {
            value.extend(v.to_ne_bytes());
        }
        assert_eq!(
            parse(&key, &value),
            Some(Suppressed { tgid: 4242, event: EventType::FileOpen, count: 17, first_ns: 100, last_ns: 900 })
        );
        assert_eq!(parse(&key[..4], &value), None, "short key");
        let mut unknown = key.clone();
        unknown[4..].copy_from_slice(&127u32.to_ne_bytes());
        assert_eq!(parse(&unknown, &value), None, "unknown event type");
    }

    #[test]
    fn abi_matches_the_bpf_object_btf() {
        use libbpf_rs::btf::types::Struct;
        use libbpf_rs::btf::{Btf, HasSize};
        let btf = Btf::from_path(crate::probes::PROCESS_OBJECT_PATH).expect("BTF of the compiled object");
        let k: Struct<'_> = btf.type_by_name("vigil_suppressed_key").expect("struct vigil_suppressed_key");
        assert_eq!(k.size(), KEY_SIZE);
        let v: Struct<'_> = btf.type_by_name("vigil_suppressed").expect("struct vigil_suppressed");
        assert_eq!(v.size(), VALUE_SIZE);
        let names: Vec<String> = v.iter().map(|m| m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect();
        assert_eq!(names, ["count", "first_ns", "last_ns"]);
    }
}
