#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Sealed bodies: round trips, determinism of reply sealing, and refusal of anything
//! tampered, truncated or opened under the wrong header or key.

use palisade_crypto::{BodyKey, CryptoError};

fn key(b: u8) -> BodyKey {
    BodyKey::from_bytes([b; 32]).unwrap()
}

#[test]
fn requests_round_trip_with_fresh_nonces() {
    let k = key(1);
    let mut rng = rand::rng();
    for len in [0usize, 1, 15, 16, 17, 4096, 100_000] {
        let pt: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
        let a = k.seal_request(9, &pt, &mut rng);
        let b = k.seal_request(9, &pt, &mut rng);
        assert_eq!(a.len(), pt.len() + 28);
        assert_ne!(a, b, "random nonces");
        assert_eq!(k.open_request(9, &a).unwrap(), pt);
        assert_eq!(k.open_request(9, &b).unwrap(), pt);
        // A short ciphertext equals its plaintext by chance (one byte: 1 in 256, which
        // CI hit once); from 16 bytes on, the chance is 2^-128.
        if len >= 16 {
            assert_ne!(&a[12..12 + len], &pt[..], "the body is encrypted");
        }
    }
}

#[test]
fn replies_are_deterministic_and_round_trip() {
    let k = key(2);
    let pt = b"READ reply: 4 KiB of file data".repeat(100);
    let a = k.seal_reply(17, 3, 44, &pt);
    // Another replica with the same key seals the same bytes.
    let b = BodyKey::from_bytes(k.to_bytes())
        .unwrap()
        .seal_reply(17, 3, 44, &pt);
    assert_eq!(a, b);
    assert_eq!(a.len(), pt.len() + 16);
    assert_eq!(k.open_reply(17, 3, 44, &a).unwrap(), pt);
    // Any header field changes the ciphertext.
    assert_ne!(k.seal_reply(18, 3, 44, &pt), a);
    assert_ne!(k.seal_reply(17, 4, 44, &pt), a);
    assert_ne!(k.seal_reply(17, 3, 45, &pt), a);
    assert_eq!(
        k.open_reply(1, 1, 1, &k.seal_reply(1, 1, 1, &[])).unwrap(),
        b""
    );
}

#[test]
fn wrong_header_wrong_key_or_tampering_fails() {
    let k = key(3);
    let mut rng = rand::rng();
    let req = k.seal_request(5, b"CREATE /a", &mut rng);
    assert_eq!(k.open_request(6, &req), Err(CryptoError::OpenFailed));
    assert_eq!(key(4).open_request(5, &req), Err(CryptoError::OpenFailed));
    for i in 0..req.len() {
        let mut t = req.clone();
        t[i] ^= 0x10;
        assert_eq!(
            k.open_request(5, &t),
            Err(CryptoError::OpenFailed),
            "byte {i}"
        );
    }
    assert!(k.open_request(5, &req[..req.len() - 1]).is_err());
    assert_eq!(
        k.open_request(5, &req[..27]),
        Err(CryptoError::SealedTooShort(27))
    );
    assert_eq!(k.open_request(5, &[]), Err(CryptoError::SealedTooShort(0)));

    let rep = k.seal_reply(10, 5, 77, b"attrs");
    assert_eq!(k.open_reply(11, 5, 77, &rep), Err(CryptoError::OpenFailed));
    assert_eq!(k.open_reply(10, 6, 77, &rep), Err(CryptoError::OpenFailed));
    assert_eq!(k.open_reply(10, 5, 78, &rep), Err(CryptoError::OpenFailed));
    assert_eq!(
        key(4).open_reply(10, 5, 77, &rep),
        Err(CryptoError::OpenFailed)
    );
    for i in 0..rep.len() {
        let mut t = rep.clone();
        t[i] ^= 0x01;
        assert_eq!(k.open_reply(10, 5, 77, &t), Err(CryptoError::OpenFailed));
    }
    assert_eq!(
        k.open_reply(10, 5, 77, &rep[..15]),
        Err(CryptoError::SealedTooShort(15))
    );
}

#[test]
fn a_request_never_opens_as_a_reply_or_the_other_way_round() {
    let k = key(5);
    let rep = k.seal_reply(1, 2, 3, b"same bytes");
    let mut req = vec![0u8; 12];
    req.extend_from_slice(&rep);
    assert!(k.open_request(2, &req).is_err());
    let req = k.seal_request(2, b"same bytes", &mut rand::rng());
    assert!(k.open_reply(1, 2, 3, &req[12..]).is_err());
}

#[test]
fn keys_keep_their_bytes_and_hide_them_from_debug() {
    let k = BodyKey::generate(&mut rand::rng()).unwrap();
    let k2 = BodyKey::generate(&mut rand::rng()).unwrap();
    assert_ne!(k.to_bytes(), k2.to_bytes());
    assert_eq!(
        BodyKey::from_bytes(k.to_bytes()).unwrap().to_bytes(),
        k.to_bytes()
    );
    let dbg = format!("{k:?}");
    assert_eq!(dbg, "BodyKey(..)");
    let ct = k.seal_reply(1, 1, 1, b"x");
    assert_eq!(k.clone().open_reply(1, 1, 1, &ct).unwrap(), b"x");
}

/// The bytes are RFC 8452's AES-256-GCM-SIV under the documented subkeys, nonces and
/// associated data: checked against the RustCrypto implementation (which sealed bodies
/// before AWS-LC's), so a change of library cannot change what replicas sign or open.
#[test]
fn bodies_are_rfc_8452_bytes_under_the_documented_subkeys() {
    use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
    use aes_gcm_siv::{Aes256GcmSiv, Nonce};
    let master = [9u8; 32];
    let k = key(9);
    let subkey = |context: &str| Aes256GcmSiv::new(&blake3::derive_key(context, &master).into());
    let request = subkey("palisade 2025 body key: request sealing (AES-256-GCM-SIV)");
    let reply = subkey("palisade 2025 body key: reply sealing (AES-256-GCM-SIV)");
    let nonce_key = blake3::derive_key("palisade 2025 body key: reply nonce derivation", &master);
    let mut rng = rand::rng();
    for len in [0usize, 1, 16, 17, 4096, 1 << 20] {
        let pt: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let (sequence, client, request_id) = (70u64, 4u64, 900u64 + len as u64);

        let mut aad = b"palisade/seal/reply\0".to_vec();
        for v in [sequence, client, request_id] {
            aad.extend_from_slice(&v.to_le_bytes());
        }
        let mut h = blake3::Hasher::new_keyed(&nonce_key);
        for v in [sequence, client, request_id] {
            h.update(&v.to_le_bytes());
        }
        let nonce: [u8; 12] = h.finalize().as_bytes()[..12].try_into().unwrap();
        let mut expected = pt.clone();
        let tag = reply
            .encrypt_in_place_detached(&Nonce::from(nonce), &aad, &mut expected)
            .unwrap();
        expected.extend_from_slice(&tag);
        assert_eq!(k.seal_reply(sequence, client, request_id, &pt), expected);

        // A request sealed by the other implementation opens here, and the other way round.
        let mut aad = b"palisade/seal/request\0".to_vec();
        aad.extend_from_slice(&client.to_le_bytes());
        let mut sealed = vec![5u8; 12];
        let mut body = pt.clone();
        let tag = request
            .encrypt_in_place_detached(&Nonce::from([5u8; 12]), &aad, &mut body)
            .unwrap();
        sealed.extend_from_slice(&body);
        sealed.extend_from_slice(&tag);
        assert_eq!(k.open_request(client, &sealed).unwrap(), pt);
        let ours = k.seal_request(client, &pt, &mut rng);
        let (n, rest) = ours.split_at(12);
        let (ct, t) = rest.split_at(rest.len() - 16);
        let mut opened = ct.to_vec();
        request
            .decrypt_in_place_detached(
                Nonce::from_slice(n),
                &aad,
                &mut opened,
                aes_gcm_siv::Tag::from_slice(t),
            )
            .unwrap();
        assert_eq!(opened, pt);
    }
}

/// A read-only reply is sealed under its own label and apart from the sequence it was
/// read at: it never shares a nonce or opens as an ordered reply, and the reverse.
#[test]
fn read_only_replies_are_deterministic_and_apart_from_ordered_ones() {
    let k = key(5);
    let pt = b"GETATTR reply".to_vec();
    let read = k.seal_read_reply(3, 44, &pt);
    let again = BodyKey::from_bytes(k.to_bytes())
        .unwrap()
        .seal_read_reply(3, 44, &pt);
    assert_eq!(read, again, "every correct replica seals the same bytes");
    assert_eq!(k.open_read_reply(3, 44, &read).unwrap(), pt);
    assert_ne!(k.seal_read_reply(3, 45, &pt), read);
    assert_ne!(k.seal_read_reply(4, 44, &pt), read);
    for sequence in [0, 17] {
        let ordered = k.seal_reply(sequence, 3, 44, &pt);
        assert_ne!(read, ordered);
        // Same plaintext, same request: another keystream (the nonce differs).
        assert_ne!(read[..pt.len()], ordered[..pt.len()]);
        assert_eq!(
            k.open_reply(sequence, 3, 44, &read),
            Err(CryptoError::OpenFailed)
        );
        assert_eq!(
            k.open_read_reply(3, 44, &ordered),
            Err(CryptoError::OpenFailed)
        );
    }
    assert_eq!(
        k.open_read_reply(3, 45, &read),
        Err(CryptoError::OpenFailed)
    );
}
