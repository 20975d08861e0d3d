//! The canonical encoding (postcard) of every wire type.

use serde::{de::DeserializeOwned, Serialize};

/// Upper bound on any single encoded message. A 1 MiB NFS WRITE plus headers fits with
/// room to spare; anything larger is hostile or a bug and is refused before decoding.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Why bytes could not be turned into a value, or a value into bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("message of {0} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("trailing bytes after message: {0}")]
    Trailing(usize),
}

/// Encodes `value` canonically: equal values always give equal bytes.
///
/// The size is computed first (a pass that copies nothing), so an oversized value is
/// refused before anything is allocated, and the bytes are written into one allocation
/// of exactly their size: growing the vector by doubling copied a 1 MiB WRITE's order
/// about twice more, into fresh pages the kernel zero-fills.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    let malformed = |e: postcard::Error| WireError::Malformed(e.to_string());
    let size = postcard::experimental::serialized_size(value).map_err(malformed)?;
    if size > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(size));
    }
    postcard::to_extend(value, Vec::with_capacity(size)).map_err(malformed)
}

/// Feeds `value`'s canonical encoding into `hasher` as it is produced: the same digest
/// as hashing [`encode`]'s bytes, with the same size limit, without building them. A
/// digest of a batch of 1 MiB WRITEs otherwise allocates a fresh megabyte (which the
/// kernel zero-fills page by page) and copies the payload into it, at every node that
/// hashes it.
pub fn hash_encoding<T: Serialize>(
    hasher: &mut blake3::Hasher,
    value: &T,
) -> Result<(), WireError> {
    postcard::serialize_with_flavor(value, HashFlavor { hasher, len: 0 }).map_err(|e| {
        match e {
            // The only error of the flavor itself: past the limit.
            postcard::Error::SerializeBufferFull => WireError::TooLarge(MAX_MESSAGE_BYTES + 1),
            e => WireError::Malformed(e.to_string()),
        }
    })
}

/// A postcard output that hashes instead of storing, and stops past
/// [`MAX_MESSAGE_BYTES`] as [`encode`] does.
struct HashFlavor<'a> {
    hasher: &'a mut blake3::Hasher,
    len: usize,
}

impl postcard::ser_flavors::Flavor for HashFlavor<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.try_extend(&[byte])
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.len = self.len.saturating_add(data.len());
        if self.len > MAX_MESSAGE_BYTES {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.hasher.update(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Decodes exactly one value from `bytes`; trailing bytes are an error so that one
/// value has exactly one accepted encoding.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Trailing(rest.len()));
    }
    Ok(value)
}

thread_local! {
    /// The buffer [`decode_shared`] is decoding, for [`shared_slice`].
    static SOURCE: std::cell::RefCell<Option<bytes::Bytes>> = const { std::cell::RefCell::new(None) };
}

/// [`decode`], except that large payloads inside ([`crate::payload::Payload`]) share
/// `bytes` instead of being copied out of it.
///
/// Every message a node receives is decoded from a fresh buffer, and a 1 MiB WRITE's
/// payload was copied out of it again at each of the seven links it crosses (5% of all
/// CPU under sequential writes). A shared payload keeps the whole buffer alive, so only
/// a payload that is at least an eighth of it shares: what a small
/// request kept from a large batch could otherwise hold megabytes.
pub fn decode_shared<T: DeserializeOwned>(bytes: &bytes::Bytes) -> Result<T, WireError> {
    /// Clears the source on every way out, so a later decode cannot borrow it.
    struct Reset(Option<bytes::Bytes>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = self.0.take();
            SOURCE.with(|s| *s.borrow_mut() = previous);
        }
    }
    let _reset = Reset(SOURCE.with(|s| s.replace(Some(bytes.clone()))));
    decode(bytes)
}

/// `slice` as a shared part of the buffer [`decode_shared`] is decoding, if it lies in
/// that buffer and is at least an eighth of it; `None` otherwise (the caller copies).
pub(crate) fn shared_slice(slice: &[u8]) -> Option<bytes::Bytes> {
    SOURCE.with(|s| {
        let source = s.borrow();
        let source = source.as_ref()?;
        let start = (slice.as_ptr() as usize).checked_sub(source.as_ptr() as usize)?;
        let inside = start.checked_add(slice.len())? <= source.len();
        (inside && slice.len() >= source.len() / 8).then(|| source.slice_ref(slice))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FsOp, SetAttr};

    #[test]
    fn round_trip_is_exact_and_canonical() {
        let op = FsOp::Write {
            id: 7,
            offset: 4096,
            data: vec![1, 2, 3],
        };
        let bytes = encode(&op).unwrap();
        assert_eq!(encode(&decode::<FsOp>(&bytes).unwrap()).unwrap(), bytes);
        let mkdir = FsOp::Mkdir {
            dir: 1,
            name: b"d".to_vec(),
            attr: SetAttr::default(),
        };
        assert_ne!(encode(&mkdir).unwrap(), bytes);
    }

    #[test]
    fn hashing_the_encoding_equals_hashing_its_bytes() {
        let op = FsOp::Write {
            id: 7,
            offset: 4096,
            data: (0..70_000u32).map(|i| (i % 251) as u8).collect(),
        };
        let mut streamed = blake3::Hasher::new();
        hash_encoding(&mut streamed, &op).unwrap();
        assert_eq!(streamed.finalize(), blake3::hash(&encode(&op).unwrap()));
        // Past the limit: refused, as `encode` refuses it.
        let huge = FsOp::Write {
            id: 7,
            offset: 0,
            data: vec![0; MAX_MESSAGE_BYTES],
        };
        assert!(matches!(encode(&huge), Err(WireError::TooLarge(_))));
        assert!(matches!(
            hash_encoding(&mut blake3::Hasher::new(), &huge),
            Err(WireError::TooLarge(_))
        ));
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        assert!(decode::<FsOp>(&[]).is_err());
        assert!(decode::<FsOp>(&[0xff; 64]).is_err());
        let mut bytes = encode(&FsOp::GetAttr { id: 1 }).unwrap();
        bytes.push(0);
        assert_eq!(decode::<FsOp>(&bytes), Err(WireError::Trailing(1)));
        assert!(matches!(
            decode::<FsOp>(&vec![0u8; MAX_MESSAGE_BYTES + 1]),
            Err(WireError::TooLarge(_))
        ));
    }
}
