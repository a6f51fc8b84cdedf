//! A socket that drops without a goodbye comes back as the same peer within the resume
//! window: same peer id, rooms and watches, no leave/join churn for the others, and every hub
//! message it missed, in order, by `seq`.

use std::time::Duration;

use futures::StreamExt;
use proctor_hub::model::UserRole;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{new_session, spawn_app_with, TestApp};
use crate::ws::{authed, connect, recv, recv_type, send, Ws};

async fn app_with_window(pool: PgPool, window: Duration) -> TestApp {
    spawn_app_with(pool, |c| c.ws.resume_window = window).await
}

/// Reads messages until none comes for `quiet`; returns them.
async fn drain(ws: &mut Ws, quiet: Duration) -> Vec<Value> {
    let mut got = Vec::new();
    while let Ok(Some(Ok(m))) = tokio::time::timeout(quiet, ws.next()).await {
        if let Message::Text(t) = m {
            got.push(serde_json::from_str(&t).unwrap());
        }
    }
    got
}

fn max_seq(msgs: &[Value]) -> u64 {
    msgs.iter()
        .filter_map(|m| m["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

/// A candidate's laptop and a proctor in `room`: (laptop, its `authed`, proctor).
async fn laptop_and_proctor(app: &TestApp, token: &str, room: uuid::Uuid) -> (Ws, Value, Ws) {
    let (_, proctor_token) = app.user_with_token(UserRole::Proctor).await;
    let (mut laptop, hello) = authed(app, token).await;
    send(&mut laptop, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut laptop, "joined").await;
    let (mut proctor, _) = authed(app, &proctor_token).await;
    send(&mut proctor, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut proctor, "joined").await;
    (laptop, hello, proctor)
}

async fn auth_resuming(
    app: &TestApp,
    token: &str,
    resume_token: &str,
    last_seq: u64,
) -> (Ws, Value) {
    let mut ws = connect(app).await;
    send(
        &mut ws,
        json!({"type": "auth", "token": token, "resume": {"token": resume_token, "lastSeq": last_seq}}),
    )
    .await;
    let a = recv(&mut ws).await;
    assert_eq!(a["type"], "authed", "{a}");
    (ws, a)
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_dropped_laptop_resumes_as_the_same_peer_with_what_it_missed(pool: PgPool) {
    let app = app_with_window(pool, Duration::from_secs(30)).await;
    let (token, session, room, _) = new_session(&app).await;
    let (mut laptop, hello, mut proctor) = laptop_and_proctor(&app, &token, room).await;
    assert_eq!(hello["resumed"], false);
    assert_eq!(hello["resumeWindowMs"], 30_000);
    let resume_token = hello["resumeToken"].as_str().unwrap().to_string();
    let laptop_peer = hello["peerId"].as_str().unwrap().to_string();
    let seen = drain(&mut laptop, Duration::from_millis(300)).await;
    let joined = seen
        .iter()
        .find(|m| m["type"] == "peer-joined")
        .expect("peer-joined");
    assert_eq!(
        joined["seq"], 1,
        "hub messages are numbered from 1: {seen:?}"
    );
    let last_seq = max_seq(&seen);

    // The network goes: no close frame, the TCP connection just ends.
    drop(laptop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile a proctor warns the candidate.
    let (_, staff) = app.user_with_token(UserRole::Admin).await;
    let r = app
        .post(
            &format!("/sessions/{session}/actions"),
            Some(&staff),
            json!({"actionType": "WARN", "reason": "eyes on your screen"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // Back within the window: the same peer, the missed warning first.
    let (mut laptop, again) = auth_resuming(&app, &token, &resume_token, last_seq).await;
    assert_eq!(again["resumed"], true);
    assert_eq!(again["peerId"], laptop_peer);
    let warning = recv_type(&mut laptop, "warning").await;
    assert_eq!(warning["message"], "eyes on your screen");
    assert_eq!(warning["seq"], last_seq + 1);
    // Still in the room: the proctor's signal reaches the new socket.
    send(
        &mut proctor,
        json!({"type": "signal", "roomId": room, "to": laptop_peer,
               "data": {"kind": "ice", "candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host"}}),
    )
    .await;
    let sig = recv_type(&mut laptop, "signal").await;
    assert_eq!(sig["seq"], last_seq + 2);
    // The proctor saw no churn.
    let churn = drain(&mut proctor, Duration::from_millis(300)).await;
    assert!(
        churn
            .iter()
            .all(|m| m["type"] != "peer-left" && m["type"] != "peer-joined"),
        "{churn:?}"
    );
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_client_closing_to_reconnect_keeps_its_connection(pool: PgPool) {
    let app = app_with_window(pool, Duration::from_secs(30)).await;
    let (token, _, room, _) = new_session(&app).await;
    let (mut laptop, hello, mut proctor) = laptop_and_proctor(&app, &token, room).await;
    let resume_token = hello["resumeToken"].as_str().unwrap().to_string();
    // The page found the socket silent and closes it to reconnect (code 4000).
    laptop
        .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: 4000.into(),
            reason: "reconnecting".into(),
        }))
        .await
        .unwrap();
    let (_, again) = auth_resuming(&app, &token, &resume_token, 0).await;
    assert_eq!(again["resumed"], true);
    assert_eq!(again["peerId"], hello["peerId"]);
    let churn = drain(&mut proctor, Duration::from_millis(300)).await;
    assert!(churn.iter().all(|m| m["type"] != "peer-left"), "{churn:?}");
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn after_the_window_the_peer_is_gone_and_a_resume_starts_afresh(pool: PgPool) {
    let app = app_with_window(pool, Duration::from_secs(1)).await;
    let (token, _, room, _) = new_session(&app).await;
    let (laptop, hello, mut proctor) = laptop_and_proctor(&app, &token, room).await;
    let resume_token = hello["resumeToken"].as_str().unwrap().to_string();
    drop(laptop);
    let left = tokio::time::timeout(Duration::from_secs(4), recv_type(&mut proctor, "peer-left"))
        .await
        .expect("the peer leaves once the window passed");
    assert_eq!(left["peerId"], hello["peerId"]);
    let (_, again) = auth_resuming(&app, &token, &resume_token, 0).await;
    assert_eq!(again["resumed"], false);
    assert_ne!(again["peerId"], hello["peerId"]);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_goodbye_is_final_and_a_token_is_only_its_owners(pool: PgPool) {
    let app = app_with_window(pool, Duration::from_secs(30)).await;
    let (token, _, room, _) = new_session(&app).await;
    let (other, _, _, _) = new_session(&app).await;
    let (mut laptop, hello, mut proctor) = laptop_and_proctor(&app, &token, room).await;
    let resume_token = hello["resumeToken"].as_str().unwrap().to_string();

    // Another user cannot take the connection over with its token.
    let (_, stolen) = auth_resuming(&app, &other, &resume_token, 0).await;
    assert_eq!(stolen["resumed"], false);
    assert_ne!(stolen["peerId"], hello["peerId"]);

    // The page closes (a close frame): the others see it leave at once.
    laptop.close(None).await.unwrap();
    let left = recv_type(&mut proctor, "peer-left").await;
    assert_eq!(left["peerId"], hello["peerId"]);
    let (_, again) = auth_resuming(&app, &token, &resume_token, 0).await;
    assert_eq!(again["resumed"], false);
    app.stop().await;
}
