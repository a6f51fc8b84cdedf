//! SIGTERM in the middle of an exam: sockets are told (4001), requests already received get
//! their normal answer, the process exits 0 within the grace, and candidates resume after the
//! restart.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::harness::{candidate_token, exam_with_sessions, tokens, HubSpec};
use crate::proxy::Proxy;

const GRACE_SECS: u64 = 5;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(_))) => {}
            other => panic!("no message: {other:?}"),
        }
    }
}

/// A candidate's laptop socket, authenticated and in its room.
async fn laptop(addr: std::net::SocketAddr, token: &str, room: Uuid) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    for msg in [
        json!({"type": "auth", "token": token}),
        json!({"type": "join", "roomId": room}),
    ] {
        ws.send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
        let reply = next_json(&mut ws).await;
        assert!(
            reply["type"] == "authed" || reply["type"] == "joined",
            "{reply}"
        );
    }
    ws
}

/// The close code the socket ends with.
async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match tokio::time::timeout(Duration::from_secs(GRACE_SECS), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => return u16::from(frame.code),
            Ok(Some(Ok(_))) => {}
            other => panic!("no close frame: {other:?}"),
        }
    }
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn sigterm_drains_in_flight_work_and_candidates_resume(pool: PgPool) {
    const CANDIDATES: usize = 20;
    let (exam, questions, sessions) = exam_with_sessions(&pool, 2, CANDIDATES, 3600.0).await;
    let keys = tokens();
    // Postgres behind a proxy that can slow it, so saves are still in flight at SIGTERM.
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let direct = HubSpec::on(&pool);
    let spec = direct.clone();
    let spec = HubSpec {
        database_url: spec
            .database_url
            .replace("127.0.0.1:5432", &proxy.addr.to_string()),
        ..spec
    }
    .with("HUB_SHUTDOWN_GRACE_SECS", &GRACE_SECS.to_string());
    let mut hub = spec.start().await;

    let mut sockets = Vec::new();
    for &(candidate, session) in sessions.iter().take(5) {
        let room: Uuid = sqlx::query_scalar("SELECT webrtc_room_id FROM sessions WHERE id = $1")
            .bind(session)
            .fetch_one(&pool)
            .await
            .unwrap();
        sockets.push(laptop(hub.addr, &candidate_token(&keys, candidate), room).await);
    }
    // One keep-alive connection per candidate, used once before the stop (a first save, which
    // also warms the hub's caches and pool as a running exam has them).
    let clients: Vec<reqwest::Client> = (0..CANDIDATES).map(|_| reqwest::Client::new()).collect();
    for (c, &(candidate, session)) in clients.iter().zip(&sessions) {
        let r = c
            .put(hub.api(&format!("/sessions/{session}/answers/{}", questions[0])))
            .bearer_auth(candidate_token(&keys, candidate))
            .json(&json!({"response": {"text": "first"}, "version": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    // The hub's 2 s role cache runs out, so each save below is still in its first step (the
    // role check, on the slowed store) when SIGTERM comes: it reaches the autosave batcher
    // only during the drain.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    proxy.delay(Duration::from_millis(100));
    let saves: Vec<_> = sessions
        .iter()
        .zip(clients)
        .map(|(&(candidate, session), client)| {
            let url = hub.api(&format!("/sessions/{session}/answers/{}", questions[0]));
            let token = candidate_token(&keys, candidate);
            tokio::spawn(async move {
                let r = client
                    .put(url)
                    .bearer_auth(token)
                    .json(&json!({"response": {"text": "written as the hub stops"}, "version": 7}))
                    .send()
                    .await
                    .expect("a request received before SIGTERM is answered");
                (session, r.status(), r.json::<Value>().await.ok())
            })
        })
        .collect();
    // Every save has reached the hub and waits on the slowed store.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let stopping = Instant::now();
    hub.signal(libc::SIGTERM);

    for ws in &mut sockets {
        assert_eq!(
            close_code(ws).await,
            4001,
            "sockets are told the hub is going away"
        );
    }
    let mut answered = 0;
    for s in saves {
        let (session, status, body) = s.await.unwrap();
        assert_eq!(status, StatusCode::OK, "session {session}: {body:?}");
        assert_eq!(body.unwrap()["version"], 7);
        answered += 1;
    }
    let status = hub.exited(Duration::from_secs(GRACE_SECS + 2)).await;
    let took = stopping.elapsed();
    assert!(status.success(), "exit status {status:?}:\n{}", hub.log());
    assert!(
        took < Duration::from_secs(GRACE_SECS),
        "drained in {took:?}"
    );
    println!("SIGTERM: {answered} in-flight saves answered 200, 5 sockets closed 4001, exit 0 after {took:?}");
    proxy.restore();

    // Every acknowledged save is stored; after a restart the candidates resume with them.
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM answers WHERE question_id = $1 AND version = 7")
            .bind(questions[0])
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, CANDIDATES as i64);
    let hub = direct.start().await;
    let client = reqwest::Client::new();
    for (i, &(candidate, session)) in sessions.iter().enumerate() {
        let r = client
            .post(hub.api(&format!("/exams/{exam}/sessions")))
            .bearer_auth(candidate_token(&keys, candidate))
            .json(&json!({"deviceFingerprint": format!("laptop-{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "candidate {i} resumes");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["id"], session.to_string());
        assert_eq!(body["answers"][questions[0].to_string()]["version"], 7);
    }
    hub.kill9().await;
}
