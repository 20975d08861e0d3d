//! [`SchemeKind::ThresholdCrypto`] (cargo feature `threshold-crypto`): threshold BLS on
//! BLS12-381 through the original `threshold_crypto` 0.4 (pairing 0.16, rand 0.7). Kept to
//! compare against `blsttc`; same structure (G1 keys, G2 signatures, party `i` at `i + 1`)
//! but its own hash to G2, so its signatures differ from the `Blst` scheme's.
//!
//! Scheme bytes: the public key set is its postcard encoding (a vector of g+1 compressed
//! G1 points, each checked on decoding); a secret share is the postcard encoding of its
//! scalar (through `SerdeSecret`, the crate's explicit opt-in to serialising secrets).

use palisade_wire::firewall::{SignatureShare, ThresholdSignature};
use rand_chacha_02::rand_core::SeedableRng;
use threshold_crypto::serde_impl::SerdeSecret;

use crate::error::CryptoError;
use crate::threshold::{
    check_combine_input, PublicHeader, SchemeKind, ShareHeader, ThresholdSigner, ThresholdVerifier,
};
use crate::DealtKeys;

const PK: usize = threshold_crypto::PK_SIZE;
const SIG: usize = threshold_crypto::SIG_SIZE;

/// Deal with `seed` (parameters already checked).
pub(crate) fn deal(g: usize, parties: usize, seed: [u8; 32]) -> Result<DealtKeys, CryptoError> {
    let mut rng = rand_chacha_02::ChaCha20Rng::from_seed(seed);
    let set = threshold_crypto::SecretKeySet::try_random(g, &mut rng)
        .map_err(|_| CryptoError::BadParameters { g, parties })?;
    let body = palisade_wire::encode(&set.public_keys())
        .map_err(|_| CryptoError::MalformedKey("public key set does not encode"))?;
    let public = PublicHeader::encode(SchemeKind::ThresholdCrypto, g, parties, &body);
    let shares = (0..parties)
        .map(|i| {
            let share = set.secret_key_share(i);
            let mut sk = palisade_wire::encode(&SerdeSecret(&share))
                .map_err(|_| CryptoError::MalformedKey("secret share does not encode"))?;
            let bytes = ShareHeader::encode(SchemeKind::ThresholdCrypto, i as u32, &sk);
            zeroize::Zeroize::zeroize(&mut sk);
            Ok(bytes)
        })
        .collect::<Result<Vec<_>, CryptoError>>()?;
    Ok(DealtKeys { public, shares })
}

/// Length of postcard's varint for `n`.
fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

#[derive(Debug)]
pub(crate) struct TcVerifier {
    g: usize,
    set: threshold_crypto::PublicKeySet,
    public_key: threshold_crypto::PublicKey,
    shares: Vec<threshold_crypto::PublicKeyShare>,
}

impl TcVerifier {
    pub fn from_header(header: &PublicHeader<'_>) -> Result<TcVerifier, CryptoError> {
        let points = header.g + 1;
        // Exactly g+1 points: the length pins the count, so the key set is never empty
        // (threshold_crypto indexes its first coefficient unchecked).
        if header.body.len() != varint_len(points) + points * PK {
            return Err(CryptoError::MalformedKey(
                "commitment length differs from (g+1) G1 points",
            ));
        }
        let set: threshold_crypto::PublicKeySet = palisade_wire::decode(header.body)
            .map_err(|_| CryptoError::MalformedKey("commitment point not in G1"))?;
        if set.threshold() != header.g {
            return Err(CryptoError::MalformedKey(
                "commitment degree differs from g",
            ));
        }
        let shares = (0..header.parties)
            .map(|i| set.public_key_share(i as u64))
            .collect();
        Ok(TcVerifier {
            g: header.g,
            public_key: set.public_key(),
            set,
            shares,
        })
    }
}

/// Parse a share, accepting only the canonical encoding of its point (re-encoding gives
/// the same bytes), so a share or signature has exactly one accepted byte form.
fn parse_share(bytes: &[u8]) -> Option<threshold_crypto::SignatureShare> {
    let arr: [u8; SIG] = bytes.try_into().ok()?;
    let share = threshold_crypto::SignatureShare::from_bytes(arr).ok()?;
    (share.to_bytes() == arr).then_some(share)
}

impl ThresholdVerifier for TcVerifier {
    fn threshold(&self) -> usize {
        self.g
    }

    fn parties(&self) -> usize {
        self.shares.len()
    }

    fn verify_share(&self, signer: u32, message: &[u8], share: &SignatureShare) -> bool {
        let Some(pk) = self.shares.get(signer as usize) else {
            return false;
        };
        match parse_share(&share.0) {
            Some(s) => pk.verify(&s, message),
            None => false,
        }
    }

    fn combine(&self, shares: &[(u32, SignatureShare)]) -> Result<ThresholdSignature, CryptoError> {
        check_combine_input(self.g, self.shares.len(), shares)?;
        let parsed = shares
            .iter()
            .map(|(i, s)| {
                parse_share(&s.0)
                    .map(|p| (*i as u64, p))
                    .ok_or(CryptoError::MalformedShare(*i))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sig = self
            .set
            .combine_signatures(parsed.iter().take(self.g + 1).map(|(i, s)| (*i, s)))
            .map_err(|_| CryptoError::BadSignature)?;
        Ok(ThresholdSignature(sig.to_bytes().to_vec()))
    }

    fn verify(&self, message: &[u8], signature: &ThresholdSignature) -> bool {
        let Ok(arr) = <[u8; SIG]>::try_from(signature.0.as_slice()) else {
            return false;
        };
        match threshold_crypto::Signature::from_bytes(arr) {
            // Only the canonical encoding: what crosses the firewall has one byte form.
            Ok(sig) if sig.to_bytes() == arr => self.public_key.verify(&sig, message),
            _ => false,
        }
    }
}

pub(crate) struct TcSigner {
    index: u32,
    share: threshold_crypto::SecretKeyShare,
}

impl std::fmt::Debug for TcSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcSigner")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl TcSigner {
    pub fn from_headers(
        public: &PublicHeader<'_>,
        share: &ShareHeader<'_>,
    ) -> Result<TcSigner, CryptoError> {
        let secret: SerdeSecret<threshold_crypto::SecretKeyShare> =
            palisade_wire::decode(share.body)
                .map_err(|_| CryptoError::MalformedKey("secret share is not a scalar"))?;
        let secret = secret.into_inner();
        let verifier = TcVerifier::from_header(public)?;
        let expected = verifier
            .shares
            .get(share.index as usize)
            .ok_or(CryptoError::UnknownSigner(share.index))?;
        if secret.public_key_share() != *expected {
            return Err(CryptoError::KeyMismatch(
                "secret share does not match the key set's commitment",
            ));
        }
        Ok(TcSigner {
            index: share.index,
            share: secret,
        })
    }
}

impl ThresholdSigner for TcSigner {
    fn index(&self) -> u32 {
        self.index
    }

    fn sign_share(&self, message: &[u8]) -> SignatureShare {
        SignatureShare(self.share.sign(message).to_bytes().to_vec())
    }
}
