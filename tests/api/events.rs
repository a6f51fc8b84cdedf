//! Proctoring events through the real hub: HTTP batches and their validation and
//! authorization, idempotency under retries, concurrent producers with exact counts, an event
//! store outage and recovery, scoring and its recomputation, automatic warnings and
//! termination, the live feed, encrypted artifacts and retention.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use proctor_hub::events::postgres::PgEventStore;
use proctor_hub::events::{
    Counts, EventQuery, EventStore, NewEvent, ScoringInput, StoreError, StoredEvent,
};
use proctor_hub::model::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{
    assert_error, eventually, new_session_of, session_in, spawn_app, spawn_app_with,
    spawn_app_with_store, TestApp,
};
use crate::ws::{authed, recv_type, send};

fn event(kind: &str, severity: u8) -> Value {
    json!({"eventId": Uuid::new_v4(), "eventType": kind, "severity": severity})
}

fn at(kind: &str, severity: u8, t: DateTime<Utc>) -> Value {
    json!({"eventId": Uuid::new_v4(), "eventType": kind, "severity": severity, "timestamp": t.to_rfc3339()})
}

async fn post_events(
    app: &TestApp,
    token: &str,
    session: Uuid,
    events: &[Value],
) -> reqwest::Response {
    app.post(
        &format!("/sessions/{session}/events"),
        Some(token),
        json!({"events": events}),
    )
    .await
}

async fn stored(app: &TestApp, session: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM proctoring_events WHERE session_id = $1")
        .bind(session)
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

async fn score(app: &TestApp, session: Uuid) -> f64 {
    sqlx::query_scalar("SELECT violation_score FROM sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

/// A candidate session with its laptop token: (token, session, exam, candidate).
async fn laptop(app: &TestApp) -> (String, Uuid, Uuid, Uuid) {
    let (session, exam, candidate) = session_in(&app.state.db).await;
    (
        app.token(candidate, Role::Candidate, None),
        session,
        exam,
        candidate,
    )
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn batches_are_validated_one_by_one_and_authorized(pool: PgPool) {
    let app = spawn_app_with(pool, |c| c.events.per_request = 20).await;
    let (token, session, _, candidate) = laptop(&app).await;
    let phone = app.token(candidate, Role::Mobile, Some(session));
    let (other, _, _, _) = laptop(&app).await;
    let (_, proctor) = app
        .user_with_token(proctor_hub::model::UserRole::Proctor)
        .await;

    let good = event("TAB_HIDDEN", 3);
    let future = (Utc::now() + chrono::Duration::minutes(10)).to_rfc3339();
    let batch = vec![
        good.clone(),
        json!({"eventId": Uuid::new_v4(), "source": "MOBILE", "eventType": "TAB_HIDDEN", "severity": 1}),
        json!({"eventId": Uuid::new_v4(), "source": "SYSTEM", "eventType": "TAB_HIDDEN", "severity": 1}),
        json!({"eventId": Uuid::new_v4(), "eventType": "tab-hidden", "severity": 1}),
        json!({"eventId": Uuid::new_v4(), "eventType": "TAB_HIDDEN", "severity": 0}),
        json!({"eventId": Uuid::new_v4(), "eventType": "TAB_HIDDEN", "severity": 2, "timestamp": future}),
        json!({"eventId": Uuid::new_v4(), "eventType": "TAB_HIDDEN", "severity": 2, "meta": {"x": "y".repeat(9000)}}),
        json!({"eventId": "not-a-uuid", "eventType": "TAB_HIDDEN", "severity": 2}),
        json!({"eventId": Uuid::new_v4(), "eventType": "TAB_HIDDEN", "severity": 2, "frameRef": Uuid::new_v4()}),
        json!({"eventId": Uuid::new_v4(), "source": "LAPTOP", "eventType": "FULLSCREEN_EXIT", "severity": 4, "meta": {"k": 1}}),
    ];
    let r = post_events(&app, &token, session, &batch).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 2, "{body}");
    let codes: Vec<(u64, &str)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (1, "INVALID_SOURCE"),
            (2, "INVALID_SOURCE"),
            (3, "INVALID_EVENT_TYPE"),
            (4, "INVALID_SEVERITY"),
            (5, "INVALID_TIMESTAMP"),
            (6, "INVALID_META"),
            (7, "INVALID_EVENT_ID"),
            (8, "INVALID_FRAME_REF"),
        ]
    );
    assert_eq!(body["rejected"][0]["eventId"], batch[1]["eventId"]);
    assert_eq!(stored(&app, session).await, 2);

    // The phone reports MOBILE events for its own session, never LAPTOP ones.
    let r = post_events(
        &app,
        &phone,
        session,
        &[
            event("PHONE_DETECTED", 5),
            json!({"eventId": Uuid::new_v4(), "source": "LAPTOP", "eventType": "X", "severity": 1}),
        ],
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (
            body["accepted"].clone(),
            body["rejected"][0]["code"].clone()
        ),
        (json!(1), json!("INVALID_SOURCE"))
    );
    let source: String = sqlx::query_scalar(
        "SELECT source::text FROM proctoring_events WHERE event_type = 'PHONE_DETECTED'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(source, "MOBILE");

    // Anyone else: 404, whatever their role; no token: 401.
    let path = format!("/sessions/{session}/events");
    assert_error(
        app.post(&path, Some(&other), json!({"events": [event("A", 1)]}))
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.post(&path, Some(&proctor), json!({"events": [event("A", 1)]}))
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let (_, other_session, _, _) = laptop(&app).await;
    assert_error(
        app.post(
            &format!("/sessions/{other_session}/events"),
            Some(&phone),
            json!({"events": [event("A", 1)]}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.post(&path, None, json!({"events": []})).await,
        StatusCode::UNAUTHORIZED,
        "MISSING_TOKEN",
    )
    .await;
    // Too many or none.
    let many: Vec<Value> = (0..21).map(|_| event("A", 1)).collect();
    assert_error(
        post_events(&app, &token, session, &many).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_error(
        post_events(&app, &token, session, &[]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;

    // Reading: staff only (candidates and phones 403), unknown session 404.
    assert_error(
        app.get(&path, Some(&token)).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.get(&path, Some(&phone)).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.get(&format!("{path}/summary"), Some(&token)).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.get(
            &format!("/sessions/{}/events", Uuid::new_v4()),
            Some(&proctor),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.get(&format!("{path}?cursor=garbage"), Some(&proctor))
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_CURSOR",
    )
    .await;
    assert_error(
        app.get(&format!("{path}?source=PRINTER"), Some(&proctor))
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_QUERY",
    )
    .await;
    let r = app.get(&path, Some(&proctor)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert_eq!(page["nextCursor"], Value::Null);
    let first = &page["items"][0];
    for field in [
        "id",
        "eventId",
        "sessionId",
        "examId",
        "candidateId",
        "source",
        "eventType",
        "severity",
        "timestamp",
        "receivedAt",
    ] {
        assert!(!first[field].is_null(), "{field} in {first}");
    }
    let r = app
        .get(
            &format!("{path}?eventType=FULLSCREEN_EXIT&source=LAPTOP"),
            Some(&proctor),
        )
        .await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["meta"], json!({"k": 1}));
    let r = app.get(&format!("{path}?limit=2"), Some(&proctor)).await;
    let page: Value = r.json().await.unwrap();
    let cursor = page["nextCursor"].as_str().unwrap().to_string();
    let r = app
        .get(&format!("{path}?limit=2&cursor={cursor}"), Some(&proctor))
        .await;
    let rest: Value = r.json().await.unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["nextCursor"], Value::Null);

    let r = app.get(&format!("{path}/summary"), Some(&proctor)).await;
    let summary: Value = r.json().await.unwrap();
    assert_eq!(summary["total"], 3);
    assert_eq!(
        summary["byType"],
        json!({"TAB_HIDDEN": 1, "FULLSCREEN_EXIT": 1, "PHONE_DETECTED": 1})
    );
    assert_eq!(summary["bySource"], json!({"LAPTOP": 2, "MOBILE": 1}));
    assert!(summary["violationScore"].is_number());

    // An ended session takes no more events.
    sqlx::query("UPDATE sessions SET status = 'SUBMITTED', submitted_at = now() WHERE id = $1")
        .bind(session)
        .execute(&app.state.db)
        .await
        .unwrap();
    assert_error(
        post_events(&app, &token, session, &[event("A", 1)]).await,
        StatusCode::CONFLICT,
        "SESSION_CLOSED",
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn retried_batches_store_nothing_twice(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (token, session, _, _) = laptop(&app).await;
    let batch: Vec<Value> = (0..40)
        .map(|i| event("TAB_HIDDEN", (i % 10 + 1) as u8))
        .collect();
    // The same batch five times at once, then twice more in sequence.
    let sends = (0..5).map(|_| post_events(&app, &token, session, &batch));
    let mut duplicates = 0;
    for r in futures::future::join_all(sends).await {
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["accepted"], 40);
        duplicates += body["duplicates"].as_u64().unwrap();
    }
    assert_eq!(duplicates, 4 * 40);
    for _ in 0..2 {
        let body: Value = post_events(&app, &token, session, &batch)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (body["accepted"].clone(), body["duplicates"].clone()),
            (json!(40), json!(40))
        );
    }
    assert_eq!(stored(&app, session).await, 40);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_hundred_concurrent_producers_get_exact_counts(pool: PgPool) {
    let app = spawn_app(pool).await;
    let app = Arc::new(app);
    let (_, exam, _) = session_in(&app.state.db).await;
    let mut producers = Vec::new();
    for i in 0..100 {
        let app = app.clone();
        producers.push(tokio::spawn(async move {
            let candidate: Uuid = sqlx::query_scalar("INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, 'C', 'x', 'CANDIDATE') RETURNING id")
                .bind(Uuid::new_v4()).bind(format!("p{i}@c.test")).fetch_one(&app.state.db).await.unwrap();
            let session = new_session_of(&app.state.db, exam, candidate).await;
            let token = app.token(candidate, Role::Candidate, None);
            let events: Vec<Value> = (0..60).map(|j| event(if j % 2 == 0 { "TAB_HIDDEN" } else { "FACE_ABSENT" }, 2)).collect();
            // Three batches of 20, and a retry of the second one.
            for chunk in [&events[..20], &events[20..40], &events[20..40], &events[40..]] {
                let r = post_events(&app, &token, session, chunk).await;
                assert_eq!(r.status(), StatusCode::ACCEPTED);
            }
            session
        }));
    }
    let mut sessions = Vec::new();
    for p in producers {
        sessions.push(p.await.unwrap());
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM proctoring_events")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(total, 100 * 60);
    for s in &sessions {
        assert_eq!(stored(&app, *s).await, 60);
    }
    assert_eq!(app.state.ingest.held(), 0);
    Arc::try_unwrap(app).ok().unwrap().stop().await;
}

/// The Postgres store behind a switch: off means every write fails as "unavailable".
struct Switchable {
    inner: PgEventStore,
    down: AtomicBool,
}

#[async_trait::async_trait]
impl EventStore for Switchable {
    async fn append(&self, events: &[NewEvent]) -> Result<Vec<Uuid>, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("switched off".into()));
        }
        self.inner.append(events).await
    }
    async fn query(&self, s: Uuid, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.query(s, q).await
    }
    async fn counts(&self, s: Uuid) -> Result<Counts, StoreError> {
        self.inner.counts(s).await
    }
    async fn erase_personal(&self, s: &[Uuid]) -> Result<u64, StoreError> {
        self.inner.erase_personal(s).await
    }
    async fn delete_older_than(&self, c: DateTime<Utc>, s: &[Uuid]) -> Result<u64, StoreError> {
        self.inner.delete_older_than(c, s).await
    }
    async fn scoring_inputs(&self, s: Uuid) -> Result<Vec<ScoringInput>, StoreError> {
        self.inner.scoring_inputs(s).await
    }
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn store_outage_buffers_to_the_bound_refuses_beyond_and_flushes_on_recovery(pool: PgPool) {
    let store = Arc::new(Switchable {
        inner: PgEventStore::new(pool.clone()),
        down: AtomicBool::new(false),
    });
    let app = spawn_app_with_store(pool, Some(store.clone()), |c| {
        c.events.buffer = 50;
        c.events.ack_timeout = Duration::from_millis(400);
    })
    .await;
    let (token, session, _, _) = laptop(&app).await;
    let (mut ws, _) = authed(&app, &token).await;
    store.down.store(true, Ordering::SeqCst);

    // 30 events: buffered, not confirmed in time → 503 with Retry-After (never a false 202).
    let a: Vec<Value> = (0..30).map(|_| event("TAB_HIDDEN", 1)).collect();
    let r = post_events(&app, &token, session, &a).await;
    assert_eq!(r.headers()["retry-after"], "2");
    assert_error(
        r,
        StatusCode::SERVICE_UNAVAILABLE,
        "EVENT_STORE_UNAVAILABLE",
    )
    .await;
    assert_eq!(app.state.ingest.held(), 30);
    // 30 more do not fit: refused at once, not buffered.
    let b: Vec<Value> = (0..30).map(|_| event("TAB_HIDDEN", 1)).collect();
    assert_error(
        post_events(&app, &token, session, &b).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "EVENT_STORE_UNAVAILABLE",
    )
    .await;
    assert_eq!(app.state.ingest.held(), 30);
    // 20 fit exactly (the bound is 50); one more over the socket is refused with an error reply.
    let c: Vec<Value> = (0..20).map(|_| event("TAB_HIDDEN", 1)).collect();
    let c_sent = {
        let app = &app;
        let token = token.clone();
        let c = c.clone();
        async move { post_events(app, &token, session, &c).await }
    };
    let (c_response, ()) = tokio::join!(c_sent, async {
        eventually("20 more held", || async { app.state.ingest.held() == 50 }).await;
        send(&mut ws, json!({"type": "event", "eventId": Uuid::new_v4(), "eventType": "TAB_HIDDEN", "severity": 1})).await;
        let err = recv_type(&mut ws, "error").await;
        assert_eq!(err["code"], "EVENT_STORE_UNAVAILABLE");
        // Heartbeats keep flowing during the outage.
        send(&mut ws, json!({"type": "heartbeat"})).await;
        recv_type(&mut ws, "heartbeat-ack").await;
    });
    assert_eq!(c_response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(stored(&app, session).await, 0);

    // Recovery: the 50 buffered events are written, nothing else.
    store.down.store(false, Ordering::SeqCst);
    eventually("the buffer to flush", || async {
        app.state.ingest.held() == 0
    })
    .await;
    assert_eq!(stored(&app, session).await, 50);
    // Clients retry everything they were not acknowledged: only b's 30 are new.
    for batch in [&a, &b, &c] {
        let r = post_events(&app, &token, session, batch).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    assert_eq!(stored(&app, session).await, 80);
    // The socket's events are acknowledged again.
    let id = Uuid::new_v4();
    send(
        &mut ws,
        json!({"type": "event", "eventId": id, "eventType": "TAB_HIDDEN", "severity": 1}),
    )
    .await;
    assert_eq!(
        recv_type(&mut ws, "event-ack").await["eventId"],
        id.to_string()
    );
    assert_eq!(stored(&app, session).await, 81);
    app.stop().await;
}

async fn set_policy(app: &TestApp, exam: Uuid, policy: Value) {
    sqlx::query("UPDATE exams SET proctoring_policy = $2 WHERE id = $1")
        .bind(exam)
        .bind(policy)
        .execute(&app.state.db)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn score_is_incremental_coalesced_and_equal_to_recomputation(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (token, session, exam, candidate) = laptop(&app).await;
    let phone = app.token(candidate, Role::Mobile, Some(session));
    set_policy(&app, exam, json!({"weights": {"TAB_HIDDEN": 2.0, "GAZE_AWAY": 0.3}, "coalesceSeconds": 10, "flagAt": 1000})).await;
    let t0 = Utc::now() - chrono::Duration::minutes(30);
    let s = |secs: i64| t0 + chrono::Duration::seconds(secs);
    // Laptop TAB_HIDDEN at 0, 5 (coalesced), 10 (counted), 19 (coalesced), 25 (counted).
    let batch1 = [
        at("TAB_HIDDEN", 3, s(0)),
        at("TAB_HIDDEN", 9, s(5)),
        at("TAB_HIDDEN", 2, s(10)),
    ];
    post_events(&app, &token, session, &batch1).await;
    let batch2 = [
        at("TAB_HIDDEN", 9, s(19)),
        at("TAB_HIDDEN", 1, s(25)),
        at("GAZE_AWAY", 7, s(26)),
        at("FACE_ABSENT", 2, s(27)),
    ];
    post_events(&app, &token, session, &batch2).await;
    // The phone's TAB_HIDDEN is another source: counted on its own.
    post_events(
        &app,
        &phone,
        session,
        &[at("TAB_HIDDEN", 4, s(1)), at("MULTIPLE_FACES", 3, s(2))],
    )
    .await;
    // SYSTEM infrastructure events weigh nothing.
    proctor_hub::events::system::append(
        &app.state,
        &proctor_hub::events::system::SystemEvent::new(session, "TELEMETRY_GAP", 9, None),
    )
    .await
    .unwrap();
    proctor_hub::events::system::append(
        &app.state,
        &proctor_hub::events::system::SystemEvent::new(session, "LAPTOP_RECONNECTED", 1, None),
    )
    .await
    .unwrap();
    // 3×2 + 2×2 + 1×2 + 7×0.3 + 2×1.5 | phone: 4×2 + 3×2.0
    let expected = 6.0 + 4.0 + 2.0 + 2.1 + 3.0 + 8.0 + 6.0;
    eventually("the incremental score", || async {
        (score(&app, session).await - expected).abs() < 1e-9
    })
    .await;
    // Late events (older than ones already scored) force a recomputation from the store:
    // TAB_HIDDEN at 8 s falls in the window of the one at 0 (not counted, and the one at 10
    // still counts, 10 s after 0); WINDOW_BLUR at 3 s adds 4 × 0.5.
    post_events(
        &app,
        &token,
        session,
        &[at("TAB_HIDDEN", 5, s(8)), at("WINDOW_BLUR", 4, s(3))],
    )
    .await;
    let expected = expected + 4.0 * 0.5;
    eventually("the score after a late event", || async {
        (score(&app, session).await - expected).abs() < 1e-9
    })
    .await;
    // Recomputed from the store: the same number.
    let policy = proctor_hub::events::policy::load(&app.state, exam)
        .await
        .unwrap();
    let inputs = app.state.event_store.scoring_inputs(session).await.unwrap();
    let recomputed = proctor_hub::events::scoring::recompute(&inputs, &policy).score();
    assert_eq!(recomputed, score(&app, session).await);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn watchers_see_every_event_live_with_score_and_flag(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (token, session, exam, _) = laptop(&app).await;
    set_policy(&app, exam, json!({"flagAt": 5})).await;
    let (_, proctor) = app
        .user_with_token(proctor_hub::model::UserRole::Proctor)
        .await;
    let (mut watcher, _) = authed(&app, &proctor).await;
    send(&mut watcher, json!({"type": "watch", "examId": exam})).await;
    recv_type(&mut watcher, "session-snapshot").await;
    let t0 = Utc::now() - chrono::Duration::minutes(5);
    let events = [
        at("FACE_ABSENT", 2, t0),
        at("MULTIPLE_FACES", 1, t0 + chrono::Duration::seconds(1)),
        at("PHONE_DETECTED", 1, t0 + chrono::Duration::seconds(2)),
    ];
    post_events(&app, &token, session, &events).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let u = recv_type(&mut watcher, "session-update").await;
        assert_eq!(u["sessionId"], session.to_string());
        seen.push((
            u["lastEvent"]["eventType"].as_str().unwrap().to_string(),
            u["violationScore"].as_f64().unwrap(),
            u["flagged"].clone(),
        ));
    }
    assert_eq!(
        seen,
        vec![
            ("FACE_ABSENT".to_string(), 3.0, json!(false)),
            ("MULTIPLE_FACES".to_string(), 5.0, json!(true)),
            ("PHONE_DETECTED".to_string(), 7.0, json!(true)),
        ]
    );
    // A WebSocket event reaches the watcher too, after its ack.
    let (mut ws, _) = authed(&app, &token).await;
    let id = Uuid::new_v4();
    send(
        &mut ws,
        json!({"type": "event", "eventId": id, "eventType": "COPY_PASTE", "severity": 1}),
    )
    .await;
    assert_eq!(
        recv_type(&mut ws, "event-ack").await["eventId"],
        id.to_string()
    );
    let u = recv_type(&mut watcher, "session-update").await;
    assert_eq!(u["lastEvent"]["eventId"], id.to_string());
    assert_eq!(u["violationScore"], 8.0);
    // A proctor who starts watching now sees the flag and the last event in the snapshot.
    let (_, late) = app
        .user_with_token(proctor_hub::model::UserRole::Proctor)
        .await;
    let (mut late, _) = authed(&app, &late).await;
    send(&mut late, json!({"type": "watch", "examId": exam})).await;
    let snapshot = recv_type(&mut late, "session-snapshot").await;
    let view = &snapshot["sessions"][0];
    assert_eq!(view["sessionId"], session.to_string());
    assert_eq!(view["violationScore"], 8.0);
    assert_eq!(view["flagged"], json!(true));
    assert_eq!(view["lastEvent"]["eventId"], id.to_string());
    app.stop().await;
}

async fn actions(app: &TestApp, session: Uuid) -> Vec<(String, Option<Uuid>)> {
    sqlx::query_as("SELECT action_type, actor_id FROM admin_actions WHERE session_id = $1 ORDER BY created_at, action_type")
        .bind(session)
        .fetch_all(&app.state.db)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn auto_termination_comes_only_after_the_warnings_and_only_for_allowed_types(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (token, session, exam, _) = laptop(&app).await;
    set_policy(
        &app,
        exam,
        json!({"autoTerminate": {"eventTypes": ["TAB_HIDDEN"], "afterWarnings": 2}}),
    )
    .await;
    let (mut ws, _) = authed(&app, &token).await;
    let room: Uuid = sqlx::query_scalar("SELECT webrtc_room_id FROM sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    send(&mut ws, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut ws, "joined").await;
    let t0 = Utc::now() - chrono::Duration::minutes(10);
    let s = |secs: i64| t0 + chrono::Duration::seconds(secs);
    // Other types never terminate, however many; a coalesced repeat does not count.
    let others: Vec<Value> = (0..10)
        .map(|i| at("PHONE_DETECTED", 10, s(i * 20)))
        .collect();
    post_events(&app, &token, session, &others).await;
    post_events(
        &app,
        &token,
        session,
        &[at("TAB_HIDDEN", 1, s(0)), at("TAB_HIDDEN", 1, s(3))],
    )
    .await;
    let w = recv_type(&mut ws, "warning").await;
    assert!(
        w["message"].as_str().unwrap().contains("Warning 1 of 2"),
        "{w}"
    );
    post_events(&app, &token, session, &[at("TAB_HIDDEN", 1, s(30))]).await;
    let w = recv_type(&mut ws, "warning").await;
    assert!(
        w["message"].as_str().unwrap().contains("Warning 2 of 2"),
        "{w}"
    );
    let status: String = sqlx::query_scalar("SELECT status::text FROM sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(status, "STARTED");
    assert_eq!(
        actions(&app, session).await,
        vec![("AUTO_WARN".into(), None), ("AUTO_WARN".into(), None)]
    );
    // The next counted occurrence ends the session.
    post_events(&app, &token, session, &[at("TAB_HIDDEN", 1, s(60))]).await;
    let ended = recv_type(&mut ws, "session-ended").await;
    assert_eq!(ended["status"], "TERMINATED");
    let (status, review): (String, String) =
        sqlx::query_as("SELECT status::text, review_decision::text FROM sessions WHERE id = $1")
            .bind(session)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), review.as_str()),
        ("TERMINATED", "PENDING")
    );
    assert_eq!(
        actions(&app, session).await,
        vec![
            ("AUTO_WARN".into(), None),
            ("AUTO_WARN".into(), None),
            ("AUTO_TERMINATE".into(), None)
        ]
    );
    // The session takes no more events.
    assert_error(
        post_events(&app, &token, session, &[event("TAB_HIDDEN", 1)]).await,
        StatusCode::CONFLICT,
        "SESSION_CLOSED",
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_policy_without_auto_termination_never_ends_a_session(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (token, session, _, _) = laptop(&app).await;
    let t0 = Utc::now() - chrono::Duration::minutes(30);
    let many: Vec<Value> = (0..50)
        .map(|i| at("TAB_HIDDEN", 10, t0 + chrono::Duration::seconds(i * 11)))
        .collect();
    post_events(&app, &token, session, &many).await;
    eventually("the score", || async {
        score(&app, session).await == 500.0
    })
    .await;
    let status: String = sqlx::query_scalar("SELECT status::text FROM sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(status, "STARTED");
    assert!(actions(&app, session).await.is_empty());
    app.stop().await;
}

const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0 secret exam frame: candidate face 0123456789";

async fn upload(
    app: &TestApp,
    token: &str,
    session: Uuid,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .post(app.api(&format!("/sessions/{session}/artifacts")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn artifacts_are_encrypted_at_rest_and_readable_by_staff_only(pool: PgPool) {
    let app = spawn_app_with(pool, |c| c.events.artifact_max_bytes = 1024).await;
    let dir = match &app.state.config.events.artifact_storage {
        proctor_hub::config::ArtifactStorage::Local(d) => d.clone(),
        other => panic!("{other:?}"),
    };
    let (token, session, _, candidate) = laptop(&app).await;
    let phone = app.token(candidate, Role::Mobile, Some(session));
    let (other_token, other_session, _, _) = laptop(&app).await;
    let (_, proctor) = app
        .user_with_token(proctor_hub::model::UserRole::Proctor)
        .await;

    let r = upload(&app, &token, session, "image/jpeg", JPEG.to_vec()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let frame_ref = body["frameRef"].as_str().unwrap().to_string();
    assert_eq!(body["size"], JPEG.len());
    // The phone may upload too (PNG); a WebM clip works as well.
    let png = b"\x89PNG\r\n\x1a\n phone frame".to_vec();
    assert_eq!(
        upload(&app, &phone, session, "image/png", png)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        upload(
            &app,
            &token,
            session,
            "video/webm",
            b"\x1a\x45\xdf\xa3 clip".to_vec()
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    // Refusals: another candidate's session 404, wrong type 415, lying bytes 415, too big 413.
    assert_error(
        upload(&app, &other_token, session, "image/jpeg", JPEG.to_vec()).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        upload(&app, &proctor, session, "image/jpeg", JPEG.to_vec()).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        upload(&app, &token, session, "image/gif", b"GIF89a".to_vec()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    assert_error(
        upload(&app, &token, session, "image/png", JPEG.to_vec()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    let mut big = JPEG.to_vec();
    big.resize(2048, 0);
    assert_error(
        upload(&app, &token, session, "image/jpeg", big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    // At rest: no file holds the plaintext, nor a recognisable part of it.
    let files = files_under(&dir);
    assert_eq!(files.len(), 3);
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        assert!(
            !raw.windows(12).any(|w| JPEG.windows(12).any(|p| p == w)),
            "{f:?} leaks plaintext"
        );
        assert!(!raw.starts_with(b"\xFF\xD8\xFF") && !raw.starts_with(b"\x89PNG"));
    }
    // The wrapped key is not the key: another master key cannot decrypt.
    let other = proctor_hub::events::artifacts::Artifacts::open(
        &app.state.config.events.artifact_storage,
        proctor_hub::events::artifacts::MasterKey::random(),
    )
    .unwrap();
    assert!(other
        .get(&app.state.db, frame_ref.parse().unwrap())
        .await
        .is_err());

    // Staff read it back decrypted; everyone else gets 404.
    let path = format!("/artifacts/{frame_ref}");
    let r = app.get(&path, Some(&proctor)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    assert_eq!(r.bytes().await.unwrap().as_ref(), JPEG);
    assert_error(
        app.get(&path, Some(&token)).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.get(&path, Some(&phone)).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.get(&format!("/artifacts/{}", Uuid::new_v4()), Some(&proctor))
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.get(&path, None).await,
        StatusCode::UNAUTHORIZED,
        "MISSING_TOKEN",
    )
    .await;

    // Events may carry the frameRef of their own session only.
    let own = json!({"eventId": Uuid::new_v4(), "eventType": "FACE_ABSENT", "severity": 3, "frameRef": frame_ref});
    let body: Value = post_events(&app, &token, session, &[own])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["accepted"], 1);
    let foreign = json!({"eventId": Uuid::new_v4(), "eventType": "FACE_ABSENT", "severity": 3, "frameRef": frame_ref});
    let body: Value = post_events(&app, &other_token, other_session, &[foreign])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["rejected"][0]["code"], "INVALID_FRAME_REF");
    let _ = std::fs::remove_dir_all(&dir);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn retention_purges_old_events_and_artifacts_except_sessions_under_review(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (a_token, a, _, _) = laptop(&app).await; // will be APPROVED: purged
    let (b_token, b, _, _) = laptop(&app).await; // ended, PENDING: under review, kept
    for (token, session) in [(&a_token, a), (&b_token, b)] {
        let events: Vec<Value> = (0..5).map(|_| event("TAB_HIDDEN", 1)).collect();
        post_events(&app, token, session, &events).await;
        assert_eq!(
            upload(&app, token, session, "image/jpeg", JPEG.to_vec())
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    // Age everything by 40 days; one fresh event per session stays young.
    sqlx::query("UPDATE proctoring_events SET \"timestamp\" = \"timestamp\" - interval '40 days'")
        .execute(&app.state.db)
        .await
        .unwrap();
    sqlx::query("UPDATE artifacts SET created_at = created_at - interval '40 days'")
        .execute(&app.state.db)
        .await
        .unwrap();
    sqlx::query("UPDATE sessions SET started_at = started_at - interval '40 days'")
        .execute(&app.state.db)
        .await
        .unwrap();
    for (token, session) in [(&a_token, a), (&b_token, b)] {
        post_events(&app, token, session, &[event("FACE_ABSENT", 1)]).await;
    }
    sqlx::query("UPDATE sessions SET status = 'SUBMITTED', submitted_at = now(), review_decision = CASE WHEN id = $1 THEN 'APPROVED'::review_decision ELSE 'PENDING'::review_decision END WHERE id IN ($1, $2)")
        .bind(a).bind(b).execute(&app.state.db).await.unwrap();
    let cutoff = Utc::now() - chrono::Duration::days(i64::from(app.state.config.retention_days));
    let purged = proctor_hub::events::retention::purge(&app.state, cutoff)
        .await
        .unwrap();
    assert_eq!((purged.events, purged.artifacts), (5, 1));
    assert_eq!(stored(&app, a).await, 1);
    assert_eq!(stored(&app, b).await, 6);
    let artifacts: Vec<Uuid> = sqlx::query_scalar("SELECT session_id FROM artifacts")
        .fetch_all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(artifacts, vec![b]);
    if let proctor_hub::config::ArtifactStorage::Local(dir) =
        &app.state.config.events.artifact_storage
    {
        assert_eq!(files_under(dir).len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
    // Idempotent: nothing more to purge.
    let again = proctor_hub::events::retention::purge(&app.state, cutoff)
        .await
        .unwrap();
    assert_eq!((again.events, again.artifacts), (0, 0));
    app.stop().await;
}
