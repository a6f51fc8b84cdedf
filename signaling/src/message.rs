//! The messages on the wire, client→server and server→client, exactly as CONTRACT.md lists them
//! (plus the documented extensions `unwatch`, `pairing-reject`, `subscribe` and
//! `session-snapshot`).
//!
//! Every message is a JSON object tagged by `"type"` (kebab-case) with camelCase fields. Unknown
//! fields are ignored, so newer clients keep working against this server.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::field::{
    EventSource, EventType, FrameRef, Meta, Severity, SignalData, Timestamp, Token, WarningText,
};
use crate::id::{EventId, ExamId, PeerId, PeerRef, RoomId, SessionId, UserId};

/// A message from a browser, phone or dashboard. Decode with [`decode_client`](crate::decode_client).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClientMessage {
    /// First frame: the access token.
    Auth(Auth),
    /// Join a WebRTC room.
    Join(Join),
    /// Leave a WebRTC room.
    Leave(Leave),
    /// Relay SDP or ICE to a peer or the hub.
    Signal(Signal),
    /// Liveness ping from a device, every `heartbeatIntervalMs`.
    Heartbeat,
    /// A proctoring event (tab hidden, face missing, …).
    Event(EventReport),
    /// Proctor: subscribe to an exam's session updates.
    Watch(Watch),
    /// Proctor: stop the subscription (extension).
    Unwatch(Unwatch),
    /// Proctor: send a warning to a candidate.
    Warn(Warn),
    /// Laptop: reject the phone that just claimed the pairing token (extension).
    PairingReject,
    /// Proctor: choose which of a room's tracks the hub's media relay sends, and which
    /// simulcast layer (extension).
    Subscribe(Subscribe),
}

impl ClientMessage {
    /// The wire `type` of every client message, in declaration order.
    pub const TYPES: [&'static str; 11] = [
        "auth",
        "join",
        "leave",
        "signal",
        "heartbeat",
        "event",
        "watch",
        "unwatch",
        "warn",
        "pairing-reject",
        "subscribe",
    ];

    /// This message's wire `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Auth(_) => "auth",
            ClientMessage::Join(_) => "join",
            ClientMessage::Leave(_) => "leave",
            ClientMessage::Signal(_) => "signal",
            ClientMessage::Heartbeat => "heartbeat",
            ClientMessage::Event(_) => "event",
            ClientMessage::Watch(_) => "watch",
            ClientMessage::Unwatch(_) => "unwatch",
            ClientMessage::Warn(_) => "warn",
            ClientMessage::PairingReject => "pairing-reject",
            ClientMessage::Subscribe(_) => "subscribe",
        }
    }
}

/// `{"type":"auth","token","resume"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    /// The access token (never logged: its `Debug` is redacted).
    pub token: Token,
    /// A socket coming back after a drop asks to continue its old connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
}

/// `resume: {token, lastSeq}` in `auth`: continue the connection that `authed` gave
/// `token`, replaying every hub message after `lastSeq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resume {
    /// The old connection's `resumeToken` (never logged: see [`ResumeToken`]).
    pub token: ResumeToken,
    /// The `seq` of the last hub message the client processed (0: none).
    pub last_seq: u64,
}

/// An opaque resume token: at most 128 characters; its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResumeToken(String);

impl ResumeToken {
    /// Wraps a token the hub minted.
    pub fn new(token: String) -> Self {
        ResumeToken(token)
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ResumeToken {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.len() > 128 {
            Err("a resume token has 1 to 128 characters".into())
        } else {
            Ok(ResumeToken(s))
        }
    }
}

impl From<ResumeToken> for String {
    fn from(t: ResumeToken) -> String {
        t.0
    }
}

impl std::fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeToken(…)")
    }
}

/// What `authed` says about resuming: the token to resume this connection with, how long
/// after a drop it can be resumed, and whether this socket continues an old connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeGrant {
    /// Send it back as `resume.token` after a drop.
    pub resume_token: ResumeToken,
    /// How long after a drop the connection can be resumed, in ms.
    pub resume_window_ms: u64,
    /// True when this socket continues the connection named in `auth.resume` (same `peerId`,
    /// rooms and watches; missed messages follow).
    pub resumed: bool,
}

/// `{"type":"join","roomId"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Join {
    /// The session's `webrtcRoomId`.
    pub room_id: RoomId,
}

/// `{"type":"leave","roomId"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Leave {
    /// The room to leave.
    pub room_id: RoomId,
}

/// `{"type":"signal","roomId","to","data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signal {
    /// The room both peers are in.
    pub room_id: RoomId,
    /// The receiving peer, or the hub's media relay.
    pub to: PeerRef,
    /// SDP or ICE, passed on verbatim.
    pub data: SignalData,
}

/// `{"type":"event","eventId","eventType","severity","timestamp"?,"meta"?,"source"?,"frameRef"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventReport {
    /// Client-chosen id; retries with the same id are deduplicated.
    pub event_id: EventId,
    /// What happened, e.g. `TAB_HIDDEN`.
    pub event_type: EventType,
    /// 1..=10.
    pub severity: Severity,
    /// When the client saw it (advisory: the server clock is the only clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// Free-form details, at most 8 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Which device or detector produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<EventSource>,
    /// Reference to an uploaded frame artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_ref: Option<FrameRef>,
}

/// `{"type":"watch","examId"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Watch {
    /// The exam whose sessions to follow.
    pub exam_id: ExamId,
}

/// `{"type":"unwatch","examId"}` (extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unwatch {
    /// The exam to stop following.
    pub exam_id: ExamId,
}

/// `{"type":"warn","sessionId","message"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Warn {
    /// The session whose devices get the warning.
    pub session_id: SessionId,
    /// 1..=1000 characters.
    pub message: WarningText,
}

/// What a relayed track shows (extension, used by `subscribe` and by the hub's offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrackSource {
    /// The laptop's camera.
    Camera,
    /// The laptop's screen share.
    Screen,
    /// The laptop's microphone.
    Microphone,
    /// The phone's camera.
    PhoneCamera,
}

/// A simulcast layer (extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MediaLayer {
    /// The small layer, for grid thumbnails.
    Low,
    /// The full layer.
    #[default]
    High,
}

/// `{"type":"subscribe","roomId","tracks"?,"layer"?}` (extension): the hub's media relay then
/// offers this peer the room's matching tracks (a `signal` from `"hub"` with `kind: "offer"`),
/// and offers again whenever tracks come and go. Without `tracks`, every track; without
/// `layer`, `high`. Sending it again changes the selection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscribe {
    /// The room whose tracks to receive.
    pub room_id: RoomId,
    /// Which sources; absent means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<Vec<TrackSource>>,
    /// Which simulcast layer, when the publisher offers simulcast.
    #[serde(default)]
    pub layer: MediaLayer,
}

/// A role as written on the wire: the one role type of the hub (`rooms::Role`).
pub use rooms::Role;

/// A session's state, on the wire and (with the `sqlx` feature) in Postgres
/// `session_status`: STARTED → one of the three endings, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(
    feature = "sqlx",
    sqlx(type_name = "session_status", rename_all = "SCREAMING_SNAKE_CASE")
)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    /// In progress.
    Started,
    /// Submitted by the candidate.
    Submitted,
    /// Submitted by the server at expiry.
    AutoSubmitted,
    /// Ended by a proctor or an admin.
    Terminated,
}

impl SessionStatus {
    /// The status as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Started => "STARTED",
            SessionStatus::Submitted => "SUBMITTED",
            SessionStatus::AutoSubmitted => "AUTO_SUBMITTED",
            SessionStatus::Terminated => "TERMINATED",
        }
    }

    /// True once the session ended (any status but STARTED).
    pub fn is_ended(self) -> bool {
        self != SessionStatus::Started
    }
}

/// One device's liveness as written on the wire (extension: the contract names the fields only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeviceState {
    /// No heartbeat seen yet.
    Unknown,
    /// Heartbeats arriving.
    Online,
    /// Heartbeats stopped for longer than the TTL.
    Lost,
}

/// `liveness: {laptop, mobile}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Liveness {
    /// The candidate's laptop.
    pub laptop: DeviceState,
    /// The paired phone.
    pub mobile: DeviceState,
}

/// A room member as listed in `joined`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerInfo {
    /// The member's connection.
    pub peer_id: PeerId,
    /// The member's role.
    pub role: Role,
    /// The member's account.
    pub user_id: UserId,
}

/// A STUN/TURN server for the browser's `RTCPeerConnection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServer {
    /// `stun:` / `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN REST username (`expiry:peerId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN REST credential (HMAC of the username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The latest event of a session, as shown on the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastEvent {
    /// The event's id.
    pub event_id: EventId,
    /// What happened.
    pub event_type: EventType,
    /// 1..=10.
    pub severity: Severity,
    /// When the server received it.
    pub timestamp: Timestamp,
}

/// A session as the proctor dashboard sees it: the body of `session-update` and each entry of
/// `session-snapshot`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The session.
    pub session_id: SessionId,
    /// Its status.
    pub status: SessionStatus,
    /// Weighted sum of its events' severities.
    pub violation_score: f64,
    /// Laptop and phone liveness.
    pub liveness: Liveness,
    /// The latest event, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<LastEvent>,
    /// Whether the session is flagged for review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged: Option<bool>,
    /// The candidate (snapshot entries carry it so the dashboard can label tiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_id: Option<UserId>,
}

/// A message from the hub. Encode once with [`encode_server`](crate::encode_server) and send the
/// same text to every receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    /// Reply to a valid `auth`.
    Authed {
        /// This connection's id, stamped as `from` on its signals.
        peer_id: PeerId,
        /// The authenticated role.
        role: Role,
        /// The server clock.
        server_now: Timestamp,
        /// How often to send `heartbeat`.
        heartbeat_interval_ms: u64,
        /// Resuming after a drop (absent when the hub does not keep connections).
        #[serde(default, skip_serializing_if = "Option::is_none", flatten)]
        resume: Option<ResumeGrant>,
    },
    /// Reply to `join`.
    Joined {
        /// The room joined.
        room_id: RoomId,
        /// The other members already present.
        peers: Vec<PeerInfo>,
        /// STUN/TURN servers.
        ice_servers: Vec<IceServer>,
    },
    /// Someone joined a room this peer is in.
    PeerJoined {
        /// The room.
        room_id: RoomId,
        /// The newcomer.
        peer_id: PeerId,
        /// Its role.
        role: Role,
        /// Its account.
        user_id: UserId,
    },
    /// Someone left a room this peer is in.
    PeerLeft {
        /// The room.
        room_id: RoomId,
        /// The peer that left.
        peer_id: PeerId,
    },
    /// A relayed signal; `from` is stamped by the hub.
    Signal {
        /// The room.
        room_id: RoomId,
        /// The sending peer or the hub.
        from: PeerRef,
        /// SDP or ICE, verbatim.
        data: SignalData,
    },
    /// Reply to `heartbeat`.
    HeartbeatAck {
        /// The server clock.
        server_now: Timestamp,
    },
    /// The event was stored (or was a duplicate).
    EventAck {
        /// The acknowledged event.
        event_id: EventId,
    },
    /// Reply to `watch`: every session of the exam (extension).
    SessionSnapshot {
        /// The exam.
        exam_id: ExamId,
        /// Its sessions.
        sessions: Vec<SessionView>,
    },
    /// A watched session changed.
    SessionUpdate(SessionView),
    /// A proctor's warning, to the candidate's devices.
    Warning {
        /// The text.
        message: WarningText,
    },
    /// To the session's devices at `expiresAt`: time is up, stop taking input. Saves already
    /// sent (queued offline, in flight) are still accepted until `graceEndsAt`; the session
    /// ends (`session-ended`, `AUTO_SUBMITTED`) after it, unless time is extended first.
    TimeUp {
        /// The session.
        session_id: SessionId,
        /// When its time ran out.
        expires_at: Timestamp,
        /// Until when queued saves are still accepted.
        grace_ends_at: Timestamp,
    },
    /// This node is not the home of the exam the socket is for: reconnect to `url` (the
    /// home's WebSocket URL); the socket closes with 4010 next (extension, scale-out).
    Redirect {
        /// The home node's public WebSocket URL.
        url: String,
    },
    /// Staff extended a session's time: to its devices and to the exam's watchers.
    TimeExtended {
        /// The session.
        session_id: SessionId,
        /// The new end of its time.
        expires_at: Timestamp,
    },
    /// The session ended; the socket closes with 4503 next.
    SessionEnded {
        /// The final status.
        status: SessionStatus,
        /// Why (e.g. `SUBMITTED`, `EXPIRED`, the proctor's reason).
        reason: String,
    },
    /// To the laptop: a phone claimed the pairing token.
    PairingClaimed {
        /// Short code shown on both screens.
        confirm_code: String,
        /// The phone's fingerprint, if it sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_fingerprint: Option<String>,
    },
    /// An error that keeps the socket open.
    Error {
        /// Stable UPPER_SNAKE code (see [`codes`](crate::codes)).
        code: Cow<'static, str>,
        /// Human-readable detail (never internal error text).
        message: String,
        /// The room a media error is about (`MEDIA_REJECTED`, `MEDIA_CLOSED`): a proctor may
        /// hold a media connection in many rooms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_id: Option<RoomId>,
    },
}

impl ServerMessage {
    /// An `error` reply.
    pub fn error(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code: code.into(),
            message: message.into(),
            room_id: None,
        }
    }

    /// An `error` about the media connection in `room`.
    pub fn room_error(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        room: RoomId,
    ) -> Self {
        ServerMessage::Error {
            code: code.into(),
            message: message.into(),
            room_id: Some(room),
        }
    }
}
