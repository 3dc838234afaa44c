//! API keys (SPEC §2): format, generation, digests and records.
//!
//! A key is `ak_` + 30 random base62 characters + a 6-character base62 CRC32 of those 30, so a
//! malformed or mistyped key is refused offline, before any lookup. Only a digest of the key is
//! ever kept: SHA-256, or HMAC-SHA-256 under the configured pepper.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::limits::KeyLimits;
use crate::scopes::{Permissions, Scopes};

/// The literal start of every key.
pub const PREFIX: &str = "ak_";
/// Random characters in a key.
pub const RANDOM_LEN: usize = 30;
/// Checksum characters in a key.
pub const CHECKSUM_LEN: usize = 6;
/// Length of a whole key: 39.
pub const KEY_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A key's digest: the only form in which a key is stored.
pub type KeyDigest = [u8; 32];

/// Generates a new key from the operating system's CSPRNG.
pub fn generate() -> Result<String> {
    let mut random = [0u8; RANDOM_LEN];
    let mut filled = 0;
    let mut pool = [0u8; 64];
    while filled < RANDOM_LEN {
        getrandom::getrandom(&mut pool)
            .map_err(|e| Error::Internal(format!("the OS random source failed: {e}")))?;
        // Rejection sampling: 248 = 4 × 62, so every character is equally likely.
        for byte in pool.iter().filter(|&&b| b < 248) {
            if filled == RANDOM_LEN {
                break;
            }
            random[filled] = ALPHABET[usize::from(byte % 62)];
            filled += 1;
        }
    }
    let mut key = String::with_capacity(KEY_LEN);
    key.push_str(PREFIX);
    key.extend(random.iter().map(|&b| char::from(b)));
    key.push_str(&checksum(&random));
    Ok(key)
}

/// The base62 CRC32 checksum of the random part, most significant digit first, 0-padded.
fn checksum(random: &[u8]) -> String {
    let mut crc = crc32fast::hash(random);
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = ALPHABET[(crc % 62) as usize];
        crc /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

/// Whether `key` has the exact format of a key: prefix, length, alphabet and checksum.
/// Runs without allocating and without any lookup.
pub fn is_well_formed(key: &str) -> bool {
    let bytes = key.as_bytes();
    if bytes.len() != KEY_LEN || !key.starts_with(PREFIX) {
        return false;
    }
    let random = &bytes[PREFIX.len()..PREFIX.len() + RANDOM_LEN];
    let sum = &bytes[PREFIX.len() + RANDOM_LEN..];
    // No early exit: the loop over all 36 bytes vectorizes.
    if !random.iter().chain(sum).fold(true, |ok, b| ok & b.is_ascii_alphanumeric()) {
        return false;
    }
    let mut crc = crc32fast::hash(random);
    for &digit in sum.iter().rev() {
        if digit != ALPHABET[(crc % 62) as usize] {
            return false;
        }
        crc /= 62;
    }
    crc == 0
}

/// The displayable prefix of a key: `ak_` + its first 4 random characters.
pub fn display_prefix(key: &str) -> &str {
    key.get(..PREFIX.len() + 4).unwrap_or(PREFIX)
}

/// Computes key digests: SHA-256, or HMAC-SHA-256 under a pepper.
#[derive(Clone)]
pub struct Hasher {
    pepper: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("peppered", &self.pepper.is_some()).finish()
    }
}

impl Hasher {
    /// A hasher using HMAC-SHA-256 under `pepper` when given, plain SHA-256 otherwise.
    pub fn new(pepper: Option<&[u8]>) -> Self {
        Hasher {
            pepper: pepper.map(|p| {
                <Hmac<Sha256> as Mac>::new_from_slice(p).expect("HMAC accepts keys of any length")
            }),
        }
    }

    /// The digest of `key`.
    pub fn digest(&self, key: &str) -> KeyDigest {
        match &self.pepper {
            Some(mac) => {
                let mut mac = mac.clone();
                mac.update(key.as_bytes());
                mac.finalize().into_bytes().into()
            }
            None => match key.len() {
                // A key is 39 bytes: with its padding, one 64-byte block.
                KEY_LEN => sha256_one_block(key.as_bytes()),
                _ => Sha256::digest(key.as_bytes()).into(),
            },
        }
    }
}

/// SHA-256 of a message short enough (at most 55 bytes) to fit one block with its padding:
/// the block is built on the stack and compressed once (with the CPU's SHA extensions when it
/// has them), skipping the streaming hasher's buffering and finalization.
fn sha256_one_block(message: &[u8]) -> KeyDigest {
    const H0: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    debug_assert!(message.len() <= 55);
    let mut block = [0u8; 64];
    block[..message.len()].copy_from_slice(message);
    block[message.len()] = 0x80;
    block[56..].copy_from_slice(&(message.len() as u64 * 8).to_be_bytes());
    let mut state = H0;
    sha2::compress256(&mut state, &[block.into()]);
    let mut digest = [0u8; 32];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// Compares two digests in constant time: every byte is looked at, whatever the first
/// difference (four 64-bit XORs folded together, one test at the end).
#[inline]
pub fn digests_equal(a: &KeyDigest, b: &KeyDigest) -> bool {
    let mut diff = 0u64;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let x = u64::from_ne_bytes(x.try_into().expect("8 bytes"));
        let y = u64::from_ne_bytes(y.try_into().expect("8 bytes"));
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// What is known of a key: everything but the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public id, `key_…`.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Human name.
    pub name: String,
    /// `ak_` + the first 4 random characters, for display.
    pub prefix: String,
    /// Scopes held.
    pub scopes: Scopes,
    /// Legacy permission flags held.
    pub permissions: Permissions,
    /// Overrides of the engine's default limits.
    pub limits: KeyLimits,
    /// Creation time (epoch ms).
    pub created_at: u64,
    /// Expiry (epoch ms), if any.
    pub expires_at: Option<u64>,
    /// Revocation time (epoch ms), if revoked.
    pub revoked_at: Option<u64>,
    /// Last authorized use (epoch ms), if any.
    pub last_used_at: Option<u64>,
}

impl KeyRecord {
    /// Whether the key has expired at `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// The expiry a rotation with `grace_ms` leaves on the old key: the earlier of its own
    /// expiry and now + grace.
    pub fn rotated_expiry(&self, now: u64, grace_ms: u64) -> u64 {
        let grace_end = now.saturating_add(grace_ms);
        self.expires_at.map_or(grace_end, |at| at.min(grace_end))
    }
}

/// A request to create a key (`POST /api/v1/keys`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Account to create the key in; only the `default` account's admins may name another.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Human name.
    #[serde(default)]
    pub name: Option<String>,
    /// Scopes to grant.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Legacy flags to grant.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Limit overrides.
    #[serde(default)]
    pub limits: KeyLimits,
    /// Expiry (epoch ms).
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// A key as returned once at creation: the record and the plaintext.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedKey {
    /// The record.
    #[serde(flatten)]
    pub record: KeyRecord,
    /// The key itself, returned this once and never again.
    pub key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_spec_format() {
        for _ in 0..200 {
            let key = generate().unwrap();
            assert_eq!(key.len(), 39);
            assert!(key.starts_with("ak_"));
            assert!(is_well_formed(&key), "{key}");
            assert_eq!(display_prefix(&key).len(), 7);
        }
    }

    #[test]
    fn checksum_matches_zlib_crc32_in_base62() {
        let random = "abcdefghijklmnopqrstuvwxyzABCD";
        // zlib.crc32(b"abcdefghijklmnopqrstuvwxyzABCD") == 0x2B14A0D3 == 722772179.
        let crc = crc32fast::hash(random.as_bytes());
        let mut n = crc;
        let mut expected = Vec::new();
        while n > 0 {
            expected.push(ALPHABET[(n % 62) as usize]);
            n /= 62;
        }
        while expected.len() < 6 {
            expected.push(b'0');
        }
        expected.reverse();
        assert_eq!(checksum(random.as_bytes()).as_bytes(), expected.as_slice());
        assert!(is_well_formed(&format!("ak_{random}{}", checksum(random.as_bytes()))));
    }

    #[test]
    fn malformed_keys_are_refused_offline() {
        let key = generate().unwrap();
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&key[..38]));
        assert!(!is_well_formed(&format!("{key}0")));
        assert!(!is_well_formed(&key.replacen("ak_", "sk_", 1)));
        let mut flipped = key.clone().into_bytes();
        flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
        assert!(!is_well_formed(std::str::from_utf8(&flipped).unwrap()));
        let mut bad_alphabet = key.into_bytes();
        bad_alphabet[5] = b'-';
        assert!(!is_well_formed(std::str::from_utf8(&bad_alphabet).unwrap()));
        assert!(!is_well_formed("ak_ééééééééééééééééééé"));
    }

    #[test]
    fn digests_are_sha256_or_peppered_hmac() {
        let key = generate().unwrap();
        let plain = Hasher::new(None).digest(&key);
        let expected: KeyDigest = Sha256::digest(key.as_bytes()).into();
        assert_eq!(plain, expected);
        for len in 0..=55 {
            let message = vec![b'k'; len];
            let expected: KeyDigest = Sha256::digest(&message).into();
            assert_eq!(sha256_one_block(&message), expected, "{len} bytes");
        }
        let peppered = Hasher::new(Some(b"pepper-pepper-pepper")).digest(&key);
        assert_ne!(plain, peppered);
        assert!(digests_equal(&plain, &expected));
        assert!(!digests_equal(&plain, &peppered));
    }
}
