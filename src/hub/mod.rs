//! The hub: one actor task that owns every room's membership, the live devices of each
//! session, the proctors watching each exam and device liveness. Sockets talk to it through
//! [`HubHandle`]; nothing else touches its state, so there is no lock at all, and nothing is
//! held across an `.await` (the actor never awaits a store: store work happens in the socket
//! tasks and in `events`/`watch`, which hand the actor finished facts).
//!
//! Routing seam: every message for a peer goes through [`Hub::deliver`]; a later multi-process
//! hub replaces the local lookup there with a Redis-forwarded one (LiveKit's router model).

pub mod effects;
pub mod events;
pub mod ice;
pub mod resume;
pub mod watch;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use signaling::{
    encode_server, CloseCode, DeviceState, ExamId, Liveness, MediaLayer, PeerId, PeerInfo, PeerRef,
    Role, RoomId, ServerMessage, SessionId, SessionStatus, SessionView, Signal, SignalData,
    SignalKind, Subscribe, TrackSource, UserId,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::IceConfig;
use crate::model::TokenRole;
use crate::relay::{self, PeerKey, RelayHandle, Source};
use crate::state::HubSignal;
use crate::store::sessions_lookup::SessionFacts;
use crate::ws::outbox::Outbox;
use resume::Replay;
pub use rooms::Device;
use rooms::{LivenessChange, LivenessKey, LivenessState, Rooms};

/// Who is on the other end of a socket.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The id the hub gave this connection.
    pub peer_id: PeerId,
    /// The user (for a phone: the candidate owning the session).
    pub user_id: Uuid,
    /// The token's role.
    pub role: TokenRole,
    /// For a phone: the session its token is bound to.
    pub session_id: Option<Uuid>,
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// Not this peer's room (4507).
    Forbidden,
    /// The session is over (4503).
    SessionEnded,
}

/// Why a signal was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalError {
    /// The sender is not in that room (4507).
    NotInRoom,
    /// The addressee is not in the room (an `error` reply).
    UnknownPeer,
    /// The sender may not signal that peer (4507).
    NotAllowed,
    /// `to: "hub"` but no media relay runs, or it is overloaded (an `error` reply).
    NoRelay,
    /// The peer's role may not do this with the relay, e.g. a proctor offering to publish
    /// (an `error` reply).
    MediaForbidden,
}

/// A fact the hub learned from the stores, to push to watchers.
#[derive(Debug, Clone)]
pub struct SessionFact {
    /// The session.
    pub session_id: Uuid,
    /// Its exam.
    pub exam_id: Uuid,
    /// Current status.
    pub status: SessionStatus,
    /// Current violation score.
    pub violation_score: f64,
    /// The event that caused this update, if any.
    pub last_event: Option<signaling::LastEvent>,
    /// Whether the score reached the exam policy's `flagAt` (`None`: unchanged).
    pub flagged: Option<bool>,
}

enum Command {
    Register(Principal, Outbox, String),
    Unregister(PeerId, Option<Outbox>),
    Detach(PeerId, Outbox),
    ClaimResume(ResumeClaim, oneshot::Sender<Option<PeerId>>),
    Reattach(PeerId, Outbox, u64),
    Join(
        PeerId,
        SessionFacts,
        oneshot::Sender<Result<ServerMessage, JoinError>>,
    ),
    Leave(PeerId, Uuid),
    Signal(PeerId, Signal, std::time::Instant),
    Subscribe(PeerId, Subscribe, oneshot::Sender<Result<(), SignalError>>),
    Heartbeat(PeerId),
    Watch(PeerId, Uuid, Vec<SessionView>),
    Unwatch(PeerId, Uuid),
    Update(SessionFact),
    PairingReject(PeerId),
    TelemetryGap(bool),
    Stats(oneshot::Sender<HubStats>),
}

/// A socket asking to continue a dropped connection: the old connection's token, the last
/// message the client processed, and who is asking (it must be the same user and role).
#[derive(Debug, Clone)]
pub struct ResumeClaim {
    /// The `resumeToken` the old connection got in `authed`.
    pub token: String,
    /// The client's `lastSeq`.
    pub last_seq: u64,
    /// The new socket's verified user.
    pub user_id: Uuid,
    /// The new socket's verified role.
    pub role: TokenRole,
}

/// Counts for tests and metrics: after every socket closed, all are zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Registered sockets.
    pub peers: usize,
    /// Rooms with at least one member.
    pub rooms: usize,
    /// Live (session, device) bindings.
    pub devices: usize,
    /// Exams with at least one watcher.
    pub watched_exams: usize,
    /// What the media relay holds (zero when no relay runs).
    pub relay: relay::RelayStats,
}

/// The sockets' way to the hub. Cheap to clone.
#[derive(Clone)]
pub struct HubHandle {
    tx: mpsc::Sender<Command>,
    /// The media relay, asked for its counts by [`HubHandle::stats`].
    relay: Option<RelayHandle>,
}

impl HubHandle {
    async fn send(&self, c: Command) {
        // Fails only after the hub stopped at shutdown, when nothing matters any more.
        let _ = self.tx.send(c).await;
    }

    /// A socket authenticated; `resume_token` (sent in its `authed`) lets it come back after a
    /// drop.
    pub async fn register(
        &self,
        peer: PeerId,
        principal: Principal,
        outbox: Outbox,
        resume_token: String,
    ) {
        debug_assert_eq!(peer, principal.peer_id);
        self.send(Command::Register(principal, outbox, resume_token))
            .await;
    }

    /// A socket closed for good (the client said goodbye, or the hub closed it): it leaves
    /// every room and watch.
    ///
    /// `socket` names the closing socket's queue: a peer that meanwhile continues on another
    /// socket (a resume) is left alone.
    pub async fn unregister(&self, peer: PeerId, socket: &Outbox) {
        self.send(Command::Unregister(peer, Some(socket.clone())))
            .await;
    }

    /// A socket dropped (the network went, no goodbye): the peer stays, rooms, watches and
    /// media included, for the resume window; what is pushed to it meanwhile is kept for the
    /// resume. With no resume window this is [`HubHandle::unregister`].
    pub async fn detach(&self, peer: PeerId, socket: &Outbox) {
        self.send(Command::Detach(peer, socket.clone())).await;
    }

    /// A new socket asks to continue a dropped connection. `Some(peer)` when it may: the peer
    /// is held for it until [`HubHandle::reattach`] (or a short deadline).
    pub async fn claim_resume(&self, claim: ResumeClaim) -> Option<PeerId> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::ClaimResume(claim, tx)).await;
        rx.await.unwrap_or(None)
    }

    /// The claimed peer continues on `outbox`: every kept message after `last_seq` is queued
    /// first, then whatever comes next.
    pub async fn reattach(&self, peer: PeerId, outbox: Outbox, last_seq: u64) {
        self.send(Command::Reattach(peer, outbox, last_seq)).await;
    }

    /// Joins the room of `facts`' session; the reply is the `joined` message.
    pub async fn join(
        &self,
        peer: PeerId,
        facts: SessionFacts,
    ) -> Result<ServerMessage, JoinError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Join(peer, facts, tx)).await;
        rx.await.unwrap_or(Err(JoinError::SessionEnded))
    }

    /// Leaves a room.
    pub async fn leave(&self, peer: PeerId, room: Uuid) {
        self.send(Command::Leave(peer, room)).await;
    }

    /// Relays a signal to a peer of the same room, stamping `from`.
    pub async fn signal(&self, peer: PeerId, signal: Signal, received: std::time::Instant) {
        self.send(Command::Signal(peer, signal, received)).await;
    }

    /// A proctor chooses which of a room's tracks the relay sends it.
    pub async fn subscribe(&self, peer: PeerId, sub: Subscribe) -> Result<(), SignalError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Subscribe(peer, sub, tx)).await;
        rx.await.unwrap_or(Err(SignalError::NotInRoom))
    }

    /// A heartbeat from a device.
    pub async fn heartbeat(&self, peer: PeerId) {
        self.send(Command::Heartbeat(peer)).await;
    }

    /// Starts watching an exam; `snapshot` is sent first, then every update.
    pub async fn watch(&self, peer: PeerId, exam: Uuid, snapshot: Vec<SessionView>) {
        self.send(Command::Watch(peer, exam, snapshot)).await;
    }

    /// Stops watching an exam.
    pub async fn unwatch(&self, peer: PeerId, exam: Uuid) {
        self.send(Command::Unwatch(peer, exam)).await;
    }

    /// Pushes a session's new facts to its watchers.
    pub async fn update(&self, fact: SessionFact) {
        self.send(Command::Update(fact)).await;
    }

    /// The laptop rejects the phone that just paired.
    pub async fn pairing_reject(&self, peer: PeerId) {
        self.send(Command::PairingReject(peer)).await;
    }

    /// Redis heartbeat writes failed (`true`) or recovered (`false`).
    pub async fn telemetry_gap(&self, started: bool) {
        self.send(Command::TelemetryGap(started)).await;
    }

    /// Current counts, the media relay's included (asked after the hub's, so a leave the hub
    /// already passed on to the relay is reflected).
    pub async fn stats(&self) -> HubStats {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stats(tx)).await;
        let mut stats = rx.await.unwrap_or_default();
        if let Some(relay) = &self.relay {
            stats.relay = relay.stats().await;
        }
        stats
    }
}

/// Side effects the actor asks others to perform (stores), so the actor itself never awaits.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Record a SYSTEM event for a session.
    SystemEvent {
        /// When the hub noticed it (the event's timestamp; the store work may run later).
        at: chrono::DateTime<chrono::Utc>,
        /// The session.
        session_id: Uuid,
        /// UPPER_SNAKE type.
        event_type: &'static str,
        /// 1–10.
        severity: i16,
        /// Details.
        meta: Option<serde_json::Value>,
    },
    /// Write a heartbeat key to Redis.
    HeartbeatKey {
        /// The session.
        session_id: Uuid,
        /// `laptop` or `mobile`.
        device: Device,
    },
    /// Keep `candidate_socket_id` / `mobile_socket_id` current (`None` clears it).
    SocketId {
        /// The session.
        session_id: Uuid,
        /// Which column.
        device: Device,
        /// The peer now live, or `None`.
        peer: Option<PeerId>,
    },
    /// Forget the session's phone in Redis (rejected or unpaired).
    ClearMobile {
        /// The session.
        session_id: Uuid,
    },
}

struct PeerEntry {
    principal: Principal,
    outbox: Outbox,
    watching: HashSet<Uuid>,
    /// The (session, device) this socket is the live connection of.
    device: Option<(Uuid, Device)>,
    /// What this peer was sent, numbered, for a resume (a cell: delivering is a read of the
    /// hub's maps, and fan-outs deliver while iterating them).
    replay: std::cell::RefCell<Replay>,
    /// Its resume token.
    resume_token: String,
    /// While its socket is gone: until when it may come back.
    detached_until: Option<Instant>,
    /// A close asked for while detached, applied when it comes back.
    pending_close: std::cell::Cell<Option<CloseCode>>,
}

impl PeerEntry {
    /// Closes the socket with `code`; while detached, the close waits for the resume (after
    /// the messages it missed, e.g. `session-ended`).
    fn close(&self, code: CloseCode) {
        if self.detached_until.is_some() {
            if self.pending_close.get().is_none() {
                self.pending_close.set(Some(code));
            }
        } else {
            self.outbox.close_with(code);
        }
    }

    /// Numbers and keeps `frame`, and queues it unless the socket is gone.
    fn push(&self, frame: Arc<str>, since: Option<std::time::Instant>) {
        let seq = self.replay.borrow_mut().record(&frame);
        if self.detached_until.is_none() {
            self.outbox.push_seq(frame, seq, since);
        }
    }
}

/// The actor's state.
pub struct Hub {
    peers: HashMap<PeerId, PeerEntry>,
    /// Membership and signalling rules (the `rooms` crate; no I/O).
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
    /// The media relay, when enabled; the hub decides who may publish or subscribe.
    relay: Option<RelayHandle>,
    /// Offers and answers the relay wants delivered.
    relay_events: Option<mpsc::UnboundedReceiver<relay::Event>>,
    effects: mpsc::UnboundedSender<Effect>,
    rx: mpsc::Receiver<Command>,
    /// Resume token → its peer.
    resume_tokens: HashMap<String, PeerId>,
    /// How long a dropped peer is kept for a resume (zero: not at all).
    resume_window: Duration,
}

/// How long a claimed resume may take to reattach before the peer is let go.
const REATTACH_DEADLINE: Duration = Duration::from_secs(10);

/// Builds the hub: the handle for sockets, the actor to run, and the effects it will ask for.
pub fn new(
    heartbeat_interval: Duration,
    resume_window: Duration,
    ice: IceConfig,
    relay: Option<(RelayHandle, mpsc::UnboundedReceiver<relay::Event>)>,
) -> (HubHandle, Hub, mpsc::UnboundedReceiver<Effect>) {
    let (relay, relay_events) = match relay {
        Some((h, rx)) => (Some(h), Some(rx)),
        None => (None, None),
    };
    let (effects, effects_rx) = mpsc::unbounded_channel();
    let (tx, rx) = mpsc::channel(65_536);
    let hub = Hub {
        peers: HashMap::new(),
        rooms: Rooms::new(),
        devices: HashMap::new(),
        watchers: HashMap::new(),
        users: HashMap::new(),
        views: HashMap::new(),
        liveness: rooms::Liveness::with_heartbeat_interval(heartbeat_interval),
        origin: Instant::now(),
        ice,
        relay: relay.clone(),
        relay_events,
        effects,
        rx,
        resume_tokens: HashMap::new(),
        resume_window,
    };
    (HubHandle { tx, relay }, hub, effects_rx)
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

fn room_role(role: TokenRole) -> rooms::Role {
    match role {
        TokenRole::Candidate => rooms::Role::Candidate,
        TokenRole::Mobile => rooms::Role::Mobile,
        TokenRole::Proctor => rooms::Role::Proctor,
        TokenRole::Admin => rooms::Role::Admin,
    }
}

fn wire_role_of(role: rooms::Role) -> Role {
    match role {
        rooms::Role::Candidate => Role::Candidate,
        rooms::Role::Mobile => Role::Mobile,
        rooms::Role::Proctor => Role::Proctor,
        rooms::Role::Admin => Role::Admin,
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

fn status_of(s: &str) -> SessionStatus {
    match s {
        "SUBMITTED" => SessionStatus::Submitted,
        "AUTO_SUBMITTED" => SessionStatus::AutoSubmitted,
        "TERMINATED" => SessionStatus::Terminated,
        _ => SessionStatus::Started,
    }
}

impl Hub {
    /// Runs until `shutdown` fires, handling commands, hub signals and liveness deadlines.
    pub async fn run(
        mut self,
        mut signals: broadcast::Receiver<HubSignal>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let mut expiry = tokio::time::interval(Duration::from_millis(500));
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = expiry.tick() => self.expire_detached(Instant::now()),
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                signal = signals.recv() => match signal {
                    Ok(signal) => self.hub_signal(signal),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        // Missed endings would leave devices connected to ended sessions:
                        // say so loudly; the sockets re-check their session on reconnect.
                        tracing::error!(missed = n, "hub lagged behind hub signals");
                        metrics::counter!("hub_signals_lagged_total").increment(n);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                () = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => self.poll_liveness(Instant::now()),
                Some(event) = async {
                    match self.relay_events.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => self.relay_event(event),
            }
        }
        // Shutdown: every socket closes with 4001.
        for peer in self.peers.values() {
            peer.close(CloseCode::ShuttingDown);
        }
    }

    fn effect(&self, e: Effect) {
        let _ = self.effects.send(e);
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Register(p, outbox, token) => self.register(p, outbox, token),
            Command::Unregister(peer, socket) => {
                if self.is_current(peer, socket.as_ref()) {
                    self.unregister(peer);
                }
            }
            Command::Detach(peer, socket) => {
                if self.is_current(peer, Some(&socket)) {
                    self.detach(peer, Instant::now());
                }
            }
            Command::ClaimResume(claim, reply) => {
                let _ = reply.send(self.claim_resume(&claim, Instant::now()));
            }
            Command::Reattach(peer, outbox, last_seq) => self.reattach(peer, outbox, last_seq),
            Command::Join(peer, facts, reply) => {
                let _ = reply.send(self.join(peer, facts));
            }
            Command::Leave(peer, room) => self.leave(peer, room),
            Command::Signal(peer, signal, received) => {
                if let Err(e) = self.signal(peer, signal, received) {
                    self.refuse(peer, e);
                }
            }
            Command::Subscribe(peer, sub, reply) => {
                let _ = reply.send(self.subscribe(peer, sub));
            }
            Command::Heartbeat(peer) => self.heartbeat(peer, Instant::now()),
            Command::Watch(peer, exam, snapshot) => self.watch(peer, exam, snapshot),
            Command::Unwatch(peer, exam) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.watching.remove(&exam);
                }
                self.drop_watcher(peer, exam);
            }
            Command::Update(fact) => self.update(fact),
            Command::PairingReject(peer) => self.pairing_reject(peer),
            Command::TelemetryGap(started) => self.telemetry_gap(started, Instant::now()),
            Command::Stats(reply) => {
                let _ = reply.send(HubStats {
                    peers: self.peers.len(),
                    rooms: self.rooms.room_count(),
                    devices: self.devices.len(),
                    watched_exams: self.watchers.len(),
                    relay: relay::RelayStats::default(),
                });
            }
        }
    }

    /// Answers a refused `signal` on the sender's own socket: a forbidden one closes it (4507),
    /// the others get an `error` frame. The socket does not wait for the verdict, so a relayed
    /// signal costs its sender no round trip through the hub.
    fn refuse(&self, peer: PeerId, e: SignalError) {
        let Some(p) = self.peers.get(&peer) else {
            return;
        };
        let (code, message) = match e {
            SignalError::NotInRoom | SignalError::NotAllowed => {
                p.close(CloseCode::Forbidden);
                return;
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
        p.outbox.push(encode(&ServerMessage::error(code, message)));
    }

    /// The routing seam: hands an encoded frame to a peer's socket (numbered and kept for a
    /// resume).
    fn deliver(&self, peer: PeerId, frame: Arc<str>) {
        if let Some(p) = self.peers.get(&peer) {
            p.push(frame, None);
        }
    }

    fn register(&mut self, principal: Principal, outbox: Outbox, resume_token: String) {
        let peer = principal.peer_id;
        self.users
            .entry(principal.user_id)
            .or_default()
            .insert(peer);
        let phone_session = principal
            .session_id
            .filter(|_| principal.role == TokenRole::Mobile);
        self.peers.insert(
            peer,
            PeerEntry {
                principal,
                outbox,
                watching: HashSet::new(),
                device: None,
                replay: std::cell::RefCell::new(Replay::default()),
                resume_token: resume_token.clone(),
                detached_until: None,
                pending_close: std::cell::Cell::new(None),
            },
        );
        self.resume_tokens.insert(resume_token, peer);
        // A phone is bound to its session from the start.
        if let Some(session) = phone_session {
            self.bind_device(peer, session, Device::Mobile);
        }
        metrics::gauge!("hub_peers").set(self.peers.len() as f64);
    }

    /// Makes `peer` the live connection of (session, device); an older one gets 4504.
    fn bind_device(&mut self, peer: PeerId, session: Uuid, device: Device) {
        if let Some(old) = self.devices.insert((session, device), peer) {
            if old != peer {
                if let Some(o) = self.peers.get_mut(&old) {
                    o.device = None;
                    o.close(CloseCode::Replaced);
                }
                self.effect(Effect::SystemEvent {
                    at: chrono::Utc::now(),
                    session_id: session,
                    event_type: "DUPLICATE_CONNECTION",
                    severity: 3,
                    meta: Some(serde_json::json!({"device": device_str(device), "replacedPeer": old.to_string(), "peer": peer.to_string()})),
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

    /// True when `socket` is still the one `peer` lives on (a resumed peer has moved on).
    fn is_current(&self, peer: PeerId, socket: Option<&Outbox>) -> bool {
        match (self.peers.get(&peer), socket) {
            (Some(p), Some(s)) => p.outbox.same_socket(s),
            _ => true,
        }
    }

    /// The socket dropped without a goodbye: keep the peer for the resume window.
    fn detach(&mut self, peer: PeerId, now: Instant) {
        if self.resume_window.is_zero() {
            return self.unregister(peer);
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.detached_until = Some(now + self.resume_window);
        metrics::counter!("hub_ws_detached_total").increment(1);
    }

    /// Lets go of the peers whose resume window passed.
    fn expire_detached(&mut self, now: Instant) {
        let expired: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.detached_until.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for peer in expired {
            metrics::counter!("hub_ws_resume_expired_total").increment(1);
            self.unregister(peer);
        }
    }

    /// A new socket of the same user and role names a peer's resume token: the peer is held
    /// for it if it can replay everything after `last_seq`. A peer still attached (its old
    /// socket has not noticed the drop yet) is taken over the same way.
    fn claim_resume(&mut self, claim: &ResumeClaim, now: Instant) -> Option<PeerId> {
        let peer = *self.resume_tokens.get(&claim.token)?;
        let p = self.peers.get_mut(&peer)?;
        let same_owner = p.principal.user_id == claim.user_id && p.principal.role == claim.role;
        if !same_owner || p.replay.borrow().after(claim.last_seq).is_none() {
            metrics::counter!("hub_ws_resume_refused_total").increment(1);
            return None;
        }
        if p.detached_until.is_none() {
            // The old socket is still open: it goes (4504), the peer lives on. Its queue is
            // swapped out first so its closing does not end the peer.
            let (parked, _) = crate::ws::outbox::outbox(1, 1);
            std::mem::replace(&mut p.outbox, parked).close_with(CloseCode::Replaced);
        }
        p.detached_until = Some(now + REATTACH_DEADLINE);
        Some(peer)
    }

    /// The claimed peer's new socket: queue what it missed, then any close asked for meanwhile.
    fn reattach(&mut self, peer: PeerId, outbox: Outbox, last_seq: u64) {
        let Some(p) = self.peers.get_mut(&peer) else {
            // Let go meanwhile: the new socket has nothing to continue.
            outbox.close_with(CloseCode::SessionEnded);
            return;
        };
        p.outbox = outbox;
        p.detached_until = None;
        let missed = p.replay.borrow().after(last_seq).unwrap_or_default();
        for (seq, frame) in missed {
            p.outbox.push_seq(frame, seq, None);
        }
        if let Some(code) = p.pending_close.take() {
            p.outbox.close_with(code);
        }
        metrics::counter!("hub_ws_resumed_total").increment(1);
    }

    fn unregister(&mut self, peer: PeerId) {
        let Some(entry) = self.peers.remove(&peer) else {
            return;
        };
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
        self.forget_unused_view_and_liveness();
        metrics::gauge!("hub_peers").set(self.peers.len() as f64);
    }

    /// Delivers a presence change (`peer-joined` / `peer-left`) to its recipients.
    fn announce(&self, presence: rooms::Presence) {
        let msg = match presence.event {
            rooms::PresenceEvent::PeerJoined { room_id, member } => ServerMessage::PeerJoined {
                room_id: RoomId::from_uuid(room_id.into()),
                peer_id: peer_of(member.peer_id),
                role: wire_role_of(member.role),
                user_id: UserId::from_uuid(member.user_id.into()),
            },
            rooms::PresenceEvent::PeerLeft { room_id, peer_id } => ServerMessage::PeerLeft {
                room_id: RoomId::from_uuid(room_id.into()),
                peer_id: peer_of(peer_id),
            },
        };
        let frame = encode(&msg);
        for r in presence.recipients {
            self.deliver(peer_of(r), frame.clone());
        }
    }

    fn drop_watcher(&mut self, peer: PeerId, exam: Uuid) {
        if let Some(set) = self.watchers.get_mut(&exam) {
            set.remove(&peer);
            if set.is_empty() {
                self.watchers.remove(&exam);
            }
        }
    }

    fn join(&mut self, peer: PeerId, facts: SessionFacts) -> Result<ServerMessage, JoinError> {
        let Some(entry) = self.peers.get(&peer) else {
            return Err(JoinError::Forbidden);
        };
        let p = &entry.principal;
        // A laptop's token is not bound to a session: it binds to the room's session here,
        // and the rooms crate then checks that the session is this candidate's.
        let session = match p.role {
            TokenRole::Candidate => Some(facts.id),
            TokenRole::Mobile => p.session_id,
            TokenRole::Admin | TokenRole::Proctor => None,
        };
        let principal =
            rooms::Principal::new(p.user_id.into(), room_role(p.role), session.map(Into::into))
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
        if role == TokenRole::Candidate && !facts.media_check {
            self.bind_device(peer, facts.id, Device::Laptop);
        }
        let joined = self
            .rooms
            .join(peer.as_uuid().into(), &principal, info)
            .map_err(|_| JoinError::Forbidden)?;
        if let Some(old) = joined.replaced {
            self.relay_leave(peer_of(old), facts.webrtc_room_id);
            // Already closed with 4504 by `bind_device`; make sure of it.
            if let Some(o) = self.peers.get(&peer_of(old)) {
                o.close(CloseCode::Replaced);
            }
        }
        for presence in joined.presence {
            self.announce(presence);
        }
        self.views
            .entry(facts.id)
            .or_insert_with(|| (facts.exam_id, default_view(facts.id)));
        Ok(ServerMessage::Joined {
            room_id: RoomId::from_uuid(facts.webrtc_room_id),
            peers: joined
                .peers
                .iter()
                .map(|m| PeerInfo {
                    peer_id: peer_of(m.peer_id),
                    role: wire_role_of(m.role),
                    user_id: UserId::from_uuid(m.user_id.into()),
                })
                .collect(),
            ice_servers: ice::ice_servers(&self.ice, peer, chrono::Utc::now().timestamp()),
        })
    }

    fn leave(&mut self, peer: PeerId, room: Uuid) {
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
        if let Some(relay) = &self.relay {
            let key = PeerKey {
                room,
                peer: peer.as_uuid(),
            };
            if !relay.try_send(relay::Command::Leave { key }) {
                tracing::error!("media relay mailbox full: a leave was lost");
            }
        }
    }

    fn in_room(&self, peer: PeerId, room: Uuid) -> bool {
        self.rooms
            .room(room.into())
            .is_some_and(|r| r.contains(peer.as_uuid().into()))
    }

    fn signal(
        &mut self,
        from: PeerId,
        signal: Signal,
        received: std::time::Instant,
    ) -> Result<(), SignalError> {
        let room_id = signal.room_id.as_uuid();
        let to = match signal.to {
            PeerRef::Hub => {
                if !self.in_room(from, room_id) {
                    return Err(SignalError::NotInRoom);
                }
                return self.signal_hub(from, room_id, signal.data);
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
        if let Some(p) = self.peers.get(&to) {
            p.push(frame, Some(received));
        }
        metrics::counter!("hub_signals_relayed_total").increment(1);
        Ok(())
    }

    /// A `signal` to the media relay. The hub decides here, by role, what each peer may do:
    /// laptops and phones publish (offer), staff subscribe (answer); everyone trickles ICE.
    fn signal_hub(
        &mut self,
        from: PeerId,
        room: Uuid,
        data: SignalData,
    ) -> Result<(), SignalError> {
        let relay = self.relay.as_ref().ok_or(SignalError::NoRelay)?;
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
                offer: data.sdp().unwrap_or_default().to_string(),
                declared: declared_sources(&data),
                allowed,
            },
            SignalKind::Answer if role.is_staff() => relay::Command::Answer {
                key,
                answer: data.sdp().unwrap_or_default().to_string(),
            },
            SignalKind::Ice => {
                let candidate = match data.candidate() {
                    Some(serde_json::Value::String(c)) => c.clone(),
                    Some(serde_json::Value::Object(o)) => o
                        .get("candidate")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    _ => String::new(),
                };
                if candidate.is_empty() {
                    // End of candidates: nothing to tell the relay.
                    return Ok(());
                }
                relay::Command::Ice { key, candidate }
            }
            _ => return Err(SignalError::MediaForbidden),
        };
        if relay.try_send(cmd) {
            metrics::counter!("hub_relay_signals_total").increment(1);
            Ok(())
        } else {
            Err(SignalError::NoRelay)
        }
    }

    fn subscribe(&mut self, from: PeerId, sub: Subscribe) -> Result<(), SignalError> {
        let room = sub.room_id.as_uuid();
        if !self.in_room(from, room) {
            return Err(SignalError::NotInRoom);
        }
        let relay = self.relay.as_ref().ok_or(SignalError::NoRelay)?;
        let staff = self
            .peers
            .get(&from)
            .is_some_and(|p| p.principal.role.is_staff());
        if !staff {
            return Err(SignalError::MediaForbidden);
        }
        let cmd = relay::Command::Subscribe {
            key: PeerKey {
                room,
                peer: from.as_uuid(),
            },
            sources: sub.tracks.map(|t| t.into_iter().map(source_of).collect()),
            layer: match sub.layer {
                MediaLayer::Low => relay::Layer::Low,
                MediaLayer::High => relay::Layer::High,
            },
        };
        if relay.try_send(cmd) {
            Ok(())
        } else {
            Err(SignalError::NoRelay)
        }
    }

    /// Delivers what the relay produced as a `signal` from `"hub"` (or an `error`).
    fn relay_event(&mut self, event: relay::Event) {
        let (key, frame) = match event {
            relay::Event::Answer { key, sdp } => {
                let mut map = serde_json::Map::new();
                map.insert("kind".into(), "answer".into());
                map.insert("sdp".into(), sdp.into());
                (key, hub_signal(key.room, map))
            }
            relay::Event::Offer { key, sdp, tracks } => {
                let mut map = serde_json::Map::new();
                map.insert("kind".into(), "offer".into());
                map.insert("sdp".into(), sdp.into());
                let tracks: Vec<serde_json::Value> = tracks
                    .into_iter()
                    .map(|t| {
                        serde_json::json!({
                            "mid": t.mid,
                            "source": t.source.as_str(),
                            "peerId": PeerId::from_uuid(t.publisher),
                        })
                    })
                    .collect();
                map.insert("tracks".into(), tracks.into());
                (key, hub_signal(key.room, map))
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
        let in_room = self.in_room(peer, key.room);
        if let (true, Some(frame)) = (in_room, frame) {
            self.deliver(peer, frame);
        }
    }

    fn heartbeat(&mut self, peer: PeerId, now: Instant) {
        let Some(entry) = self.peers.get(&peer) else {
            return;
        };
        let Some((session, device)) = entry.device else {
            return;
        };
        self.effect(Effect::HeartbeatKey {
            session_id: session,
            device,
        });
        let now = now.saturating_duration_since(self.origin);
        if let Some(change) = self.liveness.on_heartbeat(key(session, device), now) {
            self.liveness_changed(change);
        }
    }

    fn poll_liveness(&mut self, now: Instant) {
        let now = now.saturating_duration_since(self.origin);
        for change in self.liveness.poll(now) {
            self.liveness_changed(change);
        }
    }

    /// When the liveness clock next needs a poll.
    fn next_deadline(&self) -> Option<Instant> {
        self.liveness.next_deadline().map(|d| self.origin + d)
    }

    fn telemetry_gap(&mut self, started: bool, now: Instant) {
        let now_d = now.saturating_duration_since(self.origin);
        if started {
            if self.liveness.gap_since().is_some() {
                return;
            }
            self.liveness.telemetry_gap_started(now_d);
            let mut sessions: Vec<Uuid> = self.devices.keys().map(|(s, _)| *s).collect();
            sessions.sort();
            sessions.dedup();
            for session in sessions {
                self.effect(Effect::SystemEvent {
                    at: chrono::Utc::now(),
                    session_id: session,
                    event_type: "TELEMETRY_GAP",
                    severity: 1,
                    meta: Some(serde_json::json!({"cause": "heartbeat store unreachable"})),
                });
            }
        } else {
            self.liveness.telemetry_gap_ended(now_d);
        }
    }

    fn liveness_changed(&mut self, change: LivenessChange) {
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
                at: chrono::Utc::now(),
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
                timestamp: signaling::Timestamp::from(chrono::Utc::now()),
            });
        }
        let exam = *exam;
        let frame = encode(&ServerMessage::SessionUpdate(view.clone()));
        self.to_watchers(exam, frame);
    }

    fn to_watchers(&self, exam: Uuid, frame: Arc<str>) {
        if let Some(watchers) = self.watchers.get(&exam) {
            for w in watchers {
                self.deliver(*w, frame.clone());
            }
        }
    }

    fn watch(&mut self, peer: PeerId, exam: Uuid, snapshot: Vec<SessionView>) {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        entry.watching.insert(exam);
        let mut sessions = Vec::with_capacity(snapshot.len());
        for mut view in snapshot {
            let id = view.session_id.as_uuid();
            // Liveness is the hub's own knowledge; the stored snapshot cannot know it.
            view.liveness = Liveness {
                laptop: device_state(self.liveness.state(key(id, Device::Laptop))),
                mobile: device_state(self.liveness.state(key(id, Device::Mobile))),
            };
            // The last event is the hub's too: keep what it saw go by.
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
        self.deliver(peer, frame);
        self.watchers.entry(exam).or_default().insert(peer);
    }

    fn update(&mut self, fact: SessionFact) {
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
            self.to_watchers(fact.exam_id, frame);
        }
    }

    fn session_devices(&self, session: Uuid) -> impl Iterator<Item = (Device, PeerId)> + '_ {
        [Device::Laptop, Device::Mobile]
            .into_iter()
            .filter_map(move |d| self.devices.get(&(session, d)).map(|p| (d, *p)))
    }

    fn hub_signal(&mut self, signal: HubSignal) {
        match signal {
            HubSignal::UserRevoked { user_id } => {
                for peer in self.users.get(&user_id).into_iter().flatten() {
                    if let Some(p) = self.peers.get(peer) {
                        p.close(CloseCode::InvalidToken);
                    }
                }
            }
            HubSignal::SessionEnded {
                session_id,
                exam_id,
                status,
                reason,
            } => {
                let status = status_of(&status);
                let frame = encode(&ServerMessage::SessionEnded { status, reason });
                for (_, peer) in self.session_devices(session_id).collect::<Vec<_>>() {
                    self.deliver(peer, frame.clone());
                    if let Some(p) = self.peers.get(&peer) {
                        p.close(CloseCode::SessionEnded);
                    }
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
                    self.to_watchers(exam_id, frame);
                }
            }
            HubSignal::SessionChanged {
                session_id,
                exam_id,
            } => {
                if let Some((_, view)) = self.views.get(&session_id) {
                    let frame = encode(&ServerMessage::SessionUpdate(view.clone()));
                    self.to_watchers(exam_id, frame);
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
                for (_, peer) in self.session_devices(session_id).collect::<Vec<_>>() {
                    self.deliver(peer, frame.clone());
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
                for (_, peer) in self.session_devices(session_id).collect::<Vec<_>>() {
                    self.deliver(peer, frame.clone());
                }
                self.to_watchers(exam_id, frame);
            }
            HubSignal::Warn {
                session_id,
                message,
            } => {
                if let (Some(peer), Ok(text)) = (
                    self.devices.get(&(session_id, Device::Laptop)),
                    signaling::WarningText::new(message),
                ) {
                    self.deliver(*peer, encode(&ServerMessage::Warning { message: text }));
                }
            }
            HubSignal::UnpairMobile { session_id } => {
                if let Some(peer) = self.devices.get(&(session_id, Device::Mobile)) {
                    if let Some(p) = self.peers.get(peer) {
                        p.close(CloseCode::SessionEnded);
                    }
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
                        if let Some(p) = self.peers.get(peer) {
                            p.close(CloseCode::Replaced);
                        }
                    }
                }
                if let Some(peer) = self.devices.get(&(session_id, Device::Laptop)) {
                    let frame = encode(&ServerMessage::PairingClaimed {
                        confirm_code,
                        device_fingerprint: Some(device_fingerprint),
                    });
                    self.deliver(*peer, frame);
                }
            }
        }
    }

    fn pairing_reject(&mut self, peer: PeerId) {
        let Some((session, Device::Laptop)) = self.peers.get(&peer).and_then(|p| p.device) else {
            return;
        };
        if let Some(phone) = self.devices.get(&(session, Device::Mobile)) {
            if let Some(p) = self.peers.get(phone) {
                p.close(CloseCode::SessionEnded);
            }
        }
        self.effect(Effect::ClearMobile {
            session_id: session,
        });
        self.effect(Effect::SystemEvent {
            at: chrono::Utc::now(),
            session_id: session,
            event_type: "MOBILE_PAIRING_REJECTED",
            severity: 2,
            meta: None,
        });
    }

    fn forget_unused_view_and_liveness(&mut self) {
        // Views are kept only for sessions whose exam is watched or whose devices are live.
        let live_sessions: HashSet<Uuid> = self.devices.keys().map(|(s, _)| *s).collect();
        let watchers = &self.watchers;
        self.views
            .retain(|s, (exam, _)| live_sessions.contains(s) || watchers.contains_key(exam));
    }
}

/// The sources a role may publish: the hub's rule, which the relay only enforces.
fn publishable(role: TokenRole) -> Vec<Source> {
    match role {
        TokenRole::Candidate => vec![Source::Camera, Source::Screen, Source::Microphone],
        TokenRole::Mobile => vec![Source::PhoneCamera],
        TokenRole::Proctor | TokenRole::Admin => Vec::new(),
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

/// An offer's optional `tracks: {"<mid>": "camera" | "screen" | …}` (extension).
fn declared_sources(data: &SignalData) -> Vec<(String, Source)> {
    let Some(serde_json::Value::Object(map)) = data.fields().get("tracks") else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(mid, v)| Some((mid.clone(), Source::parse(v.as_str()?)?)))
        .collect()
}

fn hub_signal(room: Uuid, map: serde_json::Map<String, serde_json::Value>) -> Option<Arc<str>> {
    // The relay's SDP is at most a few KiB; an oversized one is dropped rather than sent.
    let data = SignalData::new(map).ok()?;
    Some(encode(&ServerMessage::Signal {
        room_id: RoomId::from_uuid(room),
        from: PeerRef::Hub,
        data,
    }))
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
