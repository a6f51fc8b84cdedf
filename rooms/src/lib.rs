//! Proctor Hub's room domain: roles and principals, room membership and join rules, who may
//! signal whom, and device liveness deadlines.
//!
//! Everything here is a state machine that takes input (and `now`, as a `Duration` since an
//! origin the caller picks) and returns output: presence notifications naming their recipients,
//! replaced peers to close, liveness changes. The server delivers them.
//!
//! # What this crate must not do
//! No I/O, no clocks, no async: no sockets, channels, tasks, locks or stores, and no
//! `Instant::now()` — time only ever arrives as an argument, so tests run on simulated time. No
//! wire format either: no serde here; the `signaling` crate owns the JSON and the server maps
//! between the two (ids through `Uuid`, roles by name).
//!
//! # How the server uses it
//! One owner per state: [`Rooms`] and [`Liveness`] live inside one actor task (or one per shard
//! of rooms) that receives commands from the WebSocket tasks over a channel, e.g.
//! ```
//! use rooms::*;
//! use uuid::Uuid;
//!
//! let info = RoomInfo {
//!     room_id: Uuid::from_u128(1).into(),
//!     session_id: Uuid::from_u128(2).into(),
//!     exam_id: Uuid::from_u128(3).into(),
//!     candidate_id: Uuid::from_u128(4).into(),
//! };
//! let laptop = Principal::new(info.candidate_id, Role::Candidate, Some(info.session_id))?;
//! let proctor = Principal::new(Uuid::from_u128(5).into(), Role::Proctor, None)?;
//! let (laptop_peer, proctor_peer): (PeerId, PeerId) = (Uuid::from_u128(10).into(), Uuid::from_u128(11).into());
//!
//! let mut rooms = Rooms::new();
//! rooms.join(laptop_peer, &laptop, info)?;
//! let joined = rooms.join(proctor_peer, &proctor, info)?;
//! // Send `joined` with `joined.peers`; deliver each `joined.presence` to its recipients;
//! // close `joined.replaced` (if any) with 4504.
//! assert_eq!(joined.presence[0].recipients, vec![laptop_peer]);
//! // Before relaying a signal: NotInRoom / SignalNotAllowed → close 4507.
//! rooms.check_signal(proctor_peer, info.room_id, laptop_peer)?;
//! // On disconnect: deliver the peer-left notifications.
//! let _left: Vec<Presence> = rooms.leave_all(proctor_peer);
//! # Ok::<(), RoomError>(())
//! ```
//!
//! Liveness in the same actor: on every `heartbeat` call [`Liveness::on_heartbeat`] (key =
//! session + [`Role::device`]); sleep until [`Liveness::next_deadline`] and then call
//! [`Liveness::poll`]; publish each [`LivenessChange`] as a `session-update`. When the heartbeat
//! store fails call [`Liveness::telemetry_gap_started`] (and record a `TELEMETRY_GAP`), when it
//! recovers [`Liveness::telemetry_gap_ended`]; when a session ends, [`Liveness::forget_session`].

pub mod error;
pub mod id;
pub mod liveness;
pub mod registry;
pub mod role;
pub mod room;

pub use error::RoomError;
pub use id::{ExamId, PeerId, RoomId, SessionId, UserId};
pub use liveness::{Device, Liveness, LivenessChange, LivenessKey, LivenessState};
pub use registry::Rooms;
pub use role::{Principal, Role};
pub use room::{Joined, Member, Presence, PresenceEvent, Room, RoomInfo};
