//! The hub's minimal media pages, embedded in the binary: a laptop that publishes camera,
//! microphone and screen, a phone that claims its pairing link and publishes its camera, and a
//! proctor grid that subscribes to rooms. Enough for a person to try the relay in a browser and
//! for the browser test; the real clients are separate applications.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

const MEDIA_JS: &str = include_str!("pages/media.js");
const LAPTOP: &str = include_str!("pages/laptop.html");
const PHONE: &str = include_str!("pages/phone.html");
const PROCTOR: &str = include_str!("pages/proctor.html");

/// The routes of this module (outside `/api/v1`). `/pair` serves the phone page so the pairing
/// URL (`…/pair#t=<token>`) opens it directly.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/app/media.js",
            get(|| page("text/javascript; charset=utf-8", MEDIA_JS)),
        )
        .route(
            "/app/laptop",
            get(|| page("text/html; charset=utf-8", LAPTOP)),
        )
        .route(
            "/app/phone",
            get(|| page("text/html; charset=utf-8", PHONE)),
        )
        .route("/pair", get(|| page("text/html; charset=utf-8", PHONE)))
        .route(
            "/app/proctor",
            get(|| page("text/html; charset=utf-8", PROCTOR)),
        )
}

async fn page(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
