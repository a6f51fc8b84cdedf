//! The event-store conformance suite: one generic function per behaviour, run against Postgres
//! always and against MongoDB when `MONGODB_URL` is set (otherwise each MongoDB case prints
//! `skipped: MONGODB_URL not set` and returns).

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use proctor_hub::events::mongo::MongoEventStore;
use proctor_hub::events::postgres::PgEventStore;
use proctor_hub::events::{to_millis, EventQuery, EventStore, NewEvent, ScoringInput, Source};
use proctor_hub::http::page::Cursor;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::session_in;

/// (session, exam, candidate)
type Ctx = (Uuid, Uuid, Uuid);

/// One instant for the whole run, so every event and query agree on it.
fn base() -> DateTime<Utc> {
    static BASE: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| to_millis(Utc::now() - Duration::hours(1)))
}

fn ev(ctx: Ctx, at_ms: i64, kind: &str, source: Source) -> NewEvent {
    let t = base() + Duration::milliseconds(at_ms);
    NewEvent {
        id: Uuid::new_v4(),
        event_id: Uuid::new_v4(),
        session_id: ctx.0,
        exam_id: ctx.1,
        candidate_id: ctx.2,
        source,
        event_type: kind.into(),
        severity: 3,
        timestamp: t,
        received_at: to_millis(Utc::now()),
        meta: Some(serde_json::json!({"at": at_ms, "nested": {"ok": true}})),
        frame_ref: None,
    }
}

fn key(e: &NewEvent) -> (DateTime<Utc>, Uuid) {
    (e.timestamp, e.id)
}

async fn append_is_idempotent_by_event_id(store: &dyn EventStore, a: Ctx, _b: Ctx) {
    let batch: Vec<NewEvent> = (0..10)
        .map(|i| ev(a, i * 10, "TAB_HIDDEN", Source::Laptop))
        .collect();
    let new = store.append(&batch).await.unwrap();
    assert_eq!(new.len(), 10);
    // A retry of the same batch (fresh row ids, same eventIds) stores nothing.
    let retry: Vec<NewEvent> = batch
        .iter()
        .map(|e| NewEvent {
            id: Uuid::new_v4(),
            ..e.clone()
        })
        .collect();
    assert!(store.append(&retry).await.unwrap().is_empty());
    // A batch half old, half new: exactly the new half is reported and stored.
    let fresh: Vec<NewEvent> = (0..5)
        .map(|i| ev(a, 500 + i, "FACE_ABSENT", Source::Mobile))
        .collect();
    let mixed: Vec<NewEvent> = retry[..5]
        .iter()
        .cloned()
        .chain(fresh.iter().cloned())
        .collect();
    let new: HashSet<Uuid> = store.append(&mixed).await.unwrap().into_iter().collect();
    assert_eq!(
        new,
        fresh.iter().map(|e| e.event_id).collect::<HashSet<_>>()
    );
    // The same eventId twice in one batch is stored once.
    let twin = ev(a, 900, "COPY_PASTE", Source::Laptop);
    let twins = vec![
        twin.clone(),
        NewEvent {
            id: Uuid::new_v4(),
            ..twin.clone()
        },
    ];
    assert_eq!(store.append(&twins).await.unwrap(), vec![twin.event_id]);
    let counts = store.counts(a.0).await.unwrap();
    assert_eq!(counts.total, 16);
    assert_eq!(counts.by_type["TAB_HIDDEN"], 10);
    assert_eq!(counts.by_type["FACE_ABSENT"], 5);
    assert_eq!(counts.by_source["LAPTOP"], 11);
    assert_eq!(counts.by_source["MOBILE"], 5);
    // Stored fields come back as written.
    let q = EventQuery {
        limit: 100,
        ..Default::default()
    };
    let got = store.query(a.0, &q).await.unwrap();
    let first = got
        .iter()
        .find(|e| e.event_id == batch[0].event_id)
        .unwrap();
    assert_eq!(first, &batch[0]);
}

async fn queries_filter_page_and_order(store: &dyn EventStore, a: Ctx, b: Ctx) {
    // 30 events in shuffled arrival order, with ties on the timestamp (the id breaks them).
    let mut events = Vec::new();
    for i in 0..30i64 {
        let at = (i * 7919) % 23 * 1000; // repeats: several events share an instant
        let kind = if i % 3 == 0 {
            "MULTIPLE_FACES"
        } else {
            "TAB_HIDDEN"
        };
        let source = if i % 2 == 0 {
            Source::Laptop
        } else {
            Source::Mobile
        };
        events.push(ev(a, at, kind, source));
    }
    for chunk in events.chunks(7) {
        store.append(chunk).await.unwrap();
    }
    // Another session's events never show up.
    store
        .append(&[ev(b, 0, "TAB_HIDDEN", Source::Laptop)])
        .await
        .unwrap();
    let mut expected = events.clone();
    expected.sort_by_key(key);

    // Cursor pagination over everything, in (timestamp, id) order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let q = EventQuery {
            after,
            limit: 7,
            ..Default::default()
        };
        let page = store.query(a.0, &q).await.unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        after = Some(Cursor {
            at: last.timestamp,
            id: last.id,
        });
        seen.extend(page);
    }
    assert_eq!(
        seen.iter().map(key).collect::<Vec<_>>(),
        expected.iter().map(key).collect::<Vec<_>>()
    );

    // By type, by source, by time range [since, until).
    let q = EventQuery {
        event_type: Some("MULTIPLE_FACES".into()),
        limit: 100,
        ..Default::default()
    };
    let got = store.query(a.0, &q).await.unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|e| e.event_type == "MULTIPLE_FACES"));
    assert!(got.windows(2).all(|w| key(&w[0]) < key(&w[1])));
    let q = EventQuery {
        source: Some(Source::Mobile),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(store.query(a.0, &q).await.unwrap().len(), 15);
    let (since, until) = (
        base() + Duration::seconds(5),
        base() + Duration::seconds(12),
    );
    let q = EventQuery {
        since: Some(since),
        until: Some(until),
        limit: 100,
        ..Default::default()
    };
    let got: Vec<_> = store
        .query(a.0, &q)
        .await
        .unwrap()
        .iter()
        .map(key)
        .collect();
    let want: Vec<_> = expected
        .iter()
        .filter(|e| e.timestamp >= since && e.timestamp < until)
        .map(key)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    // Filters and the cursor combine.
    let q = EventQuery {
        event_type: Some("TAB_HIDDEN".into()),
        limit: 3,
        ..Default::default()
    };
    let first = store.query(a.0, &q).await.unwrap();
    let last = first.last().unwrap();
    let q = EventQuery {
        event_type: Some("TAB_HIDDEN".into()),
        after: Some(Cursor {
            at: last.timestamp,
            id: last.id,
        }),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(first.len() + store.query(a.0, &q).await.unwrap().len(), 20);
}

async fn scoring_inputs_and_retention(store: &dyn EventStore, a: Ctx, b: Ctx) {
    let events: Vec<NewEvent> = (0..6)
        .map(|i| ev(a, (5 - i) * 1000, "TAB_HIDDEN", Source::Laptop))
        .collect();
    store.append(&events).await.unwrap();
    store
        .append(&[ev(b, 0, "TAB_HIDDEN", Source::Laptop)])
        .await
        .unwrap();
    let inputs = store.scoring_inputs(a.0).await.unwrap();
    assert_eq!(inputs.len(), 6);
    assert!(inputs
        .windows(2)
        .all(|w| (w[0].timestamp, w[0].id) < (w[1].timestamp, w[1].id)));
    // Several sessions at once: each as it would be alone, and an entry for one without events.
    let none = Uuid::new_v4();
    let mut of = store.scoring_inputs_of(&[a.0, b.0, none]).await.unwrap();
    assert_eq!(of.len(), 3);
    let ids = |v: &[ScoringInput]| v.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(&of.remove(&a.0).unwrap()),
        ids(&inputs),
        "same events, same order"
    );
    let of_b = of.remove(&b.0).unwrap();
    assert_eq!(ids(&of_b), ids(&store.scoring_inputs(b.0).await.unwrap()));
    assert_eq!(of_b.len(), 1);
    assert!(of.remove(&none).unwrap().is_empty());
    // Delete what is older than base+3s, for session a only.
    let deleted = store
        .delete_older_than(base() + Duration::seconds(3), &[a.0])
        .await
        .unwrap();
    assert_eq!(deleted, 3);
    assert_eq!(store.counts(a.0).await.unwrap().total, 3);
    assert_eq!(store.counts(b.0).await.unwrap().total, 1);
}

async fn mongo_store() -> Option<MongoEventStore> {
    let url = std::env::var("MONGODB_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let db = format!("proctor_hub_test_{}", Uuid::new_v4().simple());
    Some(
        MongoEventStore::connect_to(&url, Some(&db))
            .await
            .expect("MongoDB reachable"),
    )
}

macro_rules! conformance {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
            async fn postgres(pool: PgPool) {
                let store = PgEventStore::new(pool.clone());
                let a = session_in(&pool).await;
                let b = session_in(&pool).await;
                super::$name(&store, a, b).await;
            }

            #[tokio::test]
            async fn mongo() {
                let Some(store) = mongo_store().await else {
                    println!("skipped: MONGODB_URL not set");
                    return;
                };
                let ctx = || (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
                super::$name(&store, ctx(), ctx()).await;
            }
        }
    };
}

conformance!(append_is_idempotent_by_event_id);
conformance!(queries_filter_page_and_order);
conformance!(scoring_inputs_and_retention);

/// Postgres only: deleting sessions deletes their events, as the foreign key's cascade did before it was dropped for ingest speed, and the
/// ingest never stores events of a session that does not exist.
#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn postgres_events_follow_their_session(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let a = session_in(&pool).await;
    let b = session_in(&pool).await;
    let batch: Vec<NewEvent> = (0..5)
        .flat_map(|i| {
            [
                ev(a, i, "TAB_HIDDEN", Source::Laptop),
                ev(b, i, "TAB_HIDDEN", Source::Laptop),
            ]
        })
        .collect();
    assert_eq!(store.append(&batch).await.unwrap().len(), 10);
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(a.0)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(store.counts(a.0).await.unwrap().total, 0);
    assert_eq!(store.counts(b.0).await.unwrap().total, 5);
    // Events of a session that is gone are not stored (and not acknowledged as new).
    let orphan = [ev(a, 9, "TAB_HIDDEN", Source::Laptop)];
    assert!(store.append(&orphan).await.unwrap().is_empty());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM proctoring_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 5, "only b's events are left");
}
