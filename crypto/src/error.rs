//! The one error type of this crate. Every malformed key, share, signature, path or
//! sealed body is an `Err` of this type, never a panic: all of them can come from the
//! network or from a config file.

use crate::threshold::SchemeKind;

/// Why a cryptographic operation refused its input.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// Key bytes that do not parse (wrong length, bad tag, point not on the curve, ...).
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),
    /// The first byte of the key names no scheme this build knows.
    #[error("unknown signature scheme tag {0}")]
    UnknownScheme(u8),
    /// The scheme exists but this build does not include it (cargo feature off).
    #[error("signature scheme {0:?} is not compiled in (enable its cargo feature)")]
    SchemeUnavailable(SchemeKind),
    /// A public key and a secret share that belong to different schemes or dealings.
    #[error("key mismatch: {0}")]
    KeyMismatch(&'static str),
    /// Threshold parameters that make no sense (g+1 > parties, too many parties, ...).
    #[error("bad threshold parameters: g = {g}, parties = {parties}")]
    BadParameters { g: usize, parties: usize },
    /// Fewer than g+1 shares were given to `combine`.
    #[error("not enough shares: {got}, need {need}")]
    NotEnoughShares { got: usize, need: usize },
    /// Two shares from one signer were given to `combine`.
    #[error("two shares from signer {0}")]
    DuplicateSigner(u32),
    /// A signer index outside `0..parties`.
    #[error("unknown signer {0}")]
    UnknownSigner(u32),
    /// Share bytes that do not parse as a point of the scheme's signature group.
    #[error("malformed signature share from signer {0}")]
    MalformedShare(u32),
    /// A (combined) signature that does not verify, or does not parse.
    #[error("bad threshold signature")]
    BadSignature,
    /// A Merkle audit path whose shape does not fit its leaf index and count.
    #[error("bad Merkle path")]
    BadMerklePath,
    /// A structural bound of a message is exceeded.
    #[error("out of bounds: {0}")]
    OutOfBounds(&'static str),
    /// A sealed body that is too short to hold its nonce and tag.
    #[error("sealed body too short ({0} bytes)")]
    SealedTooShort(usize),
    /// A sealed body that fails authentication: wrong key, wrong header, or tampered.
    #[error("sealed body failed authentication")]
    OpenFailed,
}
