//! Decoding client frames and encoding messages.
//!
//! Decoding reads the `type` first, then parses the payload straight into that message's struct
//! (no intermediate `Value` tree), so errors can say exactly which field is wrong.

use std::borrow::Cow;

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::error::DecodeError;
use crate::limits::MAX_MESSAGE_BYTES;
use crate::message::{ClientMessage, ServerMessage};

/// Decodes one text frame from a client, with the default 64 KiB limit.
///
/// Never panics: any input yields a message or a typed [`DecodeError`].
pub fn decode_client(text: &str) -> Result<ClientMessage, DecodeError> {
    decode_client_limited(text, MAX_MESSAGE_BYTES)
}

/// Decodes one text frame from a client, rejecting frames larger than `max_bytes`.
pub fn decode_client_limited(text: &str, max_bytes: usize) -> Result<ClientMessage, DecodeError> {
    if text.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            size: text.len(),
            limit: max_bytes,
        });
    }
    let kind = peek_type(text)?;
    Ok(match kind.as_ref() {
        "auth" => ClientMessage::Auth(payload(text)?),
        "join" => ClientMessage::Join(payload(text)?),
        "leave" => ClientMessage::Leave(payload(text)?),
        "signal" => ClientMessage::Signal(payload(text)?),
        "heartbeat" => ClientMessage::Heartbeat,
        "event" => ClientMessage::Event(payload(text)?),
        "watch" => ClientMessage::Watch(payload(text)?),
        "unwatch" => ClientMessage::Unwatch(payload(text)?),
        "warn" => ClientMessage::Warn(payload(text)?),
        "pairing-reject" => ClientMessage::PairingReject,
        "subscribe" => ClientMessage::Subscribe(payload(text)?),
        other => return Err(DecodeError::UnknownType(other.chars().take(64).collect())),
    })
}

/// A string that borrows from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The envelope: a JSON object whose `type` is read while every other value is skipped without
/// allocating. Arrays (which serde would accept for structs) are refused.
struct Envelope<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
                let mut kind = None;
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    if key == "type" {
                        if kind.is_some() {
                            return Err(de::Error::duplicate_field("type"));
                        }
                        kind = Some(map.next_value::<Text<'de>>()?.0);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Envelope(kind))
            }
        }
        d.deserialize_map(V)
    }
}

fn peek_type(text: &str) -> Result<Cow<'_, str>, DecodeError> {
    match serde_json::from_str::<Envelope<'_>>(text) {
        Ok(Envelope(Some(k))) => Ok(k),
        Ok(Envelope(None)) => Err(DecodeError::NotAMessage),
        Err(e) if e.is_data() => Err(DecodeError::NotAMessage),
        Err(e) => Err(DecodeError::InvalidJson(without_position(&e))),
    }
}

/// Parses the payload struct of a known type, naming the failing field by its path.
fn payload<T: DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            DecodeError::InvalidField {
                field,
                reason: without_position(&inner),
            }
        } else {
            DecodeError::InvalidJson(without_position(&inner))
        }
    })?;
    de.end()
        .map_err(|e| DecodeError::InvalidJson(without_position(&e)))?;
    Ok(value)
}

/// serde_json appends " at line L column C"; clients get the message alone.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Serializes a server message once; the caller shares the text (e.g. as `Arc<str>`) among all
/// receivers.
pub fn encode_server(message: &ServerMessage) -> String {
    // Serializing these types cannot fail: every map key is a string and no custom `Serialize`
    // returns an error.
    serde_json::to_string(message)
        .unwrap_or_else(|_| unreachable!("server messages always serialize"))
}

/// Serializes a client message (for the load generator and tests).
pub fn encode_client(message: &ClientMessage) -> String {
    // Same reasoning as `encode_server`: these types always serialize.
    serde_json::to_string(message)
        .unwrap_or_else(|_| unreachable!("client messages always serialize"))
}

/// Decodes a server message (for the load generator and tests; the hub never needs it).
pub fn decode_server(text: &str) -> Result<ServerMessage, DecodeError> {
    serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            DecodeError::InvalidField {
                field: String::new(),
                reason: without_position(&e),
            }
        } else {
            DecodeError::InvalidJson(without_position(&e))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::CloseCode;
    use crate::field::SignalKind;
    use crate::id::{PeerId, PeerRef, RoomId};
    use crate::message::*;
    use serde_json::json;

    const ROOM: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    const PEER: &str = "9a7b1c2d-0000-4000-8000-000000000001";

    fn decode(v: serde_json::Value) -> Result<ClientMessage, DecodeError> {
        decode_client(&v.to_string())
    }

    fn field_of(e: DecodeError) -> String {
        match e {
            DecodeError::InvalidField { field, .. } => field,
            other => format!("not an invalid field: {other:?}"),
        }
    }

    #[test]
    fn decodes_every_client_type() {
        let msgs = [
            json!({"type": "auth", "token": "abc"}),
            json!({"type": "join", "roomId": ROOM}),
            json!({"type": "leave", "roomId": ROOM}),
            json!({"type": "signal", "roomId": ROOM, "to": "hub", "data": {"kind": "offer", "sdp": "v=0"}}),
            json!({"type": "heartbeat"}),
            json!({"type": "event", "eventId": PEER, "eventType": "TAB_HIDDEN", "severity": 3}),
            json!({"type": "watch", "examId": ROOM}),
            json!({"type": "unwatch", "examId": ROOM}),
            json!({"type": "warn", "sessionId": ROOM, "message": "eyes on screen"}),
            json!({"type": "pairing-reject"}),
            json!({"type": "subscribe", "roomId": ROOM, "tracks": ["camera", "phone-camera"], "layer": "low"}),
        ];
        for (m, name) in msgs.into_iter().zip(ClientMessage::TYPES) {
            let decoded = decode(m.clone()).unwrap_or_else(|e| panic!("{m}: {e}"));
            assert_eq!(decoded.type_name(), name);
        }
    }

    #[test]
    fn subscribe_defaults_and_validates() {
        let m = decode(json!({"type": "subscribe", "roomId": ROOM})).unwrap();
        match m {
            ClientMessage::Subscribe(s) => {
                assert!(s.tracks.is_none());
                assert_eq!(s.layer, MediaLayer::High);
            }
            other => panic!("not a subscribe: {other:?}"),
        }
        let bad = decode(json!({"type": "subscribe", "roomId": ROOM, "tracks": ["tv"]}));
        assert!(bad.is_err());
        let bad = decode(json!({"type": "subscribe", "roomId": ROOM, "layer": "medium"}));
        assert!(bad.is_err());
    }

    #[test]
    fn signal_keeps_target_and_data() {
        let m = decode(json!({"type": "signal", "roomId": ROOM, "to": PEER,
            "data": {"kind": "ice", "candidate": "c", "sdpMid": "0", "extra": [1, 2]}}));
        let Ok(ClientMessage::Signal(s)) = m else {
            panic!("{m:?}")
        };
        assert_eq!(s.to, PeerRef::Peer(PEER.parse().expect("uuid")));
        assert_eq!(s.data.kind(), SignalKind::Ice);
        assert_eq!(s.data.fields()["extra"], json!([1, 2]));
    }

    #[test]
    fn event_with_optional_fields() {
        let m = decode(
            json!({"type": "event", "eventId": PEER, "eventType": "FACE_MISSING",
            "severity": 10, "timestamp": "2025-01-01T00:00:00Z", "meta": {"faces": 0},
            "source": "LAPTOP", "frameRef": "frames/1.jpg", "future": true}),
        );
        let Ok(ClientMessage::Event(e)) = m else {
            panic!("{m:?}")
        };
        assert_eq!(e.severity.get(), 10);
        assert_eq!(e.source.as_ref().map(|s| s.as_str()), Some("LAPTOP"));
        assert!(e.timestamp.is_some() && e.meta.is_some() && e.frame_ref.is_some());
    }

    #[test]
    fn typed_errors() {
        assert_eq!(
            decode_client("{"),
            Err(DecodeError::InvalidJson(
                "EOF while parsing an object".into()
            ))
        );
        assert_eq!(decode_client("[\"auth\"]"), Err(DecodeError::NotAMessage));
        assert_eq!(decode_client("5"), Err(DecodeError::NotAMessage));
        assert_eq!(decode(json!({"token": "x"})), Err(DecodeError::NotAMessage));
        assert_eq!(decode(json!({"type": 1})), Err(DecodeError::NotAMessage));
        assert_eq!(
            decode(json!({"type": "nope"})),
            Err(DecodeError::UnknownType("nope".into()))
        );
        assert_eq!(
            decode_client(r#"{"type":"heartbeat","type":"auth"}"#),
            Err(DecodeError::NotAMessage)
        );
        assert!(matches!(
            decode_client("{\"type\":\"heartbeat\"} x"),
            Err(DecodeError::InvalidJson(_))
        ));
    }

    #[test]
    fn invalid_fields_are_named() {
        let f = |v| decode(v).map_err(field_of).err();
        assert_eq!(f(json!({"type": "join"})), Some(".".into()));
        assert_eq!(
            f(json!({"type": "join", "roomId": "x"})),
            Some("roomId".into())
        );
        assert_eq!(
            f(json!({"type": "event", "eventId": PEER, "eventType": "TAB", "severity": 11})),
            Some("severity".into())
        );
        assert_eq!(
            f(json!({"type": "event", "eventId": PEER, "eventType": "tab", "severity": 1})),
            Some("eventType".into())
        );
        assert_eq!(
            f(
                json!({"type": "signal", "roomId": ROOM, "to": "x", "data": {"kind": "ice", "candidate": ""}})
            ),
            Some("to".into())
        );
        assert_eq!(
            f(json!({"type": "signal", "roomId": ROOM, "to": "hub", "data": {"kind": "offer"}})),
            Some("data".into())
        );
        assert_eq!(
            f(json!({"type": "warn", "sessionId": ROOM, "message": "x".repeat(1001)})),
            Some("message".into())
        );
        let big_meta = json!({"type": "event", "eventId": PEER, "eventType": "X", "severity": 1, "meta": {"a": "b".repeat(9000)}});
        assert_eq!(f(big_meta), Some("meta".into()));
    }

    #[test]
    fn size_limit_and_fatality() {
        let big = format!(
            r#"{{"type":"auth","token":"{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        let e = decode_client(&big).expect_err("too large");
        assert_eq!(e.code(), "TOO_LARGE");
        assert_eq!(e.close_code(), Some(CloseCode::TooBig));
        assert_eq!(
            DecodeError::InvalidJson(String::new()).close_code(),
            Some(CloseCode::BadRequest)
        );
        assert!(!DecodeError::UnknownType("x".into()).is_fatal());
        assert_eq!(DecodeError::UnknownType("x".into()).code(), "UNKNOWN_TYPE");
        assert_eq!(
            decode(json!({"type": "join"})).map_err(|e| e.code()),
            Err("INVALID_FIELD")
        );
    }

    #[test]
    fn unknown_type_is_truncated() {
        let long = "x".repeat(10_000);
        let e = decode(json!({"type": long}));
        assert_eq!(e, Err(DecodeError::UnknownType("x".repeat(64))));
    }

    #[test]
    fn server_messages_encode_as_the_contract_says() {
        let room: RoomId = ROOM.parse().expect("uuid");
        let peer: PeerId = PEER.parse().expect("uuid");
        let now = crate::field::Timestamp::parse("2025-01-01T00:00:00Z").expect("time");
        let authed = ServerMessage::Authed {
            peer_id: peer,
            role: Role::Candidate,
            server_now: now,
            heartbeat_interval_ms: 5000,
            resume: None,
        };
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&encode_server(&authed)).ok(),
            Some(
                json!({"type": "authed", "peerId": PEER, "role": "CANDIDATE",
                        "serverNow": "2025-01-01T00:00:00Z", "heartbeatIntervalMs": 5000})
            )
        );
        let update = ServerMessage::SessionUpdate(SessionView {
            session_id: ROOM.parse().expect("uuid"),
            status: SessionStatus::AutoSubmitted,
            violation_score: 2.5,
            liveness: Liveness {
                laptop: DeviceState::Online,
                mobile: DeviceState::Lost,
            },
            last_event: None,
            flagged: Some(true),
            candidate_id: None,
        });
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&encode_server(&update)).ok(),
            Some(
                json!({"type": "session-update", "sessionId": ROOM, "status": "AUTO_SUBMITTED",
                        "violationScore": 2.5, "liveness": {"laptop": "ONLINE", "mobile": "LOST"}, "flagged": true})
            )
        );
        let err = ServerMessage::error("RATE_LIMITED", "slow down");
        assert_eq!(
            encode_server(&err),
            r#"{"type":"error","code":"RATE_LIMITED","message":"slow down"}"#
        );
        let left = ServerMessage::PeerLeft {
            room_id: room,
            peer_id: peer,
        };
        assert_eq!(decode_server(&encode_server(&left)), Ok(left));
    }
}
