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
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::{Candidate, Event as RtcEvent, Input, Output, Rtc};
use uuid::Uuid;

use super::{Command, Event, Layer, PeerKey, Source, TrackInfo};

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
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            candidates: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            keyframe_interval: Duration::from_secs(1),
            send_buffer_video: 1000,
            stats_interval: Duration::from_secs(1),
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
    /// Peers whose connection broke or panicked, removed after the current input.
    doomed: Vec<PeerKey>,
    transmits: Vec<Transmit>,
    events: Vec<Event>,
    counters: RelayCounters,
}

fn rid_layer(rid: Rid) -> Layer {
    match &*rid {
        "l" | "q" | "lo" | "low" => Layer::Low,
        _ => Layer::High,
    }
}

impl Relay {
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
            counters: RelayCounters::default(),
        }
    }

    /// Counts of what the relay holds.
    pub fn stats(&self) -> RelayStats {
        let mut s = RelayStats {
            tracks: self.tracks.len(),
            rooms: self.rooms.len(),
            routes: self.routes.len(),
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

    /// The earliest time [`Relay::timeout`] must be called.
    pub fn next_timeout(&self) -> Option<Instant> {
        let peers = self.peers.values().map(|p| p.timeout);
        let throttles = self.tracks.values().flat_map(|t| {
            t.throttles
                .values()
                .filter(|th| th.pending)
                .filter_map(|th| th.last.map(|l| l + self.config.keyframe_interval))
        });
        peers.chain(throttles).min()
    }

    /// Handles a command from the hub.
    pub fn command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Publish {
                key,
                offer,
                declared,
                allowed,
            } => self.publish(now, key, &offer, declared, allowed),
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
            Command::Leave { key } => self.remove_peer(key),
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
            self.doomed.push(key);
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
                self.doomed.push(key);
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
    }

    /// Runs `f` on a peer, turning a panic into that peer's removal.
    fn guarded<R>(&mut self, key: PeerKey, f: impl FnOnce(&mut Peer) -> R) -> Option<R> {
        let peer = self.peers.get_mut(&key)?;
        match catch_unwind(AssertUnwindSafe(|| f(peer))) {
            Ok(r) => Some(r),
            Err(_) => {
                tracing::error!(room = %key.room, peer = %key.peer, "media peer panicked; dropping it");
                metrics::counter!("relay_peer_panics_total").increment(1);
                self.counters.panics += 1;
                self.doomed.push(key);
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
                }
                self.transmits.append(&mut out);
                for e in events {
                    self.on_event(now, key, e);
                }
                if alive == Some(false) {
                    self.doomed.push(key);
                }
            }
            if self.doomed.is_empty() {
                break;
            }
            for key in std::mem::take(&mut self.doomed) {
                self.remove_peer(key);
            }
        }
    }

    fn new_rtc(&self, now: Instant) -> Rtc {
        let mut rtc = Rtc::builder()
            .set_send_buffer_video(self.config.send_buffer_video)
            .set_stats_interval(Some(self.config.stats_interval))
            .build(now);
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
    ) {
        let Ok(offer) = SdpOffer::from_sdp_string(offer) else {
            return self.reject(key, "the offer is not valid SDP");
        };
        if !self.peers.contains_key(&key) {
            let rtc = self.new_rtc(now);
            self.peers.insert(
                key,
                Peer {
                    rtc,
                    timeout: now,
                    role: Role::Publisher(Publisher::default()),
                },
            );
            self.rooms.entry(key.room).or_default().insert(key);
            self.gauges();
        }
        let Some(Peer {
            role: Role::Publisher(p),
            ..
        }) = self.peers.get_mut(&key)
        else {
            return self.reject(key, "a subscribing connection cannot publish");
        };
        p.allowed = allowed;
        p.declared.extend(declared);
        let answer = self.guarded(key, |p| p.rtc.sdp_api().accept_offer(offer));
        match answer {
            Some(Ok(answer)) => self.events.push(Event::Answer {
                key,
                sdp: answer.to_sdp_string(),
            }),
            Some(Err(e)) => {
                tracing::debug!(error = %e, "offer refused");
                self.reject(key, "the offer was refused");
            }
            None => {}
        }
        self.touch(key);
    }

    fn subscribe(
        &mut self,
        now: Instant,
        key: PeerKey,
        sources: Option<Vec<Source>>,
        layer: Layer,
    ) {
        if !self.peers.contains_key(&key) {
            let rtc = self.new_rtc(now);
            self.peers.insert(
                key,
                Peer {
                    rtc,
                    timeout: now,
                    role: Role::Subscriber(Subscriber::default()),
                },
            );
            self.rooms.entry(key.room).or_default().insert(key);
            self.gauges();
        }
        let Some(Peer {
            role: Role::Subscriber(s),
            ..
        }) = self.peers.get_mut(&key)
        else {
            return self.reject(key, "a publishing connection cannot subscribe");
        };
        s.sources = sources;
        s.layer = layer;
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
            Err(_) => {
                self.counters.panics += 1;
                self.doomed.push(key);
            }
        }
        self.touch(key);
    }

    fn answer(&mut self, now: Instant, key: PeerKey, answer: &str) {
        let Ok(answer) = SdpAnswer::from_sdp_string(answer) else {
            return self.reject(key, "the answer is not valid SDP");
        };
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
            Err(_) => {
                self.counters.panics += 1;
                self.doomed.push(key);
                return;
            }
        }
        let mut opened = Vec::new();
        s.outs.retain_mut(|o| match o.state {
            OutState::Negotiating(m) => {
                o.state = OutState::Open(m);
                opened.push(o.track);
                true
            }
            OutState::Stopping(_) => false,
            _ => true,
        });
        // A new subscriber needs a keyframe to start decoding: ask once (throttled).
        for track in opened {
            self.request_keyframe(now, track, None);
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
        th.last = Some(now);
        th.pending = false;
        let (publisher, mid) = (t.publisher, t.mid);
        self.counters.keyframe_requests_out += 1;
        metrics::counter!("relay_keyframe_requests_total").increment(1);
        self.guarded(publisher, |p| {
            if let Some(mut w) = p.rtc.writer(mid) {
                // Fails only when the RID is unknown to this media; then there is nobody to ask.
                let _ = w.request_keyframe(rid, KeyframeRequestKind::Pli);
            }
        });
        self.touch(publisher);
    }

    fn on_event(&mut self, now: Instant, key: PeerKey, event: RtcEvent) {
        match event {
            RtcEvent::MediaAdded(m)
                if matches!(m.direction, Direction::RecvOnly | Direction::SendRecv) =>
            {
                self.track_added(key, m.mid, m.kind);
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
                if let Some(o) = s.outs.iter().find(|o| o.state.mid() == Some(req.mid)) {
                    let (track, rid) = (o.track, o.rid);
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
                // The client went away without a goodbye; signaling will normally say so too.
                self.doomed.push(key);
            }
            _ => {}
        }
    }

    fn track_added(&mut self, key: PeerKey, mid: Mid, kind: MediaKind) {
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
        if !data.contiguous {
            // Loss the publisher did not repair in time: the decoders downstream need a fresh
            // keyframe.
            self.request_keyframe(now, id, data.rid);
        }
        let Some(track) = self.tracks.get(&id) else {
            return;
        };
        let subs: Vec<PeerKey> = track.subscribers.iter().copied().collect();
        let keyframe = data.rid.is_some() && data.is_keyframe();
        let mut want_keyframe = false;
        for sub in subs {
            let Some(Peer {
                rtc,
                role: Role::Subscriber(s),
                ..
            }) = self.peers.get_mut(&sub)
            else {
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
                // Simulcast: forward one layer; switch only on a keyframe of the wanted one.
                let wanted = rid_layer(rid) == layer;
                if o.rid != Some(rid) {
                    if keyframe && (wanted || o.rid.is_none()) {
                        o.rid = Some(rid);
                    } else {
                        if wanted {
                            want_keyframe = true;
                        }
                        continue;
                    }
                }
            }
            let result = catch_unwind(AssertUnwindSafe(|| {
                let Some(writer) = rtc.writer(mid) else {
                    return Ok(false);
                };
                let Some(pt) = writer.match_params(data.params) else {
                    return Ok(false);
                };
                writer
                    .write(pt, data.network_time, data.time, data.data.clone())
                    .map(|()| true)
            }));
            match result {
                Ok(Ok(true)) => {
                    self.counters.forwarded_frames += 1;
                    metrics::counter!("relay_forwarded_frames_total").increment(1);
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "write to subscriber failed"),
                Err(_) => {
                    self.counters.panics += 1;
                    self.doomed.push(sub);
                }
            }
            self.touch(sub);
        }
        if want_keyframe {
            if let Some(rid) = data.rid {
                let wanted_rid = self.other_layer_rid(id, rid);
                self.request_keyframe(now, id, wanted_rid);
            }
        }
    }

    /// The RID to ask a keyframe of when a subscriber waits to switch to `rid`'s layer.
    fn other_layer_rid(&self, _track: TrackId, rid: Rid) -> Option<Rid> {
        Some(rid)
    }

    /// Frees everything a peer held: its connection, its tracks (ended for every subscriber),
    /// its subscriptions and its routes.
    fn remove_peer(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
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
            }
        }
        if self.dirty_set.remove(&key) {
            self.dirty.retain(|k| *k != key);
        }
        self.gauges();
    }

    fn gauges(&self) {
        let s = self.stats();
        metrics::gauge!("relay_publishers").set(s.publishers as f64);
        metrics::gauge!("relay_subscribers").set(s.subscribers as f64);
        metrics::gauge!("relay_tracks").set(s.tracks as f64);
    }
}
