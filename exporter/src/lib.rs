//! vigil: OpenTelemetry-native security telemetry exporter for Linux.
//!
//! Stages, in data order: [`probes`] (eBPF programs and the ring-buffer
//! receiver) -> [`decode`] -> [`proctable`] (enrich) -> [`otel`] (map to
//! OTLP) -> [`export`] (batch and send), wired together by [`pipeline`].
//! The kernel/user ABI is [`abi`], mirrored from `schemas/vigil_abi.h`.

pub mod abi;
pub mod accounting;
pub mod allocator;
pub mod cgroups;
pub mod clock;
pub mod config;
pub mod decode;
pub mod errno;
pub mod escape;
pub mod export;
pub mod fasthash;
pub mod filters;
pub mod health;
pub mod host;
pub mod metadata;
pub mod metrics;
pub mod otel;
pub mod pipeline;
pub mod policy;
pub mod probes;
pub mod procfs;
pub mod proctable;
pub mod ratelimit;
pub mod spans;
pub mod spool;
pub mod stats;
pub mod users;
pub mod workload;
