//! Bottom row, upward (SOSP 2003 §4.2): collect the execution replicas' reply shares and
//! combine g+1 of them (combine first, verify shares only if the combination fails, and
//! record who sent bad ones); forward a reply body up only once its leaf is under the
//! certified root, as a `CertifiedReply`, once per request; combine stable shares into a
//! stable certificate and garbage-collect on it.

use palisade_crypto::merkle;
use palisade_wire::agreement::Sequence;
use palisade_wire::firewall::{ReplyBody, ReplyShare, StableCertificate, StableShare};

use super::Filter;
use crate::collector::{PendingBody, ShareVerdict};
use crate::io::FilterOutput;
use crate::shares::Attempt;
use crate::stats::reason;

/// Per pending body: bytes charged besides its body.
const PENDING_OVERHEAD: usize = 96;

impl Filter {
    pub(super) fn on_reply_share(
        &mut self,
        from: u32,
        share: ReplyShare,
        out: &mut Vec<FilterOutput>,
    ) {
        let sequence = share.sequence;
        if share.replica != from {
            return self.refuse(reason::IMPOSTOR, from, Some(sequence));
        }
        let Some(slot) = self.log.get(sequence) else {
            return self.refuse(reason::NOT_OUTSTANDING, from, Some(sequence));
        };
        // A replica signs one leaf per request it executed in the batch (none for a
        // duplicate), so more leaves than requests is a lie.
        if share.leaves.len() > slot.requests.len() {
            return self.refuse(reason::TOO_MANY_LEAVES, from, Some(sequence));
        }
        let verifier = self.config.verifier.clone();
        let collector = self.collectors.entry(sequence).or_default();
        let verdict =
            collector.add_share(sequence, from, share.leaves, share.share, verifier.as_ref());
        match verdict {
            ShareVerdict::Refused(r) => self.refuse_share(r, from, sequence),
            ShareVerdict::Taken(attempt) => {
                let certified = attempt.signature.is_some();
                self.record_attempt(&attempt, sequence);
                if certified {
                    self.stats.roots_certified += 1;
                    tracing::debug!(
                        row = self.config.row,
                        column = self.config.column,
                        sequence,
                        "reply root certified"
                    );
                    self.release_certified(sequence, out);
                }
            }
        }
    }

    pub(super) fn on_reply_body(
        &mut self,
        from: u32,
        body: ReplyBody,
        out: &mut Vec<FilterOutput>,
    ) {
        let sequence = body.sequence;
        if body.replica != from {
            return self.refuse(reason::IMPOSTOR, from, Some(sequence));
        }
        let Some(slot) = self.log.get(sequence) else {
            return self.refuse(reason::NOT_OUTSTANDING, from, Some(sequence));
        };
        match slot
            .requests
            .get(&(body.entry.client, body.entry.request_id))
        {
            None => return self.refuse(reason::NEVER_REQUESTED, from, Some(sequence)),
            Some(true) => return self.refuse(reason::DUPLICATE_REPLY, from, Some(sequence)),
            Some(false) => {}
        }
        let collector = self.collectors.entry(sequence).or_default();
        match collector.certify(sequence, &body.entry) {
            Some(Ok(reply)) => self.forward_reply(reply, out),
            Some(Err(r)) => self.refuse(r, from, Some(sequence)),
            None => {
                let leaf = merkle::leaf_hash(&body.entry);
                if collector.has_pending(&leaf) {
                    return self.refuse(reason::DUPLICATE_BODY, from, Some(sequence));
                }
                let bytes = body.entry.body.len().saturating_add(PENDING_OVERHEAD);
                let used = self.pending_bytes.get(&from).copied().unwrap_or(0);
                if used.saturating_add(bytes) > self.config.max_pending_bytes_per_replica {
                    return self.refuse(reason::PENDING_FULL, from, Some(sequence));
                }
                collector.add_pending(
                    leaf,
                    PendingBody {
                        entry: body.entry,
                        replica: from,
                        bytes,
                    },
                );
                self.pending_bytes.insert(from, used.saturating_add(bytes));
            }
        }
    }

    pub(super) fn on_stable_share(
        &mut self,
        from: u32,
        share: StableShare,
        out: &mut Vec<FilterOutput>,
    ) {
        let sequence = share.sequence;
        if share.replica != from {
            return self.refuse(reason::IMPOSTOR, from, Some(sequence));
        }
        if sequence <= self.last_stable {
            if sequence == self.last_stable {
                self.resend_stable(out);
            }
            return self.refuse(reason::STALE_STABLE, from, Some(sequence));
        }
        // Beyond every order forwarded: refused, except by a filter that has forwarded
        // none since it started. After the whole cluster restarted, the execution
        // replicas' restart checkpoint (`ExecutionReplica::start`) is what agreement
        // waits for before it orders anything. Shares stay bounded per replica
        // (`stable.rs`), and a combination needs g+1, so a correct replica's.
        if sequence > self.highest_forwarded && self.highest_forwarded > 0 {
            return self.refuse(reason::NOT_OUTSTANDING, from, Some(sequence));
        }
        let verifier = self.config.verifier.clone();
        match self
            .stable_shares
            .add(sequence, from, share.share, verifier.as_ref())
        {
            ShareVerdict::Refused(r) => self.refuse_share(r, from, sequence),
            ShareVerdict::Taken(attempt) => {
                self.record_attempt(&attempt, sequence);
                if let Some(signature) = attempt.signature {
                    self.stats.stables_combined += 1;
                    self.adopt_stable(
                        StableCertificate {
                            sequence,
                            signature,
                        },
                        out,
                    );
                }
            }
        }
    }

    /// The root of `sequence` was just certified: forward every pending body whose leaf
    /// it certifies (once per request), drop the rest, and release their budgets.
    fn release_certified(&mut self, sequence: Sequence, out: &mut Vec<FilterOutput>) {
        let Some(collector) = self.collectors.get_mut(&sequence) else {
            return;
        };
        let pending = collector.take_pending();
        let certified: Vec<_> = pending
            .into_iter()
            .map(|body| {
                let result = collector.certify(sequence, &body.entry);
                (body, result)
            })
            .collect();
        for (body, result) in certified {
            self.release_pending(body.replica, body.bytes);
            let key = (body.entry.client, body.entry.request_id);
            let answered = self
                .log
                .get(sequence)
                .and_then(|slot| slot.requests.get(&key).copied())
                .unwrap_or(true);
            match result {
                Some(Ok(reply)) if !answered => self.forward_reply(reply, out),
                Some(Ok(_)) => self.refuse(reason::DUPLICATE_REPLY, body.replica, Some(sequence)),
                Some(Err(_)) | None => {
                    self.refuse(reason::PENDING_UNCERTIFIED, body.replica, Some(sequence))
                }
            }
        }
    }

    /// Counts a refused share; an equivocation also counts against its replica.
    fn refuse_share(&mut self, r: &'static str, from: u32, sequence: Sequence) {
        if r == reason::EQUIVOCATING_SHARE {
            *self.stats.equivocations.entry(from).or_insert(0) += 1;
        }
        self.refuse(r, from, Some(sequence));
    }

    /// Records a combination attempt: failed combinations, and the replicas whose
    /// shares failed their individual check (each such share is dropped).
    fn record_attempt(&mut self, attempt: &Attempt, sequence: Sequence) {
        self.stats.combinations_failed += attempt.failed_combinations;
        for bad in &attempt.bad {
            *self.stats.bad_shares.entry(*bad).or_insert(0) += 1;
            tracing::warn!(
                row = self.config.row,
                column = self.config.column,
                replica = bad,
                sequence,
                "execution replica sent a bad signature share"
            );
            self.refuse(reason::BAD_SHARE, *bad, Some(sequence));
        }
    }
}
