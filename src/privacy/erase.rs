//! Erasure: a user's personal data removed or irreversibly anonymised.
//!
//! - Refused while one of their sessions is in progress (409 `SESSION_ACTIVE`) or under review
//!   (409 `LEGAL_HOLD`): the institution must decide first.
//! - First, in its own transaction, the user is deactivated (no new login or session can
//!   start) and the holds are checked under the user's row lock.
//! - Then what lives outside Postgres: the events' `meta` and `frameRef` in the event store,
//!   and every artifact and recording object. These steps are idempotent, so a failure leaves
//!   a retryable request.
//! - Then, in one transaction, the Postgres rows: name and email replaced, the password made
//!   unusable, logins deleted, fingerprints and addresses cleared, answers' contents removed
//!   (their points stay), the name and email cut out of audit rows, and one `USER_ERASED`
//!   audit row holding counts only.
//!
//! Scores, review decisions and the event types, severities and times on which they rest stay,
//! attached to the user's id, which is now a pseudonym.

use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::error::Error;
use crate::state::{AppState, HubSignal};

/// What an erasure removed.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Erased {
    /// The user, now a pseudonym.
    pub user_id: Uuid,
    /// Their sessions (kept, without fingerprints and addresses).
    pub sessions: u64,
    /// Answers whose contents were removed (points kept).
    pub answers: u64,
    /// Events whose `meta` and `frameRef` were removed.
    pub events: u64,
    /// Artifacts deleted (object and row).
    pub artifacts: u64,
    /// Recording segments deleted (object and row).
    pub recordings: u64,
    /// Logins (refresh tokens) deleted.
    pub logins: u64,
    /// Audit rows from which the name and email were cut.
    pub audit_rows: u64,
    /// When.
    pub erased_at: chrono::DateTime<chrono::Utc>,
}

/// Erases `user` on behalf of `admin`, with `reason` (stored without the user's name or
/// email).
pub async fn erase(
    state: &AppState,
    admin: Uuid,
    user: Uuid,
    reason: &str,
) -> Result<Erased, Error> {
    // 1. Deactivate and check the holds, under the user's row lock.
    let mut tx = state.db.begin().await?;
    let found: Option<(String, String, Option<chrono::DateTime<chrono::Utc>>)> =
        sqlx::query_as("SELECT email, name, erased_at FROM users WHERE id = $1 FOR UPDATE")
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((email, name, erased_at)) = found else {
        return Err(Error::NotFound { what: "user" });
    };
    if erased_at.is_some() {
        return Err(Error::conflict(
            "ALREADY_ERASED",
            "this user's personal data was already erased",
        ));
    }
    check_holds(&mut tx, user).await?;
    sqlx::query("UPDATE users SET is_active = false, updated_at = now() WHERE id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    let revoked = crate::auth::refresh::revoke_all_for_user(&mut tx, user).await?;
    tx.commit().await?;
    state.active_users.remove(&user);
    crate::auth::refresh::forget_cached(&state.redis, &state.keys, &revoked).await;
    state.signal(HubSignal::UserRevoked { user_id: user });

    // 2. Outside Postgres: events and stored objects (idempotent).
    let sessions: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM sessions WHERE candidate_id = $1")
        .bind(user)
        .fetch_all(&state.db)
        .await?;
    let events = state
        .event_store
        .erase_personal(&sessions)
        .await
        .map_err(|e| match e {
            crate::events::StoreError::Unavailable(_) => Error::store_unavailable(),
            other => Error::Internal(other.to_string()),
        })?;
    let (artifacts, recordings) =
        crate::events::retention::delete_session_objects(state, &sessions).await?;
    forget_in_redis(state, &sessions).await;

    // 3. Postgres, in one transaction.
    let mut tx = state.db.begin().await?;
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    check_holds(&mut tx, user).await?;
    let erased_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "UPDATE users SET email = 'erased-' || id || '@erased.invalid', name = 'Erased user',
                password_hash = '!erased', is_active = false, erased_at = now(),
                updated_at = now()
          WHERE id = $1 RETURNING erased_at",
    )
    .bind(user)
    .fetch_one(&mut *tx)
    .await?;
    let logins = sqlx::query("DELETE FROM refresh_sessions WHERE user_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let session_rows = sqlx::query(
        "UPDATE sessions SET device_fingerprint = NULL, ip_address = NULL,
                mobile_device_fingerprint = NULL, mobile_device_token_hash = NULL,
                candidate_socket_id = NULL, mobile_socket_id = NULL
          WHERE candidate_id = $1",
    )
    .bind(user)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let answers = sqlx::query(
        "UPDATE answers SET response_json = 'null'::jsonb, updated_at = now()
          WHERE session_id IN (SELECT id FROM sessions WHERE candidate_id = $1)
            AND response_json <> 'null'::jsonb",
    )
    .bind(user)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let audit_rows = scrub_audit(&mut tx, user, &email, &name).await?;
    let erased = Erased {
        user_id: user,
        sessions: session_rows,
        answers,
        events,
        artifacts,
        recordings,
        logins,
        audit_rows,
        erased_at,
    };
    let counts = serde_json::to_value(&erased).unwrap_or(Value::Null);
    audit::record(
        &mut *tx,
        AuditEntry {
            session_id: None,
            actor_id: Some(admin),
            target_user_id: Some(user),
            action_type: "USER_ERASED",
            reason: &scrub_text(reason, &[&email, &name]),
            payload: Some(json!({"erased": counts})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(erased)
}

/// 409 while a session of `user` is in progress or under review.
async fn check_holds(tx: &mut sqlx::PgConnection, user: Uuid) -> Result<(), Error> {
    let (active, held): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*) FILTER (WHERE s.status = 'STARTED'),
                count(*) FILTER (WHERE {})
           FROM sessions s WHERE s.candidate_id = $1",
        crate::events::retention::UNDER_REVIEW
    ))
    .bind(user)
    .fetch_one(&mut *tx)
    .await?;
    if active > 0 {
        return Err(Error::conflict(
            "SESSION_ACTIVE",
            "the user has a session in progress; erase after it ends and is reviewed",
        ));
    }
    if held > 0 {
        return Err(Error::conflict(
            "LEGAL_HOLD",
            format!("{held} session(s) of this user are under review; decide them first"),
        ));
    }
    Ok(())
}

/// Cuts the email (from any audit row that mentions it) and the name (from the rows about
/// the user or their sessions; a short name may be an ordinary word elsewhere) out of audit
/// reasons and payloads, case-insensitively; returns how many rows changed.
async fn scrub_audit(
    tx: &mut sqlx::PgConnection,
    user: Uuid,
    email: &str,
    name: &str,
) -> Result<u64, Error> {
    let mut changed = 0;
    for (secret, anywhere) in [(email, true), (name, false)] {
        if secret.trim().len() < 2 {
            continue;
        }
        // The text as it appears inside a JSON string (quotes and backslashes escaped).
        let encoded = serde_json::to_string(secret).unwrap_or_default();
        let inner = &encoded[1..encoded.len().saturating_sub(1)];
        changed += sqlx::query(
            "UPDATE admin_actions
                SET reason = regexp_replace(reason, $2, '[erased]', 'gi'),
                    payload_json = regexp_replace(payload_json::text, $3, '[erased]', 'gi')::jsonb
              WHERE (target_user_id = $1
                     OR session_id IN (SELECT id FROM sessions WHERE candidate_id = $1)
                     OR ($4 AND (reason ILIKE '%' || $5 || '%'
                                 OR payload_json::text ILIKE '%' || $6 || '%')))
                AND (reason ~* $2 OR payload_json::text ~* $3)",
        )
        .bind(user)
        .bind(regex_literal(secret))
        .bind(regex_literal(inner))
        .bind(anywhere)
        .bind(like_literal(secret))
        .bind(like_literal(inner))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    // Keys that hold personal data whatever their value.
    changed += sqlx::query(
        "UPDATE admin_actions
            SET payload_json = payload_json - 'email' - 'name' - 'deviceFingerprint'
                               - 'ipAddress'
          WHERE (target_user_id = $1
                 OR session_id IN (SELECT id FROM sessions WHERE candidate_id = $1))
            AND payload_json ?| ARRAY['email', 'name', 'deviceFingerprint', 'ipAddress']",
    )
    .bind(user)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(changed)
}

/// `text` with `secrets` replaced by `[erased]`, any case.
fn scrub_text(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.trim().len() >= 2) {
        let lower = out.to_lowercase();
        let needle = s.to_lowercase();
        let mut result = String::with_capacity(out.len());
        let mut last = 0;
        for (at, _) in lower.match_indices(&needle) {
            // Lowercasing may change byte lengths; only replace where indices line up.
            if out.is_char_boundary(at) && out.is_char_boundary(at + needle.len()) {
                result.push_str(&out[last..at]);
                result.push_str("[erased]");
                last = at + needle.len();
            }
        }
        result.push_str(&out[last..]);
        out = result;
    }
    out
}

/// A POSIX regular expression matching `s` literally.
fn regex_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A LIKE pattern matching `s` literally.
fn like_literal(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The session's pairing and phone records in Redis.
async fn forget_in_redis(state: &AppState, sessions: &[Uuid]) {
    let mut keys = Vec::new();
    for s in sessions {
        keys.push(state.keys.mobile_device(*s));
        keys.push(state.keys.pairing_of_session(*s));
    }
    for chunk in keys.chunks(500) {
        let mut redis = state.redis.clone();
        let r: Result<(), redis::RedisError> =
            redis::cmd("DEL").arg(chunk).query_async(&mut redis).await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "cannot delete an erased user's pairing records");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_any_case() {
        assert_eq!(
            scrub_text(
                "Ada Lovelace (ADA@x.org) asked",
                &["ada@x.org", "Ada Lovelace"]
            ),
            "[erased] ([erased]) asked"
        );
        assert_eq!(scrub_text("nothing here", &["ada@x.org"]), "nothing here");
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(regex_literal("a.b+c@x.org"), "a\\.b\\+c@x\\.org");
        assert_eq!(like_literal("50%_off"), "50\\%\\_off");
    }
}
