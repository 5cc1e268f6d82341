//! Laravel Passport compatibility (`compat = "laravel"`): what a server running on an existing
//! Passport deployment's database needs to honour what Passport issued.
//!
//! Passport's refresh tokens and authorization codes are not database keys but ciphertexts of a
//! JSON payload (league/oauth2-server's `CryptTrait`), made with defuse/php-encryption v2 in
//! password mode, the password being the raw bytes of the Laravel `APP_KEY`
//! (`reference/passport-behaviour.md` §6.3):
//!
//! ```text
//! message = DE F5 02 00 ‖ salt (32) ‖ iv (16) ‖ AES-256-CTR(ekey, iv, plaintext) ‖ HMAC-SHA256(akey, all before)
//! prekey  = PBKDF2-HMAC-SHA256(SHA-256(password), salt, 100 000 rounds, 32 bytes)
//! akey    = HKDF-SHA256(prekey, salt, "DefusePHP|V2|KeyForAuthentication")
//! ekey    = HKDF-SHA256(prekey, salt, "DefusePHP|V2|KeyForEncryption")
//! ```
//!
//! sent as lowercase hex. The MAC is checked (in constant time) before anything is decrypted.
//! The 100,000 PBKDF2 rounds cost tens of milliseconds of a core, and anyone can send a
//! ciphertext-shaped string, so decryptions run on the blocking pool under the password
//! hasher's permits, and a failed one counts as a failed client authentication (counted by a
//! task of its own, so cancelling the request does not skip it).

use std::fmt;
use std::num::NonZeroU32;

use aws_lc_rs::cipher::{AES_256, DecryptingKey, DecryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::{hkdf, hmac, pbkdf2};
use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use sha2::{Digest as _, Sha256};

use crate::config::ConfigError;
use crate::secret::PasswordHasher;

const VERSION: [u8; 4] = [0xde, 0xf5, 0x02, 0x00];
const SALT_LEN: usize = 32;
const IV_LEN: usize = 16;
const MAC_LEN: usize = 32;
const MIN_LEN: usize = VERSION.len() + SALT_LEN + IV_LEN + MAC_LEN;
const PBKDF2_ROUNDS: u32 = 100_000;
const AUTHENTICATION_INFO: &[u8] = b"DefusePHP|V2|KeyForAuthentication";
const ENCRYPTION_INFO: &[u8] = b"DefusePHP|V2|KeyForEncryption";
/// The longest ciphertext we try (hex): Passport's payloads are a few hundred bytes.
const MAX_HEX_LEN: usize = 8 * 1024;

/// Which Passport's wire format and token semantics to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PassportVersion {
    /// Passport 11 and 12 (league/oauth2-server 8): `message` in error JSON, `invalid_request`
    /// 401 for a bad refresh token, client-credentials tokens with `sub: ""`.
    V12,
    /// Passport 13 (league/oauth2-server 9).
    V13,
}

impl PassportVersion {
    /// `11` and `12` are [`Self::V12`], `13` is [`Self::V13`].
    pub fn from_number(n: u32) -> Option<Self> {
        match n {
            11 | 12 => Some(Self::V12),
            13 => Some(Self::V13),
            _ => None,
        }
    }
}

/// Laravel compatibility: the Passport version whose behaviour to keep and the Laravel
/// `APP_KEY` (its raw bytes decrypt Passport's refresh tokens and codes). Prints without the
/// key.
#[derive(Clone)]
pub struct LaravelCompat {
    version: PassportVersion,
    app_key: Vec<u8>,
}

impl fmt::Debug for LaravelCompat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaravelCompat")
            .field("version", &self.version)
            .field("app_key", &"[redacted]")
            .finish()
    }
}

impl LaravelCompat {
    /// `app_key` as Laravel's `.env` holds it: `base64:` and the base64 of the key, or the raw
    /// key itself.
    pub fn new(version: PassportVersion, app_key: &str) -> Result<Self, ConfigError> {
        let app_key = app_key.trim();
        let bytes = match app_key.strip_prefix("base64:") {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| ConfigError("laravel_app_key: the part after `base64:` is not base64".into()))?,
            None => app_key.as_bytes().to_vec(),
        };
        if bytes.is_empty() {
            return Err(ConfigError("laravel_app_key is empty".into()));
        }
        Ok(Self {
            version,
            app_key: bytes,
        })
    }

    /// The Passport version.
    pub fn version(&self) -> PassportVersion {
        self.version
    }

    /// Decrypts a Passport ciphertext on the blocking pool under the password hasher's
    /// permits (one budget for every slow check: bcrypt, argon2, PBKDF2). `None` when it is not
    /// one, or not made with this key.
    pub(crate) async fn decrypt<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        hasher: &PasswordHasher,
        hex: &str,
    ) -> Option<T> {
        if !looks_like_ciphertext(hex) {
            return None;
        }
        let (key, hex) = (self.app_key.clone(), hex.to_owned());
        let plain = hasher.run(move || Ok(decrypt(&key, &hex))).await.ok()??;
        serde_json::from_slice(&plain).ok()
    }
}

/// Whether `value` has the shape of a defuse v2 ciphertext in hex (cheap; nothing is derived).
pub(crate) fn looks_like_ciphertext(value: &str) -> bool {
    value.len() >= 2 * MIN_LEN
        && value.len() <= MAX_HEX_LEN
        && value.len().is_multiple_of(2)
        && value.starts_with("def50200")
        && value.bytes().all(|b| b.is_ascii_hexdigit())
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf_sha256(prekey: &[u8], salt: &[u8], info: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
        .extract(prekey)
        .expand(&[info], Len(out.len()))
        .ok()?
        .fill(&mut out)
        .ok()?;
    Some(out)
}

/// The authentication and encryption keys of one message.
fn derive_keys(password: &[u8], salt: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    let prehash = Sha256::digest(password);
    let mut prekey = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(PBKDF2_ROUNDS)?,
        salt,
        &prehash,
        &mut prekey,
    );
    Some((
        hkdf_sha256(&prekey, salt, AUTHENTICATION_INFO)?,
        hkdf_sha256(&prekey, salt, ENCRYPTION_INFO)?,
    ))
}

/// `Crypto::decryptWithPassword($hex, $password)`: the plaintext, or `None` when the message is
/// malformed or its MAC does not verify (wrong key, altered message).
pub(crate) fn decrypt(password: &[u8], hex: &str) -> Option<Vec<u8>> {
    let message = hex::decode(hex).ok()?;
    if message.len() < MIN_LEN || message[..VERSION.len()] != VERSION {
        return None;
    }
    let (signed, mac) = message.split_at(message.len() - MAC_LEN);
    let salt = &signed[VERSION.len()..VERSION.len() + SALT_LEN];
    let iv: [u8; IV_LEN] = signed[VERSION.len() + SALT_LEN..VERSION.len() + SALT_LEN + IV_LEN]
        .try_into()
        .ok()?;
    let (akey, ekey) = derive_keys(password, salt)?;
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, &akey), signed, mac).ok()?;
    let mut plain = signed[VERSION.len() + SALT_LEN + IV_LEN..].to_vec();
    let key = DecryptingKey::ctr(UnboundCipherKey::new(&AES_256, &ekey).ok()?).ok()?;
    key.decrypt(&mut plain, DecryptionContext::Iv128(FixedLength::from(iv)))
        .ok()?;
    Some(plain)
}

/// `Crypto::encryptWithPassword`, for tests.
#[cfg(test)]
pub(crate) fn encrypt(password: &[u8], plain: &[u8], salt: [u8; SALT_LEN], iv: [u8; IV_LEN]) -> String {
    use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext};
    let (akey, ekey) = derive_keys(password, &salt).expect("keys");
    let mut body = plain.to_vec();
    let key = EncryptingKey::ctr(UnboundCipherKey::new(&AES_256, &ekey).expect("key")).expect("ctr");
    key.less_safe_encrypt(&mut body, EncryptionContext::Iv128(FixedLength::from(iv)))
        .expect("encrypt");
    let mut message = VERSION.to_vec();
    message.extend_from_slice(&salt);
    message.extend_from_slice(&iv);
    message.extend_from_slice(&body);
    let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &akey), &message);
    message.extend_from_slice(mac.as_ref());
    hex::encode(message)
}

/// An id PHP may have written as a JSON string or number (integer user and client ids).
fn lenient_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("not an id: {other}"))),
    }
}

fn lenient_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) if s.is_empty() => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s)),
        serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        other => Err(serde::de::Error::custom(format!("not an id: {other}"))),
    }
}

/// The payload of a Passport refresh token (league `BearerTokenResponse`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RefreshPayload {
    #[serde(deserialize_with = "lenient_id")]
    pub client_id: String,
    pub refresh_token_id: String,
    pub access_token_id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, deserialize_with = "lenient_opt_id")]
    pub user_id: Option<String>,
    pub expire_time: i64,
}

/// The payload of a Passport authorization code (league `AuthCodeGrant`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AuthCodePayload {
    #[serde(deserialize_with = "lenient_id")]
    pub client_id: String,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    pub auth_code_id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(deserialize_with = "lenient_id")]
    pub user_id: String,
    pub expire_time: i64,
    #[serde(default)]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub code_challenge_method: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip_and_tamper() {
        let hex = encrypt(KEY, br#"{"a":1}"#, [7; 32], [9; 16]);
        assert!(looks_like_ciphertext(&hex));
        assert_eq!(decrypt(KEY, &hex).as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(decrypt(b"another key", &hex), None);
        // One flipped ciphertext bit fails the MAC.
        let mut bytes = hex::decode(&hex).unwrap();
        bytes[VERSION.len() + SALT_LEN + IV_LEN] ^= 1;
        assert_eq!(decrypt(KEY, &hex::encode(&bytes)), None);
        assert_eq!(decrypt(KEY, &hex[..hex.len() - 2]), None);
        assert!(!looks_like_ciphertext("def50200zz"));
        assert!(!looks_like_ciphertext(
            &hex.to_uppercase().replacen("DEF50200", "abcd0200", 1)
        ));
    }

    #[test]
    fn app_key_forms() {
        let raw = LaravelCompat::new(
            PassportVersion::V13,
            "base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .unwrap();
        assert_eq!(raw.app_key, KEY);
        let plain = LaravelCompat::new(PassportVersion::V12, "0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(plain.app_key, KEY);
        assert!(LaravelCompat::new(PassportVersion::V13, "base64:%%%").is_err());
        assert!(!format!("{raw:?}").contains("MDEy"));
    }

    /// Ciphertexts defuse/php-encryption made (the Laravel fixtures, see their README).
    #[test]
    fn decrypts_what_php_encrypted() {
        let manifest: serde_json::Value = serde_json::from_str(include_str!(
            "../../passport-server/tests/fixtures/laravel/manifest.json"
        ))
        .unwrap();
        let compat = LaravelCompat::new(PassportVersion::V12, manifest["app_key"].as_str().unwrap()).unwrap();
        for version in ["12", "13"] {
            let token = &manifest["versions"][version]["refresh_tokens"]["live"];
            let plain = decrypt(&compat.app_key, token["token"].as_str().unwrap()).unwrap();
            assert_eq!(std::str::from_utf8(&plain).unwrap(), token["payload"].as_str().unwrap());
            let payload: RefreshPayload = serde_json::from_slice(&plain).unwrap();
            assert_eq!(payload.refresh_token_id, token["id"].as_str().unwrap());
            assert_eq!(payload.user_id.as_deref(), Some("1"));
            let code = &manifest["versions"][version]["auth_codes"]["spa_pkce"];
            let plain = decrypt(&compat.app_key, code["code"].as_str().unwrap()).unwrap();
            let payload: AuthCodePayload = serde_json::from_slice(&plain).unwrap();
            assert_eq!(payload.auth_code_id, code["id"].as_str().unwrap());
            assert_eq!(payload.code_challenge_method.as_deref(), Some("S256"));
        }
    }

    #[test]
    fn payloads_take_integer_ids() {
        let p: RefreshPayload = serde_json::from_str(
            r#"{"client_id":"3","refresh_token_id":"r","access_token_id":"a","scopes":["x"],"user_id":1,"expire_time":5}"#,
        )
        .unwrap();
        assert_eq!(p.user_id.as_deref(), Some("1"));
        let p: RefreshPayload = serde_json::from_str(
            r#"{"client_id":3,"refresh_token_id":"r","access_token_id":"a","scopes":[],"user_id":null,"expire_time":5}"#,
        )
        .unwrap();
        assert_eq!((p.client_id.as_str(), p.user_id), ("3", None));
    }
}
