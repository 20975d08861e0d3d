//! [`SchemeKind::Blst`]: threshold BLS on BLS12-381 through `blsttc` (a maintained fork
//! of `threshold_crypto` on the `blst` library). Public keys in G1 (48 bytes compressed),
//! signatures in G2 (96 bytes compressed), hash-to-curve per the IETF BLS draft
//! (`BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_`). Party `i` holds the dealing
//! polynomial's value at `i + 1` (blsttc's convention).

use palisade_wire::firewall::{SignatureShare, ThresholdSignature};
use rand_chacha_03::rand_core::SeedableRng;

use crate::error::CryptoError;
use crate::threshold::{
    check_combine_input, PublicHeader, SchemeKind, ShareHeader, ThresholdSigner, ThresholdVerifier,
};
use crate::DealtKeys;

const PK: usize = blsttc::PK_SIZE;
const SK: usize = blsttc::SK_SIZE;
const SIG: usize = blsttc::SIG_SIZE;

/// Deal with `seed` (parameters already checked).
pub(crate) fn deal(g: usize, parties: usize, seed: [u8; 32]) -> Result<DealtKeys, CryptoError> {
    let mut rng = rand_chacha_03::ChaCha20Rng::from_seed(seed);
    let set = blsttc::SecretKeySet::try_random(g, &mut rng)
        .map_err(|_| CryptoError::BadParameters { g, parties })?;
    let public = PublicHeader::encode(SchemeKind::Blst, g, parties, &set.public_keys().to_bytes());
    let shares = (0..parties)
        .map(|i| {
            let mut sk = set.secret_key_share(i).to_bytes();
            let bytes = ShareHeader::encode(SchemeKind::Blst, i as u32, &sk);
            zeroize::Zeroize::zeroize(&mut sk);
            bytes
        })
        .collect();
    Ok(DealtKeys { public, shares })
}

/// The public key set, with every party's public key share precomputed.
#[derive(Debug)]
pub(crate) struct BlstVerifier {
    g: usize,
    set: blsttc::PublicKeySet,
    public_key: blsttc::PublicKey,
    shares: Vec<blsttc::PublicKeyShare>,
}

impl BlstVerifier {
    pub fn from_header(header: &PublicHeader<'_>) -> Result<BlstVerifier, CryptoError> {
        if header.body.len() != (header.g + 1) * PK {
            return Err(CryptoError::MalformedKey(
                "commitment length differs from (g+1) G1 points",
            ));
        }
        let set = blsttc::PublicKeySet::from_bytes(header.body.to_vec())
            .map_err(|_| CryptoError::MalformedKey("commitment point not in G1"))?;
        let shares = (0..header.parties)
            .map(|i| set.public_key_share(i))
            .collect();
        Ok(BlstVerifier {
            g: header.g,
            public_key: set.public_key(),
            set,
            shares,
        })
    }
}

/// Parse a share, accepting only the canonical encoding of its point (re-encoding gives
/// the same bytes), so a share or signature has exactly one accepted byte form.
fn parse_share(bytes: &[u8]) -> Option<blsttc::SignatureShare> {
    let arr: [u8; SIG] = bytes.try_into().ok()?;
    let share = blsttc::SignatureShare::from_bytes(arr).ok()?;
    (share.to_bytes() == arr).then_some(share)
}

impl ThresholdVerifier for BlstVerifier {
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
        match blsttc::Signature::from_bytes(arr) {
            // Only the canonical encoding: what crosses the firewall has one byte form.
            Ok(sig) if sig.to_bytes() == arr => self.public_key.verify(&sig, message),
            _ => false,
        }
    }
}

/// One party's secret share.
pub(crate) struct BlstSigner {
    index: u32,
    share: blsttc::SecretKeyShare,
}

impl std::fmt::Debug for BlstSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlstSigner")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl BlstSigner {
    pub fn from_headers(
        public: &PublicHeader<'_>,
        share: &ShareHeader<'_>,
    ) -> Result<BlstSigner, CryptoError> {
        let arr: [u8; SK] = share
            .body
            .try_into()
            .map_err(|_| CryptoError::MalformedKey("secret share is not 32 bytes"))?;
        let secret = blsttc::SecretKeyShare::from_bytes(arr)
            .map_err(|_| CryptoError::MalformedKey("secret share is not a scalar"))?;
        let verifier = BlstVerifier::from_header(public)?;
        let expected = verifier
            .shares
            .get(share.index as usize)
            .ok_or(CryptoError::UnknownSigner(share.index))?;
        if secret.public_key_share() != *expected {
            return Err(CryptoError::KeyMismatch(
                "secret share does not match the key set's commitment",
            ));
        }
        Ok(BlstSigner {
            index: share.index,
            share: secret,
        })
    }
}

impl ThresholdSigner for BlstSigner {
    fn index(&self) -> u32 {
        self.index
    }

    fn sign_share(&self, message: &[u8]) -> SignatureShare {
        SignatureShare(self.share.sign(message).to_bytes().to_vec())
    }
}
