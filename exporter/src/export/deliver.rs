//! The export stage: delivers batches, spools what the collector cannot
//! accept, and replays the spool oldest first.
//!
//! Two modes:
//! - **direct** (the spool is empty): each batch is exported with retries
//!   ([`Exporter::export`]); while it retries, the stage takes no new batch,
//!   so backpressure reaches the pipeline's counted edge (the receiver).
//!   When the retries run out on a retryable failure the batch goes to the
//!   spool, and the stage switches to
//! - **spooling** (the spool holds something): new batches are written to
//!   the spool as they arrive (the pipeline never waits on the collector),
//!   and the oldest segment is sent, one attempt at a time, with the
//!   backoff (or the server's requested delay) between failed attempts.
//!   Each delivered segment is deleted and the next one sent at once; when
//!   the spool is empty the stage is direct again.
//!
//! Permanent failures are counted (`export_failed`) and never spooled: they
//! would fail again. A partial success is never retried; its rejected items
//! are counted (`export_rejected`).
//!
//! Shutdown: when the batch channel closes the stage finishes the batch in
//! hand, and, if spooled segments are being delivered, keeps delivering
//! them until one fails (the rest stays on disk for the next start). When
//! the shutdown deadline fires ([`Delivery::deadline`]), the stage stops
//! sending and writes the batch in hand and every queued batch to the
//! spool.

use super::retry::Backoff;
use super::{Batch, Delivered, ExportError, Exporter, RetryPolicy, Signal};
use crate::spool::{Lane, Spool};
use crate::stats::Stats;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The export stage's state.
#[derive(Debug)]
pub struct Delivery {
    exporter: Exporter,
    policy: RetryPolicy,
    stats: Arc<Stats>,
    spool: Option<Spool>,
    /// Replays join consecutive segments into requests of at most this
    /// many bytes (`export.batch_max_bytes`).
    max_request_bytes: usize,
    /// Cancelled when the shutdown deadline is reached.
    pub deadline: CancellationToken,
}

/// The lane of a batch (the map stage never mixes lanes in one request).
fn lane_of(batch: &Batch) -> Lane {
    batch.lane
}

/// Count a batch as lost for good.
fn failed(stats: &Stats, batch: &Batch, e: &ExportError) {
    let failed = if batch.signal == Signal::Traces { &stats.spans_export_failed } else { &stats.export_failed };
    failed.fetch_add(batch.records, Ordering::Relaxed);
    tracing::error!(items = batch.records, signal = batch.signal.as_str(), "export failed: {e}");
}

fn behind() -> ExportError {
    ExportError::Retryable { message: "spooled behind earlier requests".into(), delay: None }
}

/// Write a batch that left the pipeline to the spool (it is no longer in
/// flight either way); without a spool, or when the write fails, it is lost
/// (counted as `export_failed`). Returns whether it is on disk.
fn spool_batch(spool: &mut Option<Spool>, stats: &Stats, batch: &Batch, why: &ExportError) -> bool {
    stats.in_flight.fetch_sub(batch.records, Ordering::Relaxed);
    let Some(spool) = spool.as_mut() else {
        failed(stats, batch, why);
        return false;
    };
    match spool.push(batch, lane_of(batch)) {
        Ok(kept) => kept,
        Err(e) => {
            let dir = spool.dir().display().to_string();
            failed(stats, batch, &ExportError::Permanent(format!("{why}; writing it to the spool {dir} failed: {e}")));
            false
        }
    }
}

/// Join consecutive batches of the same signal into requests of at most
/// `max_bytes` (OTLP export requests are one repeated field: concatenated,
/// they are the request holding all of them). Order is kept.
pub fn merge(batches: Vec<Batch>, max_bytes: usize) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::with_capacity(batches.len());
    let mut parts: Vec<bytes::Bytes> = Vec::new();
    let mut cur: Option<(Signal, Lane, u64, usize)> = None;
    let flush = |out: &mut Vec<Batch>, parts: &mut Vec<bytes::Bytes>, cur: Option<(Signal, Lane, u64, usize)>| {
        if let Some((signal, lane, records, _)) = cur {
            let bytes = if parts.len() == 1 { parts.remove(0) } else { parts.concat().into() };
            parts.clear();
            out.push(Batch { bytes, records, signal, lane });
        }
    };
    for b in batches {
        match cur {
            Some((signal, lane, records, len)) if signal == b.signal && lane == b.lane && len + b.bytes.len() <= max_bytes => {
                cur = Some((signal, lane, records + b.records, len + b.bytes.len()));
            }
            _ => {
                flush(&mut out, &mut parts, cur);
                cur = Some((b.signal, b.lane, b.records, b.bytes.len()));
            }
        }
        parts.push(b.bytes);
    }
    flush(&mut out, &mut parts, cur);
    out
}

/// Spool `first` and every batch already queued behind it, joined into as
/// few segments as `max_bytes` allows (one fsync per segment, not per
/// batch: spooling keeps up with the pipeline).
fn spool_queued(spool: &mut Option<Spool>, stats: &Stats, first: Batch, rx: &mut mpsc::Receiver<Batch>, max_bytes: usize) -> u64 {
    let mut all = vec![first];
    while let Ok(b) = rx.try_recv() {
        all.push(b);
    }
    let why = behind();
    let mut n = 0;
    for b in merge(all, max_bytes) {
        n += b.records;
        spool_batch(spool, stats, &b, &why);
    }
    n
}

enum Replay {
    /// A segment was delivered (or dropped as corrupt or permanently
    /// refused): try the next one at once.
    Progress,
    /// The collector did not accept it: wait this long.
    Wait(std::time::Duration),
    /// Nothing spooled.
    Empty,
}

impl Delivery {
    /// A stage exporting with `exporter`, spooling to `spool` if any.
    pub fn new(exporter: Exporter, policy: RetryPolicy, stats: Arc<Stats>, spool: Option<Spool>, max_request_bytes: usize) -> Self {
        Delivery { exporter, policy, stats, spool, max_request_bytes, deadline: CancellationToken::new() }
    }

    fn spooling(&self) -> bool {
        self.spool.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// Account for a delivered batch (direct or replayed).
    fn delivered(&self, batch: &Batch, d: Delivered, started: std::time::Instant) {
        let s = &self.stats;
        s.last_export_ok_ns.store(crate::clock::unix_now_ns(), Ordering::Relaxed);
        s.export_failing_since_ns.store(0, Ordering::Relaxed);
        s.export_calls_ok.fetch_add(1, Ordering::Relaxed);
        s.export_latency_ns_sum.fetch_add(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        let (exported, rejected) =
            if batch.signal == Signal::Traces { (&s.spans_exported, &s.spans_rejected) } else { (&s.exported, &s.export_rejected) };
        exported.fetch_add(batch.records, Ordering::Relaxed);
        rejected.fetch_add(d.rejected, Ordering::Relaxed);
        if d.rejected > 0 {
            tracing::warn!(rejected = d.rejected, signal = batch.signal.as_str(), "collector rejected items (partial success)");
        }
    }

    /// Count a batch as lost for good.
    fn failed(&self, batch: &Batch, e: &ExportError) {
        failed(&self.stats, batch, e);
    }

    fn leave_pipeline(&self, batch: &Batch) {
        self.stats.in_flight.fetch_sub(batch.records, Ordering::Relaxed);
    }

    fn spool_batch(&mut self, batch: &Batch, why: &ExportError) -> bool {
        spool_batch(&mut self.spool, &self.stats, batch, why)
    }

    /// Send the oldest spooled segment once. Batches arriving meanwhile
    /// are spooled behind it (the pipeline does not wait on the attempt);
    /// `open` turns false if the channel closes.
    async fn replay_one(&mut self, backoff: &mut Backoff, rx: &mut mpsc::Receiver<Batch>, open: &mut bool) -> Replay {
        let max_bytes = self.max_request_bytes;
        let Some(spool) = self.spool.as_mut() else { return Replay::Empty };
        let Some((seqs, read)) = spool.oldest_run(max_bytes) else { return Replay::Empty };
        let Ok(batch) = read else { return Replay::Progress }; // corrupt: counted and deleted
        let started = std::time::Instant::now();
        let attempt = {
            let send = self.exporter.export_once(&batch);
            tokio::pin!(send);
            loop {
                tokio::select! {
                    r = &mut send => break r,
                    () = self.deadline.cancelled() => return Replay::Wait(std::time::Duration::ZERO),
                    b = rx.recv(), if *open => match b {
                        Some(b) => {
                            spool_queued(&mut self.spool, &self.stats, b, rx, max_bytes);
                        }
                        None => *open = false,
                    },
                }
            }
        };
        match attempt {
            Ok(d) => {
                self.delivered(&batch, d, started);
                if let Some(spool) = self.spool.as_mut() {
                    for seq in seqs {
                        spool.delivered(seq);
                    }
                }
                backoff.reset();
                Replay::Progress
            }
            Err(ExportError::Retryable { message, delay }) => {
                let now = crate::clock::unix_now_ns();
                let _ = self.stats.export_failing_since_ns.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
                self.stats.export_retries.fetch_add(1, Ordering::Relaxed);
                let wait = delay.unwrap_or_else(|| backoff.next_wait());
                tracing::warn!(%message, ?wait, spooled_segments = self.spool.as_ref().map_or(0, Spool::len), "replaying the spool failed, retrying");
                Replay::Wait(wait)
            }
            Err(e) => {
                self.failed(&batch, &e);
                if let Some(spool) = self.spool.as_mut() {
                    for seq in seqs {
                        spool.remove(seq);
                    }
                }
                Replay::Progress
            }
        }
    }

    /// Whether undeliverable batches go to a spool.
    pub fn has_spool(&self) -> bool {
        self.spool.is_some()
    }

    /// The deadline fired: spool `in_hand` and everything the pipeline
    /// still hands on, until it closes the channel.
    async fn spool_the_rest(&mut self, in_hand: Option<Batch>, rx: &mut mpsc::Receiver<Batch>) {
        if self.spool.is_none() {
            // Counted by the caller as shutdown losses (still in flight).
            return;
        }
        let why = ExportError::Retryable { message: "unsent at the shutdown deadline".into(), delay: None };
        let mut n = 0;
        if let Some(batch) = in_hand {
            self.spool_batch(&batch, &why);
            n += batch.records;
        }
        while let Some(batch) = rx.recv().await {
            n += spool_queued(&mut self.spool, &self.stats, batch, rx, self.max_request_bytes);
        }
        if n > 0 {
            tracing::warn!(items = n, "shutdown deadline reached: unsent records written to the spool");
        }
    }

    /// Run until the channel closes (and the spool cannot be delivered
    /// further) or the deadline fires.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Batch>) {
        let mut backoff = Backoff::new(self.policy.initial_backoff, self.policy.max_backoff);
        let mut open = true;
        loop {
            if self.deadline.is_cancelled() {
                self.spool_the_rest(None, &mut rx).await;
                return;
            }
            if !self.spooling() {
                if !open {
                    return;
                }
                let batch = tokio::select! {
                    b = rx.recv() => b,
                    () = self.deadline.cancelled() => continue,
                };
                let Some(batch) = batch else { return };
                let started = std::time::Instant::now();
                let result = tokio::select! {
                    r = self.exporter.export(&batch, &self.policy, &self.stats) => r,
                    () = self.deadline.cancelled() => {
                        self.spool_the_rest(Some(batch), &mut rx).await;
                        return;
                    }
                };
                match result {
                    Ok(d) => {
                        self.delivered(&batch, d, started);
                        self.leave_pipeline(&batch);
                    }
                    // (spool_batch takes the batch out of the pipeline's count)
                    Err(e @ ExportError::Retryable { .. }) => {
                        if self.spool_batch(&batch, &e) {
                            tracing::warn!(
                                items = batch.records,
                                "export retries exhausted ({e}): spooling until the collector accepts again"
                            );
                        }
                    }
                    Err(e) => {
                        self.failed(&batch, &e);
                        self.leave_pipeline(&batch);
                    }
                }
                continue;
            }
            // Spooling: take what the pipeline has, then try the oldest segment.
            if let Ok(batch) = rx.try_recv() {
                spool_queued(&mut self.spool, &self.stats, batch, &mut rx, self.max_request_bytes);
            }
            match self.replay_one(&mut backoff, &mut rx, &mut open).await {
                Replay::Progress | Replay::Empty => continue,
                Replay::Wait(_) if !open => return, // shutting down: the rest stays on disk
                Replay::Wait(wait) => {
                    let sleep = tokio::time::sleep(wait);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            () = &mut sleep => break,
                            () = self.deadline.cancelled() => break,
                            b = rx.recv(), if open => match b {
                                Some(batch) => {
                                    spool_queued(&mut self.spool, &self.stats, batch, &mut rx, self.max_request_bytes);
                                }
                                None => {
                                    open = false;
                                    break;
                                }
                            },
                        }
                    }
                }
            }
        }
    }
}

/// Open the spool `cfg` names, for an exporter that sends to a collector
/// (none for stdout, or when `spool.path` is empty). A spool that cannot be
/// opened is logged and left out: undeliverable records are then counted as
/// lost. Corrupt segments found are counted (`spool_corrupt`).
pub fn open_spool(cfg: &crate::config::Config, exporter: &Exporter, stats: &Arc<Stats>) -> Option<Spool> {
    if matches!(exporter, Exporter::Stdout(_)) || cfg.spool.path.is_empty() {
        return None;
    }
    match Spool::open(std::path::Path::new(&cfg.spool.path), cfg.spool.max_bytes, stats.clone()) {
        Ok((spool, corrupt)) => {
            spool.report_corrupt(&corrupt);
            if !spool.is_empty() {
                tracing::info!(segments = spool.len(), bytes = spool.bytes(), path = %cfg.spool.path, "spooled requests from an earlier run will be replayed");
            }
            Some(spool)
        }
        Err(e) => {
            tracing::error!(path = %cfg.spool.path, "cannot open the spool, running without one (undeliverable records will be lost): {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_joins_runs_of_one_signal_within_the_byte_limit() {
        let b = |signal, fill: u8, len: usize, records| Batch { bytes: vec![fill; len].into(), records, signal, lane: Lane::Critical };
        let input = vec![
            b(Signal::Logs, 1, 10, 1),
            b(Signal::Logs, 2, 10, 2),
            b(Signal::Traces, 3, 5, 3),
            b(Signal::Logs, 4, 10, 4),
            b(Signal::Logs, 5, 10, 5),
            b(Signal::Logs, 6, 10, 6),
        ];
        let out = merge(input, 25);
        let shape: Vec<(Signal, u64, usize)> = out.iter().map(|b| (b.signal, b.records, b.bytes.len())).collect();
        assert_eq!(
            shape,
            [(Signal::Logs, 3, 20), (Signal::Traces, 3, 5), (Signal::Logs, 9, 20), (Signal::Logs, 6, 10)],
            "same signal, within 25 bytes, order kept"
        );
        assert_eq!(&out[0].bytes[..], &[1u8; 10].iter().chain(&[2u8; 10]).copied().collect::<Vec<u8>>()[..]);
        assert!(merge(Vec::new(), 10).is_empty());
        // A batch over the limit stays whole, alone.
        assert_eq!(merge(vec![b(Signal::Logs, 7, 40, 1), b(Signal::Logs, 8, 1, 1)], 25).len(), 2);
    }

    #[test]
    fn merge_never_joins_requests_of_different_lanes() {
        let b = |lane, records| Batch { bytes: vec![1; 4].into(), records, signal: Signal::Logs, lane };
        let out = merge(vec![b(Lane::Critical, 1), b(Lane::Bulk, 2), b(Lane::Bulk, 3), b(Lane::Critical, 4)], 1 << 20);
        let shape: Vec<(Lane, u64)> = out.iter().map(|b| (b.lane, b.records)).collect();
        assert_eq!(shape, [(Lane::Critical, 1), (Lane::Bulk, 5), (Lane::Critical, 4)]);
        assert_eq!(lane_of(&out[1]), Lane::Bulk, "the spool files a bulk request as bulk");
    }
}
