//! View change and new view (TOCS §4.4–4.5), as steps of a [`Replica`].

use palisade_wire::agreement::{
    AgreementMessage, Batch, NewView, PrePrepare, PrePrepared, Prepare, Signed, View, ViewChange,
};

use super::{Replica, Status};
use crate::error::Reject;
use crate::io::{Output, TimerKind};
use crate::view_change::{plan_new_view, verify_quorum, verify_view_change, NewViewPlan};

impl Replica {
    /// Moves to view `target` and multicasts a view-change message for it.
    pub(super) fn start_view_change(
        &mut self,
        target: View,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        if target <= self.view {
            return Ok(());
        }
        self.view = target;
        self.status = Status::ViewChange;
        self.quiet.forget();
        self.new_view_message = None;
        self.peer_views.clear();
        self.early.retain(|(v, _), _| *v >= target);
        self.successive_view_changes = self.successive_view_changes.saturating_add(1);
        self.stats.view_changes_started += 1;
        if self.batcher.disarm() {
            out.push(Output::CancelTimer(TimerKind::Batch));
        }
        if std::mem::replace(&mut self.pacing, super::Pacing::Idle) == super::Pacing::Armed {
            out.push(Output::CancelTimer(TimerKind::Pacing));
        }
        if target <= self.vc_floor {
            // This replica rejoined a lower view after its view-change for `vc_floor`
            // found no support; peers keep only that (latest) message of ours, so a new
            // one for a view up to it would be refused. Follow the change without a
            // message of our own, and re-send the stored one when the view is reached
            // (it may have been lost).
            if target == self.vc_floor {
                if let Some(vc) = self.view_changes.latest_of(self.config.id) {
                    out.push(Output::Broadcast(AgreementMessage::ViewChange(vc.clone())));
                }
            }
            self.vc_timer_armed = true;
            out.push(Output::SetTimer {
                kind: TimerKind::ViewChange,
                after: self.timeout(),
            });
            return self.try_new_view(out);
        }
        self.vc_floor = target;
        let (stable_sequence, _, proof) = self.checkpoints.stable();
        let checkpoint_proof = proof.to_vec();
        let low = self.log.low();
        let above_low = || self.log.slots().filter(|(n, _)| **n > low);
        let prepared = above_low()
            .filter_map(|(_, s)| s.prepared.clone())
            .collect();
        let pre_prepared = above_low()
            .flat_map(|(n, s)| {
                s.pre_prepared
                    .iter()
                    .map(|(digest, (view, timestamp))| PrePrepared {
                        sequence: *n,
                        digest: *digest,
                        timestamp: *timestamp,
                        view: *view,
                    })
            })
            .collect();
        let vc = self.sign(ViewChange {
            new_view: target,
            stable_sequence,
            checkpoint_proof,
            prepared,
            pre_prepared,
            replica: self.config.id,
        })?;
        out.push(Output::Broadcast(AgreementMessage::ViewChange(vc.clone())));
        // Our own message is valid by construction; a stale stored one is replaced.
        let _ = self.view_changes.add(vc);
        // If no valid new-view arrives in time, move on with a doubled timeout.
        self.vc_timer_armed = true;
        out.push(Output::SetTimer {
            kind: TimerKind::ViewChange,
            after: self.timeout(),
        });
        tracing::info!(
            replica = self.config.id,
            view = target,
            "view change started"
        );
        self.try_new_view(out)
    }

    pub(super) fn on_view_change(
        &mut self,
        vc: Signed<ViewChange>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let new_view = vc.message.new_view;
        let relevant =
            new_view > self.view || (new_view == self.view && self.status == Status::ViewChange);
        if !relevant {
            return Err(Reject::WrongView {
                got: new_view,
                current: self.view,
            });
        }
        if !self.view_changes.is_newer(vc.message.replica, new_view) {
            return Err(Reject::Rule("stale or duplicate view-change"));
        }
        verify_view_change(&vc, &self.config)?;
        self.view_changes.add(vc)?;
        if let Some(target) =
            self.view_changes
                .smallest_supported_above(self.view, self.config.id, self.config.f)
        {
            return self.start_view_change(target, out);
        }
        self.try_new_view(out)
    }

    /// The primary of the view being changed to announces it once the view-change
    /// messages it holds (at least 2f+1) decide every sequence (TOCS §4.5.2); until then
    /// each new one is another chance.
    pub(super) fn try_new_view(&mut self, out: &mut Vec<Output>) -> Result<(), Reject> {
        if self.status != Status::ViewChange || !self.is_primary() || !self.may_vote() {
            return Ok(());
        }
        let vcs = self.view_changes.for_view(self.view);
        if vcs.len() < self.config.quorum() {
            return Ok(());
        }
        let Some(plan) = plan_new_view(&vcs, self.null_digest, self.config.f) else {
            self.stats.new_views_undecided += 1;
            tracing::debug!(
                replica = self.config.id,
                view = self.view,
                view_changes = vcs.len(),
                "view-changes decide not every sequence yet: waiting for more"
            );
            return Ok(());
        };
        let mut pre_prepares = Vec::with_capacity(plan.entries.len());
        for (sequence, digest, timestamp) in &plan.entries {
            pre_prepares.push(self.sign(PrePrepare {
                view: self.view,
                sequence: *sequence,
                timestamp: *timestamp,
                digest: *digest,
                primary: self.config.id,
            })?);
        }
        let new_view = self.sign(NewView {
            view: self.view,
            view_changes: vcs,
            pre_prepares: pre_prepares.clone(),
            primary: self.config.id,
        })?;
        out.push(Output::Broadcast(AgreementMessage::NewView(
            new_view.clone(),
        )));
        self.new_view_message = Some(new_view);
        self.install(plan, pre_prepares, out)
    }

    pub(super) fn on_new_view(
        &mut self,
        nv: Signed<NewView>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        let m = &nv.message;
        if m.view < self.view || (m.view == self.view && self.status == Status::Normal) {
            return Err(Reject::WrongView {
                got: m.view,
                current: self.view,
            });
        }
        if m.primary != self.config.primary(m.view) || m.primary == self.config.id {
            return Err(Reject::Rule("new-view not from the view's primary"));
        }
        nv.verify_with(&self.config.replica_keys)?;
        verify_quorum(&m.view_changes, m.view, &self.config)?;
        // Recompute O from V and demand exactly the primary's pre-prepares (TOCS §4.5.2).
        let plan = plan_new_view(&m.view_changes, self.null_digest, self.config.f).ok_or(
            Reject::Rule("new-view: its view-changes do not decide every sequence"),
        )?;
        if plan.entries.len() != m.pre_prepares.len() {
            return Err(Reject::Rule(
                "new-view: pre-prepares differ from the view-changes",
            ));
        }
        for ((sequence, digest, timestamp), pp) in plan.entries.iter().zip(&m.pre_prepares) {
            let expected = PrePrepare {
                view: m.view,
                sequence: *sequence,
                timestamp: *timestamp,
                digest: *digest,
                primary: m.primary,
            };
            if pp.message != expected {
                return Err(Reject::Rule(
                    "new-view: pre-prepares differ from the view-changes",
                ));
            }
            pp.verify_with(&self.config.replica_keys)?;
        }
        let pre_prepares = m.pre_prepares.clone();
        self.view = m.view;
        self.new_view_message = Some(nv);
        self.install(plan, pre_prepares, out)
    }

    /// Enters the new view: adopt the newest stable checkpoint, take the new view's
    /// pre-prepares as accepted (backups multicast prepares for them), and make the
    /// requests of lost proposals proposable again.
    pub(super) fn install(
        &mut self,
        plan: NewViewPlan,
        pre_prepares: Vec<Signed<PrePrepare>>,
        out: &mut Vec<Output>,
    ) -> Result<(), Reject> {
        self.stats.new_views_installed += 1;
        tracing::info!(
            replica = self.config.id,
            view = self.view,
            "new view installed"
        );
        if self.vc_timer_armed {
            self.vc_timer_armed = false;
            out.push(Output::CancelTimer(TimerKind::ViewChange));
        }
        if let Some((digest, proof)) = plan.checkpoint {
            if plan.min_s > self.log.low() {
                self.checkpoints.adopt(plan.min_s, digest, proof);
                self.on_stable(plan.min_s, out)?;
            }
        }
        let view = self.view;
        for (_, slot) in self.log.slots_mut() {
            slot.enter_view(view);
        }
        self.clients.reset_proposed();
        let max_s = plan.entries.last().map_or(plan.min_s, |e| e.0);
        self.next_sequence = max_s
            .max(self.log.low())
            .max(self.last_delivered)
            .max(self.execution_floor)
            .saturating_add(1);
        // Normal only now that the view's state is consistent: nothing above (the
        // checkpoint adoption in particular) may propose in a half-installed view.
        self.status = Status::Normal;
        // A replica following a view below its own view-change does not vote in it.
        let backup = !self.is_primary() && self.may_vote();
        let mut touched = Vec::new();
        for pp in pre_prepares {
            let (sequence, digest) = (pp.message.sequence, pp.message.digest);
            let prepare = backup.then_some(Prepare {
                view,
                sequence,
                digest,
                replica: self.config.id,
            });
            let null_digest = self.null_digest;
            let Some(slot) = self.log.slot_mut(sequence) else {
                continue;
            };
            // Backed by the new-view message this replica checked: vouched for.
            slot.accept(pp, true);
            if digest == null_digest {
                slot.add_body(digest, Batch::null());
            }
            let body = slot.bodies.get(&digest).cloned();
            if let Some(prepare) = prepare {
                slot.prepares.insert(self.config.id, prepare.clone());
                out.push(Output::Broadcast(AgreementMessage::Prepare(prepare)));
            }
            match body {
                Some(batch) => {
                    for r in &batch.requests {
                        self.clients
                            .mark_proposed(r.message.client, r.message.request_id);
                    }
                }
                None if sequence > self.last_delivered => {
                    slot.fetch_sent = true;
                    out.push(Output::Broadcast(AgreementMessage::FetchBatch {
                        sequence,
                        digest,
                    }));
                }
                None => {}
            }
            touched.push(sequence);
        }
        for sequence in touched {
            self.check_progress(sequence, out)?;
        }
        self.replay_early(out);
        self.propose(false, out)
    }

    /// A view change of this replica gathered no support, yet 2f+1 replicas committed
    /// a batch in the lower view `view`: they still run it (e.g. a faulty primary showed
    /// only this replica a different batch, so only it suspected the primary). Waiting
    /// for f+1 peers to follow would wait forever while the others make progress, so
    /// return to `view` (Castro's thesis §2.3.5 and TOCS §4.5.2 only make a replica
    /// *join* changes with f+1 support; they do not require it to stay alone in one).
    ///
    /// Safety: the view-change this replica sent for `vc_floor` may still be counted in
    /// that view's new-view, so it must stay truthful: in views below `vc_floor` this
    /// replica sends no prepare, commit or pre-prepare (`may_vote`) and only learns
    /// committed batches from 2f+1 commits (which are proof on their own, TOCS §4.2),
    /// fetching bodies by digest. It votes again once a view at or above `vc_floor` is
    /// installed.
    pub(super) fn rejoin(&mut self, view: View, out: &mut Vec<Output>) {
        if self.status != Status::ViewChange || view >= self.view {
            return;
        }
        let support = self
            .view_changes
            .support_at_or_above(self.view, self.config.id);
        if support > self.config.f {
            // A real view change is under way (at least one correct replica wants it).
            return;
        }
        tracing::info!(
            replica = self.config.id,
            from_view = self.view,
            view,
            "view change without support abandoned: rejoining the view 2f+1 replicas commit in"
        );
        self.stats.views_rejoined += 1;
        self.view = view;
        self.status = Status::Normal;
        self.peer_views.clear();
        self.new_view_message = None;
        for (_, slot) in self.log.slots_mut() {
            if slot
                .pre_prepare
                .as_ref()
                .is_some_and(|p| p.message.view != view)
            {
                slot.forget_pre_prepare();
            }
        }
        self.early.retain(|(v, _), _| *v > view);
        if self.vc_timer_armed {
            self.vc_timer_armed = false;
            out.push(Output::CancelTimer(TimerKind::ViewChange));
        }
    }

    /// The view part of a status message (Castro's thesis §5.2: status messages also
    /// tell a replica in another view what it missed). Unsigned, so it only triggers
    /// things that are safe whatever it says:
    /// - a peer in a LOWER view (e.g. restarted without a log) gets this view's new-view
    ///   message, which carries its own proof (2f+1 or more signed view-changes);
    /// - a peer in a HIGHER view (e.g. alone in a view change nobody supports) gets our
    ///   status, so it learns where the others are; a replica in a view change never
    ///   answers, so two replicas cannot keep answering each other;
    /// - when this replica is in an unsupported view change and 2f peers report one
    ///   lower view, it rejoins that view without voting (`rejoin`): without this, a
    ///   replica that suspected the primary alone while nothing is left to commit (so no
    ///   commit certificate can show it the others' view) stays in its view change
    ///   forever.
    pub(super) fn on_status_view(
        &mut self,
        from: palisade_wire::agreement::ReplicaId,
        view: View,
        out: &mut Vec<Output>,
    ) {
        if from == self.config.id {
            return;
        }
        if self.status == Status::Normal {
            if view < self.view {
                if let Some(nv) = self.new_view_message.as_ref() {
                    out.push(Output::Send {
                        to: from,
                        message: AgreementMessage::NewView(nv.clone()),
                    });
                }
            } else if view > self.view {
                out.push(Output::Send {
                    to: from,
                    message: AgreementMessage::Status {
                        view: self.view,
                        last_delivered: self.last_delivered,
                    },
                });
            }
            return;
        }
        // In a view change: remember where each peer says it is (one entry per replica).
        self.peer_views.insert(from, view);
        if view >= self.view {
            return;
        }
        let reporting = self.peer_views.values().filter(|v| **v == view).count();
        if reporting >= self.config.f.saturating_mul(2) {
            self.rejoin(view, out);
        }
    }

    /// A peer asks for the new-view message of `view` (a replica still changing to it
    /// asks with every status message, see `on_timer`): answered when it is our
    /// current, installed view.
    pub(super) fn on_fetch_new_view(
        &mut self,
        from: palisade_wire::agreement::ReplicaId,
        view: View,
        out: &mut Vec<Output>,
    ) {
        if self.status != Status::Normal || view != self.view || from == self.config.id {
            return;
        }
        if let Some(nv) = self.new_view_message.as_ref() {
            out.push(Output::Send {
                to: from,
                message: AgreementMessage::NewView(nv.clone()),
            });
        }
    }

    /// A peer votes in a view above ours while we think ours is current: we missed a
    /// view change (restarted without a log, or lost the new-view). Ask that peer once
    /// per view with a status message; a correct peer answers with the new-view message
    /// (`on_status_view`), which we verify like any other. The view number is not
    /// trusted for anything else, and one entry per peer bounds the memory.
    pub(super) fn ask_for_view(
        &mut self,
        from: palisade_wire::agreement::ReplicaId,
        view: View,
        out: &mut Vec<Output>,
    ) {
        if !self.should_ask_for_view(from, view) {
            return;
        }
        self.asked_views.insert(from, view);
        out.push(Output::Send {
            to: from,
            message: AgreementMessage::Status {
                view: self.view,
                last_delivered: self.last_delivered,
            },
        });
    }

    /// True if a verified vote of `view` from `from` should make us ask (see
    /// `ask_for_view`).
    pub(super) fn should_ask_for_view(
        &self,
        from: palisade_wire::agreement::ReplicaId,
        view: View,
    ) -> bool {
        self.status == Status::Normal
            && view > self.view
            && from != self.config.id
            && self
                .asked_views
                .get(&from)
                .is_none_or(|asked| *asked < view)
    }
}
