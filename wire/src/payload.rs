//! A request's opaque payload, and its digest computed at most once.
//!
//! A 1 MiB WRITE's payload is hashed wherever a request is checked: for its client's
//! signature, and for the digest of every batch that carries it. Before this type, each
//! node hashed the payload again for each of those: an agreement replica twice, an
//! execution replica twice, and BLAKE3 over those bodies took 16% of all CPU under
//! sequential writes. The request's signing digest and the batch digest now both cover
//! the payload through [`Payload::digest`], which each copy of a payload computes once
//! and shares with its clones.
//!
//! The cache cannot go stale: the bytes are immutable ([`Bytes`]) and private, so a
//! changed payload is a new `Payload` with an empty cache.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Opaque request bytes (a sealed FS operation) with their BLAKE3 digest, cached.
///
/// Encoded as bytes, exactly as the `Bytes` it wraps (and a `Vec<u8>` under
/// `serde_bytes` before that) were. Equality and debug output look at the bytes only.
#[derive(Clone, Default)]
pub struct Payload {
    bytes: Bytes,
    /// Shared by clones, so a clone taken before the first digest still benefits.
    digest: Arc<OnceLock<[u8; 32]>>,
}

impl Payload {
    pub fn new(bytes: Bytes) -> Payload {
        Payload {
            bytes,
            digest: Arc::default(),
        }
    }

    /// The bytes, shared (not copied).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// BLAKE3 of the bytes, computed by the first caller among this payload's clones.
    pub fn digest(&self) -> [u8; 32] {
        *self
            .digest
            .get_or_init(|| *blake3::hash(&self.bytes).as_bytes())
    }
}

impl Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<Bytes> for Payload {
    fn from(bytes: Bytes) -> Payload {
        Payload::new(bytes)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Payload {
        Payload::new(bytes.into())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Payload {}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.bytes, f)
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.bytes.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Payload, D::Error> {
        deserializer.deserialize_bytes(PayloadVisitor)
    }
}

/// Takes the payload's bytes as a shared slice of the message being decoded when
/// [`crate::codec::decode_shared`] allows it, and copies them otherwise.
struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("payload bytes")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Payload, E> {
        Ok(Payload::new(
            crate::codec::shared_slice(v).unwrap_or_else(|| Bytes::copy_from_slice(v)),
        ))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Payload, E> {
        Ok(Payload::new(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Payload, E> {
        Ok(Payload::from(v))
    }

    /// Formats that write bytes as a sequence of numbers (as `Bytes` accepts them).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element()? {
            bytes.push(b);
        }
        Ok(Payload::from(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_exactly_as_the_bytes_it_wraps() {
        let bytes = Bytes::from_static(b"sealed operation");
        let payload = Payload::from(bytes.clone());
        assert_eq!(
            crate::encode(&payload).unwrap(),
            crate::encode(&bytes).unwrap()
        );
        let back: Payload = crate::decode(&crate::encode(&payload).unwrap()).unwrap();
        assert_eq!(back, payload);
    }

    #[test]
    fn a_large_payload_shares_the_buffer_it_was_decoded_from_and_a_small_one_copies() {
        let large = crate::agreement::Request {
            client: 1,
            request_id: 2,
            payload: vec![5u8; 100_000].into(),
        };
        let buffer = Bytes::from(crate::encode(&(7u64, &large)).unwrap());
        let (_, back): (u64, crate::agreement::Request) =
            crate::codec::decode_shared(&buffer).unwrap();
        assert_eq!(back, large);
        let range = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
        assert!(range.contains(&(back.payload.as_ptr() as usize)));
        // Plain `decode` copies, as does `decode_shared` for a payload that is a small
        // part of its buffer (it would keep the rest alive).
        let (_, copied): (u64, crate::agreement::Request) = crate::decode(&buffer).unwrap();
        assert!(!range.contains(&(copied.payload.as_ptr() as usize)));
        let small = crate::agreement::Request {
            client: 1,
            request_id: 3,
            payload: vec![6u8; 100].into(),
        };
        let mixed = Bytes::from(crate::encode(&(&large, &small)).unwrap());
        let (l, s): (crate::agreement::Request, crate::agreement::Request) =
            crate::codec::decode_shared(&mixed).unwrap();
        let range = mixed.as_ptr() as usize..mixed.as_ptr() as usize + mixed.len();
        assert!(range.contains(&(l.payload.as_ptr() as usize)));
        assert!(!range.contains(&(s.payload.as_ptr() as usize)));
        assert_eq!((l, s), (large, small));
        // After the decode, nothing is borrowed any more.
        assert!(crate::codec::shared_slice(&mixed[..]).is_none());
    }

    #[test]
    fn digest_is_blake3_of_the_bytes_and_shared_by_clones() {
        let payload = Payload::from(vec![7u8; 5000]);
        let clone = payload.clone();
        let expected = *blake3::hash(&[7u8; 5000]).as_bytes();
        assert_eq!(payload.digest(), expected);
        // The clone reads the digest its original computed (same cache cell).
        assert_eq!(clone.digest.get(), Some(&expected));
        // A different payload has its own, empty cache.
        let other = Payload::from(vec![8u8; 5000]);
        assert!(other.digest.get().is_none());
        assert_ne!(other.digest(), expected);
    }
}
