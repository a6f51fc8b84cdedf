//! An exam's proctoring policy (`exams.proctoring_policy`, JSON, NULL = defaults): event
//! weights, the coalescing window, the flag threshold and the optional auto-termination rule;
//! and [`terminate`], the one place where the hub itself ends a session.
//!
//! ```json
//! {"weights": {"TAB_HIDDEN": 1.0, "PHONE_DETECTED": 3.0},
//!  "defaultWeight": 1.0,
//!  "coalesceSeconds": 10,
//!  "flagAt": 10.0,
//!  "autoTerminate": {"eventTypes": ["TAB_HIDDEN"], "afterWarnings": 2}}
//! ```
//!
//! Defaults: TAB_HIDDEN 1.0, FULLSCREEN_EXIT 1.0, WINDOW_BLUR 0.5, COPY_PASTE 1.0,
//! FACE_ABSENT 1.5, MULTIPLE_FACES 2.0, PHONE_DETECTED 2.0, DEVICE_MISMATCH 2.0, any other type
//! 1.0; weight 0 for what the candidate does not control: TELEMETRY_GAP, DUPLICATE_CONNECTION,
//! every `*_RECONNECTED`, `*_HEARTBEAT_LOST`, `*_DEVICE_CHANGED`, MOBILE_PAIRING_REJECTED and
//! SESSION_ENDED. Coalescing window 10 s, flag at 10.0, no auto-termination. Weights given in
//! the policy override the defaults type by type.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::error::Error;
use crate::state::{AppState, HubSignal};

/// The only event types an auto-termination rule may name: things the candidate does on
/// purpose on the laptop. Automated detectors (faces, phones) and infrastructure never end a
/// session by themselves.
pub const CANDIDATE_CONTROLLED: [&str; 4] =
    ["TAB_HIDDEN", "FULLSCREEN_EXIT", "WINDOW_BLUR", "COPY_PASTE"];

/// Event types that never weigh: infrastructure, not behaviour.
const ZERO_WEIGHT: [&str; 4] = [
    "TELEMETRY_GAP",
    "DUPLICATE_CONNECTION",
    "MOBILE_PAIRING_REJECTED",
    "SESSION_ENDED",
];

/// Terminate after `after_warnings` warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoTerminate {
    /// Counted types (a subset of [`CANDIDATE_CONTROLLED`]).
    pub event_types: Vec<String>,
    /// Warnings before the termination: the occurrence after the N-th warning terminates.
    pub after_warnings: u32,
}

/// A parsed, valid policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Per-type weights overriding the defaults.
    pub weights: HashMap<String, f64>,
    /// Weight of types neither in `weights` nor in the defaults.
    pub default_weight: f64,
    /// Repeats of one type from one source within this window of the last counted one count
    /// once.
    pub coalesce: Duration,
    /// Score at which watchers see the session flagged (`None`: never).
    pub flag_at: Option<f64>,
    /// Optional automatic warnings and termination.
    pub auto_terminate: Option<AutoTerminate>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            weights: HashMap::new(),
            default_weight: 1.0,
            coalesce: Duration::from_secs(10),
            flag_at: Some(10.0),
            auto_terminate: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAuto {
    event_types: Vec<String>,
    after_warnings: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    weights: HashMap<String, f64>,
    default_weight: Option<f64>,
    coalesce_seconds: Option<f64>,
    flag_at: Option<f64>,
    auto_terminate: Option<RawAuto>,
}

impl Policy {
    /// Parses and validates a stored policy (`None`/`null` = defaults); 422 naming the field
    /// otherwise. The exam API calls this before storing a policy.
    pub fn parse(value: Option<&Value>) -> Result<Self, Error> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(Policy::default());
        };
        let raw: Raw = serde_json::from_value(value.clone())
            .map_err(|e| Error::invalid("proctoringPolicy", e.to_string()))?;
        for (k, w) in &raw.weights {
            if signaling::EventType::new(k.as_str()).is_err() {
                return Err(Error::invalid(
                    "proctoringPolicy.weights",
                    format!("{k:?} is not an event type"),
                ));
            }
            if !w.is_finite() || *w < 0.0 || *w > 100.0 {
                return Err(Error::invalid(
                    format!("proctoringPolicy.weights.{k}"),
                    "must be between 0 and 100",
                ));
            }
        }
        let default_weight = raw.default_weight.unwrap_or(1.0);
        if !default_weight.is_finite() || !(0.0..=100.0).contains(&default_weight) {
            return Err(Error::invalid(
                "proctoringPolicy.defaultWeight",
                "must be between 0 and 100",
            ));
        }
        let coalesce = raw.coalesce_seconds.unwrap_or(10.0);
        if !coalesce.is_finite() || !(0.0..=3600.0).contains(&coalesce) {
            return Err(Error::invalid(
                "proctoringPolicy.coalesceSeconds",
                "must be between 0 and 3600",
            ));
        }
        if raw.flag_at.is_some_and(|f| !f.is_finite() || f <= 0.0) {
            return Err(Error::invalid(
                "proctoringPolicy.flagAt",
                "must be a positive number",
            ));
        }
        let auto_terminate = match raw.auto_terminate {
            None => None,
            Some(a) => {
                if a.event_types.is_empty() {
                    return Err(Error::invalid(
                        "proctoringPolicy.autoTerminate.eventTypes",
                        "must name at least one event type",
                    ));
                }
                if let Some(bad) = a
                    .event_types
                    .iter()
                    .find(|t| !CANDIDATE_CONTROLLED.contains(&t.as_str()))
                {
                    return Err(Error::invalid(
                        "proctoringPolicy.autoTerminate.eventTypes",
                        format!(
                            "{bad:?} is not candidate-controlled; allowed: {}",
                            CANDIDATE_CONTROLLED.join(", ")
                        ),
                    ));
                }
                if a.after_warnings > 100 {
                    return Err(Error::invalid(
                        "proctoringPolicy.autoTerminate.afterWarnings",
                        "must be at most 100",
                    ));
                }
                Some(AutoTerminate {
                    event_types: a.event_types,
                    after_warnings: a.after_warnings,
                })
            }
        };
        Ok(Policy {
            weights: raw.weights,
            default_weight,
            coalesce: Duration::from_secs_f64(coalesce),
            flag_at: raw.flag_at.or(Some(10.0)),
            auto_terminate,
        })
    }

    /// A stored policy, or the defaults (logged) when it is invalid: a bad policy must not
    /// stop events from being stored, and never enables auto-termination.
    pub fn from_stored(exam: Uuid, value: Option<&Value>) -> Self {
        Policy::parse(value).unwrap_or_else(|e| {
            tracing::warn!(%exam, error = %e, "invalid proctoring policy: using the defaults");
            Policy::default()
        })
    }

    /// The weight of `event_type`.
    pub fn weight(&self, event_type: &str) -> f64 {
        if let Some(w) = self.weights.get(event_type) {
            return *w;
        }
        default_weight(event_type).unwrap_or(self.default_weight)
    }

    /// True when `event_type` counts towards auto-termination.
    pub fn is_auto_terminate_type(&self, event_type: &str) -> bool {
        self.auto_terminate
            .as_ref()
            .is_some_and(|a| a.event_types.iter().any(|t| t == event_type))
    }
}

/// The built-in weight of a type, if it has one.
fn default_weight(event_type: &str) -> Option<f64> {
    if ZERO_WEIGHT.contains(&event_type)
        || event_type.ends_with("_RECONNECTED")
        || event_type.ends_with("_HEARTBEAT_LOST")
        || event_type.ends_with("_DEVICE_CHANGED")
    {
        return Some(0.0);
    }
    Some(match event_type {
        "TAB_HIDDEN" | "FULLSCREEN_EXIT" | "COPY_PASTE" => 1.0,
        "WINDOW_BLUR" => 0.5,
        "FACE_ABSENT" => 1.5,
        "MULTIPLE_FACES" | "PHONE_DETECTED" | "DEVICE_MISMATCH" => 2.0,
        _ => return None,
    })
}

/// Loads `exam`'s policy from Postgres.
pub async fn load(state: &AppState, exam: Uuid) -> Result<Policy, Error> {
    let value: Option<Option<Value>> =
        sqlx::query_scalar("SELECT proctoring_policy FROM exams WHERE id = $1")
            .bind(exam)
            .fetch_optional(&state.db)
            .await?;
    Ok(Policy::from_stored(exam, value.flatten().as_ref()))
}

/// Writes an `AUTO_WARN` action (actor NULL: the hub) and warns the candidate's laptop.
pub async fn auto_warn(
    state: &AppState,
    session: Uuid,
    event_type: &str,
    warning: u32,
    of: u32,
) -> Result<(), Error> {
    let message = format!(
        "Warning {warning} of {of}: {} was detected. Further occurrences will end your exam.",
        event_type.to_lowercase().replace('_', " ")
    );
    audit::record(
        &state.db,
        AuditEntry {
            session_id: Some(session),
            actor_id: None,
            target_user_id: None,
            action_type: "AUTO_WARN",
            reason: &message,
            payload: Some(
                serde_json::json!({"eventType": event_type, "warning": warning, "of": of}),
            ),
        },
    )
    .await?;
    state.signal(HubSignal::Warn {
        session_id: session,
        message,
    });
    Ok(())
}

/// Ends a STARTED session as TERMINATED through the one session-ending function,
/// [`crate::store::sessions::end_session`] (guarded update, MCQ scoring, `scores` row,
/// [`HubSignal::SessionEnded`] after commit), with its audit row in the same transaction
/// (`actor` NULL means the hub itself). Returns false when the session had already ended: the
/// transaction then rolls back and no audit row is written. Automated rules never set REJECTED.
pub async fn terminate(
    state: &AppState,
    session: Uuid,
    actor: Option<Uuid>,
    action_type: &str,
    reason: &str,
    payload: Option<Value>,
) -> Result<bool, Error> {
    let mut tx = state.db.begin().await?;
    audit::record(
        &mut *tx,
        AuditEntry {
            session_id: Some(session),
            actor_id: actor,
            target_user_id: None,
            action_type,
            reason,
            payload,
        },
    )
    .await?;
    let ended = state
        .end_session(tx, session, crate::model::SessionStatus::Terminated, reason)
        .await?;
    Ok(ended.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_overrides() {
        let p = Policy::parse(None).unwrap();
        assert_eq!(p.weight("TAB_HIDDEN"), 1.0);
        assert_eq!(p.weight("MULTIPLE_FACES"), 2.0);
        assert_eq!(p.weight("SOMETHING_NEW"), 1.0);
        assert_eq!(p.weight("TELEMETRY_GAP"), 0.0);
        assert_eq!(p.weight("LAPTOP_RECONNECTED"), 0.0);
        assert_eq!(p.weight("DUPLICATE_CONNECTION"), 0.0);
        assert_eq!(p.coalesce, Duration::from_secs(10));
        let p = Policy::parse(Some(
            &json!({"weights": {"TAB_HIDDEN": 3.0}, "defaultWeight": 0.5, "coalesceSeconds": 2}),
        ))
        .unwrap();
        assert_eq!(p.weight("TAB_HIDDEN"), 3.0);
        assert_eq!(p.weight("SOMETHING_NEW"), 0.5);
        assert_eq!(p.weight("FACE_ABSENT"), 1.5);
        assert_eq!(p.coalesce, Duration::from_secs(2));
        assert_eq!(
            Policy::parse(Some(&Value::Null)).unwrap(),
            Policy::default()
        );
    }

    #[test]
    fn auto_terminate_is_limited_to_candidate_controlled_types() {
        let ok = json!({"autoTerminate": {"eventTypes": ["TAB_HIDDEN", "FULLSCREEN_EXIT"], "afterWarnings": 2}});
        let p = Policy::parse(Some(&ok)).unwrap();
        assert!(p.is_auto_terminate_type("TAB_HIDDEN"));
        assert!(!p.is_auto_terminate_type("PHONE_DETECTED"));
        for bad in [
            "PHONE_DETECTED",
            "FACE_ABSENT",
            "LAPTOP_HEARTBEAT_LOST",
            "TELEMETRY_GAP",
        ] {
            let v = json!({"autoTerminate": {"eventTypes": [bad], "afterWarnings": 1}});
            assert!(
                matches!(Policy::parse(Some(&v)), Err(Error::Invalid { .. })),
                "{bad}"
            );
        }
        let empty = json!({"autoTerminate": {"eventTypes": [], "afterWarnings": 1}});
        assert!(Policy::parse(Some(&empty)).is_err());
        // An invalid stored policy falls back to the defaults: never auto-terminating.
        let stored =
            json!({"autoTerminate": {"eventTypes": ["PHONE_DETECTED"], "afterWarnings": 0}});
        assert!(Policy::from_stored(Uuid::nil(), Some(&stored))
            .auto_terminate
            .is_none());
    }

    #[test]
    fn bad_values_name_their_field() {
        for (v, field) in [
            (
                json!({"weights": {"bad type": 1.0}}),
                "proctoringPolicy.weights",
            ),
            (
                json!({"weights": {"TAB_HIDDEN": -1.0}}),
                "proctoringPolicy.weights.TAB_HIDDEN",
            ),
            (json!({"flagAt": 0}), "proctoringPolicy.flagAt"),
            (
                json!({"coalesceSeconds": -1}),
                "proctoringPolicy.coalesceSeconds",
            ),
        ] {
            match Policy::parse(Some(&v)) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{v}: {other:?}"),
            }
        }
        assert!(Policy::parse(Some(&json!({"unknown": 1}))).is_err());
    }
}
