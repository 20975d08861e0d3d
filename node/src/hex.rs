//! Lower-case hexadecimal for keys in config files.

/// Encodes bytes as lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Decodes exactly 32 bytes of hex (a key); `None` if the text is anything else.
pub fn decode32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Decodes hex of any even length (key sets, shares); `None` if the text is anything else
/// or longer than `max` bytes.
pub fn decode(text: &str, max: usize) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.is_ascii() || !text.len().is_multiple_of(2) || text.len() / 2 > max {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_refusals() {
        let k = [0xA5u8; 32];
        assert_eq!(super::decode32(&super::encode(&k)), Some(k));
        assert_eq!(super::decode32("zz"), None);
        assert_eq!(super::decode32(&"g".repeat(64)), None);
        assert_eq!(super::decode32(&"é".repeat(32)), None);
        let v = vec![0u8, 1, 0xfe, 0x7f, 9];
        assert_eq!(super::decode(&super::encode(&v), 5), Some(v));
        assert_eq!(super::decode("abc", 5), None);
        assert_eq!(super::decode("zz", 5), None);
        assert_eq!(super::decode("0011", 1), None);
        assert_eq!(super::decode("", 1), Some(vec![]));
    }
}
