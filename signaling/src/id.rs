//! Identifiers on the wire: UUID strings, validated when decoded.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use crate::error::DecodeError;

/// Parses the canonical hyphenated form only (36 characters), as the hub itself emits.
fn parse_uuid(s: &str, field: &'static str) -> Result<Uuid, DecodeError> {
    let invalid = DecodeError::InvalidValue {
        field,
        reason: "must be a UUID string",
    };
    if s.len() != 36 {
        return Err(invalid);
    }
    Uuid::try_parse(s).map_err(|_| invalid)
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID the server already trusts (e.g. one it generated or loaded).
            pub const fn from_uuid(id: Uuid) -> Self {
                $name(id)
            }

            /// A new random (v4) id.
            pub fn new_v4() -> Self {
                $name(Uuid::new_v4())
            }

            /// Parses the canonical hyphenated UUID form.
            pub fn parse(s: &str) -> Result<Self, DecodeError> {
                parse_uuid(s, $field).map($name)
            }

            /// The UUID inside, for conversion to the domain's id types.
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

        impl FromStr for $name {
            type Err = DecodeError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
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

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut buf = Uuid::encode_buffer();
                s.serialize_str(self.0.hyphenated().encode_lower(&mut buf))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a UUID string")
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$name, E> {
                        $name::parse(s).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

uuid_id!(
    /// A connection's id, assigned by the hub at `authed`.
    PeerId,
    "peerId"
);
uuid_id!(
    /// A WebRTC room (`webrtcRoomId` of a session).
    RoomId,
    "roomId"
);
uuid_id!(
    /// An exam session.
    SessionId,
    "sessionId"
);
uuid_id!(
    /// An exam.
    ExamId,
    "examId"
);
uuid_id!(
    /// A user account.
    UserId,
    "userId"
);
uuid_id!(
    /// A client-chosen event id that makes event retries idempotent.
    EventId,
    "eventId"
);

/// The other end of a `signal`: a peer, or the hub's media relay (`"hub"` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRef {
    /// The hub's media relay (SFU).
    Hub,
    /// Another peer in the same room.
    Peer(PeerId),
}

impl Serialize for PeerRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PeerRef::Hub => s.serialize_str("hub"),
            PeerRef::Peer(p) => p.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for PeerRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PeerRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a peer id or \"hub\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PeerRef, E> {
                if s == "hub" {
                    return Ok(PeerRef::Hub);
                }
                parse_uuid(s, "to")
                    .map(|u| PeerRef::Peer(PeerId(u)))
                    .map_err(|_| E::custom("must be a peer id or \"hub\""))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_only_canonical_uuids() {
        let s = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
        assert_eq!(RoomId::parse(s).map(|r| r.to_string()), Ok(s.to_owned()));
        assert!(RoomId::parse("3f2504e04f8941d39a0c0305e82c3301").is_err());
        assert!(RoomId::parse("{3f2504e0-4f89-41d3-9a0c-0305e82c3301}").is_err());
        assert!(RoomId::parse("").is_err());
        assert!(RoomId::parse("zz2504e0-4f89-41d3-9a0c-0305e82c3301").is_err());
    }

    #[test]
    fn peer_ref_is_hub_or_a_peer() {
        let hub: PeerRef = serde_json::from_str("\"hub\"").expect("valid");
        assert_eq!(hub, PeerRef::Hub);
        let p = PeerId::new_v4();
        let json = serde_json::to_string(&PeerRef::Peer(p)).expect("serializes");
        assert_eq!(
            serde_json::from_str::<PeerRef>(&json).ok(),
            Some(PeerRef::Peer(p))
        );
        assert!(serde_json::from_str::<PeerRef>("\"HUB\"").is_err());
        assert!(serde_json::from_str::<PeerRef>("5").is_err());
    }
}
