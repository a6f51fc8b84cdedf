//! Stores behind a black hole, as a network partition leaves them: connections open, bytes
//! taken, nothing answered, no error. Autosave must say "not saved, retry" within seconds,
//! the batcher must not wedge, the real-time side must go on, and everything must recover by
//! itself when traffic passes again.

use std::time::{Duration, Instant};

use proctor_hub::model::{Role, UserRole};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{assert_error, eventually, published_exam, spawn_app_with, TestApp};
use crate::proxy::Proxy;
use crate::ws::{authed, recv_type, send, Ws};

/// How long the hub may take to answer 503 with a store black-holed: `HUB_STORE_TIMEOUT_MS`
/// (2 s) plus scheduling slack. Not a performance figure: the point is seconds, not the 30 s
/// of the request timeout.
const PROMPT: Duration = Duration::from_millis(3500);

/// A pool on the test's database, reached through `proxy`.
async fn pool_through(pool: &PgPool, proxy: &Proxy) -> PgPool {
    let opts: PgConnectOptions = (*pool.connect_options())
        .clone()
        .host("127.0.0.1")
        .port(proxy.addr.port());
    proctor_hub::store::postgres::pool_options()
        .connect_with(opts)
        .await
        .unwrap()
}

/// A candidate in the room with a proctor, both on sockets: (laptop, proctor, proctor's
/// peer id).
async fn room_of_two(app: &TestApp, candidate: &str, room: &str) -> (Ws, Ws, String) {
    let (_, proctor) = app.user_with_token(UserRole::Proctor).await;
    let (mut laptop, _) = authed(app, candidate).await;
    send(&mut laptop, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut laptop, "joined").await;
    let (mut watcher, a) = authed(app, &proctor).await;
    send(&mut watcher, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut watcher, "joined").await;
    recv_type(&mut laptop, "peer-joined").await;
    (laptop, watcher, a["peerId"].as_str().unwrap().to_string())
}

/// Signaling and heartbeats work over the sockets (they need no Postgres).
async fn realtime_still_works(laptop: &mut Ws, watcher: &mut Ws, room: &str, to: &str) {
    send(laptop, json!({"type": "heartbeat"})).await;
    recv_type(laptop, "heartbeat-ack").await;
    send(
        laptop,
        json!({"type": "signal", "roomId": room, "to": to,
               "data": {"kind": "ice", "candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host"}}),
    )
    .await;
    let got = recv_type(watcher, "signal").await;
    assert_eq!(got["data"]["kind"], "ice");
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_black_holed_postgres_answers_503_promptly_and_recovers_by_itself(pool: PgPool) {
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let hub_pool = pool_through(&pool, &proxy).await;
    let app = spawn_app_with(hub_pool, |_| {}).await;
    let fx = published_exam(&app).await;
    let s = fx.start(&app, &fx.candidate).await;
    let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();
    let room = s["webrtcRoomId"].as_str().unwrap().to_string();
    let save_path = format!("/sessions/{id}/answers/{}", fx.subjective);
    let save = |version: i64| {
        let (app, path, token) = (&app, save_path.clone(), fx.candidate.clone());
        async move {
            let started = Instant::now();
            let r = app
                .put(
                    &path,
                    Some(&token),
                    json!({"response": {"text": format!("v{version}")}, "version": version}),
                )
                .await;
            (r, started.elapsed())
        }
    };
    let (r, _) = save(1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (mut laptop, mut watcher, proctor_peer) = room_of_two(&app, &fx.candidate, &room).await;

    proxy.black_hole();
    // Twenty saves at once, some after the role cache expired: each one answers 503 + Retry-After
    // within seconds, none hangs.
    let answers = futures::future::join_all((2..22).map(save)).await;
    let mut slowest = Duration::ZERO;
    for (r, took) in answers {
        assert!(r.headers().contains_key("retry-after"));
        assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE").await;
        slowest = slowest.max(took);
    }
    assert!(slowest < PROMPT, "slowest 503 took {slowest:?}");
    tokio::time::sleep(Duration::from_millis(2100)).await; // the role cache expires
    let (r, took) = save(22).await;
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE").await;
    assert!(
        took < PROMPT,
        "503 after the role cache expired took {took:?}"
    );
    println!("black-holed Postgres: 21 saves answered 503, slowest {slowest:?}, then {took:?}");
    realtime_still_works(&mut laptop, &mut watcher, &room, &proctor_peer).await;

    // Traffic passes again: the batcher was never wedged and saves are stored again.
    proxy.restore();
    let mut version = 100;
    eventually("autosave recovers", || {
        version += 1;
        let attempt = save(version);
        async move { attempt.await.0.status() == StatusCode::OK }
    })
    .await;
    let stored: i64 = sqlx::query_scalar(
        "SELECT version FROM answers WHERE session_id = $1 AND question_id = $2",
    )
    .bind(id)
    .bind(fx.subjective)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, version, "the acknowledged version is stored");
    realtime_still_works(&mut laptop, &mut watcher, &room, &proctor_peer).await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_slow_postgres_is_waited_for_not_refused(pool: PgPool) {
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let hub_pool = pool_through(&pool, &proxy).await;
    let app = spawn_app_with(hub_pool, |_| {}).await;
    let fx = published_exam(&app).await;
    let s = fx.start(&app, &fx.candidate).await;
    let id = s["id"].as_str().unwrap();
    // 150 ms each way per chunk: slow, but well inside the store timeout.
    proxy.delay(Duration::from_millis(150));
    let r = app
        .put(
            &format!("/sessions/{id}/answers/{}", fx.subjective),
            Some(&fx.candidate),
            json!({"response": {"text": "slow"}, "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    proxy.restore();
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_black_holed_redis_fails_pairing_gaps_telemetry_and_keeps_login(pool: PgPool) {
    let proxy = Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let redis_url = format!("redis://{}", proxy.addr);
    let app = spawn_app_with(pool.clone(), |c| {
        c.heartbeat_interval = Duration::from_millis(300);
        c.redis_url = redis_url;
    })
    .await;
    let fx = published_exam(&app).await;
    let s = fx.start(&app, &fx.candidate).await;
    let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();
    let room = s["webrtcRoomId"].as_str().unwrap().to_string();
    let (mut laptop, mut watcher, proctor_peer) = room_of_two(&app, &fx.candidate, &room).await;
    app.user("late@example.test", "password-123", UserRole::Candidate)
        .await;

    proxy.black_hole();
    let pairing = async {
        // Pairing needs Redis: a prompt 503, not a hang.
        let started = Instant::now();
        let r = app
            .post(
                &format!("/sessions/{id}/pairing"),
                Some(&fx.candidate),
                json!({}),
            )
            .await;
        (r, started.elapsed())
    };
    let login = async {
        // Login does not need Redis.
        let started = Instant::now();
        let r = app
            .post(
                "/auth/login",
                None,
                json!({"email": "late@example.test", "password": "password-123"}),
            )
            .await;
        (r.status(), started.elapsed())
    };
    // Meanwhile the laptop heartbeats on, as a page does.
    let heartbeats = async {
        for _ in 0..12 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            send(&mut laptop, json!({"type": "heartbeat"})).await;
            recv_type(&mut laptop, "heartbeat-ack").await;
        }
    };
    let ((paired, pairing_took), (logged_in, login_took), ()) =
        tokio::join!(pairing, login, heartbeats);
    assert!(paired.headers().contains_key("retry-after"));
    assert_error(paired, StatusCode::SERVICE_UNAVAILABLE, "CACHE_UNAVAILABLE").await;
    assert!(pairing_took < PROMPT, "pairing 503 took {pairing_took:?}");
    assert_eq!(logged_in, StatusCode::OK);
    assert!(login_took < PROMPT, "login took {login_took:?}");
    println!("black-holed Redis: pairing 503 in {pairing_took:?}, login 200 in {login_took:?}");
    // Signaling goes on; the store outage is a telemetry gap, never a heartbeat loss.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        realtime_still_works(&mut laptop, &mut watcher, &room, &proctor_peer).await;
    }

    proxy.restore();
    let token = app.token(fx.candidate_id, Role::Candidate, None);
    let path = format!("/sessions/{id}/pairing");
    eventually("pairing recovers", || {
        let r = app.post(&path, Some(&token), json!({}));
        async move { r.await.status() == StatusCode::CREATED }
    })
    .await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(&mut laptop, json!({"type": "heartbeat"})).await;
        recv_type(&mut laptop, "heartbeat-ack").await;
    }
    eventually("the gap is recorded", || {
        let pool = pool.clone();
        async move {
            let types: Vec<String> = sqlx::query_scalar(
                "SELECT event_type FROM proctoring_events WHERE session_id = $1",
            )
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
            assert!(types.iter().all(|t| !t.ends_with("_LOST")), "{types:?}");
            types.iter().any(|t| t == "TELEMETRY_GAP")
        }
    })
    .await;
    app.stop().await;
}
