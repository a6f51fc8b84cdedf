//! The HTTP API: one module per resource, each owning its `router()`. This module assembles
//! them (each operation names its whole path under `/api/v1`), adds the operations endpoints
//! and the cross-cutting layers.

pub mod artifacts;
pub mod auth;
pub mod events;
pub mod exams;
pub mod extract;
pub mod health;
pub mod media_check;
pub mod openapi;
pub mod page;
pub mod pages;
pub mod pairing;
pub mod privacy;
pub mod proctor;
pub mod recordings;
pub mod sessions;
pub mod users;
pub mod web;
pub mod webhooks;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::error::Error;
use crate::state::AppState;

/// Largest JSON body the API accepts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole HTTP surface: [`routes`] inside the cross-cutting layers.
///
/// The layers wrap the router once, around every route. Added with `Router::layer` they would
/// wrap each route instead, and a route's whole stack of layers is cloned and its future boxed
/// again at every layer on every request (a tenth of an autosave's CPU).
pub fn router(state: AppState) -> Router {
    let origins: Vec<HeaderValue> = state
        .config
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
        ])
        .max_age(Duration::from_secs(600));
    let layered = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(cors)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::cluster_connect_src,
        ))
        .service(routes(state));
    Router::new().fallback_service(layered)
}

/// Every route, each measured by `track_http` (which needs the matched route, known only once
/// the router has matched it), without the cross-cutting layers of [`router`].
pub fn routes(state: AppState) -> Router {
    let (api, spec) = api(state.config.events.artifact_max_bytes).split_for_parts();
    let doc = openapi::Document::new(&openapi::finish(spec));
    Router::new()
        .merge(api)
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || openapi::serve(doc.clone())),
        )
        .merge(health::router())
        .merge(pages::router())
        .merge(web::router())
        .merge(crate::ws::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(crate::telemetry::track_http))
        .with_state(state)
}

/// The `/api/v1` routes with their OpenAPI operations; uploads may be up to
/// `artifact_max_bytes`. Each operation names its whole path, `/api/v1` included, rather than
/// being nested under it: a nested route rewrites every request's URI to strip the prefix,
/// which was a few per cent of an autosave's CPU.
pub fn api(artifact_max_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(pairing::router())
        .merge(media_check::router())
        .merge(exams::router())
        .merge(sessions::router())
        .merge(proctor::router())
        .merge(events::router())
        .merge(recordings::router())
        .merge(artifacts::router(artifact_max_bytes))
        .merge(webhooks::router())
        .merge(privacy::router())
}

/// The finished OpenAPI document of [`api`].
pub fn spec() -> utoipa::openapi::OpenApi {
    openapi::finish(api(MAX_BODY_BYTES).into_openapi())
}

async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}

async fn not_found() -> Error {
    Error::NotFound { what: "route" }
}
