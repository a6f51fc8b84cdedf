//! Webhooks from three hub processes sweeping one database: each ending is reported exactly
//! once, and signed.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::harness::{exam_with_sessions, HubSpec};
use crate::receiver::Receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn three_sweeping_processes_send_each_ending_exactly_once(pool: PgPool) {
    // `WEBHOOK_SESSIONS=2000` measures a whole exam ending at once (BENCHMARKS.md).
    let n: usize = std::env::var("WEBHOOK_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    exam_with_sessions(&pool, 2, n, 3.0).await;
    let rx = Receiver::start().await;
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, event_types, secret)
         VALUES ($1, $2, ARRAY['session.ended'], $3)",
    )
    .bind(Uuid::new_v4())
    .bind(rx.url())
    .bind(SECRET)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE sessions SET expires_at = date_trunc('second', now()) + interval '4 seconds'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let spec = HubSpec::on(&pool)
        .with("HUB_AUTOSAVE_GRACE_SECS", "1")
        .with("HUB_SWEEP_INTERVAL_MS", "100")
        .with("HUB_WEBHOOK_ALLOW_LOOPBACK", "true")
        .with("HUB_WEBHOOK_POLL_MS", "50");
    let (a, b, c) = tokio::join!(spec.start(), spec.start(), spec.start());
    let got = rx
        .wait_for(
            Duration::from_secs(40 + n as u64 / 20),
            "every ending",
            |g| g.len() >= n,
        )
        .await;
    // Nothing more comes: exactly one per session.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got_later = rx.received();
    assert_eq!(
        got_later.len(),
        n,
        "{} webhooks for {n} endings",
        got_later.len()
    );
    let mut per_session: HashMap<String, usize> = HashMap::new();
    for r in &got {
        assert!(r.verifies(SECRET));
        assert_eq!(r.kind(), "session.ended");
        assert_eq!(r.json()["data"]["status"], "AUTO_SUBMITTED");
        *per_session
            .entry(r.json()["data"]["sessionId"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(per_session.len(), n);
    assert!(per_session.values().all(|n| *n == 1));
    // Sent by more than one process.
    let nodes: i64 = sqlx::query_scalar("SELECT count(DISTINCT node) FROM webhook_attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    let delivered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE state = 'DELIVERED'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(delivered, n as i64);
    let (spread, lag): (f64, f64) = sqlx::query_as(
        "SELECT EXTRACT(EPOCH FROM max(m.created_at) - min(m.created_at))::float8,
                EXTRACT(EPOCH FROM max(d.delivered_at) - max(m.created_at))::float8
           FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    println!(
        "three processes: {n} endings over {spread:.2} s, {n} webhooks, the last delivered \
         {lag:.2} s after the last ending, sent by {nodes} process(es)"
    );
    for mut hub in [a, b, c] {
        hub.signal(libc::SIGTERM);
        assert!(hub.exited(Duration::from_secs(15)).await.success());
    }
}
