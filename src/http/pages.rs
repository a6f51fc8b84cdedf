//! The hub's minimal media pages, embedded in the binary: a laptop that publishes camera,
//! microphone and screen, a phone that claims its pairing link and publishes its camera, and a
//! proctor grid that subscribes to rooms. Enough for a person to try the relay in a browser and
//! for the browser test; the real clients are separate applications.
//!
//! Every page and asset goes out with a strict Content-Security-Policy (scripts and styles
//! only from the hub's own files: no inline script, no `eval`), `X-Content-Type-Options:
//! nosniff`, `frame-ancestors 'none'` (no framing, so no clickjacking of "Submit"), and
//! `Referrer-Policy: no-referrer` (the pairing URL's fragment carries a secret, and no page
//! should leak its URL to another origin).

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

const MEDIA_JS: &str = include_str!("pages/media.js");
const LAPTOP_JS: &str = include_str!("pages/laptop.js");
const PHONE_JS: &str = include_str!("pages/phone.js");
const PROCTOR_JS: &str = include_str!("pages/proctor.js");
const PAGES_CSS: &str = include_str!("pages/pages.css");
const LAPTOP: &str = include_str!("pages/laptop.html");
const PHONE: &str = include_str!("pages/phone.html");
const PROCTOR: &str = include_str!("pages/proctor.html");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The pages' Content-Security-Policy. `connect-src 'self'` covers the same-origin WebSocket;
/// `media-src` lets `<video>` play `MediaStream`s and blobs; `img-src data:` the QR code.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
    connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The routes of this module (outside `/api/v1`): the media test pages. (`/pair`, where the
/// pairing URL `…/pair#t=<token>` leads, is the web app's phone page: `http/web.rs`.)
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app/media.js", get(|| page(JS, MEDIA_JS)))
        .route("/app/laptop.js", get(|| page(JS, LAPTOP_JS)))
        .route("/app/phone.js", get(|| page(JS, PHONE_JS)))
        .route("/app/proctor.js", get(|| page(JS, PROCTOR_JS)))
        .route("/app/pages.css", get(|| page(CSS, PAGES_CSS)))
        .route("/app/laptop", get(|| page(HTML, LAPTOP)))
        .route("/app/phone", get(|| page(HTML, PHONE)))
        .route("/app/proctor", get(|| page(HTML, PROCTOR)))
}

/// The security headers every page and asset carries.
pub fn security_headers() -> [(HeaderName, HeaderValue); 4] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ]
}

/// On a multi-process hub, a page's sockets may be redirected to another node: its
/// `connect-src` also names every registered node's WebSocket origin (as the registry was
/// when the page loaded).
pub async fn cluster_connect_src(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    let Some((cluster, _)) = &state.cluster else {
        return response;
    };
    if response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .is_none()
    {
        return response;
    }
    let mut origins: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| n.ws_url.as_str())
        .chain([cluster.ws_url()])
        .filter_map(ws_origin)
        .collect();
    origins.sort();
    origins.dedup();
    let policy = CONTENT_SECURITY_POLICY.replace(
        "connect-src 'self'",
        &format!("connect-src 'self' {}", origins.join(" ")),
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// `ws://host:port` of `ws://host:port/ws` (only ws: and wss: URLs, nothing a policy could
/// be confused by).
fn ws_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "ws" && scheme != "wss" {
        return None;
    }
    let host = rest.split('/').next()?;
    let clean = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'));
    clean.then(|| format!("{scheme}://{host}"))
}

async fn page(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        security_headers(),
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::ws_origin;

    #[test]
    fn only_clean_ws_origins_enter_the_policy() {
        assert_eq!(
            ws_origin("ws://127.0.0.1:8083/ws").as_deref(),
            Some("ws://127.0.0.1:8083")
        );
        assert_eq!(
            ws_origin("wss://hub-2.exams.example/ws").as_deref(),
            Some("wss://hub-2.exams.example")
        );
        assert_eq!(ws_origin("https://x/ws"), None);
        assert_eq!(ws_origin("ws://x; script-src *"), None);
        assert_eq!(ws_origin("ws:///ws"), None);
    }
}
