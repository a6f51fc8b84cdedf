//! Request extractors: JSON bodies with contract errors, the authenticated caller and its role
//! checks, path ids, and the client address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::auth::jwt::Claims;
use crate::error::Error;
use crate::model::Role;
use crate::state::AppState;

/// A JSON body; malformed JSON is 400 `MALFORMED_JSON`, a wrong shape 422 `VALIDATION_FAILED`
/// naming the field, a missing content type 415, an oversize body 413.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(Error::UnsupportedMediaType);
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(Error::PayloadTooLarge)
            }
            Err(_) => return Err(Error::bad_request("BAD_BODY", "could not read the body")),
        };
        if has_nul_escape(&bytes) {
            // Postgres stores no NUL character in text or JSON.
            return Err(Error::invalid(
                "body",
                "text may not contain the NUL character",
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(JsonRejection::JsonDataError(e)) => {
                // serde_path_to_error text: "field.path: message"
                let text = std::error::Error::source(&e)
                    .map_or_else(|| e.body_text(), ToString::to_string);
                let (field, message) = match text.split_once(": ") {
                    Some((f, m)) if !f.contains(' ') => (f.to_string(), m.to_string()),
                    _ => ("body".to_string(), text),
                };
                Err(Error::invalid(field, message))
            }
            Err(JsonRejection::JsonSyntaxError(_)) => Err(Error::bad_request(
                "MALFORMED_JSON",
                "the body is not valid JSON",
            )),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Error::UnsupportedMediaType),
            Err(JsonRejection::BytesRejection(e)) => {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Err(Error::PayloadTooLarge)
                } else {
                    Err(Error::bad_request("BAD_BODY", "could not read the body"))
                }
            }
            Err(e) => Err(Error::bad_request("BAD_BODY", e.body_text())),
        }
    }
}

/// `application/json` or `application/*+json`.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Whether a JSON text holds a `\u0000` escape (a NUL character in some string). A raw NUL
/// byte is not valid JSON at all; the parser refuses it.
pub fn has_nul_escape(json: &[u8]) -> bool {
    let mut i = 0;
    while let Some(at) = json[i..]
        .windows(6)
        .position(|w| w.eq_ignore_ascii_case(b"\\u0000"))
    {
        let start = i + at;
        // Escaped only when an odd number of backslashes ends right before `u0000`.
        let backslashes = json[..=start]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        if backslashes % 2 == 1 {
            return true;
        }
        i = start + 1;
    }
    false
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Query parameters; a bad one is 400 `INVALID_QUERY`.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(Error::bad_request(
                "INVALID_QUERY",
                "the query may not contain the NUL character",
            ));
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| Error::bad_request("INVALID_QUERY", e.body_text()))
    }
}

/// Path parameters; a malformed id is 400 `INVALID_ID`.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| Error::bad_request("INVALID_ID", e.body_text()))
    }
}

/// The authenticated caller, from `Authorization: Bearer <access token>`.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// User id (for MOBILE: the candidate owning the session).
    pub user_id: Uuid,
    /// Role the token grants.
    pub role: Role,
    /// For MOBILE tokens, the one session they are bound to.
    pub session_id: Option<Uuid>,
    /// All claims.
    pub claims: Claims,
}

impl AuthUser {
    /// Verifies a request's bearer token (remembered until it expires: the next request
    /// brings it again) and that its user is still active.
    pub async fn from_bearer(state: &AppState, token: &str) -> Result<Self, Error> {
        Self::active(state, state.jwt.verify(token)?).await
    }

    /// Verifies a token shown once (a socket's, when it connects) and that its user is
    /// still active.
    pub async fn from_socket_token(state: &AppState, token: &str) -> Result<Self, Error> {
        Self::active(state, state.jwt.verify_once(token)?).await
    }

    /// The caller of verified `claims`, unless their user was deactivated or changed role.
    async fn active(state: &AppState, claims: Claims) -> Result<Self, Error> {
        let current = state.active_role(claims.sub).await?;
        let still_valid = match (claims.role, current) {
            (_, None) => false,
            (Role::Mobile, Some(role)) => role == crate::model::UserRole::Candidate,
            (token_role, Some(role)) => token_role == Role::from(role),
        };
        if !still_valid {
            return Err(Error::unauthenticated(
                "INVALID_TOKEN",
                "invalid or expired access token",
            ));
        }
        Ok(AuthUser {
            user_id: claims.sub,
            role: claims.role,
            session_id: claims.sid,
            claims,
        })
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Error> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Error::forbidden("FORBIDDEN", "your role may not do this"))
        }
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Error::unauthenticated("MISSING_TOKEN", "Authorization header required")
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| Error::unauthenticated("MISSING_TOKEN", "expected a Bearer token"))?;
        AuthUser::from_bearer(&state, token.trim()).await
    }
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, [$($role:ident),+]) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub AuthUser);

        impl<S> FromRequestParts<S> for $name
        where
            AppState: FromRef<S>,
            S: Send + Sync,
        {
            type Rejection = Error;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
                let user = AuthUser::from_request_parts(parts, state).await?;
                user.require(&[$(Role::$role),+])?;
                Ok($name(user))
            }
        }
    };
}

role_extractor!(
    /// An ADMIN caller.
    Admin, [Admin]
);
role_extractor!(
    /// An ADMIN or PROCTOR caller.
    Staff, [Admin, Proctor]
);
role_extractor!(
    /// A CANDIDATE caller (a person, not a phone).
    Candidate, [Candidate]
);

/// The client's address: the socket peer, or the last `X-Forwarded-For` entry when the hub is
/// configured to trust its proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// As text for storage.
    pub fn text(&self) -> Option<String> {
        self.0.map(|ip| ip.to_string())
    }
}

impl<S> FromRequestParts<S> for ClientIp
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        if state.config.trust_forwarded_for {
            if let Some(ip) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                // The entry the trusted proxy appended (the last): the ones before it are
                // whatever the client sent, and would let it pick its own address.
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok())
            {
                return Ok(ClientIp(Some(ip)));
            }
        }
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::has_nul_escape;

    #[test]
    fn finds_nul_escapes_only() {
        assert!(has_nul_escape(br#"{"a":"x\u0000y"}"#));
        assert!(has_nul_escape(br#"{"a":"\U0000"}"#));
        assert!(has_nul_escape(br#"{"a":"\\\u0000"}"#));
        // An escaped backslash followed by the text "u0000" is not a NUL.
        assert!(!has_nul_escape(br#"{"a":"\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"a":"u0000 \u0001"}"#));
    }
}
