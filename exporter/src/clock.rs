//! Boot clock -> wall clock conversion.
//!
//! The probes stamp records with `bpf_ktime_get_boot_ns()` (CLOCK_BOOTTIME,
//! which keeps counting across suspend). Wall time is boot time plus the
//! current offset `CLOCK_REALTIME - CLOCK_BOOTTIME`, sampled together. The
//! offset moves when the wall clock is stepped or slewed, so the pipeline
//! refreshes it periodically ([`BootClock::refresh`]).

use std::time::{SystemTime, UNIX_EPOCH};

/// Converts boot-clock nanoseconds to Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootClock {
    offset_ns: i128,
}

fn clock_ns(id: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes it.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return 0;
    }
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Current CLOCK_BOOTTIME in nanoseconds (the clock of record timestamps).
pub fn boot_now_ns() -> u64 {
    u64::try_from(clock_ns(libc::CLOCK_BOOTTIME)).unwrap_or(0)
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds: a few milliseconds' resolution,
/// read without the time-stamp counter (cheaper than `Instant::now` per
/// record: ~1.4% of the exec path for the user names' recheck interval).
pub fn coarse_now_ns() -> u64 {
    u64::try_from(clock_ns(libc::CLOCK_MONOTONIC_COARSE)).unwrap_or(0)
}

/// Current wall-clock time in Unix nanoseconds.
pub fn unix_now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)).unwrap_or(0)
}

impl BootClock {
    /// Sample the offset now. The boot clock is read between two wall-clock
    /// reads and the midpoint is used, which bounds the error by the time the
    /// three reads take.
    pub fn sample() -> Self {
        let r1 = clock_ns(libc::CLOCK_REALTIME);
        let b = clock_ns(libc::CLOCK_BOOTTIME);
        let r2 = clock_ns(libc::CLOCK_REALTIME);
        BootClock { offset_ns: (r1 + r2) / 2 - b }
    }

    /// A clock with a fixed offset (tests, golden files).
    pub fn with_offset(offset_ns: i128) -> Self {
        BootClock { offset_ns }
    }

    /// Re-sample the offset.
    pub fn refresh(&mut self) {
        *self = Self::sample();
    }

    /// Unix nanoseconds for a boot-clock timestamp (0 stays 0: unknown).
    pub fn to_unix_ns(&self, boot_ns: u64) -> u64 {
        if boot_ns == 0 {
            return 0;
        }
        u64::try_from(i128::from(boot_ns) + self.offset_ns).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_with_offset() {
        let c = BootClock::with_offset(1_700_000_000_000_000_000);
        assert_eq!(c.to_unix_ns(5), 1_700_000_000_000_000_005);
        assert_eq!(c.to_unix_ns(0), 0);
    }

    #[test]
    fn sampled_offset_matches_wall_clock() {
        let c = BootClock::sample();
        let now = unix_now_ns();
        let converted = c.to_unix_ns(boot_now_ns());
        // Within 50 ms of each other, whatever the machine load.
        assert!(converted.abs_diff(now) < 50_000_000, "{converted} vs {now}");
    }
}
