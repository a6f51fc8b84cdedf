//! Session recording through the real relay: a synthetic VP8 camera (webrtc-rs) published
//! for a while, then its recording listed, fetched decrypted (whole and by range), read by
//! `ffprobe` (Debian's ffmpeg), cut in two by a reconnect, kept through a store outage as a
//! SYSTEM event while forwarding goes on, hidden from candidates, and purged by retention.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use loadtest::peer::{vp8_header, vp8_packet, Peer};
use proctor_hub::model::UserRole;
use serde_json::{json, Value};
use sqlx::PgPool;
use webrtc::media_stream::track_local::TrackLocal;

use crate::helpers::{new_session, spawn_app_with, TestApp};
use crate::media::{publisher_in, Received};
use crate::ws::{authed, recv, recv_type, send};

const SSRC: u32 = 0x0BAD_CAFE;

/// 30 fps of synthetic VP8 (a keyframe every 30) for `secs`, from frame `from`.
async fn camera(
    track: &webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP,
    from: u32,
    secs: u32,
) -> u32 {
    let frames = secs * 30;
    let start = tokio::time::Instant::now();
    for i in 0..frames {
        let n = from + i;
        let mut p = vp8_header(n % 30 == 0);
        p.resize(900, (n % 251) as u8);
        track
            .write_rtp(vp8_packet(SSRC, u64::from(n), n * 3000, Bytes::from(p)))
            .await
            .unwrap();
        tokio::time::sleep_until(start + Duration::from_millis(u64::from(i + 1) * 33)).await;
    }
    from + frames
}

/// The candidate's laptop publishes `secs` of camera from frame `from`, then leaves (its
/// track ends, its segment is stored); returns the next frame number.
async fn publish_for(
    app: &TestApp,
    candidate: &str,
    room: uuid::Uuid,
    from: u32,
    secs: u32,
) -> u32 {
    let (laptop, peer, track) = publisher_in(app, candidate, room, SSRC).await;
    tokio::time::timeout(Duration::from_secs(15), peer.connected())
        .await
        .unwrap()
        .unwrap();
    let next = camera(&track, from, secs).await;
    peer.pc.close().await.unwrap();
    drop(laptop);
    next
}

/// The session's recordings, as staff list them, once `n` are there.
async fn recordings(app: &TestApp, staff: &str, session: uuid::Uuid, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = app
            .get(&format!("/sessions/{session}/recordings"), Some(staff))
            .await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let items = body["items"].as_array().unwrap().clone();
        if items.len() >= n {
            return items;
        }
        assert!(Instant::now() < deadline, "recordings: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fetch(app: &TestApp, staff: &str, session: uuid::Uuid, id: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!(
            "http://{}/api/v1/sessions/{session}/recordings/{id}",
            app.addr
        ))
        .bearer_auth(staff)
        .send()
        .await
        .unwrap()
}

/// What ffprobe reads in a WebM file: (format, codec, width, duration in seconds).
fn probe(bytes: &[u8]) -> (String, String, i64, f64) {
    let path = std::env::temp_dir().join(format!("rec-{}.webm", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=format_name,duration:stream=codec_name,width",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe runs (Debian's ffmpeg: scripts/browser-deps.sh installs it)");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["format"]["format_name"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        v["streams"][0]["codec_name"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        v["streams"][0]["width"].as_i64().unwrap_or(0),
        v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
    )
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_published_camera_is_recorded_as_webm_staff_can_seek_and_retention_purges_it(
    pool: PgPool,
) {
    let app = spawn_app_with(pool, |_| {}).await;
    let (candidate, session, room, _) = new_session(&app).await;
    let (_, staff) = app.user_with_token(UserRole::Proctor).await;
    // The laptop leaves after 10 s: the track ends and its segment is finished and stored.
    publish_for(&app, &candidate, room, 0, 10).await;
    let items = recordings(&app, &staff, session, 1).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let rec = &items[0];
    assert_eq!(
        (rec["source"].as_str(), rec["kind"].as_str()),
        (Some("camera"), Some("video"))
    );
    let id = rec["id"].as_str().unwrap();
    let whole = fetch(&app, &staff, session, id).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "video/webm");
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let bytes = whole.bytes().await.unwrap();
    assert_eq!(bytes.len() as i64, rec["bytes"].as_i64().unwrap());
    let (format, codec, width, duration) = probe(&bytes);
    assert!(format.contains("webm"), "{format}");
    assert_eq!((codec.as_str(), width), ("vp8", 640));
    assert!(
        (9.0..=11.0).contains(&duration),
        "10 s sent, {duration} s recorded"
    );
    // The media clock and the listed duration agree.
    let listed = rec["durationMs"].as_f64().unwrap() / 1000.0;
    assert!((listed - duration).abs() < 0.5, "{listed} vs {duration}");
    // A browser's seek: a byte range.
    let part = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v1/sessions/{session}/recordings/{id}",
            app.addr
        ))
        .bearer_auth(&staff)
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-199/{}", bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), bytes.slice(100..200));
    // Stored encrypted: the object is not the WebM.
    let stored_in_clear = std::fs::read_dir(match &app.state.config.events.artifact_storage {
        proctor_hub::config::ArtifactStorage::Local(d) => d.join(session.to_string()).join("rec"),
        _ => unreachable!(),
    })
    .unwrap()
    .map(|e| std::fs::read(e.unwrap().path()).unwrap())
    .any(|b| b.windows(16).any(|w| w == &bytes[..16]));
    assert!(!stored_in_clear, "recordings are encrypted at rest");
    // Candidates see nothing.
    for path in [
        format!("/sessions/{session}/recordings"),
        format!("/sessions/{session}/recordings/{id}"),
    ] {
        assert_eq!(app.get(&path, Some(&candidate)).await.status(), 404);
    }
    // Retention deletes the segment, object and row.
    let purged = proctor_hub::events::retention::purge(
        &app.state,
        chrono::Utc::now() + chrono::Duration::minutes(1),
    )
    .await
    .unwrap();
    assert_eq!(purged.recordings, 1);
    assert_eq!(fetch(&app, &staff, session, id).await.status(), 404);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_reconnect_makes_two_segments_with_the_gap_between(pool: PgPool) {
    let app = spawn_app_with(pool, |_| {}).await;
    let (candidate, session, room, _) = new_session(&app).await;
    let (_, staff) = app.user_with_token(UserRole::Proctor).await;
    let next = publish_for(&app, &candidate, room, 0, 3).await;
    // Offline for two seconds, then back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    publish_for(&app, &candidate, room, next, 3).await;
    let items = recordings(&app, &staff, session, 2).await;
    assert_eq!(items.len(), 2, "{items:?}");
    let at =
        |v: &Value, f: &str| chrono::DateTime::parse_from_rfc3339(v[f].as_str().unwrap()).unwrap();
    let gap = at(&items[1], "startedAt") - at(&items[0], "endedAt");
    assert!(
        gap >= chrono::Duration::milliseconds(1500),
        "the gap shows: {gap:?}"
    );
    for item in &items {
        let bytes = fetch(&app, &staff, session, item["id"].as_str().unwrap())
            .await
            .bytes()
            .await
            .unwrap();
        let (_, codec, _, duration) = probe(&bytes);
        assert_eq!(codec, "vp8");
        assert!((2.5..=3.5).contains(&duration), "{duration}");
    }
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_store_outage_is_a_system_event_and_forwarding_goes_on(pool: PgPool) {
    let app = spawn_app_with(pool, |_| {}).await;
    let (candidate, session, room, _) = new_session(&app).await;
    // The store cannot take this session's objects: a file where its directory would go.
    let dir = match &app.state.config.events.artifact_storage {
        proctor_hub::config::ArtifactStorage::Local(d) => d.clone(),
        _ => unreachable!(),
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(session.to_string()), b"not a directory").unwrap();
    // A proctor watches.
    let (_, staff) = app.user_with_token(UserRole::Proctor).await;
    let (mut ws, _) = authed(&app, &staff).await;
    send(&mut ws, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut ws, "joined").await;
    send(&mut ws, json!({"type": "subscribe", "roomId": room})).await;
    let received = Received::default();
    let count = received.0.clone();
    let eyes = Peer::new(Arc::new(received)).await.unwrap();
    let (laptop, peer, track) = publisher_in(&app, &candidate, room, SSRC).await;
    let offer = loop {
        let m = recv(&mut ws).await;
        if m["type"] == "signal" && m["data"]["kind"] == "offer" {
            break m;
        }
    };
    let sdp = eyes
        .answer(offer["data"]["sdp"].as_str().unwrap().into())
        .await
        .unwrap();
    send(
        &mut ws,
        json!({"type": "signal", "roomId": room, "to": "hub", "data": {"kind": "answer", "sdp": sdp}}),
    )
    .await;
    tokio::time::timeout(Duration::from_secs(15), peer.connected())
        .await
        .unwrap()
        .unwrap();
    camera(&track, 0, 3).await;
    assert!(
        count.load(Ordering::Relaxed) >= 60,
        "forwarding went on: {} packets",
        count.load(Ordering::Relaxed)
    );
    peer.pc.close().await.unwrap();
    drop(laptop);
    // The segment could not be stored: a SYSTEM event says so; nothing is listed.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let failed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM proctoring_events
              WHERE session_id = $1 AND event_type = 'RECORDING_FAILED' AND source = 'SYSTEM'",
        )
        .bind(session)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
        if failed >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no RECORDING_FAILED event");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recordings(&app, &staff, session, 0).await.is_empty());
    eyes.pc.close().await.unwrap();
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn an_exam_without_recording_records_nothing(pool: PgPool) {
    let app = spawn_app_with(pool, |_| {}).await;
    let (candidate, session, room, exam) = new_session(&app).await;
    sqlx::query("UPDATE exams SET record_media = false WHERE id = $1")
        .bind(exam)
        .execute(&app.state.db)
        .await
        .unwrap();
    let (_, staff) = app.user_with_token(UserRole::Proctor).await;
    publish_for(&app, &candidate, room, 0, 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(recordings(&app, &staff, session, 0).await.is_empty());
    app.stop().await;
}
