//! Retry rules of the OTLP exporter specification, and the backoff between
//! attempts.
//!
//! gRPC: UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, CANCELLED, OUT_OF_RANGE
//! and DATA_LOSS are retryable; RESOURCE_EXHAUSTED only when the server sent
//! a `google.rpc.RetryInfo` in the status details (it says when recovery is
//! possible); every other code is permanent. A `RetryInfo.retry_delay` is
//! honoured for any retryable code.
//!
//! HTTP: 429, 502, 503 and 504 are retryable, honouring `Retry-After` (in
//! seconds or as an HTTP-date); every other non-2xx status is permanent. An
//! error body that is an OTLP `google.rpc.Status` contributes its message.
//!
//! Between attempts without a server-requested delay the exporter waits an
//! exponentially growing, capped, jittered backoff ([`Backoff`]).

use super::ExportError;
use std::time::{Duration, SystemTime};
use tonic::Code;

/// `google.rpc.Status`, `google.protobuf.Any`, `google.rpc.RetryInfo` and
/// `google.protobuf.Duration`: the few well-known messages the retry rules
/// read (gRPC `grpc-status-details-bin`, OTLP/HTTP error bodies).
pub mod rpc {
    /// `google.rpc.Status`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        /// `google.rpc.Code` value.
        #[prost(int32, tag = "1")]
        pub code: i32,
        /// Developer-facing message.
        #[prost(string, tag = "2")]
        pub message: String,
        /// Typed details (`RetryInfo` among them).
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    /// `google.protobuf.Any`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        /// `type.googleapis.com/<full message name>`.
        #[prost(string, tag = "1")]
        pub type_url: String,
        /// The message's bytes.
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    /// `google.rpc.RetryInfo`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RetryInfo {
        /// How long the client should wait before retrying.
        #[prost(message, optional, tag = "1")]
        pub retry_delay: Option<ProtoDuration>,
    }

    /// `google.protobuf.Duration`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct ProtoDuration {
        /// Whole seconds.
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        /// Nanoseconds, 0..1e9.
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    /// The `Any.type_url` of a `RetryInfo`.
    pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

    impl Status {
        /// The `RetryInfo` delay among the details, if any (`Some(ZERO)` for
        /// a RetryInfo without a delay or with a negative one).
        pub fn retry_delay(&self) -> Option<std::time::Duration> {
            let any =
                self.details.iter().find(|d| d.type_url.ends_with("/google.rpc.RetryInfo") || d.type_url == "google.rpc.RetryInfo")?;
            let info: RetryInfo = prost::Message::decode(any.value.as_slice()).ok()?;
            let d = info.retry_delay.unwrap_or_default();
            let secs = u64::try_from(d.seconds).unwrap_or(0);
            let nanos = u32::try_from(d.nanos).unwrap_or(0).min(999_999_999);
            Some(std::time::Duration::new(secs, nanos))
        }

        /// A status whose details hold one `RetryInfo` of `delay` (tests,
        /// test receivers).
        pub fn with_retry_delay(code: i32, message: &str, delay: std::time::Duration) -> Self {
            let info = RetryInfo {
                retry_delay: Some(ProtoDuration {
                    seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                    nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
                }),
            };
            Status {
                code,
                message: message.to_owned(),
                details: vec![Any { type_url: RETRY_INFO_TYPE.to_owned(), value: prost::Message::encode_to_vec(&info) }],
            }
        }
    }
}

/// The `RetryInfo` delay in a gRPC status's details
/// (`grpc-status-details-bin`), if it carries one.
pub fn grpc_retry_delay(status: &tonic::Status) -> Option<Duration> {
    if status.details().is_empty() {
        return None;
    }
    let s: rpc::Status = prost::Message::decode(status.details()).ok()?;
    s.retry_delay()
}

/// Whether `code` is retryable without further information.
pub fn grpc_code_retryable(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Cancelled | Code::OutOfRange | Code::DataLoss)
}

/// Classify a failed gRPC export call.
pub fn classify_grpc(status: &tonic::Status) -> ExportError {
    let code = status.code();
    let delay = grpc_retry_delay(status);
    let message = format!("gRPC {code:?}: {}", status.message());
    // A status made on this side from a broken connection (h2 or I/O
    // error as its source; the server never answered) is a transport
    // failure, not the server's verdict: the collector may come back.
    let transport = std::error::Error::source(status).is_some() && matches!(code, Code::Unknown | Code::Internal);
    let retryable = grpc_code_retryable(code) || (code == Code::ResourceExhausted && delay.is_some()) || transport;
    if retryable {
        ExportError::Retryable { message, delay }
    } else {
        ExportError::Permanent(message)
    }
}

/// Whether an OTLP/HTTP status code is retryable.
pub fn http_status_retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// A `Retry-After` value: delay-seconds, or an HTTP-date (a date in the
/// past means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Classify a non-2xx OTLP/HTTP answer: its status, `Retry-After` header
/// and body (an OTLP `google.rpc.Status` when the server sends one).
pub fn classify_http(status: u16, retry_after: Option<&str>, body: &[u8], now: SystemTime) -> ExportError {
    let detail = match prost::Message::decode(body) {
        Ok(rpc::Status { message, .. }) if !message.is_empty() => message,
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    };
    let message = if detail.trim().is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {}", detail.trim()) };
    if http_status_retryable(status) {
        ExportError::Retryable { message, delay: retry_after.and_then(|v| parse_retry_after(v, now)) }
    } else {
        ExportError::Permanent(message)
    }
}

/// Exponential backoff with jitter and a cap: the n-th wait (from 0) is
/// drawn uniformly from `[d/2, d]` with `d = min(initial * 2^n, max)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// A backoff starting at `initial`, never above `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Self::with_seed(initial, max, seed)
    }

    /// Deterministic jitter (tests).
    pub fn with_seed(initial: Duration, max: Duration, seed: u64) -> Self {
        Backoff { initial, max: max.max(initial), attempt: 0, rng: seed | 1 }
    }

    /// The ceiling of the next wait, before jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The next wait.
    pub fn next_wait(&mut self) -> Duration {
        let d = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64*: jitter needs no cryptographic quality.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let half = d / 2;
        let span = u64::try_from((d - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(if span == 0 { 0 } else { r % (span + 1) })
    }

    /// Start again from `initial` (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with_details(code: Code, details: &rpc::Status) -> tonic::Status {
        tonic::Status::with_details(code, "busy", prost::Message::encode_to_vec(details).into())
    }

    fn delay_of(e: &ExportError) -> Option<Duration> {
        match e {
            ExportError::Retryable { delay, .. } => *delay,
            ExportError::Permanent(_) => None,
        }
    }

    #[test]
    fn grpc_codes_follow_otlp() {
        for c in [Code::Unavailable, Code::DeadlineExceeded, Code::Aborted, Code::Cancelled, Code::OutOfRange, Code::DataLoss] {
            assert!(matches!(classify_grpc(&tonic::Status::new(c, "x")), ExportError::Retryable { delay: None, .. }), "{c:?}");
        }
        for c in [
            Code::Ok,
            Code::Unknown,
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::FailedPrecondition,
            Code::Unauthenticated,
            Code::Unimplemented,
            Code::Internal,
            Code::ResourceExhausted,
        ] {
            assert!(matches!(classify_grpc(&tonic::Status::new(c, "x")), ExportError::Permanent(_)), "{c:?}");
        }
    }

    #[test]
    fn retry_info_makes_resource_exhausted_retryable_and_sets_the_delay() {
        let d = Duration::new(2, 500_000_000);
        let with = rpc::Status::with_retry_delay(8, "slow down", d);
        let e = classify_grpc(&status_with_details(Code::ResourceExhausted, &with));
        assert!(matches!(e, ExportError::Retryable { .. }), "{e:?}");
        assert_eq!(delay_of(&e), Some(d));
        let e = classify_grpc(&status_with_details(Code::Unavailable, &rpc::Status::with_retry_delay(14, "", Duration::from_millis(700))));
        assert_eq!(delay_of(&e), Some(Duration::from_millis(700)));
        // Details without a RetryInfo: RESOURCE_EXHAUSTED stays permanent.
        let other = rpc::Status {
            code: 8,
            message: String::new(),
            details: vec![rpc::Any { type_url: "type.googleapis.com/google.rpc.DebugInfo".into(), value: vec![1, 2] }],
        };
        assert!(matches!(classify_grpc(&status_with_details(Code::ResourceExhausted, &other)), ExportError::Permanent(_)));
        // Garbage details are no RetryInfo.
        let garbage = tonic::Status::with_details(Code::ResourceExhausted, "x", vec![0xff, 0xff, 0xff].into());
        assert!(matches!(classify_grpc(&garbage), ExportError::Permanent(_)));
        // A negative delay means "now".
        let mut neg = rpc::Status::with_retry_delay(8, "", Duration::ZERO);
        neg.details[0].value =
            prost::Message::encode_to_vec(&rpc::RetryInfo { retry_delay: Some(rpc::ProtoDuration { seconds: -5, nanos: 0 }) });
        assert_eq!(neg.retry_delay(), Some(Duration::ZERO));
    }

    #[test]
    fn broken_connections_are_retryable_server_verdicts_are_not() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let mut local = tonic::Status::unknown("h2 protocol error");
        local.set_source(std::sync::Arc::new(io));
        assert!(matches!(classify_grpc(&local), ExportError::Retryable { .. }));
        assert!(matches!(classify_grpc(&tonic::Status::unknown("server says no")), ExportError::Permanent(_)));
        assert!(matches!(classify_grpc(&tonic::Status::internal("server bug")), ExportError::Permanent(_)));
    }

    #[test]
    fn http_statuses_follow_otlp() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 GMT
        for s in [429, 502, 503, 504] {
            assert!(matches!(classify_http(s, None, b"", now), ExportError::Retryable { delay: None, .. }), "{s}");
        }
        for s in [400, 401, 403, 404, 408, 413, 415, 500, 501] {
            assert!(matches!(classify_http(s, Some("3"), b"", now), ExportError::Permanent(_)), "{s}");
        }
        assert_eq!(delay_of(&classify_http(429, Some(" 3 "), b"", now)), Some(Duration::from_secs(3)));
        assert_eq!(delay_of(&classify_http(503, Some("Wed, 21 Oct 2015 07:28:07 GMT"), b"", now)), Some(Duration::from_secs(7)));
        assert_eq!(delay_of(&classify_http(503, Some("Wed, 21 Oct 2015 07:27:00 GMT"), b"", now)), Some(Duration::ZERO), "past date");
        assert_eq!(delay_of(&classify_http(503, Some("soon"), b"", now)), None);
        // The OTLP Status body's message is reported.
        let body = prost::Message::encode_to_vec(&rpc::Status { code: 3, message: "bad attribute".into(), details: vec![] });
        match classify_http(400, None, &body, now) {
            ExportError::Permanent(m) => assert_eq!(m, "HTTP 400: bad attribute"),
            other => panic!("{other:?}"),
        }
        match classify_http(404, None, b"no such path", now) {
            ExportError::Permanent(m) => assert_eq!(m, "HTTP 404: no such path"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_up_to_the_cap() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_secs(5));
        let mut b = Backoff::with_seed(initial, max, 42);
        let ceilings: Vec<Duration> = (0..10)
            .map(|_| {
                let c = b.ceiling();
                let w = b.next_wait();
                assert!(w >= c / 2 && w <= c, "{w:?} outside [{:?}, {c:?}]", c / 2);
                c
            })
            .collect();
        let ms: Vec<u128> = ceilings.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
        // Jitter: waits of the same step differ between seeds.
        let waits: std::collections::HashSet<Duration> = (0..20u64)
            .map(|s| {
                let mut b = Backoff::with_seed(initial, max, s * 7919);
                b.next_wait();
                b.next_wait()
            })
            .collect();
        assert!(waits.len() > 10, "no jitter: {waits:?}");
        b.reset();
        assert_eq!(b.ceiling(), initial);
        // Far past the cap, no overflow.
        let mut b = Backoff::with_seed(initial, max, 1);
        for _ in 0..100 {
            assert!(b.next_wait() <= max);
        }
    }
}
