//! Data-subject requests: `GET /users/{id}/export` (ADMIN, or a user for themself) and
//! `POST /users/{id}/erase` (ADMIN). See [`crate::privacy`].

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::error::Error;
use crate::http::extract::{Admin, AuthUser, Json, Path};
use crate::http::openapi::ErrorBody;
use crate::model::Role;
use crate::privacy::erase::Erased;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(erase))
}

/// Everything the hub holds about a user, as one JSON document (GDPR Article 15).
///
/// ADMIN for anyone; a user for themself. Streamed: `user`, then arrays `assignments`,
/// `sessions`, `answers`, `scores`, `events`, `adminActions`, `artifacts` and `recordings`
/// (with links to download them), `logins` and `webhookMessages`. Exports are audited.
#[utoipa::path(get, path = "/api/v1/users/{id}/export", tag = "privacy",
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, description = "The export (a download)", content_type = "application/json",
        body = Object)))]
async fn export(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Response, Error> {
    let allowed = caller.role == Role::Admin
        || (caller.user_id == id && matches!(caller.role, Role::Candidate | Role::Proctor));
    if !allowed {
        return Err(Error::forbidden(
            "FORBIDDEN",
            "an export is for admins, or for the user themself",
        ));
    }
    let mut tx = state.db.begin().await?;
    let exists: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(Error::NotFound { what: "user" });
    }
    audit::record(
        &mut *tx,
        AuditEntry {
            session_id: None,
            actor_id: Some(caller.user_id),
            target_user_id: Some(id),
            action_type: "USER_EXPORTED",
            reason: "",
            payload: None,
        },
    )
    .await?;
    tx.commit().await?;
    let body = Body::from_stream(crate::privacy::export::stream(state, id));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"proctor-hub-export-{id}.json\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Why the data is erased.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EraseBody {
    /// E.g. the request's reference; the user's name and email are cut out of it.
    #[schema(
        min_length = 1,
        max_length = 2000,
        example = "GDPR Art. 17 request #2026-118"
    )]
    reason: String,
}

/// Erase a user's personal data (GDPR Article 17; ADMIN).
///
/// Name, email, password, logins, device fingerprints, IP addresses, answer contents,
/// events' `meta` and `frameRef`, artifacts and recordings are removed; scores, review
/// decisions and the events' types, severities and times stay, attached to the user's id,
/// now a pseudonym. Refused while a session is in progress or under review.
#[utoipa::path(post, path = "/api/v1/users/{id}/erase", tag = "privacy",
    params(("id" = Uuid, Path, description = "User id")),
    request_body = EraseBody,
    responses((status = 200, description = "Erased: what was removed", body = Erased),
        (status = 409, description = "`LEGAL_HOLD`, `SESSION_ACTIVE`, `ALREADY_ERASED`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`, `CANNOT_ERASE_SELF`", body = ErrorBody)))]
async fn erase(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<Uuid>,
    Json(body): Json<EraseBody>,
) -> Result<Json<Erased>, Error> {
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(Error::invalid("reason", "between 1 and 2000 characters"));
    }
    if id == admin.user_id {
        return Err(Error::forbidden(
            "CANNOT_ERASE_SELF",
            "another admin must erase an admin's own account",
        ));
    }
    let erased = crate::privacy::erase::erase(&state, admin.user_id, id, reason).await?;
    tracing::info!(user = %id, "personal data erased");
    Ok(Json(erased))
}
