//! The outbox in Postgres: messages written with the change they report, their deliveries
//! claimed by senders, and the outcome of every attempt.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::error::Error;

/// Writes a message of `event_type` about `session` (if any) with `data`, and one delivery for
/// every enabled endpoint subscribed to the type, in the caller's transaction. Nothing is
/// written when no endpoint subscribes. Returns the message id when one was written.
pub async fn enqueue(
    db: impl PgExecutor<'_>,
    event_type: &str,
    session: Option<Uuid>,
    data: Value,
) -> Result<Option<Uuid>, Error> {
    let id = Uuid::now_v7();
    let body = json!({"type": event_type, "timestamp": Utc::now(), "data": data});
    let row: Option<(Uuid,)> = sqlx::query_as(
        "WITH targets AS (
             SELECT id FROM webhook_endpoints WHERE enabled AND $2 = ANY (event_types)),
         m AS (
             INSERT INTO webhook_messages (id, event_type, session_id, body)
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM targets)
             RETURNING id),
         d AS (
             INSERT INTO webhook_deliveries (id, endpoint_id, message_id, order_key)
             SELECT gen_random_uuid(), t.id, m.id, COALESCE($3, m.id) FROM targets t, m)
         SELECT id FROM m",
    )
    .bind(id)
    .bind(event_type)
    .bind(session)
    .bind(body)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| r.0))
}

/// Writes a message for one endpoint only (the test ping), whatever it subscribes to.
pub async fn enqueue_for(
    db: impl PgExecutor<'_>,
    endpoint: Uuid,
    event_type: &str,
    data: Value,
) -> Result<Uuid, Error> {
    let id = Uuid::now_v7();
    let body = json!({"type": event_type, "timestamp": Utc::now(), "data": data});
    let (delivery,): (Uuid,) = sqlx::query_as(
        "WITH m AS (
             INSERT INTO webhook_messages (id, event_type, session_id, body)
             VALUES ($1, $2, NULL, $3) RETURNING id)
         INSERT INTO webhook_deliveries (id, endpoint_id, message_id, order_key)
         SELECT gen_random_uuid(), $4, m.id, m.id FROM m
         RETURNING id",
    )
    .bind(id)
    .bind(event_type)
    .bind(body)
    .bind(endpoint)
    .fetch_one(db)
    .await?;
    Ok(delivery)
}

/// A delivery a sender holds the lease of.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    /// The delivery.
    pub id: Uuid,
    /// The message id (the `webhook-id` header).
    pub message_id: Uuid,
    /// Where it goes.
    pub endpoint_id: Uuid,
    /// The endpoint's URL.
    pub url: String,
    /// The endpoint's `whsec_` secret.
    pub secret: String,
    /// The body to send.
    pub body: Value,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// When the delivery was created.
    pub created_at: DateTime<Utc>,
}

/// Claims up to `limit` due deliveries: the oldest pending one of each (endpoint, session)
/// whose endpoint is enabled and has fewer than `per_endpoint` attempts in flight, leased for
/// `lease_ms`. Rows another process is claiming at the same moment are skipped.
pub async fn claim(
    db: &PgPool,
    limit: i64,
    per_endpoint: i64,
    lease_ms: i64,
) -> Result<Vec<Claimed>, Error> {
    Ok(sqlx::query_as(
        "WITH busy AS (
             SELECT endpoint_id, count(*) AS n FROM webhook_deliveries
              WHERE state = 'PENDING' AND lease_until > now() GROUP BY endpoint_id),
         due AS (
             SELECT d.id, d.endpoint_id,
                    row_number() OVER (PARTITION BY d.endpoint_id
                                       ORDER BY d.next_attempt_at, d.seq) AS rn
               FROM webhook_deliveries d
               JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
              WHERE d.state = 'PENDING' AND d.next_attempt_at <= now()
                AND (d.lease_until IS NULL OR d.lease_until <= now())
                AND NOT EXISTS (
                    SELECT 1 FROM webhook_deliveries p
                     WHERE p.endpoint_id = d.endpoint_id AND p.order_key = d.order_key
                       AND p.state = 'PENDING' AND p.seq < d.seq)
              ORDER BY d.next_attempt_at, d.seq
              LIMIT 1000),
         pick AS (
             SELECT d.id FROM webhook_deliveries d
               JOIN due ON due.id = d.id
               LEFT JOIN busy ON busy.endpoint_id = due.endpoint_id
              WHERE due.rn <= $2 - COALESCE(busy.n, 0)
              ORDER BY d.next_attempt_at, d.seq
              LIMIT $1
                FOR UPDATE OF d SKIP LOCKED),
         leased AS (
             UPDATE webhook_deliveries d
                SET lease_until = now() + make_interval(secs => $3::float8 / 1000),
                    attempts = d.attempts + 1
               FROM pick WHERE d.id = pick.id
                AND (d.lease_until IS NULL OR d.lease_until <= now()) AND d.state = 'PENDING'
             RETURNING d.id, d.message_id, d.endpoint_id, d.attempts, d.created_at)
         SELECT l.id, l.message_id, l.endpoint_id, e.url, e.secret, m.body, l.attempts,
                l.created_at
           FROM leased l
           JOIN webhook_endpoints e ON e.id = l.endpoint_id
           JOIN webhook_messages m ON m.id = l.message_id",
    )
    .bind(limit)
    .bind(per_endpoint)
    .bind(lease_ms)
    .fetch_all(db)
    .await?)
}

/// One attempt's outcome.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The HTTP status, if a response came.
    pub status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i32,
    /// The node that sent it.
    pub node: String,
}

/// Records a successful attempt: the delivery is done, the endpoint healthy again, and its
/// other waiting deliveries are due now (a receiver that comes back gets its backlog at once).
pub async fn delivered(db: &PgPool, c: &Claimed, a: &Attempt) -> Result<(), Error> {
    let mut tx = db.begin().await?;
    record_attempt(&mut *tx, c.id, a).await?;
    sqlx::query(
        "UPDATE webhook_deliveries SET state = 'DELIVERED', delivered_at = now(),
                lease_until = NULL, last_status = $2, last_error = NULL
          WHERE id = $1",
    )
    .bind(c.id)
    .bind(a.status.map(i32::from))
    .execute(&mut *tx)
    .await?;
    let recovered = sqlx::query(
        "UPDATE webhook_endpoints SET failing_since = NULL
          WHERE id = $1 AND failing_since IS NOT NULL",
    )
    .bind(c.endpoint_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if recovered > 0 {
        sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = now()
              WHERE endpoint_id = $1 AND state = 'PENDING' AND next_attempt_at > now()",
        )
        .bind(c.endpoint_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Records a failed attempt: retry at `retry_in`, or mark the delivery failed (`None`). The
/// endpoint starts (or keeps) failing; failing longer than `disable_after_secs` disables it,
/// with an audit row. Returns whether this disabled the endpoint.
pub async fn failed(
    db: &PgPool,
    c: &Claimed,
    a: &Attempt,
    retry_in: Option<std::time::Duration>,
    disable_after_secs: f64,
) -> Result<bool, Error> {
    let mut tx = db.begin().await?;
    record_attempt(&mut *tx, c.id, a).await?;
    sqlx::query(
        "UPDATE webhook_deliveries
            SET state = CASE WHEN $2::float8 IS NULL THEN 'FAILED' ELSE 'PENDING' END,
                next_attempt_at = now() + make_interval(secs => COALESCE($2::float8, 0)),
                lease_until = NULL, last_status = $3, last_error = $4
          WHERE id = $1",
    )
    .bind(c.id)
    .bind(retry_in.map(|d| d.as_secs_f64()))
    .bind(a.status.map(i32::from))
    .bind(a.error.as_deref())
    .execute(&mut *tx)
    .await?;
    // In SET, columns are the values before this update.
    let (disabled,): (bool,) = sqlx::query_as(
        "UPDATE webhook_endpoints
            SET failing_since = COALESCE(failing_since, now()),
                enabled = enabled AND NOT COALESCE(failing_since < now() - make_interval(secs => $2), false),
                disabled_at = CASE WHEN enabled AND failing_since < now() - make_interval(secs => $2)
                                   THEN now() ELSE disabled_at END,
                disabled_reason = CASE WHEN enabled AND failing_since < now() - make_interval(secs => $2)
                                       THEN 'failing since ' || to_char(failing_since AT TIME ZONE 'UTC',
                                            'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
                                       ELSE disabled_reason END
          WHERE id = $1
      RETURNING NOT enabled AND disabled_at = now()",
    )
    .bind(c.endpoint_id)
    .bind(disable_after_secs)
    .fetch_optional(&mut *tx)
    .await?
    .unwrap_or((false,));
    if disabled {
        crate::audit::record(
            &mut *tx,
            crate::audit::AuditEntry {
                session_id: None,
                actor_id: None,
                target_user_id: None,
                action_type: "WEBHOOK_DISABLED",
                reason: "the endpoint failed every attempt for longer than allowed",
                payload: Some(json!({"endpointId": c.endpoint_id, "lastError": a.error,
                                     "lastStatus": a.status})),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(disabled)
}

async fn record_attempt(db: impl PgExecutor<'_>, delivery: Uuid, a: &Attempt) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, status, error, duration_ms, node)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(delivery)
    .bind(a.status.map(i32::from))
    .bind(a.error.as_deref())
    .bind(a.duration_ms)
    .bind(&a.node)
    .execute(db)
    .await?;
    Ok(())
}
