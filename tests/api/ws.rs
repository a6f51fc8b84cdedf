//! The real-time hub through real sockets: auth, rooms, relay, limits, pairing, liveness.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use proctor_hub::model::UserRole;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::helpers::{assert_error, eventually, new_session, spawn_app, spawn_app_with, TestApp};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(5);

pub async fn connect(app: &TestApp) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", app.addr))
        .await
        .unwrap();
    ws
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON message (skipping pings), within the bounded wait.
pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .unwrap();
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// The next message of `kind`, skipping others.
pub async fn recv_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = recv(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

/// Waits for the close frame and returns its code.
pub async fn closed_with(ws: &mut Ws) -> u16 {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("socket error before close: {e}"),
        }
    }
}

pub async fn authed(app: &TestApp, token: &str) -> (Ws, Value) {
    let mut ws = connect(app).await;
    send(&mut ws, json!({"type": "auth", "token": token})).await;
    let a = recv(&mut ws).await;
    assert_eq!(a["type"], "authed", "{a}");
    (ws, a)
}

pub async fn pair_phone(
    app: &TestApp,
    candidate_token: &str,
    session: Uuid,
    fingerprint: &str,
) -> Value {
    let r = app
        .post(
            &format!("/sessions/{session}/pairing"),
            Some(candidate_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let minted: Value = r.json().await.unwrap();
    let url = minted["pairingUrl"].as_str().unwrap();
    let token = url.split("#t=").nth(1).unwrap();
    let r = app
        .post(
            "/pairing/claim",
            None,
            json!({"token": token, "deviceFingerprint": fingerprint}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Waits (bounded) until the hub and the media relay hold nothing: no peer, room, device,
/// watcher, nor any relay peer, track, subscription, route or room meter (`HubStats::relay`).
pub async fn assert_no_leaks(app: &TestApp) {
    for _ in 0..50 {
        let s = app.state.hub.stats().await;
        if s == Default::default() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "hub or relay still holds state: {:?}",
        app.state.hub.stats().await
    );
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn candidate_phone_and_proctor_relay_offer_answer_and_ice(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (candidate_token, session, room, exam) = new_session(&app).await;
    let (_, proctor_token) = app.user_with_token(UserRole::Proctor).await;
    let claimed = pair_phone(&app, &candidate_token, session, "phone-1").await;
    assert_eq!(claimed["webrtcRoomId"], room.to_string());

    let (mut laptop, la) = authed(&app, &candidate_token).await;
    assert_eq!(la["role"], "CANDIDATE");
    assert_eq!(la["heartbeatIntervalMs"], 5000);
    send(&mut laptop, json!({"type": "join", "roomId": room})).await;
    let joined = recv_type(&mut laptop, "joined").await;
    assert_eq!(joined["peers"].as_array().unwrap().len(), 0);

    let (mut phone, pa) = authed(&app, claimed["accessToken"].as_str().unwrap()).await;
    assert_eq!(pa["role"], "MOBILE");
    send(&mut phone, json!({"type": "join", "roomId": room})).await;
    let joined = recv_type(&mut phone, "joined").await;
    assert_eq!(joined["peers"][0]["peerId"], la["peerId"]);
    let pj = recv_type(&mut laptop, "peer-joined").await;
    assert_eq!(pj["peerId"], pa["peerId"]);
    assert_eq!(pj["role"], "MOBILE");

    let (mut proctor, pra) = authed(&app, &proctor_token).await;
    send(&mut proctor, json!({"type": "watch", "examId": exam})).await;
    let snap = recv_type(&mut proctor, "session-snapshot").await;
    assert_eq!(snap["sessions"][0]["sessionId"], session.to_string());
    send(&mut proctor, json!({"type": "join", "roomId": room})).await;
    assert_eq!(
        recv_type(&mut proctor, "joined").await["peers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Offer laptop → proctor, answer back, ICE both ways; the hub stamps `from`.
    send(&mut laptop, json!({"type": "signal", "roomId": room, "to": pra["peerId"], "data": {"kind": "offer", "sdp": "v=0 offer"}})).await;
    let offer = recv_type(&mut proctor, "signal").await;
    assert_eq!(offer["from"], la["peerId"]);
    assert_eq!(offer["data"]["sdp"], "v=0 offer");
    send(&mut proctor, json!({"type": "signal", "roomId": room, "to": la["peerId"], "data": {"kind": "answer", "sdp": "v=0 answer"}})).await;
    let answer = recv_type(&mut laptop, "signal").await;
    assert_eq!(answer["from"], pra["peerId"]);
    assert_eq!(answer["data"]["kind"], "answer");
    // A real SDP (simulcast, many candidates) is several KB: far over the socket's 1 KiB
    // read chunk, and it arrives whole, twice in a row.
    let sdp: String = (0..400)
        .map(|i| {
            format!(
                "a=candidate:{i} 1 udp 2122260223 10.0.{}.{} 5{i:04} typ host\r\n",
                i / 250,
                i % 250
            )
        })
        .collect();
    assert!(sdp.len() > 20 * 1024);
    for _ in 0..2 {
        send(&mut laptop, json!({"type": "signal", "roomId": room, "to": pra["peerId"], "data": {"kind": "offer", "sdp": sdp}})).await;
        let big = recv_type(&mut proctor, "signal").await;
        assert_eq!(big["data"]["sdp"].as_str(), Some(sdp.as_str()));
    }
    send(&mut phone, json!({"type": "signal", "roomId": room, "to": pra["peerId"], "data": {"kind": "ice", "candidate": {"candidate": "candidate:1 1 UDP 1 127.0.0.1 5000 typ host"}}})).await;
    let ice = recv_type(&mut proctor, "signal").await;
    assert_eq!(ice["from"], pa["peerId"]);
    assert_eq!(ice["data"]["kind"], "ice");

    // A forged `from` is ignored: the hub stamps the real sender.
    send(&mut phone, json!({"type": "signal", "roomId": room, "to": la["peerId"], "from": pra["peerId"], "data": {"kind": "ice", "candidate": {}}})).await;
    assert_eq!(recv_type(&mut laptop, "signal").await["from"], pa["peerId"]);

    // Heartbeats are acknowledged with the server clock.
    send(&mut laptop, json!({"type": "heartbeat"})).await;
    assert!(recv_type(&mut laptop, "heartbeat-ack").await["serverNow"].is_string());

    // An event from the laptop is stored, acknowledged and reaches the watcher.
    let event_id = Uuid::new_v4();
    send(
        &mut laptop,
        json!({"type": "event", "eventId": event_id, "eventType": "TAB_HIDDEN", "severity": 3}),
    )
    .await;
    assert_eq!(
        recv_type(&mut laptop, "event-ack").await["eventId"],
        event_id.to_string()
    );
    loop {
        let u = recv_type(&mut proctor, "session-update").await;
        if u["lastEvent"]["eventType"] == "TAB_HIDDEN" {
            break;
        }
    }
    let stored: (String, i16) =
        sqlx::query_as("SELECT source::text, severity FROM proctoring_events WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(stored, ("LAPTOP".to_string(), 3));

    // Proctor warns; the laptop sees it; the audit row exists.
    send(
        &mut proctor,
        json!({"type": "warn", "sessionId": session, "message": "Eyes on your screen"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut laptop, "warning").await["message"],
        "Eyes on your screen"
    );
    let warns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM admin_actions WHERE session_id = $1 AND action_type = 'WARN'",
    )
    .bind(session)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(warns, 1);

    // Leaving tells the others; socket ids are kept current.
    phone.close(None).await.unwrap();
    assert_eq!(
        recv_type(&mut laptop, "peer-left").await["peerId"],
        pa["peerId"]
    );
    let ids: (Option<String>,) =
        sqlx::query_as("SELECT candidate_socket_id FROM sessions WHERE id = $1")
            .bind(session)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(ids.0.as_deref(), la["peerId"].as_str());
    laptop.close(None).await.unwrap();
    proctor.close(None).await.unwrap();
    assert_no_leaks(&app).await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn origin_auth_and_protocol_errors_close_with_their_codes(pool: PgPool) {
    let app = spawn_app_with(pool, |c| c.ws_auth_timeout = Duration::from_millis(500)).await;
    // Origin not on the allowlist: refused before the upgrade.
    let mut req = format!("ws://{}/ws", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let mut req = format!("ws://{}/ws", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "http://allowed.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());

    // No auth in time → 4502.
    let mut ws = connect(&app).await;
    assert_eq!(closed_with(&mut ws).await, 4502);
    // Invalid token → 4500.
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "auth", "token": "nope"})).await;
    assert_eq!(closed_with(&mut ws).await, 4500);
    // First frame not auth → 4501.
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "heartbeat"})).await;
    assert_eq!(closed_with(&mut ws).await, 4501);

    let (candidate_token, _session, room, _) = new_session(&app).await;
    // Oversize → 1009.
    let (mut ws, _) = authed(&app, &candidate_token).await;
    let big = "x".repeat(70 * 1024);
    send(&mut ws, json!({"type": "signal", "roomId": room, "to": Uuid::new_v4(), "data": {"kind": "offer", "sdp": big}})).await;
    assert_eq!(closed_with(&mut ws).await, 1009);
    // Signal into a room not joined → 4507.
    let (mut ws, _) = authed(&app, &candidate_token).await;
    send(&mut ws, json!({"type": "signal", "roomId": room, "to": Uuid::new_v4(), "data": {"kind": "offer", "sdp": "x"}})).await;
    assert_eq!(closed_with(&mut ws).await, 4507);
    // Another candidate's room → 4507.
    let (other_token, _, _, _) = new_session(&app).await;
    let (mut ws, _) = authed(&app, &other_token).await;
    send(&mut ws, json!({"type": "join", "roomId": room})).await;
    assert_eq!(closed_with(&mut ws).await, 4507);
    // A bad message keeps the socket with an error reply.
    let (mut ws, _) = authed(&app, &candidate_token).await;
    send(
        &mut ws,
        json!({"type": "event", "eventId": Uuid::new_v4(), "eventType": "bad type", "severity": 3}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "error");
    send(&mut ws, json!({"type": "event", "eventId": Uuid::new_v4(), "eventType": "TAB_HIDDEN", "severity": 11})).await;
    assert_eq!(recv(&mut ws).await["type"], "error");
    send(&mut ws, json!({"type": "heartbeat"})).await;
    assert_eq!(recv(&mut ws).await["type"], "heartbeat-ack");
    // Flood: RATE_LIMITED replies, then 4013.
    for _ in 0..300 {
        if ws
            .send(Message::Text(
                json!({"type": "heartbeat"}).to_string().into(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut limited = false;
    let code = loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => limited |= t.contains("RATE_LIMITED"),
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(limited, "RATE_LIMITED before the close");
    assert_eq!(code, 4013);
    assert_no_leaks(&app).await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn newer_connection_replaces_older_and_is_recorded(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (token, session, room, _) = new_session(&app).await;
    let (mut first, _) = authed(&app, &token).await;
    send(&mut first, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut first, "joined").await;
    let (mut second, _) = authed(&app, &token).await;
    send(&mut second, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut second, "joined").await;
    assert_eq!(closed_with(&mut first).await, 4504);
    let mut recorded = 0;
    for _ in 0..50 {
        recorded = sqlx::query_scalar("SELECT count(*) FROM proctoring_events WHERE session_id = $1 AND event_type = 'DUPLICATE_CONNECTION' AND source = 'SYSTEM'")
            .bind(session)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
        if recorded > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorded, 1i64);
    second.close(None).await.unwrap();
    assert_no_leaks(&app).await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn pairing_tokens_are_one_time_under_concurrency(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (token, session, _, _) = new_session(&app).await;
    let r = app
        .post(
            &format!("/sessions/{session}/pairing"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let minted: Value = r.json().await.unwrap();
    assert!(minted["qrSvg"].as_str().unwrap().contains("<svg"));
    let url = minted["pairingUrl"].as_str().unwrap();
    assert!(url.contains("/pair#t="), "token in the fragment: {url}");
    let pairing_token = url.split("#t=").nth(1).unwrap().to_string();
    // The raw token is not a Redis key; its hash is.
    let mut conn = app.state.redis.clone();
    let raw: Option<String> = redis::cmd("GET")
        .arg(app.state.keys.pairing(&pairing_token))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(raw.is_none());

    let claims = (0..100).map(|i| {
        let client = app.client.clone();
        let url = app.api("/pairing/claim");
        let t = pairing_token.clone();
        async move {
            client
                .post(url)
                .json(&json!({"token": t, "deviceFingerprint": format!("phone-{i}")}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(claims).await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let gone = statuses
        .iter()
        .filter(|s| **s == StatusCode::GONE || **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert_eq!(ok + gone, 100);

    // Minting again revokes the previous live token.
    let first: Value = app
        .post(
            &format!("/sessions/{session}/pairing"),
            Some(&token),
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let _second: Value = app
        .post(
            &format!("/sessions/{session}/pairing"),
            Some(&token),
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let old = first["pairingUrl"]
        .as_str()
        .unwrap()
        .split("#t=")
        .nth(1)
        .unwrap()
        .to_string();
    let r = app
        .client
        .post(app.api("/pairing/claim"))
        .header("x-test", "1")
        .json(&json!({"token": old, "deviceFingerprint": "p"}))
        .send()
        .await
        .unwrap();
    assert!(r.status() == StatusCode::GONE || r.status() == StatusCode::TOO_MANY_REQUESTS);
    // Someone else's session: 404.
    let (other, _, _, _) = new_session(&app).await;
    assert_error(
        app.post(
            &format!("/sessions/{session}/pairing"),
            Some(&other),
            json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn expired_pairing_token_is_gone_and_laptop_learns_of_claims(pool: PgPool) {
    let app = spawn_app_with(pool, |c| c.pairing_ttl = Duration::from_secs(1)).await;
    let (token, session, room, _) = new_session(&app).await;
    let minted: Value = app
        .post(
            &format!("/sessions/{session}/pairing"),
            Some(&token),
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let t = minted["pairingUrl"]
        .as_str()
        .unwrap()
        .split("#t=")
        .nth(1)
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = app
        .post(
            "/pairing/claim",
            None,
            json!({"token": t, "deviceFingerprint": "p"}),
        )
        .await;
    assert_error(r, StatusCode::GONE, "PAIRING_TOKEN_INVALID").await;

    let (mut laptop, _) = authed(&app, &token).await;
    send(&mut laptop, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut laptop, "joined").await;
    let claimed = pair_phone(&app, &token, session, "phone-A").await;
    let note = recv_type(&mut laptop, "pairing-claimed").await;
    assert_eq!(note["confirmCode"], claimed["confirmCode"]);
    let (mut phone, _) = authed(&app, claimed["accessToken"].as_str().unwrap()).await;
    send(&mut phone, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut phone, "joined").await;
    // A different phone replaces it: the old one is closed 4504 and the change recorded.
    pair_phone(&app, &token, session, "phone-B").await;
    assert_eq!(closed_with(&mut phone).await, 4504);
    let changed: i64 = sqlx::query_scalar("SELECT count(*) FROM proctoring_events WHERE session_id = $1 AND event_type = 'MOBILE_DEVICE_CHANGED'")
        .bind(session)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(changed, 1);
    // The laptop rejects the new phone: once connected, it is closed 4503.
    let claimed = pair_phone(&app, &token, session, "phone-B").await;
    let (mut phone_b, _) = authed(&app, claimed["accessToken"].as_str().unwrap()).await;
    send(&mut phone_b, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut phone_b, "joined").await;
    send(&mut laptop, json!({"type": "pairing-reject"})).await;
    assert_eq!(closed_with(&mut phone_b).await, 4503);
    laptop.close(None).await.unwrap();
    assert_no_leaks(&app).await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn heartbeat_loss_reaches_the_proctor_within_the_ttl(pool: PgPool) {
    let app = spawn_app_with(pool, |c| c.heartbeat_interval = Duration::from_millis(300)).await;
    let (token, session, room, exam) = new_session(&app).await;
    let (_, proctor_token) = app.user_with_token(UserRole::Proctor).await;
    let (mut proctor, _) = authed(&app, &proctor_token).await;
    send(&mut proctor, json!({"type": "watch", "examId": exam})).await;
    recv_type(&mut proctor, "session-snapshot").await;
    let (mut laptop, _) = authed(&app, &token).await;
    send(&mut laptop, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut laptop, "joined").await;
    send(&mut laptop, json!({"type": "heartbeat"})).await;
    let online = recv_type(&mut proctor, "session-update").await;
    assert_eq!(online["liveness"]["laptop"], "ONLINE");
    // The heartbeat key is in Redis with its TTL.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut conn = app.state.redis.clone();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(app.state.keys.heartbeat(session, "laptop"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 900, "{ttl}");
    // Silence: lost within TTL (900 ms) + 1 s.
    let started = std::time::Instant::now();
    let lost = recv_type(&mut proctor, "session-update").await;
    assert_eq!(lost["liveness"]["laptop"], "LOST");
    assert_eq!(lost["lastEvent"]["eventType"], "LAPTOP_HEARTBEAT_LOST");
    assert!(started.elapsed() < Duration::from_millis(1900));
    send(&mut laptop, json!({"type": "heartbeat"})).await;
    let back = recv_type(&mut proctor, "session-update").await;
    assert_eq!(back["liveness"]["laptop"], "ONLINE");
    assert_eq!(back["lastEvent"]["eventType"], "LAPTOP_RECONNECTED");
    // The liveness update is pushed at once; its SYSTEM event is stored after it. The loss and
    // the return can fall in the same millisecond (the heartbeat answers the update at once on
    // loopback): the store's order is (timestamp, id), ids being time-ordered UUIDv7s.
    let system_events = || async {
        sqlx::query_scalar::<_, String>("SELECT event_type FROM proctoring_events WHERE session_id = $1 AND source = 'SYSTEM' ORDER BY \"timestamp\", id")
            .bind(session)
            .fetch_all(&app.state.db)
            .await
            .unwrap()
    };
    eventually("both SYSTEM events stored", || async {
        system_events().await.len() >= 2
    })
    .await;
    assert_eq!(
        system_events().await,
        vec!["LAPTOP_HEARTBEAT_LOST", "LAPTOP_RECONNECTED"]
    );
    laptop.close(None).await.unwrap();
    proctor.close(None).await.unwrap();
    assert_no_leaks(&app).await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn ending_a_session_closes_its_devices_and_updates_watchers(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (token, session, room, exam) = new_session(&app).await;
    let (_, proctor_token) = app.user_with_token(UserRole::Proctor).await;
    let (mut proctor, _) = authed(&app, &proctor_token).await;
    send(&mut proctor, json!({"type": "watch", "examId": exam})).await;
    recv_type(&mut proctor, "session-snapshot").await;
    let (mut laptop, _) = authed(&app, &token).await;
    send(&mut laptop, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut laptop, "joined").await;
    sqlx::query("UPDATE sessions SET status = 'TERMINATED', submitted_at = now() WHERE id = $1")
        .bind(session)
        .execute(&app.state.db)
        .await
        .unwrap();
    app.state
        .signal(proctor_hub::state::HubSignal::SessionEnded {
            session_id: session,
            exam_id: exam,
            status: proctor_hub::model::SessionStatus::Terminated,
            reason: "terminated by a proctor".into(),
        });
    let ended = recv_type(&mut laptop, "session-ended").await;
    assert_eq!(ended["status"], "TERMINATED");
    assert_eq!(closed_with(&mut laptop).await, 4503);
    let update = recv_type(&mut proctor, "session-update").await;
    assert_eq!(update["status"], "TERMINATED");
    // A new connection to the ended session's room is refused with 4503.
    let (mut again, _) = authed(&app, &token).await;
    send(&mut again, json!({"type": "join", "roomId": room})).await;
    assert_eq!(closed_with(&mut again).await, 4503);
    proctor.close(None).await.unwrap();
    assert_no_leaks(&app).await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn deactivated_users_sockets_close_and_shutdown_closes_with_4001(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (admin_id, admin) = app.user_with_token(UserRole::Admin).await;
    let _ = admin_id;
    let (proctor_id, proctor_token) = app.user_with_token(UserRole::Proctor).await;
    let (mut ws, _) = authed(&app, &proctor_token).await;
    app.patch(
        &format!("/users/{proctor_id}"),
        Some(&admin),
        json!({"isActive": false}),
    )
    .await;
    assert_eq!(closed_with(&mut ws).await, 4500);

    let (mut a, _) = authed(&app, &admin).await;
    let (mut b, _) = authed(&app, &admin).await;
    app.shutdown.cancel();
    assert_eq!(closed_with(&mut a).await, 4001);
    assert_eq!(closed_with(&mut b).await, 4001);
    tokio::time::timeout(Duration::from_secs(10), app.server)
        .await
        .expect("exits within the grace")
        .unwrap()
        .unwrap();
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn redis_cut_is_a_telemetry_gap_never_a_heartbeat_loss(pool: PgPool) {
    let proxy = crate::proxy::Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let redis_url = format!("redis://{}", proxy.addr);
    let app = spawn_app_with(pool, |c| {
        c.heartbeat_interval = Duration::from_millis(300);
        c.redis_url = redis_url;
    })
    .await;
    let (token, session, room, _) = new_session(&app).await;
    let (mut laptop, _) = authed(&app, &token).await;
    send(&mut laptop, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut laptop, "joined").await;
    send(&mut laptop, json!({"type": "heartbeat"})).await;
    recv_type(&mut laptop, "heartbeat-ack").await;
    proxy.cut();
    // Redis is gone for 2 s: heartbeats keep arriving over the socket, writes fail.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        send(&mut laptop, json!({"type": "heartbeat"})).await;
        recv_type(&mut laptop, "heartbeat-ack").await;
    }
    proxy.restore();
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        send(&mut laptop, json!({"type": "heartbeat"})).await;
        recv_type(&mut laptop, "heartbeat-ack").await;
    }
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM proctoring_events WHERE session_id = $1 ORDER BY received_at",
    )
    .bind(session)
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    assert!(types.contains(&"TELEMETRY_GAP".to_string()), "{types:?}");
    assert!(types.iter().all(|t| !t.ends_with("_LOST")), "{types:?}");
    laptop.close(None).await.unwrap();
    assert_no_leaks(&app).await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_proctor_that_stops_reading_is_closed_while_others_get_everything_in_order(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, session, _, exam) = new_session(&app).await;
    let (_, proctor_token) = app.user_with_token(UserRole::Proctor).await;
    let (mut stalled, _) = authed(&app, &proctor_token).await;
    let (mut reader, _) = authed(&app, &proctor_token).await;
    for ws in [&mut stalled, &mut reader] {
        send(ws, json!({"type": "watch", "examId": exam})).await;
        recv_type(ws, "session-snapshot").await;
    }
    const N: u32 = 40_000;
    // The reader keeps up (the producer never runs more than 128 ahead of it); the stalled one
    // reads nothing and overflows its queue.
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = progress.clone();
    let reading = tokio::spawn(async move {
        let mut expected = 0.0;
        while expected < f64::from(N) {
            let u = recv_type(&mut reader, "session-update").await;
            assert_eq!(
                u["violationScore"].as_f64().unwrap(),
                expected,
                "in order, none missing"
            );
            expected += 1.0;
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        reader
    });
    for i in 0..N {
        while i.saturating_sub(progress.load(std::sync::atomic::Ordering::Relaxed)) > 128 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        app.state
            .hub
            .update(proctor_hub::hub::SessionFact {
                session_id: session,
                exam_id: exam,
                status: signaling::SessionStatus::Started,
                violation_score: f64::from(i),
                last_event: None,
                flagged: None,
            })
            .await;
    }
    let mut reader = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .unwrap()
        .unwrap();
    // The stalled proctor gets what fitted, then 4008.
    let code = loop {
        match tokio::time::timeout(WAIT, stalled.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, 4008);
    reader.close(None).await.unwrap();
    assert_no_leaks(&app).await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn an_unreachable_store_during_auth_is_try_again_later_not_invalid_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, token) = app.user_with_token(UserRole::Proctor).await;
    app.state.db.close().await;
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "auth", "token": token})).await;
    assert_eq!(closed_with(&mut ws).await, 1013);
    // A bad token is still 4500.
    let mut ws = connect(&app).await;
    send(&mut ws, json!({"type": "auth", "token": "garbage"})).await;
    assert_eq!(closed_with(&mut ws).await, 4500);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_proctor_opening_a_50_candidate_grid_is_not_rate_limited(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, _, _, exam) = new_session(&app).await;
    let sessions = crate::helpers::sessions_in_sql(&app, exam, 50, 600).await;
    let mut rooms = Vec::new();
    for (session, _) in &sessions {
        let room: Uuid = sqlx::query_scalar("SELECT webrtc_room_id FROM sessions WHERE id = $1")
            .bind(session)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
        rooms.push(room);
    }
    let (_, proctor) = app.user_with_token(UserRole::Proctor).await;
    let (mut grid, _) = authed(&app, &proctor).await;
    // What a grid sends when it opens: a join per tile and a burst of small messages (ICE,
    // answers): 400 frames at once, far over a laptop's burst of 100.
    for room in &rooms {
        grid.feed(Message::Text(
            json!({"type": "join", "roomId": room}).to_string().into(),
        ))
        .await
        .unwrap();
    }
    for _ in 0..350 {
        grid.feed(Message::Text(
            json!({"type": "heartbeat"}).to_string().into(),
        ))
        .await
        .unwrap();
    }
    grid.flush().await.unwrap();
    let (mut joined, mut acks) = (0, 0);
    while joined < 50 || acks < 350 {
        let m = recv(&mut grid).await;
        match m["type"].as_str() {
            Some("joined") => joined += 1,
            Some("heartbeat-ack") => acks += 1,
            Some("error") => panic!("the grid was refused: {m}"),
            _ => {}
        }
    }
    // A laptop sending the same burst is limited, then closed with 4013.
    let (token, _, _, _) = new_session(&app).await;
    let (mut laptop, _) = authed(&app, &token).await;
    for _ in 0..400 {
        laptop
            .feed(Message::Text(
                json!({"type": "heartbeat"}).to_string().into(),
            ))
            .await
            .unwrap();
    }
    laptop.flush().await.unwrap();
    let mut limited = 0;
    let code = loop {
        match tokio::time::timeout(WAIT, laptop.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["code"] == "RATE_LIMITED" {
                    limited += 1;
                }
            }
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert!(limited > 0);
    assert_eq!(code, 4013);
    app.stop().await;
}
