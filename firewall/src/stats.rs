//! Counters of a filter: what it forwarded and, above all, what it dropped, by reason.

use std::collections::BTreeMap;

/// The reasons a filter drops an input: the keys of [`FilterStats::drops`]. Each drop is
/// counted under exactly one of them and logged at debug level with the filter's row and
/// column.
pub mod reason {
    /// From above, anything but an ORDER.
    pub const UNEXPECTED_FROM_ABOVE: &str = "unexpected from above";
    /// From below, anything this row does not take (a signed reply, a request, agreement
    /// or execution traffic, shares at an upper row, certified replies at the bottom row).
    pub const UNEXPECTED_FROM_BELOW: &str = "unexpected from below";
    /// A link index outside the neighbouring layer.
    pub const UNKNOWN_PEER: &str = "unknown peer";
    /// Out of the wire bounds (sizes, counts).
    pub const MALFORMED: &str = "malformed";
    /// An order at or below the collected sequence.
    pub const OLD: &str = "old";
    /// An order beyond `collected + max_ahead`.
    pub const BEYOND_WINDOW: &str = "beyond window";
    /// An order that would take the log over `max_log_bytes`.
    pub const LOG_FULL: &str = "log full";
    /// An order whose ORDER certificate does not verify.
    pub const BAD_CERTIFICATE: &str = "bad certificate";
    /// An order for a logged sequence within `retransmit_interval` of the last re-send.
    pub const DUPLICATE_ORDER: &str = "duplicate order";
    /// A `FetchOrders` within `retransmit_interval` of the last answer to that asker.
    pub const FETCH_RATE_LIMITED: &str = "fetch rate limited";
    /// A `ResendReply` from a peer above that had `MAX_RESENDS_PER_INTERVAL` answered
    /// within `retransmit_interval`.
    pub const RESEND_RATE_LIMITED: &str = "resend rate limited";
    /// A `ResendReply` for a request whose certified reply this filter does not hold.
    pub const NOT_CACHED: &str = "reply not cached";
    /// A share or body whose `replica` field is not the link it came on.
    pub const IMPOSTOR: &str = "impostor";
    /// A share, body or reply for a sequence that is not outstanding (never forwarded
    /// down, or collected).
    pub const NOT_OUTSTANDING: &str = "not outstanding";
    /// A reply share with more leaves than its batch has requests.
    pub const TOO_MANY_LEAVES: &str = "too many leaves";
    /// The same share again from the same replica.
    pub const DUPLICATE_SHARE: &str = "duplicate share";
    /// A second, different share from one replica for one sequence.
    pub const EQUIVOCATING_SHARE: &str = "equivocating share";
    /// A share from a replica whose share for this sequence was found bad.
    pub const EXCLUDED_REPLICA: &str = "excluded replica";
    /// A reply share after the sequence's root was certified.
    pub const LATE_SHARE: &str = "late share";
    /// A share that failed its individual check (after a combination failed); the
    /// replica is recorded in [`super::FilterStats::bad_shares`].
    pub const BAD_SHARE: &str = "bad share";
    /// A body or certified reply for a (client, request id) not in the batch.
    pub const NEVER_REQUESTED: &str = "reply for a request never made";
    /// A reply for a request whose certified reply was already forwarded up.
    pub const DUPLICATE_REPLY: &str = "duplicate reply";
    /// A body whose leaf hash is not among the certified leaves.
    pub const UNCERTIFIED_BODY: &str = "uncertified body";
    /// A body whose leaf hash is already pending.
    pub const DUPLICATE_BODY: &str = "duplicate body";
    /// A body over its replica's `max_pending_bytes_per_replica`.
    pub const PENDING_FULL: &str = "pending full";
    /// A pending body whose leaf was not certified when its root was.
    pub const PENDING_UNCERTIFIED: &str = "pending body not certified";
    /// A stable share or certificate at or below the last stable sequence, or a stable
    /// share beyond anything forwarded.
    pub const STALE_STABLE: &str = "stale stable";
    /// A certified reply whose Merkle path does not lead to a root.
    pub const BAD_MERKLE_PATH: &str = "bad merkle path";
    /// A certified reply whose threshold signature does not verify.
    pub const BAD_REPLY_SIGNATURE: &str = "bad reply signature";
    /// A stable certificate whose threshold signature does not verify.
    pub const BAD_STABLE: &str = "bad stable certificate";
}

/// What a filter did and dropped. Every drop is counted in [`FilterStats::drops`] under
/// one [`reason`] and logged (`tracing`, debug level).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterStats {
    /// Orders forwarded down for the first time.
    pub orders_forwarded: u64,
    /// Logged orders forwarded down again (a re-delivered order).
    pub orders_reforwarded: u64,
    /// Logged orders forwarded down again because their replies were overdue.
    pub orders_overdue: u64,
    /// Logged orders sent to one peer below in answer to `FetchOrders`.
    pub orders_served: u64,
    /// `FetchOrders` from below answered.
    pub fetches_answered: u64,
    /// `FetchOrders` this filter sent up.
    pub fetches_sent: u64,
    /// Certified replies forwarded up (once per request).
    pub replies_forwarded: u64,
    /// Cached certified replies re-sent up (a re-delivered order).
    pub replies_resent: u64,
    /// Cached certified replies re-sent to a peer above that asked for one
    /// (`ResendReply`: a client retransmitted after its batch was collected).
    pub replies_resent_on_request: u64,
    /// Bottom row: reply roots certified by g+1 shares.
    pub roots_certified: u64,
    /// Bottom row: stable certificates combined from g+1 shares.
    pub stables_combined: u64,
    /// Upper rows: reply claims (a batch's root and signature) settled with a pairing.
    pub claims_checked: u64,
    /// Upper rows: reply claims settled because every filter of the row below sent them
    /// (no pairing).
    pub claims_vouched: u64,
    /// Stable certificates forwarded up.
    pub stables_forwarded: u64,
    /// Stable certificates sent up again because something below re-sent the latest
    /// one while nothing was ordered past it (a cluster restarted as a whole).
    pub stables_resent: u64,
    /// Bottom row: combinations of g+1 shares that did not verify (each makes the
    /// filter check the shares one by one).
    pub combinations_failed: u64,
    /// Garbage collections (one per new stable sequence).
    pub collections: u64,
    /// Dropped inputs by [`reason`].
    pub drops: BTreeMap<&'static str, u64>,
    /// Bottom row: per execution replica, shares that failed their individual check.
    pub bad_shares: BTreeMap<u32, u64>,
    /// Bottom row: per execution replica, second and different shares for one sequence.
    pub equivocations: BTreeMap<u32, u64>,
}

impl FilterStats {
    /// Inputs dropped for `reason`.
    pub fn dropped(&self, reason: &str) -> u64 {
        self.drops.get(reason).copied().unwrap_or(0)
    }

    /// Inputs dropped for any reason.
    pub fn total_dropped(&self) -> u64 {
        self.drops.values().sum()
    }

    pub(crate) fn drop(&mut self, reason: &'static str) {
        *self.drops.entry(reason).or_insert(0) += 1;
    }
}
