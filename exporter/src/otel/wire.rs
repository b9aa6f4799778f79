//! Direct protobuf encoding of OTLP log records and export requests.
//!
//! The map stage writes each LogRecord straight into its protobuf bytes
//! instead of building `opentelemetry-proto` structs and encoding them:
//! building ~45 `KeyValue`s per record costs ~90 allocations, and prost
//! recomputes nested lengths at every level when encoding. Every length is
//! computed once here, before the bytes it prefixes are written.
//!
//! The output is plain OTLP: `prost::Message::decode` reads it back into
//! the `opentelemetry-proto` types (the console exporter and the tests do).
//! Field numbers are those of opentelemetry-proto's logs.proto and
//! common.proto; a round-trip test checks each one.

use bytes::{Bytes, BytesMut};
use std::borrow::Cow;
use std::mem::MaybeUninit;

// Protobuf wire types.

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

/// `LogRecord` field numbers.
pub mod log_record {
    pub const TIME_UNIX_NANO: u32 = 1;
    pub const SEVERITY_NUMBER: u32 = 2;
    pub const SEVERITY_TEXT: u32 = 3;
    pub const BODY: u32 = 5;
    pub const ATTRIBUTES: u32 = 6;
    pub const TRACE_ID: u32 = 9;
    pub const SPAN_ID: u32 = 10;
    pub const OBSERVED_TIME_UNIX_NANO: u32 = 11;
    pub const EVENT_NAME: u32 = 12;
}

const KEY_VALUE_KEY: u32 = 1;
const KEY_VALUE_VALUE: u32 = 2;
const ANY_STRING: u32 = 1;
const ANY_BOOL: u32 = 2;
const ANY_INT: u32 = 3;
const ANY_ARRAY: u32 = 5;
const ARRAY_VALUES: u32 = 1;
const REQUEST_RESOURCE_LOGS: u32 = 1;
const RESOURCE_LOGS_RESOURCE: u32 = 1;
const RESOURCE_LOGS_SCOPE_LOGS: u32 = 2;
const RESOURCE_LOGS_SCHEMA_URL: u32 = 3;
const SCOPE_LOGS_SCOPE: u32 = 1;
const SCOPE_LOGS_LOG_RECORDS: u32 = 2;
const SCOPE_LOGS_SCHEMA_URL: u32 = 3;

/// Bytes a varint of `v` takes: ceil(bits / 7), as `(9 * bits + 64) / 64`
/// (a multiply and a shift; the division by 7 was ~6% of the exec path,
/// this runs several times per attribute). Unit test `varint_lengths`
/// checks every width.
#[inline(always)]
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    (bits * 9 + 64) / 64
}

/// Append at most `max` bytes to `out` with the block, which writes
/// them through `w`, a [`Spare`] over `out`'s spare capacity: the capacity
/// is checked once (`reserve`) and the length stored once, after the block.
/// A macro, not a function taking a closure: the compiler kept the closures
/// out of line, with the writer's position in memory (~19% of the exec
/// path in one build). A `max` too small for what the block writes makes
/// it panic (an index out of bounds) unless the capacity happens to hold
/// it; the callers compute it from the lengths they write (unit tests
/// compare the bytes with prost's and with the generic writers').
macro_rules! append {
    ($out:expr, $max:expr, |$w:ident| $body:block) => {{
        let out: &mut Vec<u8> = $out;
        let max: usize = $max;
        out.reserve(max);
        let start = out.len();
        let mut spare = Spare { buf: out.spare_capacity_mut(), pos: 0 };
        {
            let $w = &mut spare;
            $body
        }
        let written = spare.pos;
        debug_assert!(written <= max, "{written} bytes written, {max} reserved");
        // SAFETY: a `Spare` is written only through `byte` and `slice`,
        // which initialize `buf[pos..pos + n]` (bounds-checked: within the
        // spare capacity) before adding `n` to `pos`; `buf` starts at index
        // `start` of `out`'s allocation. So `out[start..start + written]`
        // is initialized and within the capacity.
        unsafe { out.set_len(start + written) };
    }};
}

/// Append `v` as a varint.
#[inline(always)]
pub fn put_varint(out: &mut Vec<u8>, v: u64) {
    append!(out, MAX_VARINT, |s| {
        s.varint(v);
    });
}

/// Most bytes a varint takes.
const MAX_VARINT: usize = 10;

/// Most bytes a field's tag and length take (a tag of a field number
/// under 2^28 is at most five bytes).
const MAX_PREFIX: usize = 5 + MAX_VARINT;

/// A writer of bytes into the spare capacity of a `Vec` (see `append!`):
/// each write checks the index against the room reserved once, and no
/// length is stored until the end. The map stage writes every attribute of
/// every record through it: a `Vec::push` or `extend_from_slice` per tag,
/// length and value checks the capacity and stores the length each time,
/// and writing tags into zeroed room then cutting the `Vec` back
/// (`resize`, `truncate`) was ~40% of the attribute writers' samples.
#[derive(Debug)]
pub struct Spare<'b> {
    /// The `Vec`'s spare capacity (at least the room `append!` reserved).
    buf: &'b mut [MaybeUninit<u8>],
    /// Bytes written: `buf[..pos]` is initialized (every write below
    /// initializes `buf[pos..pos + n]` before adding `n`).
    pos: usize,
}

impl Spare<'_> {
    #[inline(always)]
    fn byte(&mut self, b: u8) -> &mut Self {
        self.buf[self.pos].write(b);
        self.pos += 1;
        self
    }

    #[inline(always)]
    fn slice(&mut self, s: &[u8]) -> &mut Self {
        self.buf[self.pos..self.pos + s.len()].write_copy_of_slice(s);
        self.pos += s.len();
        self
    }

    #[inline(always)]
    fn varint(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8)
    }

    #[inline(always)]
    fn tag(&mut self, field: u32, wire: u8) -> &mut Self {
        self.varint((u64::from(field) << 3) | u64::from(wire))
    }

    #[inline(always)]
    fn len_prefix(&mut self, field: u32, n: usize) -> &mut Self {
        self.tag(field, LEN).varint(n as u64)
    }
}

#[inline(always)]
fn tag_len(field: u32) -> usize {
    varint_len(u64::from(field) << 3)
}

/// Size of a length-delimited field holding `n` bytes.
#[inline(always)]
pub fn len_field_size(field: u32, n: usize) -> usize {
    tag_len(field) + varint_len(n as u64) + n
}

/// Append a length-delimited field's tag and length (the caller writes the
/// `n` bytes next).
#[inline(always)]
pub fn put_len_prefix(out: &mut Vec<u8>, field: u32, n: usize) {
    append!(out, MAX_PREFIX, |s| {
        s.len_prefix(field, n);
    });
}

/// Append a length-delimited field.
#[inline(always)]
pub fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    append!(out, MAX_PREFIX + bytes.len(), |s| {
        s.len_prefix(field, bytes.len()).slice(bytes);
    });
}

/// Room [`begin_len_field`] leaves for a length not known yet: two bytes
/// hold lengths up to 16,383, which covers nearly every log record (an exec
/// record is ~1,700 bytes).
const LEN_GUESS: usize = 2;

/// Start a length-delimited field whose length is not known yet (the body
/// is written straight into `out` next): its tag, then room for the length.
/// Returns the mark [`end_len_field`] takes.
#[inline]
pub fn begin_len_field(out: &mut Vec<u8>, field: u32) -> usize {
    append!(out, MAX_PREFIX, |s| {
        s.tag(field, LEN).slice(&[0; LEN_GUESS]);
    });
    out.len()
}

/// End the field begun at `mark`: write its length as a minimal varint, so
/// the bytes are exactly those of [`put_bytes`]. A length that does not take
/// [`LEN_GUESS`] bytes moves the body (rare: under 128 or over 16,383 bytes).
#[inline]
pub fn end_len_field(out: &mut Vec<u8>, mark: usize) {
    let n = out.len() - mark;
    let width = varint_len(n as u64);
    let body = mark - LEN_GUESS + width;
    if body != mark {
        out.resize(out.len().max(body + n), 0);
        out.copy_within(mark..mark + n, body);
        out.truncate(body + n);
    }
    let at = mark - LEN_GUESS;
    let mut v = n as u64;
    for b in &mut out[at..body] {
        *b = if v >= 0x80 { (v as u8) | 0x80 } else { v as u8 };
        v >>= 7;
    }
}

/// Append a fixed64 field (omitted when 0, as proto3 does).
pub fn put_fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        append!(out, 5 + 8, |s| {
            s.tag(field, FIXED64).slice(&v.to_le_bytes());
        });
    }
}

/// Append a varint field (omitted when 0).
pub fn put_varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        append!(out, MAX_PREFIX, |s| {
            s.tag(field, VARINT).varint(v);
        });
    }
}

/// A value of an attribute, borrowed for encoding.
#[derive(Debug, Clone, Copy)]
pub enum AnyRef<'a> {
    /// string_value
    Str(&'a str),
    /// string_value from bytes that are UTF-8 by construction (text the
    /// mapper formats itself from `&str`s and ASCII digits: record uids,
    /// timestamps), written without a second UTF-8 check.
    Utf8(&'a [u8]),
    /// int_value
    Int(i64),
    /// bool_value
    Bool(bool),
    /// array_value of strings
    StrArray(&'a [Cow<'a, str>]),
}

/// Encoded size of an `AnyValue` message body.
#[inline(always)]
fn any_len(v: &AnyRef<'_>) -> usize {
    match v {
        AnyRef::Str(s) => len_field_size(ANY_STRING, s.len()),
        AnyRef::Utf8(s) => len_field_size(ANY_STRING, s.len()),
        AnyRef::Int(i) => tag_len(ANY_INT) + varint_len(*i as u64),
        AnyRef::Bool(_) => tag_len(ANY_BOOL) + 1,
        AnyRef::StrArray(items) => len_field_size(ANY_ARRAY, array_len(items)),
    }
}

/// Encoded size of an `ArrayValue` of strings.
#[inline]
fn array_len<S: AsRef<str>>(items: &[S]) -> usize {
    items.iter().map(|s| len_field_size(ARRAY_VALUES, len_field_size(ANY_STRING, s.as_ref().len()))).sum()
}

/// Write an `ArrayValue` of strings as `AnyValue.array_value`, `len`
/// being its [`array_len`] (computed once by the caller).
#[inline]
fn put_array<S: AsRef<str>>(w: &mut Spare<'_>, items: &[S], len: usize) {
    w.len_prefix(ANY_ARRAY, len);
    for s in items {
        let s = s.as_ref().as_bytes();
        w.len_prefix(ARRAY_VALUES, len_field_size(ANY_STRING, s.len())).len_prefix(ANY_STRING, s.len()).slice(s);
    }
}

/// Write `v`'s `AnyValue` fields.
#[inline(always)]
fn put_any(w: &mut Spare<'_>, v: &AnyRef<'_>) {
    match v {
        AnyRef::Str(s) => {
            w.len_prefix(ANY_STRING, s.len()).slice(s.as_bytes());
        }
        AnyRef::Utf8(s) => {
            w.len_prefix(ANY_STRING, s.len()).slice(s);
        }
        AnyRef::Int(i) => {
            w.tag(ANY_INT, VARINT).varint(*i as u64);
        }
        AnyRef::Bool(b) => {
            w.tag(ANY_BOOL, VARINT).byte(u8::from(*b));
        }
        AnyRef::StrArray(items) => put_array(w, items, array_len(items)),
    }
}

/// Append an `AnyValue` as field `field` of the enclosing message (the
/// LogRecord body).
pub fn put_any_field(out: &mut Vec<u8>, field: u32, v: AnyRef<'_>) {
    let n = any_len(&v);
    append!(out, MAX_PREFIX + n, |w| {
        w.len_prefix(field, n);
        put_any(w, &v);
    });
}

/// Append a string `AnyValue` of `n` bytes as field `field` of the
/// enclosing message (the LogRecord body), its bytes written by `write`
/// through [`Spare::text`] and [`Spare::decimal`] (so they are UTF-8):
/// exactly `n` of them (checked in every build: a wrong length prefix would
/// make the whole request undecodable, a bug better stopped here; the exec
/// body's unit test compares its length and text with `format!`'s). For text assembled from
/// parts whose lengths are known: no `String` is built and copied.
pub fn put_any_str_with(out: &mut Vec<u8>, field: u32, n: usize, write: impl FnOnce(&mut Spare<'_>)) {
    let any = len_field_size(ANY_STRING, n);
    append!(out, MAX_PREFIX + any, |w| {
        w.len_prefix(field, any).len_prefix(ANY_STRING, n);
        let at = w.pos;
        write(w);
        assert_eq!(w.pos - at, n, "string of {n} bytes announced");
    });
}

/// Digits of `v` in decimal.
#[inline]
pub fn decimal_len(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The decimal digits of `v`, written at the end of `buf`: returns where
/// they start.
#[inline]
pub(crate) fn decimal_digits(mut v: u64, buf: &mut [u8; 20]) -> usize {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return i;
        }
    }
}

impl Spare<'_> {
    /// Write `s`.
    #[inline]
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.slice(s.as_bytes())
    }

    /// Write `v` in decimal ([`decimal_len`] bytes).
    #[inline]
    pub fn decimal(&mut self, v: u64) -> &mut Self {
        let mut buf = [0u8; 20];
        let i = decimal_digits(v, &mut buf);
        self.slice(&buf[i..])
    }
}

/// An attribute key as a `KeyValue.key` field: a string, or the same
/// pre-encoded ([`Key`]).
pub trait AttrKey {
    /// Encoded size of the `KeyValue.key` field.
    fn key_field_len(&self) -> usize;
    /// Write the `KeyValue.key` field (tag, length, bytes): exactly
    /// [`AttrKey::key_field_len`] bytes.
    fn put_key_field(&self, w: &mut Spare<'_>);
}

impl AttrKey for str {
    #[inline(always)]
    fn key_field_len(&self) -> usize {
        len_field_size(KEY_VALUE_KEY, self.len())
    }

    #[inline(always)]
    fn put_key_field(&self, w: &mut Spare<'_>) {
        w.len_prefix(KEY_VALUE_KEY, self.len()).slice(self.as_bytes());
    }
}

impl AttrKey for String {
    #[inline(always)]
    fn key_field_len(&self) -> usize {
        self.as_str().key_field_len()
    }

    #[inline(always)]
    fn put_key_field(&self, w: &mut Spare<'_>) {
        self.as_str().put_key_field(w);
    }
}

impl<K: AttrKey + ?Sized> AttrKey for &K {
    #[inline(always)]
    fn key_field_len(&self) -> usize {
        (**self).key_field_len()
    }

    #[inline(always)]
    fn put_key_field(&self, w: &mut Spare<'_>) {
        (**self).put_key_field(w);
    }
}

/// An attribute key pre-encoded as its `KeyValue.key` field: the tag, the
/// length and the bytes, `N` bytes in all (the key's length + 2), built at
/// compile time. Writing it is one copy of a constant size (which the
/// compiler turns into a few moves) instead of two varints and a copy of a
/// length known only at run time: this runs ~45 times per exec record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key<const N: usize>([u8; N]);

impl<const N: usize> Key<N> {
    /// Pre-encode `key`; `N` must be `key.len() + 2` (keys are shorter
    /// than 128 bytes, so the length is one byte). Checked at compile time
    /// for a `const`.
    pub const fn new(key: &str) -> Self {
        let k = key.as_bytes();
        assert!(k.len() < 128 && k.len() + 2 == N, "N must be the key's length + 2, for a key under 128 bytes");
        let mut out = [0u8; N];
        out[0] = ((KEY_VALUE_KEY as u8) << 3) | LEN;
        out[1] = k.len() as u8;
        let mut i = 0;
        while i < k.len() {
            out[i + 2] = k[i];
            i += 1;
        }
        Key(out)
    }

    /// The encoded field.
    pub const fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> AttrKey for Key<N> {
    #[inline(always)]
    fn key_field_len(&self) -> usize {
        N
    }

    #[inline(always)]
    fn put_key_field(&self, w: &mut Spare<'_>) {
        w.slice(&self.0);
    }
}

/// Append one attribute (`KeyValue`) as field `field` of the enclosing
/// message, in one `append!`: its tag and length, the key (one copy, of a
/// constant size for a [`Key`]), the value's tag and length and the value.
#[inline(always)]
pub fn put_key_value<K: AttrKey + ?Sized>(out: &mut Vec<u8>, field: u32, key: &K, v: AnyRef<'_>) {
    let value_len = any_len(&v);
    let kv_len = key.key_field_len() + len_field_size(KEY_VALUE_VALUE, value_len);
    append!(out, MAX_PREFIX + kv_len, |w| {
        w.len_prefix(field, kv_len);
        key.put_key_field(w);
        w.len_prefix(KEY_VALUE_VALUE, value_len);
        put_any(w, &v);
    });
}

/// Append one string-array attribute (`KeyValue`) as field `field` of the
/// enclosing message: [`put_key_value`] with [`AnyRef::StrArray`], for
/// items of any string type (`&'static str` names need no `Cow`s).
pub fn put_key_str_array<K: AttrKey + ?Sized, S: AsRef<str>>(out: &mut Vec<u8>, field: u32, key: &K, items: &[S]) {
    let array = array_len(items);
    let value_len = len_field_size(ANY_ARRAY, array);
    let kv_len = key.key_field_len() + len_field_size(KEY_VALUE_VALUE, value_len);
    append!(out, MAX_PREFIX + kv_len, |w| {
        w.len_prefix(field, kv_len);
        key.put_key_field(w);
        w.len_prefix(KEY_VALUE_VALUE, value_len);
        put_array(w, items, array);
    });
}

/// The tags and lengths before a part of a request, built on the stack
/// and appended with one copy. Room for four varints (at most 10 bytes
/// each), the most any caller writes before the next copy.
struct Head {
    buf: [u8; Head::SIZE],
    len: usize,
}

impl Head {
    const SIZE: usize = 40;

    #[inline]
    fn new() -> Self {
        Head { buf: [0; Head::SIZE], len: 0 }
    }

    #[inline]
    fn varint(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.buf[self.len] = (v as u8) | 0x80;
            self.len += 1;
            v >>= 7;
        }
        self.buf[self.len] = v as u8;
        self.len += 1;
        self
    }

    #[inline]
    fn tag(&mut self, field: u32, wire: u8) -> &mut Self {
        self.varint((u64::from(field) << 3) | u64::from(wire))
    }

    #[inline]
    fn len_prefix(&mut self, field: u32, n: usize) -> &mut Self {
        self.tag(field, LEN).varint(n as u64)
    }

    #[inline]
    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// One encoded `LogRecord` (the message body, without its own tag).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodedLog(pub Vec<u8>);

impl EncodedLog {
    /// Decode into the opentelemetry-proto type (console output, tests).
    pub fn decode(&self) -> Result<opentelemetry_proto::tonic::logs::v1::LogRecord, prost::DecodeError> {
        prost::Message::decode(self.0.as_slice())
    }
}

/// Start a `ScopeLogs.log_records` field in `out` (the LogRecord's fields
/// are written next); end it with [`end_len_field`].
#[inline]
pub fn begin_log(out: &mut Vec<u8>) -> usize {
    begin_len_field(out, SCOPE_LOGS_LOG_RECORDS)
}

/// Append `log` as a `ScopeLogs.log_records` field.
pub fn put_log(out: &mut Vec<u8>, log: &[u8]) {
    put_bytes(out, SCOPE_LOGS_LOG_RECORDS, log);
}

/// `logs`, framed as consecutive `ScopeLogs.log_records` fields.
pub fn frame_logs(logs: &[EncodedLog]) -> Vec<u8> {
    let mut out = Vec::with_capacity(logs.iter().map(|l| len_field_size(SCOPE_LOGS_LOG_RECORDS, l.0.len())).sum());
    for l in logs {
        put_log(&mut out, &l.0);
    }
    out
}

/// The records of one `ResourceLogs`, already framed as
/// `ScopeLogs.log_records` fields ([`begin_log`], [`put_log`]), in one or
/// more chunks of concatenated fields.
#[derive(Debug, Clone)]
pub struct FramedLogs<'a> {
    /// The framed records, in order.
    pub chunks: Vec<&'a [u8]>,
    /// How many records the chunks hold.
    pub count: usize,
}

/// Encode an `ExportLogsServiceRequest` with one resource and one scope
/// from pre-encoded parts into `buf`, returning the request.
///
/// `buf` is meant to be kept and passed again: the request is split off it,
/// and once every clone of a returned request has been dropped (exported),
/// `reserve` reclaims the same allocation for the next one. A fresh ~1 MB
/// buffer per request cost ~15% of the exec path in page faults (the
/// allocator hands out freshly zeroed huge pages each time;
/// docs/performance.md).
pub fn encode_request(buf: &mut BytesMut, resource: &[u8], scope: &[u8], schema_url: &str, logs: &[EncodedLog]) -> Bytes {
    let framed = frame_logs(logs);
    let logs = FramedLogs { chunks: vec![&framed], count: logs.len() };
    encode_request_groups(buf, resource, scope, schema_url, &[(&[], &logs)])
}

/// Encode an `ExportLogsServiceRequest` with one `ResourceLogs` per group
/// into `buf` (kept and passed again, as for [`encode_request`]). Each
/// group's Resource is the `host` resource's fields followed by the group's
/// own (`extra`: encoded `Resource` fields; repeated fields concatenate),
/// then one scope and the group's records (copied chunk by chunk: one copy
/// per run of records of one workload, not one per record).
pub fn encode_request_groups(
    buf: &mut BytesMut,
    host: &[u8],
    scope: &[u8],
    schema_url: &str,
    groups: &[(&[u8], &FramedLogs<'_>)],
) -> Bytes {
    let sizes: Vec<GroupSizes> = groups
        .iter()
        .map(|(extra, logs)| {
            GroupSizes::new(host.len() + extra.len(), scope.len(), schema_url.len(), logs.chunks.iter().map(|c| c.len()).sum())
        })
        .collect();
    let total: usize = sizes.iter().map(|g| len_field_size(REQUEST_RESOURCE_LOGS, g.resource_logs)).sum();
    buf.clear();
    buf.reserve(total);
    for ((extra, logs), sizes) in groups.iter().zip(sizes) {
        put_group_head(&mut |b| buf.extend_from_slice(b), host, extra, scope, sizes);
        for chunk in &logs.chunks {
            buf.extend_from_slice(chunk);
        }
        put_group_tail(&mut |b| buf.extend_from_slice(b), schema_url);
    }
    debug_assert_eq!(buf.len(), total);
    buf.split().freeze()
}

/// The lengths of one `ResourceLogs` of a request and of its `ScopeLogs`.
#[derive(Debug, Clone, Copy)]
struct GroupSizes {
    resource: usize,
    scope: usize,
    scope_logs: usize,
    resource_logs: usize,
}

impl GroupSizes {
    fn new(resource: usize, scope: usize, schema_url: usize, records: usize) -> Self {
        let scope_logs = len_field_size(SCOPE_LOGS_SCOPE, scope) + records + len_field_size(SCOPE_LOGS_SCHEMA_URL, schema_url);
        let resource_logs = len_field_size(RESOURCE_LOGS_RESOURCE, resource)
            + len_field_size(RESOURCE_LOGS_SCOPE_LOGS, scope_logs)
            + len_field_size(RESOURCE_LOGS_SCHEMA_URL, schema_url);
        GroupSizes { resource, scope, scope_logs, resource_logs }
    }
}

/// A group's bytes before its records: the `ResourceLogs` field's tag and
/// length, its Resource (`host` then `extra`), the `ScopeLogs` field's tag
/// and length, and the scope.
fn put_group_head(put: &mut impl FnMut(&[u8]), host: &[u8], extra: &[u8], scope: &[u8], sizes: GroupSizes) {
    let mut head = Head::new();
    head.len_prefix(REQUEST_RESOURCE_LOGS, sizes.resource_logs).len_prefix(RESOURCE_LOGS_RESOURCE, sizes.resource);
    put(head.as_slice());
    put(host);
    put(extra);
    let mut head = Head::new();
    head.len_prefix(RESOURCE_LOGS_SCOPE_LOGS, sizes.scope_logs).len_prefix(SCOPE_LOGS_SCOPE, sizes.scope);
    put(head.as_slice());
    put(scope);
}

/// A group's bytes after its records: the schema URLs of the `ScopeLogs`
/// and of the `ResourceLogs`.
fn put_group_tail(put: &mut impl FnMut(&[u8]), schema_url: &str) {
    for field in [SCOPE_LOGS_SCHEMA_URL, RESOURCE_LOGS_SCHEMA_URL] {
        let mut head = Head::new();
        head.len_prefix(field, schema_url.len());
        put(head.as_slice());
        put(schema_url.as_bytes());
    }
}

/// The bytes of a one-group `ExportLogsServiceRequest` (what
/// [`encode_request_groups`] writes for one group) before its
/// `records_len` bytes of framed records, and after them: a caller that
/// has the records in a buffer with room before them writes the request
/// around them instead of copying them.
pub fn request_around(host: &[u8], extra: &[u8], scope: &[u8], schema_url: &str, records_len: usize) -> (Vec<u8>, Vec<u8>) {
    let sizes = GroupSizes::new(host.len() + extra.len(), scope.len(), schema_url.len(), records_len);
    let mut head = Vec::with_capacity(host.len() + extra.len() + scope.len() + Head::SIZE * 2);
    put_group_head(&mut |b| head.extend_from_slice(b), host, extra, scope, sizes);
    let mut tail = Vec::with_capacity(Head::SIZE * 2 + schema_url.len() * 2);
    put_group_tail(&mut |b| tail.extend_from_slice(b), schema_url);
    (head, tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, ArrayValue, InstrumentationScope, KeyValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use prost::Message;

    #[test]
    fn varint_lengths() {
        let widths = (0..64).flat_map(|bit| [1u64 << bit, (1u64 << bit) - 1, (1u64 << bit) | 1]);
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX].into_iter().chain(widths) {
            let mut b = vec![0xee];
            put_varint(&mut b, v);
            assert_eq!(b.len() - 1, varint_len(v), "{v}");
            assert_eq!(b.len() - 1, (64 - (v | 1).leading_zeros() as usize).div_ceil(7), "{v}");
            // Minimal, little-endian groups of seven bits.
            let decoded = b[1..].iter().rev().fold(0u64, |acc, byte| (acc << 7) | u64::from(byte & 0x7f));
            assert_eq!(decoded, v);
            assert!(b[1..b.len() - 1].iter().all(|byte| byte & 0x80 != 0) && b[b.len() - 1] & 0x80 == 0, "{v}");
        }
    }

    /// A string array of `&str`s is written byte for byte as the same
    /// array of `Cow`s through `AnyRef::StrArray`.
    #[test]
    fn str_arrays_of_any_string_type_encode_alike() {
        let long = "y".repeat(200);
        for items in [vec![], vec!["O_WRONLY", "O_CREAT"], vec!["", long.as_str(), "x"]] {
            let cows: Vec<Cow<'_, str>> = items.iter().map(|s| Cow::Borrowed(*s)).collect();
            let mut want = vec![0xee];
            put_key_value(&mut want, 6, "vigil.file.flag_names", AnyRef::StrArray(&cows));
            let mut got = vec![0xee];
            put_key_str_array(&mut got, 6, "vigil.file.flag_names", &items);
            assert_eq!(got, want, "{items:?}");
        }
    }

    /// A field written before its length is known has exactly the bytes
    /// of one whose length was known first, whatever the length's width.
    #[test]
    fn fields_ended_after_their_body_are_minimal() {
        for n in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000, 2_097_152] {
            let body: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let mut want = vec![0xee];
            put_bytes(&mut want, 7, &body);
            let mut got = vec![0xee];
            let mark = begin_len_field(&mut got, 7);
            got.extend_from_slice(&body);
            end_len_field(&mut got, mark);
            assert_eq!(got, want, "{n}");
        }
    }

    fn kv(key: &str, v: Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }), ..KeyValue::default() }
    }

    /// The direct encoding decodes to exactly the record prost would build.
    #[test]
    fn log_record_round_trips_through_prost() {
        let args: Vec<Cow<'_, str>> = vec!["ls".into(), "".into(), "x".repeat(300).into()];
        let mut out = Vec::new();
        put_fixed64(&mut out, log_record::TIME_UNIX_NANO, 1_700_000_000_000_000_001);
        put_varint_field(&mut out, log_record::SEVERITY_NUMBER, 9);
        put_bytes(&mut out, log_record::SEVERITY_TEXT, b"INFO");
        put_any_field(&mut out, log_record::BODY, AnyRef::Str("exec ls"));
        put_key_value(&mut out, log_record::ATTRIBUTES, "s", AnyRef::Str("v"));
        put_key_value(&mut out, log_record::ATTRIBUTES, "i", AnyRef::Int(-5));
        put_key_value(&mut out, log_record::ATTRIBUTES, "big", AnyRef::Int(i64::MAX));
        put_key_value(&mut out, log_record::ATTRIBUTES, "b", AnyRef::Bool(false));
        put_key_value(&mut out, log_record::ATTRIBUTES, "a", AnyRef::StrArray(&args));
        put_key_value(&mut out, log_record::ATTRIBUTES, "empty", AnyRef::StrArray(&[]));
        put_fixed64(&mut out, log_record::OBSERVED_TIME_UNIX_NANO, 2);
        put_bytes(&mut out, log_record::EVENT_NAME, b"vigil.process.exec");
        put_bytes(&mut out, log_record::TRACE_ID, &[7; 16]);
        put_bytes(&mut out, log_record::SPAN_ID, &[8; 8]);
        let got = EncodedLog(out).decode().expect("decodes");
        let array = |items: &[Cow<'_, str>]| {
            Value::ArrayValue(ArrayValue {
                values: items.iter().map(|s| AnyValue { value: Some(Value::StringValue(s.to_string())) }).collect(),
            })
        };
        let want = LogRecord {
            time_unix_nano: 1_700_000_000_000_000_001,
            observed_time_unix_nano: 2,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue { value: Some(Value::StringValue("exec ls".into())) }),
            attributes: vec![
                kv("s", Value::StringValue("v".into())),
                kv("i", Value::IntValue(-5)),
                kv("big", Value::IntValue(i64::MAX)),
                kv("b", Value::BoolValue(false)),
                kv("a", array(&args)),
                kv("empty", array(&[])),
            ],
            event_name: "vigil.process.exec".into(),
            trace_id: vec![7; 16],
            span_id: vec![8; 8],
            ..LogRecord::default()
        };
        assert_eq!(got, want);
    }

    #[test]
    fn request_round_trips_through_prost() {
        let resource = Resource { attributes: vec![kv("service.name", Value::StringValue("vigil".into()))], ..Resource::default() };
        let scope = InstrumentationScope { name: "vigil".into(), version: "1".into(), ..InstrumentationScope::default() };
        let rec = LogRecord { event_name: "e".into(), time_unix_nano: 5, ..LogRecord::default() };
        let logs = vec![EncodedLog(rec.encode_to_vec()), EncodedLog(rec.encode_to_vec())];
        let mut buf = BytesMut::new();
        let bytes = encode_request(&mut buf, &resource.encode_to_vec(), &scope.encode_to_vec(), "https://s", &logs);
        let got = ExportLogsServiceRequest::decode(bytes.as_ref()).expect("decodes");
        let want = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(resource),
                scope_logs: vec![ScopeLogs { scope: Some(scope), log_records: vec![rec.clone(), rec], schema_url: "https://s".into() }],
                schema_url: "https://s".into(),
            }],
        };
        assert_eq!(got, want);
    }

    /// A request written around records in place has the bytes of one
    /// encoded with a copy of them.
    #[test]
    fn request_around_records_is_the_copied_request() {
        let logs: Vec<EncodedLog> = (0..300u16).map(|i| EncodedLog(vec![0x10, (i % 100) as u8 + 1])).collect();
        let framed = frame_logs(&logs);
        let (host, extra, scope) = (vec![0x0a; 300], vec![0x0b; 40], vec![0x0c; 20]);
        let copied = encode_request_groups(
            &mut BytesMut::new(),
            &host,
            &scope,
            "https://s",
            &[(&extra, &FramedLogs { chunks: vec![&framed], count: logs.len() })],
        );
        let (head, tail) = request_around(&host, &extra, &scope, "https://s", framed.len());
        assert_eq!([head, framed, tail].concat(), copied.as_ref());
    }

    #[test]
    fn grouped_request_has_one_resource_per_group_with_the_host_fields_first() {
        let host = Resource { attributes: vec![kv("host.name", Value::StringValue("h".into()))], ..Resource::default() };
        let pod = Resource { attributes: vec![kv("k8s.pod.uid", Value::StringValue("u".into()))], ..Resource::default() };
        let scope = InstrumentationScope { name: "vigil".into(), ..InstrumentationScope::default() };
        let rec = |n: u64| LogRecord { time_unix_nano: n, ..LogRecord::default() };
        let (a, b) =
            (vec![EncodedLog(rec(1).encode_to_vec())], vec![EncodedLog(rec(2).encode_to_vec()), EncodedLog(rec(3).encode_to_vec())]);
        let (hb, pb) = (host.encode_to_vec(), pod.encode_to_vec());
        let (a, b) = (frame_logs(&a), frame_logs(&b));
        // b in two chunks: a group's records need not be contiguous.
        let (b1, b2) = b.split_at(b.len() / 2);
        let (a, b) = (FramedLogs { chunks: vec![&a], count: 1 }, FramedLogs { chunks: vec![b1, b2], count: 2 });
        let groups = [(&[][..], &a), (&pb[..], &b)];
        let bytes = encode_request_groups(&mut BytesMut::new(), &hb, &scope.encode_to_vec(), "s", &groups);
        let got = ExportLogsServiceRequest::decode(bytes.as_ref()).expect("decodes");
        assert_eq!(got.resource_logs.len(), 2);
        assert_eq!(got.resource_logs[0].resource.as_ref(), Some(&host));
        let mut both = host.clone();
        both.attributes.extend(pod.attributes);
        assert_eq!(got.resource_logs[1].resource.as_ref(), Some(&both));
        let times: Vec<Vec<u64>> =
            got.resource_logs.iter().map(|r| r.scope_logs[0].log_records.iter().map(|l| l.time_unix_nano).collect()).collect();
        assert_eq!(times, [vec![1], vec![2, 3]]);
    }
}
