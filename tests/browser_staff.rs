//! Headless Chromium through the staff pages: `tests/browser/proctor_day.mjs` has two
//! candidates take an exam with camera and screen on while a proctor watches the live grid,
//! opens one candidate, warns and extends it, and terminates the other;
//! `tests/browser/admin_day.mjs` has an admin write, publish and assign an exam and a
//! candidate pair a phone; `tests/browser/integrations.mjs` has an admin register a webhook
//! endpoint, ping it, follow its deliveries, export a user's data and erase a candidate;
//! `tests/browser/docs.mjs` reads the API reference at `/docs`. This test checks what the
//! pages did in Postgres and at a local webhook receiver. One binary for all, run one after
//! the other, so two browsers never share the two cores.

use std::time::Duration;

use proctor_hub::model::UserRole;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

#[path = "support/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "support/receiver.rs"]
mod receiver;

use helpers::{published_exam, spawn_app_with, TestApp};

/// A new candidate named `name` with a known password, assigned to `exam` by `admin`.
async fn candidate(app: &TestApp, exam: Uuid, admin: &str, email: &str, name: &str) -> Uuid {
    // Tiles and lists show names: each candidate needs their own.
    let id = app
        .named_user(email, "password-123", name, UserRole::Candidate)
        .await;
    let r = app
        .put(
            &format!("/exams/{exam}/assignments"),
            Some(admin),
            json!({"candidateIds": [id]}),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    id
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn staff_pages_in_chromium(pool: PgPool) {
    let app = spawn_app_with(pool, |c| c.webhooks.allow_loopback = true).await;
    let hub = format!("http://{}", app.addr);

    // The proctor's day.
    let fx = published_exam(&app).await;
    let ann = candidate(&app, fx.exam_id, &fx.admin, "ann@example.test", "Ann Lee").await;
    let ben = candidate(
        &app,
        fx.exam_id,
        &fx.admin,
        "ben@example.test",
        "Ben Okafor",
    )
    .await;
    app.user("watcher@example.test", "password-123", UserRole::Proctor)
        .await;
    let cfg = json!({
        "hub": hub,
        "examId": fx.exam_id,
        "proctor": {"email": "watcher@example.test", "password": "password-123"},
        "candidates": [
            {"email": "ann@example.test", "password": "password-123"},
            {"email": "ben@example.test", "password": "password-123"},
        ],
    });
    browser::run_scenario("proctor_day.mjs", cfg, Duration::from_secs(240)).await;
    let statuses: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT candidate_id, status::text FROM sessions WHERE exam_id = $1")
            .bind(fx.exam_id)
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert!(
        statuses.iter().any(|(_, s)| s == "TERMINATED"),
        "one candidate was terminated: {statuses:?}"
    );
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT a.action_type FROM admin_actions a JOIN sessions s ON s.id = a.session_id
          WHERE s.candidate_id = ANY($1)",
    )
    .bind([ann, ben])
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    for kind in ["WARN", "EXTEND_TIME", "TERMINATE"] {
        assert!(actions.iter().any(|a| a == kind), "{kind} in {actions:?}");
    }

    // The admin's day: a new exam written, published and assigned through the pages.
    app.user("author@example.test", "password-123", UserRole::Admin)
        .await;
    for e in ["cy@example.test", "dee@example.test"] {
        app.user(e, "password-123", UserRole::Candidate).await;
    }
    let cfg = json!({
        "hub": hub,
        "admin": {"email": "author@example.test", "password": "password-123"},
        "candidates": [
            {"email": "cy@example.test", "password": "password-123"},
            {"email": "dee@example.test", "password": "password-123"},
        ],
    });
    browser::run_scenario("admin_day.mjs", cfg, Duration::from_secs(240)).await;
    let (exam, status, questions, assigned): (Uuid, String, i64, i64) = sqlx::query_as(
        "SELECT e.id, e.status::text,
                (SELECT count(*) FROM questions q WHERE q.exam_id = e.id),
                (SELECT count(*) FROM exam_assignments a WHERE a.exam_id = e.id)
           FROM exams e WHERE e.id <> $1 ORDER BY e.created_at DESC LIMIT 1",
    )
    .bind(fx.exam_id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), questions, assigned),
        ("PUBLISHED", 3, 2),
        "exam {exam}"
    );
    let paired: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT mobile_paired_at FROM sessions WHERE exam_id = $1 AND mobile_paired_at IS NOT NULL",
    )
    .bind(exam)
    .fetch_optional(&app.state.db)
    .await
    .unwrap()
    .flatten();
    assert!(paired.is_some(), "a phone paired through the pages");

    // The integrator's day: a webhook endpoint through the pages, a ping delivered and
    // redelivered, a user's export downloaded and a candidate erased.
    let rx = receiver::Receiver::start().await;
    app.user("integrator@example.test", "password-123", UserRole::Admin)
        .await;
    let cfg = json!({
        "hub": hub,
        "admin": {"email": "integrator@example.test", "password": "password-123"},
        "receiverUrl": rx.url(),
    });
    browser::run_scenario("integrations.mjs", cfg, Duration::from_secs(180)).await;
    let (secret, enabled, events): (String, bool, Vec<String>) = sqlx::query_as(
        "SELECT secret, enabled, event_types FROM webhook_endpoints
          WHERE description LIKE 'Browser receiver %'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert!(enabled);
    assert_eq!(events.len(), 6, "{events:?}");
    let got = rx.received();
    assert!(got.len() >= 2, "the ping and its redelivery: {}", got.len());
    for r in &got {
        assert_eq!(r.kind(), "webhook.ping");
        assert!(r.verifies(&secret), "signed with the endpoint's secret");
    }
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT action_type FROM admin_actions
          WHERE action_type LIKE 'WEBHOOK_%' OR action_type IN ('USER_EXPORTED', 'USER_ERASED')",
    )
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    for kind in [
        "WEBHOOK_CREATED",
        "WEBHOOK_UPDATED",
        "WEBHOOK_REDELIVERED",
        "WEBHOOK_DELETED",
        "USER_EXPORTED",
        "USER_ERASED",
    ] {
        assert!(audited.iter().any(|a| a == kind), "{kind} in {audited:?}");
    }
    let erased: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE erased_at IS NOT NULL")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(erased, 1);

    // The API reference.
    let cfg = json!({"hub": hub});
    browser::run_scenario("docs.mjs", cfg, Duration::from_secs(120)).await;
    app.stop().await;
}
