//! Palisade's BFT client core: what a gateway runs to get one file-system operation
//! through the agreement and execution clusters (Yin et al., SOSP 2003, §3; Castro–Liskov
//! TOCS §4.1).
//!
//! A [`Client`] is a pure state machine ("sans-IO", DESIGN §3): [`ClientInput`]s in (a
//! submission, a reply from an execution replica or a certified reply from the firewall,
//! a timer), [`ClientOutput`]s out (send a
//! signed request, a completed result, set or cancel its timer). It reads no clock (the
//! runtime passes the time in as data), opens no socket and draws no random numbers, so
//! the runtime and the deterministic simulator drive the very same code.
//!
//! What it does:
//! - keeps a window of requests in flight (request ids b, b+1, b+2, ... from
//!   `ClientConfig::first_request_id` = b, so a restarted client never reuses an id); a
//!   submission beyond
//!   the window is answered `Busy`;
//! - signs every request with the client's ed25519 key and sends it to EVERY agreement
//!   replica: PBFT clients multicast so that a faulty primary cannot hide a request from
//!   the backups, who then suspect it (TOCS §4.1, §4.4);
//! - retransmits outstanding requests when their retransmission time passes, with a
//!   bounded exponential back-off ([`retransmit`]);
//! - accepts a result, depending on [`Acceptance`]:
//!   - `Matching` (the `separate` configuration): once g+1 distinct execution replicas
//!     sent matching, correctly signed replies ([`Reply::matches`]): at most g are
//!     faulty, so one of them is correct ([`votes`]). Each replica signs once per batch
//!     (a Merkle root over its replies, `BatchReply`); the roots checked are remembered
//!     ([`signed_roots`]), so a batch costs one signature check per replica;
//!   - `Certified` (the firewall configuration, SOSP 2003 §4): on one reply whose Merkle
//!     path (RFC 6962 §2.1.1) leads to a batch root signed by the execution cluster's
//!     combined threshold signature — g+1 replicas' shares, checked against one public
//!     key; verified roots are cached ([`palisade_crypto::VerifiedRoots`]), so a batch
//!     costs one signature check — or none, when f+1 agreement nodes vouch that every
//!     top filter sent them the same claim (the reply waits a few milliseconds for the
//!     vouches, [`vouches`]);
//! - with `Matching` acceptance, sends an operation that only reads straight to every
//!   execution replica and takes the result when all 2g+1 answer alike, ordering it
//!   otherwise ([`read_only`], TOCS §5.1.3);
//! - counts and drops replies for unknown or finished requests, badly signed or badly
//!   certified ones, replies of the kind the configured acceptance does not use, and
//!   marks a replica that sends two different replies for one request as faulty: its
//!   replies never count towards that result.
//!
//! [`Reply::matches`]: palisade_wire::execution::Reply::matches

pub mod client;
pub mod config;
pub mod io;
pub mod read_only;
pub mod retransmit;
pub mod signed_roots;
pub mod stats;
pub mod votes;
pub mod vouches;

pub use client::Client;
pub use config::{Acceptance, ClientConfig, REPLAY_WINDOW};
pub use io::{ClientInput, ClientOutput, ClientTimer};
pub use stats::ClientStats;
