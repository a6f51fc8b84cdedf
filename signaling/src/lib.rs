//! Proctor Hub's WebSocket wire protocol: the only crate that knows the wire format.
//!
//! - [`message`]: typed client→server ([`ClientMessage`]) and server→client ([`ServerMessage`])
//!   messages, serde internally tagged by `"type"`, camelCase fields, as in CONTRACT.md.
//! - [`decode_client`] turns a text frame into a message or a typed [`DecodeError`] (with a
//!   stable `code` and whether it is fatal); [`encode_server`] serializes once for fan-out.
//! - [`id`] and [`field`]: ids and values that validate when built or decoded.
//! - [`CloseCode`], [`Limits`], [`TokenBucket`]: close codes, per-connection limits and the
//!   inbound rate limiter.
//! - [`Connection`]: the per-connection state machine (auth phase, rate limit, ping/pong), and
//!   [`authenticate`], which runs the auth phase over any `futures` `Stream`/`Sink`.
//!
//! # What this crate must not do
//! No I/O and no clocks: it opens no sockets, spawns no tasks, reads no time (every timer
//! decision takes a `now` argument), touches no store and knows nothing about rooms or exams
//! beyond their ids. It does not depend on tokio or axum; the server adapts its socket to
//! [`Inbound`]/[`Outbound`].
//!
//! # How the server drives a socket
//! ```text
//! let mut conn = Connection::new(limits.clone(), clock.now());
//! let principal = authenticate(&mut conn, &mut inbound, &mut outbound,
//!                              tokio::time::sleep(limits.auth_timeout), verify).await?;
//! loop {
//!     select! {
//!         frame = inbound.next() => match conn.on_frame(frame.unwrap_or(Inbound::Close), clock.now()) {
//!             Action::Request(msg) => handle(msg),           // join, signal, heartbeat, …
//!             Action::Reply(msg) => outbound.send(Outbound::message(&msg)).await,
//!             Action::Close(code) => { outbound.send(Outbound::Close(code)).await; break }
//!             Action::Disconnected => break,
//!             _ => {}
//!         },
//!         _ = sleep_until(origin + conn.next_timeout()) => match conn.on_timeout(clock.now()) {
//!             Action::Ping => outbound.send(Outbound::Ping).await,
//!             Action::Close(code) => { outbound.send(Outbound::Close(code)).await; break }
//!             _ => {}
//!         },
//!         text = fanout.recv() => outbound.send(Outbound::Text(text)).await,  // Arc<str>
//!     }
//! }
//! ```

pub mod bucket;
pub mod close;
pub mod connection;
pub mod decode;
pub mod error;
pub mod field;
pub mod id;
pub mod limits;
pub mod message;

pub use bucket::{TokenBucket, Verdict};
pub use close::CloseCode;
pub use connection::{
    authenticate, Action, Admission, Connection, Inbound, Outbound, Phase, Unauthenticated,
};
pub use decode::{
    decode_client, decode_client_limited, decode_server, encode_client, encode_server,
};
pub use error::{codes, DecodeError};
pub use field::{
    EventSource, EventType, FrameRef, Meta, OfferedTrack, Severity, SignalData, SignalKind,
    Timestamp, Token, WarningText,
};
pub use id::{EventId, ExamId, PeerId, PeerRef, RoomId, SessionId, UserId};
pub use limits::Limits;
pub use message::{
    Auth, ClientMessage, DeviceState, EventReport, IceServer, Join, LastEvent, Leave, Liveness,
    MediaLayer, PeerInfo, Resume, ResumeGrant, ResumeToken, Role, ServerMessage, SessionStatus,
    SessionView, Signal, Subscribe, TrackSource, Unwatch, Warn, Watch,
};
