//! Frame artifact routes: a session's laptop or phone uploads raw bytes
//! (`POST /sessions/{id}/artifacts`, `image/jpeg`, `image/png` or `video/webm`), staff read
//! them back decrypted (`GET /artifacts/{frameRef}`; 404 for everyone else).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::Error;
use crate::events::artifacts::{magic_matches, media_type};
use crate::http::events::device_session;
use crate::http::extract::{AuthUser, Json, Path};
use crate::state::AppState;

/// The routes of this module; uploads may be up to `max_bytes`.
pub fn router(max_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes({
            let (schemas, paths, method) = routes!(upload);
            (
                schemas,
                paths,
                method.layer(DefaultBodyLimit::max(max_bytes)),
            )
        })
        .routes(routes!(download))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Uploaded {
    frame_ref: String,
    session_id: Uuid,
    content_type: &'static str,
    size: usize,
}

/// Upload an evidence image ((JPEG or PNG, or a WebM clip)) for the session's events (its CANDIDATE or MOBILE).
#[utoipa::path(post,
    path = "/api/v1/sessions/{id}/artifacts",
    tag = "artifacts",
    params(("id" = Uuid, Path, description = "Session id")),
    request_body(description = "The bytes, of the type `Content-Type` names",
        content((crate::http::openapi::Binary = "image/jpeg"),
            (crate::http::openapi::Binary = "image/png"),
            (crate::http::openapi::Binary = "video/webm"))),
    responses((status = 201, description = "Stored, encrypted", body = Uploaded),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = crate::http::openapi::ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`", body = crate::http::openapi::ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Uploaded>), Error> {
    let (session, _) = device_session(&state, &caller, id).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(media_type)
        .ok_or(Error::UnsupportedMedia {
            message: "Content-Type must be image/jpeg, image/png or video/webm".into(),
        })?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge
        } else {
            Error::bad_request("BAD_BODY", "could not read the body")
        }
    })?;
    if body.len() > state.config.events.artifact_max_bytes {
        return Err(Error::PayloadTooLarge);
    }
    if !magic_matches(content_type, &body) {
        return Err(Error::UnsupportedMedia {
            message: format!("the bytes are not {content_type}"),
        });
    }
    let artifact = state
        .artifacts
        .put(&state.db, session.id, content_type, &body)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Uploaded {
            frame_ref: artifact.to_string(),
            session_id: session.id,
            content_type,
            size: body.len(),
        }),
    ))
}

/// Download an evidence image (staff).
#[utoipa::path(get,
    path = "/api/v1/artifacts/{frame_ref}",
    tag = "artifacts",
    params(("frame_ref" = String, Path, description = "The artifact reference from the upload")),
    responses((status = 200, description = "The artifact, of the type it was uploaded as",
        content((crate::http::openapi::Binary = "image/jpeg"),
            (crate::http::openapi::Binary = "image/png"),
            (crate::http::openapi::Binary = "video/webm")))))]
async fn download(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(frame_ref): Path<String>,
) -> Result<Response, Error> {
    let not_found = Error::NotFound { what: "artifact" };
    if !caller.role.is_staff() {
        return Err(not_found);
    }
    let Ok(artifact) = frame_ref.parse::<Uuid>() else {
        return Err(not_found);
    };
    let Some(found) = state.artifacts.get(&state.db, artifact).await? else {
        return Err(not_found);
    };
    let content_type = HeaderValue::from_str(&found.content_type)
        .map_err(|_| Error::Internal("stored content type is not a header value".into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        found.bytes,
    )
        .into_response())
}
