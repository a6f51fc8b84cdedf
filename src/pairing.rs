//! Mobile pairing with one-time tokens in Redis.
//!
//! Minting stores `pairing:{sha256(token)}` with `SET NX EX` and remembers it as the session's
//! one live token (minting again revokes the previous one, in the same Lua script). Claiming is
//! a single `GETDEL`, so under any concurrency exactly one claim gets the value. The raw token
//! exists only in the response to the laptop (in a URL fragment) and in the phone's claim.

use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::{random_token, sha256_hex};
use crate::error::Error;
use crate::store::redis::Keys;

/// What a pairing token stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingGrant {
    /// The session the phone will join.
    pub session_id: Uuid,
    /// The candidate who minted it.
    pub candidate_id: Uuid,
}

/// The phone currently paired with a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MobileDevice {
    /// The phone's fingerprint.
    pub fingerprint: String,
    /// When it paired (RFC 3339).
    pub paired_at: String,
}

const MINT: &str = r"
local old = redis.call('GET', KEYS[1])
if old then redis.call('DEL', ARGV[4] .. old) end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
";

/// Mints the session's one live token, revoking any earlier one. Returns the raw token.
pub async fn mint(
    redis: &ConnectionManager,
    keys: &Keys,
    grant: &PairingGrant,
    ttl: Duration,
) -> Result<String, Error> {
    let token = random_token();
    let hash = sha256_hex(&token);
    let value = serde_json::to_string(grant).map_err(|e| Error::Internal(e.to_string()))?;
    let mut conn = redis.clone();
    let stored: i32 = redis::Script::new(MINT)
        .key(keys.pairing_of_session(grant.session_id))
        .key(keys.pairing(&hash))
        .arg(&hash)
        .arg(value)
        .arg(ttl.as_secs().max(1))
        .arg(keys.pairing(""))
        .invoke_async(&mut conn)
        .await?;
    if stored != 1 {
        // 256 random bits colliding with a live token: a broken generator, not bad luck.
        return Err(Error::Internal("pairing token collision".into()));
    }
    Ok(token)
}

/// Claims a token atomically: `Some` for exactly one caller, `None` for used, expired and
/// unknown tokens alike.
pub async fn claim(
    redis: &ConnectionManager,
    keys: &Keys,
    token: &str,
) -> Result<Option<PairingGrant>, Error> {
    let mut conn = redis.clone();
    let value: Option<String> = redis::cmd("GETDEL")
        .arg(keys.pairing(&sha256_hex(token)))
        .query_async(&mut conn)
        .await?;
    Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
}

/// A six-digit code both devices show, derived from the token, so the candidate can check
/// that the phone that paired is theirs.
pub fn confirm_code(token: &str) -> String {
    let digest = Sha256::digest(format!("confirm:{token}").as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 1_000_000;
    format!("{n:06}")
}

/// Records `fingerprint` as the session's phone; returns the previous one, if any.
pub async fn set_mobile_device(
    redis: &ConnectionManager,
    keys: &Keys,
    session_id: Uuid,
    device: &MobileDevice,
) -> Result<Option<MobileDevice>, Error> {
    let value = serde_json::to_string(device).map_err(|e| Error::Internal(e.to_string()))?;
    let mut conn = redis.clone();
    let old: Option<String> = redis::cmd("SET")
        .arg(keys.mobile_device(session_id))
        .arg(value)
        .arg("EX")
        .arg(24 * 3600)
        .arg("GET")
        .query_async(&mut conn)
        .await?;
    Ok(old.and_then(|v| serde_json::from_str(&v).ok()))
}

/// Forgets the session's phone (unpaired or rejected).
pub async fn clear_mobile_device(
    redis: &ConnectionManager,
    keys: &Keys,
    session_id: Uuid,
) -> Result<(), Error> {
    let mut conn = redis.clone();
    redis::cmd("DEL")
        .arg(keys.mobile_device(session_id))
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

/// An SVG QR code of `text`.
pub fn qr_svg(text: &str) -> Result<String, Error> {
    let code =
        qrcode::QrCode::new(text.as_bytes()).map_err(|e| Error::Internal(format!("qr: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirm_codes_are_six_digits_and_stable() {
        let c = confirm_code("abc");
        assert_eq!(c.len(), 6);
        assert!(c.chars().all(|ch| ch.is_ascii_digit()));
        assert_eq!(c, confirm_code("abc"));
    }

    #[test]
    fn qr_is_svg() {
        let svg = qr_svg("http://127.0.0.1:8080/pair#t=abc").unwrap();
        assert!(svg.contains("<svg"));
    }
}
