//! Operations endpoints: liveness, readiness (Postgres and Redis reachable), metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::state::AppState;

/// The routes of this module (outside `/api/v1`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let limit = Duration::from_secs(2);
    let postgres = matches!(
        tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&state.db)).await,
        Ok(Ok(_))
    );
    let mut conn = state.redis.clone();
    let redis = matches!(
        tokio::time::timeout(limit, redis::cmd("PING").query_async::<String>(&mut conn)).await,
        Ok(Ok(_))
    );
    let status = if postgres && redis {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (
        status,
        axum::Json(
            json!({"status": word(postgres && redis), "postgres": word(postgres), "redis": word(redis)}),
        ),
    )
}

async fn metrics_text() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::metrics_handle().render(),
    )
}
