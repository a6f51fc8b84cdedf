//! S6 (PERFORMANCE.md): durable proctoring-event ingest through the real hub's ingest path
//! (bounded buffer → batched `INSERT … SELECT FROM UNNEST` → ack after commit → live feed
//! scoring and hub updates), on the local Postgres and Redis, in a fresh database dropped at
//! the end. Producers are in-process tasks, so the figure is the store path's, without HTTP
//! or WebSocket decoding.
//!
//! `cargo bench --bench ingest` (env: `BENCH_EVENTS` total per scenario, default 200000).
//! Prints one summary line per scenario: events acknowledged per second (median of 3 runs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use proctor_hub::config::{Config, ProcessEnv};
use proctor_hub::events::{NewEvent, Source};
use proctor_hub::Application;
use sqlx::postgres::PgPoolOptions;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SESSIONS: usize = 200;

fn event(session: Uuid, exam: Uuid, candidate: Uuid, i: usize) -> NewEvent {
    let now = Utc::now();
    NewEvent {
        id: Uuid::now_v7(),
        event_id: Uuid::new_v4(),
        session_id: session,
        exam_id: exam,
        candidate_id: candidate,
        source: Source::Laptop,
        event_type: ["TAB_HIDDEN", "FACE_ABSENT", "WINDOW_BLUR", "MULTIPLE_FACES"][i % 4].into(),
        severity: (i % 10 + 1) as i16,
        timestamp: proctor_hub::events::to_millis(now),
        received_at: proctor_hub::events::to_millis(now),
        meta: Some(serde_json::json!({"n": i})),
        frame_ref: None,
    }
}

async fn scenario(
    state: &proctor_hub::state::AppState,
    sessions: &Arc<Vec<(Uuid, Uuid, Uuid)>>,
    total: usize,
    producers: usize,
    per_submit: usize,
) -> f64 {
    let per_producer = total / producers;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(producers);
    for p in 0..producers {
        let (ingest, sessions) = (state.ingest.clone(), sessions.clone());
        tasks.push(tokio::spawn(async move {
            let (s, e, c) = sessions[p % sessions.len()];
            let mut sent = 0;
            while sent < per_producer {
                let n = per_submit.min(per_producer - sent);
                let batch = (0..n).map(|i| event(s, e, c, sent + i)).collect();
                let new = ingest
                    .append(batch, Duration::from_secs(60))
                    .await
                    .expect("acknowledged");
                assert_eq!(new.len(), n);
                sent += n;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (producers * per_producer) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let total: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let base = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("bench_ingest_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
        let db = PgPoolOptions::new()
            .max_connections(10)
            .connect(&url)
            .await
            .unwrap();
        proctor_hub::store::postgres::migrate(&db).await.unwrap();
        let mut config = Config::load(None, &ProcessEnv, true).unwrap();
        config.http_addr = "127.0.0.1:0".parse().unwrap();
        config.redis_prefix = format!("bench:{}:", Uuid::new_v4().simple());
        config.events.artifact_storage = proctor_hub::config::ArtifactStorage::Local(
            std::env::temp_dir().join(format!("bench-artifacts-{name}")),
        );
        let shutdown = CancellationToken::new();
        let app = Application::build_with_pool(config, db.clone(), shutdown.clone())
            .await
            .unwrap();
        let state = app.state().clone();
        let server = tokio::spawn(app.run());

        let admin_id = Uuid::new_v4();
        sqlx::query("INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, 'a@b.c', 'A', 'x', 'ADMIN')")
            .bind(admin_id).execute(&db).await.unwrap();
        let exam = Uuid::new_v4();
        sqlx::query("INSERT INTO exams (id, title, status, duration_minutes, starts_at, ends_at, created_by_user_id) VALUES ($1, 'E', 'PUBLISHED', 60, now() - interval '1 minute', now() + interval '1 day', $2)")
            .bind(exam).bind(admin_id).execute(&db).await.unwrap();
        let mut sessions = Vec::new();
        for i in 0..SESSIONS {
            let (c, s) = (Uuid::new_v4(), Uuid::new_v4());
            sqlx::query("INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, 'C', 'x', 'CANDIDATE')")
                .bind(c).bind(format!("c{i}@b.c")).execute(&db).await.unwrap();
            sqlx::query("INSERT INTO sessions (id, exam_id, candidate_id, expires_at, webrtc_room_id) VALUES ($1, $2, $3, now() + interval '1 hour', $4)")
                .bind(s).bind(exam).bind(c).bind(Uuid::new_v4()).execute(&db).await.unwrap();
            sessions.push((s, exam, c));
        }
        let sessions = Arc::new(sessions);
        // Warm-up.
        scenario(&state, &sessions, 20_000, 200, 10).await;
        for (label, producers, per_submit) in [
            ("S6 ws-like: 2000 producers x 1 event per ack", 2000, 1),
            ("S6 http-like: 200 producers x 50-event batches", 200, 50),
        ] {
            let mut runs = Vec::new();
            for _ in 0..3 {
                runs.push(scenario(&state, &sessions, total, producers, per_submit).await);
            }
            runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "{label}: median {:.0} events/s durable (runs: {})",
                runs[1],
                runs.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
            );
        }
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM proctoring_events")
            .fetch_one(&db)
            .await
            .unwrap();
        println!("stored events: {stored}");
        shutdown.cancel();
        let _ = server.await;
        db.close().await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
    });
}
