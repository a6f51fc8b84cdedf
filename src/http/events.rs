//! Event routes: devices post batches (`POST /sessions/{id}/events`), staff read them
//! (`GET /sessions/{id}/events`, `GET /sessions/{id}/events/summary`).

use std::collections::{BTreeMap, HashSet};

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::Error;
use crate::events::validate::{self, SessionRef};
use crate::events::{EventQuery, Source, StoredEvent};
use crate::http::extract::{AuthUser, Json, Path, Query, Staff};
use crate::http::page::{Cursor, Page, PageQuery};
use crate::model::Role;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_events, list))
        .routes(routes!(summary))
}

/// The session `id` as its device sees it: the candidate's own laptop (LAPTOP) or a phone
/// bound to it (MOBILE); anyone else gets 404, an ended session 409 `SESSION_CLOSED`.
pub async fn device_session(
    state: &AppState,
    caller: &AuthUser,
    id: Uuid,
) -> Result<(SessionRef, Source), Error> {
    let row: Option<(Uuid, Uuid, bool)> = sqlx::query_as(
        "SELECT exam_id, candidate_id, status = 'STARTED' FROM sessions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    let Some((exam_id, candidate_id, open)) = row else {
        return Err(Error::NotFound { what: "session" });
    };
    let source = match caller.role {
        Role::Candidate if candidate_id == caller.user_id => Source::Laptop,
        Role::Mobile if caller.session_id == Some(id) => Source::Mobile,
        _ => return Err(Error::NotFound { what: "session" }),
    };
    if !open {
        return Err(Error::conflict("SESSION_CLOSED", "the session has ended"));
    }
    Ok((
        SessionRef {
            id,
            exam_id,
            candidate_id,
        },
        source,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Batch {
    /// 1 to 500 events; each bad one is refused on its own (`rejected`).
    #[schema(value_type = Vec<EventInput>, min_items = 1, max_items = 500)]
    events: Vec<Value>,
}

/// One proctoring event as a device reports it.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct EventInput {
    /// The producer's idempotency key: a retried event with the same id is stored once.
    event_id: Uuid,
    /// `LAPTOP` (the candidate's token) or `MOBILE` (the phone's); defaults from the token.
    source: Option<String>,
    /// `^[A-Z][A-Z0-9_]{0,63}$`, e.g. `TAB_HIDDEN`, `FACE_ABSENT`, `MULTIPLE_FACES`.
    #[schema(pattern = "^[A-Z][A-Z0-9_]{0,63}$", example = "TAB_HIDDEN")]
    event_type: String,
    #[schema(minimum = 1, maximum = 10)]
    severity: i16,
    /// When it happened (default: when received); at most minutes in the past.
    timestamp: Option<DateTime<Utc>>,
    /// Free-form details, at most 8 KiB serialized.
    meta: Option<Value>,
    /// An artifact of the same session (`POST /sessions/{id}/artifacts`).
    frame_ref: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Rejected {
    index: usize,
    event_id: Option<Uuid>,
    code: &'static str,
    reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    /// Valid events, now stored (new or already stored before).
    accepted: usize,
    /// Of those, how many had been stored before (retries).
    duplicates: usize,
    rejected: Vec<Rejected>,
}

/// Report proctoring events (the session's CANDIDATE or its MOBILE); `eventId` makes retries idempotent.
#[utoipa::path(post,
    path = "/api/v1/sessions/{id}/events",
    tag = "events",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = Batch,
    responses((status = 202, description = "Accepted (durable)", body = Accepted),
        (status = 409, description = "`SESSION_CLOSED`", body = crate::http::openapi::ErrorBody)))]
async fn post_events(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(batch): Json<Batch>,
) -> Result<(StatusCode, Json<Accepted>), Error> {
    let (session, source) = device_session(&state, &caller, id).await?;
    let limit = state.config.events.per_request;
    if batch.events.len() > limit {
        return Err(Error::PayloadTooLarge);
    }
    if batch.events.is_empty() {
        return Err(Error::invalid("events", "must hold at least one event"));
    }
    let now = Utc::now();
    let mut valid = Vec::with_capacity(batch.events.len());
    let mut indexes = Vec::with_capacity(batch.events.len());
    let mut rejected = Vec::new();
    for (index, v) in batch.events.iter().enumerate() {
        match validate::from_json(v, session, source, now) {
            Ok(e) => {
                valid.push(e);
                indexes.push(index);
            }
            Err((event_id, r)) => rejected.push(Rejected {
                index,
                event_id,
                code: r.code,
                reason: r.reason,
            }),
        }
    }
    // A frameRef must be an artifact of this very session.
    let refs: Vec<Uuid> = valid
        .iter()
        .filter_map(|e| e.frame_ref.as_deref().and_then(|f| f.parse().ok()))
        .collect();
    if !refs.is_empty() {
        let known: HashSet<Uuid> =
            sqlx::query_scalar("SELECT id FROM artifacts WHERE id = ANY($1) AND session_id = $2")
                .bind(&refs)
                .bind(id)
                .fetch_all(&state.db)
                .await?
                .into_iter()
                .collect();
        let mut kept = Vec::with_capacity(valid.len());
        let mut kept_indexes = Vec::with_capacity(valid.len());
        for (e, index) in valid.into_iter().zip(indexes) {
            let unknown = e
                .frame_ref
                .as_deref()
                .and_then(|f| f.parse::<Uuid>().ok())
                .is_some_and(|f| !known.contains(&f));
            if unknown {
                rejected.push(Rejected {
                    index,
                    event_id: Some(e.event_id),
                    code: "INVALID_FRAME_REF",
                    reason: "frameRef is not an artifact of this session".into(),
                });
            } else {
                kept.push(e);
                kept_indexes.push(index);
            }
        }
        valid = kept;
        rejected.sort_by_key(|r| r.index);
    }
    let accepted = valid.len();
    let new = if valid.is_empty() {
        0
    } else {
        state
            .ingest
            .append(valid, state.config.events.ack_timeout)
            .await
            .map_err(|e| crate::events::ingest::to_error(&e))?
            .len()
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            accepted,
            duplicates: accepted - new,
            rejected,
        }),
    ))
}

/// One event as staff read it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct EventItem {
    id: Uuid,
    event_id: Uuid,
    session_id: Uuid,
    exam_id: Uuid,
    candidate_id: Uuid,
    source: &'static str,
    event_type: String,
    severity: i16,
    timestamp: DateTime<Utc>,
    received_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame_ref: Option<String>,
}

impl From<StoredEvent> for EventItem {
    fn from(e: StoredEvent) -> Self {
        EventItem {
            id: e.id,
            event_id: e.event_id,
            session_id: e.session_id,
            exam_id: e.exam_id,
            candidate_id: e.candidate_id,
            source: e.source.as_str(),
            event_type: e.event_type,
            severity: e.severity,
            timestamp: e.timestamp,
            received_at: e.received_at,
            meta: e.meta,
            frame_ref: e.frame_ref,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    event_type: Option<String>,
    source: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    /// Items per page (1..=500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn session_score(state: &AppState, id: Uuid) -> Result<f64, Error> {
    sqlx::query_scalar("SELECT violation_score FROM sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db)
        .await?
        .ok_or(Error::NotFound { what: "session" })
}

fn store_error(e: crate::events::StoreError) -> Error {
    tracing::warn!(error = %e, "event store read failed");
    Error::Unavailable {
        code: crate::hub::events::EVENT_STORE_UNAVAILABLE,
        message: "the event store is unavailable; retry shortly".into(),
        retry_after: 2,
    }
}

/// The session's events, oldest first (staff).
#[utoipa::path(get,
    path = "/api/v1/sessions/{id}/events",
    tag = "events",
    params(("id" = Uuid, Path, description = "Session id"), ListQuery),
    responses((status = 200, description = "A page of events", body = Page<EventItem>)))]
async fn list(
    State(state): State<AppState>,
    Staff(_staff): Staff,
    Path(id): Path<Uuid>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<EventItem>>, Error> {
    session_score(&state, id).await?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    if let Some(t) = &q.event_type {
        validate::check_type(t).map_err(|r| Error::bad_request("INVALID_QUERY", r.reason))?;
    }
    let source = match q.source.as_deref() {
        None => None,
        Some(s) => Some(Source::parse(s).ok_or_else(|| {
            Error::bad_request("INVALID_QUERY", "source must be LAPTOP, MOBILE or SYSTEM")
        })?),
    };
    let query = EventQuery {
        event_type: q.event_type,
        source,
        since: q.since,
        until: q.until,
        after: page.cursor()?,
        limit: limit + 1,
    };
    let rows = state
        .event_store
        .query(id, &query)
        .await
        .map_err(store_error)?;
    let page = Page::from_rows(rows, limit, |e| Cursor {
        at: e.timestamp,
        id: e.id,
    });
    Ok(Json(Page {
        items: page.items.into_iter().map(EventItem::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Summary {
    session_id: Uuid,
    total: i64,
    by_type: BTreeMap<String, i64>,
    by_source: BTreeMap<String, i64>,
    violation_score: f64,
}

/// Counts per type and the violation score (staff).
#[utoipa::path(get,
    path = "/api/v1/sessions/{id}/events/summary",
    tag = "events",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 200, description = "Counts and score", body = Summary)))]
async fn summary(
    State(state): State<AppState>,
    Staff(_staff): Staff,
    Path(id): Path<Uuid>,
) -> Result<Json<Summary>, Error> {
    let violation_score = session_score(&state, id).await?;
    let counts = state.event_store.counts(id).await.map_err(store_error)?;
    Ok(Json(Summary {
        session_id: id,
        total: counts.total,
        by_type: counts.by_type,
        by_source: counts.by_source,
        violation_score,
    }))
}
