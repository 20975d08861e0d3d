//! Request admission (TOCS §4.1 exactly-once semantics, generalised to many requests in
//! flight per client): a window of request ids per client, duplicate suppression, and the
//! bounded queue of admitted requests that are not yet ordered.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ed25519_dalek::VerifyingKey;
use palisade_wire::agreement::{ClientId, Request, Signature, Signed};
use palisade_wire::signature::SignatureBatch;

/// Why a request was not admitted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdmitError {
    #[error("request {1} of client {0} is already pending or ordered")]
    Duplicate(ClientId, u64),
    #[error("request {1} of client {0} is outside its window")]
    OutOfWindow(ClientId, u64),
    #[error("pending queue full")]
    QueueFull,
}

/// What a replica remembers per client: the highest id ordered, and which ids within a
/// window below it were ordered (ids further below count as ordered: they are replays).
#[derive(Debug, Default)]
struct ClientState {
    max_ordered: u64,
    ordered: BTreeSet<u64>,
}

#[derive(Debug)]
struct Pending {
    request: Signed<Request>,
    /// Set while the request sits in a batch proposed in the current view.
    proposed: bool,
    /// Whether its client signature was checked. A request that came over its own
    /// client's authenticated link is admitted unchecked (`admit_from_link`): the link
    /// already proves who sent it. It is checked only when it must convince someone
    /// else — before this replica proposes it as primary (`take_batch`) — or when it is
    /// about to make this replica suspect the primary (`drop_forged`).
    verified: bool,
}

/// Per-client windows plus the pending queue. Memory is bounded: at most window
/// remembered ids and window pending requests per known client, and at most
/// `max_pending` requests in all.
#[derive(Debug)]
pub struct ClientTable {
    window: u64,
    max_pending: usize,
    clients: BTreeMap<ClientId, ClientState>,
    pending: BTreeMap<(ClientId, u64), Pending>,
    /// Admission order of requests not proposed in the current view; stale keys are
    /// skipped lazily.
    queue: VecDeque<(ClientId, u64)>,
    /// Count and payload bytes of pending requests not proposed in this view, kept
    /// incrementally so that admission stays O(log n) per request.
    unproposed_count: usize,
    unproposed_bytes: usize,
}

impl ClientTable {
    pub fn new(window: u64, max_pending: usize) -> ClientTable {
        ClientTable {
            window,
            max_pending,
            clients: BTreeMap::new(),
            pending: BTreeMap::new(),
            queue: VecDeque::new(),
            unproposed_count: 0,
            unproposed_bytes: 0,
        }
    }

    /// True if `id` of `client` was ordered already (or is so old it must be a replay).
    pub fn is_ordered(&self, client: ClientId, id: u64) -> bool {
        match self.clients.get(&client) {
            Some(st) => {
                id <= st.max_ordered.saturating_sub(self.window) || st.ordered.contains(&id)
            }
            None => false,
        }
    }

    /// Admits a request whose signature was already checked.
    pub fn admit(&mut self, request: Signed<Request>) -> Result<(), AdmitError> {
        self.admit_checked(request, true)
    }

    /// Admits a request that arrived over the authenticated link of the client it names,
    /// without checking its signature (see `Pending::verified`).
    pub fn admit_from_link(&mut self, request: Signed<Request>) -> Result<(), AdmitError> {
        self.admit_checked(request, false)
    }

    fn admit_checked(
        &mut self,
        request: Signed<Request>,
        verified: bool,
    ) -> Result<(), AdmitError> {
        let (client, id) = (request.message.client, request.message.request_id);
        if id == 0 {
            return Err(AdmitError::OutOfWindow(client, id));
        }
        // Below the window (IPsec-style anti-replay, RFC 4303 §3.4.3): a replay.
        if self.is_ordered(client, id) || self.pending.contains_key(&(client, id)) {
            return Err(AdmitError::Duplicate(client, id));
        }
        // Any id above the window is admitted: a restarted client continues from a
        // larger base (ClientConfig::first_request_id), and the window slides up when
        // such a request is ordered (`mark_ordered`). What bounds memory is the number
        // of requests one client has pending: at most one window's worth.
        let in_flight = self
            .pending
            .range((client, 0)..=(client, u64::MAX))
            .take(usize::try_from(self.window).unwrap_or(usize::MAX))
            .count() as u64;
        if in_flight >= self.window {
            return Err(AdmitError::OutOfWindow(client, id));
        }
        if self.pending.len() >= self.max_pending {
            return Err(AdmitError::QueueFull);
        }
        self.add_unproposed(request.message.payload.len());
        self.pending.insert(
            (client, id),
            Pending {
                request,
                proposed: false,
                verified,
            },
        );
        self.queue.push_back((client, id));
        Ok(())
    }

    /// Records that a request was ordered (delivered): it leaves the queue for good.
    pub fn mark_ordered(&mut self, client: ClientId, id: u64) {
        if let Some(p) = self.pending.remove(&(client, id)) {
            if !p.proposed {
                self.sub_unproposed(p.request.message.payload.len());
            }
        }
        let window = self.window;
        let st = self.clients.entry(client).or_default();
        st.ordered.insert(id);
        if id > st.max_ordered {
            st.max_ordered = id;
            let floor = st.max_ordered.saturating_sub(window);
            // The window slides: ids at or below the floor count as ordered without
            // being stored. Every replica slides at the same point of the order, so all
            // agree on what a later batch may contain.
            st.ordered = st.ordered.split_off(&floor.saturating_add(1));
            // Requests of an earlier incarnation of the client still pending below the
            // floor can never be ordered now (backups would refuse the batch): drop
            // them, the client abandoned them when it restarted.
            let stale: Vec<(ClientId, u64)> = self
                .pending
                .range((client, 0)..=(client, floor))
                .map(|(k, _)| *k)
                .collect();
            for key in stale {
                if let Some(p) = self.pending.remove(&key) {
                    if !p.proposed {
                        self.sub_unproposed(p.request.message.payload.len());
                    }
                }
            }
        }
    }

    /// Marks a request as proposed in the current view (it is in an accepted pre-prepare).
    pub fn mark_proposed(&mut self, client: ClientId, id: u64) {
        if let Some(p) = self.pending.get_mut(&(client, id)) {
            if !p.proposed {
                p.proposed = true;
                let len = p.request.message.payload.len();
                self.sub_unproposed(len);
            }
        }
    }

    /// A new view starts: proposals of the old view may be lost, so every pending
    /// request becomes proposable again, in admission order.
    pub fn reset_proposed(&mut self) {
        self.queue.clear();
        self.unproposed_count = 0;
        self.unproposed_bytes = 0;
        for (key, p) in self.pending.iter_mut() {
            p.proposed = false;
            self.queue.push_back(*key);
            self.unproposed_count += 1;
            self.unproposed_bytes = self
                .unproposed_bytes
                .saturating_add(p.request.message.payload.len());
        }
    }

    /// After a state transfer this replica cannot tell which pending requests were
    /// ordered in the batches it skipped, so it forgets them all; a client whose request
    /// was not executed retransmits it (and execution answers duplicates from its reply
    /// cache). Without this the stale entries would keep the request timer running.
    pub fn clear_pending(&mut self) {
        self.pending.clear();
        self.queue.clear();
        self.unproposed_count = 0;
        self.unproposed_bytes = 0;
    }

    /// True if exactly this signed request is pending: its signature was checked on
    /// admission, so a batch carrying it need not check it again.
    pub fn holds_identical(&self, request: &Signed<Request>) -> bool {
        self.pending
            .get(&(request.message.client, request.message.request_id))
            .is_some_and(|p| identical(&p.request, request))
    }

    /// The pending request a pre-prepare names by client, id and signature
    /// ([`palisade_wire::agreement::BatchEntry::Named`]). Equal signatures do not prove
    /// equal bytes here (a request admitted from its client's link is not checked yet):
    /// the caller checks the batch it rebuilds against the pre-prepare's digest.
    pub fn named(
        &self,
        client: ClientId,
        id: u64,
        signature: &Signature,
    ) -> Option<&Signed<Request>> {
        self.pending
            .get(&(client, id))
            .map(|p| &p.request)
            .filter(|r| r.signature == *signature)
    }

    fn add_unproposed(&mut self, len: usize) {
        self.unproposed_count += 1;
        self.unproposed_bytes = self.unproposed_bytes.saturating_add(len);
    }

    fn sub_unproposed(&mut self, len: usize) {
        self.unproposed_count = self.unproposed_count.saturating_sub(1);
        self.unproposed_bytes = self.unproposed_bytes.saturating_sub(len);
    }

    /// Requests admitted but not yet ordered.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Takes up to `max_requests` unproposed requests, stopping before `max_bytes` of
    /// payload is exceeded (but always taking at least one), and marks them proposed.
    /// The next batch to propose, in admission order, bounded by `max_requests` and
    /// `max_bytes` (one oversized request still goes alone). Requests not yet verified
    /// are checked against `client_keys` first: a correct primary proposes only
    /// requests whose signatures hold (TOCS §4.2), which is what lets backups that hold
    /// the identical bytes skip the check. Returns the batch and how many pending
    /// requests were dropped for a bad signature.
    pub fn take_batch(
        &mut self,
        max_requests: usize,
        max_bytes: usize,
        client_keys: &[VerifyingKey],
    ) -> (Vec<Signed<Request>>, usize) {
        let mut forged = self.verify_next(max_requests, client_keys);
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        while batch.len() < max_requests {
            let Some(key) = self.queue.front().copied() else {
                break;
            };
            let Some(p) = self.pending.get_mut(&key) else {
                self.queue.pop_front();
                continue;
            };
            if p.proposed {
                self.queue.pop_front();
                continue;
            }
            if !p.verified {
                if p.request.verify_with(client_keys).is_err() {
                    self.queue.pop_front();
                    self.remove_pending(key);
                    forged += 1;
                    continue;
                }
                p.verified = true;
            }
            let size = p.request.message.payload.len();
            if !batch.is_empty() && bytes.saturating_add(size) > max_bytes {
                break;
            }
            self.queue.pop_front();
            p.proposed = true;
            bytes = bytes.saturating_add(size);
            batch.push(p.request.clone());
            self.sub_unproposed(size);
        }
        (batch, forged)
    }

    /// Checks every pending request admitted unchecked and drops those whose signature
    /// does not hold; returns how many were dropped. A backup calls this before its
    /// request timer makes it suspect the primary: a correct primary never proposes a
    /// forged request, so such a request must not count as one the primary ignores.
    pub fn drop_forged(&mut self, client_keys: &[VerifyingKey]) -> usize {
        let unchecked: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, p)| !p.verified)
            .map(|(key, _)| *key)
            .collect();
        self.verify_pending(unchecked, client_keys)
    }

    /// Checks, in one batch, the signatures of the unverified requests among the next
    /// `max_requests` unproposed ones in the queue, so that [`ClientTable::take_batch`]
    /// finds them checked (one by one they would cost about twice as much). Returns how
    /// many were forged and dropped.
    fn verify_next(&mut self, max_requests: usize, client_keys: &[VerifyingKey]) -> usize {
        let unchecked: Vec<_> = self
            .queue
            .iter()
            .filter_map(|key| self.pending.get(key).map(|p| (key, p)))
            .filter(|(_, p)| !p.proposed)
            .take(max_requests)
            .filter(|(_, p)| !p.verified)
            .map(|(key, _)| *key)
            .collect();
        self.verify_pending(unchecked, client_keys)
    }

    /// Checks the signatures of the pending requests `keys` in one batch: marks the good
    /// ones verified and drops the forged; returns how many were dropped.
    fn verify_pending(
        &mut self,
        keys: Vec<(ClientId, u64)>,
        client_keys: &[VerifyingKey],
    ) -> usize {
        let mut batch = SignatureBatch::new();
        let mut queued = Vec::with_capacity(keys.len());
        let mut forged = Vec::new();
        for key in keys {
            let Some(p) = self.pending.get(&key) else {
                continue;
            };
            match p.request.queue_with(client_keys, &mut batch) {
                Ok(()) => queued.push(key),
                Err(_) => forged.push(key),
            }
        }
        let failures = batch.failures();
        for (i, key) in queued.iter().enumerate() {
            if failures.binary_search(&i).is_ok() {
                forged.push(*key);
            } else if let Some(p) = self.pending.get_mut(key) {
                p.verified = true;
            }
        }
        for key in &forged {
            self.remove_pending(*key);
        }
        forged.len()
    }

    /// Removes one pending request (its queue entry is skipped lazily).
    fn remove_pending(&mut self, key: (ClientId, u64)) {
        if let Some(p) = self.pending.remove(&key) {
            if !p.proposed {
                self.sub_unproposed(p.request.message.payload.len());
            }
        }
    }

    /// Number and payload bytes of unproposed requests (to decide whether a batch is
    /// full).
    pub fn unproposed(&self) -> (usize, usize) {
        (self.unproposed_count, self.unproposed_bytes)
    }
}

/// `a == b`, without reading the payloads when they share one buffer (a rebuilt named
/// pre-prepare holds the very `Bytes` of the pending request; comparing a 1 MiB WRITE
/// with itself byte by byte was 1% of the CPU under sequential writes).
fn identical(a: &Signed<Request>, b: &Signed<Request>) -> bool {
    let (pa, pb) = (&a.message.payload, &b.message.payload);
    if pa.as_ptr() == pb.as_ptr() && pa.len() == pb.len() {
        a.signer == b.signer
            && a.signature == b.signature
            && a.message.client == b.message.client
            && a.message.request_id == b.message.request_id
    } else {
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::agreement::Signature;

    fn req(client: ClientId, id: u64, len: usize) -> Signed<Request> {
        Signed {
            signer: client,
            message: Request {
                client,
                request_id: id,
                payload: vec![0; len].into(),
            },
            signature: Signature([0; 64]),
        }
    }

    #[test]
    fn identical_requests_are_told_apart_whether_or_not_they_share_a_payload() {
        let a = req(1, 2, 64);
        // A clone shares the payload's buffer; a copy does not.
        let shared = a.clone();
        let mut copied = a.clone();
        copied.message.payload = a.message.payload.to_vec().into();
        assert!(identical(&a, &shared) && identical(&a, &copied));
        let mut other_signature = shared.clone();
        other_signature.signature = Signature([1; 64]);
        assert!(!identical(&a, &other_signature));
        let mut other_bytes = copied;
        other_bytes.message.payload = vec![1; 64].into();
        assert!(!identical(&a, &other_bytes));
        let mut other_id = shared;
        other_id.message.request_id = 3;
        assert!(!identical(&a, &other_id));
    }

    #[test]
    fn one_batch_check_keeps_the_good_link_requests_and_drops_the_forged() {
        use ed25519_dalek::SigningKey;
        let keys: Vec<SigningKey> = (0..2u8)
            .map(|i| SigningKey::from_bytes(&[i + 1; 32]))
            .collect();
        let public: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
        let signed = |client: usize, id: u64, by: usize| {
            let mut r = Signed::sign(
                &keys[by],
                Request {
                    client: client as u64,
                    request_id: id,
                    payload: vec![id as u8; 3].into(),
                },
            )
            .unwrap();
            r.signer = client as u64;
            r
        };
        let mut t = ClientTable::new(16, 100);
        // Client 0's ids 1..=6, every third signed with client 1's key; one of client 1.
        let mut expected = Vec::new();
        for id in 1..=6 {
            let forged = id % 3 == 0;
            let r = signed(0, id, usize::from(forged));
            if !forged {
                expected.push(r.clone());
            }
            t.admit_from_link(r).unwrap();
        }
        let other = signed(1, 1, 1);
        t.admit_from_link(other.clone()).unwrap();
        expected.push(other);
        // A batch of four: the forged one among the four candidates checked together (id
        // 3) is dropped and the batch filled from behind it, in admission order (id 5,
        // checked alone). Id 6 is found out with the next batch's candidates.
        let (batch, forged) = t.take_batch(4, 1 << 20, &public);
        assert_eq!(batch, expected[..4].to_vec());
        assert_eq!(forged, 1);
        let (rest, forged) = t.take_batch(4, 1 << 20, &public);
        assert_eq!(rest, expected[4..].to_vec());
        assert_eq!(forged, 1);
        assert_eq!(
            t.pending_len(),
            5,
            "proposed, not yet ordered; the forged are gone"
        );
    }

    #[test]
    fn window_duplicates_and_replays() {
        let mut t = ClientTable::new(4, 100);
        assert_eq!(t.admit(req(1, 0, 1)), Err(AdmitError::OutOfWindow(1, 0)));
        for id in 1..=4 {
            t.admit(req(1, id, 1)).unwrap();
        }
        // A window's worth pending: a fifth in-flight request is refused.
        assert_eq!(t.admit(req(1, 5, 1)), Err(AdmitError::OutOfWindow(1, 5)));
        assert_eq!(t.admit(req(1, 2, 1)), Err(AdmitError::Duplicate(1, 2)));
        for id in 1..=4 {
            t.mark_ordered(1, id);
        }
        assert_eq!(t.pending_len(), 0);
        assert_eq!(t.admit(req(1, 3, 1)), Err(AdmitError::Duplicate(1, 3)));
        t.admit(req(1, 8, 1)).unwrap();
        t.mark_ordered(1, 8);
        // 3 is now below the remembered window: a duplicate (a replay).
        assert_eq!(t.admit(req(1, 3, 1)), Err(AdmitError::Duplicate(1, 3)));
        assert!(t.is_ordered(1, 3));
        // 5..7 were never ordered and are still inside the window.
        t.admit(req(1, 6, 1)).unwrap();
        // Another client has its own window.
        t.admit(req(2, 1, 1)).unwrap();
    }

    #[test]
    fn an_id_far_above_the_window_slides_it_forward() {
        let mut t = ClientTable::new(4, 100);
        for id in 1..=3 {
            t.admit(req(1, id, 1)).unwrap();
        }
        t.mark_ordered(1, 1);
        // The client restarts with a clock-derived base: far above the window, admitted.
        let base = 1_700_000_000_000_000;
        t.admit(req(1, base, 1)).unwrap();
        t.admit(req(1, base + 1, 1)).unwrap();
        assert_eq!(t.pending_len(), 4);
        // Ordering it moves the window: everything below base - 4 counts as done, and
        // the old incarnation's pending 2 and 3 are dropped (they can never be ordered).
        t.mark_ordered(1, base);
        assert_eq!(t.pending_len(), 1);
        assert_eq!(t.unproposed(), (1, 1));
        for old in [1, 2, 3, 500, base - 4] {
            assert!(t.is_ordered(1, old), "{old}");
            assert_eq!(t.admit(req(1, old, 1)), Err(AdmitError::Duplicate(1, old)));
        }
        assert_eq!(
            t.admit(req(1, base, 1)),
            Err(AdmitError::Duplicate(1, base))
        );
        // Inside the new window: not ordered, still admissible.
        assert!(!t.is_ordered(1, base - 3));
        t.admit(req(1, base + 2, 1)).unwrap();
        assert_eq!(
            t.admit(req(1, base + 1, 1)),
            Err(AdmitError::Duplicate(1, base + 1))
        );
    }

    #[test]
    fn queue_is_bounded_and_batches_respect_limits() {
        let mut t = ClientTable::new(100, 3);
        t.admit(req(1, 1, 10)).unwrap();
        t.admit(req(1, 2, 10)).unwrap();
        t.admit(req(1, 3, 10)).unwrap();
        assert_eq!(t.admit(req(1, 4, 10)), Err(AdmitError::QueueFull));
        assert_eq!(t.unproposed(), (3, 30));
        let b = t.take_batch(10, 25, &[]).0;
        assert_eq!(b.len(), 2);
        assert_eq!(t.unproposed(), (1, 10));
        let b = t.take_batch(10, 1, &[]).0;
        assert_eq!(b.len(), 1, "one oversized request still goes alone");
        assert!(t.take_batch(10, 100, &[]).0.is_empty());
        t.reset_proposed();
        assert_eq!(t.unproposed(), (3, 30));
    }

    #[test]
    fn unproposed_counters_follow_every_transition() {
        let mut t = ClientTable::new(100, 100);
        for id in 1..=4 {
            t.admit(req(1, id, 10)).unwrap();
        }
        t.mark_proposed(1, 1);
        t.mark_proposed(1, 1);
        assert_eq!(t.unproposed(), (3, 30));
        t.mark_ordered(1, 2);
        t.mark_ordered(1, 1);
        assert_eq!(t.unproposed(), (2, 20));
        assert_eq!(t.pending_len(), 2);
        assert!(t.holds_identical(&req(1, 3, 10)));
        assert!(!t.holds_identical(&req(1, 3, 11)), "other bytes, same id");
        assert!(!t.holds_identical(&req(1, 1, 10)), "no longer pending");
        t.clear_pending();
        assert_eq!(t.unproposed(), (0, 0));
        assert_eq!(t.admit(req(1, 1, 1)), Err(AdmitError::Duplicate(1, 1)));
    }
}
