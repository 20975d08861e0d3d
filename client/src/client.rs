//! [`Client`]: the BFT client state machine.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use palisade_crypto::VerifiedRoots;
use palisade_wire::agreement::{Bounded, Digest, Request, Signed, MAX_REQUEST_PAYLOAD};
use palisade_wire::execution::{BatchReply, ExecReplicaId, Reply};
use palisade_wire::firewall::{reply_root_message, CertifiedReply, Vouch};

use crate::config::{Acceptance, ClientConfig};
use crate::io::{ClientInput, ClientOutput, ClientTimer};
use crate::read_only::{ReadPhase, ReadVote, READ_ONLY_PAUSE};
use crate::retransmit::Backoff;
use crate::signed_roots::SignedRoots;
use crate::stats::ClientStats;
use crate::votes::{Vote, Votes};
use crate::vouches::Vouches;

/// Verified (sequence, root, signature) triples remembered (`Certified` acceptance). A
/// client's window of requests in flight spreads over few batches; a handful suffices.
pub const VERIFIED_ROOTS: usize = 32;

/// Verified batch roots remembered (`Matching` acceptance): a few batches for each of
/// the 2g+1 replicas.
pub const SIGNED_ROOTS: usize = 64;

/// Bytes of certified replies that may wait for vouches (`Certified` acceptance).
pub const VOUCHED_BYTES: usize = 64 << 20;

/// A request in flight: what was sent, when it is due again, and the replies so far.
#[derive(Debug)]
struct Outstanding {
    request: Signed<Request>,
    backoff: Backoff,
    votes: Votes,
    /// Some while a read-only request waits for the execution replicas' unordered
    /// answers (it is not retransmitted to agreement meanwhile).
    read: Option<ReadPhase>,
}

/// One BFT client (a gateway's view of the replicated service). See the crate docs.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    key: SigningKey,
    /// The id the next submission gets (from `config.first_request_id`, up by one each).
    next_request_id: u64,
    /// Requests in flight, by id; at most `window` of them.
    outstanding: BTreeMap<u64, Outstanding>,
    /// When the armed retransmission timer fires (runtime clock), if one is armed.
    timer_due: Option<Duration>,
    /// Execution replicas caught sending two different replies to one request.
    faulty: BTreeSet<ExecReplicaId>,
    /// Batch certificates verified recently (`Certified` acceptance).
    verified: VerifiedRoots,
    /// Replicas' batch-root signatures verified recently (`Matching` acceptance).
    signed_roots: SignedRoots,
    /// Vouches for claims, and certified replies waiting on them (`Certified`
    /// acceptance).
    vouches: Vouches,
    /// When the armed vouch timer fires, if one is armed.
    vouch_due: Option<Duration>,
    /// The highest sequence number of an accepted reply; reported to the agreement
    /// replicas whenever it rises ([`ClientOutput::RepliedThrough`]).
    replied_through: u64,
    /// The highest sequence a read-only result was read at: with `replied_through`, the
    /// `after` of the next read-only request ([`crate::read_only`]).
    read_through: u64,
    /// When the armed read-only timer fires, if one is armed.
    read_due: Option<Duration>,
    /// Until when reads are ordered straight away, after one timed out.
    reads_paused_until: Option<Duration>,
    stats: ClientStats,
}

impl Client {
    /// A client with no request in flight. `key` signs its requests; agreement replicas
    /// check them against the key registered for `config.id`.
    pub fn new(config: ClientConfig, key: SigningKey) -> Client {
        Client {
            next_request_id: config.first_request_id.max(1),
            config,
            key,
            outstanding: BTreeMap::new(),
            timer_due: None,
            faulty: BTreeSet::new(),
            verified: VerifiedRoots::new(VERIFIED_ROOTS),
            signed_roots: SignedRoots::new(SIGNED_ROOTS),
            vouches: Vouches::new(VOUCHED_BYTES),
            vouch_due: None,
            replied_through: 0,
            read_through: 0,
            read_due: None,
            reads_paused_until: None,
            stats: ClientStats::default(),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// Ids of the requests in flight, ascending.
    pub fn outstanding(&self) -> Vec<u64> {
        self.outstanding.keys().copied().collect()
    }

    /// Execution replicas proven faulty (two different replies to one request).
    pub fn faulty_replicas(&self) -> &BTreeSet<ExecReplicaId> {
        &self.faulty
    }

    /// Processes one input at runtime-clock time `now`; returns its effects in order.
    pub fn step(&mut self, input: ClientInput, now: Duration) -> Vec<ClientOutput> {
        let mut out = Vec::new();
        match input {
            ClientInput::Submit { payload } => self.on_submit(payload, false, now, &mut out),
            ClientInput::SubmitRead { payload } => {
                let unordered = matches!(self.config.acceptance, Acceptance::Matching)
                    && !self.config.read_only_wait.is_zero()
                    && self.reads_paused_until.is_none_or(|t| now >= t);
                self.on_submit(payload, unordered, now, &mut out)
            }
            ClientInput::ReadOnlyReply { from, reply } => {
                self.on_read_answer(from, reply, now, &mut out)
            }
            ClientInput::Timer(ClientTimer::ReadOnly) => {
                self.read_due = None;
                self.on_read_timer(now, &mut out);
            }
            ClientInput::Reply(reply) => self.on_reply(reply, None, &mut out),
            ClientInput::LinkReply { from, reply } => self.on_reply(reply, Some(from), &mut out),
            ClientInput::Certified(reply) => self.on_certified(reply, now, &mut out),
            ClientInput::Vouch { from, vouch } => self.on_vouch(from, vouch, &mut out),
            ClientInput::Timer(ClientTimer::Vouch) => self.on_vouch_timer(&mut out),
            ClientInput::Timer(ClientTimer::Retransmit) => {
                // The runtime's timer is spent once it fired.
                self.timer_due = None;
                self.on_retransmit_timer(now, &mut out);
            }
        }
        self.refresh_timer(now, &mut out);
        out
    }

    /// `unordered`: a read-only request, sent to the execution replicas first.
    fn on_submit(
        &mut self,
        payload: Vec<u8>,
        unordered: bool,
        now: Duration,
        out: &mut Vec<ClientOutput>,
    ) {
        if payload.len() > MAX_REQUEST_PAYLOAD {
            self.stats.refused += 1;
            tracing::debug!(
                client = self.config.id,
                len = payload.len(),
                "payload too large"
            );
            out.push(ClientOutput::Refused {
                reason: "payload larger than MAX_REQUEST_PAYLOAD",
            });
            return;
        }
        if !self.window_open() {
            self.stats.busy += 1;
            out.push(ClientOutput::Busy);
            return;
        }
        let request_id = self.next_request_id;
        let request = Request {
            client: self.config.id,
            request_id,
            payload: payload.into(),
        };
        let signed = match Signed::sign(&self.key, request) {
            Ok(s) => s,
            Err(e) => {
                self.stats.refused += 1;
                tracing::warn!(client = self.config.id, error = %e, "cannot sign request");
                out.push(ClientOutput::Refused {
                    reason: "request cannot be encoded",
                });
                return;
            }
        };
        self.next_request_id = self.next_request_id.saturating_add(1);
        self.stats.submitted += 1;
        out.push(ClientOutput::Accepted { request_id });
        let read = if unordered {
            out.push(ClientOutput::SendReadOnly {
                request: signed.clone(),
                after: self.replied_through.max(self.read_through),
            });
            Some(ReadPhase::new(
                now.saturating_add(self.config.read_only_wait),
            ))
        } else {
            // To every agreement replica at once (TOCS §4.1, §4.4): if only the primary
            // got it, a faulty primary could drop it and no backup would ever suspect it.
            out.push(ClientOutput::SendRequest {
                to: None,
                request: signed.clone(),
            });
            None
        };
        self.outstanding.insert(
            request_id,
            Outstanding {
                request: signed,
                backoff: Backoff::start(now, self.config.retransmit_after),
                votes: Votes::new(),
                read,
            },
        );
    }

    /// Replica `from`'s answer to a read-only request ([`crate::read_only`]).
    fn on_read_answer(
        &mut self,
        from: ExecReplicaId,
        reply: Reply,
        now: Duration,
        out: &mut Vec<ClientOutput>,
    ) {
        let (client, request_id) = (self.config.id, reply.request_id);
        let n = self.config.exec_keys.len();
        let refused = if reply.replica != from {
            Some("names a replica other than the link's")
        } else if reply.client != client {
            Some("for another client")
        } else if reply.check_bounds().is_err() {
            Some("out of bounds")
        } else {
            None
        };
        let phase = match refused {
            Some(why) => Err(why),
            None => self
                .outstanding
                .get_mut(&request_id)
                .and_then(|e| e.read.as_mut())
                .ok_or("for no request in its read-only phase"),
        };
        let phase = match phase {
            Ok(p) => p,
            Err(why) => {
                self.stats.read_answers_dropped += 1;
                tracing::debug!(client, request_id, from, "read-only answer {why}: dropped");
                return;
            }
        };
        match phase.add(from, reply.sequence, reply.result, n) {
            ReadVote::Counted => {}
            ReadVote::Duplicate => self.stats.read_answers_dropped += 1,
            ReadVote::Disagrees => {
                self.stats.reads_disagreed += 1;
                tracing::debug!(
                    client,
                    request_id,
                    from,
                    "read-only answers disagree: ordering it"
                );
                self.order_read(request_id, now, out);
            }
            ReadVote::Agreed(sequence, result) => {
                self.outstanding.remove(&request_id);
                self.read_through = self.read_through.max(sequence);
                self.stats.reads_unordered += 1;
                self.stats.completed += 1;
                out.push(ClientOutput::CompleteReadOnly {
                    request_id,
                    sequence,
                    result,
                });
            }
        }
    }

    /// Ends a request's read-only phase: the same signed request goes to agreement, and
    /// from now on it is retransmitted and completed as any other.
    fn order_read(&mut self, request_id: u64, now: Duration, out: &mut Vec<ClientOutput>) {
        let Some(entry) = self.outstanding.get_mut(&request_id) else {
            return;
        };
        entry.read = None;
        entry.backoff = Backoff::start(now, self.config.retransmit_after);
        out.push(ClientOutput::SendRequest {
            to: None,
            request: entry.request.clone(),
        });
    }

    fn on_read_timer(&mut self, now: Duration, out: &mut Vec<ClientOutput>) {
        let due: Vec<(u64, usize)> = self
            .outstanding
            .iter()
            .filter_map(|(id, e)| e.read.as_ref().map(|r| (*id, r)))
            .filter(|(_, r)| r.due <= now)
            .map(|(id, r)| (id, r.answers()))
            .collect();
        if !due.is_empty() {
            self.reads_paused_until = Some(now.saturating_add(READ_ONLY_PAUSE));
        }
        for (request_id, answers) in due {
            self.stats.reads_timed_out += 1;
            tracing::debug!(
                client = self.config.id,
                request_id,
                answers,
                "read-only request unanswered by all replicas in time: ordering it"
            );
            self.order_read(request_id, now, out);
        }
    }

    /// True if another request may go out: fewer than `window` are in flight, and the
    /// next id stays within `replay_window` of the oldest one in flight. Agreement and
    /// execution replicas take an id that far below the highest one ordered for this
    /// client for a replay (`client_window`, `CLIENT_WINDOW`: IPsec-style anti-replay),
    /// and agreement drops such requests still pending. Counting only the requests in
    /// flight let one request whose sends were lost fall out of that window while later
    /// ones completed around it: its retransmissions were then dropped as replays and
    /// the call never returned. With the span bounded, the oldest request holds the
    /// window until it completes.
    fn window_open(&self) -> bool {
        if self.outstanding.len() >= self.config.effective_window() {
            return false;
        }
        match self.outstanding.keys().next() {
            Some(&oldest) => {
                self.next_request_id.saturating_sub(oldest) < self.config.replay_window.max(1)
            }
            None => true,
        }
    }

    /// `link`: the execution replica whose authenticated link the reply came over, if
    /// the runtime knows it.
    fn on_reply(
        &mut self,
        reply: BatchReply,
        link: Option<ExecReplicaId>,
        out: &mut Vec<ClientOutput>,
    ) {
        // Cheap checks first, so replies nobody waits for cost no signature check.
        let client = self.config.id;
        if !matches!(self.config.acceptance, Acceptance::Matching) {
            self.stats.replies_wrong_mode += 1;
            tracing::debug!(client, "signed reply, but certified replies are expected");
            return;
        }
        if reply.message.client != client {
            self.stats.replies_wrong_client += 1;
            tracing::debug!(
                client,
                to = reply.message.client,
                "reply for another client"
            );
            return;
        }
        let request_id = reply.message.request_id;
        if !self.outstanding.contains_key(&request_id) {
            self.stats.replies_unknown_request += 1;
            tracing::debug!(client, request_id, "reply for no outstanding request");
            return;
        }
        let replica = reply.message.replica;
        let checked = if link == Some(replica) {
            // Bounds only: the link vouches for its sender (see `ClientInput::LinkReply`).
            // The signature check on top was two ed25519 checks on every call's critical
            // path in `separate` (docs/PERFORMANCE.md).
            self.stats.replies_link_authenticated += 1;
            reply
                .check_bounds()
                .map_err(|_| palisade_crypto::CryptoError::OutOfBounds("batch reply bounds"))
        } else {
            self.check_reply_signature(&reply)
        };
        if let Err(e) = checked {
            self.stats.replies_invalid += 1;
            tracing::debug!(client, request_id, replica, error = %e, "reply refused");
            return;
        }
        let Some(entry) = self.outstanding.get_mut(&request_id) else {
            return;
        };
        match entry.votes.add(reply.message) {
            Vote::Counted => self.stats.replies_counted += 1,
            Vote::Duplicate => {
                self.stats.replies_duplicate += 1;
                return;
            }
            Vote::Conflicting => {
                self.stats.replies_conflicting += 1;
                self.faulty.insert(replica);
                tracing::warn!(
                    client,
                    request_id,
                    replica,
                    "replica sent conflicting replies"
                );
                return;
            }
        }
        let decided = entry
            .votes
            .decided(self.config.reply_quorum())
            .map(|r| (r.sequence, r.result.clone()));
        if let Some((sequence, result)) = decided {
            self.outstanding.remove(&request_id);
            self.replied(sequence, out);
            self.stats.completed += 1;
            out.push(ClientOutput::Complete {
                request_id,
                sequence,
                result,
            });
        }
    }

    /// Bounds and the Merkle path (hashing only), then the replica's signature on the
    /// batch root — once per replica and batch, thanks to the remembered roots.
    fn check_reply_signature(
        &mut self,
        reply: &BatchReply,
    ) -> Result<(), palisade_crypto::CryptoError> {
        let (replica, sequence) = (reply.message.replica, reply.message.sequence);
        let root = palisade_crypto::batch_reply_root(reply)?;
        if self
            .signed_roots
            .contains(replica, sequence, &root, &reply.signature)
        {
            self.stats.reply_signatures_cached += 1;
            return Ok(());
        }
        let key = usize::try_from(replica)
            .ok()
            .and_then(|i| self.config.exec_keys.get(i))
            .ok_or(palisade_crypto::CryptoError::UnknownSigner(replica))?;
        palisade_crypto::verify_batch_reply(key, reply)?;
        self.signed_roots
            .insert(replica, sequence, root, reply.signature);
        Ok(())
    }

    /// A reply certified by the execution cluster (SOSP 2003 §4): it completes its request
    /// alone once its Merkle path leads to a root that the combined threshold signature
    /// signs. Cheap checks first (client, outstanding, bounds, path); then a claim known
    /// true (checked, or vouched for by f+1 agreement nodes) accepts it at once, and an
    /// unknown one waits up to `vouch_wait` for vouches before it is checked with a
    /// pairing ([`crate::vouches`]).
    fn on_certified(&mut self, reply: CertifiedReply, now: Duration, out: &mut Vec<ClientOutput>) {
        let Some(root) = self.certified_root(&reply) else {
            return;
        };
        let sequence = reply.sequence;
        if self.verified.contains(sequence, &root, &reply.signature) {
            self.stats.certificates_cached += 1;
            return self.accept(reply, out);
        }
        if self.config.vouch_wait.is_zero() {
            return self.check_and_accept(reply, root, out);
        }
        let claim = (sequence, root, reply.signature.clone());
        let request_id = reply.entry.request_id;
        if let Err(reply) = self.vouches.wait(request_id, claim, reply) {
            return self.check_and_accept(reply, root, out);
        }
        if self.vouch_due.is_none() {
            let after = self.config.vouch_wait;
            self.vouch_due = Some(now.saturating_add(after));
            out.push(ClientOutput::SetTimer {
                kind: ClientTimer::Vouch,
                after,
            });
        }
    }

    /// Agreement node `from` vouches for a claim: f+1 of them make it true, and the
    /// replies waiting on it complete without a pairing.
    fn on_vouch(&mut self, from: u32, vouch: Vouch, out: &mut Vec<ClientOutput>) {
        if !matches!(self.config.acceptance, Acceptance::Certified(_)) {
            self.stats.replies_wrong_mode += 1;
            return;
        }
        if self
            .verified
            .contains(vouch.sequence, &vouch.root, &vouch.signature)
        {
            return;
        }
        let claim = (vouch.sequence, vouch.root, vouch.signature);
        let quorum = self.config.vouch_quorum();
        let Some(released) = self.vouches.vouch(claim.clone(), from, quorum) else {
            return;
        };
        let (sequence, root, signature) = claim;
        self.verified.insert(sequence, root, &signature);
        self.stats.claims_vouched += 1;
        for waiting in released {
            if self.outstanding.contains_key(&waiting.request_id) {
                self.stats.certificates_cached += 1;
                self.accept(waiting.reply, out);
            }
        }
    }

    /// Certified replies waited long enough for vouches: check each claim (once, thanks
    /// to the cache of verified roots).
    fn on_vouch_timer(&mut self, out: &mut Vec<ClientOutput>) {
        self.vouch_due = None;
        for waiting in self.vouches.take_waiting() {
            if self.outstanding.contains_key(&waiting.request_id) {
                let (_, root, _) = waiting.claim;
                self.check_and_accept(waiting.reply, root, out);
            }
        }
    }

    /// The cheap checks of a certified reply (mode, client, outstanding, bounds, path):
    /// the root its path leads to, or `None` (counted and logged).
    fn certified_root(&mut self, reply: &CertifiedReply) -> Option<Digest> {
        let client = self.config.id;
        if !matches!(self.config.acceptance, Acceptance::Certified(_)) {
            self.stats.replies_wrong_mode += 1;
            tracing::debug!(client, "certified reply, but signed replies are expected");
            return None;
        }
        if reply.entry.client != client {
            self.stats.replies_wrong_client += 1;
            tracing::debug!(
                client,
                to = reply.entry.client,
                "certified reply for another client"
            );
            return None;
        }
        let request_id = reply.entry.request_id;
        if !self.outstanding.contains_key(&request_id) {
            self.stats.replies_unknown_request += 1;
            tracing::debug!(
                client,
                request_id,
                "certified reply for no outstanding request"
            );
            return None;
        }
        // Bounds and the Merkle path (hashing only).
        match palisade_crypto::reply_root_of(reply) {
            Ok(root) => Some(root),
            Err(e) => {
                self.stats.bad_certificates += 1;
                tracing::debug!(client, request_id, error = %e, "certified reply: bad bounds or Merkle path");
                None
            }
        }
    }

    /// Checks the signature on `reply`'s claim (unless cached) and accepts it if true.
    fn check_and_accept(
        &mut self,
        reply: CertifiedReply,
        root: Digest,
        out: &mut Vec<ClientOutput>,
    ) {
        let Acceptance::Certified(verifier) = &self.config.acceptance else {
            return;
        };
        let sequence = reply.sequence;
        if self.verified.contains(sequence, &root, &reply.signature) {
            self.stats.certificates_cached += 1;
        } else if verifier.verify(&reply_root_message(sequence, &root), &reply.signature) {
            self.stats.certificates_checked += 1;
            self.verified.insert(sequence, root, &reply.signature);
        } else {
            self.stats.bad_certificates += 1;
            tracing::debug!(
                client = self.config.id,
                request_id = reply.entry.request_id,
                sequence,
                "certified reply: signature refused"
            );
            return;
        }
        self.accept(reply, out);
    }

    /// Completes the request of a certified reply whose claim is true.
    fn accept(&mut self, reply: CertifiedReply, out: &mut Vec<ClientOutput>) {
        let (request_id, sequence) = (reply.entry.request_id, reply.sequence);
        self.outstanding.remove(&request_id);
        self.vouches.remove(request_id);
        self.replied(sequence, out);
        self.stats.replies_counted += 1;
        self.stats.completed += 1;
        out.push(ClientOutput::Complete {
            request_id,
            sequence,
            result: reply.entry.body,
        });
    }

    /// A reply of the batch at `sequence` was accepted: when that is the highest yet, tell
    /// the agreement replicas, whose primary paces batches by it (once per batch, so
    /// the report costs one small message per batch and agreement replica).
    fn replied(&mut self, sequence: u64, out: &mut Vec<ClientOutput>) {
        if sequence > self.replied_through {
            self.replied_through = sequence;
            out.push(ClientOutput::RepliedThrough(sequence));
        }
    }

    fn on_retransmit_timer(&mut self, now: Duration, out: &mut Vec<ClientOutput>) {
        let base = self.config.retransmit_after;
        for (request_id, entry) in self.outstanding.iter_mut() {
            if entry.read.is_none() && entry.backoff.is_due(now) {
                entry.backoff.retransmitted(now, base);
                self.stats.retransmissions += 1;
                // Rare outside loss and view changes, and what to look for when a call
                // is slow: which request, how many replies it has so far.
                tracing::info!(
                    client = self.config.id,
                    request_id,
                    replies = entry.votes.len(),
                    "request retransmitted"
                );
                out.push(ClientOutput::SendRequest {
                    to: None,
                    request: entry.request.clone(),
                });
            }
        }
    }

    /// Keeps exactly one retransmission timer armed for the earliest due request (none
    /// when idle), and one read-only timer for the earliest read-only deadline.
    fn refresh_timer(&mut self, now: Duration, out: &mut Vec<ClientOutput>) {
        let retransmit = self
            .outstanding
            .values()
            .filter(|e| e.read.is_none())
            .map(|e| e.backoff.due)
            .min();
        rearm(
            ClientTimer::Retransmit,
            retransmit,
            &mut self.timer_due,
            now,
            out,
        );
        let read = self
            .outstanding
            .values()
            .filter_map(|e| e.read.as_ref().map(|r| r.due))
            .min();
        rearm(ClientTimer::ReadOnly, read, &mut self.read_due, now, out);
    }
}

/// Arms timer `kind` for `due` (cancels it for `None`) unless it is armed for that already.
fn rearm(
    kind: ClientTimer,
    due: Option<Duration>,
    armed: &mut Option<Duration>,
    now: Duration,
    out: &mut Vec<ClientOutput>,
) {
    if due == *armed {
        return;
    }
    out.push(match due {
        Some(due) => ClientOutput::SetTimer {
            kind,
            after: due.saturating_sub(now),
        },
        None => ClientOutput::CancelTimer(kind),
    });
    *armed = due;
}
