//! Upper rows, upward (SOSP 2003 §4.2): a filter forwards a certified reply only for a
//! request it forwarded down, only with a valid combined threshold signature, and only
//! once; and a stable certificate only if it verifies and is newer than the last one.
//! Nothing a lower filter chooses crosses on its own say-so: every byte forwarded is
//! fixed by the execution cluster's unique threshold signature.

use palisade_crypto::{reply_root_of, verify_stable};
use palisade_wire::firewall::{reply_root_message, CertifiedReply, StableCertificate};

use super::Filter;
use crate::io::FilterOutput;
use crate::stats::reason;

impl Filter {
    pub(super) fn on_certified_reply(
        &mut self,
        from: u32,
        reply: CertifiedReply,
        out: &mut Vec<FilterOutput>,
    ) {
        let sequence = reply.sequence;
        let Some(slot) = self.log.get(sequence) else {
            return self.refuse(reason::NOT_OUTSTANDING, from, Some(sequence));
        };
        match slot
            .requests
            .get(&(reply.entry.client, reply.entry.request_id))
        {
            None => return self.refuse(reason::NEVER_REQUESTED, from, Some(sequence)),
            Some(true) => return self.refuse(reason::DUPLICATE_REPLY, from, Some(sequence)),
            Some(false) => {}
        }
        let root = match reply_root_of(&reply) {
            Ok(root) => root,
            Err(e) => {
                tracing::debug!(sequence, error = %e, "Merkle path refused");
                return self.refuse(reason::BAD_MERKLE_PATH, from, Some(sequence));
            }
        };
        // The signature is checked once per (sequence, root, signature), not per reply.
        if !slot.is_verified(&root, &reply.signature) {
            let message = reply_root_message(sequence, &root);
            if !self.config.verifier.verify(&message, &reply.signature) {
                return self.refuse(reason::BAD_REPLY_SIGNATURE, from, Some(sequence));
            }
            if let Some(slot) = self.log.get_mut(sequence) {
                slot.remember_verified(root, reply.signature.clone());
            }
        }
        self.forward_reply(reply, out);
    }

    pub(super) fn on_stable_certificate(
        &mut self,
        from: u32,
        certificate: StableCertificate,
        out: &mut Vec<FilterOutput>,
    ) {
        let sequence = certificate.sequence;
        if sequence <= self.last_stable {
            return self.refuse(reason::STALE_STABLE, from, Some(sequence));
        }
        if let Err(e) = verify_stable(self.config.verifier.as_ref(), &certificate) {
            tracing::debug!(sequence, error = %e, "stable certificate refused");
            return self.refuse(reason::BAD_STABLE, from, Some(sequence));
        }
        self.adopt_stable(certificate, out);
    }
}
