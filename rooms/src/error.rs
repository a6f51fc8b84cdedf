//! The crate's one error type.

use crate::id::{PeerId, RoomId};
use crate::role::Role;

/// Why a room operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// A role name that is not one of CANDIDATE, MOBILE, PROCTOR, ADMIN.
    #[error("unknown role `{0}`")]
    UnknownRole(String),
    /// Candidates and phones must be bound to a session; staff must not be.
    #[error("a {0:?} principal must {1}")]
    InvalidPrincipal(Role, &'static str),
    /// A candidate or phone tried to join a room that is not its session's.
    #[error("room {0} is not yours")]
    NotYourRoom(RoomId),
    /// The sender is not a member of the room.
    #[error("not a member of room {0}")]
    NotInRoom(RoomId),
    /// The signal's target is not a member of the room (it may just have left).
    #[error("peer {0} is not in the room")]
    PeerNotInRoom(PeerId),
    /// A peer tried to signal itself.
    #[error("a peer cannot signal itself")]
    SignalToSelf,
    /// These two roles may not signal each other.
    #[error("{from:?} may not signal {to:?}")]
    SignalNotAllowed {
        /// The sender's role.
        from: Role,
        /// The target's role.
        to: Role,
    },
    /// The room exists with different session facts: a bug in the caller.
    #[error("room {0} already exists for another session")]
    RoomInfoMismatch(RoomId),
}

impl RoomError {
    /// A stable UPPER_SNAKE code for an `error` reply.
    pub fn code(&self) -> &'static str {
        match self {
            RoomError::UnknownRole(_) | RoomError::InvalidPrincipal(..) => "INVALID_PRINCIPAL",
            RoomError::NotYourRoom(_) => "FORBIDDEN",
            RoomError::NotInRoom(_) => "NOT_IN_ROOM",
            RoomError::PeerNotInRoom(_) => "PEER_NOT_FOUND",
            RoomError::SignalToSelf => "INVALID_TARGET",
            RoomError::SignalNotAllowed { .. } => "SIGNAL_NOT_ALLOWED",
            RoomError::RoomInfoMismatch(_) => "INTERNAL",
        }
    }

    /// Whether the client reached for something that is not theirs: the server closes the socket
    /// as forbidden (4507). Other errors are answered and the socket stays open (a target that
    /// just left is a normal race).
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            RoomError::NotYourRoom(_)
                | RoomError::NotInRoom(_)
                | RoomError::SignalNotAllowed { .. }
        )
    }
}
