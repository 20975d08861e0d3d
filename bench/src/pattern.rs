//! The deterministic file contents that seq-write writes and seq-read checks.
//!
//! Every 8-byte little-endian word of the file is a mix of the seed and the
//! word's index, so each byte depends on its own offset: data returned from
//! the wrong offset, a zeroed page, a truncated or shifted file, or a stale
//! block all fail verification. It is cheap (one multiply-xorshift per word),
//! so generating and checking it costs far less than the NFS calls it rides on.

/// The finaliser of SplitMix64: a bijective 64-bit mix.
fn mix(seed: u64, word_index: u64) -> u64 {
    let mut z = seed ^ word_index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed for the `index`-th file of a tree generated from `seed`: each file
/// gets its own pattern, so a server that swaps two files' contents fails.
pub fn derive_seed(seed: u64, index: u64) -> u64 {
    mix(seed ^ 0xA5A5_5A5A_F00D_CAFE, index)
}

/// The byte the pattern holds at `offset`.
fn byte_at(seed: u64, offset: u64) -> u8 {
    let word = mix(seed, offset / 8).to_le_bytes();
    // offset % 8 < 8 always, so the index is in range.
    word[(offset % 8) as usize]
}

/// Fills `buf` with the pattern bytes for file offsets `offset..offset + buf.len()`.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = 0usize;
    // Unaligned head, byte by byte.
    while pos < buf.len() && !(offset + pos as u64).is_multiple_of(8) {
        buf[pos] = byte_at(seed, offset + pos as u64);
        pos += 1;
    }
    // Aligned body, a word at a time.
    let mut chunks = buf[pos..].chunks_exact_mut(8);
    let mut word_index = (offset + pos as u64) / 8;
    for chunk in &mut chunks {
        chunk.copy_from_slice(&mix(seed, word_index).to_le_bytes());
        word_index += 1;
    }
    // Unaligned tail.
    let tail = chunks.into_remainder();
    let tail_start = word_index * 8;
    for (i, b) in tail.iter_mut().enumerate() {
        *b = byte_at(seed, tail_start + i as u64);
    }
}

/// Returns the pattern bytes for `offset..offset + len`.
pub fn generate(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    fill(seed, offset, &mut buf);
    buf
}

/// Index of the first byte where `got` and `expected` differ, or `None` when
/// they are equal. When one is a prefix of the other, the first index past
/// the shorter one.
pub fn first_difference(got: &[u8], expected: &[u8]) -> Option<usize> {
    if got == expected {
        return None;
    }
    Some(
        got.iter()
            .zip(expected.iter())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| got.len().min(expected.len())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_independent_of_how_the_file_is_cut() {
        let whole = generate(7, 0, 1000);
        for (start, len) in [(0usize, 1000usize), (3, 17), (8, 64), (13, 987), (999, 1)] {
            let part = generate(7, start as u64, len);
            assert_eq!(part, whole[start..start + len], "start {start} len {len}");
        }
    }

    #[test]
    fn seeds_and_offsets_give_different_bytes() {
        assert_ne!(generate(1, 0, 64), generate(2, 0, 64));
        // The same seed at another offset must not repeat the block: a server
        // that returns the wrong block would otherwise pass.
        assert_ne!(generate(1, 0, 4096), generate(1, 4096, 4096));
    }

    #[test]
    fn verification_finds_the_first_bad_byte() {
        let expected = generate(9, 4096, 200_000);
        let mut data = expected.clone();
        assert_eq!(first_difference(&data, &expected), None);
        data[150_001] ^= 0x01;
        assert_eq!(first_difference(&data, &expected), Some(150_001));
        // Right data from the wrong offset is caught too.
        let shifted = generate(9, 8192, 4096);
        assert!(first_difference(&shifted, &expected[..4096]).is_some());
        // Data written with another seed is caught.
        assert!(first_difference(&generate(10, 4096, 64), &expected[..64]).is_some());
        // A short answer is a difference, at the first missing byte.
        assert_eq!(first_difference(&expected[..10], &expected[..64]), Some(10));
    }
}
