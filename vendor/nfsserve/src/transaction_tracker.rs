use std::collections::{hash_map, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

// PALISADE PATCH (see PATCHES.md §5): stock 0.11 scanned the whole table on every call
// to expire old entries (quadratic in the call rate: at 10,000 calls/s it walked
// ~600,000 entries per call), and bounded it only by time. Completed transactions now
// expire in completion order from a queue (amortised O(1) per call), and at most
// `MAX_COMPLETED` are remembered.

/// Most completed transactions remembered; beyond it the oldest are forgotten early (a
/// retransmission of one of them is then executed again, as after the retention period).
const MAX_COMPLETED: usize = 1 << 18;

/// `TransactionTracker` tracks the state of transactions to detect retransmissions.
pub struct TransactionTracker {
    retention_period: Duration,
    transactions: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    states: HashMap<(u32, String), TransactionState>,
    /// Completed transactions, oldest first.
    completed: VecDeque<(SystemTime, (u32, String))>,
}

impl TransactionTracker {
    pub fn new(retention_period: Duration) -> Self {
        Self {
            retention_period,
            transactions: Mutex::new(Table::default()),
        }
    }

    /// Checks if the transaction is a retransmission.
    /// If it's a new transaction, it is marked as `InProgress`.
    ///
    /// Returns `true` if the transaction is a retransmission, `false` otherwise.
    pub fn is_retransmission(&self, xid: u32, client_addr: &str) -> bool {
        let key = (xid, client_addr.to_string());
        let mut table = self.transactions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        table.expire(SystemTime::now(), self.retention_period);
        if let hash_map::Entry::Vacant(e) = table.states.entry(key) {
            e.insert(TransactionState::InProgress);
            false
        } else {
            true
        }
    }

    /// Marks the transaction as processed.
    pub fn mark_processed(&self, xid: u32, client_addr: &str) {
        let key = (xid, client_addr.to_string());
        let completion_time = SystemTime::now();
        let mut table = self.transactions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(tx) = table.states.get_mut(&key) {
            if matches!(tx, TransactionState::InProgress) {
                *tx = TransactionState::Completed;
                table.completed.push_back((completion_time, key));
            }
        }
        while table.completed.len() > MAX_COMPLETED {
            table.forget_oldest();
        }
    }

    /// Transactions remembered (in progress or completed).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.transactions.lock().map(|t| t.states.len()).unwrap_or(0)
    }
}

impl Table {
    /// Forgets the transactions completed before `now - max_age`.
    fn expire(&mut self, now: SystemTime, max_age: Duration) {
        let cutoff = now.checked_sub(max_age).unwrap_or(SystemTime::UNIX_EPOCH);
        while self.completed.front().is_some_and(|(t, _)| *t < cutoff) {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((_, key)) = self.completed.pop_front() {
            if matches!(self.states.get(&key), Some(TransactionState::Completed)) {
                self.states.remove(&key);
            }
        }
    }
}

pub enum TransactionState {
    InProgress,
    /// Answered; when is kept in `Table::completed`, which expires it.
    Completed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmissions_are_recognised_until_they_expire() {
        let t = TransactionTracker::new(Duration::from_millis(50));
        assert!(!t.is_retransmission(1, "a"));
        assert!(t.is_retransmission(1, "a"), "in progress");
        assert!(!t.is_retransmission(1, "b"), "another client");
        t.mark_processed(1, "a");
        assert!(t.is_retransmission(1, "a"), "completed, within retention");
        std::thread::sleep(Duration::from_millis(80));
        // The next call expires what completed before the retention period.
        assert!(!t.is_retransmission(2, "a"));
        assert!(!t.is_retransmission(1, "a"), "expired: a new call");
        // Still in progress entries never expire.
        assert!(t.is_retransmission(1, "b"));
    }

    #[test]
    fn completed_transactions_are_bounded() {
        let t = TransactionTracker::new(Duration::from_secs(3600));
        for xid in 0..(MAX_COMPLETED as u32 + 10) {
            assert!(!t.is_retransmission(xid, "a"));
            t.mark_processed(xid, "a");
        }
        assert_eq!(t.len(), MAX_COMPLETED);
        assert!(!t.is_retransmission(0, "a"), "the oldest was forgotten");
        assert!(t.is_retransmission(MAX_COMPLETED as u32 + 9, "a"));
    }
}
