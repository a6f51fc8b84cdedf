use std::time::Duration;

use proctor_hub::model::{Role, UserRole};
use rand::seq::SliceRandom;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{
    assert_error, assert_no_answer_key, exam_body, published_exam, published_exam_with, spawn_app,
};

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn start_resume_and_no_answer_keys(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam_with(&app, exam_body(30, true), true).await;

    let mine: Value = app
        .get("/me/exams", Some(&fx.candidate))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert!(mine["items"][0]["session"].is_null());
    assert_no_answer_key(&mine);

    let s = fx.start(&app, &fx.candidate).await;
    assert_no_answer_key(&s);
    assert_eq!(s["status"], "STARTED");
    assert_eq!(s["examId"], fx.exam_id.to_string());
    assert!(s["webrtcRoomId"].as_str().unwrap().parse::<Uuid>().is_ok());
    assert!(s["serverNow"].is_string());
    let started: chrono::DateTime<chrono::Utc> = s["startedAt"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> = s["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        (expires - started).num_minutes(),
        30,
        "duration, inside the window"
    );
    let questions = s["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 4);
    for q in questions {
        let keys: Vec<&String> = q.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "id, type, prompt, options, points only: {q}");
    }
    let id = s["id"].as_str().unwrap();
    let order: Vec<&Value> = questions.iter().map(|q| &q["id"]).collect();

    // Resume: same session, same order, saved answers included.
    let r = app
        .put(
            &format!("/sessions/{id}/answers/{}", fx.subjective),
            Some(&fx.candidate),
            json!({"response": {"text": "because"}, "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let again = app
        .post_ok(
            &format!("/exams/{}/sessions", fx.exam_id),
            &fx.candidate,
            json!({"deviceFingerprint": "laptop-1"}),
            StatusCode::OK,
        )
        .await;
    assert_no_answer_key(&again);
    assert_eq!(again["id"], s["id"]);
    let order2: Vec<&Value> = again["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| &q["id"])
        .collect();
    assert_eq!(order, order2, "the order is fixed per session");
    assert_eq!(again["answers"][fx.subjective.to_string()]["version"], 1);
    assert_eq!(
        again["answers"][fx.subjective.to_string()]["response"]["text"],
        "because"
    );
    let got: Value = app
        .get(&format!("/sessions/{id}"), Some(&fx.candidate))
        .await
        .json()
        .await
        .unwrap();
    assert_no_answer_key(&got);
    assert_eq!(got["id"], s["id"]);
    let mine: Value = app
        .get("/me/exams", Some(&fx.candidate))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"][0]["session"]["status"], "STARTED");
    assert_eq!(mine["items"][0]["session"]["id"], s["id"]);

    // The stored order is the one shown.
    let stored: Vec<Uuid> = sqlx::query_scalar("SELECT question_order FROM sessions WHERE id = $1")
        .bind(id.parse::<Uuid>().unwrap())
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|u| json!(u.to_string()))
            .collect::<Vec<_>>(),
        order.into_iter().cloned().collect::<Vec<_>>()
    );

    // Submit, then everything candidate-facing still hides keys.
    let sub = app
        .post_ok(
            &format!("/sessions/{id}/submit"),
            &fx.candidate,
            json!({}),
            StatusCode::OK,
        )
        .await;
    assert_no_answer_key(&sub);
    let got: Value = app
        .get(&format!("/sessions/{id}"), Some(&fx.candidate))
        .await
        .json()
        .await
        .unwrap();
    assert_no_answer_key(&got);
    let r = app
        .post(
            &format!("/exams/{}/sessions", fx.exam_id),
            Some(&fx.candidate),
            json!({"deviceFingerprint": "x"}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "SESSION_CLOSED").await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn start_errors(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let (_, stranger) = app.user_with_token(UserRole::Candidate).await;
    let path = format!("/exams/{}/sessions", fx.exam_id);
    let fp = json!({"deviceFingerprint": "laptop"});
    assert_error(
        app.post(&path, Some(&stranger), fp.clone()).await,
        StatusCode::FORBIDDEN,
        "NOT_ASSIGNED",
    )
    .await;
    assert_error(
        app.post(
            &format!("/exams/{}/sessions", Uuid::new_v4()),
            Some(&fx.candidate),
            fp.clone(),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let r = app
        .post(&path, Some(&fx.candidate), json!({"deviceFingerprint": ""}))
        .await;
    let body = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(body["error"]["field"], "deviceFingerprint");
    assert_error(
        app.post(&path, Some(&fx.admin), fp.clone()).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;

    // Outside the window: not yet open, and already over.
    sqlx::query("UPDATE exams SET starts_at = now() + interval '1 hour', ends_at = now() + interval '2 hours' WHERE id = $1")
        .bind(fx.exam_id).execute(&app.state.db).await.unwrap();
    assert_error(
        app.post(&path, Some(&fx.candidate), fp.clone()).await,
        StatusCode::CONFLICT,
        "EXAM_NOT_OPEN",
    )
    .await;
    sqlx::query("UPDATE exams SET starts_at = now() - interval '2 hours', ends_at = now() - interval '1 hour' WHERE id = $1")
        .bind(fx.exam_id).execute(&app.state.db).await.unwrap();
    assert_error(
        app.post(&path, Some(&fx.candidate), fp.clone()).await,
        StatusCode::CONFLICT,
        "EXAM_NOT_OPEN",
    )
    .await;

    // expiresAt is capped by endsAt.
    sqlx::query("UPDATE exams SET starts_at = now() - interval '1 hour', ends_at = now() + interval '10 minutes' WHERE id = $1")
        .bind(fx.exam_id).execute(&app.state.db).await.unwrap();
    let s = fx.start(&app, &fx.candidate).await;
    let (capped,): (bool,) = sqlx::query_as("SELECT s.expires_at = e.ends_at FROM sessions s JOIN exams e ON e.id = s.exam_id WHERE s.id = $1")
        .bind(s["id"].as_str().unwrap().parse::<Uuid>().unwrap()).fetch_one(&app.state.db).await.unwrap();
    assert!(capped);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn extra_time_and_concurrent_starts_make_one_session(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam_with(&app, exam_body(30, false), true).await;
    let r = app
        .put(
            &format!("/exams/{}/assignments", fx.exam_id),
            Some(&fx.admin),
            json!({"candidateIds": [fx.candidate_id], "extraTimeMinutes": 10}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let path = format!("/exams/{}/sessions", fx.exam_id);
    let starts = (0..8).map(|_| {
        app.post(
            &path,
            Some(&fx.candidate),
            json!({"deviceFingerprint": "l"}),
        )
    });
    let results = futures::future::join_all(starts).await;
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for r in results {
        match r.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            s => panic!("unexpected {s}"),
        }
        let b: Value = r.json().await.unwrap();
        ids.insert(b["id"].as_str().unwrap().to_string());
        let started: chrono::DateTime<chrono::Utc> =
            b["startedAt"].as_str().unwrap().parse().unwrap();
        let expires: chrono::DateTime<chrono::Utc> =
            b["expiresAt"].as_str().unwrap().parse().unwrap();
        assert_eq!((expires - started).num_minutes(), 40, "30 + 10 extra");
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn autosave_rules(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let s = fx.start(&app, &fx.candidate).await;
    let id = s["id"].as_str().unwrap();
    let save = |q: Uuid, body: Value| {
        let path = format!("/sessions/{id}/answers/{q}");
        let token = fx.candidate.clone();
        let app = &app;
        async move { app.put(&path, Some(&token), body).await }
    };
    let r = save(
        fx.mcq,
        json!({"response": {"selected": ["b"]}, "version": 2, "latencyMs": 12}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["version"], 2);
    assert!(b["savedAt"].is_string());
    // Replay: idempotent. Older: not stored, the stored version is reported.
    let r = save(
        fx.mcq,
        json!({"response": {"selected": ["b"]}, "version": 2}),
    )
    .await;
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 2);
    let r = save(
        fx.mcq,
        json!({"response": {"selected": ["a"]}, "version": 1}),
    )
    .await;
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 2);
    let stored: Value =
        sqlx::query_scalar("SELECT response_json FROM answers WHERE question_id = $1")
            .bind(fx.mcq)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(stored, json!({"selected": ["b"]}));

    // Validation against the question type, naming the field.
    let cases: Vec<(Uuid, Value, &str)> = vec![
        (
            fx.mcq,
            json!({"response": {"selected": ["z"]}, "version": 3}),
            "response.selected[0]",
        ),
        (
            fx.mcq,
            json!({"response": {"selected": ["a", "a"]}, "version": 3}),
            "response.selected[1]",
        ),
        (
            fx.mcq,
            json!({"response": {"text": "b"}, "version": 3}),
            "response.text",
        ),
        (
            fx.coding,
            json!({"response": {"code": "x"}, "version": 1}),
            "response.language",
        ),
        (
            fx.coding,
            json!({"response": {"language": "rust", "code": "x".repeat(200 * 1024)}, "version": 1}),
            "response.code",
        ),
        (
            fx.subjective,
            json!({"response": "text", "version": 1}),
            "response",
        ),
        (
            fx.subjective,
            json!({"response": {"text": "t"}, "version": -1}),
            "version",
        ),
        (fx.subjective, json!({"response": {"text": "t"}}), "body"),
    ];
    for (q, body, field) in cases {
        let r = save(q, body).await;
        let b = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        let got = b["error"]["field"].as_str().unwrap();
        assert!(
            got == field || (field == "body" && got == "body"),
            "{field}: {got}"
        );
    }
    let r = save(
        fx.coding,
        json!({"response": {"language": "rust", "code": "fn main() {}"}, "version": 1}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    // A question of another exam is 404.
    let other = published_exam(&app).await;
    assert_error(
        save(
            other.mcq,
            json!({"response": {"selected": ["b"]}, "version": 1}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        save(
            Uuid::new_v4(),
            json!({"response": {"selected": ["b"]}, "version": 1}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn out_of_order_concurrent_saves_keep_the_highest_version(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let s = fx.start(&app, &fx.candidate).await;
    let id = s["id"].as_str().unwrap().to_string();
    let mut versions: Vec<i64> = (1..=60).collect();
    versions.shuffle(&mut rand::thread_rng());
    let saves = versions.iter().map(|v| {
        let path = format!("/sessions/{id}/answers/{}", fx.subjective);
        let body = json!({"response": {"text": format!("v{v}")}, "version": v});
        let app = &app;
        let token = fx.candidate.clone();
        async move {
            let r = app.put(&path, Some(&token), body).await;
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()["version"]
                .as_i64()
                .unwrap()
        }
    });
    let acked = futures::future::join_all(saves).await;
    for (sent, stored) in versions.iter().zip(&acked) {
        assert!(
            stored >= sent,
            "an ack never reports a version below the one sent"
        );
    }
    let (v, text): (i64, Value) =
        sqlx::query_as("SELECT version, response_json FROM answers WHERE question_id = $1")
            .bind(fx.subjective)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(v, 60);
    assert_eq!(text, json!({"text": "v60"}));
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn saves_after_expiry_or_ending_are_refused(pool: PgPool) {
    let app = spawn_app_quiet_sweeper(pool).await;
    let fx = published_exam(&app).await;
    let s = fx.start(&app, &fx.candidate).await;
    let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();
    let path = format!("/sessions/{id}/answers/{}", fx.subjective);
    // Inside the grace after expiry a save is still accepted...
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let r = app
        .put(
            &path,
            Some(&fx.candidate),
            json!({"response": {"text": "a"}, "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // ...past it, never.
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE id = $1")
        .bind(id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let r = app
        .put(
            &path,
            Some(&fx.candidate),
            json!({"response": {"text": "b"}, "version": 2}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "SESSION_CLOSED").await;
    // Resume of an expired session is closed too.
    let r = app
        .post(
            &format!("/exams/{}/sessions", fx.exam_id),
            Some(&fx.candidate),
            json!({"deviceFingerprint": "l"}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "SESSION_CLOSED").await;

    // An ended session refuses saves whatever its expiry.
    let (_, c2) = fx.another_candidate(&app).await;
    let s2 = fx.start(&app, &c2).await;
    let id2 = s2["id"].as_str().unwrap();
    app.post_ok(
        &format!("/sessions/{id2}/submit"),
        &c2,
        json!({}),
        StatusCode::OK,
    )
    .await;
    let r = app
        .put(
            &format!("/sessions/{id2}/answers/{}", fx.mcq),
            Some(&c2),
            json!({"response": {"selected": []}, "version": 1}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "SESSION_CLOSED").await;
    app.stop().await;
}

/// A hub whose sweeper practically never runs after its start-up pass, so a test can hold an
/// expired session STARTED.
async fn spawn_app_quiet_sweeper(pool: PgPool) -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(pool, |c| c.exams.sweep_interval = Duration::from_secs(3600))
        .await
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn candidates_cannot_touch_each_others_sessions(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let (b_id, b) = fx.another_candidate(&app).await;
    let sa = fx.start(&app, &fx.candidate).await;
    let a_id = sa["id"].as_str().unwrap();
    let sb = fx.start(&app, &b).await;
    let b_sess = sb["id"].as_str().unwrap();

    assert_error(
        app.get(&format!("/sessions/{a_id}"), Some(&b)).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let r = app
        .put(
            &format!("/sessions/{a_id}/answers/{}", fx.subjective),
            Some(&b),
            json!({"response": {"text": "x"}, "version": 1}),
        )
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_error(
        app.post(&format!("/sessions/{a_id}/submit"), Some(&b), json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let status: String = sqlx::query_scalar("SELECT status::text FROM sessions WHERE id = $1")
        .bind(a_id.parse::<Uuid>().unwrap())
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(status, "STARTED");

    // A phone token reads only its own session; staff read any.
    let phone = app
        .state
        .jwt
        .issue(b_id, Role::Mobile, Some(b_sess.parse().unwrap()))
        .unwrap();
    assert_eq!(
        app.get(&format!("/sessions/{b_sess}"), Some(&phone))
            .await
            .status(),
        StatusCode::OK
    );
    assert_error(
        app.get(&format!("/sessions/{a_id}"), Some(&phone)).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let r = app
        .put(
            &format!("/sessions/{b_sess}/answers/{}", fx.subjective),
            Some(&phone),
            json!({"response": {"text": "x"}, "version": 1}),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let (_, proctor) = app.user_with_token(UserRole::Proctor).await;
    let got: Value = app
        .get(&format!("/sessions/{a_id}"), Some(&proctor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], sa["id"]);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn submit_is_idempotent_and_scores_mcq(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam_with(&app, exam_body(30, false), false).await;
    let mut signals = app.state.signals.subscribe();
    let s = fx.start(&app, &fx.candidate).await;
    let id = s["id"].as_str().unwrap();
    for (q, sel) in [(fx.mcq, json!(["b"])), (fx.mcq_multi, json!(["a"]))] {
        let r = app
            .put(
                &format!("/sessions/{id}/answers/{q}"),
                Some(&fx.candidate),
                json!({"response": {"selected": sel}, "version": 1}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let first = app
        .post_ok(
            &format!("/sessions/{id}/submit"),
            &fx.candidate,
            json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(first["status"], "SUBMITTED");
    let second = app
        .post_ok(
            &format!("/sessions/{id}/submit"),
            &fx.candidate,
            json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(first, second);
    // The start was signalled first (for the watchers), then the one ending.
    let mut endings = Vec::new();
    while let Ok(signal) = signals.try_recv() {
        if let proctor_hub::state::HubSignal::SessionEnded { status, .. } = signal {
            endings.push(status);
        }
    }
    assert_eq!(endings, vec![proctor_hub::model::SessionStatus::Submitted]);
    // Only the exact set scores: 2 (single, right) + 0 (multi, partial). MCQ-only: graded at once.
    let score: Value = app
        .get(&format!("/sessions/{id}/score"), Some(&fx.admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(score["objectiveScore"], 2.0);
    assert_eq!(score["finalScore"], 2.0);
    assert!(score["gradedAt"].is_string());
    assert_error(
        app.get(&format!("/sessions/{id}/score"), Some(&fx.candidate))
            .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    app.stop().await;
}
