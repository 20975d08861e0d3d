//! Upper rows, upward (SOSP 2003 §4.2): a filter forwards a certified reply only for a
//! request it forwarded down, only with a valid combined threshold signature, and only
//! once; and a stable certificate only if it verifies and is newer than the last one.
//! Nothing a lower filter chooses crosses on its own say-so: every byte forwarded is
//! fixed by the execution cluster's unique threshold signature.

use palisade_crypto::{reply_root_of, verify_stable};
use palisade_wire::agreement::Sequence;
use palisade_wire::firewall::{reply_root_message, CertifiedReply, StableCertificate};

use super::Filter;
use crate::cache::reply_bytes;
use crate::io::FilterOutput;
use crate::log::RequestKey;
use crate::stats::reason;
use crate::vouch::{Claim, Held, Hold, Standing, Vouched};

impl Filter {
    pub(super) fn on_certified_reply(
        &mut self,
        from: u32,
        reply: CertifiedReply,
        out: &mut Vec<FilterOutput>,
    ) {
        let sequence = reply.sequence;
        let key = (reply.entry.client, reply.entry.request_id);
        let Some(slot) = self.log.get(sequence) else {
            return self.refuse(reason::NOT_OUTSTANDING, from, Some(sequence));
        };
        match slot.requests.get(&key) {
            None => return self.refuse(reason::NEVER_REQUESTED, from, Some(sequence)),
            Some(true) => {
                // Answered already; while some claim of its sequence is open, the copy
                // still vouches (`vouch.rs`), so replies held on it need no pairing.
                if slot.claims.has_open() {
                    if let Ok(root) = reply_root_of(&reply) {
                        self.vouch(from, sequence, (root, reply.signature), out);
                    }
                }
                return self.refuse(reason::DUPLICATE_REPLY, from, Some(sequence));
            }
            Some(false) => {}
        }
        let root = match reply_root_of(&reply) {
            Ok(root) => root,
            Err(e) => {
                tracing::debug!(sequence, error = %e, "Merkle path refused");
                return self.refuse(reason::BAD_MERKLE_PATH, from, Some(sequence));
            }
        };
        // The claim is settled once per (sequence, root, signature), not per reply.
        match slot.claims.standing(&root, &reply.signature) {
            Standing::Verified => return self.forward_reply(reply, out),
            Standing::Refused => {
                return self.refuse(reason::BAD_REPLY_SIGNATURE, from, Some(sequence))
            }
            Standing::Unsettled => {}
        }
        let claim = (root, reply.signature.clone());
        if self.vouch(from, sequence, claim.clone(), out) {
            return self.forward_unanswered(reply, out);
        }
        let Err(reply) = self.hold(from, key, claim.clone(), reply) else {
            return;
        };
        // Not held (no room, over budget, or vouching off): check it now.
        if self.check_claim(sequence, claim, out) {
            self.forward_reply(reply, out);
        } else {
            self.refuse(reason::BAD_REPLY_SIGNATURE, from, Some(sequence));
        }
    }

    /// Counts `from`'s voucher for `claim` at `sequence`. Returns whether the claim is
    /// now verified; if so, the replies held on it went up.
    fn vouch(
        &mut self,
        from: u32,
        sequence: Sequence,
        claim: Claim,
        out: &mut Vec<FilterOutput>,
    ) -> bool {
        if self.config.vouch_wait.is_zero() {
            return false;
        }
        let deadline = self.now.saturating_add(self.config.vouch_wait);
        let below = self.config.below;
        let Some(slot) = self.log.get_mut(sequence) else {
            return false;
        };
        if slot.claims.standing(&claim.0, &claim.1) != Standing::Unsettled {
            return false;
        }
        match slot.claims.vouch(&claim, from, below, deadline) {
            Vouched::Complete(held) => {
                self.stats.claims_vouched += 1;
                self.release(held, true, out);
                true
            }
            Vouched::Open | Vouched::NoRoom => false,
        }
    }

    /// Holds `reply` on its open claim, within the sender's budget: `Ok` when it waits
    /// (held now, or a copy of it was held already), else the reply back, to be checked
    /// now (not copied: a body may be 1 MiB).
    fn hold(
        &mut self,
        from: u32,
        key: RequestKey,
        claim: Claim,
        reply: CertifiedReply,
    ) -> Result<(), CertifiedReply> {
        if self.config.vouch_wait.is_zero() {
            return Err(reply);
        }
        let bytes = reply_bytes(&reply);
        let used = self.pending_bytes(from);
        if used.saturating_add(bytes) > self.config.max_pending_bytes_per_replica {
            return Err(reply);
        }
        let Some(slot) = self.log.get_mut(reply.sequence) else {
            return Err(reply);
        };
        match slot.claims.hold(&claim, key, Held { from, bytes, reply }) {
            Hold::Held => {
                *self.pending_bytes.entry(from).or_insert(0) += bytes;
                Ok(())
            }
            Hold::AlreadyHeld => Ok(()),
            Hold::NotOpen(held) => Err(held.reply),
        }
    }

    /// Checks `claim` with a pairing and settles it; the replies held on it go up if it
    /// is true, and are dropped if not. Returns whether it is true.
    fn check_claim(
        &mut self,
        sequence: Sequence,
        claim: Claim,
        out: &mut Vec<FilterOutput>,
    ) -> bool {
        let message = reply_root_message(sequence, &claim.0);
        let true_claim = self.config.verifier.verify(&message, &claim.1);
        self.stats.claims_checked += 1;
        let held = match self.log.get_mut(sequence) {
            Some(slot) => slot.claims.settle(claim, true_claim),
            None => Vec::new(),
        };
        self.release(held, true_claim, out);
        true_claim
    }

    /// Upper rows, on each tick: checks the claims whose vouch wait is over.
    pub(super) fn check_due_claims(&mut self, out: &mut Vec<FilterOutput>) {
        let now = self.now;
        let mut due = Vec::new();
        for (sequence, slot) in self.log.slots_mut() {
            // Most ticks find nothing due: look before taking (which reallocates).
            if slot.claims.next_deadline().is_none_or(|d| d > now) {
                continue;
            }
            due.extend(
                slot.claims
                    .take_due(now)
                    .into_iter()
                    .map(|o| (*sequence, o)),
            );
        }
        for (sequence, open) in due {
            let true_claim = self.check_claim(sequence, open.claim, out);
            self.release(open.held, true_claim, out);
        }
    }

    /// Forwards (`true_claim`) or drops the replies that waited on a settled claim, and
    /// gives their bytes back to their senders.
    fn release(&mut self, held: Vec<Held>, true_claim: bool, out: &mut Vec<FilterOutput>) {
        for Held { from, bytes, reply } in held {
            self.release_pending(from, bytes);
            let sequence = reply.sequence;
            let key = (reply.entry.client, reply.entry.request_id);
            let answered = self
                .log
                .get(sequence)
                .and_then(|slot| slot.requests.get(&key).copied());
            if !true_claim {
                self.refuse(reason::BAD_REPLY_SIGNATURE, from, Some(sequence));
            } else if answered == Some(false) {
                self.forward_reply(reply, out);
            }
        }
    }

    /// Forwards a reply whose claim is verified, unless a copy went up meanwhile (a
    /// copy held on the same claim, released by this very reply's voucher).
    fn forward_unanswered(&mut self, reply: CertifiedReply, out: &mut Vec<FilterOutput>) {
        let key = (reply.entry.client, reply.entry.request_id);
        let answered = self
            .log
            .get(reply.sequence)
            .and_then(|slot| slot.requests.get(&key).copied());
        if answered == Some(false) {
            self.forward_reply(reply, out);
        }
    }

    pub(super) fn on_stable_certificate(
        &mut self,
        from: u32,
        certificate: StableCertificate,
        out: &mut Vec<FilterOutput>,
    ) {
        let sequence = certificate.sequence;
        if sequence <= self.last_stable {
            if sequence == self.last_stable {
                self.resend_stable(out);
            }
            return self.refuse(reason::STALE_STABLE, from, Some(sequence));
        }
        if let Err(e) = verify_stable(self.config.verifier.as_ref(), &certificate) {
            tracing::debug!(sequence, error = %e, "stable certificate refused");
            return self.refuse(reason::BAD_STABLE, from, Some(sequence));
        }
        self.adopt_stable(certificate, out);
    }
}
