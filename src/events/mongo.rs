//! The MongoDB event store: the data model's `ProctoringEvent` collection, selected by
//! `MONGODB_URL`. Ids are stored as their hyphenated text (whose byte order equals Postgres'
//! `uuid` order, so both stores page identically), instants as BSON dates (milliseconds; the
//! ingest truncates to milliseconds for both stores). A batch is one unordered `insertMany`;
//! duplicate `eventId`s (code 11000 on the unique index) are the idempotent retries and are
//! not errors.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use uuid::Uuid;

use super::{
    Counts, EventQuery, EventStore, NewEvent, ScoringInput, Source, StoreError, StoredEvent,
};

/// The collection name of the data model.
pub const COLLECTION: &str = "ProctoringEvent";
/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11000;

/// Events in MongoDB.
#[derive(Clone)]
pub struct MongoEventStore {
    /// `ProctoringEvent` of the configured database.
    coll: Collection<Document>,
}

fn unavailable(e: mongodb::error::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl MongoEventStore {
    /// Connects to `url` (database from the URL, else `proctor_hub`) and creates the indexes.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_to(url, None).await
    }

    /// Like [`connect`](Self::connect) but in database `db` (tests use a fresh one each).
    pub async fn connect_to(url: &str, db: Option<&str>) -> Result<Self, StoreError> {
        let client = mongodb::Client::with_uri_str(url)
            .await
            .map_err(unavailable)?;
        let database = match db {
            Some(name) => client.database(name),
            None => client
                .default_database()
                .unwrap_or_else(|| client.database("proctor_hub")),
        };
        let coll = database.collection::<Document>(COLLECTION);
        let mut indexes: Vec<IndexModel> = [
            "sessionId",
            "examId",
            "candidateId",
            "eventType",
            "timestamp",
        ]
        .into_iter()
        .map(|k| IndexModel::builder().keys(doc! { k: 1 }).build())
        .collect();
        indexes.push(
            IndexModel::builder()
                .keys(doc! { "eventId": 1 })
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        );
        // Pages of one session in (timestamp, id) order.
        indexes.push(
            IndexModel::builder()
                .keys(doc! { "sessionId": 1, "timestamp": 1, "id": 1 })
                .build(),
        );
        coll.create_indexes(indexes).await.map_err(unavailable)?;
        Ok(MongoEventStore { coll })
    }
}

fn date(t: DateTime<Utc>) -> mongodb::bson::DateTime {
    mongodb::bson::DateTime::from_millis(t.timestamp_millis())
}

fn to_doc(e: &NewEvent) -> Document {
    let now = mongodb::bson::DateTime::now();
    let meta = e
        .meta
        .as_ref()
        .and_then(|m| mongodb::bson::to_bson(m).ok())
        .unwrap_or(Bson::Null);
    doc! {
        "_id": e.id.to_string(),
        "id": e.id.to_string(),
        "eventId": e.event_id.to_string(),
        "sessionId": e.session_id.to_string(),
        "examId": e.exam_id.to_string(),
        "candidateId": e.candidate_id.to_string(),
        "source": e.source.as_str(),
        "eventType": &e.event_type,
        "severity": i32::from(e.severity),
        "timestamp": date(e.timestamp),
        "receivedAt": date(e.received_at),
        "meta": meta,
        "frameRef": e.frame_ref.clone().map_or(Bson::Null, Bson::String),
        "createdAt": now,
        "updatedAt": now,
    }
}

fn bad(what: &str) -> StoreError {
    StoreError::Rejected(format!("malformed stored event: {what}"))
}

fn uuid_of(d: &Document, key: &str) -> Result<Uuid, StoreError> {
    d.get_str(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(key))
}

fn instant_of(d: &Document, key: &str) -> Result<DateTime<Utc>, StoreError> {
    d.get_datetime(key)
        .ok()
        .and_then(|t| DateTime::from_timestamp_millis(t.timestamp_millis()))
        .ok_or_else(|| bad(key))
}

fn from_doc(d: &Document) -> Result<StoredEvent, StoreError> {
    let meta = match d.get("meta") {
        None | Some(Bson::Null) => None,
        Some(b) => Some(b.clone().into_relaxed_extjson()),
    };
    Ok(NewEvent {
        id: uuid_of(d, "id")?,
        event_id: uuid_of(d, "eventId")?,
        session_id: uuid_of(d, "sessionId")?,
        exam_id: uuid_of(d, "examId")?,
        candidate_id: uuid_of(d, "candidateId")?,
        source: d
            .get_str("source")
            .ok()
            .and_then(Source::parse)
            .ok_or_else(|| bad("source"))?,
        event_type: d
            .get_str("eventType")
            .map_err(|_| bad("eventType"))?
            .to_string(),
        severity: d
            .get_i32("severity")
            .ok()
            .and_then(|s| i16::try_from(s).ok())
            .ok_or_else(|| bad("severity"))?,
        timestamp: instant_of(d, "timestamp")?,
        received_at: instant_of(d, "receivedAt")?,
        meta,
        frame_ref: d.get_str("frameRef").ok().map(str::to_string),
    })
}

#[async_trait::async_trait]
impl EventStore for MongoEventStore {
    async fn append(&self, events: &[NewEvent]) -> Result<Vec<Uuid>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let docs: Vec<Document> = events.iter().map(to_doc).collect();
        match self.coll.insert_many(docs).ordered(false).await {
            Ok(_) => {
                // One batch may carry the same eventId twice only if two producers raced;
                // then the unique index refused the second and we never get here.
                Ok(events.iter().map(|e| e.event_id).collect())
            }
            Err(e) => match *e.kind {
                mongodb::error::ErrorKind::InsertMany(ref failure)
                    if failure.write_concern_error.is_none()
                        && failure
                            .write_errors
                            .as_ref()
                            .is_some_and(|w| w.iter().all(|w| w.code == DUPLICATE_KEY)) =>
                {
                    let refused: HashSet<usize> = failure
                        .write_errors
                        .iter()
                        .flatten()
                        .map(|w| w.index)
                        .collect();
                    Ok(events
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !refused.contains(i))
                        .map(|(_, e)| e.event_id)
                        .collect())
                }
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn query(&self, session: Uuid, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let mut filter = doc! { "sessionId": session.to_string() };
        if let Some(t) = &q.event_type {
            filter.insert("eventType", t.as_str());
        }
        if let Some(s) = q.source {
            filter.insert("source", s.as_str());
        }
        let mut range = Document::new();
        if let Some(since) = q.since {
            range.insert("$gte", date(since));
        }
        if let Some(until) = q.until {
            range.insert("$lt", date(until));
        }
        if !range.is_empty() {
            filter.insert("timestamp", range);
        }
        if let Some(after) = q.after {
            filter.insert(
                "$or",
                vec![
                    doc! { "timestamp": { "$gt": date(after.at) } },
                    doc! { "timestamp": date(after.at), "id": { "$gt": after.id.to_string() } },
                ],
            );
        }
        let mut find = self
            .coll
            .find(filter)
            .sort(doc! { "timestamp": 1, "id": 1 });
        if q.limit < i64::MAX {
            find = find.limit(q.limit);
        }
        let docs: Vec<Document> = find
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        docs.iter().map(from_doc).collect()
    }

    async fn counts(&self, session: Uuid) -> Result<Counts, StoreError> {
        let pipeline = vec![
            doc! { "$match": { "sessionId": session.to_string() } },
            doc! { "$group": { "_id": { "t": "$eventType", "s": "$source" }, "n": { "$sum": 1 } } },
        ];
        let groups: Vec<Document> = self
            .coll
            .aggregate(pipeline)
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        let mut counts = Counts::default();
        for g in groups {
            let key = g.get_document("_id").map_err(|_| bad("_id"))?;
            let kind = key.get_str("t").map_err(|_| bad("t"))?.to_string();
            let source = key.get_str("s").map_err(|_| bad("s"))?.to_string();
            let n = match g.get("n") {
                Some(Bson::Int32(n)) => i64::from(*n),
                Some(Bson::Int64(n)) => *n,
                _ => return Err(bad("n")),
            };
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
        let ids: Vec<String> = sessions.iter().map(Uuid::to_string).collect();
        let done = self
            .coll
            .delete_many(doc! { "sessionId": { "$in": ids }, "timestamp": { "$lt": date(cutoff) } })
            .await
            .map_err(unavailable)?;
        Ok(done.deleted_count)
    }

    async fn erase_personal(&self, sessions: &[Uuid]) -> Result<u64, StoreError> {
        let ids: Vec<String> = sessions.iter().map(Uuid::to_string).collect();
        let done = self
            .coll
            .update_many(
                doc! { "sessionId": { "$in": ids } },
                doc! { "$set": { "meta": Bson::Null, "frameRef": Bson::Null } },
            )
            .await
            .map_err(unavailable)?;
        Ok(done.modified_count)
    }

    async fn scoring_inputs(&self, session: Uuid) -> Result<Vec<ScoringInput>, StoreError> {
        let q = EventQuery {
            limit: i64::MAX,
            ..EventQuery::default()
        };
        Ok(self
            .query(session, &q)
            .await?
            .iter()
            .map(ScoringInput::from)
            .collect())
    }
}
