//! Access tokens: HS256 JWTs of at most 15 minutes with `iss`, `aud`, `exp`, `nbf`, `iat`,
//! `typ` and a `kid` header naming the key, so keys can rotate (previous keys still verify).
//! Validation is strict: one algorithm, required claims, leeway of 5 seconds, and `typ` must be
//! `access` (refresh tokens are opaque and never parse as a JWT anyway).
//!
//! A token that verified is remembered, whole, until it expires: a client sends the same
//! token with every request for up to 15 minutes, and decoding it again (two base64 parts,
//! two JSON documents, an HMAC) was a tenth of an autosave's CPU. Only a byte-identical token,
//! signature included, hits; a hit still checks the expiry. Expired tokens are swept out at
//! most once a minute as new ones arrive, so the map holds about the tokens alive now. Only
//! request tokens are remembered ([`JwtKeys::verify`]): a socket shows its token once, when it
//! connects ([`JwtKeys::verify_once`]), and remembering it would only hold memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::JwtConfig;
use crate::error::Error;
use crate::model::Role;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id (for MOBILE, the candidate who owns the session).
    pub sub: Uuid,
    /// Role the bearer acts as.
    pub role: Role,
    /// For MOBILE tokens: the one session the phone is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// Always `access`.
    pub typ: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch.
    pub nbf: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Unique token id (for logs and revocation lists).
    pub jti: Uuid,
}

struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Key {
    fn new(secret: &str) -> Self {
        Key {
            kid: crate::auth::sha256_hex(secret)[..16].to_string(),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }
}

/// Seconds of clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 5;

/// Verified tokens remembered at most; past this the memory is simply cleared (a token is
/// cheap to verify again). About 0.5 KB each.
const VERIFIED_LIMIT: usize = 20_000;

/// Seconds between sweeps of expired tokens out of the remembered ones.
const PRUNE_EVERY_SECS: u64 = 60;

/// Signs and verifies access tokens.
pub struct JwtKeys {
    /// The key new tokens are signed with.
    current: Key,
    /// Keys that still verify (rotation).
    previous: Vec<Key>,
    /// Validation rules shared by every verification.
    validation: Validation,
    /// Claims written into every token.
    issuer: String,
    audience: String,
    access_ttl_secs: u64,
    /// Tokens that verified, by their whole text.
    verified: DashMap<Box<str>, Claims>,
    /// When the next newly remembered token sweeps out the expired ones (epoch seconds).
    next_prune: AtomicU64,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl JwtKeys {
    /// Builds the key set from configuration.
    pub fn new(cfg: &JwtConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[cfg.issuer.as_str()]);
        validation.set_audience(&[cfg.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        JwtKeys {
            current: Key::new(cfg.secret.expose_secret()),
            previous: cfg
                .previous_secrets
                .iter()
                .map(|s| Key::new(s.expose_secret()))
                .collect(),
            validation,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            access_ttl_secs: cfg.access_ttl.as_secs(),
            verified: DashMap::new(),
            next_prune: AtomicU64::new(0),
        }
    }

    /// Lifetime of an access token, in seconds.
    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl_secs
    }

    /// Mints an access token.
    pub fn issue(&self, sub: Uuid, role: Role, sid: Option<Uuid>) -> Result<String, Error> {
        let now = unix_now();
        let claims = Claims {
            sub,
            role,
            sid,
            typ: "access".into(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + self.access_ttl_secs,
            nbf: now,
            iat: now,
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current.kid.clone());
        encode(&header, &claims, &self.current.encoding)
            .map_err(|e| Error::Internal(format!("jwt encode: {e}")))
    }

    /// Verifies an access token and returns its claims, or 401 `INVALID_TOKEN`; remembers it
    /// until it expires (a request's bearer token comes again with the next request).
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        self.verify_at(token, unix_now(), true)
    }

    /// [`Self::verify`] for a token shown once (a socket's, when it connects): a remembered
    /// token still hits, but this one is not added.
    pub fn verify_once(&self, token: &str) -> Result<Claims, Error> {
        self.verify_at(token, unix_now(), false)
    }

    /// [`Self::verify`] with the clock at `now` for remembered tokens (a token not yet
    /// remembered is checked against the system clock as well); `keep`: remember it.
    fn verify_at(&self, token: &str, now: u64, keep: bool) -> Result<Claims, Error> {
        let invalid = || Error::unauthenticated("INVALID_TOKEN", "invalid or expired access token");
        let current = |c: &Claims| unexpired(c, now) && c.nbf <= now + LEEWAY_SECS;
        if let Some(claims) = self.verified.get(token) {
            return if current(&claims) {
                Ok(claims.clone())
            } else {
                drop(claims);
                self.verified.remove(token);
                Err(invalid())
            };
        }
        let claims = self.decode(token).ok_or_else(invalid)?;
        if !current(&claims) {
            return Err(invalid());
        }
        if keep {
            self.remember(token, &claims, now);
        }
        Ok(claims)
    }

    /// Remembers a token that verified; first sweeps out the expired ones if a sweep is due
    /// (one caller wins the sweep), and clears everything at [`VERIFIED_LIMIT`].
    fn remember(&self, token: &str, claims: &Claims, now: u64) {
        let due = self.next_prune.load(Ordering::Relaxed);
        if now >= due
            && self
                .next_prune
                .compare_exchange(
                    due,
                    now + PRUNE_EVERY_SECS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.verified.retain(|_, c| unexpired(c, now));
        }
        if self.verified.len() >= VERIFIED_LIMIT {
            self.verified.clear();
        }
        self.verified.insert(token.into(), claims.clone());
    }

    /// The claims of a token whose header, signature and claims are all valid.
    fn decode(&self, token: &str) -> Option<Claims> {
        let header = decode_header(token).ok()?;
        if header.alg != Algorithm::HS256 {
            return None;
        }
        let kid = header.kid.as_deref()?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.kid == kid)?;
        let claims = decode::<Claims>(token, &key.decoding, &self.validation)
            .ok()?
            .claims;
        let valid =
            claims.typ == "access" && !(claims.role == Role::Mobile && claims.sid.is_none());
        valid.then_some(claims)
    }
}

/// Whether a token's `exp`, with the leeway, is not yet past at `now`.
fn unexpired(claims: &Claims, now: u64) -> bool {
    claims.exp + LEEWAY_SECS >= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use std::time::Duration;

    fn cfg(secret: &str) -> JwtConfig {
        JwtConfig {
            secret: secret.to_string().into(),
            previous_secrets: vec![],
            issuer: "proctor-hub".into(),
            audience: "proctor-hub".into(),
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(3600),
            refresh_family_ttl: Duration::from_secs(3600),
            refresh_grace: Duration::from_secs(10),
            generated: false,
        }
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn forge(keys: &JwtKeys, claims: &Claims, header: Header) -> String {
        encode(&header, claims, &keys.current.encoding).unwrap()
    }

    fn claims(keys: &JwtKeys) -> Claims {
        let now = unix_now();
        Claims {
            sub: Uuid::new_v4(),
            role: Role::Admin,
            sid: None,
            typ: "access".into(),
            iss: keys.issuer.clone(),
            aud: keys.audience.clone(),
            exp: now + 60,
            nbf: now,
            iat: now,
            jti: Uuid::new_v4(),
        }
    }

    fn header(keys: &JwtKeys) -> Header {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(keys.current.kid.clone());
        h
    }

    #[test]
    fn roundtrip() {
        let keys = JwtKeys::new(&cfg(SECRET));
        let user = Uuid::new_v4();
        let t = keys.issue(user, Role::Proctor, None).unwrap();
        let c = keys.verify(&t).unwrap();
        assert_eq!(c.sub, user);
        assert_eq!(c.role, Role::Proctor);
        assert!(c.exp - c.iat <= 900);
    }

    #[test]
    fn rejects_expired_future_wrong_audience_issuer_type_and_kid() {
        let keys = JwtKeys::new(&cfg(SECRET));
        let mut c = claims(&keys);
        c.exp = unix_now() - 60;
        assert!(
            keys.verify(&forge(&keys, &c, header(&keys))).is_err(),
            "expired"
        );

        let mut c = claims(&keys);
        c.nbf = unix_now() + 60;
        assert!(
            keys.verify(&forge(&keys, &c, header(&keys))).is_err(),
            "not yet valid"
        );

        let mut c = claims(&keys);
        c.aud = "someone-else".into();
        assert!(
            keys.verify(&forge(&keys, &c, header(&keys))).is_err(),
            "audience"
        );

        let mut c = claims(&keys);
        c.iss = "evil".into();
        assert!(
            keys.verify(&forge(&keys, &c, header(&keys))).is_err(),
            "issuer"
        );

        let mut c = claims(&keys);
        c.typ = "refresh".into();
        assert!(
            keys.verify(&forge(&keys, &c, header(&keys))).is_err(),
            "type"
        );

        let c = claims(&keys);
        let mut h = header(&keys);
        h.kid = Some("unknown".into());
        assert!(keys.verify(&forge(&keys, &c, h)).is_err(), "kid");
        let mut h = header(&keys);
        h.kid = None;
        assert!(keys.verify(&forge(&keys, &c, h)).is_err(), "no kid");
    }

    #[test]
    fn a_remembered_token_still_expires_and_only_the_same_text_hits() {
        let keys = JwtKeys::new(&cfg(SECRET));
        let now = unix_now();
        let t = keys.issue(Uuid::new_v4(), Role::Candidate, None).unwrap();
        let first = keys.verify_at(&t, now, true).unwrap();
        assert_eq!(keys.verified.len(), 1, "remembered after it verified");
        assert_eq!(
            keys.verify_at(&t, now, true).unwrap(),
            first,
            "a hit gives the same claims"
        );

        // Within the leeway past `exp` it is still accepted; beyond, refused and forgotten.
        assert!(keys.verify_at(&t, first.exp + LEEWAY_SECS, true).is_ok());
        assert!(keys
            .verify_at(&t, first.exp + LEEWAY_SECS + 1, true)
            .is_err());
        assert_eq!(keys.verified.len(), 0, "an expired token is forgotten");

        // A token that failed is not remembered, and a remembered one does not vouch for a
        // token that differs from it only in its signature.
        let t = keys.issue(Uuid::new_v4(), Role::Proctor, None).unwrap();
        keys.verify(&t).unwrap();
        let mut tampered = t.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(keys.verify(&tampered).is_err());
        assert_eq!(keys.verified.len(), 1);
        let other = JwtKeys::new(&cfg("another-secret-another-secret-xx"));
        assert!(other.verify(&t).is_err(), "remembered per key set");
    }

    #[test]
    fn expired_tokens_are_swept_out_as_new_ones_arrive() {
        let keys = JwtKeys::new(&cfg(SECRET));
        let now = unix_now();
        let short = keys.issue(Uuid::new_v4(), Role::Candidate, None).unwrap();
        let short_exp = keys.verify_at(&short, now, true).unwrap().exp;
        let mut c = claims(&keys);
        c.exp = short_exp + 3600;
        let long = forge(&keys, &c, header(&keys));
        // The short token has expired by then, and a sweep is due (more than a minute later).
        let later = short_exp + LEEWAY_SECS + 1;
        keys.verify_at(&long, later, true).unwrap();
        assert_eq!(keys.verified.len(), 1, "the expired token was swept out");
        assert!(keys.verified.contains_key(long.as_str()));
    }

    #[test]
    fn a_token_verified_once_is_not_remembered_but_still_hits() {
        let keys = JwtKeys::new(&cfg(SECRET));
        let socket = keys.issue(Uuid::new_v4(), Role::Proctor, None).unwrap();
        assert_eq!(keys.verify_once(&socket).unwrap().role, Role::Proctor);
        assert_eq!(keys.verified.len(), 0, "a socket's token is not remembered");
        let request = keys.issue(Uuid::new_v4(), Role::Candidate, None).unwrap();
        let claims = keys.verify(&request).unwrap();
        assert_eq!(keys.verify_once(&request).unwrap(), claims);
        assert_eq!(keys.verified.len(), 1);
        assert!(keys.verify_once("not.a.token").is_err());
    }

    #[test]
    fn remembered_tokens_are_bounded() {
        let keys = JwtKeys::new(&cfg(SECRET));
        for _ in 0..VERIFIED_LIMIT + 10 {
            let t = keys.issue(Uuid::new_v4(), Role::Candidate, None).unwrap();
            keys.verify(&t).unwrap();
        }
        assert!(keys.verified.len() <= VERIFIED_LIMIT);
    }

    #[test]
    fn rejects_wrong_signature_none_and_other_algorithms() {
        let keys = JwtKeys::new(&cfg(SECRET));
        let other = JwtKeys::new(&cfg("another-secret-another-secret-xx"));
        let t = other.issue(Uuid::new_v4(), Role::Admin, None).unwrap();
        assert!(keys.verify(&t).is_err(), "foreign key");

        // alg=none with the right kid and valid claims.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let head = b64.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            keys.current.kid
        ));
        let body = b64.encode(serde_json::to_vec(&claims(&keys)).unwrap());
        assert!(keys.verify(&format!("{head}.{body}.")).is_err(), "alg none");

        // HS512 signed with the same secret (algorithm confusion).
        let mut h = Header::new(Algorithm::HS512);
        h.kid = Some(keys.current.kid.clone());
        assert!(
            keys.verify(&forge(&keys, &claims(&keys), h)).is_err(),
            "HS512"
        );

        let t = keys.issue(Uuid::new_v4(), Role::Admin, None).unwrap();
        let mut tampered = t.clone();
        tampered.pop();
        tampered.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.verify(&tampered).is_err(), "tampered signature");
        assert!(keys.verify("not-a-jwt").is_err());
    }

    #[test]
    fn previous_keys_still_verify_after_rotation() {
        let old = JwtKeys::new(&cfg(SECRET));
        let token = old.issue(Uuid::new_v4(), Role::Candidate, None).unwrap();
        let mut rotated = cfg("a-brand-new-secret-a-brand-new-secret");
        rotated.previous_secrets = vec![SECRET.to_string().into()];
        let new = JwtKeys::new(&rotated);
        assert!(new.verify(&token).is_ok());
        let without = JwtKeys::new(&cfg("a-brand-new-secret-a-brand-new-secret"));
        assert!(without.verify(&token).is_err());
    }

    #[test]
    fn mobile_tokens_need_a_session() {
        let keys = JwtKeys::new(&cfg(SECRET));
        let mut c = claims(&keys);
        c.role = Role::Mobile;
        assert!(keys.verify(&forge(&keys, &c, header(&keys))).is_err());
        let t = keys
            .issue(Uuid::new_v4(), Role::Mobile, Some(Uuid::new_v4()))
            .unwrap();
        assert!(keys.verify(&t).is_ok());
    }
}
