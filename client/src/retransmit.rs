//! When an outstanding request is sent again.
//!
//! TOCS §4.1: a client that does not get its replies in time multicasts the request
//! again (here it multicast from the start, so retransmission only repairs loss). The
//! interval doubles on every retransmission, up to `2^MAX_BACKOFF_DOUBLINGS` times the
//! configured one, so a client facing a slow view change does not flood the agreement
//! replicas, yet never waits unboundedly long between attempts.

use std::time::Duration;

/// The retransmission interval doubles at most this many times.
pub const MAX_BACKOFF_DOUBLINGS: u32 = 3;

/// The retransmission schedule of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Retransmissions so far.
    pub attempts: u32,
    /// When (on the runtime's clock) the request is due again.
    pub due: Duration,
}

impl Backoff {
    /// The schedule of a request first sent at `now`.
    pub fn start(now: Duration, base: Duration) -> Backoff {
        Backoff {
            attempts: 0,
            due: now.saturating_add(base),
        }
    }

    pub fn is_due(&self, now: Duration) -> bool {
        self.due <= now
    }

    /// Records a retransmission at `now` and schedules the next one.
    pub fn retransmitted(&mut self, now: Duration, base: Duration) {
        self.attempts = self.attempts.saturating_add(1);
        let doublings = self.attempts.min(MAX_BACKOFF_DOUBLINGS);
        self.due = now.saturating_add(base.saturating_mul(1u32 << doublings));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_doubles_up_to_the_bound() {
        let base = Duration::from_millis(10);
        let mut b = Backoff::start(Duration::from_millis(5), base);
        assert_eq!(b.due, Duration::from_millis(15));
        assert!(!b.is_due(Duration::from_millis(14)));
        assert!(b.is_due(Duration::from_millis(15)));
        let mut now = Duration::from_millis(15);
        let mut gaps = Vec::new();
        for _ in 0..6 {
            b.retransmitted(now, base);
            gaps.push((b.due - now).as_millis());
            now = b.due;
        }
        assert_eq!(gaps, vec![20, 40, 80, 80, 80, 80]);
        assert_eq!(b.attempts, 6);
    }
}
