//! `/auth/*` and `/me`: login, refresh rotation, logout, the current user.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::limiter;
use crate::auth::refresh::{Issued, RefreshTokens, Rotation};
use crate::error::Error;
use crate::http::extract::{AuthUser, ClientIp, Json};
use crate::model::Role;
use crate::state::{AppState, HubSignal};
use crate::store::users::{self, UserView};

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
    device_fingerprint: Option<String>,
}

/// The user the tokens belong to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TokenUser {
    id: Uuid,
    email: String,
    name: String,
    role: crate::model::UserRole,
}

/// A fresh access token (short-lived JWT) and a one-time refresh token.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TokenResponse {
    access_token: String,
    refresh_token: String,
    expires_in: u64,
    refresh_expires_at: chrono::DateTime<chrono::Utc>,
    user: TokenUser,
}

fn invalid_credentials() -> Error {
    Error::unauthenticated("INVALID_CREDENTIALS", "email or password is wrong")
}

fn check_fingerprint(fp: &Option<String>) -> Result<(), Error> {
    match fp {
        Some(f) if f.len() > 256 => Err(Error::invalid(
            "deviceFingerprint",
            "at most 256 characters",
        )),
        _ => Ok(()),
    }
}

async fn tokens(
    state: &AppState,
    user: users::UserRow,
    refresh: Issued,
) -> Result<TokenResponse, Error> {
    Ok(TokenResponse {
        access_token: state.jwt.issue(user.id, user.role.into(), None)?,
        refresh_token: refresh.token,
        expires_in: state.jwt.access_ttl_secs(),
        refresh_expires_at: refresh.expires_at,
        user: TokenUser {
            id: user.id,
            email: user.email,
            name: user.name,
            role: user.role,
        },
    })
}

fn refresh_tokens(state: &AppState) -> RefreshTokens<'_> {
    RefreshTokens {
        db: &state.db,
        redis: &state.redis,
        keys: &state.keys,
        cfg: &state.config.jwt,
    }
}

/// Log in.
///
/// Unknown email and wrong password get the same 401 `INVALID_CREDENTIALS`; repeated failures
/// are throttled per account and client (429 `RATE_LIMITED`).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()),
    request_body = LoginBody,
    responses((status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "`INVALID_CREDENTIALS`", body = crate::http::openapi::ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    Json(body): Json<LoginBody>,
) -> Result<Json<TokenResponse>, Error> {
    check_fingerprint(&body.device_fingerprint)?;
    if body.email.len() > 320 || body.password.len() > 1024 {
        return Err(invalid_credentials());
    }
    let email = users::normalize_email(&body.email);
    let account = crate::auth::sha256_hex(&email);
    let ip_text = ip.text().unwrap_or_else(|| "unknown".into());

    // Throttle before spending a hash: this client's failures for this account and in all,
    // reserved atomically (Redis, or this process while Redis is down).
    let reservation = state
        .login_throttle
        .reserve(&state.redis, &state.keys, &account, &ip_text)
        .await
        .map_err(|t| {
            metrics::counter!("hub_login_throttled_total").increment(1);
            Error::RateLimited {
                retry_after: t.retry_after,
            }
        })?;

    let user = users::by_email(&state.db, &email).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = state.hasher.verify(body.password, hash).await?;
    let user = match user {
        Some(u) if ok && u.is_active => u,
        _ => {
            metrics::counter!("hub_login_failures_total").increment(1);
            state
                .login_throttle
                .failed(&state.redis, &reservation)
                .await;
            tokio::time::sleep(limiter::progressive_delay(reservation.failures)).await;
            return Err(invalid_credentials());
        }
    };
    state
        .login_throttle
        .succeeded(&state.redis, reservation)
        .await;
    let refresh = refresh_tokens(&state)
        .issue_family(
            user.id,
            body.device_fingerprint.as_deref(),
            ip.text().as_deref(),
        )
        .await?;
    tracing::info!(user_id = %user.id, "login");
    Ok(Json(tokens(&state, user, refresh).await?))
}

/// A refresh token to rotate.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
    device_fingerprint: Option<String>,
}

/// Rotate a refresh token: the old one is spent and a new pair returned.
///
/// Replaying a spent token gets 401 `REFRESH_TOKEN_REUSED` and revokes the whole family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", security(()),
    request_body = RefreshBody,
    responses((status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "`INVALID_REFRESH_TOKEN` or `REFRESH_TOKEN_REUSED`", body = crate::http::openapi::ErrorBody)))]
#[tracing::instrument(skip_all)]
async fn refresh(
    State(state): State<AppState>,
    ip: ClientIp,
    Json(body): Json<RefreshBody>,
) -> Result<Json<TokenResponse>, Error> {
    check_fingerprint(&body.device_fingerprint)?;
    let invalid = || {
        Error::unauthenticated(
            "INVALID_REFRESH_TOKEN",
            "the refresh token is invalid or expired",
        )
    };
    if body.refresh_token.is_empty() || body.refresh_token.len() > 128 {
        return Err(invalid());
    }
    let rotation = refresh_tokens(&state)
        .rotate(
            &body.refresh_token,
            body.device_fingerprint.as_deref(),
            ip.text().as_deref(),
        )
        .await?;
    match rotation {
        Rotation::Rotated { user_id, issued } => {
            let user = users::by_id(&state.db, user_id)
                .await?
                .ok_or_else(invalid)?;
            Ok(Json(tokens(&state, user, issued).await?))
        }
        Rotation::Reused { user_id } => {
            state.signal(HubSignal::UserRevoked { user_id });
            Err(Error::unauthenticated(
                "REFRESH_TOKEN_REUSED",
                "this refresh token was already used; every session of this login was revoked",
            ))
        }
        Rotation::Invalid => Err(invalid()),
    }
}

/// The refresh token whose family ends.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LogoutBody {
    refresh_token: String,
}

/// Log out: revokes the refresh token's whole family. Always 204.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(()),
    request_body = LogoutBody,
    responses((status = 204, description = "Logged out")))]
async fn logout(
    State(state): State<AppState>,
    Json(body): Json<LogoutBody>,
) -> Result<StatusCode, Error> {
    if body.refresh_token.len() <= 128 {
        refresh_tokens(&state)
            .revoke_family_of(&body.refresh_token)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The caller.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MeResponse {
    #[serde(flatten)]
    user: UserView,
    /// The role this token acts as (MOBILE for a paired phone).
    token_role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<Uuid>,
}

/// The current user, and the role this token acts as.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, description = "The caller", body = MeResponse)))]
async fn me(State(state): State<AppState>, caller: AuthUser) -> Result<Json<MeResponse>, Error> {
    let user = users::by_id(&state.db, caller.user_id)
        .await?
        .ok_or(Error::NotFound { what: "user" })?;
    Ok(Json(MeResponse {
        user: user.into(),
        token_role: caller.role,
        session_id: caller.session_id,
    }))
}
