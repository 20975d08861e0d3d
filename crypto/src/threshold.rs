//! Threshold signatures of the execution cluster (Yin et al., SOSP 2003, §4.2: replies
//! leave through the firewall only with g+1 execution replicas' agreement, combined into
//! one signature that a gateway checks against one public key).
//!
//! The two traits below are the whole seam: [`ThresholdSigner`] (an execution replica's
//! secret share) and [`ThresholdVerifier`] (the public key set, held by filters, agreement
//! nodes and gateways). Schemes sit behind them and are chosen by the first byte of the
//! key bytes ([`SchemeKind`]):
//!
//! - `BlsMinSig` ([`DEFAULT_SCHEME`]): BLS on BLS12-381 with signatures in G1 (48
//!   bytes) and keys in G2, directly over `blstrs`/`blst` — the fastest here on every
//!   operation (see `benches/threshold.rs`);
//! - `Blst`: BLS on BLS12-381 with signatures in G2 (96 bytes), through `blsttc`, a
//!   maintained fork of `threshold_crypto` on the `blst` library;
//! - `ThresholdCrypto` (cargo feature `threshold-crypto`): the original `threshold_crypto`
//!   0.4 (pairing 0.16), kept for comparison.
//!
//! All are BLS: a combined signature is σ = s·H(m) for the dealt master secret s, so it
//! is the same bytes whichever g+1 shares were interpolated to make it. That uniqueness
//! is what makes replies deterministic (DESIGN §1): a compromised replica cannot choose
//! bits of what leaves the firewall.
//!
//! # Key bytes
//!
//! Public key set: `tag (1) ‖ g (u32 LE) ‖ parties (u32 LE) ‖ scheme bytes`, where the
//! scheme bytes are the commitment to the dealing polynomial (g+1 compressed points: G2,
//! 96 bytes each, for `BlsMinSig`; G1, 48 bytes each, for the others).
//! Secret share: `tag (1) ‖ index (u32 LE) ‖ scheme bytes` (a 32-byte scalar).
//! Signature shares and combined signatures are the scheme's compressed point (G1, 48
//! bytes, for `BlsMinSig`; G2, 96 bytes, for the others), untagged: the verifier already
//! knows its scheme.

use std::sync::Arc;

use palisade_wire::firewall::{SignatureShare, ThresholdSignature};
use serde::{Deserialize, Serialize};

use crate::blst_scheme;
use crate::error::CryptoError;
use crate::minsig_scheme;

/// Most share holders a key set may have (the wire bound on replicas).
pub const MAX_PARTIES: usize = palisade_wire::agreement::MAX_REPLICAS;

/// Tag byte of [`SchemeKind::Blst`] keys.
pub(crate) const TAG_BLST: u8 = 1;
/// Tag byte of [`SchemeKind::ThresholdCrypto`] keys.
pub(crate) const TAG_THRESHOLD_CRYPTO: u8 = 2;
/// Tag byte of [`SchemeKind::BlsMinSig`] keys.
pub(crate) const TAG_BLS_MIN_SIG: u8 = 3;

/// The scheme new key sets should be dealt with (node keygen, the simulator): min-sig
/// BLS, faster than `blsttc` at signing, combining and verifying (measured side by side
/// in `benches/threshold.rs`). Key bytes carry their scheme, so key sets dealt with
/// another scheme keep working.
pub const DEFAULT_SCHEME: SchemeKind = SchemeKind::BlsMinSig;

/// Verifies shares and combined signatures of one dealt key set; combines shares.
pub trait ThresholdVerifier: Send + Sync + std::fmt::Debug {
    /// g: a signature needs g+1 shares.
    fn threshold(&self) -> usize;
    /// Number of share holders (2g+1 in a Palisade execution cluster).
    fn parties(&self) -> usize;
    /// Whether `share` is `signer`'s valid share on `message`. False for an unknown signer
    /// or bytes that do not parse.
    fn verify_share(&self, signer: u32, message: &[u8], share: &SignatureShare) -> bool;
    /// Combine exactly the given shares (caller passes >= g+1 from distinct signers; the
    /// first g+1 are interpolated, all are parsed and checked for distinct known signers).
    /// Does NOT verify the result; callers verify the combination (issue 4: combine first,
    /// verify the combination, only if that fails verify shares one by one).
    fn combine(&self, shares: &[(u32, SignatureShare)]) -> Result<ThresholdSignature, CryptoError>;
    /// Whether `signature` is the key set's signature on `message`.
    fn verify(&self, message: &[u8], signature: &ThresholdSignature) -> bool;
    /// Does ahead of time the part of checking a signature on `message` that does not
    /// depend on the signature, so that a [`verify`](Self::verify) of `message` soon after
    /// takes less time (a bottom filter holding the first share of a root, while it
    /// waits for the g others). Same answers either way; the latest few messages are
    /// kept. Nothing by default.
    fn prepare(&self, _message: &[u8]) {}
}

/// One share holder's secret share (an execution replica).
pub trait ThresholdSigner: Send + Sync + std::fmt::Debug {
    /// This holder's index in `0..parties`.
    fn index(&self) -> u32;
    /// Sign `message` with this share. Deterministic (BLS).
    fn sign_share(&self, message: &[u8]) -> SignatureShare;
}

/// Which threshold scheme a key set uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchemeKind {
    /// BLS12-381 through `blsttc` (on `blst`): signatures in G2, keys in G1.
    Blst,
    /// BLS12-381 through `threshold_crypto` 0.4. Only with cargo feature
    /// `threshold-crypto`; otherwise [`CryptoError::SchemeUnavailable`].
    ThresholdCrypto,
    /// BLS12-381, min-sig: signatures in G1 (48 bytes), keys in G2, over `blstrs`/`blst`
    /// with a Palisade hash-to-G1 tag. The [`DEFAULT_SCHEME`].
    BlsMinSig,
}

impl Default for SchemeKind {
    /// [`DEFAULT_SCHEME`].
    fn default() -> SchemeKind {
        DEFAULT_SCHEME
    }
}

impl SchemeKind {
    pub(crate) fn tag(self) -> u8 {
        match self {
            SchemeKind::Blst => TAG_BLST,
            SchemeKind::ThresholdCrypto => TAG_THRESHOLD_CRYPTO,
            SchemeKind::BlsMinSig => TAG_BLS_MIN_SIG,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Result<SchemeKind, CryptoError> {
        match tag {
            TAG_BLST => Ok(SchemeKind::Blst),
            TAG_THRESHOLD_CRYPTO => Ok(SchemeKind::ThresholdCrypto),
            TAG_BLS_MIN_SIG => Ok(SchemeKind::BlsMinSig),
            other => Err(CryptoError::UnknownScheme(other)),
        }
    }
}

/// Dealt keys: the public key set and one secret share per party (index = position), as
/// opaque bytes that carry their scheme (configs store them hex-encoded). `Debug` prints
/// no secret.
#[derive(Clone)]
pub struct DealtKeys {
    pub public: Vec<u8>,
    pub shares: Vec<Vec<u8>>,
}

impl std::fmt::Debug for DealtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DealtKeys")
            .field("public", &format_args!("{} bytes", self.public.len()))
            .field(
                "shares",
                &format_args!("{} secret shares", self.shares.len()),
            )
            .finish()
    }
}

/// Deal a fresh key set: any g+1 of `parties` shares sign. The caller's RNG must be a
/// cryptographically secure one (hence `CryptoRng`, rand 0.9; e.g. `rand::rng()`): 32
/// bytes drawn from it seed the dealing, exactly as [`deal_from_seed`] does, so one code
/// path deals both. The dealer sees the master secret; Palisade's `keygen` is trusted
/// (the 2003 prototype dealt keys the same way).
pub fn deal(
    kind: SchemeKind,
    g: usize,
    parties: usize,
    rng: &mut impl rand::CryptoRng,
) -> Result<DealtKeys, CryptoError> {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let keys = deal_from_seed(kind, g, parties, seed);
    zeroize::Zeroize::zeroize(&mut seed);
    keys
}

/// A deterministic dealer for tests and the simulator: the same seed gives the same keys.
/// Never use a guessable seed for a real deployment.
pub fn deal_from_seed(
    kind: SchemeKind,
    g: usize,
    parties: usize,
    seed: [u8; 32],
) -> Result<DealtKeys, CryptoError> {
    check_parameters(g, parties)?;
    match kind {
        SchemeKind::Blst => blst_scheme::deal(g, parties, seed),
        SchemeKind::BlsMinSig => minsig_scheme::deal(g, parties, seed),
        #[cfg(feature = "threshold-crypto")]
        SchemeKind::ThresholdCrypto => crate::tc_scheme::deal(g, parties, seed),
        #[cfg(not(feature = "threshold-crypto"))]
        SchemeKind::ThresholdCrypto => Err(CryptoError::SchemeUnavailable(kind)),
    }
}

/// The scheme a public key set (or secret share) belongs to, from its tag byte.
pub fn scheme_of(key: &[u8]) -> Result<SchemeKind, CryptoError> {
    let tag = key.first().ok_or(CryptoError::MalformedKey("empty key"))?;
    SchemeKind::from_tag(*tag)
}

/// Parse a public key set. Refuses malformed bytes and bad parameters with an error.
pub fn verifier_from_bytes(public: &[u8]) -> Result<Arc<dyn ThresholdVerifier>, CryptoError> {
    let header = PublicHeader::parse(public)?;
    match header.kind {
        SchemeKind::Blst => Ok(Arc::new(blst_scheme::BlstVerifier::from_header(&header)?)),
        SchemeKind::BlsMinSig => Ok(Arc::new(minsig_scheme::MinSigVerifier::from_header(
            &header,
        )?)),
        #[cfg(feature = "threshold-crypto")]
        SchemeKind::ThresholdCrypto => Ok(Arc::new(crate::tc_scheme::TcVerifier::from_header(
            &header,
        )?)),
        #[cfg(not(feature = "threshold-crypto"))]
        SchemeKind::ThresholdCrypto => Err(CryptoError::SchemeUnavailable(header.kind)),
    }
}

/// Parse party `index`'s secret share, checking it against the public key set: the share
/// must be of the same scheme, carry the same index, and its public key share must be the
/// one the key set commits to for `index` (so a share from another dealing is refused).
pub fn signer_from_bytes(
    public: &[u8],
    index: u32,
    share: &[u8],
) -> Result<Arc<dyn ThresholdSigner>, CryptoError> {
    let header = PublicHeader::parse(public)?;
    let share = ShareHeader::parse(share)?;
    if share.kind != header.kind {
        return Err(CryptoError::KeyMismatch(
            "share and key set of different schemes",
        ));
    }
    if share.index != index {
        return Err(CryptoError::KeyMismatch("share dealt for another index"));
    }
    if index as usize >= header.parties {
        return Err(CryptoError::UnknownSigner(index));
    }
    match header.kind {
        SchemeKind::Blst => Ok(Arc::new(blst_scheme::BlstSigner::from_headers(
            &header, &share,
        )?)),
        SchemeKind::BlsMinSig => Ok(Arc::new(minsig_scheme::MinSigSigner::from_headers(
            &header, &share,
        )?)),
        #[cfg(feature = "threshold-crypto")]
        SchemeKind::ThresholdCrypto => Ok(Arc::new(crate::tc_scheme::TcSigner::from_headers(
            &header, &share,
        )?)),
        #[cfg(not(feature = "threshold-crypto"))]
        SchemeKind::ThresholdCrypto => Err(CryptoError::SchemeUnavailable(header.kind)),
    }
}

pub(crate) fn check_parameters(g: usize, parties: usize) -> Result<(), CryptoError> {
    if parties == 0 || parties > MAX_PARTIES || g >= parties {
        return Err(CryptoError::BadParameters { g, parties });
    }
    Ok(())
}

/// The parsed common part of a public key set.
pub(crate) struct PublicHeader<'a> {
    pub kind: SchemeKind,
    pub g: usize,
    pub parties: usize,
    pub body: &'a [u8],
}

impl<'a> PublicHeader<'a> {
    const LEN: usize = 9;

    pub fn encode(kind: SchemeKind, g: usize, parties: usize, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN + body.len());
        out.push(kind.tag());
        // Parameters were checked (≤ MAX_PARTIES), so they fit in u32.
        out.extend_from_slice(&(g as u32).to_le_bytes());
        out.extend_from_slice(&(parties as u32).to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    pub fn parse(bytes: &'a [u8]) -> Result<PublicHeader<'a>, CryptoError> {
        let kind = scheme_of(bytes)?;
        if bytes.len() < Self::LEN {
            return Err(CryptoError::MalformedKey("public key set too short"));
        }
        let g = read_u32(&bytes[1..5]) as usize;
        let parties = read_u32(&bytes[5..9]) as usize;
        check_parameters(g, parties)?;
        Ok(PublicHeader {
            kind,
            g,
            parties,
            body: &bytes[Self::LEN..],
        })
    }
}

/// The parsed common part of a secret share.
pub(crate) struct ShareHeader<'a> {
    pub kind: SchemeKind,
    pub index: u32,
    pub body: &'a [u8],
}

impl<'a> ShareHeader<'a> {
    const LEN: usize = 5;

    pub fn encode(kind: SchemeKind, index: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN + body.len());
        out.push(kind.tag());
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    pub fn parse(bytes: &'a [u8]) -> Result<ShareHeader<'a>, CryptoError> {
        let kind = scheme_of(bytes)?;
        if bytes.len() < Self::LEN {
            return Err(CryptoError::MalformedKey("secret share too short"));
        }
        Ok(ShareHeader {
            kind,
            index: read_u32(&bytes[1..5]),
            body: &bytes[Self::LEN..],
        })
    }
}

fn read_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a)
}

/// The checks every scheme's `combine` makes before interpolating: enough shares, known
/// and distinct signers. Returns the shares to interpolate (the first g+1).
pub(crate) fn check_combine_input(
    g: usize,
    parties: usize,
    shares: &[(u32, SignatureShare)],
) -> Result<(), CryptoError> {
    if shares.len() < g + 1 {
        return Err(CryptoError::NotEnoughShares {
            got: shares.len(),
            need: g + 1,
        });
    }
    let mut seen = vec![false; parties];
    for (signer, _) in shares {
        let slot = seen
            .get_mut(*signer as usize)
            .ok_or(CryptoError::UnknownSigner(*signer))?;
        if *slot {
            return Err(CryptoError::DuplicateSigner(*signer));
        }
        *slot = true;
    }
    Ok(())
}
