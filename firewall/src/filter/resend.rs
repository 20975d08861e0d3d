//! A reply asked for again from above: agreement relays a client's retransmission of a
//! request whose batch a stable checkpoint already collected everywhere (SOSP 2003 §4:
//! retransmissions are answered from the filters' bounded reply cache).
//!
//! Why it is needed: a certified reply lost on its last hop (from the top row to the
//! agreement nodes, or from them to the gateway) after the batch was collected can be
//! re-sent by nothing else. Agreement's delivery log and the filters' logs no longer
//! hold the order, and the execution replicas re-send only for a re-delivered order.
//! (`palisade-sim --seed 1002 --scenario firewall-chaos`: every copy of one reply to the
//! agreement nodes was lost in a partition.)
//!
//! What crosses: a reply from this filter's cache, which is only ever a certified reply
//! this filter already forwarded up once, and only to the asker. Bounded: at most
//! [`MAX_RESENDS_PER_INTERVAL`] answers per peer above per `retransmit_interval`.

use palisade_wire::agreement::ClientId;
use palisade_wire::envelope::Envelope;
use palisade_wire::firewall::FirewallMessage;

use super::Filter;
use crate::io::FilterOutput;
use crate::stats::reason;

/// Most replies re-sent to one peer above per `retransmit_interval`: a gateway's window
/// of requests retransmitted at once.
pub const MAX_RESENDS_PER_INTERVAL: u32 = 64;

impl Filter {
    pub(super) fn on_resend(
        &mut self,
        from: u32,
        client: ClientId,
        request_id: u64,
        out: &mut Vec<FilterOutput>,
    ) {
        let now = self.now;
        let (since, used) = self
            .resends_answered
            .get(&from)
            .copied()
            .unwrap_or((now, 0));
        let (since, used) = if self.due(Some(since)) {
            (now, 0)
        } else {
            (since, used)
        };
        if used >= MAX_RESENDS_PER_INTERVAL {
            return self.refuse(reason::RESEND_RATE_LIMITED, from, None);
        }
        let Some(reply) = self.cache.get(&(client, request_id)).cloned() else {
            return self.refuse(reason::NOT_CACHED, from, None);
        };
        self.resends_answered.insert(from, (since, used + 1));
        self.stats.replies_resent_on_request += 1;
        out.push(FilterOutput::ToAbove {
            to: Some(from),
            envelope: Envelope::Firewall(FirewallMessage::CertifiedReply(reply)),
        });
    }
}
