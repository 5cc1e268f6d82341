//! Randomness for identifiers and opaque credentials, drawn from the operating system's CSPRNG
//! through aws-lc-rs.

use crate::error::OAuthError;

const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn fill(buf: &mut [u8]) -> Result<(), OAuthError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| OAuthError::server_error("the random number generator failed"))
}

/// `bytes` random bytes as lowercase hex (`2 * bytes` characters).
pub fn random_hex(bytes: usize) -> Result<String, OAuthError> {
    let mut buf = vec![0u8; bytes];
    fill(&mut buf)?;
    Ok(hex::encode(buf))
}

/// An access token id (`jti`): 80 lowercase hex characters, as Passport's. The first 16 encode
/// `millis` (the issue time, 48 bits) and a per-process counter (16 bits), so ids of new tokens
/// sort after older ones and land at the end of the id index: a batch of rows touches one
/// index page instead of one per row. The other 64 are random (32 bytes). A jti is not a
/// secret (the signed token carries it); it only has to be unique.
pub(crate) fn token_id(millis: i64) -> Result<String, OAuthError> {
    static COUNTER: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let mut buf = [0u8; 40];
    buf[..6].copy_from_slice(&millis.clamp(0, (1 << 48) - 1).to_be_bytes()[2..]);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    buf[6..8].copy_from_slice(&count.to_be_bytes());
    fill(&mut buf[8..])?;
    Ok(hex::encode(buf))
}

/// A random string of `len` characters from `[A-Za-z0-9]`, unbiased (rejection sampling).
pub fn random_alphanumeric(len: usize) -> Result<String, OAuthError> {
    random_from_alphabet(len, ALPHANUMERIC)
}

/// A random string of `len` characters drawn uniformly from `alphabet` (at most 256 symbols).
pub fn random_from_alphabet(len: usize, alphabet: &[u8]) -> Result<String, OAuthError> {
    debug_assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    // Largest multiple of the alphabet size that fits in a byte: bytes above it are rejected.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill(&mut buf)?;
        for &b in &buf {
            if (b as usize) < limit {
                out.push(alphabet[b as usize % alphabet.len()] as char);
                if out.len() == len {
                    break;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphanumeric_has_requested_length_and_alphabet() {
        let s = random_alphanumeric(40).unwrap();
        assert_eq!(s.len(), 40);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s, random_alphanumeric(40).unwrap());
    }

    #[test]
    fn token_ids_are_passport_shaped_and_sort_by_time() {
        let early = token_id(1_800_000_000_000).unwrap();
        let late = token_id(1_800_000_000_001).unwrap();
        assert_eq!(early.len(), 80);
        assert!(early.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(early < late);
        assert_ne!(early[16..], late[16..], "the rest is random");
        assert_ne!(token_id(5).unwrap(), token_id(5).unwrap());
    }

    #[test]
    fn hex_has_twice_the_bytes() {
        let s = random_hex(40).unwrap();
        assert_eq!(s.len(), 80);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
