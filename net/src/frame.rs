//! Framing on an established link.
//!
//! A Noise message is at most 65535 bytes (Noise §3), 16 of them the AEAD tag. On TCP
//! each Noise message is preceded by its length as 2 bytes, big-endian. An application
//! message is the plaintext of one or more Noise messages: the first chunk opens with the
//! message's total length (4 bytes, big-endian) and the rest of the chunks carry the
//! remaining bytes. The receiver checks the announced length against
//! [`MAX_MESSAGE_BYTES`] *before* it allocates, so a peer can make us hold at most one
//! legal message per connection.

use bytes::BytesMut;
use futures_util::StreamExt;
use palisade_wire::MAX_MESSAGE_BYTES;
use snow::TransportState;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

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

/// The sending half of a link: encrypts application messages straight into one output
/// buffer (length prefixes and Noise messages, as they go on the wire) and writes it to
/// the socket in one piece.
///
/// Why its own buffer: a `BufWriter` in front of the socket copied every encrypted chunk
/// once more, and a 1 MiB WRITE crosses seven links in `separate`; with the copies on the
/// receiving side (see [`MessageReader`]) memory copies were a fifth of all CPU under
/// sequential writes (`perf record`, 2026-11-27).
#[derive(Default)]
pub struct MessageWriter {
    /// Wire bytes not yet written, in `out[..used]`; `out` only grows (zeroing it again
    /// for every message would cost what the copy did), up to one largest message.
    out: Vec<u8>,
    used: usize,
}

impl MessageWriter {
    /// Most bytes worth holding before they are written: a few small messages share one
    /// write, a large one is written as soon as it is encrypted.
    pub const FLUSH_AT: usize = 256 * 1024;

    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes encrypted and not yet written.
    pub fn pending(&self) -> usize {
        self.used
    }

    /// Encrypts one application message (any size up to the limit) into the buffer,
    /// chunked. Writes nothing: the caller calls [`MessageWriter::flush`] when its queue
    /// is empty or [`MessageWriter::pending`] passed [`MessageWriter::FLUSH_AT`], so
    /// small messages share TCP segments.
    pub fn push(&mut self, transport: &mut TransportState, message: &[u8]) -> Result<(), NetError> {
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(NetError::Oversized(message.len()));
        }
        let total = u32::try_from(message.len()).map_err(|_| NetError::Oversized(message.len()))?;
        // First chunk: length prefix and as much of the message as fits.
        let first_len = message.len().min(MAX_CHUNK_PLAINTEXT - LEN_PREFIX);
        let mut first = Vec::with_capacity(LEN_PREFIX + first_len);
        first.extend_from_slice(&total.to_be_bytes());
        first.extend_from_slice(&message[..first_len]);
        self.push_chunk(transport, &first)?;
        for chunk in message[first_len..].chunks(MAX_CHUNK_PLAINTEXT) {
            self.push_chunk(transport, chunk)?;
        }
        Ok(())
    }

    /// One Noise message with its 2-byte length, encrypted in place in the buffer.
    fn push_chunk(&mut self, transport: &mut TransportState, chunk: &[u8]) -> Result<(), NetError> {
        let frame_at = self.used + 2;
        let needed = frame_at + chunk.len() + TAG;
        if self.out.len() < needed {
            self.out.resize(needed, 0);
        }
        let n = transport.write_message(chunk, &mut self.out[frame_at..needed])?;
        let len = u16::try_from(n).map_err(|_| NetError::Oversized(n))?;
        self.out[self.used..frame_at].copy_from_slice(&len.to_be_bytes());
        self.used = frame_at + n;
        Ok(())
    }

    /// Writes everything encrypted so far.
    pub async fn flush<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> Result<(), NetError> {
        if self.used > 0 {
            w.write_all(&self.out[..self.used]).await?;
            self.used = 0;
        }
        Ok(())
    }
}

/// tokio-util's length-delimited codec as the links frame Noise messages: a 2-byte
/// big-endian length, then at most [`MAX_NOISE_MESSAGE`] bytes.
fn noise_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(2)
        .max_frame_length(MAX_NOISE_MESSAGE)
        .new_codec()
}

/// The receiving half of a link: reads Noise messages (tokio-util's `FramedRead`, which
/// hands out each frame from its read buffer without copying it), decrypts and
/// reassembles application messages, each chunk decrypted straight into its place in the
/// message.
pub struct MessageReader<R> {
    frames: FramedRead<R, LengthDelimitedCodec>,
    /// The first chunk's plaintext (it carries the message length, so it cannot go
    /// into a message buffer that does not exist yet).
    scratch: Vec<u8>,
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    pub fn new(r: R) -> Self {
        MessageReader {
            frames: FramedRead::with_capacity(r, noise_codec(), 256 * 1024),
            scratch: vec![0u8; MAX_NOISE_MESSAGE],
        }
    }

    /// The next Noise message; `None` at a clean end of the stream. A zero length is
    /// malformed (no Noise message is empty).
    async fn frame(&mut self) -> Result<Option<BytesMut>, NetError> {
        match self.frames.next().await {
            None => Ok(None),
            Some(Err(e)) => Err(NetError::Io(e)),
            Some(Ok(f)) if f.is_empty() => Err(NetError::MalformedFrame(0)),
            Some(Ok(f)) => Ok(Some(f)),
        }
    }

    /// Reads, decrypts and reassembles one application message. `Ok(None)`: the peer
    /// closed the connection cleanly between messages.
    pub async fn read_message(
        &mut self,
        transport: &mut TransportState,
    ) -> Result<Option<Vec<u8>>, NetError> {
        let Some(frame) = self.frame().await? else {
            return Ok(None);
        };
        let n = transport
            .read_message(&frame, &mut self.scratch)
            .map_err(|_| NetError::MalformedFrame(frame.len()))?;
        if n < LEN_PREFIX {
            return Err(NetError::MalformedFrame(n));
        }
        let mut len = [0u8; LEN_PREFIX];
        len.copy_from_slice(&self.scratch[..LEN_PREFIX]);
        let total = u32::from_be_bytes(len) as usize;
        if total > MAX_MESSAGE_BYTES {
            return Err(NetError::Oversized(total));
        }
        let body = &self.scratch[LEN_PREFIX..n];
        if body.len() > total {
            return Err(NetError::MalformedFrame(n));
        }
        // Room for the tag after the last chunk: snow decrypts in place only into a
        // buffer that holds the whole ciphertext, and copies otherwise.
        let mut message = vec![0u8; total + TAG];
        message[..body.len()].copy_from_slice(body);
        let mut filled = body.len();
        while filled < total {
            let frame = self
                .frame()
                .await?
                .ok_or_else(|| NetError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
            let plaintext = frame.len().saturating_sub(TAG);
            if plaintext == 0 || filled + plaintext > total {
                // A chunk that overruns the announced length breaks the format.
                return Err(NetError::MalformedFrame(frame.len()));
            }
            let n = transport
                .read_message(&frame, &mut message[filled..filled + frame.len()])
                .map_err(|_| NetError::MalformedFrame(frame.len()))?;
            filled += n;
        }
        message.truncate(total);
        Ok(Some(message))
    }
}
