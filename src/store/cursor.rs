//! A position in a `(created_at, id)` ordering, and its opaque text form (the API's
//! `cursor`): base64url of `"<rfc3339>|<uuid>"`.

use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::Error;

/// A position in a `(created_at, id)` ordering.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    /// Timestamp of the last item seen.
    pub at: DateTime<Utc>,
    /// Id of the last item seen (tie-break).
    pub id: Uuid,
}

impl Cursor {
    /// Opaque text form.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            "{}|{}",
            self.at.to_rfc3339(),
            self.id
        ))
    }

    /// Parses the text form; 400 `INVALID_CURSOR` otherwise.
    pub fn decode(text: &str) -> Result<Self, Error> {
        let bad = || Error::bad_request("INVALID_CURSOR", "the cursor is not valid");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (at, id) = raw.split_once('|').ok_or_else(bad)?;
        Ok(Cursor {
            at: DateTime::parse_from_rfc3339(at)
                .map_err(|_| bad())?
                .with_timezone(&Utc),
            id: id.parse().map_err(|_| bad())?,
        })
    }
}
