//! The media relay through the real WebSocket and UDP port, with an independent WebRTC
//! implementation (webrtc-rs) as clients: a candidate publishes synthetic VP8 and two proctors
//! both receive it. Loopback only; mDNS off.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use proctor_hub::model::UserRole;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MediaEngine, MIME_TYPE_VP8};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};

use crate::helpers::new_session;
use crate::helpers::spawn_app;
use crate::ws::{assert_no_leaks, authed, recv, recv_type, send, Ws};

const WAIT: Duration = Duration::from_secs(15);

struct Handler {
    gathered: mpsc::UnboundedSender<()>,
    connected: mpsc::UnboundedSender<()>,
    /// RTP packets received on any remote track.
    received: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            let _ = self.connected.send(());
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = self.received.clone();
        tokio::spawn(async move {
            while let Some(evt) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(_) = evt {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

struct Client {
    pc: Box<dyn PeerConnection>,
    gathered: mpsc::UnboundedReceiver<()>,
    connected: mpsc::UnboundedReceiver<()>,
    received: Arc<AtomicUsize>,
}

async fn client() -> Client {
    let mut media = MediaEngine::default();
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: vp8(),
                payload_type: 96,
            },
            RtpCodecKind::Video,
        )
        .unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut media).unwrap();
    let settings = SettingEngineBuilder::new()
        .with_include_loopback_candidate(true)
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .build();
    let (gathered_tx, gathered) = mpsc::unbounded_channel();
    let (connected_tx, connected) = mpsc::unbounded_channel();
    let received = Arc::new(AtomicUsize::new(0));
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler {
            gathered: gathered_tx,
            connected: connected_tx,
            received: received.clone(),
        }))
        .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
        .build()
        .await
        .unwrap();
    Client {
        pc: Box::new(pc),
        gathered,
        connected,
        received,
    }
}

/// Sets the local description and waits for every candidate (no trickle needed on loopback).
async fn local_sdp(c: &mut Client, desc: RTCSessionDescription) -> String {
    c.pc.set_local_description(desc).await.unwrap();
    tokio::time::timeout(WAIT, c.gathered.recv())
        .await
        .expect("ICE gathering completes");
    c.pc.local_description().await.unwrap().sdp
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

/// A VP8 RTP payload: the payload descriptor (start of partition) and a frame header.
fn vp8_payload(n: u32) -> Bytes {
    let mut p = vec![0x10];
    if n % 30 == 0 {
        // Keyframe: frame tag, start code, 640×480.
        p.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
    } else {
        p.extend_from_slice(&[0x11, 0x02, 0x00]);
    }
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
        proctors.push((ws, client().await));
    }

    // The candidate publishes one VP8 track.
    let (mut laptop, _) = authed(&app, &candidate_token).await;
    send(&mut laptop, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut laptop, "joined").await;
    let mut cand = client().await;
    let ssrc = 0x1234_5678;
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "laptop".into(),
        "camera".into(),
        "camera".into(),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: vp8(),
            ..Default::default()
        }],
    )));
    cand.pc
        .add_track(track.clone() as Arc<dyn TrackLocal>)
        .await
        .unwrap();
    let offer = cand.pc.create_offer(None).await.unwrap();
    let sdp = local_sdp(&mut cand, offer).await;
    send(
        &mut laptop,
        json!({"type": "signal", "roomId": room, "to": "hub",
        "data": {"kind": "offer", "sdp": sdp, "tracks": {"0": "camera"}}}),
    )
    .await;
    let answer = hub_signal(&mut laptop, "answer").await;
    cand.pc
        .set_remote_description(
            RTCSessionDescription::answer(answer["data"]["sdp"].as_str().unwrap().into()).unwrap(),
        )
        .await
        .unwrap();

    // Each proctor answers the relay's offer, which names the track's source and publisher.
    for (ws, c) in &mut proctors {
        let offer = hub_signal(ws, "offer").await;
        assert_eq!(offer["data"]["tracks"][0]["source"], "camera");
        c.pc.set_remote_description(
            RTCSessionDescription::offer(offer["data"]["sdp"].as_str().unwrap().into()).unwrap(),
        )
        .await
        .unwrap();
        let answer = c.pc.create_answer(None).await.unwrap();
        let sdp = local_sdp(c, answer).await;
        send(
            ws,
            json!({"type": "signal", "roomId": room, "to": "hub",
            "data": {"kind": "answer", "sdp": sdp}}),
        )
        .await;
    }
    tokio::time::timeout(WAIT, cand.connected.recv())
        .await
        .expect("the candidate connects to the relay");
    for (_, c) in &mut proctors {
        tokio::time::timeout(WAIT, c.connected.recv())
            .await
            .expect("each proctor connects to the relay");
    }

    // Synthetic VP8 at 30 fps until both proctors received plenty.
    let mut n = 0u32;
    let deadline = tokio::time::Instant::now() + WAIT;
    while proctors
        .iter()
        .any(|(_, c)| c.received.load(Ordering::Relaxed) < 60)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "proctors received {:?} packets",
            proctors
                .iter()
                .map(|(_, c)| c.received.load(Ordering::Relaxed))
                .collect::<Vec<_>>()
        );
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: true,
                payload_type: 96,
                sequence_number: n as u16,
                timestamp: n * 3000,
                ssrc,
                ..Default::default()
            },
            payload: vp8_payload(n),
        };
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
    for (ws, c) in &mut proctors {
        let offer = loop {
            let m = recv(ws).await;
            assert_ne!(m["type"], "error", "{m}");
            if m["type"] == "signal" && m["data"]["kind"] == "offer" {
                break m;
            }
        };
        assert_eq!(offer["data"]["tracks"], json!([]));
        c.pc.set_remote_description(
            RTCSessionDescription::offer(offer["data"]["sdp"].as_str().unwrap().into()).unwrap(),
        )
        .await
        .unwrap();
        let answer = c.pc.create_answer(None).await.unwrap();
        c.pc.set_local_description(answer).await.unwrap();
        let sdp = c.pc.local_description().await.unwrap().sdp;
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
    for (_, c) in &proctors {
        c.pc.close().await.unwrap();
    }
    drop(proctors);
    assert_no_leaks(&app).await;
    app.stop().await;
}
