//! The exam-day web app (`web/`): the pages and the browser client library, ES modules served
//! as they are (no bundler), embedded in the release binary (`rust-embed`; a debug build reads
//! them from `web/` on disk, so a page edit needs no rebuild). `/app` is the one entry for
//! every role; `/app/{file}` serves the rest. Every response carries the pages' security
//! headers and an `ETag` (the file's SHA-256), so an unchanged file costs a 304.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::Error;
use crate::http::pages::security_headers;
use crate::state::AppState;

/// The files of `web/` that the browser loads (tests, type checking and npm files stay out).
#[derive(rust_embed::Embed)]
#[folder = "web/"]
#[exclude = "node_modules/*"]
#[exclude = "test/*"]
#[exclude = "*.json"]
#[exclude = "*.md"]
struct Web;

/// The routes of this module. Explicit routes (the media test pages) win over the wildcard.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app", get(|headers: HeaderMap| async move { asset("index.html", &headers) }))
        // The pairing URL of the laptop's QR code (`…/pair#t=<token>`) opens the phone page.
        .route("/pair", get(|headers: HeaderMap| async move { asset("pair.html", &headers) }))
        // The API reference, rendered from `/api/v1/openapi.json`.
        .route("/docs", get(|headers: HeaderMap| async move { asset("docs.html", &headers) }))
        .route(
            "/app/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move {
                asset(&path, &headers)
            }),
        )
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

fn asset(path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Web::get(path) else {
        return Error::NotFound { what: "page" }.into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    let common = (
        security_headers(),
        [
            (header::ETAG, etag),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
    );
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, content_type(path))],
        file.data.into_owned(),
    )
        .into_response()
}
