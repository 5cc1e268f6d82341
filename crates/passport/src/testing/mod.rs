//! Test support (the `testing` feature): a [`Passport`] that needs no files or database
//! ([`PassportBuilder::for_tests`]), an in-memory store ([`MemoryStore`]) and user provider
//! ([`MemoryUsers`]) with the same semantics as the SQL ones, and the store conformance suite
//! every store runs ([`conformance`]).
//!
//! ```
//! # #[cfg(feature = "testing")] {
//! let passport = passport::PassportBuilder::for_tests()
//!     .tokens_can([("orders:read", "Read your orders")])
//!     .build()
//!     .unwrap();
//! assert!(passport.scopes().has_scope("orders:read"));
//! # }
//! ```

pub mod conformance;
mod memory;

use std::sync::{Arc, OnceLock};

pub use memory::{MemoryStore, MemoryUsers, scopes};

use crate::keys::{GeneratedKeys, KeySet, generate_keys};
use crate::passport::{Passport, PassportBuilder};
use crate::secret::ServerSecret;

/// A 2048-bit RSA key pair, made once per process (making one takes a moment).
pub fn test_keys() -> &'static GeneratedKeys {
    static KEYS: OnceLock<GeneratedKeys> = OnceLock::new();
    #[allow(clippy::expect_used)]
    KEYS.get_or_init(|| generate_keys(2048).expect("generate a test key pair"))
}

impl PassportBuilder {
    /// A builder for tests: an in-memory store, the process's test key, a fixed server secret;
    /// everything else as [`Passport::builder`], so chain scopes, providers and settings.
    pub fn for_tests() -> Self {
        let keys = test_keys();
        #[allow(clippy::expect_used)]
        let key_set = KeySet::from_pem(&keys.private_pem, Some(&keys.public_pem)).expect("the test key pair loads");
        #[allow(clippy::expect_used)]
        let secret = ServerSecret::from_bytes(&[7u8; 32]).expect("32 bytes");
        Passport::builder()
            .key_set(key_set)
            .server_secret(secret)
            .store(Arc::new(MemoryStore::new()))
    }
}

impl Passport {
    /// A server for tests with default settings ([`PassportBuilder::for_tests`]).
    pub fn for_tests() -> Self {
        #[allow(clippy::expect_used)]
        PassportBuilder::for_tests()
            .build()
            .expect("the default settings are valid")
    }
}
