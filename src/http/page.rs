//! Cursor pagination: `?limit=&cursor=` → `{"items": [...], "nextCursor": "…" | null}`.
//! A cursor is the opaque base64url of the last item's `(created_at, id)`.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
pub const MAX_LIMIT: i64 = 500;

/// The pagination part of a query string.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (1..=500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

pub use crate::store::cursor::Cursor;

/// Validates a query string's `limit` and `cursor` in one step.
pub fn parse(limit: Option<i64>, cursor: Option<String>) -> Result<(i64, Option<Cursor>), Error> {
    let q = PageQuery { limit, cursor };
    Ok((q.limit()?, q.cursor()?))
}

impl PageQuery {
    /// The validated limit.
    pub fn limit(&self) -> Result<i64, Error> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(Error::bad_request(
                "INVALID_QUERY",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    /// The decoded cursor, if any.
    pub fn cursor(&self) -> Result<Option<Cursor>, Error> {
        self.cursor.as_deref().map(Cursor::decode).transpose()
    }
}

/// One page of results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor of the next page, `null` at the end.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only signals that more exist.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> Cursor) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| key(r).encode())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use uuid::Uuid;

    #[test]
    fn cursor_roundtrip_and_garbage() {
        let c = Cursor {
            at: Utc::now(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("garbage!").is_err());
        assert!(Cursor::decode("Zm9v").is_err());
    }

    #[test]
    fn page_signals_more_only_with_extra_row() {
        let now = Utc::now();
        let key = |id: &Uuid| Cursor { at: now, id: *id };
        let rows: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let p = Page::from_rows(rows.clone(), 2, key);
        assert_eq!(p.items.len(), 2);
        assert!(p.next_cursor.is_some());
        let p = Page::from_rows(rows, 3, key);
        assert!(p.next_cursor.is_none());
    }
}
