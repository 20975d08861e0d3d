//! The batch clock of the unreplicated gateway: wall-clock time, made monotonic.
//!
//! Every time a batch writes (mtime, ctime, "set to server time") is the batch's
//! timestamp (see `BatchContext`). NFS clients detect changes by comparing mtime/ctime
//! (RFC 1813 §3.3.1 notes on cache validation), so a batch must never be stamped earlier
//! than the previous one, even if the wall clock steps back (NTP); and two batches in the
//! same nanosecond get distinct stamps, so every change is visible as a new ctime.

use std::time::{SystemTime, UNIX_EPOCH};

use palisade_wire::fs::Timestamp;

/// Hands out strictly increasing batch timestamps that follow the wall clock.
#[derive(Debug, Default)]
pub struct BatchClock {
    last: Option<Timestamp>,
}

impl BatchClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// The timestamp of the next batch, read from the system clock.
    pub fn next_stamp(&mut self) -> Timestamp {
        self.next_after(wall_clock())
    }

    /// The timestamp of the next batch given the wall clock reads `now`: `now`, or one
    /// nanosecond after the previous stamp if the clock has not moved past it.
    pub fn next_after(&mut self, now: Timestamp) -> Timestamp {
        let stamp = match self.last {
            Some(last) if now <= last => successor(last),
            _ => now,
        };
        self.last = Some(stamp);
        stamp
    }
}

/// The current wall-clock time as an NFS time. Before 1970 reads as 0; after 2106 (the
/// end of `nfstime3`'s unsigned 32-bit seconds) it saturates.
fn wall_clock() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: u32::try_from(since.as_secs()).unwrap_or(u32::MAX),
        nanos: since.subsec_nanos(),
    }
}

/// One nanosecond later (saturating at the end of representable time).
fn successor(t: Timestamp) -> Timestamp {
    if t.nanos < 999_999_999 {
        Timestamp {
            seconds: t.seconds,
            nanos: t.nanos + 1,
        }
    } else if t.seconds < u32::MAX {
        Timestamp {
            seconds: t.seconds + 1,
            nanos: 0,
        }
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: u32, nanos: u32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    #[test]
    fn follows_the_wall_clock_forward() {
        let mut clock = BatchClock::new();
        assert_eq!(clock.next_after(ts(10, 5)), ts(10, 5));
        assert_eq!(clock.next_after(ts(12, 0)), ts(12, 0));
    }

    #[test]
    fn never_goes_back_and_never_repeats() {
        let mut clock = BatchClock::new();
        assert_eq!(clock.next_after(ts(10, 999_999_998)), ts(10, 999_999_998));
        assert_eq!(clock.next_after(ts(10, 999_999_998)), ts(10, 999_999_999));
        // The wall clock stepped back by seconds: still strictly later.
        assert_eq!(clock.next_after(ts(3, 0)), ts(11, 0));
        assert_eq!(clock.next_after(ts(11, 0)), ts(11, 1));
    }

    #[test]
    fn real_clock_is_monotonic() {
        let mut clock = BatchClock::new();
        let mut prev = clock.next_stamp();
        for _ in 0..1000 {
            let t = clock.next_stamp();
            assert!(t > prev);
            prev = t;
        }
        assert!(
            prev.seconds > 1_600_000_000,
            "wall clock looks wrong: {prev:?}"
        );
    }
}
