//! `/webhooks` (ADMIN): endpoints that receive signed webhooks, their deliveries and attempts,
//! a test ping and redelivery. Every change is audited in its transaction. The signing secret
//! is returned once, at creation.

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::error::Error;
use crate::http::extract::{Admin, Json, Path, Query};
use crate::http::openapi::ErrorBody;
use crate::http::page::{self, Cursor, Page};
use crate::state::AppState;
use crate::webhooks::{self, guard::Policy, outbox};

/// Most endpoints one hub holds.
pub const MAX_ENDPOINTS: i64 = 100;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, delete))
        .routes(routes!(ping))
        .routes(routes!(deliveries))
        .routes(routes!(delivery))
        .routes(routes!(redeliver))
}

/// A new endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateEndpoint {
    /// Where to POST: https (or http) on a public address.
    #[schema(
        max_length = 2048,
        example = "https://lms.example.edu/hooks/proctoring"
    )]
    url: String,
    /// The event types to receive (at least one).
    #[schema(min_items = 1, max_items = 6, example = json!(["session.ended", "review.decided"]))]
    events: Vec<String>,
    /// A `whsec_` + base64 secret of 24 to 64 bytes; generated when absent.
    secret: Option<String>,
    /// What the endpoint is for.
    #[serde(default)]
    description: String,
}

/// A change to an endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateEndpoint {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
    /// `false` disables the endpoint (nothing is sent; its deliveries wait), `true` enables it
    /// again and makes its waiting deliveries due now.
    enabled: Option<bool>,
}

/// An endpoint as listed (never with its secret).
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EndpointView {
    id: Uuid,
    url: String,
    description: String,
    #[sqlx(rename = "event_types")]
    events: Vec<String>,
    enabled: bool,
    /// Why it is disabled: by an admin, or after failing for a day.
    disabled_reason: Option<String>,
    disabled_at: Option<DateTime<Utc>>,
    /// Failing since this time (every attempt since failed).
    failing_since: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// A created endpoint, with its secret: the only time the hub shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedEndpoint {
    #[serde(flatten)]
    endpoint: EndpointView,
    /// The `whsec_` signing secret; verify `webhook-signature` with it.
    secret: String,
}

const ENDPOINT_COLUMNS: &str = "id, url, description, event_types, enabled, disabled_reason, \
                                disabled_at, failing_since, created_at";

fn validate_events(events: &[String]) -> Result<(), Error> {
    if events.is_empty() || events.len() > webhooks::EVENT_TYPES.len() {
        return Err(Error::invalid("events", "at least one event type"));
    }
    for (i, e) in events.iter().enumerate() {
        if !webhooks::EVENT_TYPES.contains(&e.as_str()) {
            return Err(Error::invalid(
                format!("events[{i}]"),
                format!("one of {}", webhooks::EVENT_TYPES.join(", ")),
            ));
        }
    }
    Ok(())
}

fn validate_description(d: &str) -> Result<(), Error> {
    if d.chars().count() > 500 {
        return Err(Error::invalid("description", "at most 500 characters"));
    }
    Ok(())
}

/// Checks a URL against the SSRF guard (form, then every address its host resolves to now).
async fn validate_url(state: &AppState, raw: &str) -> Result<String, Error> {
    let cfg = &state.config.webhooks;
    let policy = Policy {
        allow_loopback: cfg.allow_loopback,
        allow_private: cfg.allow_private,
    };
    let refused = |message: String| Error::Unprocessable {
        code: "URL_NOT_ALLOWED",
        field: "url".into(),
        message,
    };
    let url = policy.check_url(raw.trim()).map_err(refused)?;
    policy.check_resolved(&url).await.map_err(refused)?;
    Ok(url.to_string())
}

fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn validate_secret(secret: &str) -> Result<(), Error> {
    let ok = secret
        .strip_prefix("whsec_")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .is_some_and(|k| (24..=64).contains(&k.len()));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "secret",
            "whsec_ followed by the base64 of 24 to 64 random bytes",
        ))
    }
}

/// Register an endpoint (ADMIN).
///
/// The response holds the signing secret; it is not shown again. URLs on loopback, private
/// and link-local addresses are refused (422 `URL_NOT_ALLOWED`) unless the hub allows them.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body = CreateEndpoint,
    responses((status = 201, description = "Registered", body = CreatedEndpoint),
        (status = 422, description = "`VALIDATION_FAILED`, `URL_NOT_ALLOWED`", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Json(body): Json<CreateEndpoint>,
) -> Result<(StatusCode, Json<CreatedEndpoint>), Error> {
    validate_events(&body.events)?;
    validate_description(&body.description)?;
    let secret = match body.secret {
        Some(s) => {
            validate_secret(&s)?;
            s
        }
        None => new_secret(),
    };
    let url = validate_url(&state, &body.url).await?;
    let mut tx = state.db.begin().await?;
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM webhook_endpoints")
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_ENDPOINTS {
        return Err(Error::invalid(
            "url",
            format!("at most {MAX_ENDPOINTS} endpoints"),
        ));
    }
    let endpoint: EndpointView = sqlx::query_as(&format!(
        "INSERT INTO webhook_endpoints (id, url, description, event_types, secret, created_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(&url)
    .bind(body.description.trim())
    .bind(&body.events)
    .bind(&secret)
    .bind(admin.user_id)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        AuditEntry::by(
            admin.user_id,
            "WEBHOOK_CREATED",
            json!({"endpointId": endpoint.id, "url": url, "events": body.events}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint { endpoint, secret }),
    ))
}

/// A page of endpoints, or of deliveries.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Items per page (1..=500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// The registered endpoints (ADMIN).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", params(ListQuery),
    responses((status = 200, description = "A page of endpoints", body = Page<EndpointView>)))]
async fn list(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<EndpointView>>, Error> {
    let (limit, cursor) = page::parse(q.limit, q.cursor)?;
    let rows: Vec<EndpointView> = sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
          WHERE ($1::timestamptz IS NULL OR (created_at, id) > ($1, $2))
          ORDER BY created_at, id LIMIT $3"
    ))
    .bind(cursor.map(|c| c.at))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |e| Cursor {
        at: e.created_at,
        id: e.id,
    })))
}

async fn endpoint(db: impl sqlx::PgExecutor<'_>, id: Uuid) -> Result<EndpointView, Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound { what: "webhook" })
}

/// One endpoint (ADMIN).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 200, description = "The endpoint", body = EndpointView)))]
async fn show(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<Uuid>,
) -> Result<Json<EndpointView>, Error> {
    Ok(Json(endpoint(&state.db, id).await?))
}

/// Change, disable or enable an endpoint (ADMIN).
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    request_body = UpdateEndpoint,
    responses((status = 200, description = "Updated", body = EndpointView),
        (status = 422, description = "`VALIDATION_FAILED`, `URL_NOT_ALLOWED`", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateEndpoint>,
) -> Result<Json<EndpointView>, Error> {
    if let Some(events) = &body.events {
        validate_events(events)?;
    }
    if let Some(d) = &body.description {
        validate_description(d)?;
    }
    let url = match &body.url {
        Some(u) => Some(validate_url(&state, u).await?),
        None => None,
    };
    let mut tx = state.db.begin().await?;
    let view: EndpointView = sqlx::query_as(&format!(
        "UPDATE webhook_endpoints
            SET url = COALESCE($2, url), event_types = COALESCE($3, event_types),
                description = COALESCE($4, description),
                enabled = COALESCE($5, enabled),
                disabled_at = CASE WHEN $5 = false AND enabled THEN now()
                                   WHEN $5 = true THEN NULL ELSE disabled_at END,
                disabled_reason = CASE WHEN $5 = false AND enabled THEN 'disabled by an admin'
                                       WHEN $5 = true THEN NULL ELSE disabled_reason END,
                failing_since = CASE WHEN $5 = true THEN NULL ELSE failing_since END,
                updated_at = now()
          WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(id)
    .bind(url.as_deref())
    .bind(body.events.as_deref())
    .bind(body.description.as_deref().map(str::trim))
    .bind(body.enabled)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound { what: "webhook" })?;
    if body.enabled == Some(true) {
        sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = now()
              WHERE endpoint_id = $1 AND state = 'PENDING'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    audit::record(
        &mut *tx,
        AuditEntry::by(
            admin.user_id,
            "WEBHOOK_UPDATED",
            json!({"endpointId": id, "url": url, "events": body.events,
                                 "description": body.description, "enabled": body.enabled}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// Delete an endpoint and its deliveries (ADMIN).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 204, description = "Deleted")))]
async fn delete(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, Error> {
    let mut tx = state.db.begin().await?;
    let gone: Option<(String,)> =
        sqlx::query_as("DELETE FROM webhook_endpoints WHERE id = $1 RETURNING url")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((url,)) = gone else {
        return Err(Error::NotFound { what: "webhook" });
    };
    sqlx::query(
        "DELETE FROM webhook_messages m
          WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.message_id = m.id)",
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        AuditEntry::by(
            admin.user_id,
            "WEBHOOK_DELETED",
            json!({"endpointId": id, "url": url}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A delivery queued.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Queued {
    /// The delivery; follow it at `GET /webhooks/{id}/deliveries/{deliveryId}`.
    delivery_id: Uuid,
}

/// Send a `webhook.ping` to this endpoint now (ADMIN), whatever it subscribes to.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/ping", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses((status = 202, description = "Queued", body = Queued),
        (status = 409, description = "`WEBHOOK_DISABLED`", body = ErrorBody)))]
async fn ping(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, Json<Queued>), Error> {
    let mut tx = state.db.begin().await?;
    let e = endpoint(&mut *tx, id).await?;
    if !e.enabled {
        return Err(Error::conflict(
            "WEBHOOK_DISABLED",
            "enable the endpoint before pinging it",
        ));
    }
    let delivery_id =
        outbox::enqueue_for(&mut *tx, id, webhooks::PING, json!({"endpointId": id})).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { delivery_id })))
}

/// A delivery of one message to one endpoint.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeliveryView {
    id: Uuid,
    /// The `webhook-id` header's message id is `msg_` + this id without dashes.
    message_id: Uuid,
    event_type: String,
    session_id: Option<Uuid>,
    /// `PENDING`, `DELIVERED` or `FAILED` (given up after retrying for a day).
    #[schema(example = "DELIVERED")]
    state: String,
    attempts: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    last_status: Option<i32>,
    last_error: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.message_id, m.event_type, m.session_id, d.state, \
     d.attempts, CASE WHEN d.state = 'PENDING' THEN d.next_attempt_at END AS next_attempt_at, \
     d.last_status, d.last_error, d.delivered_at, d.created_at";

/// Which deliveries to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct DeliveryQuery {
    /// `PENDING`, `DELIVERED` or `FAILED`.
    state: Option<String>,
    /// Only this session's.
    session_id: Option<Uuid>,
    /// Items per page (1..=500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// The endpoint's deliveries, newest first (ADMIN).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id"), DeliveryQuery),
    responses((status = 200, description = "A page of deliveries", body = Page<DeliveryView>)))]
async fn deliveries(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<Uuid>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<Page<DeliveryView>>, Error> {
    let (limit, cursor) = page::parse(q.limit, q.cursor)?;
    if let Some(s) = &q.state {
        if !matches!(s.as_str(), "PENDING" | "DELIVERED" | "FAILED") {
            return Err(Error::bad_request(
                "INVALID_QUERY",
                "state is PENDING, DELIVERED or FAILED",
            ));
        }
    }
    endpoint(&state.db, id).await?;
    let rows: Vec<DeliveryView> = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
           JOIN webhook_messages m ON m.id = d.message_id
          WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.state = $2)
            AND ($3::uuid IS NULL OR m.session_id = $3)
            AND ($4::timestamptz IS NULL OR (d.created_at, d.id) < ($4, $5))
          ORDER BY d.created_at DESC, d.id DESC LIMIT $6"
    ))
    .bind(id)
    .bind(q.state.as_deref())
    .bind(q.session_id)
    .bind(cursor.map(|c| c.at))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |d| Cursor {
        at: d.created_at,
        id: d.id,
    })))
}

/// One attempt to send a delivery.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AttemptView {
    attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status, if it answered.
    status: Option<i32>,
    /// Why the attempt failed (timeout, connection refused, a non-2xx status).
    error: Option<String>,
    duration_ms: i32,
    /// The hub process that sent it.
    node: String,
}

/// A delivery with its body and every attempt.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DeliveryDetail {
    #[serde(flatten)]
    delivery: DeliveryView,
    /// The body sent: `{type, timestamp, data}`.
    body: Value,
    attempts_made: Vec<AttemptView>,
}

/// One delivery with its body and attempts (ADMIN).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries/{delivery}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id"),
        ("delivery" = Uuid, Path, description = "Delivery id")),
    responses((status = 200, description = "The delivery", body = DeliveryDetail)))]
async fn delivery(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
) -> Result<Json<DeliveryDetail>, Error> {
    let found: Option<DeliveryView> = sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
           JOIN webhook_messages m ON m.id = d.message_id
          WHERE d.endpoint_id = $1 AND d.id = $2"
    ))
    .bind(id)
    .bind(delivery)
    .fetch_optional(&state.db)
    .await?;
    let view = found.ok_or(Error::NotFound { what: "delivery" })?;
    let (body,): (Value,) = sqlx::query_as("SELECT body FROM webhook_messages WHERE id = $1")
        .bind(view.message_id)
        .fetch_one(&state.db)
        .await?;
    let attempts: Vec<AttemptView> = sqlx::query_as(
        "SELECT attempted_at, status, error, duration_ms, node FROM webhook_attempts
          WHERE delivery_id = $1 ORDER BY id LIMIT 500",
    )
    .bind(delivery)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(DeliveryDetail {
        delivery: view,
        body,
        attempts_made: attempts,
    }))
}

/// Send a delivery again (ADMIN): it becomes due now, whatever its state.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Endpoint id"),
        ("delivery" = Uuid, Path, description = "Delivery id")),
    responses((status = 202, description = "Queued again", body = Queued)))]
async fn redeliver(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
) -> Result<(StatusCode, Json<Queued>), Error> {
    let mut tx = state.db.begin().await?;
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = 'PENDING', next_attempt_at = now(),
                lease_until = NULL
          WHERE endpoint_id = $1 AND id = $2",
    )
    .bind(id)
    .bind(delivery)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if done == 0 {
        return Err(Error::NotFound { what: "delivery" });
    }
    audit::record(
        &mut *tx,
        AuditEntry::by(
            admin.user_id,
            "WEBHOOK_REDELIVERED",
            json!({"endpointId": id, "deliveryId": delivery}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Queued {
            delivery_id: delivery,
        }),
    ))
}
