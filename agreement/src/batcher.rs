//! When the primary cuts a batch (TOCS §5.1 "batching"): as soon as it is full by
//! count or bytes, or when the batch-delay timer fires with anything queued.

use std::time::Duration;

/// The primary's batching decision and the state of its batch timer.
#[derive(Debug)]
pub struct Batcher {
    max_requests: usize,
    max_bytes: usize,
    delay: Duration,
    timer_armed: bool,
}

/// What the primary should do now.
#[derive(Debug, PartialEq, Eq)]
pub enum BatchDecision {
    /// Propose a batch now.
    Cut,
    /// Requests wait; arm the batch timer (it was not armed).
    ArmTimer(Duration),
    /// Nothing to do (no requests, or the timer is already armed).
    Wait,
}

impl Batcher {
    pub fn new(max_requests: usize, max_bytes: usize, delay: Duration) -> Batcher {
        Batcher {
            max_requests,
            max_bytes,
            delay,
            timer_armed: false,
        }
    }

    pub fn max_requests(&self) -> usize {
        self.max_requests
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Decides given `count` requests of `bytes` payload waiting; `timer_fired` is true
    /// when called for the batch timer.
    pub fn decide(&mut self, count: usize, bytes: usize, timer_fired: bool) -> BatchDecision {
        if timer_fired {
            self.timer_armed = false;
        }
        if count == 0 {
            return BatchDecision::Wait;
        }
        if count >= self.max_requests
            || bytes >= self.max_bytes
            || timer_fired
            || self.delay.is_zero()
        {
            return BatchDecision::Cut;
        }
        if self.timer_armed {
            return BatchDecision::Wait;
        }
        self.timer_armed = true;
        BatchDecision::ArmTimer(self.delay)
    }

    /// The timer was cancelled (view change): forget it was armed.
    pub fn disarm(&mut self) -> bool {
        std::mem::replace(&mut self.timer_armed, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_when_full_or_on_timer() {
        let mut b = Batcher::new(3, 100, Duration::from_millis(5));
        assert_eq!(b.decide(0, 0, false), BatchDecision::Wait);
        assert_eq!(
            b.decide(1, 10, false),
            BatchDecision::ArmTimer(Duration::from_millis(5))
        );
        assert_eq!(b.decide(2, 20, false), BatchDecision::Wait);
        assert_eq!(b.decide(3, 30, false), BatchDecision::Cut);
        assert_eq!(b.decide(1, 100, false), BatchDecision::Cut);
        assert_eq!(b.decide(1, 1, true), BatchDecision::Cut);
        assert_eq!(b.decide(0, 0, true), BatchDecision::Wait);
        let mut eager = Batcher::new(3, 100, Duration::ZERO);
        assert_eq!(eager.decide(1, 1, false), BatchDecision::Cut);
    }
}
