//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers themselves: every
//! module registers its routes through `utoipa_axum::routes!`, which takes the method and path
//! from the handler's `#[utoipa::path]`, so the router and the document cannot disagree. This
//! module adds what is common to every operation (the error body and its stable codes, bearer
//! auth, the error responses) and serves the result at `/api/v1/openapi.json`.

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, ResponseBuilder, SecurityRequirement};
use utoipa::ToSchema;

/// Every stable error `code` the API returns: `(code, HTTP status, meaning)`.
/// `tests` below fail when the source uses a code that is not listed here.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "MALFORMED_JSON",
        400,
        "The body is not valid JSON or does not match the expected shape.",
    ),
    ("BAD_BODY", 400, "The body could not be read."),
    ("INVALID_ID", 400, "A path parameter is not a valid id."),
    (
        "INVALID_QUERY",
        400,
        "A query parameter is malformed or out of range (e.g. `limit`).",
    ),
    (
        "INVALID_CURSOR",
        400,
        "The pagination cursor is not one this API issued.",
    ),
    (
        "INVALID_FRAME_REF",
        400,
        "The artifact reference is malformed.",
    ),
    ("MISSING_TOKEN", 401, "No `Authorization: Bearer` token."),
    (
        "INVALID_TOKEN",
        401,
        "The access token is expired, revoked or malformed.",
    ),
    (
        "INVALID_CREDENTIALS",
        401,
        "Unknown email or wrong password (same answer for both).",
    ),
    (
        "INVALID_REFRESH_TOKEN",
        401,
        "The refresh token is unknown, expired or revoked.",
    ),
    (
        "REFRESH_TOKEN_REUSED",
        401,
        "A spent refresh token was replayed; its whole family is revoked.",
    ),
    (
        "DEVICE_TOKEN_INVALID",
        401,
        "The phone's device token was unpaired, rejected or replaced.",
    ),
    ("FORBIDDEN", 403, "The caller's role may not do this."),
    (
        "NOT_ASSIGNED",
        403,
        "The candidate is not assigned to this exam.",
    ),
    (
        "ORIGIN_NOT_ALLOWED",
        403,
        "The WebSocket's `Origin` is not an allowed origin.",
    ),
    (
        "DEVICE_MISMATCH",
        409,
        "The request comes from another device than the session's.",
    ),
    (
        "CANNOT_ERASE_SELF",
        403,
        "An admin's own account is erased by another admin.",
    ),
    (
        "NOT_FOUND",
        404,
        "Absent, or someone else's; also an unknown route.",
    ),
    (
        "METHOD_NOT_ALLOWED",
        405,
        "The route exists but not with this method.",
    ),
    ("EMAIL_TAKEN", 409, "Another user has this email."),
    (
        "CANNOT_DEMOTE_SELF",
        409,
        "An admin may not demote or deactivate themself.",
    ),
    (
        "EXAM_NOT_DRAFT",
        409,
        "Questions can change only while the exam is DRAFT.",
    ),
    ("EXAM_ARCHIVED", 409, "The exam is archived."),
    (
        "EXAM_NOT_PUBLISHED",
        409,
        "Only a PUBLISHED exam can be archived.",
    ),
    (
        "EXAM_NOT_OPEN",
        409,
        "The exam is not published or outside its window.",
    ),
    (
        "TOO_MANY_QUESTIONS",
        409,
        "The exam holds the most questions allowed.",
    ),
    ("SESSION_CLOSED", 409, "The session has ended or expired."),
    (
        "SESSION_NOT_ENDED",
        409,
        "Review and grading need an ended session.",
    ),
    (
        "REVIEW_ALREADY_DECIDED",
        409,
        "The session's review was already decided.",
    ),
    (
        "LEGAL_HOLD",
        409,
        "The user has a session under review; erasure waits for the decision.",
    ),
    ("SESSION_ACTIVE", 409, "The user has a session in progress."),
    ("WEBHOOK_DISABLED", 409, "The webhook endpoint is disabled."),
    (
        "ALREADY_ERASED",
        409,
        "The user's personal data was already erased.",
    ),
    (
        "PAIRING_TOKEN_INVALID",
        410,
        "The pairing token is used, expired or unknown.",
    ),
    ("PAYLOAD_TOO_LARGE", 413, "The body is over the limit."),
    (
        "UNSUPPORTED_MEDIA_TYPE",
        415,
        "The body's `Content-Type` is not the expected one.",
    ),
    (
        "RANGE_NOT_SATISFIABLE",
        416,
        "The requested byte range is outside the recording.",
    ),
    (
        "VALIDATION_FAILED",
        422,
        "Well-formed but invalid; `field` names the culprit.",
    ),
    (
        "URL_NOT_ALLOWED",
        422,
        "The webhook URL is not https/http, or points to a private address.",
    ),
    (
        "RATE_LIMITED",
        429,
        "Too many attempts; retry after `Retry-After` seconds.",
    ),
    (
        "INTERNAL",
        500,
        "An unexpected failure (logged with the request id).",
    ),
    (
        "STORE_UNAVAILABLE",
        503,
        "Postgres or the event store is unavailable; retry after `Retry-After`.",
    ),
    (
        "CACHE_UNAVAILABLE",
        503,
        "Redis is unavailable; retry after `Retry-After`.",
    ),
    (
        "ARTIFACT_STORE_UNAVAILABLE",
        503,
        "The artifact store is unavailable; retry later.",
    ),
    (
        "AUTH_BUSY",
        503,
        "Too many logins are hashing at once; retry after `Retry-After`.",
    ),
    (
        "EVENT_STORE_UNAVAILABLE",
        503,
        "The event store cannot take events now; retry after `Retry-After`.",
    ),
    (
        "SHUTTING_DOWN",
        503,
        "This process is draining; retry (another node will answer).",
    ),
];

/// Raw bytes (an image, a WebM segment).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct Binary(Vec<u8>);

/// An error: the HTTP status says the class, `code` the exact reason.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// What went wrong.
    error: ErrorDetail,
}

/// The detail of an error.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// A stable `UPPER_SNAKE` code: see the `ErrorCode` schema for the full list.
    #[schema(schema_with = error_code_ref)]
    code: String,
    /// A human-readable explanation; may change between versions.
    message: String,
    /// For `VALIDATION_FAILED`: the JSON field at fault (dotted path).
    #[schema(nullable = false)]
    field: Option<String>,
}

fn error_code_ref() -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorCode"))
}

/// The `ErrorCode` schema: the enum of [`ERROR_CODES`], each explained in the description.
fn error_code_schema() -> Schema {
    let mut description = String::from("Stable error codes (HTTP status: meaning):\n\n");
    for (code, status, meaning) in ERROR_CODES {
        description.push_str(&format!("- `{code}` ({status}): {meaning}\n"));
    }
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .enum_values(Some(ERROR_CODES.iter().map(|(c, _, _)| *c)))
            .description(Some(description))
            .build(),
    )
}

/// The operations' tags, in reading order, with what they hold.
const TAGS: &[(&str, &str)] = &[
    (
        "auth",
        "Log in, rotate and revoke tokens, the current user.",
    ),
    ("users", "Accounts (ADMIN)."),
    (
        "exams",
        "Exams and their DRAFT → PUBLISHED → ARCHIVED lifecycle (ADMIN writes, staff read).",
    ),
    (
        "questions",
        "An exam's questions; editable while the exam is DRAFT.",
    ),
    ("assignments", "Who may sit an exam, with extra time."),
    (
        "sessions",
        "Taking an exam: start or resume, autosave, submit (CANDIDATE).",
    ),
    (
        "pairing",
        "The phone as a second camera: a one-time token from the laptop, claimed once.",
    ),
    (
        "events",
        "Proctoring events reported by devices, and their scores.",
    ),
    (
        "proctoring",
        "Staff on sessions: the live list, actions, review, grades.",
    ),
    ("recordings", "Recorded media of sessions, for review."),
    ("artifacts", "Evidence images attached to events."),
    (
        "webhooks",
        "Signed notifications to your systems (Standard Webhooks).",
    ),
    (
        "privacy",
        "Data-subject requests: export and erasure (GDPR Articles 15 and 17).",
    ),
];

/// Error statuses every operation may answer, besides its own; 401/403 only where a token is
/// required.
const COMMON_ERRORS: &[(u16, &str, bool)] = &[
    (
        400,
        "Malformed request (`MALFORMED_JSON`, `INVALID_ID`, `INVALID_QUERY`, …).",
        false,
    ),
    (
        401,
        "Missing or invalid credentials (`MISSING_TOKEN`, `INVALID_TOKEN`).",
        true,
    ),
    (403, "The caller may not do this (`FORBIDDEN`).", true),
    (404, "Absent or not the caller's (`NOT_FOUND`).", false),
    (
        422,
        "Invalid field (`VALIDATION_FAILED`, with `field`).",
        false,
    ),
    (429, "Rate-limited (`RATE_LIMITED`, `Retry-After`).", false),
    (500, "Unexpected failure (`INTERNAL`).", false),
    (
        503,
        "A store is unavailable (`STORE_UNAVAILABLE`, …; `Retry-After`).",
        false,
    ),
];

/// Completes the generated document: info, servers, security, the error schema and the common
/// error responses of every operation.
pub fn finish(mut api: OpenApi) -> OpenApi {
    api.info.title = "Proctor Hub API".into();
    api.info.version = "1".into();
    api.info.description = Some(
        "The HTTP API of Proctor Hub: auth, users, exams, questions, assignments, sessions with \
         a server-authoritative timer, autosave, proctoring events, review, grading, recordings, \
         webhooks and privacy requests.\n\n\
         **Auth**: `Authorization: Bearer <accessToken>` from `POST /api/v1/auth/login`. Each \
         operation says which roles may call it.\n\n\
         **Errors**: the HTTP status plus `{\"error\": {\"code\", \"message\", \"field\"?}}`; \
         `code` is stable (see the `ErrorCode` schema). 429 and 503 carry `Retry-After`.\n\n\
         **Lists**: `?limit=&cursor=` → `{\"items\": [...], \"nextCursor\": \"…\" | null}`; \
         pass `nextCursor` back as `cursor` for the next page.\n\n\
         The real-time side (WebSocket `/ws`) is described in `docs/CONTRACT.md`."
            .into(),
    );
    // Not the generator's own metadata.
    api.info.contact = None;
    api.info.license = None;
    api.tags = Some(
        TAGS.iter()
            .map(|(name, description)| {
                utoipa::openapi::tag::TagBuilder::new()
                    .name(*name)
                    .description(Some(*description))
                    .build()
            })
            .collect(),
    );
    let components = api.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert("ErrorCode".into(), RefOr::T(error_code_schema()));
    let mut names = Vec::new();
    <ErrorBody as ToSchema>::schemas(&mut names);
    for (name, schema) in names {
        components.schemas.insert(name, schema);
    }
    components.schemas.insert(
        "ErrorBody".into(),
        <ErrorBody as utoipa::PartialSchema>::schema(),
    );
    components.security_schemes.insert(
        "bearer".into(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("An access token from `POST /api/v1/auth/login`"))
                .build(),
        )),
    );
    for item in api.paths.paths.values_mut() {
        for (mutating, op) in operations(item) {
            let public = op
                .security
                .as_ref()
                .is_some_and(|s| s.iter().all(is_empty_requirement));
            if op.security.is_none() {
                op.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
            }
            if op.request_body.is_some() || mutating {
                op.responses
                    .responses
                    .entry("409".into())
                    .or_insert_with(|| {
                        RefOr::T(error_response(
                            "The resource's state forbids this now (see `ErrorCode`).",
                        ))
                    });
            }
            if op.request_body.is_some() {
                for (status, description) in [
                    ("413", "The body is over the limit (`PAYLOAD_TOO_LARGE`)."),
                    (
                        "415",
                        "The body is not of the expected type (`UNSUPPORTED_MEDIA_TYPE`).",
                    ),
                ] {
                    op.responses
                        .responses
                        .entry(status.into())
                        .or_insert_with(|| RefOr::T(error_response(description)));
                }
            }
            // Handlers of different modules share names (`list`, `show`): prefix the tag.
            if let (Some(id), Some(tag)) =
                (&op.operation_id, op.tags.as_ref().and_then(|t| t.first()))
            {
                if !id.starts_with(tag.as_str()) {
                    op.operation_id = Some(format!("{tag}_{id}"));
                }
            }
            for (status, description, needs_token) in COMMON_ERRORS {
                if *needs_token && public {
                    continue;
                }
                let key = status.to_string();
                if op.responses.responses.contains_key(&key) {
                    continue;
                }
                op.responses
                    .responses
                    .insert(key, RefOr::T(error_response(description)));
            }
        }
    }
    api
}

fn is_empty_requirement(r: &SecurityRequirement) -> bool {
    serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
}

/// An error response whose body is [`ErrorBody`].
pub fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorBody",
                ))))
                .build(),
        )
        .build()
}

/// Every operation of `item`, with whether it changes something.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (bool, &mut Operation)> {
    [
        (false, item.get.as_mut()),
        (true, item.put.as_mut()),
        (true, item.post.as_mut()),
        (true, item.delete.as_mut()),
        (true, item.patch.as_mut()),
        (false, item.head.as_mut()),
        (false, item.options.as_mut()),
        (false, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
}

/// The `(METHOD, path)` of every operation in `api`, e.g. `("GET", "/api/v1/exams/{id}")`.
pub fn operation_keys(api: &OpenApi) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for (path, item) in &api.paths.paths {
        let item = item.clone();
        for (method, op) in [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
            ("PATCH", &item.patch),
        ] {
            if op.is_some() {
                keys.push((method.to_string(), path.clone()));
            }
        }
    }
    keys.sort();
    keys
}

/// The document, serialized once at start-up.
#[derive(Clone)]
pub struct Document(pub Arc<str>);

impl Document {
    /// Serializes `api`.
    pub fn new(api: &OpenApi) -> Self {
        Document(
            serde_json::to_string(api)
                .unwrap_or_else(|_| "{}".into())
                .into(),
        )
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn serve(doc: Document) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        doc.0.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code the source hands to an error constructor is listed in [`ERROR_CODES`].
    #[test]
    fn every_code_in_the_source_is_documented() {
        let listed: std::collections::HashSet<&str> =
            ERROR_CODES.iter().map(|(c, _, _)| *c).collect();
        let mut missing = Vec::new();
        let mut seen = 0;
        for file in rust_files(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))) {
            let text = std::fs::read_to_string(&file).unwrap();
            for code in codes_in(&text) {
                seen += 1;
                if !listed.contains(code.as_str()) {
                    missing.push(format!("{code} ({})", file.display()));
                }
            }
        }
        assert!(
            seen > 20,
            "the scan found only {seen} codes: is the pattern stale?"
        );
        assert!(
            missing.is_empty(),
            "codes missing from ERROR_CODES: {missing:?}"
        );
    }

    fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(rust_files(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
        out
    }

    /// Codes passed to `Error::conflict(`, `forbidden(`, … or written as `code: "…"`.
    fn codes_in(text: &str) -> Vec<String> {
        const OPENERS: &[&str] = &[
            "refused: (",
            "conflict(",
            "forbidden(",
            "unauthenticated(",
            "bad_request(",
            "code:",
        ];
        let mut out = Vec::new();
        for opener in OPENERS {
            let mut rest = text;
            while let Some(at) = rest.find(opener) {
                rest = &rest[at + opener.len()..];
                let trimmed = rest.trim_start();
                if let Some(body) = trimmed.strip_prefix('"') {
                    let end = body.find('"').unwrap_or(0);
                    let code = &body[..end];
                    if !code.is_empty()
                        && code
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
                    {
                        out.push(code.to_string());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn error_code_schema_lists_every_code() {
        let json = serde_json::to_value(error_code_schema()).unwrap();
        assert_eq!(json["enum"].as_array().unwrap().len(), ERROR_CODES.len());
    }
}
