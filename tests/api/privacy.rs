//! Data-subject requests: the export holds every kind of record about the user; erasure
//! leaves no trace of their email or name in any table, event or stored object, keeps scores
//! and review decisions, and waits for the review (legal hold).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{assert_error, exam_body, spawn_app_with, ExamFixture, TestApp};
use crate::receiver::Receiver;
use proctor_hub::model::UserRole;

const EMAIL: &str = "ada.byron-7@example.edu";
const NAME: &str = "Ada Augusta Byronova";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0 a frame of the candidate";

/// A candidate with a name and email of their own who sat a whole exam: a laptop and a phone,
/// an answer, events with details, an artifact, a recording, a warning, an ending, a webhook.
/// Returns (fixture, session, candidate id, candidate token).
async fn sat_an_exam(app: &TestApp) -> (ExamFixture, Uuid, Uuid, String) {
    let rx = Receiver::start().await;
    let mut f = crate::helpers::published_exam_with(app, exam_body(60, false), false).await;
    app.post_ok(
        "/webhooks",
        &f.admin,
        json!({"url": rx.url(), "events": ["session.started", "session.ended"]}),
        StatusCode::CREATED,
    )
    .await;
    let candidate = app
        .named_user(EMAIL, "correct horse battery", NAME, UserRole::Candidate)
        .await;
    let r = app
        .put(
            &format!("/exams/{}/assignments", f.exam_id),
            Some(&f.admin),
            json!({"candidateIds": [candidate]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let login = app.login(EMAIL, "correct horse battery").await;
    let token = login["accessToken"].as_str().unwrap().to_string();
    f.candidate = token.clone();
    let s = f.start(app, &token).await;
    let session: Uuid = s["id"].as_str().unwrap().parse().unwrap();
    // The phone.
    crate::ws::pair_phone(app, &token, session, "phone-of-ada").await;
    // An answer.
    let r = app
        .put(
            &format!("/sessions/{session}/answers/{}", f.mcq),
            Some(&token),
            json!({"response": {"selected": ["b"]}, "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // An artifact, and an event pointing at it with details naming the candidate.
    let up: Value = app
        .client
        .post(app.api(&format!("/sessions/{session}/artifacts")))
        .bearer_auth(&token)
        .header("content-type", "image/jpeg")
        .body(JPEG.to_vec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let frame_ref = up["frameRef"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/sessions/{session}/events"),
            Some(&token),
            json!({"events": [{"eventId": Uuid::new_v4(), "source": "LAPTOP",
                               "eventType": "FACE_ABSENT", "severity": 3, "frameRef": frame_ref,
                               "meta": {"note": format!("{NAME} left the desk"), "contact": EMAIL}}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // A recording segment.
    let rec = Uuid::new_v4();
    app.state
        .artifacts
        .put_recording(&app.state.db, session, rec, b"\x1a\x45\xdf\xa3 webm bytes")
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO recordings (id, session_id, source, kind, codec, publisher, started_at,
                                 ended_at, duration_ms, frames, byte_size, sha256)
         VALUES ($1, $2, 'camera', 'video', 'VP8', $3, now(), now(), 1000, 30, 15, 'x')",
    )
    .bind(rec)
    .bind(session)
    .bind(Uuid::new_v4())
    .execute(&app.state.db)
    .await
    .unwrap();
    // A warning that names the candidate, then the ending.
    app.post_ok(
        &format!("/sessions/{session}/actions"),
        &f.admin,
        json!({"actionType": "WARN", "reason": format!("{NAME}, eyes on your screen")}),
        StatusCode::CREATED,
    )
    .await;
    app.post_ok(
        &format!("/sessions/{session}/submit"),
        &token,
        json!({}),
        StatusCode::OK,
    )
    .await;
    rx.wait_for(Duration::from_secs(10), "the webhooks", |g| g.len() == 2)
        .await;
    // The event is stored (ingest is asynchronous to the 202's durability only in order).
    crate::helpers::eventually("the event stored", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM proctoring_events WHERE session_id = $1")
            .bind(session)
            .fetch_one(&app.state.db)
            .await
            .unwrap()
            > 0
    })
    .await;
    (f, session, candidate, token)
}

async fn hub(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |c| {
        c.webhooks.allow_loopback = true;
        c.webhooks.poll = Duration::from_millis(50);
    })
    .await
}

#[sqlx::test]
async fn the_export_holds_every_kind_of_record(pool: PgPool) {
    let app = hub(pool).await;
    let (f, session, candidate, token) = sat_an_exam(&app).await;

    // The candidate for themself.
    let r = app
        .get(&format!("/users/{candidate}/export"), Some(&token))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let export: Value = r.json().await.unwrap();
    assert_eq!(export["format"], "proctor-hub-export/1");
    assert_eq!(export["user"]["email"], EMAIL);
    assert_eq!(export["user"]["name"], NAME);
    assert!(export["user"].get("passwordHash").is_none());
    for section in [
        "assignments",
        "sessions",
        "answers",
        "scores",
        "events",
        "adminActions",
        "artifacts",
        "recordings",
        "logins",
        "webhookMessages",
    ] {
        let n = export[section].as_array().map_or(0, Vec::len);
        assert!(n > 0, "{section} is empty: {}", export[section]);
    }
    let s = &export["sessions"][0];
    assert_eq!(s["id"], session.to_string());
    assert_eq!(s["deviceFingerprint"], "laptop-1");
    assert_eq!(s["mobileDeviceFingerprint"], "phone-of-ada");
    assert_eq!(export["answers"][0]["response"]["selected"][0], "b");
    assert_eq!(export["events"][0]["meta"]["contact"], EMAIL);
    assert!(export["artifacts"][0]["url"]
        .as_str()
        .unwrap()
        .starts_with("/api/v1/artifacts/"));
    assert!(export["recordings"][0]["url"]
        .as_str()
        .unwrap()
        .contains("/recordings/"));
    let actions: Vec<&str> = export["adminActions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["actionType"].as_str())
        .collect();
    assert!(actions.contains(&"WARN"), "{actions:?}");

    // An admin may export anyone; another candidate or a proctor may not.
    let r = app
        .get(&format!("/users/{candidate}/export"), Some(&f.admin))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, other) = app.user_with_token(UserRole::Candidate).await;
    let r = app
        .get(&format!("/users/{candidate}/export"), Some(&other))
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let (_, proctor) = app.user_with_token(UserRole::Proctor).await;
    let r = app
        .get(&format!("/users/{candidate}/export"), Some(&proctor))
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let r = app
        .get(&format!("/users/{}/export", Uuid::new_v4()), Some(&f.admin))
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    // Exports are audited.
    let exports: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM admin_actions WHERE action_type = 'USER_EXPORTED' AND target_user_id = $1",
    )
    .bind(candidate)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(exports, 2);
    app.stop().await;
}

/// Tables (and rows) whose text mentions `needle`, any case.
async fn traces(db: &PgPool, needle: &str) -> Vec<String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert!(tables.len() > 10, "{tables:?}");
    let mut found = Vec::new();
    for t in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT x::text FROM \"{t}\" x WHERE x::text ILIKE '%' || $1 || '%'"
        ))
        .bind(needle)
        .fetch_all(db)
        .await
        .unwrap();
        found.extend(rows.into_iter().map(|r| format!("{t}: {r}")));
    }
    found
}

#[sqlx::test]
async fn erasure_leaves_no_trace_keeps_results_and_waits_for_the_review(pool: PgPool) {
    let app = hub(pool).await;
    let artifact_dir = match &app.state.config.events.artifact_storage {
        proctor_hub::config::ArtifactStorage::Local(d) => d.clone(),
        other => panic!("{other:?}"),
    };
    let (f, session, candidate, _) = sat_an_exam(&app).await;
    let files_before = files_under(&artifact_dir).len();
    assert!(files_before >= 2, "an artifact and a recording are stored");
    assert!(!traces(&app.state.db, EMAIL).await.is_empty());

    // Under review: held.
    let r = app
        .post(
            &format!("/users/{candidate}/erase"),
            Some(&f.admin),
            json!({"reason": "Art. 17"}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "LEGAL_HOLD").await;
    // Nothing was changed by the refused request.
    let active: bool = sqlx::query_scalar("SELECT is_active FROM users WHERE id = $1")
        .bind(candidate)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert!(active);

    app.post_ok(
        &format!("/sessions/{session}/review"),
        &f.admin,
        json!({"decision": "APPROVED", "reason": "clean"}),
        StatusCode::OK,
    )
    .await;
    let r = app
        .post(
            &format!("/users/{candidate}/erase"),
            Some(&f.admin),
            json!({"reason": ""}),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let erased = app
        .post_ok(
            &format!("/users/{candidate}/erase"),
            &f.admin,
            json!({"reason": format!("request #118 from {NAME} <{EMAIL}>")}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(erased["userId"], candidate.to_string());
    assert_eq!(erased["artifacts"], 1);
    assert_eq!(erased["recordings"], 1);
    assert!(erased["events"].as_u64().unwrap() >= 1);

    // No trace of the email or the name anywhere in Postgres.
    for needle in [EMAIL, NAME, "phone-of-ada", "Byronova"] {
        let t = traces(&app.state.db, needle).await;
        assert!(t.is_empty(), "{needle} remains: {t:#?}");
    }
    // Nor in the stored objects.
    assert_eq!(files_under(&artifact_dir).len(), files_before - 2);
    // Events keep their type, severity and time, without details.
    let (kind, meta, frame): (String, Option<Value>, Option<String>) = sqlx::query_as(
        "SELECT event_type, meta, frame_ref FROM proctoring_events WHERE session_id = $1
          AND source = 'LAPTOP'",
    )
    .bind(session)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!((kind.as_str(), meta, frame), ("FACE_ABSENT", None, None));
    // Results the institution keeps, on the pseudonymous id.
    let (final_score, decision): (f64, String) = sqlx::query_as(
        "SELECT sc.final_score::float8, s.review_decision::text FROM sessions s
           JOIN scores sc ON sc.session_id = s.id WHERE s.id = $1 AND s.candidate_id = $2",
    )
    .bind(session)
    .bind(candidate)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!((final_score, decision.as_str()), (2.0, "APPROVED"));
    // The erasure is audited (the audit row itself was in the trace scan).
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM admin_actions WHERE action_type = 'USER_ERASED' AND target_user_id = $1",
    )
    .bind(candidate)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    // The account cannot log in; erasing again is refused; an admin cannot erase themself.
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"email": EMAIL, "password": "correct horse battery"}),
        )
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
    let r = app
        .post(
            &format!("/users/{candidate}/erase"),
            Some(&f.admin),
            json!({"reason": "again"}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "ALREADY_ERASED").await;
    let r = app
        .post(
            &format!("/users/{}/erase", f.admin_id),
            Some(&f.admin),
            json!({"reason": "me"}),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "CANNOT_ERASE_SELF").await;
    app.stop().await;
}

#[sqlx::test]
async fn a_session_in_progress_blocks_erasure(pool: PgPool) {
    let app = hub(pool).await;
    let f = crate::helpers::published_exam_with(&app, exam_body(60, false), false).await;
    f.start(&app, &f.candidate).await;
    let r = app
        .post(
            &format!("/users/{}/erase", f.candidate_id),
            Some(&f.admin),
            json!({"reason": "r"}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "SESSION_ACTIVE").await;
    app.stop().await;
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
