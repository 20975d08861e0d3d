#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Certified replies and stable certificates: cut one combined signature into per-reply
//! certificates, check them, refuse every tampering, and cache verified roots.

use palisade_crypto::*;
use palisade_wire::firewall::{
    reply_root_message, stable_message, CertifiedReply, ReplyEntry, StableCertificate,
    ThresholdSignature, MAX_SIGNATURE_BYTES,
};
use std::sync::Arc;

struct Cluster {
    verifier: Arc<dyn ThresholdVerifier>,
    signers: Vec<Arc<dyn ThresholdSigner>>,
}

fn cluster(seed: u8) -> Cluster {
    // The scheme deployments deal; certify.rs itself only sees the trait.
    let keys = deal_from_seed(DEFAULT_SCHEME, 1, 3, [seed; 32]).unwrap();
    Cluster {
        verifier: verifier_from_bytes(&keys.public).unwrap(),
        signers: (0..3)
            .map(|i| signer_from_bytes(&keys.public, i, &keys.shares[i as usize]).unwrap())
            .collect(),
    }
}

fn sign(c: &Cluster, message: &[u8], who: &[u32]) -> ThresholdSignature {
    let shares: Vec<_> = who
        .iter()
        .map(|&i| (i, c.signers[i as usize].sign_share(message)))
        .collect();
    c.verifier.combine(&shares).unwrap()
}

fn entries(n: u64) -> Vec<ReplyEntry> {
    (0..n)
        .map(|i| ReplyEntry {
            client: 10 + i % 2,
            request_id: 500 + i,
            body: format!("sealed reply {i}").into_bytes(),
        })
        .collect()
}

fn certified(c: &Cluster, sequence: u64, n: u64) -> Vec<CertifiedReply> {
    let e = entries(n);
    let sig = sign(c, &reply_root_message(sequence, &reply_root(&e)), &[0, 2]);
    certify_replies(sequence, &e, &sig)
}

#[test]
fn every_certified_reply_of_a_batch_verifies() {
    let c = cluster(1);
    for n in [1u64, 2, 3, 5, 8, 13] {
        let e = entries(n);
        let certs = certified(&c, 42, n);
        assert_eq!(certs.len(), n as usize);
        for (i, cert) in certs.iter().enumerate() {
            assert_eq!(cert.entry, e[i]);
            assert_eq!(cert.leaf_index, i as u32);
            assert_eq!(cert.leaf_count, n as u32);
            assert_eq!(cert.sequence, 42);
            let r = verify_certified_reply(c.verifier.as_ref(), cert).unwrap();
            assert_eq!(r, reply_root(&e));
            assert_eq!(reply_root_of(cert).unwrap(), r);
        }
    }
}

#[test]
fn tampered_certified_replies_fail() {
    let c = cluster(2);
    let certs = certified(&c, 7, 5);
    let v = c.verifier.as_ref();
    let base = certs[3].clone();
    let fails = |cert: CertifiedReply| verify_certified_reply(v, &cert).is_err();

    assert!(fails(CertifiedReply {
        sequence: 8,
        ..base.clone()
    }));
    let mut t = base.clone();
    t.entry.body.push(1);
    assert!(fails(t));
    let mut t = base.clone();
    t.entry.request_id += 1;
    assert!(fails(t));
    let mut t = base.clone();
    t.entry.client += 5;
    assert!(fails(t));
    assert!(fails(CertifiedReply {
        leaf_index: 2,
        ..base.clone()
    }));
    assert!(fails(CertifiedReply {
        leaf_count: 6,
        ..base.clone()
    }));
    assert!(fails(CertifiedReply {
        leaf_count: 8,
        ..base.clone()
    }));
    let mut t = base.clone();
    t.path[0].0[3] ^= 4;
    assert!(fails(t));
    let mut t = base.clone();
    t.path.pop();
    assert!(fails(t));
    let mut t = base.clone();
    t.signature.0[7] ^= 1;
    assert!(fails(t));
    // Another batch's signature on this batch's entries.
    let other = certified(&c, 9, 5);
    assert!(fails(CertifiedReply {
        signature: other[3].signature.clone(),
        ..base.clone()
    }));
    // Out-of-bounds shapes are refused before any hashing.
    assert!(matches!(
        verify_certified_reply(
            v,
            &CertifiedReply {
                leaf_count: 0,
                leaf_index: 0,
                ..base.clone()
            }
        ),
        Err(CryptoError::OutOfBounds(_))
    ));
    assert!(matches!(
        reply_root_of(&CertifiedReply {
            path: vec![base.path[0]; 17],
            ..base.clone()
        }),
        Err(CryptoError::OutOfBounds(_))
    ));
    assert!(matches!(
        reply_root_of(&CertifiedReply {
            signature: ThresholdSignature(vec![0; MAX_SIGNATURE_BYTES + 1]),
            ..base.clone()
        }),
        Err(CryptoError::OutOfBounds(_))
    ));
    // A valid path to the wrong root: path check passes, signature fails.
    let mut t = base.clone();
    t.signature = sign(&c, b"something else", &[1, 2]);
    assert!(reply_root_of(&t).is_ok());
    assert!(matches!(
        verify_certified_reply(v, &t),
        Err(CryptoError::BadSignature)
    ));
    // A key set from another dealing.
    let stranger = cluster(3);
    assert!(verify_certified_reply(stranger.verifier.as_ref(), &base).is_err());
    // And the original still verifies.
    assert!(verify_certified_reply(v, &base).is_ok());
}

#[test]
fn verified_roots_skip_the_signature_only_for_a_known_triple() {
    let c = cluster(4);
    let v = c.verifier.as_ref();
    let certs = certified(&c, 11, 4);
    let mut cache = VerifiedRoots::new(2);
    assert!(cache.is_empty());
    for cert in &certs {
        cache.verify(v, cert).unwrap();
    }
    assert_eq!(cache.len(), 1, "one batch, one triple");
    let root = reply_root_of(&certs[0]).unwrap();
    assert!(cache.contains(11, &root, &certs[0].signature));

    // `known` is consulted with the triple, and only after the path checks out.
    let mut asked = None;
    verify_certified_reply_with(v, &certs[1], |s, r, sig| {
        asked = Some((s, *r, sig.clone()));
        true
    })
    .unwrap();
    assert_eq!(asked, Some((11, root, certs[1].signature.clone())));
    // A tampered path leads to another root: `known` is asked about that root (which a
    // real cache does not hold), and a wrong shape never reaches `known` at all.
    let mut bad = certs[1].clone();
    bad.path[0].0[0] ^= 1;
    let mut asked_root = None;
    let _ = verify_certified_reply_with(v, &bad, |_, r, _| {
        asked_root = Some(*r);
        false
    });
    assert!(asked_root.is_some_and(|r| r != root));
    assert!(cache.verify(v, &bad).is_err());
    let mut short = certs[1].clone();
    short.path.pop();
    let mut called = false;
    assert!(verify_certified_reply_with(v, &short, |_, _, _| {
        called = true;
        true
    })
    .is_err());
    assert!(!called);
    let mut forged = certs[1].clone();
    forged.signature.0[0] ^= 1;
    assert!(cache.verify(v, &forged).is_err());
    assert_eq!(cache.len(), 1, "a failed check is not remembered");

    // Bounded: the oldest triple goes first.
    for seq in [12, 13] {
        for cert in certified(&c, seq, 2) {
            cache.verify(v, &cert).unwrap();
        }
    }
    assert_eq!(cache.len(), 2);
    assert!(!cache.contains(11, &root, &certs[0].signature));
}

#[test]
fn stable_certificates_verify_only_for_their_sequence() {
    let c = cluster(5);
    let v = c.verifier.as_ref();
    let cert = StableCertificate {
        sequence: 128,
        signature: sign(&c, &stable_message(128), &[1, 0]),
    };
    verify_stable(v, &cert).unwrap();
    assert!(verify_stable(
        v,
        &StableCertificate {
            sequence: 129,
            ..cert.clone()
        }
    )
    .is_err());
    // A reply-root signature is not a stable certificate (domain separation).
    let reply_sig = certified(&c, 128, 1)[0].signature.clone();
    assert!(verify_stable(
        v,
        &StableCertificate {
            sequence: 128,
            signature: reply_sig
        }
    )
    .is_err());
    assert!(matches!(
        verify_stable(
            v,
            &StableCertificate {
                sequence: 128,
                signature: ThresholdSignature(vec![1; MAX_SIGNATURE_BYTES + 1])
            }
        ),
        Err(CryptoError::OutOfBounds(_))
    ));
}

#[test]
fn certified_replies_are_identical_whichever_shares_signed() {
    let c = cluster(6);
    let e = entries(6);
    let msg = reply_root_message(3, &reply_root(&e));
    let a = certify_replies(3, &e, &sign(&c, &msg, &[0, 1]));
    let b = certify_replies(3, &e, &sign(&c, &msg, &[2, 1]));
    assert_eq!(a, b);
}
