//! Rotating refresh tokens with reuse detection (RFC 9700 §4.14).
//!
//! A refresh token is 256 random bits, opaque to clients; only its SHA-256 (`token_jti`) is
//! stored. Every use spends the token in one guarded `UPDATE` and inserts its successor in the
//! same family. The successor's secret is derived from the spent token with an HMAC under a
//! server key, so a client that lost the response and retries from the same device within the
//! grace period gets the *same* successor (and so do concurrent uses of one token: exactly one
//! successor exists). Any other use of a spent token revokes the whole family and is audited.
//! Redis keeps `refresh:{jti}` as a cache for other readers; it is never consulted to accept a
//! token, so a flushed Redis cannot bring a revoked token back.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use redis::aio::ConnectionManager;
use secrecy::ExposeSecret;
use sha2::Sha256;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::{random_token, sha256_hex};
use crate::config::JwtConfig;
use crate::error::Error;
use crate::store::redis::{best_effort, Keys};

/// A freshly minted refresh token.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The secret handed to the client (never stored).
    pub token: String,
    /// When this token stops working.
    pub expires_at: DateTime<Utc>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug)]
pub enum Rotation {
    /// The token was valid (or a retry within the grace): here is its successor.
    Rotated {
        /// Whose token it was.
        user_id: Uuid,
        /// The successor.
        issued: Issued,
    },
    /// A spent token was replayed: the family is now revoked.
    Reused {
        /// Whose family was revoked (their sockets should close).
        user_id: Uuid,
    },
    /// Unknown, revoked or expired.
    Invalid,
}

/// Refresh-token operations over Postgres (authority) and Redis (cache).
pub struct RefreshTokens<'a> {
    /// Postgres pool.
    pub db: &'a PgPool,
    /// Redis connection for the cache.
    pub redis: &'a ConnectionManager,
    /// Key layout.
    pub keys: &'a Keys,
    /// Lifetimes, grace and the derivation key.
    pub cfg: &'a JwtConfig,
}

impl RefreshTokens<'_> {
    fn successor_of(&self, token: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.cfg.secret.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"refresh-successor\0");
        mac.update(token.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Starts a new family (at login).
    pub async fn issue_family(
        &self,
        user_id: Uuid,
        fingerprint: Option<&str>,
        ip: Option<&str>,
    ) -> Result<Issued, Error> {
        let token = random_token();
        let jti = sha256_hex(&token);
        let family_ttl = self.cfg.refresh_family_ttl.as_secs_f64();
        let ttl = self.cfg.refresh_ttl.as_secs_f64();
        let expires_at: DateTime<Utc> = sqlx::query_scalar(
            "INSERT INTO refresh_sessions
                 (id, user_id, token_jti, family_id, device_fingerprint, ip_address,
                  family_expires_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6,
                     now() + make_interval(secs => $7),
                     now() + make_interval(secs => least($7, $8)))
             RETURNING expires_at",
        )
        .bind(Uuid::new_v4())
        .bind(user_id)
        .bind(&jti)
        .bind(Uuid::new_v4())
        .bind(fingerprint)
        .bind(ip)
        .bind(family_ttl)
        .bind(ttl)
        .fetch_one(self.db)
        .await?;
        self.cache_put(&jti, user_id, expires_at).await;
        Ok(Issued { token, expires_at })
    }

    /// Presents `token` for rotation.
    pub async fn rotate(
        &self,
        token: &str,
        fingerprint: Option<&str>,
        ip: Option<&str>,
    ) -> Result<Rotation, Error> {
        let jti = sha256_hex(token);
        let successor = self.successor_of(token);
        let successor_jti = sha256_hex(&successor);
        let mut tx = self.db.begin().await?;

        let spent: Option<(Uuid, Uuid)> = sqlx::query_as(
            "UPDATE refresh_sessions r SET used_at = now(), replaced_by_jti = $2
              FROM users u
             WHERE r.token_jti = $1 AND u.id = r.user_id AND u.is_active
               AND r.used_at IS NULL AND r.revoked_at IS NULL
               AND r.expires_at > now() AND r.family_expires_at > now()
            RETURNING r.user_id, r.family_id",
        )
        .bind(&jti)
        .bind(&successor_jti)
        .fetch_optional(&mut *tx)
        .await?;

        if let Some((user_id, family_id)) = spent {
            let expires_at: DateTime<Utc> = sqlx::query_scalar(
                "INSERT INTO refresh_sessions
                     (id, user_id, token_jti, family_id, parent_jti, device_fingerprint,
                      ip_address, family_expires_at, expires_at)
                 SELECT $1, user_id, $2, family_id, token_jti, $3, $4, family_expires_at,
                        least(family_expires_at, now() + make_interval(secs => $5))
                   FROM refresh_sessions WHERE token_jti = $6
                 RETURNING expires_at",
            )
            .bind(Uuid::new_v4())
            .bind(&successor_jti)
            .bind(fingerprint)
            .bind(ip)
            .bind(self.cfg.refresh_ttl.as_secs_f64())
            .bind(&jti)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::debug!(%user_id, %family_id, "refresh token rotated");
            self.cache_del(&jti).await;
            self.cache_put(&successor_jti, user_id, expires_at).await;
            return Ok(Rotation::Rotated {
                user_id,
                issued: Issued {
                    token: successor,
                    expires_at,
                },
            });
        }

        // Not spendable: find out why, holding the row so a concurrent revocation is ordered.
        #[derive(sqlx::FromRow)]
        struct Row {
            user_id: Uuid,
            family_id: Uuid,
            revoked: bool,
            expired: bool,
            used_within_grace: Option<bool>,
            same_device: bool,
            replaced_by_jti: Option<String>,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT user_id, family_id,
                    revoked_at IS NOT NULL AS revoked,
                    (expires_at <= now() OR family_expires_at <= now()) AS expired,
                    (used_at > now() - make_interval(secs => $2)) AS used_within_grace,
                    (device_fingerprint IS NOT DISTINCT FROM $3) AS same_device,
                    replaced_by_jti
               FROM refresh_sessions WHERE token_jti = $1 FOR UPDATE",
        )
        .bind(&jti)
        .bind(self.cfg.refresh_grace.as_secs_f64())
        .bind(fingerprint)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Rotation::Invalid);
        };
        if row.revoked || row.used_within_grace.is_none() {
            // Revoked, or never used yet but refused above: expired or user deactivated.
            return Ok(Rotation::Invalid);
        }

        let grace_ok = row.used_within_grace == Some(true)
            && row.same_device
            && !row.expired
            && row.replaced_by_jti.as_deref() == Some(successor_jti.as_str());
        if grace_ok {
            let live: Option<DateTime<Utc>> = sqlx::query_scalar(
                "SELECT expires_at FROM refresh_sessions
                  WHERE token_jti = $1 AND used_at IS NULL AND revoked_at IS NULL
                    AND expires_at > now()",
            )
            .bind(&successor_jti)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(expires_at) = live {
                tx.commit().await?;
                return Ok(Rotation::Rotated {
                    user_id: row.user_id,
                    issued: Issued {
                        token: successor,
                        expires_at,
                    },
                });
            }
        }

        // Replay of a spent token: revoke the family and audit it, in one transaction.
        let revoked: Vec<String> = sqlx::query_scalar(
            "UPDATE refresh_sessions SET revoked_at = now()
              WHERE family_id = $1 AND revoked_at IS NULL RETURNING token_jti",
        )
        .bind(row.family_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO admin_actions (id, actor_id, target_user_id, action_type, reason, payload_json)
             VALUES ($1, NULL, $2, 'REFRESH_TOKEN_REUSED', 'a spent refresh token was presented again',
                     jsonb_build_object('familyId', $3::uuid, 'ipAddress', $4::text))",
        )
        .bind(Uuid::new_v4())
        .bind(row.user_id)
        .bind(row.family_id)
        .bind(ip)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        metrics::counter!("hub_refresh_reuse_total").increment(1);
        tracing::warn!(user_id = %row.user_id, family_id = %row.family_id, "refresh token reuse: family revoked");
        for jti in revoked {
            self.cache_del(&jti).await;
        }
        Ok(Rotation::Reused {
            user_id: row.user_id,
        })
    }

    /// Revokes the family of `token` (logout). Unknown tokens are ignored.
    pub async fn revoke_family_of(&self, token: &str) -> Result<(), Error> {
        let revoked: Vec<String> = sqlx::query_scalar(
            "UPDATE refresh_sessions SET revoked_at = now()
              WHERE revoked_at IS NULL AND family_id =
                    (SELECT family_id FROM refresh_sessions WHERE token_jti = $1)
              RETURNING token_jti",
        )
        .bind(sha256_hex(token))
        .fetch_all(self.db)
        .await?;
        for jti in revoked {
            self.cache_del(&jti).await;
        }
        Ok(())
    }

    async fn cache_put(&self, jti: &str, user_id: Uuid, expires_at: DateTime<Utc>) {
        let ttl = (expires_at - Utc::now()).num_seconds().max(1) as u64;
        let value = serde_json::json!({"userId": user_id, "expiresAt": expires_at}).to_string();
        let mut conn = self.redis.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.refresh(jti))
            .arg(value)
            .arg("EX")
            .arg(ttl);
        let put = cmd.query_async::<()>(&mut conn);
        best_effort("refresh cache write (Postgres stays the authority)", put).await;
    }

    async fn cache_del(&self, jti: &str) {
        let mut conn = self.redis.clone();
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.keys.refresh(jti));
        let del = cmd.query_async::<()>(&mut conn);
        best_effort("refresh cache delete", del).await;
    }
}

/// Revokes every refresh token of `user_id` inside `tx` (deactivation); returns their jtis so
/// the caller can drop them from the cache after commit.
pub async fn revoke_all_for_user(
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
) -> Result<Vec<String>, Error> {
    Ok(sqlx::query_scalar(
        "UPDATE refresh_sessions SET revoked_at = now()
          WHERE user_id = $1 AND revoked_at IS NULL RETURNING token_jti",
    )
    .bind(user_id)
    .fetch_all(tx)
    .await?)
}

/// Drops cached entries after a revocation committed.
pub async fn forget_cached(redis: &ConnectionManager, keys: &Keys, jtis: &[String]) {
    if jtis.is_empty() {
        return;
    }
    let mut conn = redis.clone();
    let keys: Vec<String> = jtis.iter().map(|j| keys.refresh(j)).collect();
    if let Err(e) = redis::cmd("DEL")
        .arg(keys)
        .query_async::<()>(&mut conn)
        .await
    {
        tracing::warn!(error = %e, "refresh cache delete failed");
    }
}
