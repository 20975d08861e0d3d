//! The normal case (TOCS §4.2): pre-prepare, prepare, commit, in-order delivery, and
//! fetching a batch body known only by digest.

use palisade_wire::agreement::Bounded as _;
use palisade_wire::agreement::{
    verify_all, AgreementMessage, Batch, Commit, Digest, OrderedBatch, PrePrepare, Prepare,
    ReplicaId, Sequence, Signed,
};
use palisade_wire::fs::Timestamp;

use super::{nanos, Replica, Status, MAX_EARLY, MAX_RETRANSMIT};
use crate::certificate::{neutral, order_certificate};
use crate::error::Reject;
use crate::io::Output;

impl Replica {
    // ----- normal case (TOCS §4.2) -----

    pub(super) fn on_message(
        &mut self,
        from: ReplicaId,
        message: AgreementMessage,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        use palisade_wire::agreement::Bounded;
        if from as usize >= self.config.n() {
            return Err(Reject::Rule("message from an unknown replica"));
        }
        message.check_bounds()?;
        // An authenticated vote of a view above ours: we may have missed a view change.
        // A signature is checked only when we would ask (once per peer and view), so a
        // peer cannot make us verify its messages for views we drop anyway; a prepare is
        // authenticated by its link alone.
        let keys = &self.config.replica_keys;
        let vote_view = match &message {
            AgreementMessage::PrePrepare { pre_prepare, .. }
            | AgreementMessage::PrePrepareNamed { pre_prepare, .. } => pre_prepare.message.view,
            AgreementMessage::Prepare(p) => p.view,
            AgreementMessage::Commit(c) => c.message.view,
            _ => 0,
        };
        if self.should_ask_for_view(from, vote_view) {
            let signed = match &message {
                AgreementMessage::PrePrepare { pre_prepare, .. }
                | AgreementMessage::PrePrepareNamed { pre_prepare, .. } => {
                    pre_prepare.verify_with(keys).is_ok()
                }
                AgreementMessage::Prepare(p) => p.replica == from,
                AgreementMessage::Commit(c) => c.verify_with(keys).is_ok(),
                _ => false,
            };
            if signed {
                self.ask_for_view(from, vote_view, out);
            }
        }
        match message {
            AgreementMessage::PrePrepare { pre_prepare, batch } => {
                // Over the primary's own link the link vouches for it; a copy relayed
                // by anyone else must carry the primary's signature (TOCS §3.2).
                let signature = if from == pre_prepare.message.primary {
                    PrePrepareSignature::Deferred
                } else {
                    PrePrepareSignature::CheckNow
                };
                self.on_pre_prepare(pre_prepare, batch, false, signature, out)
            }
            AgreementMessage::PrePrepareNamed {
                pre_prepare,
                entries,
            } => self.on_pre_prepare_named(from, pre_prepare, entries, out),
            AgreementMessage::Prepare(p) => self.on_prepare(from, p, out),
            AgreementMessage::Commit(c) => self.on_commit(from, c, out),
            AgreementMessage::Checkpoint(c) => self.on_checkpoint(c, out),
            AgreementMessage::ViewChange(vc) => self.on_view_change(vc, out),
            AgreementMessage::NewView(nv) => self.on_new_view(nv, out),
            AgreementMessage::FetchBatch { sequence, digest } => {
                self.on_fetch(from, sequence, digest, out)
            }
            AgreementMessage::BatchBody { sequence, batch } => self.on_body(sequence, batch, out),
            AgreementMessage::FetchNewView { view } => {
                self.on_fetch_new_view(from, view, out);
                Ok(())
            }
            AgreementMessage::Status {
                view,
                last_delivered,
            } => {
                self.on_status_view(from, view, out);
                self.on_status(from, last_delivered, out);
                Ok(())
            }
        }
    }

    /// `digest_checked`: the caller already found that `batch` hashes to the
    /// pre-prepare's digest (a batch rebuilt from named requests), so a 1 MiB batch is
    /// not hashed twice. `signature`: when the primary's signature is checked.
    pub(super) fn on_pre_prepare(
        &mut self,
        pre_prepare: Signed<PrePrepare>,
        batch: Batch,
        digest_checked: bool,
        signature: PrePrepareSignature,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let m = pre_prepare.message.clone();
        let next_view = self.view.saturating_add(1);
        let early = (self.status == Status::ViewChange && m.view == self.view)
            || (self.status == Status::Normal && m.view == next_view);
        if early {
            return self.hold_early(pre_prepare, batch);
        }
        if m.view != self.view || self.status != Status::Normal {
            return Err(Reject::WrongView {
                got: m.view,
                current: self.view,
            });
        }
        if m.primary != self.config.primary(m.view) || self.is_primary() {
            return Err(Reject::Rule("pre-prepare not from the primary"));
        }
        if !self.log.in_window(m.sequence) {
            return Err(Reject::OutsideWindow(m.sequence));
        }
        if signature == PrePrepareSignature::CheckNow {
            pre_prepare.verify_with(&self.config.replica_keys)?;
        }
        if (!digest_checked && batch.digest()? != m.digest) || batch.timestamp != m.timestamp {
            return Err(Reject::Rule("batch does not match the pre-prepare"));
        }
        if let Some((_, digest)) = self.log.get(m.sequence).and_then(|s| s.accepted()) {
            return Err(if digest == m.digest {
                Reject::Rule("duplicate pre-prepare")
            } else {
                Reject::ConflictingPrePrepare(m.sequence)
            });
        }
        if batch.is_null() {
            return Err(Reject::Rule("empty batch outside a view change"));
        }
        if batch.requests.len() > self.config.max_batch_requests {
            return Err(Reject::Rule("batch larger than configured"));
        }
        self.check_client_signatures(&batch)?;
        let mut seen = std::collections::BTreeSet::new();
        for r in &batch.requests {
            let key = (r.message.client, r.message.request_id);
            if !seen.insert(key) || self.clients.is_ordered(key.0, key.1) {
                return Err(Reject::Rule("batch repeats an ordered request"));
            }
        }
        self.check_timestamp(m.sequence, m.timestamp)?;
        // Accept (TOCS §4.2): log the pre-prepare and multicast a prepare.
        for r in &batch.requests {
            self.clients
                .mark_proposed(r.message.client, r.message.request_id);
        }
        self.last_timestamp = self.last_timestamp.max(m.timestamp);
        // Unsigned: the links authenticate it (TOCS §3.2), and it is never forwarded.
        let quiet = self.quiet.withholds(&self.config, m.view, m.sequence);
        let prepare = self.may_vote().then_some(Prepare {
            view: m.view,
            sequence: m.sequence,
            digest: m.digest,
            replica: self.config.id,
        });
        let slot = self
            .log
            .slot_mut(m.sequence)
            .ok_or(Reject::OutsideWindow(m.sequence))?;
        if signature == PrePrepareSignature::Deferred {
            // Its `Q` entry waits for the check too (`Slot::accept_unchecked`).
            slot.accept_unchecked(pre_prepare, prepare.is_some());
            self.unchecked.insert(m.sequence);
        } else {
            slot.accept(pre_prepare, prepare.is_some());
        }
        slot.add_body(m.digest, batch);
        if let Some(prepare) = prepare {
            slot.prepares.insert(self.config.id, prepare.clone());
            if quiet {
                self.withhold_vote(m.sequence);
            } else {
                out.push(Output::Broadcast(AgreementMessage::Prepare(prepare)));
            }
        }
        self.check_progress(m.sequence, out)
    }

    /// A pre-prepare of a view this replica has not entered yet (it overtook the
    /// new-view message). It is checked for origin and signature and held, at most
    /// [`MAX_EARLY`] of them, until the view is installed; then it is processed as if it
    /// had just arrived. Without this, reordering alone would lose proposals and force
    /// another view change.
    fn hold_early(&mut self, pre_prepare: Signed<PrePrepare>, batch: Batch) -> Result<(), Reject> {
        let m = &pre_prepare.message;
        if m.primary != self.config.primary(m.view) || m.primary == self.config.id {
            return Err(Reject::Rule("pre-prepare not from the primary"));
        }
        if !self.log.in_window(m.sequence) {
            return Err(Reject::OutsideWindow(m.sequence));
        }
        if self.early.len() >= MAX_EARLY {
            return Err(Reject::Rule(
                "too many pre-prepares for a view not entered yet",
            ));
        }
        pre_prepare.verify_with(&self.config.replica_keys)?;
        let key = (m.view, m.sequence);
        if self.early.contains_key(&key) {
            return Err(Reject::Rule("duplicate early pre-prepare"));
        }
        self.early.insert(key, (pre_prepare, batch));
        Ok(())
    }

    /// Processes the held pre-prepares of the view just installed; drops the rest.
    pub(super) fn replay_early(&mut self, out: &mut Vec<Output>) {
        let view = self.view;
        let held = std::mem::take(&mut self.early);
        for ((v, _), (pre_prepare, batch)) in held {
            if v == view {
                // `hold_early` checked its signature.
                let checked = PrePrepareSignature::Checked;
                if let Err(reject) = self.on_pre_prepare(pre_prepare, batch, false, checked, out) {
                    tracing::debug!(replica = self.config.id, view, %reject, "held pre-prepare dropped");
                    self.count_replica_reject(&reject);
                }
            } else if v > view {
                self.early
                    .insert((v, pre_prepare.message.sequence), (pre_prepare, batch));
            }
        }
    }

    /// A backup accepts the primary's timestamp only if it does not go backwards with
    /// respect to the batches around it in the order, and lies within the configured
    /// skew of the backup's own clock.
    pub(super) fn check_timestamp(&self, sequence: Sequence, ts: Timestamp) -> Result<(), Reject> {
        let now = self.now.ok_or(Reject::Timestamp("no clock reading yet"))?;
        let skew = u64::try_from(self.config.max_timestamp_skew.as_nanos()).unwrap_or(u64::MAX);
        if nanos(ts).abs_diff(nanos(now)) > skew {
            return Err(Reject::Timestamp("beyond the allowed skew"));
        }
        if ts < self.delivered_timestamp {
            return Err(Reject::Timestamp("earlier than a delivered batch"));
        }
        // Timestamps in the log are monotonic in sequence order, so the nearest
        // accepted neighbours on each side bound this one.
        let null = self.null_digest;
        let timestamp_of = |slot: &crate::log::Slot| {
            slot.pre_prepare
                .as_ref()
                .filter(|pp| pp.message.digest != null)
                .map(|pp| pp.message.timestamp)
        };
        let before = self
            .log
            .range(0, sequence.saturating_sub(1))
            .rev()
            .find_map(|(_, s)| timestamp_of(s));
        let after = self
            .log
            .range(sequence.saturating_add(1), Sequence::MAX)
            .find_map(|(_, s)| timestamp_of(s));
        if before.is_some_and(|b| b > ts) || after.is_some_and(|a| a < ts) {
            return Err(Reject::Timestamp("goes backwards"));
        }
        Ok(())
    }

    /// A prepare, authenticated by the link it came over (`from`): it counts only for
    /// the replica that sent it (TOCS §3.2: a MAC authenticates its sender to its
    /// receiver, and nobody else ever sees it).
    pub(super) fn on_prepare(
        &mut self,
        from: ReplicaId,
        m: Prepare,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        if m.replica != from {
            return Err(Reject::Rule("prepare names another replica than its link"));
        }
        // Prepares for the next view are kept: with reordering they can overtake the
        // new-view message that lets this replica enter that view.
        if m.view != self.view && m.view != self.view.saturating_add(1) {
            return Err(Reject::WrongView {
                got: m.view,
                current: self.view,
            });
        }
        if m.replica == self.config.primary(m.view) {
            return Err(Reject::Rule("prepare from the primary"));
        }
        if !self.log.in_window(m.sequence) {
            return Err(Reject::OutsideWindow(m.sequence));
        }
        // The slot prepared in this view with this digest already: another prepare adds
        // nothing.
        if self.log.get(m.sequence).is_some_and(|s| {
            s.prepared
                .as_ref()
                .is_some_and(|p| p.message.view == m.view && p.message.digest == m.digest)
        }) {
            return Err(Reject::Redundant(m.sequence));
        }
        let slot = self
            .log
            .slot_mut(m.sequence)
            .ok_or(Reject::OutsideWindow(m.sequence))?;
        if let Some(old) = slot.prepares.get(&m.replica) {
            if old.view == m.view {
                return Err(if old.digest == m.digest {
                    Reject::Rule("duplicate prepare")
                } else {
                    Reject::ConflictingVote(m.replica)
                });
            }
        }
        let sequence = m.sequence;
        slot.prepares.insert(m.replica, m);
        self.check_progress(sequence, out)
    }

    pub(super) fn on_commit(
        &mut self,
        from: ReplicaId,
        commit: Signed<Commit>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let m = commit.message.clone();
        // Commits of any earlier view are still evidence (2f+1 of them prove the order
        // whatever view this replica is in); those of the next view may overtake its
        // new-view message.
        if m.view > self.view.saturating_add(1) {
            return Err(Reject::WrongView {
                got: m.view,
                current: self.view,
            });
        }
        if !self.log.in_window(m.sequence) {
            return Err(Reject::OutsideWindow(m.sequence));
        }
        // Committed with this digest already (the ORDER certificate holds 2f+1 commits):
        // another matching commit adds nothing, so its signature is not worth checking.
        if self
            .log
            .get(m.sequence)
            .and_then(|s| s.committed.as_ref())
            .is_some_and(|c| c.digest == m.digest)
        {
            return Err(Reject::Redundant(m.sequence));
        }
        // Over its signer's own link it is authenticated already, where the configuration
        // allows counting it so (see `Config::link_authenticated_commits`); otherwise
        // (relayed, or certificates must verify) its signature decides.
        if !(self.config.link_authenticated_commits && from == m.replica) {
            commit.verify_with(&self.config.replica_keys)?;
        }
        let slot = self
            .log
            .slot_mut(m.sequence)
            .ok_or(Reject::OutsideWindow(m.sequence))?;
        if let Some(old) = slot.commits.get(&m.replica) {
            if old.message.view == m.view {
                if old.message.digest == m.digest {
                    return Err(Reject::Rule("duplicate commit"));
                }
                // An equivocating sender: count it, but keep the vote as evidence (see
                // `Slot::equivocal_commits`); a committed slot needs no more.
                if slot.committed.is_some()
                    || slot
                        .equivocal_commits
                        .get(&m.replica)
                        .is_some_and(|e| e.message == m)
                {
                    return Err(Reject::ConflictingVote(m.replica));
                }
                slot.equivocal_commits.insert(m.replica, commit);
                self.stats.votes_conflicting += 1;
                return self.check_progress(m.sequence, out);
            }
        }
        slot.commits.insert(m.replica, commit);
        self.check_progress(m.sequence, out)
    }

    /// Bounds and client signatures of a batch from the primary (TOCS §4.2: backups check
    /// the requests too), in one batch check, except for requests this replica already
    /// admitted with identical bytes.
    fn check_client_signatures(&self, batch: &Batch) -> Result<(), Reject> {
        batch.check_bounds()?;
        verify_all(
            batch
                .requests
                .iter()
                .filter(|r| !self.clients.holds_identical(r)),
            &self.config.client_keys,
        )?;
        Ok(())
    }

    /// Moves a slot along: prepared (pre-prepare + 2f matching prepares, TOCS §4.2)
    /// sends a commit; 2f+1 matching commits yield the ORDER certificate.
    pub(super) fn check_progress(
        &mut self,
        sequence: Sequence,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        if self.status == Status::Normal {
            self.check_prepared(sequence, out)?;
        }
        if let Some(view) = self.check_committed(sequence) {
            self.rejoin(view, out);
        }
        self.try_deliver(out);
        Ok(())
    }

    fn check_prepared(&mut self, sequence: Sequence, out: &mut Vec<Output>) -> Result<(), Reject> {
        let f = self.config.f;
        let me = self.config.id;
        let Some(slot) = self.log.get(sequence) else {
            return Ok(());
        };
        let Some((view, digest)) = slot.accepted() else {
            return Ok(());
        };
        if slot.matching_prepares(self.config.primary(view)) < 2 * f {
            return Ok(());
        }
        let commit_sent_view = slot.commit_sent_view;
        if !self.pre_prepare_signature_holds(sequence) {
            return Ok(());
        }
        let commit = if commit_sent_view != Some(view) && self.may_vote() {
            Some(self.sign(Commit {
                view,
                sequence,
                digest,
                replica: me,
            })?)
        } else {
            None
        };
        let quiet = self.quiet.withholds(&self.config, view, sequence);
        let Some(slot) = self.log.slot_mut(sequence) else {
            return Ok(());
        };
        if slot.prepared.as_ref().is_none_or(|p| p.message.view < view) {
            slot.prepared = slot.pre_prepare.clone();
        }
        if let Some(commit) = commit {
            slot.commit_sent_view = Some(view);
            slot.commits.insert(me, commit.clone());
            if quiet {
                self.withhold_vote(sequence);
            } else {
                out.push(Output::Broadcast(AgreementMessage::Commit(commit)));
            }
        }
        Ok(())
    }

    /// Whether the accepted pre-prepare at `sequence` is known to carry the primary's
    /// signature, checking it now if it came unchecked over the primary's link.
    ///
    /// Why a backup may prepare first and check later (TOCS §3.2): a prepare is a vote
    /// its receivers consume and never forward, and the primary's link authenticates
    /// what the vote is about; one prepare per sequence and view, checked or not, keeps
    /// two digests from preparing in one view. What is forwarded is the pre-prepare
    /// itself, as the `P` entry of a view change, and it must convince others: so it is
    /// checked before this replica commits (a committed batch's 2f+1 commits include
    /// f+1 correct replicas, each holding a checked `P` entry for it, which is what the
    /// new-view decision needs, TOCS §4.5.2) and before it enters `Q`. The check runs
    /// after the prepare has left ([`Input::CheckDeferred`]), while the other backups'
    /// prepares are on their way, or here if they came first.
    ///
    /// A signature that fails proves the primary faulty (its own link carried it): the
    /// slot keeps the digest, so no other batch is accepted at this sequence in this
    /// view, but it never prepares here, and the replica moves to the next view.
    pub(super) fn pre_prepare_signature_holds(&mut self, sequence: Sequence) -> bool {
        self.unchecked.remove(&sequence);
        // `get` first: looking must not create a slot (`slot_mut` would).
        if self.log.get(sequence).is_none() {
            return false;
        }
        let keys = &self.config.replica_keys;
        let Some(slot) = self.log.slot_mut(sequence) else {
            return false;
        };
        let Some(pre_prepare) = &slot.pre_prepare else {
            return false;
        };
        if !slot.signature_unchecked {
            return !slot.forged;
        }
        if pre_prepare.verify_with(keys).is_ok() {
            slot.vouch_checked();
            return true;
        }
        let view = pre_prepare.message.view;
        slot.signature_unchecked = false;
        slot.forged = true;
        self.stats.pre_prepares_forged += 1;
        tracing::warn!(
            replica = self.config.id,
            view,
            sequence,
            "the primary's own link carried a pre-prepare with a bad signature: suspecting it"
        );
        if view == self.view {
            self.primary_forged = true;
        }
        false
    }

    /// [`Input::CheckDeferred`]: checks the signatures of the pre-prepares accepted
    /// over the primary's link, and moves their slots along.
    pub(super) fn check_deferred(&mut self, out: &mut Vec<Output>) -> Result<(), Reject> {
        for sequence in std::mem::take(&mut self.unchecked) {
            if self.pre_prepare_signature_holds(sequence) {
                self.check_progress(sequence, out)?;
            }
        }
        Ok(())
    }

    /// 2f+1 signed commits for one (view, sequence, digest) prove the order by
    /// themselves (they are exactly the certificate execution checks), so the slot is
    /// committed even if this replica missed the pre-prepare or prepares: it then only
    /// needs the body, which it fetches by digest. Safe because any two commit quorums
    /// for a sequence name the same digest, in any views (TOCS §4.2, §4.4 invariant).
    /// Returns the view of the certificate formed now, if one did.
    fn check_committed(&mut self, sequence: Sequence) -> Option<palisade_wire::agreement::View> {
        let quorum = self.config.quorum();
        let slot = self.log.get(sequence)?;
        if slot.committed.is_some() {
            return None;
        }
        let mut groups: std::collections::BTreeMap<
            (palisade_wire::agreement::View, Digest),
            Vec<Signed<Commit>>,
        > = std::collections::BTreeMap::new();
        for c in slot.commits.values().chain(slot.equivocal_commits.values()) {
            groups
                .entry((c.message.view, c.message.digest))
                .or_default()
                .push(c.clone());
        }
        let commits = groups.into_values().find(|g| g.len() >= quorum)?;
        let cert = order_certificate(&commits, &self.config);
        let view = cert.as_ref().map(|c| c.view);
        if let Some(slot) = self.log.slot_mut(sequence) {
            slot.committed = cert;
        }
        view
    }

    /// Delivers committed batches strictly in sequence order (TOCS §4.2: execution in
    /// order). A committed batch whose body this replica lacks is fetched first.
    pub(super) fn try_deliver(&mut self, out: &mut Vec<Output>) {
        loop {
            let next = self.last_delivered.saturating_add(1);
            // `get`, not `slot_mut`: looking must not create a slot.
            let Some(slot) = self.log.get(next) else {
                return;
            };
            let Some(cert) = slot.committed.clone() else {
                return;
            };
            let Some(batch) = slot.bodies.get(&cert.digest).cloned() else {
                let Some(slot) = self.log.slot_mut(next) else {
                    return;
                };
                if !slot.fetch_sent {
                    slot.fetch_sent = true;
                    out.push(Output::Broadcast(AgreementMessage::FetchBatch {
                        sequence: next,
                        digest: cert.digest,
                    }));
                }
                return;
            };
            for r in &batch.requests {
                self.clients
                    .mark_ordered(r.message.client, r.message.request_id);
            }
            if !batch.is_null() {
                self.delivered_timestamp = self.delivered_timestamp.max(batch.timestamp);
            }
            self.last_delivered = next;
            self.successive_view_changes = 0;
            self.progressed = true;
            self.stats.batches_delivered += 1;
            self.stats.requests_delivered += batch.requests.len() as u64;
            out.push(Output::Deliver {
                batch: OrderedBatch {
                    sequence: next,
                    batch,
                },
                certificate: neutral(cert),
            });
        }
    }

    pub(super) fn on_fetch(
        &mut self,
        from: ReplicaId,
        sequence: Sequence,
        digest: Digest,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let batch = self
            .log
            .get(sequence)
            .and_then(|s| s.bodies.get(&digest))
            .cloned()
            .ok_or(Reject::Rule("fetch for a batch this replica does not hold"))?;
        out.push(Output::Send {
            to: from,
            message: AgreementMessage::BatchBody { sequence, batch },
        });
        Ok(())
    }

    /// A peer is behind: retransmit what lets it catch up, each piece verifiable on its
    /// own (TOCS §4.2 messages are signed): our stable checkpoint proof if it needs
    /// something we collected, then, for up to [`MAX_RETRANSMIT`] committed slots, the
    /// commit certificate and the body.
    fn on_status(&mut self, from: ReplicaId, their_last: Sequence, out: &mut Vec<Output>) {
        if their_last >= self.last_delivered || from == self.config.id {
            return;
        }
        let mut next = their_last.saturating_add(1);
        if next <= self.log.low() {
            let (_, _, proof) = self.checkpoints.stable();
            for c in proof {
                out.push(Output::Send {
                    to: from,
                    message: AgreementMessage::Checkpoint(c.clone()),
                });
            }
            next = self.log.low().saturating_add(1);
        }
        let end = self
            .last_delivered
            .min(next.saturating_add(MAX_RETRANSMIT - 1));
        for (sequence, slot) in self.log.range(next, end) {
            let Some(cert) = &slot.committed else {
                continue;
            };
            let Some(body) = slot.bodies.get(&cert.digest) else {
                continue;
            };
            for c in &cert.commits {
                out.push(Output::Send {
                    to: from,
                    message: AgreementMessage::Commit(c.clone()),
                });
            }
            out.push(Output::Send {
                to: from,
                message: AgreementMessage::BatchBody {
                    sequence: *sequence,
                    batch: body.clone(),
                },
            });
        }
    }

    pub(super) fn on_body(
        &mut self,
        sequence: Sequence,
        batch: Batch,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let digest = batch.digest()?;
        if self
            .awaiting
            .get(&sequence)
            .is_some_and(|(pp, _)| pp.message.digest == digest)
        {
            return self.on_awaited_body(sequence, batch, out);
        }
        let slot = self
            .log
            .get(sequence)
            .ok_or(Reject::OutsideWindow(sequence))?;
        let accepted = slot.accepted().map(|(_, d)| d) == Some(digest);
        let committed = slot.committed.as_ref().map(|c| c.digest) == Some(digest);
        if !(accepted || committed) {
            return Err(Reject::Rule("unsolicited batch body"));
        }
        if slot.bodies.contains_key(&digest) {
            return Err(Reject::Rule("duplicate batch body"));
        }
        self.check_client_signatures(&batch)?;
        for r in &batch.requests {
            self.clients
                .mark_proposed(r.message.client, r.message.request_id);
        }
        if let Some(slot) = self.log.slot_mut(sequence) {
            slot.add_body(digest, batch);
        }
        self.stats.batches_fetched += 1;
        self.check_progress(sequence, out)?;
        self.try_deliver(out);
        self.propose(false, out)
    }
}

/// When a pre-prepare's signature is checked ([`Replica::pre_prepare_signature_holds`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PrePrepareSignature {
    /// The caller checked it already.
    Checked,
    /// It came over the primary's own link: checked before this replica commits, not
    /// before it prepares.
    Deferred,
    /// Checked before anything else (a copy relayed by another replica).
    CheckNow,
}
