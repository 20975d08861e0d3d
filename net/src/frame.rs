//! Framing on an established link.
//!
//! A Noise message is at most 65535 bytes (Noise §3), 16 of them the AEAD tag. On TCP
//! each Noise message is preceded by its length as 2 bytes, big-endian. An application
//! message is the plaintext of one or more Noise messages: the first chunk opens with the
//! message's total length (4 bytes, big-endian) and the rest of the chunks carry the
//! remaining bytes. The receiver checks the announced length against
//! [`MAX_MESSAGE_BYTES`] *before* it allocates, so a peer can make us hold at most one
//! legal message per connection.

use palisade_wire::MAX_MESSAGE_BYTES;
use snow::TransportState;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::NetError;

/// Largest Noise message (Noise §3).
pub const MAX_NOISE_MESSAGE: usize = 65535;
/// AEAD tag length.
const TAG: usize = 16;
/// Largest plaintext of one Noise transport message.
pub const MAX_CHUNK_PLAINTEXT: usize = MAX_NOISE_MESSAGE - TAG;
/// Length prefix of an application message.
const LEN_PREFIX: usize = 4;

/// Writes one raw Noise message with its 2-byte length.
pub async fn write_noise_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    msg: &[u8],
) -> Result<(), NetError> {
    let len = u16::try_from(msg.len()).map_err(|_| NetError::Oversized(msg.len()))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(msg).await?;
    Ok(())
}

/// Reads one raw Noise message. A zero length is malformed (no Noise message is empty).
pub async fn read_noise_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, NetError> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).await?;
    let len = usize::from(u16::from_be_bytes(len));
    if len == 0 {
        return Err(NetError::MalformedFrame(0));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Encrypts and writes one application message (any size up to the limit), chunked.
/// Does not flush: the caller flushes when its queue is empty, so small messages share
/// TCP segments.
pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    transport: &mut TransportState,
    message: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<(), NetError> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(NetError::Oversized(message.len()));
    }
    scratch.resize(MAX_NOISE_MESSAGE, 0);
    let total = u32::try_from(message.len()).map_err(|_| NetError::Oversized(message.len()))?;
    // First chunk: length prefix and as much of the message as fits.
    let first_len = message.len().min(MAX_CHUNK_PLAINTEXT - LEN_PREFIX);
    let mut first = Vec::with_capacity(LEN_PREFIX + first_len);
    first.extend_from_slice(&total.to_be_bytes());
    first.extend_from_slice(&message[..first_len]);
    let n = transport.write_message(&first, scratch)?;
    write_noise_frame(w, &scratch[..n]).await?;
    for chunk in message[first_len..].chunks(MAX_CHUNK_PLAINTEXT) {
        let n = transport.write_message(chunk, scratch)?;
        write_noise_frame(w, &scratch[..n]).await?;
    }
    Ok(())
}

/// Reads, decrypts and reassembles one application message. `Ok(None)`: the peer closed
/// the connection cleanly between messages.
pub async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
    transport: &mut TransportState,
    scratch: &mut Vec<u8>,
) -> Result<Option<Vec<u8>>, NetError> {
    scratch.resize(MAX_NOISE_MESSAGE, 0);
    let frame = match read_noise_frame(r).await {
        Ok(f) => f,
        Err(NetError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    let n = transport
        .read_message(&frame, scratch)
        .map_err(|_| NetError::MalformedFrame(frame.len()))?;
    if n < LEN_PREFIX {
        return Err(NetError::MalformedFrame(n));
    }
    let mut len = [0u8; LEN_PREFIX];
    len.copy_from_slice(&scratch[..LEN_PREFIX]);
    let total = u32::from_be_bytes(len) as usize;
    if total > MAX_MESSAGE_BYTES {
        return Err(NetError::Oversized(total));
    }
    let body = &scratch[LEN_PREFIX..n];
    if body.len() > total {
        return Err(NetError::MalformedFrame(n));
    }
    let mut message = Vec::with_capacity(total);
    message.extend_from_slice(body);
    while message.len() < total {
        let frame = read_noise_frame(r).await?;
        let n = transport
            .read_message(&frame, scratch)
            .map_err(|_| NetError::MalformedFrame(frame.len()))?;
        if n == 0 || message.len() + n > total {
            // A chunk that overruns the announced length breaks the format.
            return Err(NetError::MalformedFrame(n));
        }
        message.extend_from_slice(&scratch[..n]);
    }
    Ok(Some(message))
}
