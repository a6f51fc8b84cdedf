//! Pairing routes: the laptop mints a one-time token (QR), the phone claims it once and gets a
//! MOBILE access token bound to the session.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::limiter;
use crate::error::Error;
use crate::events::system::{self, SystemEvent};
use crate::http::extract::{Candidate, ClientIp, Json, Path};
use crate::model::{Role, SessionStatus};
use crate::pairing::{self, MobileDevice, PairingGrant};
use crate::state::{AppState, HubSignal};
use crate::store::sessions_lookup;

/// Failed claims per client address per window before 429.
const MAX_FAILED_CLAIMS_PER_IP: u32 = 20;
/// Window of the failed-claim counter.
const FAILED_CLAIM_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mint))
        .routes(routes!(claim))
        .routes(routes!(renew))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Minted {
    pairing_url: String,
    expires_at: chrono::DateTime<Utc>,
    qr_svg: String,
}

/// Mint a pairing token for the phone (the session's CANDIDATE); at most one is live per session.
#[utoipa::path(post,
    path = "/api/v1/sessions/{id}/pairing",
    tag = "pairing",
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 201, description = "A one-time pairing token", body = Minted),
        (status = 409, description = "`SESSION_CLOSED`", body = crate::http::openapi::ErrorBody)))]
async fn mint(
    State(state): State<AppState>,
    Candidate(caller): Candidate,
    Path(session_id): Path<Uuid>,
) -> Result<(StatusCode, Json<Minted>), Error> {
    let facts = sessions_lookup::by_id(&state.db, session_id)
        .await?
        .filter(|f| f.candidate_id == caller.user_id)
        .ok_or(Error::NotFound { what: "session" })?;
    if !facts.is_open {
        return Err(Error::conflict("SESSION_CLOSED", "the session has ended"));
    }
    let ttl = state.config.pairing_ttl;
    let grant = PairingGrant {
        session_id,
        candidate_id: caller.user_id,
    };
    let token = pairing::mint(&state.redis, &state.keys, &grant, ttl).await?;
    let pairing_url = format!("{}/pair#t={token}", state.config.public_url);
    let qr_svg = pairing::qr_svg(&pairing_url)?;
    Ok((
        StatusCode::CREATED,
        Json(Minted {
            expires_at: Utc::now() + ChronoDuration::from_std(ttl).unwrap_or_default(),
            pairing_url,
            qr_svg,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClaimBody {
    token: String,
    device_fingerprint: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Claimed {
    access_token: String,
    expires_in: u64,
    session_id: Uuid,
    webrtc_room_id: Uuid,
    confirm_code: String,
    /// The phone's renewable credential (`POST /pairing/renew`), valid while the session is
    /// STARTED and this phone stays the paired one.
    device_token: String,
}

fn token_invalid() -> Error {
    Error::Gone {
        code: "PAIRING_TOKEN_INVALID",
        message: "this pairing code was used, has expired or does not exist".into(),
    }
}

/// The phone claims a pairing token, once.
#[utoipa::path(post,
    path = "/api/v1/pairing/claim",
    tag = "pairing",
    security(()),
    request_body = ClaimBody,
    responses((status = 200, description = "Paired: a MOBILE token", body = Claimed),
        (status = 410, description = "`PAIRING_TOKEN_INVALID`", body = crate::http::openapi::ErrorBody)))]
async fn claim(
    State(state): State<AppState>,
    ip: ClientIp,
    Json(body): Json<ClaimBody>,
) -> Result<Json<Claimed>, Error> {
    if body.device_fingerprint.trim().is_empty() || body.device_fingerprint.len() > 256 {
        return Err(Error::invalid(
            "deviceFingerprint",
            "between 1 and 256 characters",
        ));
    }
    let ip_key = state
        .keys
        .pairing_failures_ip(&ip.text().unwrap_or_else(|| "unknown".into()));
    let counts = limiter::counts(&state.redis, &[&ip_key]).await?;
    if counts[0].0 >= MAX_FAILED_CLAIMS_PER_IP {
        return Err(Error::RateLimited {
            retry_after: counts[0].1,
        });
    }
    let grant = if body.token.is_empty() || body.token.len() > 128 {
        None
    } else {
        pairing::claim(&state.redis, &state.keys, &body.token).await?
    };
    let Some(grant) = grant else {
        limiter::record_failure(&state.redis, &[&ip_key], FAILED_CLAIM_WINDOW).await?;
        return Err(token_invalid());
    };

    // The phone's renewable credential is bound to this session and this phone, and replaces
    // the previous phone's in the same statement.
    let device_token = crate::auth::random_token();
    let mut tx = state.db.begin().await?;
    let facts: Option<(Uuid,)> = sqlx::query_as(
        "UPDATE sessions SET mobile_paired_at = now(), mobile_device_token_hash = $3,
                mobile_device_fingerprint = $4
          WHERE id = $1 AND candidate_id = $2 AND status = 'STARTED'
          RETURNING webrtc_room_id",
    )
    .bind(grant.session_id)
    .bind(grant.candidate_id)
    .bind(crate::auth::sha256_hex(&device_token))
    .bind(&body.device_fingerprint)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((webrtc_room_id,)) = facts else {
        return Err(Error::conflict("SESSION_CLOSED", "the session has ended"));
    };
    crate::webhooks::outbox::enqueue(
        &mut *tx,
        crate::webhooks::PAIRING_CLAIMED,
        Some(grant.session_id),
        serde_json::json!({"sessionId": grant.session_id, "candidateId": grant.candidate_id,
                           "pairedAt": Utc::now()}),
    )
    .await?;
    tx.commit().await?;

    let previous = pairing::set_mobile_device(
        &state.redis,
        &state.keys,
        grant.session_id,
        &MobileDevice {
            fingerprint: body.device_fingerprint.clone(),
            paired_at: Utc::now().to_rfc3339(),
        },
    )
    .await?;
    let replaced = previous.is_some_and(|p| p.fingerprint != body.device_fingerprint);
    if replaced {
        let event = SystemEvent::new(
            grant.session_id,
            "MOBILE_DEVICE_CHANGED",
            5,
            Some(serde_json::json!({"deviceFingerprint": body.device_fingerprint})),
        );
        system::append(&state, &event).await?;
    }
    let confirm_code = pairing::confirm_code(&body.token);
    state.signal(HubSignal::PairingClaimed {
        session_id: grant.session_id,
        confirm_code: confirm_code.clone(),
        device_fingerprint: body.device_fingerprint,
        replaced,
    });
    let access_token = state
        .jwt
        .issue(grant.candidate_id, Role::Mobile, Some(grant.session_id))?;
    Ok(Json(Claimed {
        access_token,
        expires_in: state.jwt.access_ttl_secs(),
        session_id: grant.session_id,
        webrtc_room_id,
        confirm_code,
        device_token,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RenewBody {
    session_id: Uuid,
    device_token: String,
    device_fingerprint: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Renewed {
    access_token: String,
    expires_in: u64,
    session_id: Uuid,
    webrtc_room_id: Uuid,
}

/// A paired phone renews its MOBILE access token with the device token it got at claim, for
/// the whole session: a phone whose connection drops after its access token expired (a
/// network switch, the screen locking) reconnects without pairing again. 401
/// `DEVICE_TOKEN_INVALID` once the phone was unpaired, rejected or replaced, or from another
/// device; 409 `SESSION_CLOSED` once the session ended.
#[utoipa::path(post,
    path = "/api/v1/pairing/renew",
    tag = "pairing",
    security(()),
    request_body = RenewBody,
    responses((status = 200, description = "A new MOBILE access token", body = Renewed),
        (status = 401, description = "`DEVICE_TOKEN_INVALID`", body = crate::http::openapi::ErrorBody)))]
async fn renew(
    State(state): State<AppState>,
    Json(body): Json<RenewBody>,
) -> Result<Json<Renewed>, Error> {
    let invalid = || {
        Error::unauthenticated(
            "DEVICE_TOKEN_INVALID",
            "this phone is no longer paired with the session; pair it again",
        )
    };
    if body.device_token.is_empty() || body.device_token.len() > 128 {
        return Err(invalid());
    }
    let row: Option<(Uuid, Uuid, SessionStatus)> = sqlx::query_as(
        "SELECT candidate_id, webrtc_room_id, status FROM sessions
          WHERE id = $1 AND mobile_device_token_hash = $2 AND mobile_device_fingerprint = $3",
    )
    .bind(body.session_id)
    .bind(crate::auth::sha256_hex(&body.device_token))
    .bind(&body.device_fingerprint)
    .fetch_optional(&state.db)
    .await?;
    let Some((candidate_id, webrtc_room_id, status)) = row else {
        return Err(invalid());
    };
    if status != SessionStatus::Started {
        return Err(Error::conflict("SESSION_CLOSED", "the session has ended"));
    }
    // A deactivated candidate's phone stops with them.
    if state.active_role(candidate_id).await?.is_none() {
        return Err(invalid());
    }
    let access_token = state
        .jwt
        .issue(candidate_id, Role::Mobile, Some(body.session_id))?;
    Ok(Json(Renewed {
        access_token,
        expires_in: state.jwt.access_ttl_secs(),
        session_id: body.session_id,
        webrtc_room_id,
    }))
}
