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
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    let bytes = postcard::to_stdvec(value).map_err(|e| WireError::Malformed(e.to_string()))?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    Ok(bytes)
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
