//! vigil's own health as OpenTelemetry metrics, exported with the
//! `opentelemetry` SDK and `opentelemetry-otlp` to the same endpoint (and
//! protocol, headers, compression) as the data.
//!
//! Every instrument is observable: its callback reads [`Stats`] at
//! collection time, so the hot path only bumps the atomics it already
//! bumps. Names follow the OpenTelemetry metric conventions: `vigil.`
//! prefix, units set, counters for monotonic values, gauges for levels.

use crate::abi::EventType;
use crate::config::{Config, Protocol};
use crate::stats::Stats;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A running meter provider; shut it down to flush the last collection.
#[derive(Debug)]
pub struct SelfMetrics {
    provider: SdkMeterProvider,
}

impl SelfMetrics {
    /// Export one last collection and stop.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!("metrics shutdown: {e}");
        }
    }
}

/// The agent's own CPU time (s) and resident memory (bytes), from /proc.
pub fn own_cpu_and_memory() -> (f64, u64) {
    let ticks = crate::procfs::clock_ticks() as f64;
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit(')').next()?.split_whitespace().collect::<Vec<_>>();
            // fields 14 (utime) and 15 (stime), counted from the state (field 3)
            Some((rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?) / ticks)
        })
        .unwrap_or(0.0);
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    (cpu, rss)
}

fn sdk_resource(resource: &opentelemetry_proto::tonic::resource::v1::Resource) -> opentelemetry_sdk::Resource {
    let attrs = resource.attributes.iter().filter_map(|kv| {
        let v = kv.value.as_ref()?.value.as_ref()?;
        let value: opentelemetry::Value = match v {
            Value::StringValue(s) => s.clone().into(),
            Value::IntValue(i) => (*i).into(),
            Value::BoolValue(b) => (*b).into(),
            Value::ArrayValue(a) => opentelemetry::Value::Array(
                a.values
                    .iter()
                    .filter_map(|x| match &x.value {
                        Some(Value::StringValue(s)) => Some(opentelemetry::StringValue::from(s.clone())),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .into(),
            ),
            _ => return None,
        };
        Some(KeyValue::new(kv.key.clone(), value))
    });
    opentelemetry_sdk::Resource::builder_empty().with_attributes(attrs).build()
}

/// Start exporting vigil's metrics every `interval`, when an endpoint is
/// configured (without one, the local /metrics endpoint serves them).
/// Must be called inside the tokio runtime (the gRPC client lives there).
pub fn start(
    cfg: &Config,
    stats: Arc<Stats>,
    metadata: Option<Arc<crate::metadata::MetadataStats>>,
    resource: &opentelemetry_proto::tonic::resource::v1::Resource,
    interval: Duration,
) -> anyhow::Result<Option<SelfMetrics>> {
    let e = &cfg.export;
    if e.endpoint.is_empty() {
        return Ok(None);
    }
    let exporter = match e.protocol {
        Protocol::Grpc => {
            let mut metadata = tonic::metadata::MetadataMap::new();
            for (k, v) in &e.headers {
                if let (Ok(k), Ok(v)) = (tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()), v.parse()) {
                    metadata.insert(k, v);
                }
            }
            let b = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(e.endpoint.clone())
                .with_timeout(e.timeout())
                .with_metadata(metadata);
            if e.gzip {
                b.with_compression(opentelemetry_otlp::Compression::Gzip).build()?
            } else {
                b.build()?
            }
        }
        Protocol::HttpProtobuf => {
            let url = format!("{}/v1/metrics", e.endpoint.trim_end_matches('/'));
            opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_endpoint(url)
                .with_timeout(e.timeout())
                .with_headers(e.headers.clone().into_iter().collect())
                .build()?
        }
    };
    let reader = PeriodicReader::builder(exporter).with_interval(interval).build();
    let provider = SdkMeterProvider::builder().with_resource(sdk_resource(resource)).with_reader(reader).build();
    register(&provider, stats, metadata);
    Ok(Some(SelfMetrics { provider }))
}

fn register(provider: &SdkMeterProvider, stats: Arc<Stats>, metadata: Option<Arc<crate::metadata::MetadataStats>>) {
    let meter = provider.meter("vigil");
    let l = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    macro_rules! counter {
        ($name:expr, $unit:expr, $desc:expr, |$s:ident, $obs:ident| $body:block) => {{
            let $s = stats.clone();
            let _ = meter.u64_observable_counter($name).with_unit($unit).with_description($desc).with_callback(move |$obs| $body).build();
        }};
    }
    counter!("vigil.records.received", "{record}", "records read from the ring buffers", |s, o| {
        o.observe(l(&s.received), &[]);
    });
    counter!("vigil.records.exported", "{record}", "log records accepted by the collector", |s, o| {
        o.observe(l(&s.exported), &[]);
    });
    counter!("vigil.spans.exported", "{span}", "process spans accepted by the collector", |s, o| {
        o.observe(l(&s.spans_exported), &[]);
    });
    counter!("vigil.records.lost", "{record}", "records lost, by stage, cause and event (the loss records' series)", |s, o| {
        for (stage, cause, event, v) in crate::health::loss_series(&s) {
            let mut attrs = vec![KeyValue::new("vigil.loss.stage", stage), KeyValue::new("error.type", cause)];
            if let Some(e) = event {
                attrs.push(KeyValue::new("vigil.loss.event_name", e));
            }
            o.observe(v, &attrs);
        }
    });
    counter!("vigil.records.read", "{record}", "records read from the ring buffer, by event", |s, o| {
        for t in EventType::ALL {
            o.observe(s.received_of(t), &[KeyValue::new("vigil.event_name", t.event_name())]);
        }
    });
    counter!(
        "vigil.records.excluded",
        "{record}",
        "records excluded in the kernel by [filters], by event and filter (not lost)",
        |s, o| {
            for (t, r, v) in s.excluded_series() {
                o.observe(v, &[KeyValue::new("vigil.event_name", t.event_name()), KeyValue::new("vigil.filter.reason", r.as_str())]);
            }
        }
    );
    counter!(
        "vigil.records.suppressed",
        "{record}",
        "bulk records over their process's rate limit, by event (counted in summary records, not lost)",
        |s, o| {
            for (t, v) in s.ratelimited_series() {
                o.observe(v, &[KeyValue::new("vigil.event_name", t.event_name())]);
            }
        }
    );
    if let Some(m) = metadata {
        let _ = meter
            .u64_observable_counter("vigil.metadata.lookups")
            .with_unit("{lookup}")
            .with_description(
                "workload metadata lookups: container runtime (started, failed, skipped: queue full) and Kubernetes (listed, failed)",
            )
            .with_callback(move |o| {
                for (api, outcome, c) in [
                    ("container", "started", &m.lookups),
                    ("container", "failed", &m.failures),
                    ("container", "skipped", &m.skipped),
                    ("kubernetes", "listed", &m.k8s_lists),
                    ("kubernetes", "failed", &m.k8s_failures),
                ] {
                    o.observe(l(c), &[KeyValue::new("vigil.metadata.api", api), KeyValue::new("vigil.metadata.outcome", outcome)]);
                }
            })
            .build();
    }
    counter!("vigil.export.retries", "{attempt}", "export attempts retried", |s, o| {
        o.observe(l(&s.export_retries), &[]);
    });
    counter!("vigil.bpf.program.runs", "{run}", "runs of each eBPF program (BPF stats)", |s, o| {
        for t in EventType::ALL {
            if let Some(runs) = s.program_run_count(t) {
                o.observe(runs, &[KeyValue::new("vigil.event_name", t.event_name())]);
            }
        }
    });
    let s = stats.clone();
    let _ = meter
        .f64_observable_counter("vigil.bpf.program.time")
        .with_unit("s")
        .with_description("time spent in each eBPF program (BPF stats)")
        .with_callback(move |o| {
            for t in EventType::ALL {
                if let Some(ns) = s.program_run_time_ns(t) {
                    o.observe(ns as f64 / 1e9, &[KeyValue::new("vigil.event_name", t.event_name())]);
                }
            }
        })
        .build();
    // Level gauges read straight from one counter: (name, unit, description, lane-labelled, read).
    type Read = fn(&Stats) -> u64;
    let levels: [(&'static str, &'static str, &'static str, Option<&'static str>, Read); 5] = [
        ("vigil.queue.depth", "{record}", "records waiting between the ring buffer reader and the map stage", None, |s| {
            s.queue_depth.load(Ordering::Relaxed)
        }),
        (
            "vigil.ringbuf.usage",
            "By",
            "bytes waiting in the ring buffer at the last read (size: vigil.ringbuf.limit)",
            Some("critical"),
            |s| s.ringbuf_used_bytes.load(Ordering::Relaxed),
        ),
        ("vigil.ringbuf.limit", "By", "ring buffer size", Some("critical"), |s| s.ringbuf_size_bytes.load(Ordering::Relaxed)),
        ("vigil.process_table.size", "{process}", "processes in the process table", None, |s| s.processes_tracked.load(Ordering::Relaxed)),
        ("vigil.export.in_flight", "{record}", "records handed to the exporter and not yet delivered or failed", None, |s| {
            s.in_flight.load(Ordering::Relaxed)
        }),
    ];
    // The bulk lane's ring buffer: a second point of the same gauge.
    let bulk: fn(&str) -> Option<Read> = |name| match name {
        "vigil.ringbuf.usage" => Some(|s| s.bulk_ringbuf_used_bytes.load(Ordering::Relaxed)),
        "vigil.ringbuf.limit" => Some(|s| s.bulk_ringbuf_size_bytes.load(Ordering::Relaxed)),
        _ => None,
    };
    for (name, unit, description, lane, read) in levels {
        let s = stats.clone();
        let attrs: Vec<KeyValue> = lane.map(|l| vec![KeyValue::new("vigil.lane", l)]).unwrap_or_default();
        let bulk_read = bulk(name);
        let bulk_attrs = [KeyValue::new("vigil.lane", "bulk")];
        let _ = meter
            .u64_observable_gauge(name)
            .with_unit(unit)
            .with_description(description)
            .with_callback(move |o| {
                o.observe(read(&s), &attrs);
                if let Some(b) = bulk_read {
                    o.observe(b(&s), &bulk_attrs);
                }
            })
            .build();
    }
    let s = stats.clone();
    let _ = meter
        .f64_observable_gauge("vigil.export.latency")
        .with_unit("s")
        .with_description("mean duration of successful export calls (retries included)")
        .with_callback(move |o| {
            let n = s.export_calls_ok.load(Ordering::Relaxed);
            if n > 0 {
                o.observe(s.export_latency_ns_sum.load(Ordering::Relaxed) as f64 / n as f64 / 1e9, &[]);
            }
        })
        .build();
    let _ = meter
        .f64_observable_counter("vigil.process.cpu.time")
        .with_unit("s")
        .with_description("CPU time used by vigil")
        .with_callback(|o| o.observe(own_cpu_and_memory().0, &[]))
        .build();
    let _ = meter
        .u64_observable_gauge("vigil.process.memory.usage")
        .with_unit("By")
        .with_description("resident memory of vigil")
        .with_callback(|o| o.observe(own_cpu_and_memory().1, &[]))
        .build();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_and_memory() {
        let (cpu, rss) = own_cpu_and_memory();
        assert!(cpu >= 0.0);
        assert!(rss > 1024 * 1024, "a test process uses more than 1 MiB: {rss}");
    }

    /// The registered instruments report the counters' values.
    #[test]
    fn instruments_observe_the_counters() {
        use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
        use opentelemetry_sdk::metrics::InMemoryMetricExporter;
        let stats = Arc::new(Stats::default());
        stats.received.store(42, Ordering::Relaxed);
        stats.count_queue_full(&(EventType::Exec as u16).to_ne_bytes());
        stats.processes_tracked.store(7, Ordering::Relaxed);
        stats.ringbuf_used_bytes.store(4096, Ordering::Relaxed);
        stats.bulk_ringbuf_used_bytes.store(8192, Ordering::Relaxed);
        stats.excluded_of(EventType::FileOpen, crate::filters::FilterReason::File).store(5, Ordering::Relaxed);
        stats.ratelimited_of(EventType::NetworkConnect).store(9, Ordering::Relaxed);
        let metadata = Arc::new(crate::metadata::MetadataStats::default());
        metadata.skipped.store(3, Ordering::Relaxed);
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder().with_reader(PeriodicReader::builder(exporter.clone()).build()).build();
        register(&provider, stats, Some(metadata));
        provider.force_flush().expect("flush");
        let mut received = None;
        let mut queue_full = None;
        let mut excluded = Vec::new();
        let mut suppressed = Vec::new();
        let mut skipped = None;
        let mut gauges = std::collections::BTreeMap::new();
        for rm in exporter.get_finished_metrics().expect("metrics") {
            for sm in rm.scope_metrics() {
                for m in sm.metrics() {
                    if let AggregatedMetrics::U64(MetricData::Gauge(g)) = m.data() {
                        for p in g.data_points() {
                            let lane = p.attributes().find(|kv| kv.key.as_str() == "vigil.lane").map(|kv| kv.value.to_string());
                            let key = match lane {
                                Some(l) if l != "critical" => format!("{}/{l}", m.name()),
                                _ => m.name().to_owned(),
                            };
                            gauges.insert(key, p.value());
                        }
                    }
                    if let AggregatedMetrics::U64(MetricData::Sum(sum)) = m.data() {
                        for p in sum.data_points() {
                            let attr = |k: &str| p.attributes().find(|kv| kv.key.as_str() == k).map(|kv| kv.value.to_string());
                            match m.name() {
                                "vigil.records.received" => received = Some(p.value()),
                                "vigil.records.lost"
                                    if attr("error.type").as_deref() == Some("queue_full")
                                        && attr("vigil.loss.event_name").as_deref() == Some("vigil.process.exec") =>
                                {
                                    queue_full = Some(p.value())
                                }
                                "vigil.records.excluded" => {
                                    excluded.push((attr("vigil.event_name"), attr("vigil.filter.reason"), p.value()))
                                }
                                "vigil.records.suppressed" => suppressed.push((attr("vigil.event_name"), p.value())),
                                "vigil.metadata.lookups"
                                    if attr("vigil.metadata.api").as_deref() == Some("container")
                                        && attr("vigil.metadata.outcome").as_deref() == Some("skipped") =>
                                {
                                    skipped = Some(p.value())
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(received, Some(42));
        assert_eq!(queue_full, Some(1));
        // Only the series that counted something.
        assert_eq!(excluded, [(Some("vigil.file.open".to_owned()), Some("file".to_owned()), 5)]);
        assert_eq!(suppressed, [(Some("vigil.network.connect".to_owned()), 9)]);
        assert_eq!(skipped, Some(3));
        assert_eq!(gauges.get("vigil.process_table.size"), Some(&7));
        assert_eq!(gauges.get("vigil.ringbuf.usage"), Some(&4096));
        assert_eq!(gauges.get("vigil.ringbuf.usage/bulk"), Some(&8192), "the bulk lane's ring is a second point");
        let _ = provider.shutdown();
    }
}
