//! Webhooks against a local receiver: registration and the SSRF guard, signatures, every
//! event of a session in order after the receiver was down, nothing for a rolled-back change,
//! the flag once, disabling a failing endpoint.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{assert_error, exam_body, published_exam_with, spawn_app_with, TestApp};
use crate::receiver::{Received, Receiver};
use proctor_hub::model::UserRole;
use proctor_hub::webhooks::WebhookConfig;

/// A hub that accepts loopback receivers and retries fast, then `tweak`s its settings.
/// GETs `path` until `done` holds (up to 10 s), returning the last body; fails with it if never.
async fn get_until(app: &TestApp, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let body = get_json(app, token, path).await;
        if done(&body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never reached the expected state: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn hub_with(pool: PgPool, tweak: impl FnOnce(&mut WebhookConfig)) -> TestApp {
    spawn_app_with(pool, |c| {
        c.webhooks.allow_loopback = true;
        c.webhooks.poll = Duration::from_millis(50);
        c.webhooks.backoff_base = Duration::from_millis(100);
        c.webhooks.backoff_max = Duration::from_millis(400);
        c.webhooks.timeout = Duration::from_secs(2);
        tweak(&mut c.webhooks);
    })
    .await
}

async fn hub(pool: PgPool) -> TestApp {
    hub_with(pool, |_| {}).await
}

/// Pings endpoint `id`; returns the delivery's id.
async fn ping(app: &TestApp, admin: &str, id: Uuid) -> String {
    let q = app
        .post_ok(
            &format!("/webhooks/{id}/ping"),
            admin,
            json!({}),
            StatusCode::ACCEPTED,
        )
        .await;
    q["deliveryId"].as_str().unwrap().to_string()
}

/// GET `path` as `admin`, as JSON.
async fn get_json(app: &TestApp, admin: &str, path: &str) -> Value {
    app.get(path, Some(admin)).await.json().await.unwrap()
}

/// Registers `url` for `events`; returns (id, secret).
async fn register(app: &TestApp, admin: &str, url: &str, events: &[&str]) -> (Uuid, String) {
    let b = app
        .post_ok(
            "/webhooks",
            admin,
            json!({"url": url, "events": events, "description": "LMS"}),
            StatusCode::CREATED,
        )
        .await;
    let secret = b["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{b}");
    (b["id"].as_str().unwrap().parse().unwrap(), secret)
}

const ALL: &[&str] = &[
    "session.started",
    "session.ended",
    "session.flagged",
    "review.decided",
    "score.graded",
    "pairing.claimed",
];

#[sqlx::test]
async fn registration_is_validated_and_private_addresses_are_refused(pool: PgPool) {
    let app = spawn_app_with(pool, |_| {}).await;
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    let (_, candidate) = app.user_with_token(UserRole::Candidate).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hook",
        "http://localhost:8080/hook",
        "http://0.0.0.0/",
    ] {
        let r = app
            .post(
                "/webhooks",
                Some(&admin),
                json!({"url": url, "events": ["session.ended"]}),
            )
            .await;
        let e = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "URL_NOT_ALLOWED").await;
        assert_eq!(e["error"]["field"], "url", "{url}");
    }
    for (body, field) in [
        (
            json!({"url": "ftp://lms.example.edu/", "events": ["session.ended"]}),
            "url",
        ),
        (
            json!({"url": "https://u:p@lms.example.edu/", "events": ["session.ended"]}),
            "url",
        ),
        (
            json!({"url": "http://127.0.0.1/", "events": ["session.exploded"]}),
            "events[0]",
        ),
        (json!({"url": "http://127.0.0.1/", "events": []}), "events"),
        (
            json!({"url": "http://127.0.0.1/", "events": ["session.ended"], "secret": "abc"}),
            "secret",
        ),
    ] {
        let r = app.post("/webhooks", Some(&admin), body.clone()).await;
        let e = r.json::<Value>().await.unwrap();
        assert_eq!(e["error"]["field"], field, "{body} → {e}");
    }
    let r = app
        .post(
            "/webhooks",
            Some(&candidate),
            json!({"url": "https://lms.example.edu/", "events": ["session.ended"]}),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    app.stop().await;
}

#[sqlx::test]
async fn a_ping_is_signed_listed_and_redelivered_with_the_same_id(pool: PgPool) {
    let app = hub(pool).await;
    let rx = Receiver::start().await;
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    let (id, secret) = register(&app, &admin, &rx.url(), &["session.ended"]).await;

    // The secret is shown once: never in a listing.
    let list = app
        .get("/webhooks", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains(&id.to_string()) && !list.contains(&secret),
        "{list}"
    );

    let delivery = ping(&app, &admin, id).await;
    let got = rx
        .wait_for(Duration::from_secs(10), "the ping", |g| g.len() == 1)
        .await;
    let ping = &got[0];
    assert_eq!(ping.kind(), "webhook.ping");
    assert!(
        ping.verifies(&secret),
        "the signature verifies with the endpoint's secret"
    );
    assert!(
        !ping.verifies("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "not with another"
    );
    let body = ping.json();
    assert_eq!(body["data"]["endpointId"], id.to_string());
    assert!(body["timestamp"].is_string());
    let webhook_id = ping.headers["webhook-id"].to_str().unwrap().to_string();
    let ts: i64 = ping.headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 30);
    assert!(ping.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .starts_with("v1,"));

    // Listed, with its attempt (recorded once the receiver's answer is in).
    let path = format!("/webhooks/{id}/deliveries/{delivery}");
    let detail = get_until(&app, &admin, &path, |d| d["state"] == "DELIVERED").await;
    assert_eq!(detail["attempts"], 1);
    assert_eq!(detail["attemptsMade"][0]["status"], 204);
    assert_eq!(detail["body"]["type"], "webhook.ping");
    let page: Value = get_json(
        &app,
        &admin,
        &format!("/webhooks/{id}/deliveries?state=DELIVERED"),
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");

    // Redelivered: the same message id, so receivers can drop the duplicate.
    app.post_ok(
        &format!("/webhooks/{id}/deliveries/{delivery}/redeliver"),
        &admin,
        json!({}),
        StatusCode::ACCEPTED,
    )
    .await;
    let got = rx
        .wait_for(Duration::from_secs(10), "the redelivery", |g| g.len() == 2)
        .await;
    assert_eq!(got[1].headers["webhook-id"].to_str().unwrap(), webhook_id);
    assert!(got[1].verifies(&secret));

    // Disabled: a ping is refused, and nothing more goes out.
    let r = app
        .patch(
            &format!("/webhooks/{id}"),
            Some(&admin),
            json!({"enabled": false}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["enabled"], false);
    assert_eq!(v["disabledReason"], "disabled by an admin");
    let r = app
        .post(&format!("/webhooks/{id}/ping"), Some(&admin), json!({}))
        .await;
    assert_error(r, StatusCode::CONFLICT, "WEBHOOK_DISABLED").await;
    let r = app.delete(&format!("/webhooks/{id}"), Some(&admin)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT action_type FROM admin_actions WHERE action_type LIKE 'WEBHOOK_%' ORDER BY created_at",
    )
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    assert_eq!(
        audited,
        [
            "WEBHOOK_CREATED",
            "WEBHOOK_REDELIVERED",
            "WEBHOOK_UPDATED",
            "WEBHOOK_DELETED"
        ]
    );
    app.stop().await;
}

/// The fixture's candidate starts, pairs a phone, submits; staff review. Returns the session.
async fn a_whole_session(app: &TestApp) -> (Uuid, String) {
    let f = published_exam_with(app, exam_body(60, false), false).await;
    let s = f.start(app, &f.candidate).await;
    let session: Uuid = s["id"].as_str().unwrap().parse().unwrap();
    crate::ws::pair_phone(app, &f.candidate, session, "phone-1").await;
    app.post_ok(
        &format!("/sessions/{session}/submit"),
        &f.candidate,
        json!({}),
        StatusCode::OK,
    )
    .await;
    app.post_ok(
        &format!("/sessions/{session}/review"),
        &f.admin,
        json!({"decision": "APPROVED", "reason": "clean"}),
        StatusCode::OK,
    )
    .await;
    (session, f.admin)
}

#[sqlx::test]
async fn a_receiver_that_was_down_gets_every_event_once_and_in_order(pool: PgPool) {
    let app = hub(pool).await;
    let rx = Receiver::start().await;
    rx.set_up(false);
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    let (_, secret) = register(&app, &admin, &rx.url(), ALL).await;
    let (session, _) = a_whole_session(&app).await;

    // Down for a while: the first event is retried; the ones after it wait their turn.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rx.refused() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "no retries while down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rx.received().is_empty());
    rx.set_up(true);
    let want = [
        "session.started",
        "pairing.claimed",
        "session.ended",
        "score.graded",
        "review.decided",
    ];
    let got = rx
        .wait_for(Duration::from_secs(15), "the session's events", |g| {
            g.len() >= want.len()
        })
        .await;
    // Nothing more arrives (each exactly once).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got2 = rx.received();
    assert_eq!(got2.len(), got.len(), "duplicates arrived");
    let kinds: Vec<String> = got.iter().map(Received::kind).collect();
    assert_eq!(kinds, want, "in the order they happened");
    for r in &got {
        assert!(r.verifies(&secret), "{}", r.kind());
        assert_eq!(
            r.json()["data"]["sessionId"],
            session.to_string(),
            "{}",
            r.kind()
        );
    }
    let ended = got[2].json();
    assert_eq!(ended["data"]["status"], "SUBMITTED");
    assert!(ended["data"]["reason"].is_string());
    assert_eq!(got[3].json()["data"]["finalScore"], 0.0);
    assert_eq!(got[4].json()["data"]["decision"], "APPROVED");
    // Webhooks carry ids, never names or emails.
    for r in &got {
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert!(!text.contains('@'), "{text}");
    }
    app.stop().await;
}

#[sqlx::test]
async fn a_rolled_back_ending_sends_nothing(pool: PgPool) {
    let app = hub(pool).await;
    let rx = Receiver::start().await;
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    register(&app, &admin, &rx.url(), &["session.ended"]).await;
    let f = published_exam_with(&app, exam_body(60, false), false).await;
    let s = f.start(&app, &f.candidate).await;
    let session: Uuid = s["id"].as_str().unwrap().parse().unwrap();

    // A check at COMMIT that fails this ending: everything in its transaction rolls back.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_ending() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.ended_reason = 'refused at commit' THEN
                 RAISE EXCEPTION 'refused at commit';
             END IF;
             RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER refuse_ending AFTER UPDATE ON sessions
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_ending();",
    )
    .execute(&app.state.db)
    .await
    .unwrap();
    let tx = app.state.db.begin().await.unwrap();
    let ended = app
        .state
        .end_session(
            tx,
            session,
            signaling::SessionStatus::Terminated,
            "refused at commit",
        )
        .await;
    assert!(ended.is_err(), "the commit failed");
    let (status, messages): (String, i64) = sqlx::query_as(
        "SELECT (SELECT status::text FROM sessions WHERE id = $1),
                (SELECT count(*) FROM webhook_messages WHERE event_type = 'session.ended')",
    )
    .bind(session)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!((status.as_str(), messages), ("STARTED", 0));

    // The same ending, committed, sends exactly one.
    app.post_ok(
        &format!("/sessions/{session}/submit"),
        &f.candidate,
        json!({}),
        StatusCode::OK,
    )
    .await;
    let got = rx
        .wait_for(Duration::from_secs(10), "the committed ending", |g| {
            !g.is_empty()
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.received().len(), 1, "{got:?}");
    assert_eq!(got[0].kind(), "session.ended");
    app.stop().await;
}

#[sqlx::test]
async fn a_session_is_flagged_once_when_its_score_reaches_the_threshold(pool: PgPool) {
    let app = hub(pool).await;
    let rx = Receiver::start().await;
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    register(&app, &admin, &rx.url(), &["session.flagged"]).await;
    let f = published_exam_with(&app, exam_body(60, false), false).await;
    let s = f.start(&app, &f.candidate).await;
    let session: Uuid = s["id"].as_str().unwrap().parse().unwrap();
    // Two batches, each well over the default threshold on its own.
    for _ in 0..2 {
        let events: Vec<Value> = (0..4)
            .map(|_| {
                json!({"eventId": Uuid::new_v4(), "source": "LAPTOP",
                       "eventType": "MULTIPLE_FACES", "severity": 9})
            })
            .collect();
        let r = app
            .post(
                &format!("/sessions/{session}/events"),
                Some(&f.candidate),
                json!({"events": events}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let got = rx
        .wait_for(Duration::from_secs(10), "the flag", |g| !g.is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.received().len(), 1, "flagged once: {got:?}");
    let data = got[0].json()["data"].clone();
    assert_eq!(data["sessionId"], session.to_string());
    assert!(data["violationScore"].as_f64().unwrap() >= data["flagAt"].as_f64().unwrap());
    app.stop().await;
}

#[sqlx::test]
async fn an_endpoint_failing_for_too_long_is_disabled_and_resumes_when_enabled(pool: PgPool) {
    let app = hub_with(pool, |w| {
        w.retry_for = Duration::from_secs(60);
        w.disable_after = Duration::from_secs(1);
    })
    .await;
    let rx = Receiver::start().await;
    rx.set_up(false);
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    let (id, _) = register(&app, &admin, &rx.url(), &["session.ended"]).await;
    let delivery = ping(&app, &admin, id).await;
    let endpoint = get_until(&app, &admin, &format!("/webhooks/{id}"), |e| {
        e["enabled"] == false
    })
    .await;
    assert!(endpoint["disabledReason"]
        .as_str()
        .unwrap()
        .starts_with("failing since"));
    assert!(endpoint["failingSince"].is_string());
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM admin_actions WHERE action_type = 'WEBHOOK_DISABLED'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    let detail: Value = get_json(
        &app,
        &admin,
        &format!("/webhooks/{id}/deliveries/{delivery}"),
    )
    .await;
    assert!(detail["attempts"].as_i64().unwrap() >= 2, "{detail}");
    assert_eq!(detail["lastStatus"], 503);
    assert_eq!(detail["attemptsMade"][0]["error"], "HTTP 503");

    // Enabled again with the receiver back: the waiting delivery goes out.
    rx.set_up(true);
    let r = app
        .patch(
            &format!("/webhooks/{id}"),
            Some(&admin),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let got = rx
        .wait_for(
            Duration::from_secs(10),
            "the delivery after re-enabling",
            |g| !g.is_empty(),
        )
        .await;
    assert_eq!(got[0].kind(), "webhook.ping");
    app.stop().await;
}

#[sqlx::test]
async fn a_delivery_is_given_up_after_retrying_for_its_time(pool: PgPool) {
    let app = hub_with(pool, |w| w.retry_for = Duration::from_secs(1)).await;
    let rx = Receiver::start().await;
    rx.set_up(false);
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    let (id, _) = register(&app, &admin, &rx.url(), &["session.ended"]).await;
    let delivery = ping(&app, &admin, id).await;
    let path = format!("/webhooks/{id}/deliveries/{delivery}");
    let detail = get_until(&app, &admin, &path, |d| d["state"] == "FAILED").await;
    assert!(detail["nextAttemptAt"].is_null());
    let failed: Value = get_json(
        &app,
        &admin,
        &format!("/webhooks/{id}/deliveries?state=FAILED"),
    )
    .await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1);
    // The endpoint itself stays enabled (it has not failed for a day).
    let e: Value = get_json(&app, &admin, &format!("/webhooks/{id}")).await;
    assert_eq!(e["enabled"], true);
    app.stop().await;
}
