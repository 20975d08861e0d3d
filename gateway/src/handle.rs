//! Stable NFS file handles (RFC 1813 §2.3.3 `nfs_fh3`, §4.1 "file handles").
//!
//! nfsserve's default handle embeds the server's start time, so every handle goes stale
//! on each restart (and would differ between replicas). Palisade handles are a pure
//! function of (export, file id): they survive restarts and are identical on every
//! replica, because file ids come from the replicated state.
//!
//! Layout (17 bytes): `version (1) | export id (8, big endian) | file id (8, big endian)`.
//! The export id is derived from the configured export name with BLAKE3, never from time
//! or randomness.

use palisade_wire::fs::FileId;

/// The handle format version; bump it if the layout ever changes, so that old handles
/// are refused as BADHANDLE instead of being misread.
pub const HANDLE_VERSION: u8 = 1;

/// Encoded length of a Palisade file handle.
pub const HANDLE_LEN: usize = 17;

/// Why a handle was refused. Both map to `NFS3ERR_BADHANDLE`: the handle is not one this
/// server could have issued. (A well-formed handle of a file that no longer exists is
/// *not* refused here: the file system answers it with `Stale`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    #[error("file handle has {0} bytes, expected {HANDLE_LEN}")]
    WrongLength(usize),
    #[error("file handle version {0}, expected {HANDLE_VERSION}")]
    WrongVersion(u8),
    #[error("file handle belongs to another export")]
    WrongExport,
    #[error("file handle names file id 0, which is never used")]
    ZeroId,
}

/// Encodes and decodes the file handles of one export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleCodec {
    export_id: u64,
}

impl HandleCodec {
    /// The codec for the export named `export_name`.
    pub fn new(export_name: &str) -> Self {
        Self {
            export_id: export_id(export_name),
        }
    }

    /// The 8-byte export id (also used as nfsserve's `serverid`, i.e. the WRITE verifier:
    /// every WRITE is FILE_SYNC, so the verifier never needs to change on restart —
    /// RFC 1813 §3.3.7).
    pub fn export_id(&self) -> u64 {
        self.export_id
    }

    pub fn encode(&self, id: FileId) -> Vec<u8> {
        let mut out = Vec::with_capacity(HANDLE_LEN);
        out.push(HANDLE_VERSION);
        out.extend_from_slice(&self.export_id.to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
        out
    }

    pub fn decode(&self, handle: &[u8]) -> Result<FileId, HandleError> {
        let bytes: &[u8; HANDLE_LEN] = handle
            .try_into()
            .map_err(|_| HandleError::WrongLength(handle.len()))?;
        let (version, rest) = bytes.split_at(1);
        let (export, id) = rest.split_at(8);
        if version[0] != HANDLE_VERSION {
            return Err(HandleError::WrongVersion(version[0]));
        }
        if u64::from_be_bytes(to8(export)) != self.export_id {
            return Err(HandleError::WrongExport);
        }
        match u64::from_be_bytes(to8(id)) {
            0 => Err(HandleError::ZeroId),
            id => Ok(id),
        }
    }
}

/// Copies an 8-byte slice into an array (the callers split exact lengths).
fn to8(slice: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, b) in out.iter_mut().zip(slice) {
        *o = *b;
    }
    out
}

/// The export id of `export_name`: the first 8 bytes of a domain-separated BLAKE3 hash.
fn export_id(export_name: &str) -> u64 {
    let hash = blake3::derive_key("palisade nfs export id v1", export_name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_stability() {
        let codec = HandleCodec::new("palisade");
        for id in [1u64, 2, 77, u64::MAX] {
            let fh = codec.encode(id);
            assert_eq!(fh.len(), HANDLE_LEN);
            assert_eq!(codec.decode(&fh), Ok(id));
        }
        // A second codec for the same export (a restart, another replica) agrees.
        assert_eq!(HandleCodec::new("palisade").encode(9), codec.encode(9));
        assert_ne!(HandleCodec::new("other").export_id(), codec.export_id());
    }

    #[test]
    fn hostile_handles_are_refused() {
        let codec = HandleCodec::new("palisade");
        let good = codec.encode(5);
        assert_eq!(codec.decode(&[]), Err(HandleError::WrongLength(0)));
        assert_eq!(codec.decode(&good[..16]), Err(HandleError::WrongLength(16)));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(codec.decode(&long), Err(HandleError::WrongLength(18)));
        let mut version = good.clone();
        version[0] = 2;
        assert_eq!(codec.decode(&version), Err(HandleError::WrongVersion(2)));
        let mut export = good.clone();
        export[3] ^= 0x40;
        assert_eq!(codec.decode(&export), Err(HandleError::WrongExport));
        assert_eq!(
            HandleCodec::new("other").decode(&good),
            Err(HandleError::WrongExport)
        );
        assert_eq!(codec.decode(&codec.encode(0)), Err(HandleError::ZeroId));
        // nfsserve's default 16-byte handle layout is refused too.
        assert!(codec.decode(&[0u8; 16]).is_err());
    }
}
