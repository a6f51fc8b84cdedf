//! Headless Chromium on the review page with a recorded session: `tests/browser/
//! review_recording.mjs` plays the session's camera recording (a real VP8 WebM made by
//! ffmpeg, stored encrypted like the relay's segments), changes the speed and clicks the
//! session's events, each of which must seek the player to its moment.

use std::time::Duration;

use chrono::{DateTime, Utc};
use proctor_hub::model::UserRole;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

#[path = "support/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use helpers::{published_exam, spawn_app};

/// A 6 s, 320×240, 15 fps VP8 WebM from ffmpeg's test source.
fn test_video() -> Vec<u8> {
    let path = std::env::temp_dir().join(format!("review-{}.webm", Uuid::new_v4().simple()));
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=15",
            "-t",
            "6",
            "-c:v",
            "libvpx",
            "-b:v",
            "200k",
        ])
        .arg(&path)
        .output()
        .expect("ffmpeg runs (scripts/browser-deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    bytes
}

async fn event(
    db: &PgPool,
    session: Uuid,
    exam: Uuid,
    candidate: Uuid,
    kind: &str,
    at: DateTime<Utc>,
) -> Uuid {
    let event_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO proctoring_events (id, event_id, session_id, exam_id, candidate_id, source,
                                        event_type, severity, timestamp, received_at)
         VALUES ($1, $2, $3, $4, $5, 'LAPTOP', $6, 3, $7, $7)",
    )
    .bind(Uuid::now_v7())
    .bind(event_id)
    .bind(session)
    .bind(exam)
    .bind(candidate)
    .bind(kind)
    .bind(at)
    .execute(db)
    .await
    .unwrap();
    event_id
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn the_review_page_plays_a_recording_and_events_seek_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let db = app.state.db.clone();
    // An ended session, pending review, with a camera recording starting at t0.
    let t0: DateTime<Utc> =
        DateTime::from_timestamp_millis(Utc::now().timestamp_millis() - 600_000).unwrap();
    let session = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sessions (id, exam_id, candidate_id, started_at, expires_at, submitted_at,
                               status, ended_reason, webrtc_room_id)
         VALUES ($1, $2, $3, $4, $4 + interval '1 hour', $4 + interval '10 minutes',
                 'TERMINATED', 'review test', $5)",
    )
    .bind(session)
    .bind(fx.exam_id)
    .bind(fx.candidate_id)
    .bind(t0 - chrono::Duration::seconds(30))
    .bind(Uuid::new_v4())
    .execute(&db)
    .await
    .unwrap();
    let video = test_video();
    let recording = Uuid::now_v7();
    app.state
        .artifacts
        .put_recording(&db, session, recording, &video)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO recordings (id, session_id, source, kind, codec, publisher, started_at,
                                 ended_at, duration_ms, frames, byte_size, sha256)
         VALUES ($1, $2, 'camera', 'video', 'VP8', $3, $4, $4 + interval '6 seconds', 6000, 90,
                 $5, 'test')",
    )
    .bind(recording)
    .bind(session)
    .bind(Uuid::new_v4())
    .bind(t0)
    .bind(video.len() as i64)
    .execute(&db)
    .await
    .unwrap();
    let early = event(
        &db,
        session,
        fx.exam_id,
        fx.candidate_id,
        "TAB_HIDDEN",
        t0 + chrono::Duration::seconds(1),
    )
    .await;
    let late = event(
        &db,
        session,
        fx.exam_id,
        fx.candidate_id,
        "FULLSCREEN_EXIT",
        t0 + chrono::Duration::seconds(4),
    )
    .await;
    app.user("reviewer@example.test", "password-123", UserRole::Proctor)
        .await;
    let cfg = json!({
        "hub": format!("http://{}", app.addr),
        "examId": fx.exam_id,
        "sessionId": session,
        "proctor": {"email": "reviewer@example.test", "password": "password-123"},
        "events": [
            {"eventId": early, "eventType": "TAB_HIDDEN", "atMs": 1000},
            {"eventId": late, "eventType": "FULLSCREEN_EXIT", "atMs": 4000},
        ],
    });
    let out = browser::run_scenario("review_recording.mjs", cfg, Duration::from_secs(120)).await;
    assert!(out.contains("\"ok\":true"), "{out}");
    app.stop().await;
}
