//! S7: media through the hub's relay (SFU). `--publishers` candidate laptops each publish one
//! synthetic VP8 camera track (`signal` to `"hub"`, `kind: "offer"`) at `--bitrate-kbps`;
//! `--subscribers` proctors per room then `subscribe` and answer the hub's offers, and receive
//! the track through the relay's one UDP port. Clients are webrtc-rs peers (an independent
//! WebRTC implementation; loopback candidates, no mDNS), as in the hub's relay tests.
//!
//! Each packet carries one frame (the relay forwards frames, so one packet per frame keeps
//! packet counts comparable end to end), sent open loop: packet `n` is due at `start + n / rate`
//! and carries, after the VP8 header, a stamp with its publisher, its sequence number and that
//! intended time. Subscribers therefore measure one-way latency from the intended time (no
//! coordinated omission) and loss from sequence gaps that the relay cannot rewrite: in the
//! measured window every subscriber should receive each packet its publisher sent, so
//! loss = 1 − received / (sent × subscribers). Gaps in the RTP sequence numbers the relay
//! writes are counted too. Time to first packet runs from a proctor's `subscribe` to its first
//! packet of a stream that is already live (negotiation, ICE, DTLS and forwarding). The
//! publishers' transport egress (every datagram, from webrtc-rs's stats) over the media they
//! wrote shows that a publisher's uplink does not grow with its subscribers.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use futures::{stream, StreamExt};
use serde_json::{json, Value};
use signaling::{PeerRef, ServerMessage, SignalData, SignalKind};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{RTCIceConnectionState, RTCPeerConnectionState};

use crate::error::{Error, Result};
use crate::peer::{camera_track, first_mid, vp8_header, vp8_packet, Ignore, Observer, Peer};
use crate::scenario::fixture::{Fixture, Plan};
use crate::scenario::{hub_window, instant_of, micros, report, Ctx, Measured, Stop};
use crate::stats::{Recorder, RunResult};
use crate::ws::Socket;

/// The relay re-packetizes frames; a payload this size stays one packet on the way out.
const MAX_PACKET_BYTES: usize = 1100;
/// Marks the stamp inside a payload.
const MAGIC: &[u8; 4] = b"PHLT";
/// An RTP header without extensions, counted in the media bytes a publisher writes.
const RTP_HEADER_BYTES: u64 = 12;

/// Knobs of the media scenario.
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct MediaArgs {
    /// Publishing candidate laptops (one session, room and camera track each).
    #[arg(long, default_value_t = 10)]
    pub publishers: usize,
    /// Proctors subscribed in each room.
    #[arg(long, default_value_t = 3)]
    pub subscribers: usize,
    /// Video bitrate of each publisher, kbit/s of RTP payload.
    #[arg(long, default_value_t = 500)]
    pub bitrate_kbps: u64,
    /// RTP payload bytes per packet (one frame per packet; 64..=1100).
    #[arg(long, default_value_t = 1000)]
    pub packet_bytes: usize,
    /// A keyframe every this many ms.
    #[arg(long, default_value_t = 1000)]
    pub keyframe_ms: u64,
    /// Measured phase, seconds (after every subscriber received its first packet).
    #[arg(long, default_value_t = 20)]
    pub duration_secs: u64,
    /// Bound on setting up (negotiating, connecting, first packets), seconds.
    #[arg(long, default_value_t = 30)]
    pub setup_timeout_secs: u64,
    /// Candidate accounts at most (each takes sessions in several exams).
    #[arg(long, default_value_t = 100)]
    pub candidates: usize,
}

impl MediaArgs {
    /// Packets (frames) per second of one publisher.
    pub fn packet_rate(&self) -> f64 {
        self.bitrate_kbps as f64 * 1000.0 / 8.0 / self.packet_bytes as f64
    }
}

/// What a packet carries after its VP8 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    publisher: u32,
    seq: u64,
    intended_us: u64,
}

impl Stamp {
    const LEN: usize = 4 + 4 + 8 + 8;

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.publisher.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.intended_us.to_be_bytes());
    }

    /// Finds the stamp near the start of a payload, whatever VP8 payload descriptor the relay
    /// wrote in front of the frame.
    fn find(payload: &[u8]) -> Option<Stamp> {
        let head = &payload[..payload.len().min(64)];
        let at = head.windows(MAGIC.len()).position(|w| w == MAGIC)?;
        let b = payload.get(at + 4..at + Self::LEN)?;
        let u32_at = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Some(Stamp {
            publisher: u32_at(0),
            seq: u64_at(4),
            intended_us: u64_at(12),
        })
    }
}

/// A synthetic VP8 RTP payload of `len` bytes: the payload descriptor (start of partition),
/// a key or inter frame header, the stamp, filler.
fn vp8_payload(stamp: Stamp, keyframe: bool, len: usize) -> Bytes {
    let mut p = vp8_header(keyframe);
    p.reserve(len.saturating_sub(p.len()));
    stamp.write(&mut p);
    p.resize(len.max(p.len()), (stamp.seq % 251) as u8);
    Bytes::from(p)
}

/// The sequence window of one publisher that counts: `start <= seq < end`. Both start at
/// `u64::MAX` (nothing counts) and are set from the publisher's next sequence number, so a
/// packet is in the window exactly when it was sent inside it, whenever it arrives.
#[derive(Debug)]
struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            start: AtomicU64::new(u64::MAX),
            end: AtomicU64::new(u64::MAX),
        }
    }
}

impl Window {
    fn contains(&self, seq: u64) -> bool {
        seq >= self.start.load(Ordering::Relaxed) && seq < self.end.load(Ordering::Relaxed)
    }
}

/// Which sequence numbers arrived lately (a ring of the last 1024), so a retransmitted or
/// duplicated packet counts once.
struct Seen(Vec<u64>);

impl Default for Seen {
    fn default() -> Self {
        Seen(vec![u64::MAX; 1024])
    }
}

impl Seen {
    /// True the first time `seq` is seen.
    fn insert(&mut self, seq: u64) -> bool {
        let slot = &mut self.0[(seq % 1024) as usize];
        let new = *slot != seq;
        *slot = seq;
        new
    }
}

/// How far a subscriber's setup got, in the order it happens. A subscriber that never
/// receives a packet is reported by the last stage it reached, so a stall can be told apart:
/// no offer from the hub, ICE never connecting, DTLS never completing, or a track without
/// packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
enum Stage {
    /// Its `subscribe` went out.
    #[default]
    Subscribed,
    /// The hub's offer arrived.
    Offered,
    /// Its answer went out.
    Answered,
    /// ICE connected (a pair succeeded).
    IceConnected,
    /// DTLS completed: the peer connection is connected.
    Connected,
    /// The hub's track was announced to the client.
    Track,
    /// The first packet arrived.
    FirstPacket,
}

/// What one subscriber received.
#[derive(Default)]
struct SubStats {
    /// The subscriber's peer id (to find it in the hub's log).
    peer_id: String,
    /// The furthest stage of its setup.
    stage: Stage,
    /// ICE and peer connection states that ended a connection (`Failed`, `Disconnected`,
    /// `Closed`), in order, before the run stopped.
    failures: Vec<String>,
    /// `error` codes the hub sent on its socket.
    hub_errors: Vec<String>,
    /// When its `subscribe` went out.
    subscribed: Option<Instant>,
    /// When its first packet arrived.
    first: Option<Instant>,
    /// RTP packets received (any).
    rtp_packets: u64,
    /// Distinct stamped packets of its publisher's window.
    in_window: u64,
    /// Missing numbers in the RTP sequence the relay wrote.
    rtp_gaps: u64,
    last_rtp_seq: Option<u16>,
    /// Stamped packets from another publisher (must stay 0: rooms do not cross-talk).
    foreign: u64,
    seen: Seen,
    /// One-way latency of each packet of the window from its intended send time.
    latency: Recorder,
}

impl SubStats {
    fn reached(&mut self, stage: Stage) {
        self.stage = self.stage.max(stage);
    }

    fn on_packet(&mut self, pkt: &rtc::rtp::Packet, publisher: u32, window: &Window) {
        let now = Instant::now();
        self.rtp_packets += 1;
        self.first.get_or_insert(now);
        self.reached(Stage::FirstPacket);
        let s = pkt.header.sequence_number;
        match self.last_rtp_seq {
            None => self.last_rtp_seq = Some(s),
            Some(last) => {
                let d = s.wrapping_sub(last);
                if d != 0 && d < 0x8000 {
                    self.rtp_gaps += u64::from(d - 1);
                    self.last_rtp_seq = Some(s);
                }
            }
        }
        let Some(stamp) = Stamp::find(&pkt.payload) else {
            return;
        };
        if stamp.publisher != publisher {
            self.foreign += 1;
            return;
        }
        // Only the measured window counts (not the set-up, not the drain).
        if self.seen.insert(stamp.seq) && window.contains(stamp.seq) {
            self.in_window += 1;
            self.latency
                .ok(now.saturating_duration_since(instant_of(stamp.intended_us)));
        }
    }
}

/// Where a subscriber's tracks report.
#[derive(Clone)]
struct Sink {
    stats: Arc<Mutex<SubStats>>,
    publisher: u32,
    window: Arc<Window>,
}

fn lock(stats: &Mutex<SubStats>) -> std::sync::MutexGuard<'_, SubStats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

/// A subscriber's observer: records how far its set-up got and counts what its track
/// receives.
struct Watch {
    sink: Sink,
    /// Set once the run stops, so closing the connections is not reported as a failure.
    stop: Stop,
}

impl Watch {
    fn record(&self, f: impl FnOnce(&mut SubStats)) {
        f(&mut lock(&self.sink.stats));
    }

    fn failed(&self, what: String) {
        if !self.stop.is_set() {
            self.record(|s| s.failures.push(what));
        }
    }
}

impl Observer for Watch {
    fn ice_state(&self, state: RTCIceConnectionState) {
        match state {
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed => {
                self.record(|s| s.reached(Stage::IceConnected))
            }
            RTCIceConnectionState::Failed
            | RTCIceConnectionState::Disconnected
            | RTCIceConnectionState::Closed => self.failed(format!("ice {state}")),
            _ => {}
        }
    }

    fn connection_state(&self, state: RTCPeerConnectionState) {
        match state {
            RTCPeerConnectionState::Connected => self.record(|s| s.reached(Stage::Connected)),
            RTCPeerConnectionState::Failed
            | RTCPeerConnectionState::Disconnected
            | RTCPeerConnectionState::Closed => self.failed(format!("connection {state}")),
            _ => {}
        }
    }

    fn track(&self, track: Arc<dyn TrackRemote>) {
        self.record(|s| s.reached(Stage::Track));
        let sink = self.sink.clone();
        // Ends when the track or its connection does.
        tokio::spawn(async move {
            while let Some(evt) = track.poll().await {
                match evt {
                    TrackRemoteEvent::OnRtpPacket(pkt) => {
                        lock(&sink.stats).on_packet(&pkt, sink.publisher, &sink.window)
                    }
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

fn sdp_of(data: &SignalData) -> String {
    data.sdp().unwrap_or_default().to_string()
}

fn hub_signal(room: Uuid, data: Value) -> Value {
    json!({"type": "signal", "roomId": room, "to": "hub", "data": data})
}

fn heartbeat_interval(authed: &ServerMessage) -> Duration {
    match authed {
        ServerMessage::Authed {
            heartbeat_interval_ms,
            ..
        } => Duration::from_millis((*heartbeat_interval_ms).max(100)),
        _ => Duration::from_secs(5),
    }
}

/// Keeps a device's socket alive until `stop`: heartbeats, and `on_msg` for everything the
/// hub sends, `error` replies included (its reply, if any, goes back on the socket). Returns
/// the failures seen: `error` replies, failed handling, the socket ending before `stop`.
async fn keep_socket<F, Fut>(
    mut sock: Socket,
    heartbeat: Duration,
    stop: Stop,
    mut on_msg: F,
) -> u64
where
    F: FnMut(ServerMessage) -> Fut,
    Fut: Future<Output = Result<Option<Value>>>,
{
    let mut failures = 0;
    let mut tick = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let reply = tokio::select! {
            _ = stop.wait() => break,
            _ = tick.tick() => Some(json!({"type": "heartbeat"})),
            m = sock.recv() => match m {
                Ok(m) => {
                    if matches!(m, ServerMessage::Error { .. }) {
                        failures += 1;
                    }
                    match on_msg(m).await {
                        Ok(reply) => reply,
                        Err(_) => {
                            failures += 1;
                            None
                        }
                    }
                }
                Err(_) => {
                    if !stop.is_set() {
                        failures += 1;
                    }
                    return failures;
                }
            },
        };
        if let Some(v) = reply {
            if sock.send_json(&v).await.is_err() {
                if !stop.is_set() {
                    failures += 1;
                }
                return failures;
            }
        }
    }
    sock.close().await;
    failures
}

/// A publishing laptop.
struct Publisher {
    peer: Peer,
    /// Its next sequence number (= packets sent or being sent).
    next_seq: Arc<AtomicU64>,
    /// RTP bytes (header + payload) written to the track.
    media_bytes: Arc<AtomicU64>,
    /// Packets the track refused.
    write_failures: Arc<AtomicU64>,
    window: Arc<Window>,
    socket: JoinHandle<u64>,
    sender: JoinHandle<()>,
}

/// Connects laptop `idx` of room `room`, publishes one VP8 camera track and waits until the
/// relay is connected; then starts sending (open loop) until `stop`.
async fn publish(
    url: &str,
    token: &str,
    room: Uuid,
    idx: u32,
    args: &MediaArgs,
    stop: &Stop,
) -> Result<Publisher> {
    let (mut sock, authed) = Socket::connect(url, token).await?;
    let heartbeat = heartbeat_interval(&authed);
    sock.join(room).await?;
    let peer = Peer::new(Arc::new(Ignore)).await?;
    let ssrc = 0x5000_0000 + idx;
    let track = camera_track(format!("laptop-{idx}"), ssrc);
    peer.add_track(track.clone()).await?;
    let sdp = peer.offer().await?;
    let mid = first_mid(&sdp).unwrap_or("0").to_string();
    let mut tracks = serde_json::Map::new();
    tracks.insert(mid, json!("camera"));
    sock.send_json(&hub_signal(
        room,
        json!({"kind": "offer", "sdp": sdp, "tracks": tracks}),
    ))
    .await?;
    let answer = loop {
        match sock.recv().await? {
            ServerMessage::Signal {
                from: PeerRef::Hub,
                data,
                ..
            } if data.kind() == SignalKind::Answer => {
                break sdp_of(&data);
            }
            ServerMessage::Error { code, message, .. } => {
                return Err(Error::Usage(format!("publish refused: {code}: {message}")))
            }
            _ => {}
        }
    };
    peer.accept_answer(answer).await?;
    peer.connected().await?;

    let next_seq = Arc::new(AtomicU64::new(0));
    let media_bytes = Arc::new(AtomicU64::new(0));
    let write_failures = Arc::new(AtomicU64::new(0));
    let socket = tokio::spawn(keep_socket(sock, heartbeat, stop.clone(), |_| async {
        Ok(None)
    }));
    let rate = args.packet_rate();
    let keyframe_every = ((rate * args.keyframe_ms as f64 / 1000.0).round() as u64).max(1);
    let ts_step = (90_000.0 / rate).max(1.0);
    let len = args.packet_bytes;
    let sender = {
        let (next_seq, media_bytes, write_failures, stop) = (
            next_seq.clone(),
            media_bytes.clone(),
            write_failures.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let start = Instant::now();
            loop {
                let seq = next_seq.fetch_add(1, Ordering::Relaxed);
                let due = start + Duration::from_secs_f64(seq as f64 / rate);
                if due > Instant::now() {
                    tokio::select! {
                        _ = tokio::time::sleep_until(due) => {}
                        _ = stop.wait() => break,
                    }
                }
                if stop.is_set() {
                    break;
                }
                let stamp = Stamp {
                    publisher: idx,
                    seq,
                    intended_us: micros(due),
                };
                let payload = vp8_payload(stamp, seq % keyframe_every == 0, len);
                let size = payload.len() as u64 + RTP_HEADER_BYTES;
                let packet = vp8_packet(ssrc, seq, (seq as f64 * ts_step) as u32, payload);
                match track.write_rtp(packet).await {
                    Ok(()) => {
                        media_bytes.fetch_add(size, Ordering::Relaxed);
                    }
                    Err(_) => {
                        write_failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    Ok(Publisher {
        peer,
        next_seq,
        media_bytes,
        write_failures,
        window: Arc::new(Window::default()),
        socket,
        sender,
    })
}

/// Each publisher's (transport bytes sent, media bytes written) so far.
async fn egress(publishers: &[&Publisher]) -> Vec<(u64, u64)> {
    let mut v = Vec::with_capacity(publishers.len());
    for p in publishers {
        v.push((
            p.peer.transport_bytes_sent().await,
            p.media_bytes.load(Ordering::Relaxed),
        ));
    }
    v
}

/// A subscribed proctor.
struct Subscriber {
    /// Index into the publishers (its room's).
    publisher: usize,
    stats: Arc<Mutex<SubStats>>,
    peer: Arc<Peer>,
    socket: JoinHandle<u64>,
}

/// Connects a proctor to room `room`, subscribes (timing starts here) and answers every offer
/// of the hub until `stop`.
async fn subscribe(
    url: &str,
    token: &str,
    room: Uuid,
    sink: Sink,
    stop: &Stop,
) -> Result<Subscriber> {
    let (mut sock, authed) = Socket::connect(url, token).await?;
    let heartbeat = heartbeat_interval(&authed);
    sock.join(room).await?;
    let (stats, publisher) = (sink.stats.clone(), sink.publisher as usize);
    let watch = Watch {
        sink,
        stop: stop.clone(),
    };
    let peer = Arc::new(Peer::new(Arc::new(watch)).await?);
    let handle = peer.clone();
    {
        let mut st = lock(&stats);
        st.subscribed = Some(Instant::now());
        if let ServerMessage::Authed { peer_id, .. } = &authed {
            st.peer_id = peer_id.to_string();
        }
    }
    sock.send_json(&json!({"type": "subscribe", "roomId": room}))
        .await?;
    let on_socket = stats.clone();
    let socket = tokio::spawn(keep_socket(sock, heartbeat, stop.clone(), move |m| {
        let (peer, stats) = (peer.clone(), on_socket.clone());
        async move {
            if let ServerMessage::Error { code, .. } = &m {
                lock(&stats).hub_errors.push(code.to_string());
                return Ok(None);
            }
            let ServerMessage::Signal {
                from: PeerRef::Hub,
                data,
                ..
            } = m
            else {
                return Ok(None);
            };
            if data.kind() != SignalKind::Offer {
                return Ok(None);
            }
            lock(&stats).reached(Stage::Offered);
            let sdp = peer.answer(sdp_of(&data)).await?;
            lock(&stats).reached(Stage::Answered);
            Ok::<_, Error>(Some(hub_signal(
                room,
                json!({"kind": "answer", "sdp": sdp}),
            )))
        }
    }));
    Ok(Subscriber {
        publisher,
        stats,
        peer: handle,
        socket,
    })
}

/// Runs S7.
pub async fn run(ctx: &Ctx, args: MediaArgs) -> Result<RunResult> {
    if args.publishers == 0
        || args.subscribers == 0
        || args.bitrate_kbps == 0
        || args.duration_secs == 0
        || args.keyframe_ms == 0
    {
        return Err(Error::Usage(
            "publishers, subscribers, bitrate, keyframe interval and duration must be positive"
                .into(),
        ));
    }
    if !(64..=MAX_PACKET_BYTES).contains(&args.packet_bytes) {
        return Err(Error::Usage(format!(
            "--packet-bytes must be within 64..={MAX_PACKET_BYTES} (one relay packet per frame)"
        )));
    }
    if args.packet_rate() > 2000.0 {
        return Err(Error::Usage(
            "more than 2000 packets/s per publisher: lower the bitrate or raise --packet-bytes"
                .into(),
        ));
    }
    // Each peer: a WebSocket and a UDP socket.
    crate::sys::ensure_fds((args.publishers * (1 + args.subscribers) * 2) as u64)?;
    let fx = Fixture::provision(
        ctx,
        Plan {
            sessions: args.publishers,
            max_candidates: args.candidates,
            questions: 1,
            phones: false,
            proctor: true,
        },
    )
    .await?;
    let result = measure(ctx, &args, &fx).await;
    fx.cleanup(ctx).await?;
    result
}

async fn measure(ctx: &Ctx, args: &MediaArgs, fx: &Fixture) -> Result<RunResult> {
    let url = ctx.api.ws_url();
    let setup = Duration::from_secs(args.setup_timeout_secs.max(1));
    let stop = Stop::default();
    let rss_before = ctx.sample();

    // Publishers first: subscribers join streams that are already live.
    let bar = ctx.bar(args.publishers as u64, "publishing");
    let mut publish_rec = Recorder::default();
    let published: Vec<(Result<Publisher>, Duration)> = stream::iter(0..args.publishers)
        .map(|i| {
            let (url, stop, bar) = (&url, &stop, bar.clone());
            async move {
                let t0 = Instant::now();
                let s = &fx.sessions[i];
                let p = tokio::time::timeout(
                    setup,
                    publish(url, fx.laptop_token(i), s.s.room, i as u32, args, stop),
                )
                .await
                .unwrap_or_else(|_| Err(Error::WebRtc("publishing timed out".into())));
                bar.inc(1);
                (p, t0.elapsed())
            }
        })
        .buffered(8)
        .collect()
        .await;
    bar.finish();
    let mut publishers: Vec<Option<Publisher>> = Vec::new();
    let mut first_error = None;
    for (p, took) in published {
        match p {
            Ok(p) => {
                publish_rec.ok(took);
                publishers.push(Some(p));
            }
            Err(e) => {
                publish_rec.fail();
                first_error.get_or_insert(e.to_string());
                publishers.push(None);
            }
        }
    }

    // Then the proctors, each timed from its `subscribe` to its first packet.
    let proctor = &fx.proctor.as_ref().expect("a proctor").1;
    let n_subs = args.publishers * args.subscribers;
    let bar = ctx.bar(n_subs as u64, "subscribing");
    let jobs: Vec<usize> = (0..n_subs).map(|k| k / args.subscribers).collect();
    let subscribed: Vec<Result<Subscriber>> = stream::iter(jobs)
        .map(|r| {
            let (url, stop, bar) = (&url, &stop, bar.clone());
            let window = publishers[r]
                .as_ref()
                .map(|p| p.window.clone())
                .unwrap_or_default();
            let sink = Sink {
                stats: Arc::default(),
                publisher: r as u32,
                window,
            };
            let room = fx.sessions[r].s.room;
            async move {
                let s = tokio::time::timeout(setup, subscribe(url, proctor, room, sink, stop))
                    .await
                    .unwrap_or_else(|_| Err(Error::WebRtc("subscribing timed out".into())));
                bar.inc(1);
                s
            }
        })
        .buffered(16)
        .collect()
        .await;
    bar.finish();
    let mut subscribers = Vec::new();
    let mut subscribe_failures = 0u64;
    for s in subscribed {
        match s {
            Ok(s) => subscribers.push(s),
            Err(e) => {
                subscribe_failures += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }

    // Every subscriber's first packet, or the setup bound.
    let bar = ctx.bar(subscribers.len() as u64, "first packets");
    let until = Instant::now() + setup;
    loop {
        let have = subscribers
            .iter()
            .filter(|s| lock(&s.stats).first.is_some())
            .count();
        bar.set_position(have as u64);
        if have == subscribers.len() || Instant::now() >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bar.finish();

    // The measured window.
    let live: Vec<&Publisher> = publishers.iter().flatten().collect();
    let rx_packets =
        |subs: &[Subscriber]| -> u64 { subs.iter().map(|s| lock(&s.stats).rtp_packets).sum() };
    let egress0 = egress(&live).await;
    let cpu_before = ctx.sample();
    let rx0 = rx_packets(&subscribers);
    for p in &live {
        p.window
            .start
            .store(p.next_seq.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    let t0 = Instant::now();
    let bar = ctx.bar(args.duration_secs, "measuring");
    for _ in 0..args.duration_secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        bar.inc(1);
    }
    for p in &live {
        p.window
            .end
            .store(p.next_seq.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    let measured = t0.elapsed();
    let rx1 = rx_packets(&subscribers);
    let cpu_after = ctx.sample();
    let egress1 = egress(&live).await;
    bar.finish();
    let sent_in_window: u64 = live
        .iter()
        .map(|p| {
            p.window
                .end
                .load(Ordering::Relaxed)
                .saturating_sub(p.window.start.load(Ordering::Relaxed))
        })
        .sum();
    let n_live = live.len();
    // Packets of the window still in flight arrive while the publishers go on sending: wait
    // until no more arrive for half a second (at most 5 s), so a backlog in the clients is
    // not counted as loss.
    let in_window =
        |subs: &[Subscriber]| -> u64 { subs.iter().map(|s| lock(&s.stats).in_window).sum() };
    let drain_until = Instant::now() + Duration::from_secs(5);
    let mut last = in_window(&subscribers);
    while Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = in_window(&subscribers);
        if now == last {
            break;
        }
        last = now;
    }

    stop.set();
    let mut socket_failures = 0u64;
    let mut write_failures = 0u64;
    for p in publishers.iter_mut().flatten() {
        let _ = (&mut p.sender).await;
        socket_failures += (&mut p.socket).await.unwrap_or(1);
        write_failures += p.write_failures.load(Ordering::Relaxed);
        p.peer.close().await;
    }
    for s in &mut subscribers {
        socket_failures += (&mut s.socket).await.unwrap_or(1);
        s.peer.close().await;
    }

    // Figures.
    let mut packet = Recorder::default();
    let mut first = Recorder::default();
    for _ in 0..subscribe_failures {
        first.fail();
    }
    let (mut received, mut expected, mut rtp_gaps, mut foreign) = (0u64, 0u64, 0u64, 0u64);
    let mut per_subscriber = Vec::new();
    // Subscribers without a first packet, by the last stage their setup reached.
    let mut stalled: std::collections::BTreeMap<Stage, u64> = Default::default();
    let mut stalled_detail = Vec::new();
    for s in &subscribers {
        let st = lock(&s.stats);
        per_subscriber.push(st.in_window);
        if st.first.is_none() {
            *stalled.entry(st.stage).or_default() += 1;
            if stalled_detail.len() < 20 {
                stalled_detail.push(json!({
                    "peerId": st.peer_id,
                    "publisher": s.publisher,
                    "stage": st.stage,
                    "failures": st.failures,
                    "hubErrors": st.hub_errors,
                }));
            }
        }
        packet.merge(&st.latency);
        match (st.subscribed, st.first) {
            (Some(a), Some(b)) => first.ok(b.saturating_duration_since(a)),
            _ => first.fail(),
        }
        received += st.in_window;
        rtp_gaps += st.rtp_gaps;
        foreign += st.foreign;
        if let Some(p) = &publishers[s.publisher] {
            let (a, b) = (
                p.window.start.load(Ordering::Relaxed),
                p.window.end.load(Ordering::Relaxed),
            );
            expected += b.saturating_sub(a);
        }
    }
    for _ in 0..(write_failures + foreign) {
        packet.fail();
    }
    // A socket that failed is a device that failed: count it with the devices' first step.
    for _ in 0..socket_failures {
        publish_rec.fail();
    }
    let loss_pct = if expected == 0 {
        100.0
    } else {
        expected.saturating_sub(received) as f64 * 100.0 / expected as f64
    };
    let delivered = rx1.saturating_sub(rx0);
    let secs = measured.as_secs_f64().max(1e-9);
    let egress_bytes: u64 = egress0
        .iter()
        .zip(&egress1)
        .map(|(a, b)| b.0.saturating_sub(a.0))
        .sum();
    let media_bytes: u64 = egress0
        .iter()
        .zip(&egress1)
        .map(|(a, b)| b.1.saturating_sub(a.1))
        .sum();
    let per_live = n_live.max(1) as f64;
    let egress_kbps = egress_bytes as f64 * 8.0 / 1000.0 / secs / per_live;
    let media_kbps = media_bytes as f64 * 8.0 / 1000.0 / secs / per_live;
    let egress_ratio = if media_bytes == 0 {
        0.0
    } else {
        egress_bytes as f64 / media_bytes as f64
    };
    let params = json!({
        "args": args,
        "packetRatePerPublisher": args.packet_rate(),
        "publishersLive": n_live,
        "subscribersLive": subscribers.len(),
        "packetsSentInWindow": sent_in_window,
        "packetsExpected": expected,
        "packetsReceived": received,
        "receivedPerSubscriber": per_subscriber,
        "lossPercent": loss_pct,
        "rtpSequenceGaps": rtp_gaps,
        "foreignPackets": foreign,
        "deliveredPacketsPerSec": delivered as f64 / secs,
        "publisherEgressKbps": egress_kbps,
        "publisherMediaKbps": media_kbps,
        "egressOverMedia": egress_ratio,
        "writeFailures": write_failures,
        "socketFailures": socket_failures,
        "firstError": first_error,
        "stalled": stalled,
        "stalledDetail": stalled_detail,
    });
    let stalled_note = if stalled.is_empty() {
        String::new()
    } else {
        let by_stage: Vec<String> = stalled
            .iter()
            .map(|(stage, n)| format!("{n} after {}", json!(stage).as_str().unwrap_or("?")))
            .collect();
        format!(", never started: {}", by_stage.join(", "))
    };
    report(
        ctx,
        Measured {
            scenario: "media",
            params,
            duration: measured,
            ops: delivered,
            latencies: vec![
                ("packet", packet),
                ("first-packet", first.clone()),
                ("publish", publish_rec),
            ],
            hub: hub_window(rss_before, cpu_before, cpu_after, None),
            headline: format!(
                "{} publishers × {} subscribers, {:.0} pkt/s delivered, loss {loss_pct:.3} %, \
                 first-packet p50 {:.1} ms p99 {:.1} ms, publisher egress {egress_kbps:.0} \
                 kbit/s ({egress_ratio:.2}× media){stalled_note}",
                n_live,
                args.subscribers,
                delivered as f64 / secs,
                first.ms(0.5),
                first.ms(0.99),
            ),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_survive_any_descriptor() {
        let stamp = Stamp {
            publisher: 7,
            seq: 1234,
            intended_us: 99,
        };
        let p = vp8_payload(stamp, true, 200);
        assert_eq!(p.len(), 200);
        assert_eq!(Stamp::find(&p), Some(stamp));
        // The relay may write a longer descriptor (X, I with a 15-bit picture id).
        let mut q = vec![0x90, 0x80, 0x81, 0x23];
        q.extend_from_slice(&p[1..]);
        assert_eq!(Stamp::find(&q), Some(stamp));
        assert_eq!(Stamp::find(&[0x10, 0x11, 0x02]), None);
    }

    #[test]
    fn duplicates_count_once_and_windows_bound() {
        let mut seen = Seen::default();
        assert!(seen.insert(5));
        assert!(!seen.insert(5));
        assert!(seen.insert(5 + 1024));
        let w = Window::default();
        assert!(!w.contains(3));
        w.start.store(2, Ordering::Relaxed);
        assert!(w.contains(3));
        w.end.store(3, Ordering::Relaxed);
        assert!(!w.contains(3) && w.contains(2));
    }
}
