//! The hub: the real-time side of exam sessions. [`core::Core`] holds every room's
//! membership, the live devices of each session, the proctors watching each exam and device
//! liveness, without I/O; [`Hub`] is the actor that owns it, feeds it commands, hub signals,
//! relay events and deadlines with the time, and is the only place that executes what it
//! asks for (queue a frame on a socket, close a socket, store work, a relay command). Sockets
//! talk to the actor through [`HubHandle`]; nothing else touches its state, so there is no
//! lock and nothing is held across an `.await`.

pub mod core;
pub mod effects;
pub mod events;
pub mod ice;
pub mod resume;
pub mod watch;

use std::collections::HashMap;
use std::time::Duration;

use signaling::{CloseCode, PeerId, ServerMessage, SessionStatus, SessionView, Signal, Subscribe};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::config::IceConfig;
use crate::model::Role;
use crate::relay::{self, RelayHandle};
use crate::state::HubSignal;
use crate::store::sessions_lookup::SessionFacts;
use crate::ws::outbox::Outbox;
pub use core::{device_str, Now, Output};
pub use rooms::Device;

/// Who is on the other end of a socket.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The id the hub gave this connection.
    pub peer_id: PeerId,
    /// The user (for a phone: the candidate owning the session).
    pub user_id: Uuid,
    /// The token's role.
    pub role: Role,
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
    Unregister(PeerId, Outbox),
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
    ExamsInUse(oneshot::Sender<std::collections::HashSet<Uuid>>),
    DeviceSessions(oneshot::Sender<Vec<Uuid>>),
    LetGo(Uuid),
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
    pub role: Role,
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
        self.send(Command::Unregister(peer, socket.clone())).await;
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

    /// The media relay, when enabled.
    pub fn relay(&self) -> Option<RelayHandle> {
        self.relay.clone()
    }

    /// The exams whose rooms, watches or devices this node serves.
    pub async fn exams_in_use(&self) -> std::collections::HashSet<Uuid> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::ExamsInUse(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// The sessions whose devices are connected to this node.
    pub async fn device_sessions(&self) -> Vec<Uuid> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::DeviceSessions(tx)).await;
        rx.await.unwrap_or_default()
    }

    /// Another node is `exam`'s home now: its sockets here close with 4010.
    pub async fn let_go(&self, exam: Uuid) {
        self.send(Command::LetGo(exam)).await;
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

/// The actor: owns the [`core::Core`] and the sockets' queues, and executes what the core
/// asks for.
pub struct Hub {
    core: core::Core,
    /// The socket queue of every attached (or detached, until its window ends) peer.
    sockets: HashMap<PeerId, Outbox>,
    /// The media relay, when enabled.
    relay: Option<RelayHandle>,
    /// Offers and answers the relay wants delivered.
    relay_events: Option<mpsc::UnboundedReceiver<relay::Event>>,
    effects: mpsc::UnboundedSender<Effect>,
    rx: mpsc::Receiver<Command>,
}

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
    let core = core::Core::new(
        std::time::Instant::now(),
        heartbeat_interval,
        resume_window,
        ice,
        relay.is_some(),
    );
    let hub = Hub {
        core,
        sockets: HashMap::new(),
        relay: relay.clone(),
        relay_events,
        effects,
        rx,
    };
    (HubHandle { tx, relay }, hub, effects_rx)
}

impl Hub {
    /// Runs until `shutdown` fires, handling commands, hub signals, relay events and liveness
    /// deadlines.
    pub async fn run(
        mut self,
        mut signals: broadcast::Receiver<HubSignal>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let mut expiry = tokio::time::interval(Duration::from_millis(500));
        expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.core.next_deadline();
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = expiry.tick() => self.core.expire_detached(Now::real()),
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                signal = signals.recv() => match signal {
                    Ok(signal) => self.core.hub_signal(signal),
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
                        Some(d) => tokio::time::sleep_until(d.into()).await,
                        None => std::future::pending().await,
                    }
                } => self.core.poll_liveness(Now::real()),
                Some(event) = async {
                    match self.relay_events.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => self.core.relay_event(event),
            }
            self.execute();
        }
        // Shutdown: every socket closes with 4001.
        self.core.close_all(CloseCode::ShuttingDown);
        self.execute();
    }

    /// True when `socket` is still the queue `peer` lives on (a resumed peer has moved on).
    fn is_current(&self, peer: PeerId, socket: &Outbox) -> bool {
        self.sockets
            .get(&peer)
            .is_some_and(|s| s.same_socket(socket))
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Register(p, outbox, token) => {
                self.sockets.insert(p.peer_id, outbox);
                self.core.register(p, token, Now::real());
            }
            Command::Unregister(peer, socket) => {
                if self.is_current(peer, &socket) {
                    self.core.unregister(peer);
                }
            }
            Command::Detach(peer, socket) => {
                if self.is_current(peer, &socket) {
                    self.core.detach(peer, Now::real());
                }
            }
            Command::ClaimResume(claim, reply) => {
                let _ = reply.send(self.core.claim_resume(&claim, Now::real()));
            }
            Command::Reattach(peer, outbox, last_seq) => {
                self.sockets.insert(peer, outbox.clone());
                if !self.core.reattach(peer, last_seq) {
                    // Let go meanwhile: the new socket has nothing to continue.
                    self.sockets.remove(&peer);
                    outbox.close_with(CloseCode::SessionEnded);
                }
            }
            Command::Join(peer, facts, reply) => {
                let _ = reply.send(self.core.join(peer, &facts, Now::real()));
            }
            Command::Leave(peer, room) => self.core.leave(peer, room),
            Command::Signal(peer, signal, received) => {
                match self.core.signal(peer, signal, received) {
                    Ok(None) => {}
                    Ok(Some(cmd)) => {
                        if let Err(e) = self.to_relay(cmd) {
                            self.core.refuse(peer, e);
                        }
                    }
                    Err(e) => self.core.refuse(peer, e),
                }
            }
            Command::Subscribe(peer, sub, reply) => {
                let result = self
                    .core
                    .subscribe(peer, sub)
                    .and_then(|cmd| self.to_relay(cmd));
                let _ = reply.send(result);
            }
            Command::Heartbeat(peer) => self.core.heartbeat(peer, Now::real()),
            Command::Watch(peer, exam, snapshot) => self.core.watch(peer, exam, snapshot),
            Command::Unwatch(peer, exam) => self.core.unwatch(peer, exam),
            Command::Update(fact) => self.core.update(fact),
            Command::PairingReject(peer) => self.core.pairing_reject(peer, Now::real()),
            Command::TelemetryGap(started) => self.core.telemetry_gap(started, Now::real()),
            Command::Stats(reply) => {
                let _ = reply.send(self.core.stats());
            }
            Command::ExamsInUse(reply) => {
                let _ = reply.send(self.core.exams_in_use());
            }
            Command::DeviceSessions(reply) => {
                let _ = reply.send(self.core.device_sessions());
            }
            Command::LetGo(exam) => self.core.let_go(exam),
        }
    }

    /// Hands the relay a command a peer asked for; a full mailbox is the peer's
    /// `RELAY_UNAVAILABLE`.
    fn to_relay(&self, cmd: relay::Command) -> Result<(), SignalError> {
        let relay = self.relay.as_ref().ok_or(SignalError::NoRelay)?;
        if relay.try_send(cmd) {
            metrics::counter!("hub_relay_signals_total").increment(1);
            Ok(())
        } else {
            Err(SignalError::NoRelay)
        }
    }

    /// Executes what the core asked for, in order.
    fn execute(&mut self) {
        for output in self.core.drain() {
            match output {
                Output::Deliver {
                    peer,
                    frame,
                    seq,
                    since,
                } => {
                    if let Some(s) = self.sockets.get(&peer) {
                        s.push_seq(frame, seq, since);
                    }
                }
                Output::Reply { peer, frame } => {
                    if let Some(s) = self.sockets.get(&peer) {
                        s.push(frame);
                    }
                }
                Output::Close { peer, code } => {
                    if let Some(s) = self.sockets.get(&peer) {
                        s.close_with(code);
                    }
                }
                Output::Displace { peer, code } => {
                    // Removed first, so the old socket's closing does not end the peer.
                    if let Some(s) = self.sockets.remove(&peer) {
                        s.close_with(code);
                    }
                }
                Output::Release { peer } => {
                    self.sockets.remove(&peer);
                }
                Output::Effect(e) => {
                    let _ = self.effects.send(e);
                }
                Output::Relay(cmd) => {
                    if !self.relay.as_ref().is_some_and(|r| r.try_send(cmd)) {
                        tracing::error!("media relay mailbox full: a leave was lost");
                    }
                }
            }
        }
    }
}
