//! The whole exam day in headless Chromium, through the pages only
//! (`tests/browser/full_day.mjs`): an admin writes, publishes and assigns an exam; two
//! candidates pass the system check and take it with camera and screen on, one with a paired
//! phone, one hiding its tab and going offline for 10 s; the proctor's grid shows both with
//! video, liveness and the flag, the proctor warns one and terminates the other; the admin
//! grades and approves. Then Postgres must hold exactly that.

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

use helpers::{spawn_app, TestApp};

/// A user with a known password and a name of its own (pages show names).
async fn person(app: &TestApp, email: &str, name: &str, role: UserRole) -> Uuid {
    app.named_user(email, "password-123", name, role).await
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_whole_exam_day_through_the_pages(pool: PgPool) {
    let app = spawn_app(pool).await;
    person(&app, "dean@example.test", "Dana Dean", UserRole::Admin).await;
    person(&app, "watch@example.test", "Pat Watcher", UserRole::Proctor).await;
    let first = person(&app, "kim@example.test", "Kim Ito", UserRole::Candidate).await;
    let second = person(&app, "lou@example.test", "Lou Marsh", UserRole::Candidate).await;

    // Flagging needs a threshold the exam's policy sets; the admin's pages write none, so it
    // is set here as soon as the exam exists (a flag at the first weighted event).
    let db = app.state.db.clone();
    let policy = tokio::spawn(async move {
        loop {
            let _ = sqlx::query(
                "UPDATE exams SET proctoring_policy = '{\"flagAt\": 1}'::jsonb
                  WHERE proctoring_policy IS NULL",
            )
            .execute(&db)
            .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let pw = "password-123";
    let cfg = json!({
        "hub": format!("http://{}", app.addr),
        "admin": {"email": "dean@example.test", "password": pw},
        "proctor": {"email": "watch@example.test", "password": pw},
        "candidates": [
            {"email": "kim@example.test", "password": pw, "name": "Kim Ito"},
            {"email": "lou@example.test", "password": pw, "name": "Lou Marsh"},
        ],
    });
    browser::run_scenario("full_day.mjs", cfg, Duration::from_secs(300)).await;
    policy.abort();

    let sessions: Vec<(Uuid, Uuid, String, String)> = sqlx::query_as(
        "SELECT id, candidate_id, status::text, review_decision::text FROM sessions",
    )
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    let of = |c: Uuid| {
        sessions
            .iter()
            .find(|s| s.1 == c)
            .unwrap_or_else(|| panic!("no session of {c}: {sessions:?}"))
            .clone()
    };
    let (kim, _, kim_status, kim_review) = of(first);
    let (_, _, lou_status, _) = of(second);
    assert_eq!(
        (kim_status.as_str(), kim_review.as_str()),
        ("SUBMITTED", "APPROVED")
    );
    assert_eq!(lou_status, "TERMINATED");
    let (answers, graded): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE response_json <> 'null'::jsonb),
                count(*) FILTER (WHERE graded_by IS NOT NULL)
           FROM answers WHERE session_id = $1",
    )
    .bind(kim)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(answers, 3, "every question answered and stored");
    assert_eq!(
        graded, 2,
        "the coding and the written answer graded by the admin"
    );
    let (hidden, paired): (i64, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM proctoring_events
                  WHERE session_id = $1 AND event_type = 'TAB_HIDDEN'),
                (SELECT mobile_paired_at FROM sessions WHERE id = $1)",
    )
    .bind(kim)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert!(hidden >= 1, "the hidden tab was recorded");
    assert!(paired.is_some(), "the phone paired");
    app.stop().await;
}
