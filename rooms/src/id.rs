//! Domain identifiers: UUIDs with a type per kind so they cannot be mixed up.
//!
//! They carry no serde: the wire format lives in the `signaling` crate, and the server converts
//! with `From<Uuid>` / [`as_uuid`](PeerId::as_uuid).

use std::fmt;

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                $name(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }
    };
}

uuid_id!(
    /// One WebSocket connection.
    PeerId
);
uuid_id!(
    /// A WebRTC room: a session's `webrtcRoomId`.
    RoomId
);
uuid_id!(
    /// An exam session.
    SessionId
);
uuid_id!(
    /// An exam.
    ExamId
);
uuid_id!(
    /// A user account.
    UserId
);
