//! Validated field types: each constructor checks its rule once, so a value of the type is valid
//! wherever it travels ("parse, don't validate"). Decoding goes through the same constructors.

use std::fmt;
use std::io;

use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::DecodeError;
use crate::limits::{MAX_META_BYTES, MAX_SDP_BYTES, MAX_TOKEN_BYTES, MAX_WARNING_CHARS};
use crate::message::TrackSource;

/// Declares a `String` newtype whose constructor runs `$check` and whose serde impls go through it.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $field:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps the value.
            pub fn new(value: impl Into<String>) -> Result<Self, DecodeError> {
                let value = value.into();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                check(&value).map_err(|reason| DecodeError::InvalidValue { field: $field, reason })?;
                Ok($name(value))
            }

            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The validated text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(s).map_err(de::Error::custom)
            }
        }
    };
}

checked_string!(
    /// An access token from `auth`. Its `Debug` never shows the secret, so it cannot leak into logs.
    Token,
    "token",
    |s| {
        if s.is_empty() {
            Err("must not be empty")
        } else if s.len() > MAX_TOKEN_BYTES {
            Err("is too long")
        } else {
            Ok(())
        }
    }
);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

checked_string!(
    /// A proctoring event type: `^[A-Z][A-Z0-9_]{0,63}$`, e.g. `TAB_HIDDEN`.
    EventType,
    "eventType",
    |s| {
        let mut bytes = s.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_uppercase());
        let rest_ok = bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if first_ok && rest_ok && s.len() <= 64 {
            Ok(())
        } else {
            Err("must match ^[A-Z][A-Z0-9_]{0,63}$")
        }
    }
);

checked_string!(
    /// Warning text from a proctor: 1 to 1000 characters, not only whitespace.
    WarningText,
    "message",
    |s| {
        if s.trim().is_empty() {
            Err("must not be empty")
        } else if s.chars().count() > MAX_WARNING_CHARS {
            Err("must be at most 1000 characters")
        } else {
            Ok(())
        }
    }
);

checked_string!(
    /// Where an event comes from (e.g. `LAPTOP`, `MOBILE`): 1 to 32 of `[A-Za-z0-9_-]`.
    EventSource,
    "source",
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(())
        } else {
            Err("must be 1 to 32 of [A-Za-z0-9_-]")
        }
    }
);

checked_string!(
    /// A reference to an uploaded frame artifact: 1 to 512 bytes without control characters.
    FrameRef,
    "frameRef",
    |s| {
        if s.is_empty() || s.len() > 512 || s.chars().any(char::is_control) {
            Err("must be 1 to 512 bytes without control characters")
        } else {
            Ok(())
        }
    }
);

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Debug for WarningText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Debug for FrameRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// An event's severity, 1 (informational) to 10 (severe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Severity(u8);

impl Severity {
    /// Validates that `value` is within 1..=10.
    pub fn new(value: u8) -> Result<Self, DecodeError> {
        if (1..=10).contains(&value) {
            Ok(Severity(value))
        } else {
            Err(DecodeError::InvalidValue {
                field: "severity",
                reason: "must be between 1 and 10",
            })
        }
    }

    /// The value, 1..=10.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u8::deserialize(d)?;
        Severity::new(v).map_err(de::Error::custom)
    }
}

/// An instant as an RFC 3339 string; serialized in UTC with as many fractional digits as it has
/// (`…T12:00:00Z`, `…T12:00:00.250Z`), so decoding and re-encoding loses nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Parses an RFC 3339 string (any offset; stored in UTC).
    /// The UTC year must be 0..=9999, so the value prints back as valid RFC 3339
    /// (`9999-12-31T23:00:00-02:00` would otherwise become year 10000).
    pub fn parse(s: &str) -> Result<Self, DecodeError> {
        let invalid = DecodeError::InvalidValue {
            field: "timestamp",
            reason: "must be an RFC 3339 date-time in years 0000 to 9999 UTC",
        };
        let t = DateTime::parse_from_rfc3339(s)
            .map_err(|_| invalid.clone())?
            .with_timezone(&Utc);
        if (0..=9999).contains(&t.year()) {
            Ok(Timestamp(t))
        } else {
            Err(invalid)
        }
    }

    /// The instant.
    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp(t)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 date-time string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Timestamp, E> {
                Timestamp::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// Counts serialized bytes without allocating, to enforce size limits on JSON values.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn serialized_len(v: &impl Serialize) -> usize {
    let mut counter = ByteCounter(0);
    // Writing to a counter cannot fail and a JSON `Value`/`Map` always serializes.
    match serde_json::to_writer(&mut counter, v) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// Free-form event metadata: a JSON object of at most 8 KiB serialized.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Meta(Map<String, Value>);

impl Meta {
    /// Validates the size of `map`.
    pub fn new(map: Map<String, Value>) -> Result<Self, DecodeError> {
        if serialized_len(&map) > MAX_META_BYTES {
            return Err(DecodeError::InvalidValue {
                field: "meta",
                reason: "must be at most 8 KiB serialized",
            });
        }
        Ok(Meta(map))
    }

    /// The object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The object, owned.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::deserialize(d)?;
        Meta::new(map).map_err(de::Error::custom)
    }
}

/// What a `signal` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalKind {
    /// An SDP offer (`sdp` required).
    Offer,
    /// An SDP answer (`sdp` required).
    Answer,
    /// A trickled ICE candidate (`candidate` required: a string, an object, or `null` for the
    /// end of candidates).
    Ice,
}

impl SignalKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Offer => "offer",
            SignalKind::Answer => "answer",
            SignalKind::Ice => "ice",
        }
    }
}

/// The `data` of a `signal`: its `kind` plus every other field the browser sent, kept verbatim so
/// nothing is lost on the way to the other peer.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalData {
    /// Offer, answer or ICE candidate.
    kind: SignalKind,
    /// Every field except `kind` (`sdp`, `candidate`, `sdpMid`, …).
    rest: Map<String, Value>,
}

impl SignalData {
    /// Validates a `data` object: `kind` is offer|answer|ice; offers and answers carry an `sdp`
    /// string of at most 32 KiB; ICE carries `candidate` (string, object or null).
    pub fn new(mut map: Map<String, Value>) -> Result<Self, DecodeError> {
        let invalid = |field, reason| DecodeError::InvalidValue { field, reason };
        let kind = match map.remove("kind") {
            Some(Value::String(k)) => match k.as_str() {
                "offer" => SignalKind::Offer,
                "answer" => SignalKind::Answer,
                "ice" => SignalKind::Ice,
                _ => return Err(invalid("kind", "must be offer, answer or ice")),
            },
            _ => return Err(invalid("kind", "must be offer, answer or ice")),
        };
        match kind {
            SignalKind::Offer | SignalKind::Answer => match map.get("sdp") {
                Some(Value::String(sdp)) if sdp.len() <= MAX_SDP_BYTES => {}
                Some(Value::String(_)) => return Err(invalid("sdp", "must be at most 32 KiB")),
                _ => return Err(invalid("sdp", "must be a string for offer and answer")),
            },
            SignalKind::Ice => match map.get("candidate") {
                Some(Value::String(_) | Value::Object(_) | Value::Null) => {}
                _ => return Err(invalid("candidate", "must be a string, an object or null")),
            },
        }
        Ok(SignalData { kind, rest: map })
    }

    /// Offer, answer or ICE.
    pub fn kind(&self) -> SignalKind {
        self.kind
    }

    /// The SDP of an offer or answer.
    pub fn sdp(&self) -> Option<&str> {
        self.rest.get("sdp").and_then(Value::as_str)
    }

    /// The `candidate` value of an ICE signal.
    pub fn candidate(&self) -> Option<&Value> {
        self.rest.get("candidate")
    }

    /// Every field except `kind`.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.rest
    }

    /// The relay's answer to a publisher's offer.
    pub fn relay_answer(sdp: String) -> Result<Self, DecodeError> {
        let mut map = Map::new();
        map.insert("kind".into(), "answer".into());
        map.insert("sdp".into(), sdp.into());
        SignalData::new(map)
    }

    /// The relay's offer to a subscriber, with what each m-line carries (extension:
    /// `tracks: [{mid, source, peerId}]`).
    pub fn relay_offer(sdp: String, tracks: &[OfferedTrack]) -> Result<Self, DecodeError> {
        let mut map = Map::new();
        map.insert("kind".into(), "offer".into());
        map.insert("sdp".into(), sdp.into());
        let tracks = serde_json::to_value(tracks).map_err(|_| DecodeError::InvalidValue {
            field: "tracks",
            reason: "must be serialisable",
        })?;
        map.insert("tracks".into(), tracks);
        SignalData::new(map)
    }

    /// An offer's declared sources, `tracks: {"<mid>": "camera" | "screen" | …}` (extension);
    /// unknown sources are left out.
    pub fn declared_tracks(&self) -> Vec<(String, TrackSource)> {
        let Some(Value::Object(map)) = self.rest.get("tracks") else {
            return Vec::new();
        };
        map.iter()
            .filter_map(|(mid, v)| {
                let source = TrackSource::deserialize(v).ok()?;
                Some((mid.clone(), source))
            })
            .collect()
    }

    /// An ICE signal's candidate line, whether sent as a string or as an
    /// `RTCIceCandidateInit` object; `None` for the end of candidates (or an empty line).
    pub fn candidate_line(&self) -> Option<&str> {
        let line = match self.candidate()? {
            Value::String(c) => c.as_str(),
            Value::Object(o) => o.get("candidate").and_then(Value::as_str)?,
            _ => return None,
        };
        (!line.is_empty()).then_some(line)
    }
}

/// One track of a relay offer: its m-line, what it shows and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferedTrack {
    /// The m-line's `mid`.
    pub mid: String,
    /// What it shows.
    pub source: TrackSource,
    /// The publishing peer.
    pub peer_id: crate::id::PeerId,
}

impl Serialize for SignalData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.rest.len() + 1))?;
        map.serialize_entry("kind", self.kind.as_str())?;
        for (k, v) in &self.rest {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for SignalData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::deserialize(d)?;
        SignalData::new(map).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn event_type_pattern() {
        assert!(EventType::new("TAB_HIDDEN").is_ok());
        assert!(EventType::new("A").is_ok());
        assert!(EventType::new(format!("A{}", "B".repeat(63))).is_ok());
        assert!(EventType::new(format!("A{}", "B".repeat(64))).is_err());
        for bad in ["", "tab", "_X", "1X", "X-Y", "X Y", "É"] {
            assert!(EventType::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn severity_range() {
        assert!(Severity::new(0).is_err());
        assert_eq!(Severity::new(1).map(Severity::get), Ok(1));
        assert_eq!(Severity::new(10).map(Severity::get), Ok(10));
        assert!(Severity::new(11).is_err());
    }

    #[test]
    fn warning_counts_characters_not_bytes() {
        assert!(WarningText::new("é".repeat(1000)).is_ok());
        assert!(WarningText::new("é".repeat(1001)).is_err());
        assert!(WarningText::new("  ").is_err());
    }

    #[test]
    fn token_debug_hides_the_secret() {
        let t = Token::new("secret.jwt.value").expect("valid");
        assert!(!format!("{t:?}").contains("secret"));
        assert!(Token::new("").is_err());
    }

    #[test]
    fn timestamps_are_rfc3339_and_print_in_utc() {
        let t = Timestamp::parse("2025-03-01T12:00:00+02:00").expect("valid");
        assert_eq!(t.to_string(), "2025-03-01T10:00:00Z");
        let t = Timestamp::parse("2025-03-01T10:00:00.123456Z").expect("valid");
        assert_eq!(t.to_string(), "2025-03-01T10:00:00.123456Z");
        assert!(Timestamp::parse("2025-03-01 12:00").is_err());
        assert!(Timestamp::parse("9999-12-31T23:00:00-02:00").is_err());
        assert!(Timestamp::parse("0000-01-01T00:30:00+01:00").is_err());
        let leap = Timestamp::parse("2016-12-31T23:59:60.5Z").expect("leap second");
        assert_eq!(Timestamp::parse(&leap.to_string()), Ok(leap));
    }

    #[test]
    fn meta_size_limit() {
        let ok = object(json!({ "k": "x".repeat(8000) }));
        assert!(Meta::new(ok).is_ok());
        let big = object(json!({ "k": "x".repeat(8200) }));
        assert!(Meta::new(big).is_err());
    }

    #[test]
    fn signal_data_keeps_every_field() {
        let data = SignalData::new(object(json!({
            "kind": "ice", "candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host",
            "sdpMid": "0", "sdpMLineIndex": 0
        })))
        .expect("valid");
        assert_eq!(data.kind(), SignalKind::Ice);
        let back = serde_json::to_value(&data).expect("serializes");
        assert_eq!(back["sdpMid"], "0");
        assert_eq!(back["sdpMLineIndex"], 0);
        assert_eq!(back["kind"], "ice");
    }

    #[test]
    fn signal_data_rules() {
        let sdp_ok = object(json!({ "kind": "offer", "sdp": "v=0" }));
        assert_eq!(
            SignalData::new(sdp_ok)
                .ok()
                .and_then(|d| d.sdp().map(str::to_owned)),
            Some("v=0".into())
        );
        assert!(SignalData::new(object(json!({ "kind": "offer" }))).is_err());
        assert!(SignalData::new(object(json!({ "kind": "answer", "sdp": 5 }))).is_err());
        let huge = "x".repeat(MAX_SDP_BYTES + 1);
        assert!(SignalData::new(object(json!({ "kind": "offer", "sdp": huge }))).is_err());
        assert!(SignalData::new(object(json!({ "kind": "bye" }))).is_err());
        assert!(SignalData::new(object(json!({ "sdp": "v=0" }))).is_err());
        assert!(SignalData::new(object(json!({ "kind": "ice" }))).is_err());
        assert!(SignalData::new(object(json!({ "kind": "ice", "candidate": null }))).is_ok());
    }
}
