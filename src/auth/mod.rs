//! Authentication: password hashing, access tokens (JWT), rotating refresh tokens and
//! login throttling. HTTP handlers live in `http::auth`; this module holds the rules.

pub mod jwt;
pub mod limiter;
pub mod password;
pub mod refresh;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 32 random bytes (256 bits) from the OS generator, base64url without padding.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex SHA-256 of a secret: what is stored and keyed on instead of the secret itself.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
