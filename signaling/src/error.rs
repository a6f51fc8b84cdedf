//! The crate's one error type: why an inbound frame is not a valid message.

use crate::close::CloseCode;

/// Stable `code` strings sent in `{"type":"error","code",...}` replies.
///
/// The hub adds its own codes (e.g. `NOT_IN_ROOM`) in the same UPPER_SNAKE style.
pub mod codes {
    /// The frame is not a JSON object with a string `type`, or is a binary frame.
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    /// The `type` is not one this server knows.
    pub const UNKNOWN_TYPE: &str = "UNKNOWN_TYPE";
    /// A field is missing, has the wrong type or an invalid value.
    pub const INVALID_FIELD: &str = "INVALID_FIELD";
    /// The frame exceeds the size limit.
    pub const TOO_LARGE: &str = "TOO_LARGE";
    /// The message was dropped because the client sends too fast.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// A second `auth` on an authenticated socket.
    pub const ALREADY_AUTHENTICATED: &str = "ALREADY_AUTHENTICATED";
    /// A message arrived while the `auth` token was still being verified.
    pub const NOT_AUTHENTICATED: &str = "NOT_AUTHENTICATED";
}

/// Why a frame could not be decoded into a [`ClientMessage`](crate::ClientMessage).
///
/// Each error has a stable [`code`](DecodeError::code) for the `error` reply and says whether it
/// is fatal ([`close_code`](DecodeError::close_code) is `Some`) or only answered with an `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame is larger than the limit.
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Size of the frame in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The frame is not JSON at all.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The frame is JSON but not an object with a string `type`.
    #[error("a message must be a JSON object with a string `type`")]
    NotAMessage,
    /// The `type` names no known message (kept for the reply, cut to 64 characters).
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// A field is missing, mistyped or invalid; `field` is its path, e.g. `data.sdp`.
    #[error("invalid field `{field}`: {reason}")]
    InvalidField {
        /// Path of the field inside the message.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value failed validation in the constructor of a field type (e.g. `Severity::new(11)`).
    #[error("{field} {reason}")]
    InvalidValue {
        /// The field's wire name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A binary frame: the protocol uses text frames only.
    #[error("binary frames are not supported")]
    BinaryFrame,
}

impl DecodeError {
    /// The stable UPPER_SNAKE code for the `error` reply.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => codes::TOO_LARGE,
            DecodeError::InvalidJson(_) | DecodeError::NotAMessage | DecodeError::BinaryFrame => {
                codes::BAD_REQUEST
            }
            DecodeError::UnknownType(_) => codes::UNKNOWN_TYPE,
            DecodeError::InvalidField { .. } | DecodeError::InvalidValue { .. } => {
                codes::INVALID_FIELD
            }
        }
    }

    /// `Some(code)` if the socket must be closed: oversized frames (1009) and frames that are not
    /// a JSON message at all (4501), since a client sending those is broken or hostile. Unknown
    /// types and invalid fields are answered with an `error` and the socket stays open, so older
    /// servers tolerate newer clients.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            DecodeError::TooLarge { .. } => Some(CloseCode::TooBig),
            DecodeError::InvalidJson(_) | DecodeError::NotAMessage => Some(CloseCode::BadRequest),
            DecodeError::UnknownType(_)
            | DecodeError::InvalidField { .. }
            | DecodeError::InvalidValue { .. }
            | DecodeError::BinaryFrame => None,
        }
    }

    /// Whether the socket must be closed (see [`close_code`](DecodeError::close_code)).
    pub fn is_fatal(&self) -> bool {
        self.close_code().is_some()
    }
}
