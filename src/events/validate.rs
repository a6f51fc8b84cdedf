//! Checking one incoming event against its sender: the source must be the sender's own (a
//! laptop reports LAPTOP events, a phone MOBILE events, only the hub SYSTEM events), the type
//! `^[A-Z][A-Z0-9_]{0,63}$`, severity 1–10, meta an object of at most 8 KiB serialized, the
//! timestamp not in the future beyond [`MAX_SKEW`] nor older than [`MAX_AGE`]. Each bad event
//! is refused on its own with a code and a reason; the rest of a batch goes on.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{to_millis, NewEvent, Source};

/// How far in the future a client's timestamp may be (clock skew).
pub const MAX_SKEW: chrono::Duration = chrono::Duration::seconds(30);
/// How old a client's timestamp may be (an offline buffer replayed late, not a forged past).
pub const MAX_AGE: chrono::Duration = chrono::Duration::hours(24);
/// Largest serialized `meta`.
pub const MAX_META_BYTES: usize = 8 * 1024;

/// The session an event is for, as looked up by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRef {
    /// The session.
    pub id: Uuid,
    /// Its exam.
    pub exam_id: Uuid,
    /// Its candidate.
    pub candidate_id: Uuid,
}

/// Why one event was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code, e.g. `INVALID_SOURCE`.
    pub code: &'static str,
    /// Human-readable detail.
    pub reason: String,
}

fn refuse(code: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        code,
        reason: reason.into(),
    }
}

/// The declared source must be the sender's (when declared at all).
pub fn check_source(declared: Option<&str>, sender: Source) -> Result<(), Refusal> {
    match declared {
        None => Ok(()),
        Some(d) if d == sender.as_str() => Ok(()),
        Some(d) => Err(refuse(
            "INVALID_SOURCE",
            format!("this sender reports {} events, not {d}", sender.as_str()),
        )),
    }
}

/// The event's instant: the client's, if plausible, else refused; the server's when absent.
pub fn check_timestamp(
    claimed: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Refusal> {
    let Some(t) = claimed else {
        return Ok(to_millis(now));
    };
    if t > now + MAX_SKEW {
        return Err(refuse("INVALID_TIMESTAMP", "timestamp is in the future"));
    }
    if t < now - MAX_AGE {
        return Err(refuse(
            "INVALID_TIMESTAMP",
            "timestamp is more than 24 h old",
        ));
    }
    Ok(to_millis(t))
}

/// Checks an event type.
pub fn check_type(t: &str) -> Result<(), Refusal> {
    signaling::EventType::new(t).map(|_| ()).map_err(|_| {
        refuse(
            "INVALID_EVENT_TYPE",
            "eventType must match ^[A-Z][A-Z0-9_]{0,63}$",
        )
    })
}

/// Checks a meta value.
pub fn check_meta(meta: Option<&Value>) -> Result<(), Refusal> {
    match meta {
        None | Some(Value::Null) => Ok(()),
        Some(m @ Value::Object(_)) => {
            if serde_json::to_vec(m).map_or(usize::MAX, |v| v.len()) > MAX_META_BYTES {
                Err(refuse(
                    "INVALID_META",
                    "meta must be at most 8 KiB serialized",
                ))
            } else {
                Ok(())
            }
        }
        Some(_) => Err(refuse("INVALID_META", "meta must be an object")),
    }
}

/// One element of an HTTP batch, checked. The event id is returned with a refusal when it
/// could be read, so the client can tell which event it was.
pub fn from_json(
    v: &Value,
    session: SessionRef,
    sender: Source,
    now: DateTime<Utc>,
) -> Result<NewEvent, (Option<Uuid>, Refusal)> {
    let Some(obj) = v.as_object() else {
        return Err((None, refuse("INVALID_EVENT", "an event must be an object")));
    };
    let event_id = obj
        .get("eventId")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Uuid>().ok())
        .ok_or_else(|| (None, refuse("INVALID_EVENT_ID", "eventId must be a UUID")))?;
    let fail = |r: Refusal| (Some(event_id), r);
    let declared = match obj.get("source") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(fail(refuse("INVALID_SOURCE", "source must be a string"))),
    };
    check_source(declared, sender).map_err(fail)?;
    let event_type = obj
        .get("eventType")
        .and_then(Value::as_str)
        .ok_or_else(|| fail(refuse("INVALID_EVENT_TYPE", "eventType is required")))?;
    check_type(event_type).map_err(fail)?;
    let severity = obj
        .get("severity")
        .and_then(Value::as_i64)
        .filter(|s| (1..=10).contains(s))
        .ok_or_else(|| {
            fail(refuse(
                "INVALID_SEVERITY",
                "severity must be an integer from 1 to 10",
            ))
        })?;
    let claimed = match obj.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| fail(refuse("INVALID_TIMESTAMP", "timestamp must be RFC 3339")))?
                .with_timezone(&Utc),
        ),
        Some(_) => {
            return Err(fail(refuse(
                "INVALID_TIMESTAMP",
                "timestamp must be RFC 3339",
            )))
        }
    };
    let timestamp = check_timestamp(claimed, now).map_err(fail)?;
    let meta = obj.get("meta").filter(|m| !m.is_null());
    check_meta(meta).map_err(fail)?;
    let frame_ref = match obj.get("frameRef") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.parse::<Uuid>().is_ok() => Some(s.to_lowercase()),
        Some(_) => {
            return Err(fail(refuse(
                "INVALID_FRAME_REF",
                "frameRef must be the reference returned by an artifact upload",
            )))
        }
    };
    Ok(NewEvent {
        id: Uuid::now_v7(),
        event_id,
        session_id: session.id,
        exam_id: session.exam_id,
        candidate_id: session.candidate_id,
        source: sender,
        event_type: event_type.to_string(),
        severity: severity as i16,
        timestamp,
        received_at: to_millis(now),
        meta: meta.cloned(),
        frame_ref,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session() -> SessionRef {
        SessionRef {
            id: Uuid::new_v4(),
            exam_id: Uuid::new_v4(),
            candidate_id: Uuid::new_v4(),
        }
    }

    fn code(v: Value, sender: Source) -> &'static str {
        from_json(&v, session(), sender, Utc::now())
            .unwrap_err()
            .1
            .code
    }

    #[test]
    fn each_rule_has_its_code() {
        let id = Uuid::new_v4();
        let now = Utc::now();
        let ok = json!({"eventId": id, "eventType": "TAB_HIDDEN", "severity": 3, "source": "LAPTOP", "meta": {"a": 1}});
        let e = from_json(&ok, session(), Source::Laptop, now).unwrap();
        assert_eq!((e.event_id, e.severity, e.source), (id, 3, Source::Laptop));
        assert_eq!(e.timestamp, to_millis(now));
        assert_eq!(code(json!(3), Source::Laptop), "INVALID_EVENT");
        assert_eq!(
            code(json!({"eventId": "x"}), Source::Laptop),
            "INVALID_EVENT_ID"
        );
        assert_eq!(
            code(
                json!({"eventId": id, "source": "MOBILE", "eventType": "A", "severity": 1}),
                Source::Laptop
            ),
            "INVALID_SOURCE"
        );
        assert_eq!(
            code(
                json!({"eventId": id, "source": "SYSTEM", "eventType": "A", "severity": 1}),
                Source::Mobile
            ),
            "INVALID_SOURCE"
        );
        assert_eq!(
            code(
                json!({"eventId": id, "eventType": "tab", "severity": 1}),
                Source::Laptop
            ),
            "INVALID_EVENT_TYPE"
        );
        assert_eq!(
            code(
                json!({"eventId": id, "eventType": "A", "severity": 11}),
                Source::Laptop
            ),
            "INVALID_SEVERITY"
        );
        assert_eq!(
            code(
                json!({"eventId": id, "eventType": "A", "severity": 0}),
                Source::Laptop
            ),
            "INVALID_SEVERITY"
        );
        let future = (now + chrono::Duration::minutes(5)).to_rfc3339();
        assert_eq!(
            code(
                json!({"eventId": id, "eventType": "A", "severity": 1, "timestamp": future}),
                Source::Laptop
            ),
            "INVALID_TIMESTAMP"
        );
        let big = "x".repeat(9000);
        assert_eq!(
            code(
                json!({"eventId": id, "eventType": "A", "severity": 1, "meta": {"b": big}}),
                Source::Laptop
            ),
            "INVALID_META"
        );
        assert_eq!(
            code(
                json!({"eventId": id, "eventType": "A", "severity": 1, "meta": [1]}),
                Source::Laptop
            ),
            "INVALID_META"
        );
        assert_eq!(
            code(
                json!({"eventId": id, "eventType": "A", "severity": 1, "frameRef": "../etc"}),
                Source::Laptop
            ),
            "INVALID_FRAME_REF"
        );
        // A small skew is fine and kept (to the millisecond).
        let skewed = now + chrono::Duration::seconds(5);
        let e = from_json(&json!({"eventId": id, "eventType": "A", "severity": 1, "timestamp": skewed.to_rfc3339()}), session(), Source::Laptop, now).unwrap();
        assert_eq!(e.timestamp, to_millis(skewed));
    }
}
