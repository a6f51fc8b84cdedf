//! The hub's one error type. HTTP handlers return it; it renders as the contract's
//! `{"error": {"code", "message"}}` with a stable `code`. Internal details (store errors,
//! panics) are logged and never reach the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Every way a request or a start-up can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request is malformed (bad JSON, bad id, bad query).
    #[error("{message}")]
    BadRequest {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// 401: no valid credentials.
    #[error("{message}")]
    Unauthenticated {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// 403: authenticated but not allowed.
    #[error("{message}")]
    Forbidden {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// 404: absent, or belongs to someone else.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. "session".
        what: &'static str,
    },
    /// 405: the route exists, not with this method.
    #[error("this route does not take this method")]
    MethodNotAllowed,
    /// 409: the resource is in a state that forbids this.
    #[error("{message}")]
    Conflict {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// 410: a spent or expired one-time token.
    #[error("{message}")]
    Gone {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// 413: the body is over the limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 415: the body is not JSON.
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// 415 for a non-JSON body of another kind (uploads): says what is expected.
    #[error("{message}")]
    UnsupportedMedia {
        /// Human-readable detail.
        message: String,
    },
    /// 422: well-formed but invalid; `field` names the culprit.
    #[error("{field}: {message}")]
    Invalid {
        /// The JSON field at fault (dotted path).
        field: String,
        /// Human-readable detail.
        message: String,
    },
    /// 422 with a code of its own (e.g. `URL_NOT_ALLOWED`); `field` names the culprit.
    #[error("{field}: {message}")]
    Unprocessable {
        /// Stable machine-readable code.
        code: &'static str,
        /// The JSON field at fault.
        field: String,
        /// Human-readable detail.
        message: String,
    },
    /// 429: too many attempts; retry after this many seconds.
    #[error("too many requests")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// 503: a store or a bounded resource is unavailable; retry later.
    #[error("{message}")]
    Unavailable {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable detail.
        message: String,
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// Postgres failed; unreachable becomes 503, anything else 500.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Redis failed; always 503 (Redis holds only what may be lost).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Migrations failed at start-up.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Bad configuration at start-up.
    #[error("configuration: {0}")]
    Config(String),
    /// A broken invariant or an unexpected failure; logged, 500 to the client.
    #[error("internal: {0}")]
    Internal(String),
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// 422 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// 409 with `code`.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    /// 403 with `code`.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Error::Forbidden {
            code,
            message: message.into(),
        }
    }

    /// 401 with `code`.
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Error::Unauthenticated {
            code,
            message: message.into(),
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// 503 `STORE_UNAVAILABLE`.
    pub fn store_unavailable() -> Self {
        Error::Unavailable {
            code: "STORE_UNAVAILABLE",
            message: "a data store is unavailable; retry shortly".into(),
            retry_after: 2,
        }
    }

    /// True for Postgres failures that mean "unreachable" rather than "query wrong".
    fn database_unreachable(e: &sqlx::Error) -> bool {
        matches!(
            e,
            sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::WorkerCrashed
        ) || matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c|
            // statement timeout, admin shutdown, cannot connect now, too many connections
            c == "57014" || c == "57P01" || c == "57P03" || c == "53300"))
    }

    /// Status, stable code and client-facing message.
    pub fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Error::BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message.clone()),
            Error::Unauthenticated { code, message } => {
                (StatusCode::UNAUTHORIZED, code, message.clone())
            }
            Error::Forbidden { code, message } => (StatusCode::FORBIDDEN, code, message.clone()),
            Error::NotFound { what } => (
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("{what} not found"),
            ),
            Error::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                self.to_string(),
            ),
            Error::Conflict { code, message } => (StatusCode::CONFLICT, code, message.clone()),
            Error::Gone { code, message } => (StatusCode::GONE, code, message.clone()),
            Error::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                self.to_string(),
            ),
            Error::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                self.to_string(),
            ),
            Error::UnsupportedMedia { message } => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                message.clone(),
            ),
            Error::Invalid { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_FAILED",
                self.to_string(),
            ),
            Error::Unprocessable { code, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, self.to_string())
            }
            Error::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                self.to_string(),
            ),
            Error::Unavailable { code, message, .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, code, message.clone())
            }
            // Text Postgres cannot store (a NUL character, an invalid escape): the input's
            // fault, not the store's.
            Error::Database(sqlx::Error::Database(d))
                if d.code().is_some_and(|c| c == "22021" || c == "22P05") =>
            {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "VALIDATION_FAILED",
                    "text may not contain the NUL character".into(),
                )
            }
            Error::Database(e) if Self::database_unreachable(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "STORE_UNAVAILABLE",
                "the database is unavailable; retry shortly".into(),
            ),
            Error::Redis(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "CACHE_UNAVAILABLE",
                "the cache is unavailable; retry shortly".into(),
            ),
            Error::Database(_) | Error::Migrate(_) | Error::Config(_) | Error::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error".into(),
            ),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after } | Error::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            Error::Redis(_) => Some(2),
            Error::Database(e) if Self::database_unreachable(e) => Some(2),
            _ => None,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %self, code, "request failed");
        }
        let mut body = json!({"error": {"code": code, "message": message}});
        if let Error::Invalid { field, .. } | Error::Unprocessable { field, .. } = &self {
            body["error"]["field"] = json!(field);
        }
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
