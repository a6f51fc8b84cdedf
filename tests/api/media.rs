//! The media relay through the real WebSocket and UDP port, with an independent WebRTC
//! implementation (webrtc-rs) as clients: a candidate publishes synthetic VP8 and two proctors
//! both receive it. Loopback only; mDNS off.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use loadtest::peer::{camera_track, vp8_header, vp8_packet, Ignore, Observer, Peer};
use proctor_hub::model::UserRole;
use serde_json::{json, Value};
use sqlx::PgPool;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::helpers::new_session;
use crate::helpers::spawn_app;
use crate::ws::{assert_no_leaks, authed, recv, recv_type, send, Ws};

const WAIT: Duration = Duration::from_secs(15);

/// Counts the RTP packets a proctor's peer receives on any track.
#[derive(Default)]
pub struct Received(pub Arc<AtomicUsize>);

impl Observer for Received {
    fn track(&self, track: Arc<dyn TrackRemote>) {
        let received = self.0.clone();
        tokio::spawn(async move {
            while let Some(evt) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(_) = evt {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

/// A proctor's webrtc-rs peer and the packets it received.
async fn proctor_peer() -> (Peer, Arc<AtomicUsize>) {
    let received = Received::default();
    let count = received.0.clone();
    (Peer::new(Arc::new(received)).await.unwrap(), count)
}

/// The next `signal` from the hub of `kind`.
async fn hub_signal(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let s = recv_type(ws, "signal").await;
        assert_eq!(s["from"], "hub");
        if s["data"]["kind"] == kind {
            return s;
        }
    }
}

/// A 900-byte VP8 frame, a keyframe every 30.
fn vp8_payload(n: u32) -> Bytes {
    let mut p = vp8_header(n % 30 == 0);
    p.resize(900, (n % 251) as u8);
    Bytes::from(p)
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn candidate_vp8_reaches_two_proctors_through_the_relay(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (candidate_token, _session, room, _exam) = new_session(&app).await;

    // Two proctors join and subscribe first; the relay offers them the track when it appears.
    let mut proctors = Vec::new();
    for _ in 0..2 {
        let (_, token) = app.user_with_token(UserRole::Proctor).await;
        let (mut ws, _) = authed(&app, &token).await;
        send(&mut ws, json!({"type": "join", "roomId": room})).await;
        recv_type(&mut ws, "joined").await;
        send(&mut ws, json!({"type": "subscribe", "roomId": room})).await;
        proctors.push((ws, proctor_peer().await));
    }

    // The candidate publishes one VP8 track.
    let ssrc = 0x1234_5678;
    let (laptop, cand, track) = publisher_in(&app, &candidate_token, room, ssrc).await;

    // Each proctor answers the relay's offer, which names the track's source and publisher.
    for (ws, (c, _)) in &mut proctors {
        let offer = hub_signal(ws, "offer").await;
        assert_eq!(offer["data"]["tracks"][0]["source"], "camera");
        let sdp = c
            .answer(offer["data"]["sdp"].as_str().unwrap().into())
            .await
            .unwrap();
        send(
            ws,
            json!({"type": "signal", "roomId": room, "to": "hub",
            "data": {"kind": "answer", "sdp": sdp}}),
        )
        .await;
    }
    tokio::time::timeout(WAIT, cand.connected())
        .await
        .expect("the candidate connects in time")
        .expect("the candidate connects to the relay");
    for (_, (c, _)) in &proctors {
        tokio::time::timeout(WAIT, c.connected())
            .await
            .expect("each proctor connects in time")
            .expect("each proctor connects to the relay");
    }

    // Synthetic VP8 at 30 fps until both proctors received plenty.
    let mut n = 0u32;
    let deadline = tokio::time::Instant::now() + WAIT;
    while proctors
        .iter()
        .any(|(_, (_, got))| got.load(Ordering::Relaxed) < 60)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "proctors received {:?} packets",
            proctors
                .iter()
                .map(|(_, (_, got))| got.load(Ordering::Relaxed))
                .collect::<Vec<_>>()
        );
        let packet = vp8_packet(ssrc, u64::from(n), n * 3000, vp8_payload(n));
        track.write_rtp(packet).await.unwrap();
        n += 1;
        tokio::time::sleep(Duration::from_millis(33)).await;
    }

    // A proctor cannot publish: offers from staff are refused with an error that keeps the socket.
    let (ws, _) = &mut proctors[0];
    send(
        ws,
        json!({"type": "signal", "roomId": room, "to": "hub",
        "data": {"kind": "offer", "sdp": "v=0"}}),
    )
    .await;
    assert_eq!(recv_type(ws, "error").await["code"], "MEDIA_FORBIDDEN");
    // A media error names the room it is about: a proctor may hold connections in many.
    send(
        ws,
        json!({"type": "signal", "roomId": room, "to": "hub",
        "data": {"kind": "answer", "sdp": "v=0"}}),
    )
    .await;
    let e = recv_type(ws, "error").await;
    assert_eq!(e["code"], "MEDIA_REJECTED");
    assert_eq!(e["roomId"], json!(room));

    // While media flows, the hub's counts include what the relay holds.
    let live = app.state.hub.stats().await.relay;
    assert_eq!(
        (live.publishers, live.subscribers, live.tracks, live.rooms),
        (1, 2, 1, 1),
        "{live:?}"
    );
    assert_eq!(live.subscriptions, 2, "{live:?}");

    // The candidate's laptop goes: its track ends for both proctors, whose answers to the
    // relay's renegotiation reject every section (and so carry no BUNDLE group). The relay
    // accepts them: no error, and the ended subscriptions are released.
    cand.pc.close().await.unwrap();
    drop(laptop);
    for (ws, (c, _)) in &mut proctors {
        let offer = loop {
            let m = recv(ws).await;
            assert_ne!(m["type"], "error", "{m}");
            if m["type"] == "signal" && m["data"]["kind"] == "offer" {
                break m;
            }
        };
        assert_eq!(offer["data"]["tracks"], json!([]));
        let sdp = c
            .answer(offer["data"]["sdp"].as_str().unwrap().into())
            .await
            .unwrap();
        assert!(
            !sdp.contains("a=group:BUNDLE"),
            "the case under test: {sdp}"
        );
        send(
            ws,
            json!({"type": "signal", "roomId": room, "to": "hub",
            "data": {"kind": "answer", "sdp": sdp}}),
        )
        .await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let relay = app.state.hub.stats().await.relay;
        if (relay.publishers, relay.tracks, relay.subscriptions) == (0, 0, 0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{relay:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (ws, _) in &mut proctors {
        while let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(200), ws.next()).await
        {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                assert!(!t.contains("\"error\""), "{t}");
            }
        }
    }

    // Everyone leaves: the hub and the relay let go of everything.
    for (_, (c, _)) in &proctors {
        c.pc.close().await.unwrap();
    }
    drop(proctors);
    assert_no_leaks(&app).await;
    app.stop().await;
}

/// A candidate in `room` publishing one VP8 camera track through the relay: its socket, peer,
/// track and SSRC.
pub async fn publisher_in(
    app: &crate::helpers::TestApp,
    token: &str,
    room: uuid::Uuid,
    ssrc: u32,
) -> (
    Ws,
    Peer,
    Arc<webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP>,
) {
    let (mut ws, _) = authed(app, token).await;
    send(&mut ws, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut ws, "joined").await;
    let peer = Peer::new(Arc::new(Ignore)).await.unwrap();
    let track = camera_track(format!("laptop-{ssrc:x}"), ssrc);
    peer.add_track(track.clone()).await.unwrap();
    let sdp = peer.offer().await.unwrap();
    send(
        &mut ws,
        json!({"type": "signal", "roomId": room, "to": "hub",
        "data": {"kind": "offer", "sdp": sdp, "tracks": {"0": "camera"}}}),
    )
    .await;
    let answer = hub_signal(&mut ws, "answer").await;
    peer.accept_answer(answer["data"]["sdp"].as_str().unwrap().into())
        .await
        .unwrap();
    (ws, peer, track)
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn rooms_on_two_media_tasks_both_reach_a_proctor(pool: PgPool) {
    let app = crate::helpers::spawn_app_with(pool, |c| {
        if let Some(m) = c.media.as_mut() {
            m.tasks = 2;
        }
    })
    .await;
    // Two sessions whose rooms hash to different media tasks (room id mod 2).
    let mut rooms = Vec::new();
    let mut tokens = Vec::new();
    for parity in [0u128, 1] {
        let (token, session, _, _) = new_session(&app).await;
        let room = loop {
            let r = uuid::Uuid::new_v4();
            if r.as_u128() % 2 == parity {
                break r;
            }
        };
        sqlx::query("UPDATE sessions SET webrtc_room_id = $2 WHERE id = $1")
            .bind(session)
            .bind(room)
            .execute(&app.state.db)
            .await
            .unwrap();
        rooms.push(room);
        tokens.push(token);
    }
    let (_, proctor_token) = app.user_with_token(UserRole::Admin).await;
    let (mut proctor, _) = authed(&app, &proctor_token).await;
    let mut subscribers = Vec::new();
    for room in &rooms {
        send(&mut proctor, json!({"type": "join", "roomId": room})).await;
        recv_type(&mut proctor, "joined").await;
        send(&mut proctor, json!({"type": "subscribe", "roomId": room})).await;
        subscribers.push(proctor_peer().await);
    }
    let mut publishers = Vec::new();
    for (i, (token, room)) in tokens.iter().zip(&rooms).enumerate() {
        publishers.push(publisher_in(&app, token, *room, 0x1000 + i as u32).await);
    }
    // The proctor answers each room's offer on that room's own peer connection.
    for _ in 0..2 {
        let offer = hub_signal(&mut proctor, "offer").await;
        let i = rooms
            .iter()
            .position(|r| offer["roomId"] == json!(r))
            .unwrap();
        let sdp = subscribers[i]
            .0
            .answer(offer["data"]["sdp"].as_str().unwrap().into())
            .await
            .unwrap();
        send(
            &mut proctor,
            json!({"type": "signal", "roomId": rooms[i], "to": "hub",
            "data": {"kind": "answer", "sdp": sdp}}),
        )
        .await;
    }
    for (_, peer, _) in &publishers {
        tokio::time::timeout(WAIT, peer.connected())
            .await
            .expect("publishers connect in time")
            .expect("publishers connect");
    }
    let mut n = 0u32;
    let deadline = tokio::time::Instant::now() + WAIT;
    while subscribers
        .iter()
        .any(|(_, got)| got.load(Ordering::Relaxed) < 30)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every room's media arrived"
        );
        for (i, (_, _, track)) in publishers.iter().enumerate() {
            let packet = vp8_packet(0x1000 + i as u32, u64::from(n), n * 3000, vp8_payload(n));
            track.write_rtp(packet).await.unwrap();
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(33)).await;
    }
    let stats = app.state.hub.stats().await.relay;
    assert_eq!((stats.publishers, stats.rooms), (2, 2), "{stats:?}");
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_candidate_checks_its_camera_reaches_the_relay_before_the_exam(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = crate::helpers::published_exam(&app).await;
    let r = app
        .post(
            &format!("/exams/{}/media-check", fx.exam_id),
            Some(&fx.candidate),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let room: uuid::Uuid = r.json::<Value>().await.unwrap()["roomId"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // The camera reaches the relay in the check room; no session exists and no timer runs.
    let (_ws, peer, _track) = publisher_in(&app, &fx.candidate, room, 0x4242).await;
    tokio::time::timeout(WAIT, peer.connected())
        .await
        .expect("the check connects in time")
        .expect("the check connects to the relay");
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(sessions, 0, "a media check starts no exam");
    // Its socket is no session's device: nothing to track once it goes.
    assert_eq!(app.state.hub.stats().await.devices, 0);
    // The room is this candidate's alone; an exam they are not assigned to gives none.
    let (_, other) = fx.another_candidate(&app).await;
    let (mut intruder, _) = authed(&app, &other).await;
    send(&mut intruder, json!({"type": "join", "roomId": room})).await;
    assert_eq!(crate::ws::closed_with(&mut intruder).await, 4507);
    let (_, stranger) = app.user_with_token(UserRole::Candidate).await;
    let r = app
        .post(
            &format!("/exams/{}/media-check", fx.exam_id),
            Some(&stranger),
            json!({}),
        )
        .await;
    crate::helpers::assert_error(r, reqwest::StatusCode::NOT_FOUND, "NOT_FOUND").await;
    app.stop().await;
}
