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

/// True when `origin` may open a socket: no Origin header (non-browser clients), or one on
/// the allowlist.
pub fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => origin
            .to_str()
            .is_ok_and(|o| allowed.iter().any(|a| a == o.trim_end_matches('/'))),
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
    ws.read_buffer_size(4096)
        .write_buffer_size(0)
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
    }
}
