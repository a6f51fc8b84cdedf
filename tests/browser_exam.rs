//! Headless Chromium takes an exam through the web app (`/app`): `tests/browser/exam_day.mjs`
//! logs a candidate in, answers every kind of question (one stretch offline, so answers queue
//! and flush), submits and reads the end screen; `tests/browser/check.mjs` has another one
//! pass the system check before the exam. This test then checks Postgres. A test binary
//! of its own, like `browser_relay.rs`; needs `scripts/browser-deps.sh` (run by
//! `scripts/test.sh`). Set `SCREENSHOTS=dir` to keep the pages' screenshots.

use std::time::Duration;

use proctor_hub::model::UserRole;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

#[path = "support/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use helpers::{published_exam, spawn_app};

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_candidate_takes_an_exam_in_chromium(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let (email, password) = ("taker@example.test", "password-123");
    let candidate = app.user(email, password, UserRole::Candidate).await;
    let r = app
        .put(
            &format!("/exams/{}/assignments", fx.exam_id),
            Some(&fx.admin),
            json!({"candidateIds": [candidate]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    let cfg = json!({
        "hub": format!("http://{}", app.addr),
        "candidate": {"email": email, "password": password},
    });
    browser::run_scenario("exam_day.mjs", cfg, Duration::from_secs(180)).await;

    // What the pages said happened is what Postgres holds.
    let (session, status): (Uuid, String) = sqlx::query_as(
        "SELECT id, status::text FROM sessions WHERE candidate_id = $1 AND exam_id = $2",
    )
    .bind(candidate)
    .bind(fx.exam_id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(status, "SUBMITTED");
    let answers: Vec<(Uuid, Value)> =
        sqlx::query_as("SELECT question_id, response_json FROM answers WHERE session_id = $1")
            .bind(session)
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    for q in [fx.mcq, fx.coding, fx.subjective] {
        let (_, response) = answers
            .iter()
            .find(|(id, _)| *id == q)
            .unwrap_or_else(|| panic!("question {q} has no stored answer: {answers:?}"));
        assert_ne!(response, &Value::Null);
    }

    // Another candidate goes through the system check (camera, microphone, a screen share,
    // the connection) before the exam page; the check started no session by itself.
    let checker = app
        .user("checker@example.test", password, UserRole::Candidate)
        .await;
    let r = app
        .put(
            &format!("/exams/{}/assignments", fx.exam_id),
            Some(&fx.admin),
            json!({"candidateIds": [checker]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cfg = json!({
        "hub": format!("http://{}", app.addr),
        "candidate": {"email": "checker@example.test", "password": password},
    });
    browser::run_scenario("check.mjs", cfg, Duration::from_secs(120)).await;
    let started: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sessions WHERE candidate_id = $1 AND status = 'STARTED'",
    )
    .bind(checker)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(started, 1, "the exam started once the candidate continued");
    app.stop().await;
}
