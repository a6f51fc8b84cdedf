//! The Postgres event store (`proctoring_events`), the default. A batch is one
//! `INSERT … SELECT FROM UNNEST(…) ON CONFLICT (event_id) DO NOTHING RETURNING event_id`:
//! one round trip and one commit however many events it carries.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::{
    Counts, EventQuery, EventStore, NewEvent, ScoringInput, Source, StoreError, StoredEvent,
};

/// Events in the hub's Postgres.
#[derive(Clone)]
pub struct PgEventStore {
    /// The hub's pool (the same authority as everything else).
    db: PgPool,
}

impl PgEventStore {
    /// A store on `db` (migrated: the table is part of the core schema).
    pub fn new(db: PgPool) -> Self {
        PgEventStore { db }
    }
}

fn classify(e: sqlx::Error) -> StoreError {
    let unreachable = matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_)
    ) || matches!(&e, sqlx::Error::Database(d) if d.code().is_some_and(|c|
        // statement timeout, admin shutdown, cannot connect now, too many connections,
        // undefined table (a table renamed during maintenance), insufficient privilege
        c == "57014" || c == "57P01" || c == "57P03" || c == "53300" || c == "42P01" || c == "42501"));
    if unreachable {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Rejected(e.to_string())
    }
}

type Row = (
    Uuid,
    Uuid,
    Uuid,
    Uuid,
    Uuid,
    String,
    String,
    i16,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<Value>,
    Option<String>,
);

const COLUMNS: &str = "id, event_id, session_id, exam_id, candidate_id, source::text, event_type, \
                       severity, \"timestamp\", received_at, meta, frame_ref";

fn from_row(r: Row) -> StoredEvent {
    NewEvent {
        id: r.0,
        event_id: r.1,
        session_id: r.2,
        exam_id: r.3,
        candidate_id: r.4,
        source: Source::parse(&r.5).unwrap_or(Source::System),
        event_type: r.6,
        severity: r.7,
        timestamp: r.8,
        received_at: r.9,
        meta: r.10,
        frame_ref: r.11,
    }
}

#[async_trait::async_trait]
impl EventStore for PgEventStore {
    async fn append(&self, events: &[NewEvent]) -> Result<Vec<Uuid>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let n = events.len();
        let mut id = Vec::with_capacity(n);
        let mut event_id = Vec::with_capacity(n);
        let mut session = Vec::with_capacity(n);
        let mut exam = Vec::with_capacity(n);
        let mut candidate = Vec::with_capacity(n);
        let mut source = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut severity = Vec::with_capacity(n);
        let mut ts = Vec::with_capacity(n);
        let mut received = Vec::with_capacity(n);
        let mut meta: Vec<Option<Value>> = Vec::with_capacity(n);
        let mut frame: Vec<Option<String>> = Vec::with_capacity(n);
        for e in events {
            id.push(e.id);
            event_id.push(e.event_id);
            session.push(e.session_id);
            exam.push(e.exam_id);
            candidate.push(e.candidate_id);
            source.push(e.source.as_str());
            kind.push(e.event_type.as_str());
            severity.push(e.severity);
            ts.push(e.timestamp);
            received.push(e.received_at);
            meta.push(e.meta.clone());
            frame.push(e.frame_ref.clone());
        }
        // The join drops events of a session deleted meanwhile instead of failing the batch
        // on the foreign key: one vanished session must not block everyone's events.
        sqlx::query_scalar(
            "INSERT INTO proctoring_events
                 (id, event_id, session_id, exam_id, candidate_id, source, event_type, severity,
                  \"timestamp\", received_at, meta, frame_ref)
             SELECT u.id, u.event_id, u.session_id, u.exam_id, u.candidate_id,
                    u.source::event_source, u.event_type, u.severity, u.ts, u.received_at,
                    u.meta, u.frame_ref
               FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[],
                           $6::text[], $7::text[], $8::int2[], $9::timestamptz[],
                           $10::timestamptz[], $11::jsonb[], $12::text[])
                    AS u(id, event_id, session_id, exam_id, candidate_id, source, event_type,
                         severity, ts, received_at, meta, frame_ref)
               JOIN sessions s ON s.id = u.session_id
             ON CONFLICT (event_id) DO NOTHING
             RETURNING event_id",
        )
        .bind(id)
        .bind(event_id)
        .bind(session)
        .bind(exam)
        .bind(candidate)
        .bind(source)
        .bind(kind)
        .bind(severity)
        .bind(ts)
        .bind(received)
        .bind(meta)
        .bind(frame)
        .fetch_all(&self.db)
        .await
        .map_err(classify)
    }

    async fn query(&self, session: Uuid, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM proctoring_events
              WHERE session_id = $1
                AND ($2::text IS NULL OR event_type = $2)
                AND ($3::text IS NULL OR source = $3::event_source)
                AND ($4::timestamptz IS NULL OR \"timestamp\" >= $4)
                AND ($5::timestamptz IS NULL OR \"timestamp\" < $5)
                AND ($6::timestamptz IS NULL OR (\"timestamp\", id) > ($6, $7::uuid))
              ORDER BY \"timestamp\", id
              LIMIT $8"
        ))
        .bind(session)
        .bind(q.event_type.as_deref())
        .bind(q.source.map(Source::as_str))
        .bind(q.since)
        .bind(q.until)
        .bind(q.after.map(|c| c.at))
        .bind(q.after.map(|c| c.id))
        .bind(q.limit)
        .fetch_all(&self.db)
        .await
        .map_err(classify)?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    async fn counts(&self, session: Uuid) -> Result<Counts, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT event_type, source::text, count(*) FROM proctoring_events
              WHERE session_id = $1 GROUP BY 1, 2",
        )
        .bind(session)
        .fetch_all(&self.db)
        .await
        .map_err(classify)?;
        let mut counts = Counts::default();
        for (kind, source, n) in rows {
            *counts.by_type.entry(kind).or_default() += n;
            *counts.by_source.entry(source).or_default() += n;
            counts.total += n;
        }
        Ok(counts)
    }

    async fn delete_older_than(
        &self,
        cutoff: DateTime<Utc>,
        sessions: &[Uuid],
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM proctoring_events WHERE session_id = ANY($1) AND \"timestamp\" < $2",
        )
        .bind(sessions)
        .bind(cutoff)
        .execute(&self.db)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn erase_personal(&self, sessions: &[Uuid]) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE proctoring_events SET meta = NULL, frame_ref = NULL, updated_at = now()
              WHERE session_id = ANY($1) AND (meta IS NOT NULL OR frame_ref IS NOT NULL)",
        )
        .bind(sessions)
        .execute(&self.db)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn scoring_inputs(&self, session: Uuid) -> Result<Vec<ScoringInput>, StoreError> {
        let mut of = self.scoring_inputs_of(&[session]).await?;
        Ok(of.remove(&session).unwrap_or_default())
    }

    async fn scoring_inputs_of(
        &self,
        sessions: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<ScoringInput>>, StoreError> {
        let rows: Vec<(Uuid, Uuid, String, String, i16, DateTime<Utc>)> = sqlx::query_as(
            "SELECT session_id, id, source::text, event_type, severity, \"timestamp\"
               FROM proctoring_events
              WHERE session_id = ANY($1)
              ORDER BY session_id, \"timestamp\", id",
        )
        .bind(sessions)
        .fetch_all(&self.db)
        .await
        .map_err(classify)?;
        let mut out: HashMap<Uuid, Vec<ScoringInput>> =
            sessions.iter().map(|s| (*s, Vec::new())).collect();
        for (session, id, source, event_type, severity, timestamp) in rows {
            out.entry(session).or_default().push(ScoringInput {
                id,
                source: Source::parse(&source).unwrap_or(Source::System),
                event_type,
                severity,
                timestamp,
            });
        }
        Ok(out)
    }
}
