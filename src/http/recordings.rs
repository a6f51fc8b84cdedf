//! Session recordings for staff: `GET /sessions/{id}/recordings` lists a session's WebM
//! segments; `GET /sessions/{id}/recordings/{recordingId}` returns one decrypted, with
//! `Range` requests answered 206 so a `<video>` can seek. Everyone else gets 404.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::Error;
use crate::http::extract::{AuthUser, Json, Path};
use crate::recording::store::{self, RecordingView};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(fetch))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Recordings {
    items: Vec<RecordingView>,
}

/// The recorded media segments of a session (staff).
#[utoipa::path(get,
    path = "/api/v1/sessions/{id}/recordings",
    tag = "recordings",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 200, description = "The session's recorded segments", body = Recordings)))]
async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<Recordings>, Error> {
    if !caller.role.is_staff() {
        return Err(Error::NotFound { what: "session" });
    }
    let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db)
        .await?;
    if exists.is_none() {
        return Err(Error::NotFound { what: "session" });
    }
    Ok(Json(Recordings {
        items: store::list(&state.db, id).await?,
    }))
}

/// One recorded WebM segment, with HTTP Range support (staff).
#[utoipa::path(get,
    path = "/api/v1/sessions/{id}/recordings/{recording}",
    tag = "recordings",
    params(("id" = Uuid, Path, description = "Session id"), ("recording" = Uuid, Path, description = "Recording id"), ("Range" = Option<String>, Header, description = "`bytes=start-end`")),
    responses((status = 200, description = "The WebM segment", content_type = "video/webm", body = crate::http::openapi::Binary),
        (status = 206, description = "A byte range of it", content_type = "video/webm", body = crate::http::openapi::Binary),
        (status = 416, description = "`RANGE_NOT_SATISFIABLE`", body = crate::http::openapi::ErrorBody)))]
async fn fetch(
    State(state): State<AppState>,
    caller: AuthUser,
    Path((id, recording)): Path<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let not_found = Error::NotFound { what: "recording" };
    if !caller.role.is_staff() {
        return Err(not_found);
    }
    let Some((content_type, bytes)) = store::fetch(&state, id, recording).await? else {
        return Err(not_found);
    };
    let total = bytes.len() as u64;
    let common = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| byte_range(v, total));
    match range {
        None => Ok((common, bytes).into_response()),
        Some(Some((start, end))) => {
            let content_range = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}"))
                .map_err(|_| Error::Internal("content range".into()))?;
            let part = bytes[start as usize..=end as usize].to_vec();
            Ok((
                StatusCode::PARTIAL_CONTENT,
                common,
                [(header::CONTENT_RANGE, content_range)],
                part,
            )
                .into_response())
        }
        Some(None) => {
            let content_range = HeaderValue::from_str(&format!("bytes */{total}"))
                .map_err(|_| Error::Internal("content range".into()))?;
            Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, content_range)],
            )
                .into_response())
        }
    }
}

/// The inclusive byte range a `Range` header asks of `total` bytes (one range: `a-b`, `a-`
/// or `-n`); `None` when it cannot be satisfied. Several ranges are answered with the first.
fn byte_range(header: &str, total: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let first = spec.split(',').next()?.trim();
    let (a, b) = first.split_once('-')?;
    if total == 0 {
        return None;
    }
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 {
                return None;
            }
            (total.saturating_sub(n), total - 1)
        }
        (a, "") => (a.parse().ok()?, total - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(total - 1)),
    };
    (start <= end && start < total).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges_as_browsers_send_them() {
        assert_eq!(byte_range("bytes=0-", 1000), Some((0, 999)));
        assert_eq!(byte_range("bytes=100-199", 1000), Some((100, 199)));
        assert_eq!(byte_range("bytes=900-5000", 1000), Some((900, 999)));
        assert_eq!(byte_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(byte_range("bytes=0-0,5-9", 1000), Some((0, 0)));
        assert_eq!(byte_range("bytes=1000-", 1000), None);
        assert_eq!(byte_range("bytes=5-1", 1000), None);
        assert_eq!(byte_range("items=0-1", 1000), None);
        assert_eq!(byte_range("bytes=-0", 1000), None);
    }
}
