//! The privacy firewall (Yin et al., "Separating agreement from execution for Byzantine
//! fault tolerant services", SOSP 2003, §4): (h+1)² filter nodes in h+1 rows between the
//! agreement cluster and the execution cluster. Row 0 talks to every agreement node, the
//! last row to every execution replica, and each row to every filter of the next. With at
//! most h faulty filters one whole row is correct, and every path out of the execution
//! cluster crosses it; so what that row lets through is all that leaves.
//!
//! This crate is one filter as a pure state machine ([`Filter::step`]: [`FilterInput`] in,
//! [`FilterOutput`]s out; no clock, socket or randomness — the runtime's clock arrives as
//! [`FilterInput::Tick`] and only drives rate limits).
//!
//! **Down** (§4.1): a filter forwards an ORDER (an ordered batch) only with a valid ORDER
//! certificate, only inside its window `(collected, collected + max_ahead]`, once to every
//! peer below, and logs it with its requests as *outstanding*. A re-delivered order (a
//! client retransmitted) makes it re-send its cached certified replies, or else re-forward
//! its own stored copy, at most once per `retransmit_interval`. An order whose replies are
//! overdue (`overdue_after`) goes down again by itself, so a reply lost upward comes again
//! even when no client retransmission reaches the filter before the order is collected.
//! It answers `FetchOrders` from its log and, lacking the orders, asks above for its own
//! first gap.
//!
//! **Up** (§4.2): only three things ever go up — a [`CertifiedReply`](palisade_wire::firewall::CertifiedReply) to an outstanding
//! request, once per request (retransmissions answered from a bounded cache); a verified
//! [`StableCertificate`](palisade_wire::firewall::StableCertificate) newer than the last one; and a `FetchOrders` whose sequence this
//! filter chose. The bottom row builds certified replies: it groups the replicas' reply
//! shares by the Merkle root they sign, combines g+1 of a group and verifies the one
//! combined signature (only if that fails does it verify shares one by one, and records
//! the senders of bad ones in [`FilterStats::bad_shares`]); it forwards a reply body only
//! once its leaf hash is under the certified root, with its audit path (RFC 6962 §2.1.1).
//! Upper rows check the path and the signature's claim once per batch — by a pairing, or,
//! when every filter of the row below sent the same claim, by their say-so (one of them is
//! correct and checked it; `vouch.rs`). Because a
//! BLS threshold signature is unique and bodies are sealed deterministically, nothing that
//! crosses depends on which replicas answered: a compromised replica has no channel out
//! (DESIGN §1, "deterministic replies"). Everything else is dropped, counted by reason
//! ([`stats::reason`]) and logged.
//!
//! **Bounded state**: the log by window and `max_log_bytes`; pending bodies by
//! `max_pending_bytes_per_replica` (a flooding replica fills only its own budget); the
//! reply cache by `reply_cache_bytes`; stable shares by a few sequences per replica; one
//! share per replica per sequence. On each new stable certificate (g+1 execution replicas
//! hold one checkpoint, TOCS §4.3) a filter drops everything at or below the *previous*
//! stable sequence, keeping one checkpoint interval so late replies still pass.
//!
//! Not handled here: timing channels (a replica can delay its share) and traffic analysis
//! (DESIGN §2); rate limits per link belong to the runtime. A reply evicted from the
//! cache before its client's retransmission is not sent again (its request counts as
//! answered): the client's next retransmission after the sequence is collected gets
//! nothing from the firewall.

mod cache;
mod collector;
mod config;
mod filter;
mod io;
mod log;
mod reply_relay;
mod shares;
mod stable;
pub mod stats;
mod vouch;

pub use config::{ConfigError, FilterConfig};
pub use filter::Filter;
pub use io::{FilterInput, FilterOutput};
pub use reply_relay::{RelayDecision, ReplyRelay};
pub use stable::MAX_PENDING_PER_REPLICA as MAX_STABLE_SHARES_PER_REPLICA;
pub use stats::FilterStats;

pub use filter::{MAX_FETCH_BYTES, MAX_FETCH_ORDERS, MAX_RESENDS_PER_INTERVAL};
