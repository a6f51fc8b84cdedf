//! Measures acknowledged, durable autosaves per second through the group-commit batcher
//! (`jobs::autosave::Autosaver`) with many concurrent writers against a real Postgres.
//!
//! `cargo bench -p proctor-hub --bench autosave` (a plain binary, no harness). A save counts
//! only once its batch has COMMITted and its waiter got the stored version back. Settings:
//! `DATABASE_URL` (server to use; a scratch database is created and dropped),
//! `AUTOSAVE_WRITERS` (default 2000 concurrent writers, one session each),
//! `AUTOSAVE_SECS` (default 10), `AUTOSAVE_INFLIGHT` (batches in flight, default 4),
//! `AUTOSAVE_BATCH_MAX` (default 256), `AUTOSAVE_NO_ANALYZE=1` (skip ANALYZE after seeding).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proctor_hub::config::ExamConfig;
use proctor_hub::jobs::autosave::Autosaver;
use proctor_hub::model::QuestionType;
use proctor_hub::store::answers::{AnswerWrite, WriteResult};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

const QUESTIONS: usize = 10;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: both run.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

async fn run() {
    let writers: usize = env_or("AUTOSAVE_WRITERS", 2000);
    let secs: u64 = env_or("AUTOSAVE_SECS", 10);
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let server: PgConnectOptions = url.parse().expect("DATABASE_URL");
    let name = format!("autosave_bench_{}", Uuid::new_v4().simple());
    let mut admin = server.connect().await.expect("connect to Postgres");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("create scratch database");

    let db = proctor_hub::store::postgres::pool_options()
        .connect_with(server.clone().database(&name))
        .await
        .expect("pool");
    proctor_hub::store::postgres::MIGRATOR
        .run(&db)
        .await
        .expect("migrate");
    let (sessions, questions) = seed(&db, writers).await;
    // A live database has statistics; AUTOSAVE_NO_ANALYZE=1 measures the fresh-table case.
    if std::env::var_os("AUTOSAVE_NO_ANALYZE").is_none() {
        sqlx::query("ANALYZE").execute(&db).await.expect("analyze");
    }

    let mut config = ExamConfig::default();
    config.autosave_max_inflight = env_or("AUTOSAVE_INFLIGHT", config.autosave_max_inflight);
    config.autosave_batch_max = env_or("AUTOSAVE_BATCH_MAX", config.autosave_batch_max);
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let saver = Arc::new(Autosaver::spawn(
        db.clone(),
        &config,
        std::time::Duration::from_secs(2),
        &tasks,
        shutdown.clone(),
    ));

    let acked = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(writers);
    for (w, session_id) in sessions.into_iter().enumerate() {
        let saver = saver.clone();
        let questions = questions.clone();
        let (acked, measuring, stop) = (acked.clone(), measuring.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            let mut version = 0i64;
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                version += 1;
                let q = questions[(w + version as usize) % questions.len()];
                let t = Instant::now();
                let result = saver
                    .save(AnswerWrite {
                        session_id,
                        question_id: q,
                        kind: QuestionType::Subjective,
                        response: serde_json::json!({"text": format!("answer {version} of writer {w}")}),
                        version,
                        latency_ms: None,
                    })
                    .await
                    .expect("save");
                assert!(
                    matches!(result, WriteResult::Stored { version: v, .. } if v == version),
                    "{result:?}"
                );
                if measuring.load(Ordering::Relaxed) {
                    acked.fetch_add(1, Ordering::Relaxed);
                    latencies.push(t.elapsed());
                }
            }
            latencies
        }));
    }
    // Warm up, then measure.
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed();
    let total = acked.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.expect("writer"));
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let stored: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(version), 0)::int8 FROM answers")
        .fetch_one(&db)
        .await
        .expect("check");
    println!(
        "autosave: {writers} writers, {:.1} s: {total} acknowledged durable saves = {:.0} saves/s \
         (p50 {:?}, p99 {:?}; synchronous_commit on; sum of stored versions {stored})",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
    );

    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    db.close().await;
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop scratch database");
    admin.close().await.ok();
}

/// A published exam with QUESTIONS subjective questions and `n` STARTED sessions.
async fn seed(db: &sqlx::PgPool, n: usize) -> (Vec<Uuid>, Vec<Uuid>) {
    let admin = Uuid::new_v4();
    sqlx::query("INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, 'a@bench.test', 'A', 'x', 'ADMIN')")
        .bind(admin)
        .execute(db)
        .await
        .expect("admin");
    let exam = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO exams (id, title, status, duration_minutes, starts_at, ends_at, created_by_user_id)
         VALUES ($1, 'Bench', 'PUBLISHED', 120, now() - interval '1 hour', now() + interval '2 hours', $2)",
    )
    .bind(exam)
    .bind(admin)
    .execute(db)
    .await
    .expect("exam");
    let questions: Vec<Uuid> = (0..QUESTIONS).map(|_| Uuid::new_v4()).collect();
    sqlx::query(
        "INSERT INTO questions (id, exam_id, type, prompt, points, order_index)
         SELECT q, $2, 'SUBJECTIVE', 'Explain', 5, i::int FROM UNNEST($1::uuid[]) WITH ORDINALITY AS t(q, i)",
    )
    .bind(&questions)
    .bind(exam)
    .execute(db)
    .await
    .expect("questions");
    let candidates: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let sessions: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let rooms: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, role)
         SELECT c, c::text || '@bench.test', 'C', 'x', 'CANDIDATE' FROM UNNEST($1::uuid[]) AS t(c)",
    )
    .bind(&candidates)
    .execute(db)
    .await
    .expect("candidates");
    sqlx::query(
        "INSERT INTO sessions (id, exam_id, candidate_id, expires_at, webrtc_room_id)
         SELECT s, $4, c, now() + interval '2 hours', r
           FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[]) AS t(s, c, r)",
    )
    .bind(&sessions)
    .bind(&candidates)
    .bind(&rooms)
    .bind(exam)
    .execute(db)
    .await
    .expect("sessions");
    (sessions, questions)
}
