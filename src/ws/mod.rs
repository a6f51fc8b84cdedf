//! `GET /ws`: the real-time endpoint. The Origin allowlist is checked before the upgrade; the
//! socket is configured small (4 KiB read buffer, no write buffer, 64 KiB messages) because an
//! exam day holds tens of thousands of idle sockets. Each socket runs [`socket::run`].

pub mod outbox;
pub mod socket;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::Error;
use crate::state::AppState;

/// The route of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

/// True when `origin` may open a socket: no Origin header (non-browser clients), one on the
/// allowlist, or the hub's own origin (its pages under `/app/`; a same-origin page is not the
/// cross-site hijacking the allowlist guards against).
pub fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => origin.to_str().is_ok_and(|o| {
            let o = o.trim_end_matches('/');
            allowed.iter().any(|a| a == o)
                || host.is_some_and(|h| {
                    o.strip_prefix("http://")
                        .or_else(|| o.strip_prefix("https://"))
                        == Some(h)
                })
        }),
    }
}

async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&state.config.allowed_origins, &headers) {
        metrics::counter!("hub_ws_origin_refused_total").increment(1);
        return Error::forbidden("ORIGIN_NOT_ALLOWED", "this origin may not open the socket")
            .into_response();
    }
    if state.shutdown.is_cancelled() {
        return Error::Unavailable {
            code: "SHUTTING_DOWN",
            message: "the hub is shutting down".into(),
            retry_after: 1,
        }
        .into_response();
    }
    let limits = state.ws_limits();
    // Client frames are small (a heartbeat is ~100 bytes), and a larger one is read whole once
    // its header gives its length, so a 1 KiB chunk costs no extra reads: 3 KB less per idle
    // socket than 4 KiB (BENCHMARKS.md, S1).
    ws.read_buffer_size(1024)
        // Frames fed before a flush stay buffered (see `socket::write_queued`); an idle
        // socket's buffer stays empty.
        .write_buffer_size(socket::WRITE_BATCH_BYTES)
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .on_upgrade(move |socket| {
            let tasks = state.tasks.clone();
            tasks.track_future(socket::run(state, socket))
        })
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_rules() {
        let allowed = vec!["https://exam.example".to_string()];
        let mut h = HeaderMap::new();
        assert!(origin_allowed(&allowed, &h));
        h.insert(header::ORIGIN, "https://exam.example".parse().unwrap());
        assert!(origin_allowed(&allowed, &h));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!origin_allowed(&allowed, &h));
        // The hub's own pages: same origin as the Host.
        h.insert(header::HOST, "hub.example:8080".parse().unwrap());
        h.insert(header::ORIGIN, "http://hub.example:8080".parse().unwrap());
        assert!(origin_allowed(&allowed, &h));
        h.insert(header::ORIGIN, "http://hub.example:9090".parse().unwrap());
        assert!(!origin_allowed(&allowed, &h));
    }
}
