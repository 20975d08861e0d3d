//! The static configuration of one filter node: where it sits in the (h+1) × (h+1) grid
//! (Yin et al., SOSP 2003, §4), whose signatures it checks, and the bounds of its state.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use palisade_crypto::ThresholdVerifier;

/// One filter's configuration. Peers are named by their index in the neighbouring layer:
/// above, the agreement replica id (top row) or the filter column in row `row - 1`;
/// below, the filter column in row `row + 1` or the execution replica id (bottom row).
#[derive(Clone, Debug)]
pub struct FilterConfig {
    /// This filter's row, `0..rows`; row 0 talks to the agreement cluster.
    pub row: u32,
    /// This filter's column, `0..rows` (only used in logs).
    pub column: u32,
    /// Number of rows, h + 1 (also the number of filters in a row).
    pub rows: u32,
    /// Faulty agreement replicas tolerated: ORDER certificates need 2f+1 commits.
    pub f: usize,
    /// Agreement replicas' public keys, indexed by replica id (checks ORDER certificates).
    pub agreement_keys: Vec<VerifyingKey>,
    /// Faulty execution replicas tolerated: a threshold signature needs g+1 shares.
    pub g: usize,
    /// The execution cluster's threshold public key.
    pub verifier: Arc<dyn ThresholdVerifier>,
    /// Number of peers below: h+1 filters, or the 2g+1 execution replicas (bottom row).
    pub below: u32,
    /// Orders accepted beyond the last collected sequence (e.g. 256).
    pub max_ahead: u64,
    /// Bytes of forwarded orders kept for `FetchOrders` and re-delivery (e.g. 256 MiB).
    pub max_log_bytes: usize,
    /// Bottom row: bytes of reply bodies waiting for their root to be certified, per
    /// execution replica (e.g. 32 MiB).
    pub max_pending_bytes_per_replica: usize,
    /// Bytes of certified replies kept to answer retransmissions (e.g. 64 MiB).
    pub reply_cache_bytes: usize,
    /// At most one re-forward or re-send per sequence, and one `FetchOrders` answer per
    /// asker, per interval.
    pub retransmit_interval: Duration,
    /// An order some of whose replies have not come up this long after it went down is
    /// forwarded down again (then again at most once per this interval, until its
    /// replies come or it is collected): a reply lost on its way up is re-sent from the
    /// row below's cache, or re-made by the execution replicas, without waiting for a
    /// client retransmission that may come after agreement collected the order (e.g.
    /// 1 s; never below `retransmit_interval`).
    pub overdue_after: Duration,
    /// Upper rows: how long a reply's claim that only part of the row below sent waits for
    /// the rest before this filter checks the signature itself (`vouch.rs`; e.g. 4 ms).
    /// Zero checks every claim at once, as a filter must when one filter below is known
    /// to be silent.
    pub vouch_wait: Duration,
}

/// A configuration that cannot describe a filter.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid filter configuration: {0}")]
    Invalid(&'static str),
}

impl FilterConfig {
    /// Whether this filter is in the bottom row (talks to execution replicas).
    pub fn is_bottom(&self) -> bool {
        self.row.saturating_add(1) >= self.rows
    }

    /// Whether this filter is in the top row (talks to agreement replicas).
    pub fn is_top(&self) -> bool {
        self.row == 0
    }

    /// Number of peers above: the agreement replicas, or the filters of the row above.
    pub fn above(&self) -> u32 {
        if self.is_top() {
            u32::try_from(self.agreement_keys.len()).unwrap_or(u32::MAX)
        } else {
            self.rows
        }
    }

    /// Checks the configuration. [`crate::Filter::new`] accepts any configuration (it
    /// never panics); a runtime calls this first to refuse a wrong one with a clear error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.rows == 0 {
            return Err(ConfigError::Invalid("rows must be at least 1"));
        }
        if self.row >= self.rows || self.column >= self.rows {
            return Err(ConfigError::Invalid("row and column must be below rows"));
        }
        if self.agreement_keys.len() < 2 * self.f + 1 {
            return Err(ConfigError::Invalid(
                "fewer agreement keys than an ORDER quorum",
            ));
        }
        if self.verifier.threshold() != self.g {
            return Err(ConfigError::Invalid(
                "the verifier's threshold differs from g",
            ));
        }
        let expected_below = if self.is_bottom() {
            self.verifier.parties()
        } else {
            self.rows as usize
        };
        if self.below as usize != expected_below {
            return Err(ConfigError::Invalid(
                "below must be rows (upper rows) or 2g+1 (bottom row)",
            ));
        }
        if self.max_ahead == 0 {
            return Err(ConfigError::Invalid("max_ahead must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use palisade_crypto::{deal_from_seed, verifier_from_bytes, SchemeKind};

    fn config(row: u32) -> FilterConfig {
        let keys = deal_from_seed(SchemeKind::Blst, 1, 3, [5; 32]).unwrap();
        FilterConfig {
            row,
            column: 1,
            rows: 2,
            f: 1,
            agreement_keys: (0..4u8)
                .map(|i| SigningKey::from_bytes(&[i; 32]).verifying_key())
                .collect(),
            g: 1,
            verifier: verifier_from_bytes(&keys.public).unwrap(),
            below: if row == 1 { 3 } else { 2 },
            max_ahead: 256,
            max_log_bytes: 1 << 20,
            max_pending_bytes_per_replica: 1 << 20,
            reply_cache_bytes: 1 << 20,
            vouch_wait: Duration::from_millis(4),
            overdue_after: Duration::from_secs(1),
            retransmit_interval: Duration::from_millis(100),
        }
    }

    #[test]
    fn the_grid_position_decides_the_neighbours() {
        let top = config(0);
        top.validate().unwrap();
        assert!(top.is_top() && !top.is_bottom());
        assert_eq!(top.above(), 4);
        let bottom = config(1);
        bottom.validate().unwrap();
        assert!(bottom.is_bottom() && !bottom.is_top());
        assert_eq!(bottom.above(), 2);
    }

    #[test]
    fn wrong_configurations_are_refused() {
        let bad = [
            FilterConfig {
                row: 2,
                ..config(1)
            },
            FilterConfig {
                rows: 0,
                ..config(0)
            },
            FilterConfig { g: 2, ..config(0) },
            FilterConfig {
                below: 2,
                ..config(1)
            },
            FilterConfig {
                below: 3,
                ..config(0)
            },
            FilterConfig {
                max_ahead: 0,
                ..config(0)
            },
            FilterConfig { f: 2, ..config(0) },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
