//! A set of one-shot timers keyed by kind, for the drivers: the cores say "set timer K to
//! fire after d" (replacing an armed K) or "cancel K"; the driver sleeps until the
//! earliest deadline and feeds the expired kinds back in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Armed timers and their deadlines.
#[derive(Debug)]
pub struct Timers<K> {
    armed: BTreeMap<K, Instant>,
}

impl<K: Ord + Copy> Default for Timers<K> {
    fn default() -> Self {
        Self {
            armed: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy> Timers<K> {
    /// Arms `kind` to fire `after` from now, replacing an armed one.
    pub fn set(&mut self, kind: K, after: Duration) {
        self.armed.insert(kind, Instant::now() + after);
    }

    pub fn cancel(&mut self, kind: K) {
        self.armed.remove(&kind);
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.armed.values().min().copied()
    }

    /// Removes and returns the kinds whose deadline is at or before `now`.
    pub fn expired(&mut self, now: Instant) -> Vec<K> {
        let due: Vec<K> = self
            .armed
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in &due {
            self.armed.remove(k);
        }
        due
    }
}

/// Sleeps until `deadline`, or forever if there is none.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_cancel_removes_expired_pops() {
        let mut t = Timers::default();
        t.set(1u8, Duration::from_secs(100));
        t.set(2u8, Duration::ZERO);
        t.set(1u8, Duration::ZERO);
        t.set(3u8, Duration::from_secs(100));
        t.cancel(3);
        let now = Instant::now();
        assert_eq!(t.expired(now), vec![1, 2]);
        assert!(t.expired(now).is_empty());
        assert!(t.next().is_none());
    }
}
