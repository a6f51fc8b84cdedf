//! The hub's sans-IO core: every room's membership, the live device of each (session, role),
//! the proctors watching each exam, the last view of each session and device liveness.
//!
//! Inputs are method calls with the time passed in ([`Now`]); outputs are [`Output`]s queued
//! inside and taken with [`Core::drain`]: deliver a frame to a peer, close a peer, store work
//! ([`Effect`]), a command for the media relay. The core never reads a clock, touches a socket
//! or awaits; the actor in `mod.rs` is the one place that executes outputs, and the unit tests
//! (`core/tests.rs`) drive the core on a virtual clock.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use signaling::{
    encode_server, CloseCode, DeviceState, ExamId, Liveness, MediaLayer, OfferedTrack, PeerId,
    PeerInfo, PeerRef, Role, RoomId, ServerMessage, SessionId, SessionStatus, SessionView, Signal,
    SignalData, SignalKind, Subscribe, TrackSource, UserId,
};
use uuid::Uuid;

use super::resume::Replay;
use super::{ice, Effect, HubStats, JoinError, Principal, ResumeClaim, SessionFact, SignalError};
use crate::config::IceConfig;
use crate::relay::{self, PeerKey, Source};
use crate::state::HubSignal;
use crate::store::sessions_lookup::SessionFacts;
use rooms::{Device, LivenessChange, LivenessKey, LivenessState, Rooms};

#[cfg(test)]
mod tests;

/// The time of an input: monotonic for deadlines, wall-clock for what is stored or shown.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time (deadlines, resume windows).
    pub at: Instant,
    /// Wall-clock time (event timestamps, TURN credentials).
    pub wall: DateTime<Utc>,
}

impl Now {
    /// The real time, read by the actor (never by the core).
    pub fn real() -> Now {
        Now {
            at: Instant::now(),
            wall: Utc::now(),
        }
    }
}

/// What the core asks its driver to do.
#[derive(Debug)]
pub enum Output {
    /// Queue a frame, numbered `seq` for a resume, on the peer's socket.
    Deliver {
        /// The addressee.
        peer: PeerId,
        /// The encoded message.
        frame: Arc<str>,
        /// Its number in the peer's resume ring.
        seq: u64,
        /// When the message that caused it arrived (relay latency metrics).
        since: Option<Instant>,
    },
    /// Queue an unnumbered reply (an `error` answering the peer's own message).
    Reply {
        /// The addressee.
        peer: PeerId,
        /// The encoded message.
        frame: Arc<str>,
    },
    /// Close the peer's socket.
    Close {
        /// Whose.
        peer: PeerId,
        /// Why.
        code: CloseCode,
    },
    /// A resume took the peer over while its old socket was still open: that socket goes
    /// (closed with `code`) and the peer lives on without a socket until it reattaches.
    Displace {
        /// Whose old socket.
        peer: PeerId,
        /// Why.
        code: CloseCode,
    },
    /// The peer is gone from the hub: forget its socket.
    Release {
        /// Which.
        peer: PeerId,
    },
    /// Store work.
    Effect(Effect),
    /// A command for the media relay (a leave: nothing answers it).
    Relay(relay::Command),
}

struct PeerEntry {
    principal: Principal,
    watching: HashSet<Uuid>,
    /// The (session, device) this peer is the live connection of.
    device: Option<(Uuid, Device)>,
    /// What this peer was sent, numbered, for a resume (a cell: delivering is a read of the
    /// core's maps, and fan-outs deliver while iterating them).
    replay: RefCell<Replay>,
    /// Its resume token.
    resume_token: String,
    /// While its socket is gone: until when it may come back.
    detached_until: Option<Instant>,
    /// A close asked for while detached, applied when it comes back.
    pending_close: Cell<Option<CloseCode>>,
}

/// How long a claimed resume may take to reattach before the peer is let go.
pub const REATTACH_DEADLINE: Duration = Duration::from_secs(10);

/// The hub's state and rules, without I/O.
pub struct Core {
    peers: HashMap<PeerId, PeerEntry>,
    /// Membership and signalling rules (the `rooms` crate).
    rooms: Rooms,
    devices: HashMap<(Uuid, Device), PeerId>,
    watchers: HashMap<Uuid, HashSet<PeerId>>,
    users: HashMap<Uuid, HashSet<PeerId>>,
    /// Last known view of each session some watcher or device cares about.
    views: HashMap<Uuid, (Uuid, SessionView)>,
    /// Heartbeat deadlines (the `rooms` crate), fed with time since `origin`.
    liveness: rooms::Liveness,
    /// The zero of the liveness clock.
    origin: Instant,
    /// STUN/TURN configuration for `joined`.
    ice: IceConfig,
    /// Whether a media relay runs (the core decides who may publish or subscribe).
    relay: bool,
    /// Rooms whose media is recorded → their session.
    recorded: HashMap<Uuid, Uuid>,
    /// Resume token → its peer.
    resume_tokens: HashMap<String, PeerId>,
    /// How long a dropped peer is kept for a resume (zero: not at all).
    resume_window: Duration,
    /// What the driver has to do.
    out: RefCell<Vec<Output>>,
}

impl Core {
    /// An empty hub whose liveness clock starts at `origin`.
    pub fn new(
        origin: Instant,
        heartbeat_interval: Duration,
        resume_window: Duration,
        ice: IceConfig,
        relay: bool,
    ) -> Core {
        Core {
            peers: HashMap::new(),
            rooms: Rooms::new(),
            devices: HashMap::new(),
            watchers: HashMap::new(),
            users: HashMap::new(),
            views: HashMap::new(),
            liveness: rooms::Liveness::with_heartbeat_interval(heartbeat_interval),
            origin,
            ice,
            relay,
            recorded: HashMap::new(),
            resume_tokens: HashMap::new(),
            resume_window,
            out: RefCell::new(Vec::new()),
        }
    }

    /// Takes what the driver has to do, in order.
    pub fn drain(&mut self) -> Vec<Output> {
        std::mem::take(self.out.get_mut())
    }

    fn emit(&self, o: Output) {
        self.out.borrow_mut().push(o);
    }

    fn effect(&self, e: Effect) {
        self.emit(Output::Effect(e));
    }

    /// Current counts (the relay's are the driver's to add).
    pub fn stats(&self) -> HubStats {
        HubStats {
            peers: self.peers.len(),
            rooms: self.rooms.room_count(),
            devices: self.devices.len(),
            watched_exams: self.watchers.len(),
            relay: relay::RelayStats::default(),
        }
    }

    /// True while the hub holds `peer` (attached or waiting for a resume).
    pub fn has_peer(&self, peer: PeerId) -> bool {
        self.peers.contains_key(&peer)
    }

    /// Every peer, for the shutdown close.
    pub fn close_all(&self, code: CloseCode) {
        for id in self.peers.keys() {
            self.close(*id, code);
        }
    }

    /// Closes a peer's socket; while it is detached, the close waits for the resume (after the
    /// messages it missed, e.g. `session-ended`).
    fn close(&self, peer: PeerId, code: CloseCode) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        if p.detached_until.is_some() {
            if p.pending_close.get().is_none() {
                p.pending_close.set(Some(code));
            }
        } else {
            self.emit(Output::Close { peer, code });
        }
    }

    /// The routing seam: numbers and keeps a frame for a peer, and has it queued on the
    /// peer's socket unless the socket is gone.
    fn deliver(&self, peer: PeerId, frame: Arc<str>, since: Option<Instant>) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let seq = p.replay.borrow_mut().record(&frame);
        if p.detached_until.is_none() {
            self.emit(Output::Deliver {
                peer,
                frame,
                seq,
                since,
            });
        }
    }

    /// Answers a refused `signal` on the sender's own socket: a forbidden one closes it
    /// (4507), the others get an `error` frame.
    pub fn refuse(&self, peer: PeerId, e: SignalError) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        let (code, message) = match e {
            SignalError::NotInRoom | SignalError::NotAllowed => {
                return self.close(peer, CloseCode::Forbidden);
            }
            SignalError::UnknownPeer => ("PEER_NOT_FOUND", "no such peer in this room"),
            SignalError::NoRelay => (
                "RELAY_UNAVAILABLE",
                "the media relay is not enabled on this hub or is overloaded",
            ),
            SignalError::MediaForbidden => (
                "MEDIA_FORBIDDEN",
                "this role may not do that with the media relay",
            ),
        };
        self.emit(Output::Reply {
            peer,
            frame: encode(&ServerMessage::error(code, message)),
        });
    }

    /// A socket authenticated; a phone is bound to its session at once.
    pub fn register(&mut self, principal: Principal, resume_token: String, now: Now) {
        let peer = principal.peer_id;
        self.users
            .entry(principal.user_id)
            .or_default()
            .insert(peer);
        let phone_session = principal
            .session_id
            .filter(|_| principal.role == Role::Mobile);
        self.peers.insert(
            peer,
            PeerEntry {
                principal,
                watching: HashSet::new(),
                device: None,
                replay: RefCell::new(Replay::default()),
                resume_token: resume_token.clone(),
                detached_until: None,
                pending_close: Cell::new(None),
            },
        );
        self.resume_tokens.insert(resume_token, peer);
        if let Some(session) = phone_session {
            self.bind_device(peer, session, Device::Mobile, now);
        }
        metrics::gauge!("hub_peers").set(self.peers.len() as f64);
    }

    /// Makes `peer` the live connection of (session, device); an older one gets 4504.
    fn bind_device(&mut self, peer: PeerId, session: Uuid, device: Device, now: Now) {
        if let Some(old) = self.devices.insert((session, device), peer) {
            if old != peer {
                if let Some(o) = self.peers.get_mut(&old) {
                    o.device = None;
                }
                self.close(old, CloseCode::Replaced);
                self.effect(Effect::SystemEvent {
                    at: now.wall,
                    session_id: session,
                    event_type: "DUPLICATE_CONNECTION",
                    severity: 3,
                    meta: Some(serde_json::json!({
                        "device": device_str(device),
                        "replacedPeer": old.to_string(),
                        "peer": peer.to_string(),
                    })),
                });
            }
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.device = Some((session, device));
        }
        self.effect(Effect::SocketId {
            session_id: session,
            device,
            peer: Some(peer),
        });
    }

    /// The socket dropped without a goodbye: the peer is kept for the resume window.
    pub fn detach(&mut self, peer: PeerId, now: Now) {
        if self.resume_window.is_zero() {
            return self.unregister(peer);
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.detached_until = Some(now.at + self.resume_window);
        metrics::counter!("hub_ws_detached_total").increment(1);
    }

    /// Lets go of the peers whose resume window passed.
    pub fn expire_detached(&mut self, now: Now) {
        let expired: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.detached_until.is_some_and(|t| t <= now.at))
            .map(|(id, _)| *id)
            .collect();
        for peer in expired {
            metrics::counter!("hub_ws_resume_expired_total").increment(1);
            self.unregister(peer);
        }
    }

    /// A new socket of the same user and role names a peer's resume token: the peer is held
    /// for it if it can replay everything after `last_seq`. A peer still attached (its old
    /// socket has not noticed the drop yet) is taken over: the old socket is displaced.
    pub fn claim_resume(&mut self, claim: &ResumeClaim, now: Now) -> Option<PeerId> {
        let peer = *self.resume_tokens.get(&claim.token)?;
        let p = self.peers.get_mut(&peer)?;
        let same_owner = p.principal.user_id == claim.user_id && p.principal.role == claim.role;
        if !same_owner || p.replay.borrow().after(claim.last_seq).is_none() {
            metrics::counter!("hub_ws_resume_refused_total").increment(1);
            return None;
        }
        if p.detached_until.is_none() {
            self.out.get_mut().push(Output::Displace {
                peer,
                code: CloseCode::Replaced,
            });
        }
        p.detached_until = Some(now.at + REATTACH_DEADLINE);
        Some(peer)
    }

    /// The claimed peer continues on a new socket: what it missed after `last_seq`, then any
    /// close asked for meanwhile. False when the peer was let go meanwhile.
    pub fn reattach(&mut self, peer: PeerId, last_seq: u64) -> bool {
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        p.detached_until = None;
        let missed = p.replay.borrow().after(last_seq).unwrap_or_default();
        let out = self.out.get_mut();
        for (seq, frame) in missed {
            out.push(Output::Deliver {
                peer,
                frame,
                seq,
                since: None,
            });
        }
        if let Some(code) = p.pending_close.take() {
            out.push(Output::Close { peer, code });
        }
        metrics::counter!("hub_ws_resumed_total").increment(1);
        true
    }

    /// The peer is gone for good: it leaves every room and watch.
    pub fn unregister(&mut self, peer: PeerId) {
        let Some(entry) = self.peers.remove(&peer) else {
            return;
        };
        self.emit(Output::Release { peer });
        self.resume_tokens.remove(&entry.resume_token);
        for room in self.rooms.rooms_of(peer.as_uuid().into()).to_vec() {
            self.relay_leave(peer, room.into());
        }
        for presence in self.rooms.leave_all(peer.as_uuid().into()) {
            self.announce(presence);
        }
        for exam in &entry.watching {
            self.drop_watcher(peer, *exam);
        }
        if let Some(key) = entry.device {
            if self.devices.get(&key) == Some(&peer) {
                self.devices.remove(&key);
                self.effect(Effect::SocketId {
                    session_id: key.0,
                    device: key.1,
                    peer: None,
                });
            }
        }
        if let Some(set) = self.users.get_mut(&entry.principal.user_id) {
            set.remove(&peer);
            if set.is_empty() {
                self.users.remove(&entry.principal.user_id);
            }
        }
        self.forget_unused_views();
        metrics::gauge!("hub_peers").set(self.peers.len() as f64);
    }

    /// Delivers a presence change (`peer-joined` / `peer-left`) to its recipients.
    fn announce(&self, presence: rooms::Presence) {
        let msg = match presence.event {
            rooms::PresenceEvent::PeerJoined { room_id, member } => ServerMessage::PeerJoined {
                room_id: RoomId::from_uuid(room_id.into()),
                peer_id: peer_of(member.peer_id),
                role: member.role,
                user_id: UserId::from_uuid(member.user_id.into()),
            },
            rooms::PresenceEvent::PeerLeft { room_id, peer_id } => ServerMessage::PeerLeft {
                room_id: RoomId::from_uuid(room_id.into()),
                peer_id: peer_of(peer_id),
            },
        };
        let frame = encode(&msg);
        for r in presence.recipients {
            self.deliver(peer_of(r), frame.clone(), None);
        }
    }

    /// Stops `peer` watching `exam`.
    pub fn unwatch(&mut self, peer: PeerId, exam: Uuid) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.watching.remove(&exam);
        }
        self.drop_watcher(peer, exam);
    }

    fn drop_watcher(&mut self, peer: PeerId, exam: Uuid) {
        if let Some(set) = self.watchers.get_mut(&exam) {
            set.remove(&peer);
            if set.is_empty() {
                self.watchers.remove(&exam);
            }
        }
    }

    /// Joins the room of `facts`' session; the reply is the `joined` message.
    pub fn join(
        &mut self,
        peer: PeerId,
        facts: &SessionFacts,
        now: Now,
    ) -> Result<ServerMessage, JoinError> {
        let Some(entry) = self.peers.get(&peer) else {
            return Err(JoinError::Forbidden);
        };
        let p = &entry.principal;
        // A laptop's token is not bound to a session: it binds to the room's session here,
        // and the rooms crate then checks that the session is this candidate's.
        let session = match p.role {
            Role::Candidate => Some(facts.id),
            Role::Mobile => p.session_id,
            Role::Admin | Role::Proctor => None,
        };
        let principal = rooms::Principal::new(p.user_id.into(), p.role, session.map(Into::into))
            .map_err(|_| JoinError::Forbidden)?;
        let info = rooms::RoomInfo {
            room_id: facts.webrtc_room_id.into(),
            session_id: facts.id.into(),
            exam_id: facts.exam_id.into(),
            candidate_id: facts.candidate_id.into(),
        };
        // Decide admission before touching anything, so a refused join changes nothing.
        rooms::Room::new(info)
            .admits(&principal)
            .map_err(|_| JoinError::Forbidden)?;
        if !facts.is_open && !p.role.is_staff() {
            return Err(JoinError::SessionEnded);
        }
        let role = p.role;
        // A media-check room has no session: its socket is no session's laptop.
        if role == Role::Candidate && !facts.media_check {
            self.bind_device(peer, facts.id, Device::Laptop, now);
        }
        let joined = self
            .rooms
            .join(peer.as_uuid().into(), &principal, info)
            .map_err(|_| JoinError::Forbidden)?;
        if let Some(old) = joined.replaced {
            self.relay_leave(peer_of(old), facts.webrtc_room_id);
            // Already closed with 4504 by `bind_device`; make sure of it.
            self.close(peer_of(old), CloseCode::Replaced);
        }
        for presence in joined.presence {
            self.announce(presence);
        }
        self.views
            .entry(facts.id)
            .or_insert_with(|| (facts.exam_id, default_view(facts.id)));
        if facts.record_media && !facts.media_check {
            self.recorded.insert(facts.webrtc_room_id, facts.id);
        }
        Ok(ServerMessage::Joined {
            room_id: RoomId::from_uuid(facts.webrtc_room_id),
            peers: joined
                .peers
                .iter()
                .map(|m| PeerInfo {
                    peer_id: peer_of(m.peer_id),
                    role: m.role,
                    user_id: UserId::from_uuid(m.user_id.into()),
                })
                .collect(),
            ice_servers: ice::ice_servers(&self.ice, peer, now.wall.timestamp()),
        })
    }

    /// Leaves a room.
    pub fn leave(&mut self, peer: PeerId, room: Uuid) {
        if let Ok(presence) = self.rooms.leave(peer.as_uuid().into(), room.into()) {
            self.relay_leave(peer, room);
            if let Some(presence) = presence {
                self.announce(presence);
            }
        }
    }

    /// Tells the relay that `peer` left `room`: it frees what the peer held and ends the
    /// peer's published tracks for every subscriber.
    fn relay_leave(&self, peer: PeerId, room: Uuid) {
        if self.relay {
            let key = PeerKey {
                room,
                peer: peer.as_uuid(),
            };
            self.emit(Output::Relay(relay::Command::Leave { key }));
        }
    }

    fn in_room(&self, peer: PeerId, room: Uuid) -> bool {
        self.rooms
            .room(room.into())
            .is_some_and(|r| r.contains(peer.as_uuid().into()))
    }

    /// A `signal` from `from`: relayed to a peer of the same room (stamped with `from`), or,
    /// addressed to `"hub"`, turned into the relay command the driver must send (`Some`).
    pub fn signal(
        &mut self,
        from: PeerId,
        signal: Signal,
        received: Instant,
    ) -> Result<Option<relay::Command>, SignalError> {
        let room_id = signal.room_id.as_uuid();
        let to = match signal.to {
            PeerRef::Hub => {
                if !self.in_room(from, room_id) {
                    return Err(SignalError::NotInRoom);
                }
                return self.signal_hub(from, room_id, &signal.data);
            }
            PeerRef::Peer(p) => p,
        };
        match self
            .rooms
            .check_signal(from.as_uuid().into(), room_id.into(), to.as_uuid().into())
        {
            Ok(_) => {}
            Err(rooms::RoomError::PeerNotInRoom(_)) => return Err(SignalError::UnknownPeer),
            Err(rooms::RoomError::NotInRoom(_)) => return Err(SignalError::NotInRoom),
            Err(_) => return Err(SignalError::NotAllowed),
        }
        let frame = encode(&ServerMessage::Signal {
            room_id: signal.room_id,
            from: PeerRef::Peer(from),
            data: signal.data,
        });
        self.deliver(to, frame, Some(received));
        metrics::counter!("hub_signals_relayed_total").increment(1);
        Ok(None)
    }

    /// A `signal` to the media relay. The core decides here, by role, what each peer may do:
    /// laptops and phones publish (offer), staff subscribe (answer); everyone trickles ICE.
    fn signal_hub(
        &mut self,
        from: PeerId,
        room: Uuid,
        data: &SignalData,
    ) -> Result<Option<relay::Command>, SignalError> {
        if !self.relay {
            return Err(SignalError::NoRelay);
        }
        let role = self
            .peers
            .get(&from)
            .map(|p| p.principal.role)
            .ok_or(SignalError::NotInRoom)?;
        let key = PeerKey {
            room,
            peer: from.as_uuid(),
        };
        let allowed = publishable(role);
        let cmd = match data.kind() {
            SignalKind::Offer if !allowed.is_empty() => relay::Command::Publish {
                key,
                record: self.recorded.get(&room).copied(),
                offer: data.sdp().unwrap_or_default().to_string(),
                declared: data
                    .declared_tracks()
                    .into_iter()
                    .map(|(mid, s)| (mid, source_of(s)))
                    .collect(),
                allowed,
            },
            SignalKind::Answer if role.is_staff() => relay::Command::Answer {
                key,
                answer: data.sdp().unwrap_or_default().to_string(),
            },
            SignalKind::Ice => match data.candidate_line() {
                Some(line) => relay::Command::Ice {
                    key,
                    candidate: line.to_string(),
                },
                // End of candidates: nothing to tell the relay.
                None => return Ok(None),
            },
            _ => return Err(SignalError::MediaForbidden),
        };
        Ok(Some(cmd))
    }

    /// A proctor chooses which of a room's tracks the relay sends it: the command to send.
    pub fn subscribe(&self, from: PeerId, sub: Subscribe) -> Result<relay::Command, SignalError> {
        let room = sub.room_id.as_uuid();
        if !self.in_room(from, room) {
            return Err(SignalError::NotInRoom);
        }
        if !self.relay {
            return Err(SignalError::NoRelay);
        }
        let staff = self
            .peers
            .get(&from)
            .is_some_and(|p| p.principal.role.is_staff());
        if !staff {
            return Err(SignalError::MediaForbidden);
        }
        Ok(relay::Command::Subscribe {
            key: PeerKey {
                room,
                peer: from.as_uuid(),
            },
            sources: sub.tracks.map(|t| t.into_iter().map(source_of).collect()),
            layer: match sub.layer {
                MediaLayer::Low => relay::Layer::Low,
                MediaLayer::High => relay::Layer::High,
            },
        })
    }

    /// What the relay produced, delivered as a `signal` from `"hub"` (or an `error`) to a
    /// peer still in the room.
    pub fn relay_event(&mut self, event: relay::Event) {
        let room_frame = |room: Uuid, data: Result<SignalData, _>| {
            // The relay's SDP is at most a few KiB; an oversized one is dropped, not sent.
            data.ok().map(|data| {
                encode(&ServerMessage::Signal {
                    room_id: RoomId::from_uuid(room),
                    from: PeerRef::Hub,
                    data,
                })
            })
        };
        let (key, frame) = match event {
            relay::Event::Answer { key, sdp } => {
                (key, room_frame(key.room, SignalData::relay_answer(sdp)))
            }
            relay::Event::Offer { key, sdp, tracks } => {
                let tracks: Vec<OfferedTrack> = tracks
                    .into_iter()
                    .map(|t| OfferedTrack {
                        mid: t.mid,
                        source: track_source_of(t.source),
                        peer_id: PeerId::from_uuid(t.publisher),
                    })
                    .collect();
                (
                    key,
                    room_frame(key.room, SignalData::relay_offer(sdp, &tracks)),
                )
            }
            relay::Event::Rejected { key, reason } => (
                key,
                Some(encode(&ServerMessage::room_error(
                    "MEDIA_REJECTED",
                    reason,
                    RoomId::from_uuid(key.room),
                ))),
            ),
            relay::Event::Closed { key, reason } => (
                key,
                Some(encode(&ServerMessage::room_error(
                    "MEDIA_CLOSED",
                    reason.message(),
                    RoomId::from_uuid(key.room),
                ))),
            ),
        };
        let peer = PeerId::from_uuid(key.peer);
        if let (true, Some(frame)) = (self.in_room(peer, key.room), frame) {
            self.deliver(peer, frame, None);
        }
    }

    /// A heartbeat from a device.
    pub fn heartbeat(&mut self, peer: PeerId, now: Now) {
        let Some((session, device)) = self.peers.get(&peer).and_then(|p| p.device) else {
            return;
        };
        self.effect(Effect::HeartbeatKey {
            session_id: session,
            device,
        });
        let at = self.since_origin(now);
        if let Some(change) = self.liveness.on_heartbeat(key(session, device), at) {
            self.liveness_changed(change, now);
        }
    }

    fn since_origin(&self, now: Now) -> Duration {
        now.at.saturating_duration_since(self.origin)
    }

    /// Applies every liveness deadline that passed.
    pub fn poll_liveness(&mut self, now: Now) {
        let at = self.since_origin(now);
        for change in self.liveness.poll(at) {
            self.liveness_changed(change, now);
        }
    }

    /// When the liveness clock next needs a poll.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.liveness.next_deadline().map(|d| self.origin + d)
    }

    /// Redis heartbeat writes failed (`true`) or recovered (`false`).
    pub fn telemetry_gap(&mut self, started: bool, now: Now) {
        let at = self.since_origin(now);
        if !started {
            return self.liveness.telemetry_gap_ended(at);
        }
        if self.liveness.gap_since().is_some() {
            return;
        }
        self.liveness.telemetry_gap_started(at);
        let mut sessions: Vec<Uuid> = self.devices.keys().map(|(s, _)| *s).collect();
        sessions.sort();
        sessions.dedup();
        for session in sessions {
            self.effect(Effect::SystemEvent {
                at: now.wall,
                session_id: session,
                event_type: "TELEMETRY_GAP",
                severity: 1,
                meta: Some(serde_json::json!({"cause": "heartbeat store unreachable"})),
            });
        }
    }

    fn liveness_changed(&mut self, change: LivenessChange, now: Now) {
        let (k, state, event_type) = match change {
            LivenessChange::Lost(k) => (k, DeviceState::Lost, Some(lost_event(k.device))),
            LivenessChange::Reconnected(k) => {
                (k, DeviceState::Online, Some(reconnected_event(k.device)))
            }
            LivenessChange::Online(k) => (k, DeviceState::Online, None),
        };
        let (session, device) = (Uuid::from(k.session_id), k.device);
        let severity: u8 = if state == DeviceState::Lost { 4 } else { 1 };
        if let Some(event_type) = event_type {
            self.effect(Effect::SystemEvent {
                at: now.wall,
                session_id: session,
                event_type,
                severity: i16::from(severity),
                meta: None,
            });
        }
        let Some((exam, view)) = self.views.get_mut(&session) else {
            return;
        };
        let slot = match device {
            Device::Laptop => &mut view.liveness.laptop,
            Device::Mobile => &mut view.liveness.mobile,
        };
        if *slot == state {
            return;
        }
        *slot = state;
        if let Some(event_type) = event_type {
            view.last_event = Some(signaling::LastEvent {
                event_id: signaling::EventId::new_v4(),
                event_type: signaling::EventType::new(event_type)
                    .expect("hub event types are valid"),
                severity: signaling::Severity::new(severity).expect("1..=10"),
                timestamp: signaling::Timestamp::from(now.wall),
            });
        }
        let exam = *exam;
        let frame = encode(&ServerMessage::SessionUpdate(view.clone()));
        self.to_watchers(exam, &frame);
    }

    fn to_watchers(&self, exam: Uuid, frame: &Arc<str>) {
        for w in self.watchers.get(&exam).into_iter().flatten() {
            self.deliver(*w, frame.clone(), None);
        }
    }

    /// Starts watching an exam: `snapshot` (from the store) is sent first, with the hub's
    /// own liveness and last events, then every update.
    pub fn watch(&mut self, peer: PeerId, exam: Uuid, snapshot: Vec<SessionView>) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        entry.watching.insert(exam);
        let mut sessions = Vec::with_capacity(snapshot.len());
        for mut view in snapshot {
            let id = view.session_id.as_uuid();
            view.liveness = Liveness {
                laptop: device_state(self.liveness.state(key(id, Device::Laptop))),
                mobile: device_state(self.liveness.state(key(id, Device::Mobile))),
            };
            if view.last_event.is_none() {
                if let Some((_, known)) = self.views.get(&id) {
                    view.last_event.clone_from(&known.last_event);
                }
            }
            self.views.insert(id, (exam, view.clone()));
            sessions.push(view);
        }
        let frame = encode(&ServerMessage::SessionSnapshot {
            exam_id: ExamId::from_uuid(exam),
            sessions,
        });
        self.deliver(peer, frame, None);
        self.watchers.entry(exam).or_default().insert(peer);
    }

    /// A session's new facts (status, score, last event) for its watchers.
    pub fn update(&mut self, fact: SessionFact) {
        let (_, view) = self
            .views
            .entry(fact.session_id)
            .or_insert_with(|| (fact.exam_id, default_view(fact.session_id)));
        view.status = fact.status;
        view.violation_score = fact.violation_score;
        if fact.last_event.is_some() {
            view.last_event = fact.last_event;
        }
        if fact.flagged.is_some() {
            view.flagged = fact.flagged;
        }
        // Encoding is the costly part: skip it when nobody watches the exam.
        if self.watchers.contains_key(&fact.exam_id) {
            let frame = encode(&ServerMessage::SessionUpdate(view.clone()));
            self.to_watchers(fact.exam_id, &frame);
        }
    }

    fn session_devices(&self, session: Uuid) -> Vec<PeerId> {
        [Device::Laptop, Device::Mobile]
            .into_iter()
            .filter_map(|d| self.devices.get(&(session, d)).copied())
            .collect()
    }

    /// Something changed outside the hub (through the API, a sweeper, another node).
    pub fn hub_signal(&mut self, signal: HubSignal) {
        match signal {
            HubSignal::UserRevoked { user_id } => {
                for peer in self.users.get(&user_id).into_iter().flatten() {
                    self.close(*peer, CloseCode::InvalidToken);
                }
            }
            HubSignal::SessionEnded {
                session_id,
                exam_id,
                status,
                reason,
            } => {
                let frame = encode(&ServerMessage::SessionEnded { status, reason });
                for peer in self.session_devices(session_id) {
                    self.deliver(peer, frame.clone(), None);
                    self.close(peer, CloseCode::SessionEnded);
                }
                self.liveness.forget_session(session_id.into());
                let score = self
                    .views
                    .get(&session_id)
                    .map_or(0.0, |(_, v)| v.violation_score);
                self.update(SessionFact {
                    session_id,
                    exam_id,
                    status,
                    violation_score: score,
                    last_event: None,
                    flagged: None,
                });
            }
            HubSignal::SessionStarted {
                session_id,
                exam_id,
                candidate_id,
            } => {
                // Kept only while someone watches the exam (as every view is).
                if self.watchers.contains_key(&exam_id) {
                    let (_, view) = self
                        .views
                        .entry(session_id)
                        .or_insert_with(|| (exam_id, default_view(session_id)));
                    view.candidate_id = Some(candidate_id.into());
                    let frame = encode(&ServerMessage::SessionUpdate(view.clone()));
                    self.to_watchers(exam_id, &frame);
                }
            }
            HubSignal::SessionChanged {
                session_id,
                exam_id,
            } => {
                if let Some((_, view)) = self.views.get(&session_id) {
                    let frame = encode(&ServerMessage::SessionUpdate(view.clone()));
                    self.to_watchers(exam_id, &frame);
                }
            }
            HubSignal::TimeUp {
                session_id,
                expires_at,
                grace_ends_at,
                ..
            } => {
                let frame = encode(&ServerMessage::TimeUp {
                    session_id: SessionId::from_uuid(session_id),
                    expires_at: expires_at.into(),
                    grace_ends_at: grace_ends_at.into(),
                });
                for peer in self.session_devices(session_id) {
                    self.deliver(peer, frame.clone(), None);
                }
            }
            HubSignal::TimeExtended {
                session_id,
                exam_id,
                expires_at,
            } => {
                let frame = encode(&ServerMessage::TimeExtended {
                    session_id: SessionId::from_uuid(session_id),
                    expires_at: expires_at.into(),
                });
                for peer in self.session_devices(session_id) {
                    self.deliver(peer, frame.clone(), None);
                }
                self.to_watchers(exam_id, &frame);
            }
            HubSignal::Warn {
                session_id,
                message,
            } => {
                if let (Some(peer), Ok(text)) = (
                    self.devices.get(&(session_id, Device::Laptop)),
                    signaling::WarningText::new(message),
                ) {
                    let frame = encode(&ServerMessage::Warning { message: text });
                    self.deliver(*peer, frame, None);
                }
            }
            HubSignal::UnpairMobile { session_id } => {
                if let Some(peer) = self.devices.get(&(session_id, Device::Mobile)) {
                    self.close(*peer, CloseCode::SessionEnded);
                }
                self.effect(Effect::ClearMobile { session_id });
            }
            HubSignal::PairingClaimed {
                session_id,
                confirm_code,
                device_fingerprint,
                replaced,
            } => {
                if replaced {
                    if let Some(peer) = self.devices.get(&(session_id, Device::Mobile)) {
                        self.close(*peer, CloseCode::Replaced);
                    }
                }
                if let Some(peer) = self.devices.get(&(session_id, Device::Laptop)) {
                    let frame = encode(&ServerMessage::PairingClaimed {
                        confirm_code,
                        device_fingerprint: Some(device_fingerprint),
                    });
                    self.deliver(*peer, frame, None);
                }
            }
        }
    }

    /// The laptop rejects the phone that just paired.
    pub fn pairing_reject(&mut self, peer: PeerId, now: Now) {
        let Some((session, Device::Laptop)) = self.peers.get(&peer).and_then(|p| p.device) else {
            return;
        };
        if let Some(phone) = self.devices.get(&(session, Device::Mobile)) {
            self.close(*phone, CloseCode::SessionEnded);
        }
        self.effect(Effect::ClearMobile {
            session_id: session,
        });
        self.effect(Effect::SystemEvent {
            at: now.wall,
            session_id: session,
            event_type: "MOBILE_PAIRING_REJECTED",
            severity: 2,
            meta: None,
        });
    }

    /// The exams this node serves: those of its peers' rooms, watches and devices.
    pub fn exams_in_use(&self) -> HashSet<Uuid> {
        self.peers
            .iter()
            .flat_map(|(id, p)| self.exams_of(*id, p))
            .collect()
    }

    fn exams_of(&self, id: PeerId, p: &PeerEntry) -> Vec<Uuid> {
        let mut exams: Vec<Uuid> = p.watching.iter().copied().collect();
        for room in self.rooms.rooms_of(id.as_uuid().into()) {
            if let Some(r) = self.rooms.room(*room) {
                exams.push(r.info().exam_id.into());
            }
        }
        if let Some((session, _)) = p.device {
            if let Some((exam, _)) = self.views.get(&session) {
                exams.push(*exam);
            }
        }
        exams
    }

    /// The sessions whose devices are connected here (for the reconcile loop).
    pub fn device_sessions(&self) -> Vec<Uuid> {
        let mut sessions: Vec<Uuid> = self.devices.keys().map(|(s, _)| *s).collect();
        sessions.sort();
        sessions.dedup();
        sessions
    }

    /// Another node holds `exam`'s home now: every socket of it here closes with 4010 and
    /// comes back through any node, which sends it to the home.
    pub fn let_go(&mut self, exam: Uuid) {
        let moving: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(id, p)| self.exams_of(**id, p).contains(&exam))
            .map(|(id, _)| *id)
            .collect();
        for peer in moving {
            self.close(peer, CloseCode::Moved);
        }
    }

    fn forget_unused_views(&mut self) {
        let rooms = &self.rooms;
        self.recorded
            .retain(|room, _| rooms.room((*room).into()).is_some());
        // Views are kept only for sessions whose exam is watched or whose devices are live.
        let live_sessions: HashSet<Uuid> = self.devices.keys().map(|(s, _)| *s).collect();
        let watchers = &self.watchers;
        self.views
            .retain(|s, (exam, _)| live_sessions.contains(s) || watchers.contains_key(exam));
    }
}

fn encode(msg: &ServerMessage) -> Arc<str> {
    Arc::from(encode_server(msg))
}

/// `laptop` / `mobile`, as in Redis keys.
pub fn device_str(d: Device) -> &'static str {
    match d {
        Device::Laptop => "laptop",
        Device::Mobile => "mobile",
    }
}

fn lost_event(d: Device) -> &'static str {
    match d {
        Device::Laptop => "LAPTOP_HEARTBEAT_LOST",
        Device::Mobile => "MOBILE_HEARTBEAT_LOST",
    }
}

fn reconnected_event(d: Device) -> &'static str {
    match d {
        Device::Laptop => "LAPTOP_RECONNECTED",
        Device::Mobile => "MOBILE_RECONNECTED",
    }
}

fn key(session: Uuid, device: Device) -> LivenessKey {
    LivenessKey {
        session_id: session.into(),
        device,
    }
}

fn peer_of(p: rooms::PeerId) -> PeerId {
    PeerId::from_uuid(p.into())
}

fn device_state(s: LivenessState) -> DeviceState {
    match s {
        LivenessState::Unknown => DeviceState::Unknown,
        LivenessState::Online => DeviceState::Online,
        LivenessState::Lost => DeviceState::Lost,
    }
}

/// The sources a role may publish: the hub's rule, which the relay only enforces.
fn publishable(role: Role) -> Vec<Source> {
    match role {
        Role::Candidate => vec![Source::Camera, Source::Screen, Source::Microphone],
        Role::Mobile => vec![Source::PhoneCamera],
        Role::Proctor | Role::Admin => Vec::new(),
    }
}

fn source_of(t: TrackSource) -> Source {
    match t {
        TrackSource::Camera => Source::Camera,
        TrackSource::Screen => Source::Screen,
        TrackSource::Microphone => Source::Microphone,
        TrackSource::PhoneCamera => Source::PhoneCamera,
    }
}

fn track_source_of(s: Source) -> TrackSource {
    match s {
        Source::Camera => TrackSource::Camera,
        Source::Screen => TrackSource::Screen,
        Source::Microphone => TrackSource::Microphone,
        Source::PhoneCamera => TrackSource::PhoneCamera,
    }
}

fn default_view(session: Uuid) -> SessionView {
    SessionView {
        session_id: SessionId::from_uuid(session),
        status: SessionStatus::Started,
        violation_score: 0.0,
        liveness: Liveness {
            laptop: DeviceState::Unknown,
            mobile: DeviceState::Unknown,
        },
        last_event: None,
        flagged: None,
        candidate_id: None,
    }
}
