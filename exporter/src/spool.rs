//! The on-disk spool: export requests the collector could not accept, kept
//! in a bounded directory and replayed oldest first when it recovers, also
//! after a crash or `kill -9` of vigil.
//!
//! One segment file per export request, named `<seq>-<lane>.seg` (`seq`:
//! 20 decimal digits, increasing; the order of replay). A segment is a
//! 48-byte header followed by the request's protobuf bytes, exactly as they
//! were (or would have been) sent, so replayed records keep their
//! timestamps and `log.record.uid`:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `VIGILSPL` |
//! | 8 | 2 | format version (1), little endian |
//! | 10 | 1 | signal (0 logs, 1 traces) |
//! | 11 | 1 | lane (0 critical, 1 bulk) |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 8 | items (log records or spans) |
//! | 24 | 8 | created, Unix ns |
//! | 32 | 8 | payload length |
//! | 40 | 4 | CRC-32 of bytes 0..40 and the payload |
//! | 44 | 4 | reserved, 0 |
//!
//! Writing is atomic: the segment is written under a temporary name
//! (`.<seq>.tmp`), fsynced, renamed into place, and the directory fsynced.
//! A crash leaves either the whole segment or only a temporary file, which
//! the next start deletes. A segment whose header or checksum does not
//! verify is reported (`spool_corrupt`, with its item count when the header
//! is readable) and deleted, never replayed and never fatal.
//!
//! The spool holds at most `max_bytes` (headers included). To make room the
//! oldest bulk-lane segment goes first, then the oldest critical one; their
//! items are counted as lost (`spool_full`). A request larger than the whole
//! spool is refused and counted the same way.

use crate::export::{Batch, Signal};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const MAGIC: &[u8; 8] = b"VIGILSPL";
const VERSION: u16 = 1;
/// Size of a segment header.
pub const HEADER_LEN: usize = 48;

/// The priority lane of the records in a segment (the ABI's record lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// Security-relevant records: evicted last.
    Critical,
    /// High-volume records: evicted first when the spool is full.
    Bulk,
}

impl Lane {
    fn code(self) -> u8 {
        match self {
            Lane::Critical => 0,
            Lane::Bulk => 1,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Lane::Critical),
            1 => Some(Lane::Bulk),
            _ => None,
        }
    }

    /// `critical` or `bulk`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Critical => "critical",
            Lane::Bulk => "bulk",
        }
    }
}

fn signal_code(s: Signal) -> u8 {
    match s {
        Signal::Logs => 0,
        Signal::Traces => 1,
    }
}

fn signal_from_code(c: u8) -> Option<Signal> {
    match c {
        0 => Some(Signal::Logs),
        1 => Some(Signal::Traces),
        _ => None,
    }
}

/// Counters of the spool, per signal where items are counted. All
/// cumulative except the three levels (`bytes`, `segments`, `items`).
#[derive(Debug, Default)]
pub struct SpoolStats {
    /// Log records written to the spool.
    pub spooled: AtomicU64,
    /// Spans written to the spool.
    pub spans_spooled: AtomicU64,
    /// Log records delivered from the spool.
    pub replayed: AtomicU64,
    /// Spans delivered from the spool.
    pub spans_replayed: AtomicU64,
    /// Log records lost because the spool was full (evicted or refused).
    pub full: AtomicU64,
    /// Spans lost because the spool was full.
    pub spans_full: AtomicU64,
    /// Log records in segments found corrupt.
    pub corrupt: AtomicU64,
    /// Spans in segments found corrupt.
    pub spans_corrupt: AtomicU64,
    /// Corrupt segments found (also those whose item count was unreadable).
    pub corrupt_segments: AtomicU64,
    /// Bytes in the spool now.
    pub bytes: AtomicU64,
    /// Segments in the spool now.
    pub segments: AtomicU64,
    /// Items (log records and spans) in the spool now.
    pub items: AtomicU64,
}

impl SpoolStats {
    fn by_signal(&self, s: Signal, logs: &AtomicU64, spans: &AtomicU64, n: u64) {
        match s {
            Signal::Logs => logs.fetch_add(n, Ordering::Relaxed),
            Signal::Traces => spans.fetch_add(n, Ordering::Relaxed),
        };
    }
}

/// What the spool knows of a segment without reading its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    lane: Lane,
    signal: Signal,
    items: u64,
    bytes: u64,
}

/// A segment that did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    /// The file, as it was named.
    pub file: PathBuf,
    /// What is wrong.
    pub reason: String,
    /// Items it held, when its header was readable.
    pub items: Option<(Signal, u64)>,
}

/// The spool directory.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segments: BTreeMap<u64, Meta>,
    bytes: u64,
    next_seq: u64,
    stats: std::sync::Arc<crate::stats::Stats>,
    /// `.lock` in the directory, flock()ed for the spool's life: two vigils
    /// on one spool would replay and delete each other's segments.
    _lock: std::fs::File,
}

/// Take the spool directory's lock (`<dir>/.lock`, holding the owner's
/// pid), or say which process has it.
fn lock_dir(dir: &Path) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = dir.join(".lock");
    let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
    // SAFETY: flock(2) on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut owner = String::new();
            let _ = file.read_to_string(&mut owner);
            return Err(std::io::Error::other(format!(
                "{} is in use by another vigil (pid {}): give each instance its own spool.path",
                dir.display(),
                owner.trim()
            )));
        }
        return Err(err);
    }
    file.set_len(0)?;
    file.write_all(std::process::id().to_string().as_bytes())?;
    Ok(file)
}

fn header(signal: Signal, lane: Lane, items: u64, created_ns: u64, payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[10] = signal_code(signal);
    h[11] = lane.code();
    h[16..24].copy_from_slice(&items.to_le_bytes());
    h[24..32].copy_from_slice(&created_ns.to_le_bytes());
    h[32..40].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h[..40]);
    crc.update(payload);
    h[40..44].copy_from_slice(&crc.finalize().to_le_bytes());
    h
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The header's fields: (signal, lane, items, payload length).
fn parse_header(h: &[u8]) -> Result<(Signal, Lane, u64, u64), String> {
    if h.len() < HEADER_LEN {
        return Err(format!("short header ({} bytes)", h.len()));
    }
    if &h[..8] != MAGIC {
        return Err("bad magic".into());
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version != VERSION {
        return Err(format!("unknown format version {version}"));
    }
    let signal = signal_from_code(h[10]).ok_or_else(|| format!("unknown signal {}", h[10]))?;
    let lane = Lane::from_code(h[11]).ok_or_else(|| format!("unknown lane {}", h[11]))?;
    Ok((signal, lane, u64_at(h, 16), u64_at(h, 32)))
}

fn segment_name(seq: u64, lane: Lane) -> String {
    format!("{seq:020}-{}.seg", lane.as_str())
}

fn parse_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".seg")?;
    let (seq, lane) = stem.split_once('-')?;
    if lane != "critical" && lane != "bulk" {
        return None;
    }
    seq.parse().ok()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Spool {
    /// Open (creating) the spool in `dir`, bounded to `max_bytes`. Leftover
    /// temporary files are deleted; segments whose header does not verify
    /// are deleted and returned, for reporting (the caller counts them via
    /// [`Spool::report_corrupt`]).
    pub fn open(dir: &Path, max_bytes: u64, stats: std::sync::Arc<crate::stats::Stats>) -> std::io::Result<(Self, Vec<Corrupt>)> {
        std::fs::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segments: BTreeMap::new(),
            bytes: 0,
            next_seq: 1,
            stats: stats.clone(),
            _lock: lock,
        };
        let mut corrupt = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') && name.ends_with(".tmp") {
                tracing::warn!(file = %path.display(), "deleting an incomplete spool segment (interrupted write)");
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(seq) = parse_name(&name) else { continue };
            spool.next_seq = spool.next_seq.max(seq + 1);
            match Self::read_meta(&path) {
                Ok(meta) => {
                    spool.bytes += meta.bytes;
                    spool.segments.insert(seq, meta);
                }
                Err(c) => {
                    let _ = std::fs::remove_file(&path);
                    corrupt.push(c);
                }
            }
        }
        spool.publish();
        Ok((spool, corrupt))
    }

    fn read_meta(path: &Path) -> Result<Meta, Corrupt> {
        let bad = |reason: String, items| Corrupt { file: path.to_path_buf(), reason, items };
        let mut f = std::fs::File::open(path).map_err(|e| bad(e.to_string(), None))?;
        let mut h = [0u8; HEADER_LEN];
        let n = f.read(&mut h).map_err(|e| bad(e.to_string(), None))?;
        let (signal, lane, items, len) = parse_header(&h[..n]).map_err(|r| bad(r, None))?;
        let size = f.metadata().map_err(|e| bad(e.to_string(), Some((signal, items))))?.len();
        if size != HEADER_LEN as u64 + len {
            return Err(bad(format!("size {size} does not match the header ({} + {len})", HEADER_LEN), Some((signal, items))));
        }
        Ok(Meta { lane, signal, items, bytes: size })
    }

    /// Count corrupt segments as lost (`spool_corrupt`) and log each.
    pub fn report_corrupt(&self, corrupt: &[Corrupt]) {
        let s = &self.stats.spool;
        for c in corrupt {
            s.corrupt_segments.fetch_add(1, Ordering::Relaxed);
            if let Some((signal, items)) = c.items {
                s.by_signal(signal, &s.corrupt, &s.spans_corrupt, items);
            }
            tracing::error!(file = %c.file.display(), reason = %c.reason, items = ?c.items.map(|i| i.1), "corrupt spool segment deleted: its records are lost");
        }
    }

    fn publish(&self) {
        let s = &self.stats.spool;
        s.bytes.store(self.bytes, Ordering::Relaxed);
        s.segments.store(self.segments.len() as u64, Ordering::Relaxed);
        s.items.store(self.segments.values().map(|m| m.items).sum(), Ordering::Relaxed);
    }

    /// Whether nothing is spooled.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Segments spooled.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Bytes spooled (headers included).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, seq: u64, lane: Lane) -> PathBuf {
        self.dir.join(segment_name(seq, lane))
    }

    /// Delete a segment, counting its items as lost to a full spool.
    fn evict(&mut self, seq: u64) {
        if let Some(meta) = self.segments.remove(&seq) {
            self.bytes -= meta.bytes;
            let _ = std::fs::remove_file(self.path(seq, meta.lane));
            let s = &self.stats.spool;
            s.by_signal(meta.signal, &s.full, &s.spans_full, meta.items);
            tracing::warn!(
                items = meta.items,
                lane = meta.lane.as_str(),
                signal = meta.signal.as_str(),
                "spool full: oldest segment evicted, its records are lost"
            );
        }
    }

    /// Spool `batch` (of `lane`), evicting the oldest bulk, then the oldest
    /// critical segments to make room. Returns false when the batch was not
    /// kept: it is larger than the whole spool (counted `spool_full`). An
    /// I/O error leaves the spool as it was (the caller counts the batch).
    pub fn push(&mut self, batch: &Batch, lane: Lane) -> std::io::Result<bool> {
        let size = (HEADER_LEN + batch.bytes.len()) as u64;
        if size > self.max_bytes {
            let s = &self.stats.spool;
            s.by_signal(batch.signal, &s.full, &s.spans_full, batch.records);
            tracing::warn!(
                items = batch.records,
                bytes = size,
                max_bytes = self.max_bytes,
                "request larger than the whole spool: its records are lost"
            );
            return Ok(false);
        }
        while self.bytes + size > self.max_bytes {
            let victim =
                self.segments.iter().find(|(_, m)| m.lane == Lane::Bulk).or_else(|| self.segments.iter().next()).map(|(seq, _)| *seq);
            match victim {
                Some(seq) => self.evict(seq),
                None => break,
            }
        }
        let seq = self.next_seq;
        let tmp = self.dir.join(format!(".{seq:020}.tmp"));
        let h = header(batch.signal, lane, batch.records, crate::clock::unix_now_ns(), &batch.bytes);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&h)?;
            f.write_all(&batch.bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.path(seq, lane))?;
            sync_dir(&self.dir)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.next_seq += 1;
        self.segments.insert(seq, Meta { lane, signal: batch.signal, items: batch.records, bytes: size });
        self.bytes += size;
        let s = &self.stats.spool;
        s.by_signal(batch.signal, &s.spooled, &s.spans_spooled, batch.records);
        self.publish();
        Ok(true)
    }

    fn read_segment(&self, seq: u64, meta: Meta) -> Result<Batch, String> {
        let bytes = std::fs::read(self.path(seq, meta.lane)).map_err(|e| e.to_string())?;
        let (signal, lane, items, len) = parse_header(&bytes)?;
        if bytes.len() as u64 != HEADER_LEN as u64 + len {
            return Err(format!("size {} does not match the header", bytes.len()));
        }
        let payload = &bytes[HEADER_LEN..];
        let expect = header(signal, lane, items, u64_at(&bytes, 24), payload);
        if expect[40..44] != bytes[40..44] {
            return Err("checksum mismatch".into());
        }
        Ok(Batch { bytes: bytes::Bytes::copy_from_slice(payload), records: items, signal, lane })
    }

    /// The oldest segment: its id and its request, or the corruption found
    /// (the segment is then already deleted and counted).
    pub fn oldest(&mut self) -> Option<(u64, Result<Batch, Corrupt>)> {
        let (seqs, read) = self.oldest_run(0)?;
        Some((seqs[0], read))
    }

    /// The oldest segment and the next ones of the same signal (segments of
    /// the other signal in between are left for later: order matters within
    /// a signal), as one request of at most `max_bytes` (at least the oldest
    /// segment): OTLP
    /// export requests are a repeated field, so their concatenation is the
    /// request holding all of them. Returns the segment ids and the request,
    /// or the oldest segment's corruption (it is then already deleted and
    /// counted). A corrupt segment after the oldest ends the run; it is
    /// reported when it becomes the oldest.
    pub fn oldest_run(&mut self, max_bytes: usize) -> Option<(Vec<u64>, Result<Batch, Corrupt>)> {
        let (&seq, &meta) = self.segments.iter().next()?;
        let first = match self.read_segment(seq, meta) {
            Ok(b) => b,
            Err(reason) => {
                let c = Corrupt { file: self.path(seq, meta.lane), reason, items: Some((meta.signal, meta.items)) };
                self.remove(seq);
                self.report_corrupt(std::slice::from_ref(&c));
                return Some((vec![seq], Err(c)));
            }
        };
        let mut seqs = vec![seq];
        let mut records = first.records;
        let mut bytes = first.bytes.len();
        let mut parts = vec![first.bytes];
        let next: Vec<(u64, Meta)> = self.segments.iter().skip(1).map(|(s, m)| (*s, *m)).collect();
        for (s, m) in next {
            let payload = m.bytes.saturating_sub(HEADER_LEN as u64) as usize;
            if m.signal != meta.signal || m.lane != meta.lane {
                continue; // order matters within a signal only; a request keeps to one lane
            }
            if bytes + payload > max_bytes {
                break;
            }
            let Ok(b) = self.read_segment(s, m) else { break };
            seqs.push(s);
            records += b.records;
            bytes += b.bytes.len();
            parts.push(b.bytes);
        }
        let bytes = if parts.len() == 1 { parts.remove(0) } else { parts.concat().into() };
        Some((seqs, Ok(Batch { bytes, records, signal: meta.signal, lane: meta.lane })))
    }

    /// Delete a segment (delivered, or given up for good).
    pub fn remove(&mut self, seq: u64) {
        if let Some(meta) = self.segments.remove(&seq) {
            self.bytes -= meta.bytes;
            if let Err(e) = std::fs::remove_file(self.path(seq, meta.lane)) {
                tracing::warn!("deleting spool segment {}: {e}", self.path(seq, meta.lane).display());
            }
            self.publish();
        }
    }

    /// Count a segment's items as replayed and delete it.
    pub fn delivered(&mut self, seq: u64) {
        if let Some(meta) = self.segments.get(&seq).copied() {
            let s = &self.stats.spool;
            s.by_signal(meta.signal, &s.replayed, &s.spans_replayed, meta.items);
            self.remove(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn dir(name: &str) -> Dir {
        static N: AtomicU64 = AtomicU64::new(0);
        let d = std::env::temp_dir().join(format!("vigil-spool-{name}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&d);
        Dir(d)
    }

    fn batch(fill: u8, len: usize, records: u64) -> Batch {
        Batch { bytes: vec![fill; len].into(), records, signal: Signal::Logs, lane: Lane::Critical }
    }

    fn load(s: &AtomicU64) -> u64 {
        s.load(Ordering::Relaxed)
    }

    #[test]
    fn a_second_spool_on_one_directory_is_refused_until_the_first_is_gone() {
        let d = dir("lock");
        let stats = Arc::new(crate::stats::Stats::default());
        let (first, _) = Spool::open(&d.0, 1 << 20, stats.clone()).expect("open");
        let Err(err) = Spool::open(&d.0, 1 << 20, stats.clone()) else { panic!("a second open must fail") };
        let msg = err.to_string();
        assert!(msg.contains("in use by another vigil") && msg.contains(&format!("pid {}", std::process::id())), "{msg}");
        drop(first);
        Spool::open(&d.0, 1 << 20, stats).expect("free again once the first is dropped");
    }

    #[test]
    fn survives_reopen_and_replays_oldest_first() {
        let d = dir("order");
        let stats = Arc::new(crate::stats::Stats::default());
        let (mut sp, corrupt) = Spool::open(&d.0, 1 << 20, stats.clone()).expect("open");
        assert!(corrupt.is_empty() && sp.is_empty());
        for i in 0..3u8 {
            assert!(sp.push(&batch(i, 100 + usize::from(i), u64::from(i) + 1), Lane::Critical).expect("push"));
        }
        let spans = Batch { bytes: vec![9; 10].into(), records: 4, signal: Signal::Traces, lane: Lane::Critical };
        assert!(sp.push(&spans, Lane::Critical).expect("push"));
        assert_eq!((load(&stats.spool.spooled), load(&stats.spool.spans_spooled)), (6, 4));
        // A crash mid-write leaves a temporary file: deleted at the next open.
        std::fs::write(d.0.join(".00000000000000000099.tmp"), b"partial").expect("write");
        drop(sp);
        let (mut sp, corrupt) = Spool::open(&d.0, 1 << 20, stats.clone()).expect("reopen");
        assert!(corrupt.is_empty());
        assert!(!d.0.join(".00000000000000000099.tmp").exists());
        assert_eq!(sp.len(), 4);
        assert_eq!(sp.bytes(), (4 * HEADER_LEN + 100 + 101 + 102 + 10) as u64);
        assert_eq!(load(&stats.spool.items), 10);
        for i in 0..3u8 {
            let (seq, b) = sp.oldest().expect("a segment");
            assert_eq!(b.expect("intact"), batch(i, 100 + usize::from(i), u64::from(i) + 1), "oldest first, bytes unchanged");
            sp.delivered(seq);
        }
        let (seq, b) = sp.oldest().expect("the spans");
        assert_eq!(b.expect("intact"), spans);
        sp.delivered(seq);
        assert!(sp.is_empty() && sp.oldest().is_none());
        assert_eq!((load(&stats.spool.replayed), load(&stats.spool.spans_replayed)), (6, 4));
        assert_eq!((load(&stats.spool.bytes), load(&stats.spool.segments)), (0, 0));
        // New segments continue the numbering after a reopen.
        assert!(sp.push(&batch(7, 1, 1), Lane::Critical).expect("push"));
        let mut names: Vec<String> =
            std::fs::read_dir(&d.0).expect("ls").map(|e| e.expect("e").file_name().to_string_lossy().into()).collect();
        names.sort();
        assert_eq!(names, [".lock", "00000000000000000005-critical.seg"]);
    }

    #[test]
    fn runs_of_segments_replay_as_one_request() {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        use prost::Message;
        let d = dir("runs");
        let stats = Arc::new(crate::stats::Stats::default());
        let (mut sp, _) = Spool::open(&d.0, 1 << 20, stats.clone()).expect("open");
        let req = |n: usize| ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: (0..n).map(|i| LogRecord { time_unix_nano: i as u64 + 1, ..LogRecord::default() }).collect(),
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        let logs = |n: usize| Batch { bytes: req(n).encode_to_vec().into(), records: n as u64, signal: Signal::Logs, lane: Lane::Critical };
        for n in [1, 2, 3] {
            sp.push(&logs(n), Lane::Critical).expect("push");
        }
        sp.push(&Batch { bytes: vec![0; 4].into(), records: 1, signal: Signal::Traces, lane: Lane::Critical }, Lane::Critical)
            .expect("push");
        sp.push(&logs(4), Lane::Critical).expect("push");
        let (seqs, b) = sp.oldest_run(1 << 20).expect("a run");
        let b = b.expect("intact");
        assert_eq!((seqs, b.records, b.signal), (vec![1, 2, 3, 5], 10, Signal::Logs), "the logs segments, past the traces one");
        let merged = ExportLogsServiceRequest::decode(b.bytes.as_ref()).expect("one valid request");
        let records: Vec<u64> =
            merged.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records).map(|r| r.time_unix_nano).collect();
        assert_eq!(records, [1, 1, 2, 1, 2, 3, 1, 2, 3, 4], "every record, oldest segment first");
        // A byte limit: the oldest alone when the next does not fit.
        let (seqs, _) = sp.oldest_run(1).expect("a run");
        assert_eq!(seqs, [1]);
        for seq in [1, 2, 3, 5] {
            sp.delivered(seq);
        }
        let (seqs, b) = sp.oldest_run(1 << 20).expect("the traces segment");
        assert_eq!((seqs, b.expect("intact").signal), (vec![4], Signal::Traces));
    }

    #[test]
    fn corrupt_segments_are_reported_and_skipped() {
        let d = dir("corrupt");
        let stats = Arc::new(crate::stats::Stats::default());
        let (mut sp, _) = Spool::open(&d.0, 1 << 20, stats.clone()).expect("open");
        for i in 0..4u8 {
            sp.push(&batch(i, 64, 10), Lane::Critical).expect("push");
        }
        drop(sp);
        let path = |seq: u64| d.0.join(segment_name(seq, Lane::Critical));
        // 1: a flipped payload bit (found at replay); 2: a bad header (found at open).
        let mut b = std::fs::read(path(1)).expect("read");
        b[HEADER_LEN + 5] ^= 1;
        std::fs::write(path(1), b).expect("write");
        std::fs::write(path(2), b"garbage").expect("write");
        let (mut sp, corrupt) = Spool::open(&d.0, 1 << 20, stats.clone()).expect("open");
        assert_eq!(corrupt.len(), 1);
        assert_eq!(corrupt[0].items, None, "unreadable header: count unknown");
        sp.report_corrupt(&corrupt);
        assert_eq!(load(&stats.spool.corrupt_segments), 1);
        let (_, first) = sp.oldest().expect("segment 1");
        let c = first.expect_err("checksum");
        assert_eq!((c.reason.as_str(), c.items), ("checksum mismatch", Some((Signal::Logs, 10))));
        assert!(!path(1).exists(), "deleted");
        assert_eq!((load(&stats.spool.corrupt), load(&stats.spool.corrupt_segments)), (10, 2));
        let (seq, third) = sp.oldest().expect("segment 3");
        assert_eq!(third.expect("intact"), batch(2, 64, 10));
        sp.delivered(seq);
        let (seq, fourth) = sp.oldest().expect("segment 4");
        assert_eq!(fourth.expect("intact"), batch(3, 64, 10));
        sp.delivered(seq);
        assert!(sp.is_empty());
    }

    #[test]
    fn full_spool_evicts_oldest_bulk_then_oldest_critical_and_counts_exactly() {
        let d = dir("full");
        let stats = Arc::new(crate::stats::Stats::default());
        let seg = (HEADER_LEN + 100) as u64;
        let (mut sp, _) = Spool::open(&d.0, 4 * seg, stats.clone()).expect("open");
        sp.push(&batch(0, 100, 1), Lane::Critical).expect("push");
        sp.push(&batch(1, 100, 2), Lane::Bulk).expect("push");
        sp.push(&batch(2, 100, 4), Lane::Critical).expect("push");
        sp.push(&batch(3, 100, 8), Lane::Bulk).expect("push");
        assert_eq!(load(&stats.spool.full), 0);
        sp.push(&batch(4, 100, 16), Lane::Critical).expect("push");
        assert_eq!(load(&stats.spool.full), 2, "the oldest bulk segment went first");
        sp.push(&batch(5, 100, 32), Lane::Critical).expect("push");
        assert_eq!(load(&stats.spool.full), 2 + 8, "then the next bulk one");
        sp.push(&batch(6, 100, 64), Lane::Critical).expect("push");
        assert_eq!(load(&stats.spool.full), 2 + 8 + 1, "then the oldest critical one");
        assert_eq!(sp.len(), 4);
        assert!(sp.bytes() <= 4 * seg);
        let mut left = Vec::new();
        while let Some((seq, b)) = sp.oldest() {
            left.push(b.expect("intact").records);
            sp.delivered(seq);
        }
        assert_eq!(left, [4, 16, 32, 64]);
        // Larger than the whole spool: refused, counted.
        assert!(!sp.push(&batch(9, 4 * 100 + 200, 5), Lane::Critical).expect("no I/O error"));
        assert_eq!(load(&stats.spool.full), 2 + 8 + 1 + 5);
        assert_eq!(load(&stats.spool.spooled), 1 + 2 + 4 + 8 + 16 + 32 + 64);
    }
}
