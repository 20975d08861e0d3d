//! The Noise IK handshake (Noise spec rev. 34, §7.5):
//!
//! ```text
//! IK:  <- s                  (the dialer knows the listener's static key)
//!      ...
//!      -> e, es, s, ss       (dialer sends its static key, encrypted, and proves it)
//!      <- e, ee, se          (listener proves its own static key)
//! ```
//!
//! After the first message the listener knows the dialer's claimed static key and that
//! the dialer holds its private half (the `ss` token); it refuses keys that are not a
//! configured peer. After the second message the dialer knows it reached the holder of
//! the key it expected; a listener with another key fails here. The prologue binds the
//! protocol name and version, so a peer speaking anything else fails too.

use snow::params::{DHChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::{HandshakeState, TransportState};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::NetError;
use crate::frame::{read_noise_frame, write_noise_frame};
use crate::peer::{to_key, NoiseKeypair};

/// AES-GCM rather than ChaCha20-Poly1305: faster on AES-NI hardware (crate docs). The
/// pattern name is hashed into the handshake, so a peer built with the other cipher
/// fails the handshake instead of talking garbage.
const PATTERN: &str = "Noise_IK_25519_AESGCM_BLAKE2s";
const PROLOGUE: &[u8] = b"palisade-net/1";

pub(crate) fn params() -> Result<NoiseParams, NetError> {
    PATTERN
        .parse()
        .map_err(|_| NetError::BadKey("noise pattern does not parse"))
}

/// The x25519 public key of `private`.
pub(crate) fn public_of(private: &[u8; 32]) -> Result<[u8; 32], NetError> {
    let mut dh = DefaultResolver
        .resolve_dh(&DHChoice::Curve25519)
        .ok_or(NetError::BadKey("no x25519 implementation"))?;
    dh.set(private);
    to_key(dh.pubkey())
}

/// Dials: runs the initiator side against a listener whose static key is `remote`.
pub async fn initiate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: &NoiseKeypair,
    remote: &[u8; 32],
) -> Result<TransportState, NetError> {
    let mut hs: HandshakeState = snow::Builder::new(params()?)
        .prologue(PROLOGUE)
        .local_private_key(&local.private)
        .remote_public_key(remote)
        .build_initiator()?;
    let mut buf = vec![0u8; crate::frame::MAX_NOISE_MESSAGE];
    let n = hs.write_message(&[], &mut buf)?;
    write_noise_frame(stream, &buf[..n]).await?;
    let msg = read_noise_frame(stream).await?;
    let mut payload = vec![0u8; crate::frame::MAX_NOISE_MESSAGE];
    hs.read_message(&msg, &mut payload)?;
    Ok(hs.into_transport_mode()?)
}

/// Accepts: runs the responder side; `known` decides whether the dialer's static key is
/// a configured peer (and says which). The second message is sent only to a known peer.
pub async fn respond<S, T, F>(
    stream: &mut S,
    local: &NoiseKeypair,
    known: F,
) -> Result<(TransportState, T), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&[u8; 32]) -> Option<T>,
{
    let mut hs: HandshakeState = snow::Builder::new(params()?)
        .prologue(PROLOGUE)
        .local_private_key(&local.private)
        .build_responder()?;
    let msg = read_noise_frame(stream).await?;
    let mut payload = vec![0u8; crate::frame::MAX_NOISE_MESSAGE];
    hs.read_message(&msg, &mut payload)?;
    let remote = to_key(hs.get_remote_static().unwrap_or(&[]))?;
    let who = known(&remote).ok_or(NetError::UnknownPeer)?;
    let mut buf = vec![0u8; crate::frame::MAX_NOISE_MESSAGE];
    let n = hs.write_message(&[], &mut buf)?;
    write_noise_frame(stream, &buf[..n]).await?;
    Ok((hs.into_transport_mode()?, who))
}
