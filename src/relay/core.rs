//! The sans-IO relay: str0m peer connections, forwarding tables and keyframe throttling.
//!
//! Inputs are [`Relay::command`], [`Relay::receive`] and [`Relay::timeout`], each with `now`;
//! outputs are [`Relay::take_transmits`] and [`Relay::take_events`]. There is no socket, task,
//! lock or clock in here, so tests drive it with a virtual clock and a fake network.
//!
//! str0m asks its callers to drain every output after each input; that happens in one place,
//! [`Relay::settle`], which drains every peer touched by the input, handles the events that
//! draining produced (which may touch more peers: a publisher's frame is written to each
//! subscriber) and repeats until nothing is left. Every call into a peer's `Rtc` goes through
//! [`Relay::guarded`], so a panic inside one peer drops that peer only.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid, Rid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::{Candidate, Event as RtcEvent, Input, Output, Rtc};
use uuid::Uuid;

use super::{CloseReason, Command, Event, Layer, PeerKey, Source, TrackInfo};

/// Tunables of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Host candidates advertised in every SDP: the socket's public address(es).
    pub candidates: Vec<SocketAddr>,
    /// At most one keyframe request upstream per track (and layer) in this interval.
    pub keyframe_interval: Duration,
    /// How many video packets each subscriber connection keeps to answer NACKs.
    pub send_buffer_video: usize,
    /// How often str0m reports per-track statistics (NACK counts for metrics).
    pub stats_interval: Duration,
    /// How often each room's forwarded bitrate is computed (`relay_room_bitrate_bps`).
    pub bitrate_interval: Duration,
    /// A simulcast layer without packets for this long counts as paused: its subscribers move
    /// to the nearest layer that flows until it comes back.
    pub layer_pause: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            candidates: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            keyframe_interval: Duration::from_secs(1),
            send_buffer_video: 1000,
            stats_interval: Duration::from_secs(1),
            bitrate_interval: Duration::from_secs(1),
            layer_pause: Duration::from_secs(2),
        }
    }
}

/// Counts for tests and health: after every peer left, all are zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Publishing peer connections.
    pub publishers: usize,
    /// Subscribing peer connections.
    pub subscribers: usize,
    /// Published tracks being forwarded.
    pub tracks: usize,
    /// Rooms with at least one media peer.
    pub rooms: usize,
    /// Remembered remote addresses (the UDP demultiplexing cache).
    pub routes: usize,
    /// Subscriptions (track × subscriber), including ones being negotiated or stopped.
    pub subscriptions: usize,
    /// Rooms with a forwarded-bitrate meter (`relay_room_bitrate_bps`); removed with the room.
    pub metered_rooms: usize,
}

impl RelayStats {
    /// Adds another media task's counts.
    pub fn add(&mut self, o: RelayStats) {
        self.publishers += o.publishers;
        self.subscribers += o.subscribers;
        self.tracks += o.tracks;
        self.rooms += o.rooms;
        self.routes += o.routes;
        self.subscriptions += o.subscriptions;
        self.metered_rooms += o.metered_rooms;
    }
}

/// Cumulative counters since start, for tests (the same numbers go to `metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounters {
    /// Frames written to subscribers.
    pub forwarded_frames: u64,
    /// Datagrams sent to subscribers (media, retransmissions and control).
    pub subscriber_packets: u64,
    /// Bytes of those datagrams.
    pub subscriber_bytes: u64,
    /// Keyframe requests (PLI/FIR) received from subscribers.
    pub plis_in: u64,
    /// Keyframe requests sent upstream to publishers.
    pub keyframe_requests_out: u64,
    /// Keyframe requests coalesced by the throttle.
    pub keyframe_requests_throttled: u64,
    /// NACKs received from subscribers (answered from the relay's send buffer).
    pub nacks_in: u64,
    /// Peers dropped because their connection panicked.
    pub panics: u64,
}

type TrackId = u64;

/// A subscriber's view of one published track.
#[derive(Debug)]
struct Out {
    track: TrackId,
    state: OutState,
    /// The simulcast RID currently forwarded (switched on keyframes only).
    rid: Option<Rid>,
    /// Added to the publisher's RTP time (in its clock's ticks) before writing to this
    /// subscriber. Zero until a simulcast switch: simulcast layers are separate RTP streams
    /// with their own timestamp origins, so the new layer is rebased to continue the old one.
    offset: i64,
    /// The last time written to this subscriber (ticks) and when its packet arrived.
    last: Option<(u64, Instant)>,
    /// Last cumulative NACK count str0m reported for this mid.
    nacks: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutState {
    ToOpen,
    Negotiating(Mid),
    Open(Mid),
    ToStop(Mid),
    Stopping(Mid),
}

impl OutState {
    fn mid(self) -> Option<Mid> {
        match self {
            OutState::ToOpen => None,
            OutState::Negotiating(m)
            | OutState::Open(m)
            | OutState::ToStop(m)
            | OutState::Stopping(m) => Some(m),
        }
    }
}

#[derive(Debug, Default)]
struct Publisher {
    /// The session its tracks are recorded for, if any.
    record: Option<Uuid>,
    allowed: Vec<Source>,
    declared: HashMap<String, Source>,
    tracks: HashMap<Mid, TrackId>,
}

#[derive(Debug, Default)]
struct Subscriber {
    sources: Option<Vec<Source>>,
    layer: Layer,
    outs: Vec<Out>,
    pending: Option<SdpPendingOffer>,
}

#[derive(Debug)]
enum Role {
    Publisher(Publisher),
    Subscriber(Subscriber),
}

struct Peer {
    rtc: Rtc,
    /// When str0m next wants `Input::Timeout`.
    timeout: Instant,
    role: Role,
    /// When the connection was created.
    created: Instant,
    /// How far its setup got.
    stage: Stage,
    /// The client closed the connection (DTLS close_notify): its end is not a failure.
    remote_closed: bool,
}

impl Peer {
    fn role_label(&self) -> &'static str {
        match self.role {
            Role::Publisher(_) => "publisher",
            Role::Subscriber(_) => "subscriber",
        }
    }

    /// Records that the connection reached `stage` (once per stage, in order): the time from
    /// its creation goes to `relay_peer_setup_seconds`, so an operator sees how long each
    /// step takes and, from `relay_peers_closed_total`, where the ones that failed stopped.
    fn reached(&mut self, now: Instant, stage: Stage) {
        // str0m accepts frames for a subscriber before DTLS completes (and drops them): only
        // a connected peer's media counts as flowing.
        if stage <= self.stage || (stage == Stage::Flowing && self.stage < Stage::Connected) {
            return;
        }
        self.stage = stage;
        metrics::histogram!(
            "relay_peer_setup_seconds",
            "role" => self.role_label(),
            "stage" => stage.as_str(),
        )
        .record(now.saturating_duration_since(self.created).as_secs_f64());
    }
}

/// An answer whose m-lines are all rejected (port 0) carries no BUNDLE group: JSEP leaves
/// rejected sections out of the group, so libwebrtc and webrtc-rs omit the empty group. This
/// happens when a subscriber's last track ends. str0m wants a group in every answer, so an
/// empty one is added; any other answer is passed on untouched.
pub(super) fn bundle_if_all_rejected(sdp: &str) -> std::borrow::Cow<'_, str> {
    let mut media = sdp.lines().filter(|l| l.starts_with("m=")).peekable();
    let all_rejected = media.peek().is_some() && media.all(|l| l.split(' ').nth(1) == Some("0"));
    if !all_rejected || sdp.lines().any(|l| l.starts_with("a=group:")) {
        return sdp.into();
    }
    let at = sdp.find("\nm=").map_or(0, |i| i + 1);
    let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    format!("{}a=group:BUNDLE{eol}{}", &sdp[..at], &sdp[at..]).into()
}

/// How far a peer connection's setup got, in the order it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// Created by the first offer or `subscribe`.
    New,
    /// An offer and its answer were accepted.
    Negotiated,
    /// A candidate pair works.
    IceConnected,
    /// DTLS completed; media can flow.
    Connected,
    /// Media flowed: the publisher's first packet arrived, or the subscriber's first frame was
    /// written.
    Flowing,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Negotiated => "negotiated",
            Stage::IceConnected => "ice-connected",
            Stage::Connected => "connected",
            Stage::Flowing => "flowing",
        }
    }
}

/// Keyframe-request throttle of one (track, RID).
#[derive(Debug, Default, Clone, Copy)]
struct Throttle {
    last: Option<Instant>,
    /// A request arrived inside the interval: send it when the interval ends.
    pending: bool,
}

struct Track {
    publisher: PeerKey,
    mid: Mid,
    kind: MediaKind,
    source: Source,
    subscribers: HashSet<PeerKey>,
    throttles: HashMap<Option<Rid>, Throttle>,
    /// The simulcast RIDs the publisher declared for this track (empty without simulcast).
    rids: Vec<Rid>,
    /// When each RID's last packet arrived.
    seen: HashMap<Rid, Instant>,
    /// When the track's first simulcast packet arrived.
    first_seen: Option<Instant>,
    /// Recorded for this session; frames numbered from 0.
    record: Option<(Uuid, u64)>,
}

impl Track {
    /// Records a packet of `rid`.
    fn saw(&mut self, rid: Rid, now: Instant) {
        self.seen.insert(rid, now);
        self.first_seen.get_or_insert(now);
    }

    /// Whether the publisher stopped sending `rid` (browsers pause simulcast layers when their
    /// uplink or CPU is short): nothing of it for `after`, or never anything while the track
    /// has flowed for that long.
    fn paused(&self, rid: Rid, now: Instant, after: Duration) -> bool {
        let since = |t: Instant| now.saturating_duration_since(t) > after;
        match self.seen.get(&rid) {
            Some(t) => since(*t),
            None => self.first_seen.is_some_and(since),
        }
    }

    /// The RID a subscriber wanting `layer` receives now: its [`target_rid`] while that flows;
    /// while it is paused, the nearest layer that flows (for High the fullest, for Low the
    /// thinnest), so the subscriber keeps a picture. `None` without simulcast.
    fn target(&self, layer: Layer, now: Instant, pause: Duration) -> Option<Rid> {
        let preferred = target_rid(&self.rids, layer)?;
        if !self.paused(preferred, now, pause) {
            return Some(preferred);
        }
        let flowing = self
            .rids
            .iter()
            .copied()
            .filter(|r| !self.paused(*r, now, pause));
        let stand_in = match layer {
            Layer::High => flowing.max_by_key(|r| rid_rank(*r)),
            Layer::Low => flowing.min_by_key(|r| rid_rank(*r)),
        };
        Some(stand_in.unwrap_or(preferred))
    }
}

/// Bytes forwarded to a room's subscribers, sampled into a bitrate every `bitrate_interval`.
#[derive(Debug, Default, Clone, Copy)]
struct RoomMeter {
    /// Bytes since the last sample.
    bytes: u64,
    /// The last sampled bitrate, bits per second.
    bps: u64,
}

/// The relay's whole state. See the module docs.
pub struct Relay {
    config: RelayConfig,
    peers: HashMap<PeerKey, Peer>,
    tracks: HashMap<TrackId, Track>,
    /// Media peers per room.
    rooms: HashMap<Uuid, HashSet<PeerKey>>,
    /// Remote address → peer, so a datagram does not ask every peer whether it is theirs.
    routes: HashMap<SocketAddr, PeerKey>,
    next_track: TrackId,
    /// Peers whose output must be drained.
    dirty: VecDeque<PeerKey>,
    dirty_set: HashSet<PeerKey>,
    /// Peers whose connection ended, removed after the current input, with why (`None`: the
    /// client closed it).
    doomed: Vec<(PeerKey, Option<CloseReason>)>,
    transmits: Vec<Transmit>,
    events: Vec<Event>,
    /// Frames of recorded tracks (and their endings) for the recorder.
    captures: Vec<crate::recording::Capture>,
    /// Whether a recorder takes the captures (none: nothing is captured).
    recording: bool,
    counters: RelayCounters,
    /// Forwarded bytes per room with media peers; an entry goes with its room.
    meters: HashMap<Uuid, RoomMeter>,
    /// When the meters were last sampled; `None` while no room is metered.
    sampled: Option<Instant>,
    /// Test-only fault injection: the next call into these peers' connections panics.
    #[cfg(test)]
    faults: HashSet<PeerKey>,
}

/// The recording of `t` for `session`.
fn record_ref(session: Uuid, t: &Track) -> crate::recording::TrackRef {
    crate::recording::TrackRef {
        session_id: session,
        room: t.publisher.room,
        publisher: t.publisher.peer,
        mid: t.mid.to_string(),
        source: t.source,
    }
}

/// The codecs WebM holds; others (H.264) are forwarded but not recorded.
fn recorded_codec(c: str0m::format::Codec) -> Option<crate::recording::Codec> {
    match c {
        str0m::format::Codec::Vp8 => Some(crate::recording::Codec::Vp8),
        str0m::format::Codec::Vp9 => Some(crate::recording::Codec::Vp9),
        str0m::format::Codec::Opus => Some(crate::recording::Codec::Opus),
        _ => None,
    }
}

fn rid_layer(rid: Rid) -> Layer {
    match &*rid {
        "l" | "q" | "lo" | "low" => Layer::Low,
        _ => Layer::High,
    }
}

/// How full a RID's resolution is, among the conventional names: `f`/`h`/`q` (full, half,
/// quarter: Chrome's examples) and `h`/`m`/`l` (high, mid, low).
fn rid_rank(rid: Rid) -> u8 {
    match &*rid {
        "f" | "full" | "hi" | "high" => 3,
        "h" => 2,
        "m" | "mid" => 1,
        _ => 0,
    }
}

/// The offset that makes `data` (the first frame of a new simulcast layer) continue the
/// subscriber's timeline after `last` (the last time written and when it arrived): layers are
/// separate RTP streams whose timestamps start at unrelated random values (RFC 3550), so the new
/// layer's time is moved to follow the last one by the wall-clock time between the two (at
/// least one tick).
fn switch_offset(last: Option<(u64, Instant)>, data: &MediaData) -> i64 {
    let Some((last_time, last_at)) = last else {
        return 0;
    };
    let hz = u128::from(data.time.frequency().get());
    let gap = data
        .network_time
        .saturating_duration_since(last_at)
        .as_micros()
        * hz
        / 1_000_000;
    let next = u128::from(last_time) + gap.max(1);
    let next = i128::try_from(next).unwrap_or(i128::MAX);
    let offset = next - i128::from(data.time.numer());
    i64::try_from(offset).unwrap_or(0)
}

/// `time` moved by `offset` ticks (never below zero).
fn shifted(time: MediaTime, offset: i64) -> MediaTime {
    let numer = i128::from(time.numer()) + i128::from(offset);
    MediaTime::new(u64::try_from(numer).unwrap_or(0), time.frequency())
}

/// The RID a subscriber wanting `layer` receives among a track's declared `rids`: the fullest
/// of that layer (High) or the first of it (Low); without one, the nearest of the other layer.
/// `None` when the publisher declared no simulcast.
fn target_rid(rids: &[Rid], layer: Layer) -> Option<Rid> {
    let of = |l: Layer| rids.iter().copied().filter(move |r| rid_layer(*r) == l);
    // `max_by_key`/`min_by_key` keep the last/first of equals; ties go to the declared order.
    let fullest = |l: Layer| of(l).rev().max_by_key(|r| rid_rank(*r));
    let smallest = |l: Layer| of(l).min_by_key(|r| rid_rank(*r));
    match layer {
        Layer::High => fullest(Layer::High).or_else(|| fullest(Layer::Low)),
        Layer::Low => of(Layer::Low).next().or_else(|| smallest(Layer::High)),
    }
}

impl Relay {
    /// The configuration it runs with.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// An empty relay.
    pub fn new(config: RelayConfig) -> Self {
        Relay {
            config,
            peers: HashMap::new(),
            tracks: HashMap::new(),
            rooms: HashMap::new(),
            routes: HashMap::new(),
            next_track: 1,
            dirty: VecDeque::new(),
            dirty_set: HashSet::new(),
            doomed: Vec::new(),
            transmits: Vec::new(),
            events: Vec::new(),
            captures: Vec::new(),
            recording: true,
            counters: RelayCounters::default(),
            meters: HashMap::new(),
            sampled: None,
            #[cfg(test)]
            faults: HashSet::new(),
        }
    }

    /// Test-only: makes the next call into `key`'s connection panic, as a bug in str0m would.
    #[cfg(test)]
    pub(crate) fn inject_panic(&mut self, key: PeerKey) {
        self.faults.insert(key);
    }

    /// Test-only: whether the relay still holds anything of `key` (peer, room membership,
    /// routes, subscriptions on tracks, tracks, pending drains, injected faults).
    #[cfg(test)]
    pub(crate) fn holds(&self, key: PeerKey) -> bool {
        self.peers.contains_key(&key)
            || self.rooms.values().any(|r| r.contains(&key))
            || self.routes.values().any(|k| *k == key)
            || self
                .tracks
                .values()
                .any(|t| t.publisher == key || t.subscribers.contains(&key))
            || self.dirty_set.contains(&key)
            || self.faults.contains(&key)
    }

    /// Whether a fault was injected for `key` (always `false` outside tests).
    fn faulty(&self, key: PeerKey) -> bool {
        #[cfg(test)]
        {
            self.faults.contains(&key)
        }
        #[cfg(not(test))]
        {
            let _ = key;
            false
        }
    }

    /// The last sampled forwarded bitrate (bits/s) of every room with media peers.
    pub fn room_bitrates(&self) -> std::collections::BTreeMap<Uuid, u64> {
        self.meters.iter().map(|(room, m)| (*room, m.bps)).collect()
    }

    /// Counts of what the relay holds.
    pub fn stats(&self) -> RelayStats {
        let mut s = RelayStats {
            tracks: self.tracks.len(),
            rooms: self.rooms.len(),
            routes: self.routes.len(),
            metered_rooms: self.meters.len(),
            ..RelayStats::default()
        };
        for p in self.peers.values() {
            match &p.role {
                Role::Publisher(_) => s.publishers += 1,
                Role::Subscriber(sub) => {
                    s.subscribers += 1;
                    s.subscriptions += sub.outs.len();
                }
            }
        }
        s
    }

    /// Cumulative counters.
    pub fn counters(&self) -> RelayCounters {
        self.counters
    }

    /// Datagrams to send, in order.
    pub fn take_transmits(&mut self) -> Vec<Transmit> {
        std::mem::take(&mut self.transmits)
    }

    /// Events for signaling, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Whether a recorder takes captures; without one nothing is captured. With one, new
    /// connections negotiate only the codecs a recording can hold (VP8, VP9, Opus: every
    /// browser has them), so no track is forwarded but left unrecorded (H.264 would be).
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Takes the frames of recorded tracks captured since the last call (and their endings).
    pub fn take_captures(&mut self) -> Vec<crate::recording::Capture> {
        std::mem::take(&mut self.captures)
    }

    /// The earliest time [`Relay::timeout`] must be called.
    pub fn next_timeout(&self) -> Option<Instant> {
        let peers = self.peers.values().map(|p| p.timeout);
        let throttles = self.tracks.values().flat_map(|t| {
            t.throttles
                .values()
                .filter(|th| th.pending)
                .filter_map(|th| th.last.map(|l| l + self.config.keyframe_interval))
        });
        let sample = self.sampled.map(|s| s + self.config.bitrate_interval);
        peers.chain(throttles).chain(sample).min()
    }

    /// Handles a command from the hub.
    pub fn command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Publish {
                key,
                offer,
                declared,
                allowed,
                record,
            } => self.publish(now, key, &offer, declared, allowed, record),
            Command::Keyframe { key, mid } => {
                let track = match self.peers.get(&key) {
                    Some(Peer {
                        role: Role::Publisher(p),
                        ..
                    }) => p
                        .tracks
                        .iter()
                        .find(|(m, _)| m.to_string() == mid)
                        .map(|(_, id)| *id),
                    _ => None,
                };
                if let Some(id) = track {
                    let rid = self
                        .tracks
                        .get(&id)
                        .and_then(|t| t.target(Layer::High, now, self.config.layer_pause));
                    self.request_keyframe(now, id, rid);
                }
            }
            Command::Subscribe {
                key,
                sources,
                layer,
            } => self.subscribe(now, key, sources, layer),
            Command::Answer { key, answer } => self.answer(now, key, &answer),
            Command::Ice { key, candidate } => {
                let line = candidate.trim();
                let line = line.strip_prefix("a=").unwrap_or(line);
                if let Ok(c) = Candidate::from_sdp_string(line) {
                    self.guarded(key, |p| p.rtc.add_remote_candidate(c));
                    self.touch(key);
                }
            }
            Command::Leave { key } => self.remove_peer(now, key, None),
            Command::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
        }
        self.settle(now);
    }

    /// Handles one datagram that arrived on the relay's socket.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, bytes: &[u8]) {
        let Ok(contents) = bytes.try_into() else {
            return;
        };
        let destination = self.config.candidates[0];
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        let cached = self
            .routes
            .get(&source)
            .copied()
            .filter(|k| self.peers.get(k).is_some_and(|p| p.rtc.accepts(&input)));
        let key = match cached {
            Some(k) => k,
            None => {
                let Some(k) = self
                    .peers
                    .iter()
                    .find(|(_, p)| p.rtc.accepts(&input))
                    .map(|(k, _)| *k)
                else {
                    return;
                };
                self.routes.insert(source, k);
                k
            }
        };
        let mut broken = false;
        self.guarded(key, |p| {
            if p.rtc.handle_input(input).is_err() {
                broken = true;
            }
        });
        if broken {
            self.doomed.push((key, Some(CloseReason::Failed)));
        }
        self.touch(key);
        self.settle(now);
    }

    /// Drives every timer that is due.
    pub fn timeout(&mut self, now: Instant) {
        let due: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.timeout <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let mut broken = false;
            self.guarded(key, |p| {
                if p.rtc.handle_input(Input::Timeout(now)).is_err() {
                    broken = true;
                }
            });
            if broken {
                self.doomed.push((key, Some(CloseReason::Failed)));
            }
            self.touch(key);
        }
        // Throttled keyframe requests whose interval ended.
        let interval = self.config.keyframe_interval;
        let ready: Vec<(TrackId, Option<Rid>)> = self
            .tracks
            .iter()
            .flat_map(|(id, t)| {
                t.throttles
                    .iter()
                    .filter(move |(_, th)| {
                        th.pending && th.last.is_none_or(|l| l + interval <= now)
                    })
                    .map(move |(rid, _)| (*id, *rid))
            })
            .collect();
        for (track, rid) in ready {
            self.request_keyframe(now, track, rid);
        }
        self.settle(now);
        self.sample_bitrates(now);
    }

    /// Turns each room's forwarded bytes into a bitrate once per `bitrate_interval`.
    fn sample_bitrates(&mut self, now: Instant) {
        let Some(last) = self.sampled else {
            return;
        };
        let elapsed = now.saturating_duration_since(last);
        if elapsed < self.config.bitrate_interval {
            return;
        }
        let micros = elapsed.as_micros().max(1);
        for m in self.meters.values_mut() {
            let bps = u128::from(m.bytes) * 8 * 1_000_000 / micros;
            m.bps = u64::try_from(bps).unwrap_or(u64::MAX);
            m.bytes = 0;
            // A histogram over rooms, not a gauge per room: room ids come and go with every
            // exam session, and a labelled series would outlive its room in `/metrics`.
            metrics::histogram!("relay_room_bitrate_bps").record(m.bps as f64);
        }
        self.sampled = Some(now);
    }

    /// Counts bytes sent to a subscriber of `room` for that room's bitrate.
    fn meter(&mut self, now: Instant, room: Uuid, bytes: usize) {
        if !self.rooms.contains_key(&room) {
            return;
        }
        self.meters.entry(room).or_default().bytes += bytes as u64;
        self.sampled.get_or_insert(now);
    }

    /// Drops a closed room's meter.
    fn unmeter(&mut self, room: Uuid) {
        self.meters.remove(&room);
        if self.meters.is_empty() {
            self.sampled = None;
        }
    }

    /// A peer's connection panicked: log it, count it, drop the peer after this input.
    fn panicked(&mut self, key: PeerKey) {
        #[cfg(test)]
        self.faults.remove(&key);
        tracing::error!(room = %key.room, peer = %key.peer, "media peer panicked; dropping it");
        metrics::counter!("relay_peer_panics_total").increment(1);
        self.counters.panics += 1;
        self.doomed.push((key, Some(CloseReason::Panicked)));
    }

    /// Runs `f` on a peer, turning a panic into that peer's removal.
    fn guarded<R>(&mut self, key: PeerKey, f: impl FnOnce(&mut Peer) -> R) -> Option<R> {
        if !self.peers.contains_key(&key) {
            return None;
        }
        let fault = self.faulty(key);
        let peer = self.peers.get_mut(&key)?;
        let result = catch_unwind(AssertUnwindSafe(|| {
            if fault {
                panic!("injected fault in media peer");
            }
            f(peer)
        }));
        match result {
            Ok(r) => Some(r),
            Err(_) => {
                self.panicked(key);
                None
            }
        }
    }

    fn touch(&mut self, key: PeerKey) {
        if self.dirty_set.insert(key) {
            self.dirty.push_back(key);
        }
    }

    /// The one drain loop: polls every touched peer until str0m has nothing but a timeout left,
    /// handles the events, and repeats for peers those events touched.
    fn settle(&mut self, now: Instant) {
        loop {
            while let Some(key) = self.dirty.pop_front() {
                self.dirty_set.remove(&key);
                let mut events = Vec::new();
                let mut out = Vec::new();
                let subscriber = matches!(
                    self.peers.get(&key).map(|p| &p.role),
                    Some(Role::Subscriber(_))
                );
                let alive = self.guarded(key, |p| {
                    loop {
                        match p.rtc.poll_output() {
                            Ok(Output::Transmit(t)) => out.push(t),
                            Ok(Output::Timeout(t)) => {
                                p.timeout = t;
                                break;
                            }
                            Ok(Output::Event(e)) => events.push(e),
                            Err(e) => {
                                tracing::debug!(error = %e, "media peer failed");
                                p.rtc.disconnect();
                                break;
                            }
                        }
                    }
                    p.rtc.is_alive()
                });
                if subscriber {
                    let bytes: usize = out.iter().map(|t| t.contents.len()).sum();
                    self.counters.subscriber_packets += out.len() as u64;
                    self.counters.subscriber_bytes += bytes as u64;
                    metrics::counter!("relay_forwarded_packets_total").increment(out.len() as u64);
                    metrics::counter!("relay_forwarded_bytes_total").increment(bytes as u64);
                    if bytes > 0 {
                        self.meter(now, key.room, bytes);
                    }
                }
                self.transmits.append(&mut out);
                for e in events {
                    self.on_event(now, key, e);
                }
                if alive == Some(false) {
                    let closed = self.peers.get(&key).is_some_and(|p| p.remote_closed);
                    self.doomed
                        .push((key, (!closed).then_some(CloseReason::Failed)));
                }
            }
            if self.doomed.is_empty() {
                break;
            }
            for (key, reason) in std::mem::take(&mut self.doomed) {
                self.remove_peer(now, key, reason);
            }
        }
    }

    fn new_rtc(&self, now: Instant) -> Rtc {
        let mut builder = Rtc::builder()
            .set_send_buffer_video(self.config.send_buffer_video)
            .set_stats_interval(Some(self.config.stats_interval));
        if self.recording {
            builder = builder
                .enable_h264(false)
                .enable_h265(false)
                .enable_av1(false);
        }
        let mut rtc = builder.build(now);
        for addr in &self.config.candidates {
            if let Ok(c) = Candidate::host(*addr, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        rtc
    }

    fn reject(&mut self, key: PeerKey, reason: &'static str) {
        self.events.push(Event::Rejected { key, reason });
    }

    fn publish(
        &mut self,
        now: Instant,
        key: PeerKey,
        offer: &str,
        declared: Vec<(String, Source)>,
        allowed: Vec<Source>,
        record: Option<Uuid>,
    ) {
        let Ok(offer) = SdpOffer::from_sdp_string(offer) else {
            return self.reject(key, "the offer is not valid SDP");
        };
        self.ensure_peer(now, key, || Role::Publisher(Publisher::default()));
        let Some(Peer {
            role: Role::Publisher(p),
            ..
        }) = self.peers.get_mut(&key)
        else {
            return self.reject(key, "a subscribing connection cannot publish");
        };
        p.allowed = allowed;
        p.record = record;
        p.declared.extend(declared);
        let answer = self.guarded(key, |p| p.rtc.sdp_api().accept_offer(offer));
        match answer {
            Some(Ok(answer)) => {
                self.reach(now, key, Stage::Negotiated);
                self.events.push(Event::Answer {
                    key,
                    sdp: answer.to_sdp_string(),
                });
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "offer refused");
                self.reject(key, "the offer was refused");
            }
            None => {}
        }
        self.touch(key);
    }

    /// Creates the connection `key` in `role` unless it exists (in whatever role it has).
    fn ensure_peer(&mut self, now: Instant, key: PeerKey, role: impl FnOnce() -> Role) {
        if self.peers.contains_key(&key) {
            return;
        }
        let rtc = self.new_rtc(now);
        self.peers.insert(
            key,
            Peer {
                rtc,
                timeout: now,
                role: role(),
                created: now,
                stage: Stage::New,
                remote_closed: false,
            },
        );
        self.rooms.entry(key.room).or_default().insert(key);
        self.gauges();
    }

    fn subscribe(
        &mut self,
        now: Instant,
        key: PeerKey,
        sources: Option<Vec<Source>>,
        layer: Layer,
    ) {
        self.ensure_peer(now, key, || Role::Subscriber(Subscriber::default()));
        let Some(Peer {
            role: Role::Subscriber(s),
            ..
        }) = self.peers.get_mut(&key)
        else {
            return self.reject(key, "a publishing connection cannot subscribe");
        };
        s.sources = sources;
        let switching = s.layer != layer;
        s.layer = layer;
        // Open simulcast subscriptions now on another layer than the wanted one: they switch on
        // that layer's next keyframe, so ask for one now (throttled).
        let pause = self.config.layer_pause;
        let waiting: Vec<(TrackId, Rid)> = if switching {
            s.outs
                .iter()
                .filter(|o| matches!(o.state, OutState::Open(_)))
                .filter_map(|o| {
                    let target = self.tracks.get(&o.track)?.target(layer, now, pause)?;
                    (o.rid != Some(target)).then_some((o.track, target))
                })
                .collect()
        } else {
            Vec::new()
        };
        for (track, rid) in waiting {
            self.request_keyframe(now, track, Some(rid));
        }
        // Reconcile with every track of the room.
        let room_tracks: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.publisher.room == key.room)
            .map(|(id, _)| *id)
            .collect();
        for id in room_tracks {
            let wanted = self.wants(key, id);
            let has = self.tracks[&id].subscribers.contains(&key);
            if wanted && !has {
                self.attach(key, id);
            } else if !wanted && has {
                self.detach(key, id);
            }
        }
        self.negotiate(key);
    }

    fn wants(&self, sub: PeerKey, track: TrackId) -> bool {
        let (
            Some(Peer {
                role: Role::Subscriber(s),
                ..
            }),
            Some(t),
        ) = (self.peers.get(&sub), self.tracks.get(&track))
        else {
            return false;
        };
        t.publisher.room == sub.room
            && t.publisher != sub
            && s.sources.as_ref().is_none_or(|l| l.contains(&t.source))
    }

    fn attach(&mut self, sub: PeerKey, track: TrackId) {
        let Some(Peer {
            role: Role::Subscriber(s),
            ..
        }) = self.peers.get_mut(&sub)
        else {
            return;
        };
        s.outs.push(Out {
            track,
            state: OutState::ToOpen,
            rid: None,
            offset: 0,
            last: None,
            nacks: 0,
        });
        if let Some(t) = self.tracks.get_mut(&track) {
            t.subscribers.insert(sub);
        }
    }

    fn detach(&mut self, sub: PeerKey, track: TrackId) {
        if let Some(t) = self.tracks.get_mut(&track) {
            t.subscribers.remove(&sub);
        }
        let Some(Peer {
            role: Role::Subscriber(s),
            ..
        }) = self.peers.get_mut(&sub)
        else {
            return;
        };
        s.outs.retain_mut(|o| {
            if o.track != track {
                return true;
            }
            match o.state {
                OutState::ToOpen => false,
                OutState::Negotiating(m) | OutState::Open(m) => {
                    o.state = OutState::ToStop(m);
                    true
                }
                OutState::ToStop(_) | OutState::Stopping(_) => true,
            }
        });
    }

    /// Offers a subscriber its pending changes, unless an offer is already out.
    fn negotiate(&mut self, key: PeerKey) {
        let fault = self.faulty(key);
        let tracks = &self.tracks;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Role::Subscriber(s) = &mut peer.role else {
            return;
        };
        if s.pending.is_some() {
            return;
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            if fault {
                panic!("injected fault in media peer");
            }
            let mut change = peer.rtc.sdp_api();
            for o in &mut s.outs {
                match o.state {
                    OutState::ToOpen => {
                        let Some(t) = tracks.get(&o.track) else {
                            continue;
                        };
                        let mid = change.add_media(
                            t.kind,
                            Direction::SendOnly,
                            Some(t.publisher.peer.simple().to_string()),
                            Some(t.source.as_str().to_string()),
                            None,
                        );
                        o.state = OutState::Negotiating(mid);
                    }
                    OutState::ToStop(m) => {
                        change.stop_media(m);
                        o.state = OutState::Stopping(m);
                    }
                    _ => {}
                }
            }
            if !change.has_changes() {
                return None;
            }
            let (offer, pending) = change.apply()?;
            s.pending = Some(pending);
            let infos = s
                .outs
                .iter()
                .filter_map(|o| match o.state {
                    OutState::Negotiating(m) | OutState::Open(m) => {
                        let t = tracks.get(&o.track)?;
                        Some(TrackInfo {
                            mid: m.to_string(),
                            source: t.source,
                            publisher: t.publisher.peer,
                        })
                    }
                    _ => None,
                })
                .collect();
            Some(Event::Offer {
                key,
                sdp: offer.to_sdp_string(),
                tracks: infos,
            })
        }));
        match result {
            Ok(Some(e)) => self.events.push(e),
            Ok(None) => {}
            Err(_) => self.panicked(key),
        }
        self.touch(key);
    }

    fn answer(&mut self, now: Instant, key: PeerKey, answer: &str) {
        let Ok(answer) = SdpAnswer::from_sdp_string(&bundle_if_all_rejected(answer)) else {
            return self.reject(key, "the answer is not valid SDP");
        };
        let fault = self.faulty(key);
        let Some(Peer {
            rtc,
            role: Role::Subscriber(s),
            ..
        }) = self.peers.get_mut(&key)
        else {
            return self.reject(key, "no offer from the hub is waiting for an answer");
        };
        let Some(pending) = s.pending.take() else {
            return self.reject(key, "no offer from the hub is waiting for an answer");
        };
        let accepted = catch_unwind(AssertUnwindSafe(|| {
            if fault {
                panic!("injected fault in media peer");
            }
            rtc.sdp_api().accept_answer(pending, answer)
        }));
        match accepted {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "answer refused");
                // The offer is void: undo its states so the next offer redoes them.
                for o in &mut s.outs {
                    match o.state {
                        OutState::Negotiating(_) => o.state = OutState::ToOpen,
                        OutState::Stopping(m) => o.state = OutState::ToStop(m),
                        _ => {}
                    }
                }
                return self.reject(key, "the answer was refused");
            }
            Err(_) => return self.panicked(key),
        }
        let mut opened = Vec::new();
        self.reach(now, key, Stage::Negotiated);
        let Some(Peer {
            role: Role::Subscriber(s),
            ..
        }) = self.peers.get_mut(&key)
        else {
            return;
        };
        s.outs.retain_mut(|o| match o.state {
            OutState::Negotiating(m) => {
                o.state = OutState::Open(m);
                opened.push(o.track);
                true
            }
            OutState::Stopping(_) => false,
            _ => true,
        });
        // A new subscriber needs a keyframe to start decoding: ask once (throttled), of the
        // simulcast layer it will receive.
        let (layer, pause) = (s.layer, self.config.layer_pause);
        for track in opened {
            let rid = self
                .tracks
                .get(&track)
                .and_then(|t| t.target(layer, now, pause));
            self.request_keyframe(now, track, rid);
        }
        self.negotiate(key);
        self.touch(key);
    }

    /// Asks the publisher of `track` for a keyframe, at most once per interval per RID; a
    /// request inside the interval is remembered and sent when the interval ends.
    fn request_keyframe(&mut self, now: Instant, track: TrackId, rid: Option<Rid>) {
        let interval = self.config.keyframe_interval;
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        if t.kind != MediaKind::Video {
            return;
        }
        let th = t.throttles.entry(rid).or_default();
        if th.last.is_some_and(|l| now < l + interval) {
            if !th.pending {
                self.counters.keyframe_requests_throttled += 1;
                metrics::counter!("relay_keyframe_requests_throttled_total").increment(1);
            }
            th.pending = true;
            return;
        }
        let (publisher, mid) = (t.publisher, t.mid);
        let sent = self.guarded(publisher, |p| {
            p.rtc.writer(mid).is_some_and(|mut w| {
                // Fails while nothing of this RID arrived yet (a simulcast layer's stream is
                // known from its first packet); the first packet of the wanted layer asks again.
                w.request_keyframe(rid, KeyframeRequestKind::Pli).is_ok()
            })
        });
        if sent != Some(true) {
            return;
        }
        if let Some(th) = self
            .tracks
            .get_mut(&track)
            .and_then(|t| t.throttles.get_mut(&rid))
        {
            th.last = Some(now);
            th.pending = false;
        }
        self.counters.keyframe_requests_out += 1;
        metrics::counter!("relay_keyframe_requests_total").increment(1);
        self.touch(publisher);
    }

    fn on_event(&mut self, now: Instant, key: PeerKey, event: RtcEvent) {
        match event {
            RtcEvent::MediaAdded(m)
                if matches!(m.direction, Direction::RecvOnly | Direction::SendRecv) =>
            {
                // The layers the publisher sends; str0m states them from either side's view.
                let rids = m
                    .simulcast
                    .map(|sc| {
                        let layers = if sc.recv.is_empty() { sc.send } else { sc.recv };
                        layers.into_iter().map(|l| l.rid).collect()
                    })
                    .unwrap_or_default();
                self.track_added(key, m.mid, m.kind, rids);
            }
            RtcEvent::MediaChanged(m)
                if !matches!(m.direction, Direction::RecvOnly | Direction::SendRecv) =>
            {
                self.track_ended(key, m.mid);
            }
            RtcEvent::MediaData(data) => self.forward(now, key, data),
            RtcEvent::KeyframeRequest(req) => {
                self.counters.plis_in += 1;
                metrics::counter!("relay_plis_received_total").increment(1);
                let Some(Peer {
                    role: Role::Subscriber(s),
                    ..
                }) = self.peers.get(&key)
                else {
                    return;
                };
                let layer = s.layer;
                if let Some(o) = s.outs.iter().find(|o| o.state.mid() == Some(req.mid)) {
                    let (track, current) = (o.track, o.rid);
                    // The layer it receives, or the one it waits for.
                    let pause = self.config.layer_pause;
                    let rid = current.or_else(|| {
                        self.tracks
                            .get(&track)
                            .and_then(|t| t.target(layer, now, pause))
                    });
                    self.request_keyframe(now, track, rid);
                }
            }
            RtcEvent::MediaEgressStats(st) => {
                if let Some(Peer {
                    role: Role::Subscriber(s),
                    ..
                }) = self.peers.get_mut(&key)
                {
                    if let Some(o) = s.outs.iter_mut().find(|o| o.state.mid() == Some(st.mid)) {
                        let delta = st.nacks.saturating_sub(o.nacks);
                        o.nacks = st.nacks;
                        self.counters.nacks_in += delta;
                        metrics::counter!("relay_nacks_received_total").increment(delta);
                    }
                }
            }
            RtcEvent::IceConnectionStateChange(str0m::IceConnectionState::Disconnected) => {
                // Every candidate pair failed: the client went away without a goodbye (signaling
                // will normally say so too), or never answered a connectivity check.
                self.doomed.push((key, Some(CloseReason::IceLost)));
            }
            RtcEvent::IceConnectionStateChange(
                str0m::IceConnectionState::Connected | str0m::IceConnectionState::Completed,
            ) => self.reach(now, key, Stage::IceConnected),
            RtcEvent::Connected => self.reach(now, key, Stage::Connected),
            RtcEvent::Closed => {
                if let Some(p) = self.peers.get_mut(&key) {
                    p.remote_closed = true;
                }
            }
            _ => {}
        }
    }

    fn track_added(&mut self, key: PeerKey, mid: Mid, kind: MediaKind, rids: Vec<Rid>) {
        let Some(Peer {
            role: Role::Publisher(p),
            ..
        }) = self.peers.get_mut(&key)
        else {
            return;
        };
        if p.tracks.contains_key(&mid) {
            return;
        }
        let used: Vec<Source> = p
            .tracks
            .values()
            .filter_map(|id| self.tracks.get(id).map(|t| t.source))
            .collect();
        let source = match p.declared.get(&*mid) {
            Some(s) => Some(*s),
            // Undeclared: the first allowed, unused source of the right kind, in order.
            None => p
                .allowed
                .iter()
                .copied()
                .find(|s| s.is_audio() == (kind == MediaKind::Audio) && !used.contains(s)),
        };
        let Some(source) = source.filter(|s| p.allowed.contains(s) && !used.contains(s)) else {
            tracing::debug!(mid = %mid, "media not forwarded: source not allowed or taken");
            return;
        };
        let id = self.next_track;
        self.next_track += 1;
        let record = p.record.map(|session| (session, 0));
        p.tracks.insert(mid, id);
        self.tracks.insert(
            id,
            Track {
                publisher: key,
                mid,
                kind,
                source,
                subscribers: HashSet::new(),
                throttles: HashMap::new(),
                rids,
                seen: HashMap::new(),
                first_seen: None,
                record,
            },
        );
        let subs: Vec<PeerKey> = self
            .rooms
            .get(&key.room)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for sub in subs {
            if self.wants(sub, id) {
                self.attach(sub, id);
                self.negotiate(sub);
            }
        }
        self.gauges();
    }

    fn track_ended(&mut self, key: PeerKey, mid: Mid) {
        let Some(Peer {
            role: Role::Publisher(p),
            ..
        }) = self.peers.get_mut(&key)
        else {
            return;
        };
        let Some(id) = p.tracks.remove(&mid) else {
            return;
        };
        self.end_track(id);
    }

    fn end_track(&mut self, id: TrackId) {
        let Some(t) = self.tracks.get(&id) else {
            return;
        };
        if let (true, Some((session, _))) = (self.recording, t.record) {
            self.captures
                .push(crate::recording::Capture::Ended(record_ref(session, t)));
        }
        let subs: Vec<PeerKey> = t.subscribers.iter().copied().collect();
        for sub in subs {
            self.detach(sub, id);
            self.negotiate(sub);
        }
        self.tracks.remove(&id);
        self.gauges();
    }

    fn forward(&mut self, now: Instant, key: PeerKey, data: MediaData) {
        let Some(Peer {
            role: Role::Publisher(p),
            ..
        }) = self.peers.get(&key)
        else {
            return;
        };
        let Some(&id) = p.tracks.get(&data.mid) else {
            return;
        };
        self.reach(now, key, Stage::Flowing);
        if !data.contiguous {
            // Loss the publisher did not repair in time: the decoders downstream need a fresh
            // keyframe.
            self.request_keyframe(now, id, data.rid);
        }
        let Some(track) = self.tracks.get_mut(&id) else {
            return;
        };
        if let Some(rid) = data.rid {
            track.saw(rid, now);
        }
        let subs: Vec<PeerKey> = track.subscribers.iter().copied().collect();
        let keyframe = data.rid.is_some() && data.is_keyframe();
        let pause = self.config.layer_pause;
        // What each layer's subscribers should receive now (`None`: no simulcast declared).
        let targets = [Layer::High, Layer::Low].map(|l| track.target(l, now, pause));
        // Recorded: the best layer flowing, off the forwarding path (a queue that never waits).
        if let (true, Some((session, seq))) = (self.recording, &mut track.record) {
            let best = data.rid.is_none() || targets[0].is_none() || data.rid == targets[0];
            if let (true, Some(codec)) = (best, recorded_codec(data.params.spec().codec)) {
                let capture = crate::recording::Capture::Frame {
                    track: crate::recording::TrackRef {
                        session_id: *session,
                        room: track.publisher.room,
                        publisher: track.publisher.peer,
                        mid: track.mid.to_string(),
                        source: track.source,
                    },
                    seq: *seq,
                    codec,
                    rtp_time: data.time.numer(),
                    clock_rate: u64::from(data.time.frequency().get()),
                    keyframe: codec.is_audio() || data.is_keyframe(),
                    rid: data.rid.map(|r| r.to_string()),
                    data: data.data.clone(),
                };
                *seq += 1;
                self.captures.push(capture);
            }
        }
        let mut want_keyframe = false;
        for sub in subs {
            let fault = self.faulty(sub);
            let Some(peer) = self.peers.get_mut(&sub) else {
                continue;
            };
            let (rtc, written_before) = (&mut peer.rtc, peer.stage == Stage::Flowing);
            let Role::Subscriber(s) = &mut peer.role else {
                continue;
            };
            let layer = s.layer;
            let Some(o) = s.outs.iter_mut().find(|o| o.track == id) else {
                continue;
            };
            let OutState::Open(mid) = o.state else {
                continue;
            };
            if let Some(rid) = data.rid {
                // Simulcast: forward one layer; the current one keeps flowing until a keyframe
                // of the wanted one arrives, and only then does the subscriber switch.
                if o.rid != Some(rid) {
                    let target = match layer {
                        Layer::High => targets[0],
                        Layer::Low => targets[1],
                    };
                    let wanted = match target {
                        Some(target) => rid == target,
                        // No layers declared: start on any, never flap between them.
                        None => o.rid.is_none(),
                    };
                    if !wanted {
                        continue;
                    }
                    if !keyframe {
                        want_keyframe = true;
                        continue;
                    }
                    o.offset = switch_offset(o.last, &data);
                    o.rid = Some(rid);
                }
            }
            let time = shifted(data.time, o.offset);
            o.last = Some((time.numer(), data.network_time));
            let result = catch_unwind(AssertUnwindSafe(|| {
                if fault {
                    panic!("injected fault in media peer");
                }
                let Some(writer) = rtc.writer(mid) else {
                    return Ok(false);
                };
                let Some(pt) = writer.match_params(data.params) else {
                    return Ok(false);
                };
                writer
                    .write(pt, data.network_time, time, data.data.clone())
                    .map(|()| true)
            }));
            match result {
                Ok(Ok(true)) => {
                    self.counters.forwarded_frames += 1;
                    metrics::counter!("relay_forwarded_frames_total").increment(1);
                    if !written_before {
                        self.reach(now, sub, Stage::Flowing);
                    }
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "write to subscriber failed"),
                Err(_) => self.panicked(sub),
            }
            self.touch(sub);
        }
        if want_keyframe {
            // Some subscriber waits for a keyframe of this packet's layer to switch to it.
            self.request_keyframe(now, id, data.rid);
        }
    }

    /// Records that `key` reached `stage` of its setup.
    fn reach(&mut self, now: Instant, key: PeerKey, stage: Stage) {
        if let Some(p) = self.peers.get_mut(&key) {
            p.reached(now, stage);
        }
    }

    /// Frees everything a peer held: its connection, its tracks (ended for every subscriber),
    /// its subscriptions and its routes. `reason` is `None` when the client left; otherwise the
    /// relay closed it, and says so to the client and in the log.
    fn remove_peer(&mut self, now: Instant, key: PeerKey, reason: Option<CloseReason>) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        let (role, stage) = (peer.role_label(), peer.stage);
        metrics::counter!(
            "relay_peers_closed_total",
            "role" => role,
            "reason" => reason.map_or("left", CloseReason::as_str),
            "stage" => stage.as_str(),
        )
        .increment(1);
        if let Some(reason) = reason {
            tracing::warn!(
                room = %key.room,
                peer = %key.peer,
                role,
                stage = stage.as_str(),
                age_ms = now.saturating_duration_since(peer.created).as_millis() as u64,
                reason = reason.as_str(),
                "relay closed a media connection",
            );
            self.events.push(Event::Closed { key, reason });
        }
        match peer.role {
            Role::Publisher(p) => {
                for id in p.tracks.into_values() {
                    self.end_track(id);
                }
            }
            Role::Subscriber(s) => {
                for o in s.outs {
                    if let Some(t) = self.tracks.get_mut(&o.track) {
                        t.subscribers.remove(&key);
                    }
                }
            }
        }
        self.routes.retain(|_, k| *k != key);
        if let Some(room) = self.rooms.get_mut(&key.room) {
            room.remove(&key);
            if room.is_empty() {
                self.rooms.remove(&key.room);
                self.unmeter(key.room);
            }
        }
        if self.dirty_set.remove(&key) {
            self.dirty.retain(|k| *k != key);
        }
        #[cfg(test)]
        self.faults.remove(&key);
        self.gauges();
    }

    fn gauges(&self) {
        let s = self.stats();
        metrics::gauge!("relay_publishers").set(s.publishers as f64);
        metrics::gauge!("relay_subscribers").set(s.subscribers as f64);
        metrics::gauge!("relay_tracks").set(s.tracks as f64);
    }
}
