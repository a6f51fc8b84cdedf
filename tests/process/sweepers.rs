//! Two hub processes sweeping one database: 300 sessions expiring together end exactly once
//! each, with exactly one score each.

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::harness::{exam_with_sessions, HubSpec};

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn two_processes_end_300_expiring_sessions_exactly_once(pool: PgPool) {
    const N: i64 = 300;
    let (_, _, _) = exam_with_sessions(&pool, 2, N as usize, 3.0).await;
    // The same instant for all of them.
    sqlx::query(
        "UPDATE sessions SET expires_at = date_trunc('second', now()) + interval '3 seconds'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let spec = HubSpec::on(&pool)
        .with("HUB_AUTOSAVE_GRACE_SECS", "1")
        .with("HUB_SWEEP_INTERVAL_MS", "100");
    let (a, b) = tokio::join!(spec.start(), spec.start());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ended: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sessions WHERE status = 'AUTO_SUBMITTED'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if ended == N {
            break;
        }
        assert!(Instant::now() < deadline, "only {ended} of {N} ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (started, scores): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sessions WHERE status = 'STARTED'),
                (SELECT count(*) FROM scores)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((started, scores), (0, N));
    // Each process counts the endings it made: together exactly one per session.
    let by_a = a
        .counter("hub_sessions_ended_total", "AUTO_SUBMITTED")
        .await;
    let by_b = b
        .counter("hub_sessions_ended_total", "AUTO_SUBMITTED")
        .await;
    assert_eq!(by_a + by_b, N as f64, "endings: {by_a} + {by_b}");
    println!("two sweeping processes: {by_a} + {by_b} endings, {scores} scores for {N} sessions");
    for mut hub in [a, b] {
        hub.signal(libc::SIGTERM);
        assert!(hub.exited(Duration::from_secs(15)).await.success());
    }
}
