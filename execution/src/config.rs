//! Limits of one file system.

/// The limits of a file system. Every replica must use the same values: they decide
/// replies (`NoSpc`, `FBig`) and are reported by FSSTAT/FSINFO (RFC 1813 §3.3.18–19).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsConfig {
    /// Bytes of file data the file system may store.
    pub capacity_bytes: u64,
    /// Most inodes (files, directories, symlinks, the root included) that may exist.
    pub max_files: u64,
    /// Largest file size, in bytes.
    pub max_file_size: u64,
}

impl Default for FsConfig {
    /// 1 TiB of data, 100 million files, files up to 2^40 bytes.
    fn default() -> Self {
        FsConfig {
            capacity_bytes: 1 << 40,
            max_files: 100_000_000,
            max_file_size: 1 << 40,
        }
    }
}
