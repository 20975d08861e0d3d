//! Upper rows: the claims of one sequence's certified replies, and which are settled.
//!
//! A certified reply claims that `signature` is the execution cluster's threshold signature
//! on `root` at its sequence; a filter of an upper row forwards it only if that is true
//! (SOSP 2003 §4.2). Checking costs a pairing (about 1.4 ms on the benchmark machine,
//! docs/PERFORMANCE.md), and the row below checked the very same claim already. The row
//! below has h+1 filters and at most h of them are faulty, so a claim that *every* one of
//! them sent over its authenticated link was sent by a correct filter — and a correct filter
//! sends only true claims (it checked the signature, or, by this same rule, its whole row
//! below vouched for it). Such a claim is *vouched*: as good as checked, without a pairing.
//!
//! A claim only some of the row sent is held open for `vouch_wait`, its replies with it,
//! and then checked with a pairing as before: a silent or lying filter below costs a delay
//! and a pairing, never a wrong forward or a lost reply. A claim found false is remembered,
//! so a faulty filter repeating it costs no second pairing. Everything here is bounded:
//! a few claims per sequence (a correct cluster makes one), and held replies are charged to
//! the peer that sent them (the filter keeps the budget).

use std::collections::BTreeSet;
use std::time::Duration;

use palisade_wire::agreement::Digest;
use palisade_wire::firewall::{CertifiedReply, ThresholdSignature};

use crate::log::RequestKey;

/// Most claims per sequence in each state (verified, refused, open). One is the normal
/// case: a correct execution cluster certifies one root per batch.
pub(crate) const MAX_CLAIMS: usize = 4;

/// What a certified reply claims about its sequence: `signature` signs `root`.
pub(crate) type Claim = (Digest, ThresholdSignature);

/// A reply waiting for its claim to be settled, and the peer below it came from.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub from: u32,
    pub bytes: usize,
    pub reply: CertifiedReply,
}

/// A claim some, but not yet all, of the row below sent.
#[derive(Clone, Debug)]
pub(crate) struct OpenClaim {
    pub claim: Claim,
    /// The peers below that sent it.
    vouchers: BTreeSet<u32>,
    /// When it is checked with a pairing if not vouched for by then.
    pub deadline: Duration,
    /// Its replies, at most one per request.
    pub held: Vec<Held>,
}

/// How a claim stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Checked or vouched for: its replies may go up.
    Verified,
    /// Checked and false.
    Refused,
    /// Not settled.
    Unsettled,
}

/// What [`Claims::vouch`] made of one more voucher.
#[derive(Debug)]
pub(crate) enum Vouched {
    /// Every peer below has now sent the claim: it is verified, and these replies were
    /// waiting on it.
    Complete(Vec<Held>),
    /// Still open.
    Open,
    /// No room for another open claim: check it now.
    NoRoom,
}

/// What [`Claims::hold`] did with a reply.
#[derive(Debug)]
pub(crate) enum Hold {
    /// It waits on its claim (charge its bytes).
    Held,
    /// A copy of it waits already (this one is not kept).
    AlreadyHeld,
    /// Its claim is not open: here it is back (check it now).
    NotOpen(Held),
}

/// The claims of one sequence.
#[derive(Clone, Debug, Default)]
pub(crate) struct Claims {
    verified: Vec<Claim>,
    refused: Vec<Claim>,
    open: Vec<OpenClaim>,
}

impl Claims {
    pub fn standing(&self, root: &Digest, signature: &ThresholdSignature) -> Standing {
        let is = |c: &Claim| &c.0 == root && &c.1 == signature;
        if self.verified.iter().any(is) {
            Standing::Verified
        } else if self.refused.iter().any(is) {
            Standing::Refused
        } else {
            Standing::Unsettled
        }
    }

    /// Records the outcome of a pairing check (or of a vouch); returns the replies the
    /// claim held, to be forwarded (true) or dropped (false).
    pub fn settle(&mut self, claim: Claim, true_claim: bool) -> Vec<Held> {
        let held = match self.open.iter().position(|o| o.claim == claim) {
            Some(i) => self.open.remove(i).held,
            None => Vec::new(),
        };
        let list = if true_claim {
            &mut self.verified
        } else {
            &mut self.refused
        };
        if list.len() < MAX_CLAIMS && !list.contains(&claim) {
            list.push(claim);
        }
        held
    }

    /// Peer `from` below sent `claim`, one of `below` peers. Opens the claim (deadline
    /// `deadline`) if it is new and there is room.
    pub fn vouch(&mut self, claim: &Claim, from: u32, below: u32, deadline: Duration) -> Vouched {
        let i = match self.open.iter().position(|o| &o.claim == claim) {
            Some(i) => i,
            None if self.open.len() < MAX_CLAIMS => {
                self.open.push(OpenClaim {
                    claim: claim.clone(),
                    vouchers: BTreeSet::new(),
                    deadline,
                    held: Vec::new(),
                });
                self.open.len() - 1
            }
            None => return Vouched::NoRoom,
        };
        self.open[i].vouchers.insert(from);
        if self.open[i].vouchers.len() >= below as usize {
            return Vouched::Complete(self.settle(claim.clone(), true));
        }
        Vouched::Open
    }

    /// Holds `reply` under its open `claim`, unless a reply to the same request is held
    /// there already (then this copy is not needed: its voucher was counted).
    pub fn hold(&mut self, claim: &Claim, key: RequestKey, held: Held) -> Hold {
        let Some(open) = self.open.iter_mut().find(|o| &o.claim == claim) else {
            return Hold::NotOpen(held);
        };
        if open
            .held
            .iter()
            .any(|h| (h.reply.entry.client, h.reply.entry.request_id) == key)
        {
            return Hold::AlreadyHeld;
        }
        open.held.push(held);
        Hold::Held
    }

    /// Takes the open claims whose deadline is at or before `now`.
    pub fn take_due(&mut self, now: Duration) -> Vec<OpenClaim> {
        let (due, open) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|o| o.deadline <= now);
        self.open = open;
        due
    }

    /// Takes every open claim (the sequence is being collected).
    pub fn take_open(&mut self) -> Vec<OpenClaim> {
        std::mem::take(&mut self.open)
    }

    /// Whether any claim is open.
    pub fn has_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// The earliest deadline of an open claim.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.open.iter().map(|o| o.deadline).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::firewall::ReplyEntry;

    fn claim(n: u8) -> Claim {
        (Digest([n; 32]), ThresholdSignature(vec![n; 48]))
    }

    fn held(from: u32, request_id: u64) -> Held {
        Held {
            from,
            bytes: 10,
            reply: CertifiedReply {
                sequence: 1,
                entry: ReplyEntry {
                    client: 0,
                    request_id,
                    body: vec![],
                },
                leaf_index: 0,
                leaf_count: 1,
                path: vec![],
                signature: claim(1).1,
            },
        }
    }

    #[test]
    fn a_claim_every_peer_below_sent_is_verified_and_releases_its_replies() {
        let mut c = Claims::default();
        let at = Duration::from_millis(5);
        assert!(matches!(c.vouch(&claim(1), 0, 2, at), Vouched::Open));
        assert!(matches!(c.hold(&claim(1), (0, 1), held(0, 1)), Hold::Held));
        assert!(
            matches!(c.hold(&claim(1), (0, 1), held(0, 1)), Hold::AlreadyHeld),
            "one per request"
        );
        assert!(matches!(c.hold(&claim(1), (0, 2), held(0, 2)), Hold::Held));
        assert!(matches!(
            c.hold(&claim(2), (0, 3), held(0, 3)),
            Hold::NotOpen(h) if h.reply.entry.request_id == 3
        ));
        // The same peer again does not complete it.
        assert!(matches!(c.vouch(&claim(1), 0, 2, at), Vouched::Open));
        assert_eq!(c.next_deadline(), Some(at));
        assert_eq!(c.standing(&claim(1).0, &claim(1).1), Standing::Unsettled);
        let Vouched::Complete(released) = c.vouch(&claim(1), 1, 2, at) else {
            panic!("two of two peers sent it");
        };
        assert_eq!(released.len(), 2);
        assert_eq!(c.standing(&claim(1).0, &claim(1).1), Standing::Verified);
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn due_claims_are_taken_and_room_is_bounded() {
        let mut c = Claims::default();
        for n in 0..MAX_CLAIMS as u8 {
            let at = Duration::from_millis(u64::from(n));
            assert!(matches!(c.vouch(&claim(n), 0, 2, at), Vouched::Open));
        }
        assert!(matches!(
            c.vouch(&claim(99), 0, 2, Duration::ZERO),
            Vouched::NoRoom
        ));
        let due = c.take_due(Duration::from_millis(1));
        assert_eq!(due.len(), 2);
        assert_eq!(c.next_deadline(), Some(Duration::from_millis(2)));
        assert!(c.settle(claim(0), false).is_empty());
        assert_eq!(c.standing(&claim(0).0, &claim(0).1), Standing::Refused);
        assert_eq!(c.take_open().len(), 2);
        assert_eq!(c.next_deadline(), None);
    }
}
