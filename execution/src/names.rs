//! Validation of directory-entry names (RFC 1813 §3.3.8 ff.; `filename3` is any byte
//! string, but a Unix server refuses what a POSIX path component cannot hold).

use palisade_wire::fs::{FsError, MAX_NAME_BYTES};

/// True for "." and "..", which no directory stores as an entry.
pub fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// Length and characters of any name given to an operation: too long → `NameTooLong`,
/// a NUL or '/' → `Inval` (no POSIX path component may contain them).
fn check_chars(name: &[u8]) -> Result<(), FsError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(FsError::NameTooLong);
    }
    if name.iter().any(|&b| b == 0 || b == b'/') {
        return Err(FsError::Inval);
    }
    Ok(())
}

/// A name to look up (LOOKUP; the source of REMOVE/RMDIR/RENAME): empty → `NoEnt`.
pub fn check_existing(name: &[u8]) -> Result<(), FsError> {
    if name.is_empty() {
        return Err(FsError::NoEnt);
    }
    check_chars(name)
}

/// A name to create (CREATE, MKDIR, SYMLINK): empty → `Inval`; "." and ".." always exist,
/// so creating them → `Exist` (Linux nfsd answers the same).
pub fn check_new(name: &[u8]) -> Result<(), FsError> {
    if name.is_empty() {
        return Err(FsError::Inval);
    }
    check_chars(name)?;
    if is_dot(name) {
        return Err(FsError::Exist);
    }
    Ok(())
}
