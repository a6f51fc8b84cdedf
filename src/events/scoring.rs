//! Violation scoring, sans I/O: `violationScore = Σ severity × weight(eventType)` over a
//! session's events in `(timestamp, id)` order, where a repeat of one type from one source
//! inside the coalescing window of the last *counted* one is not counted.
//!
//! The sum is kept in thousandths as an integer, so it does not depend on the order of
//! additions: the incremental tally of the ingest and [`recompute`] over the stored events give
//! the very same number.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::policy::Policy;
use super::{ScoringInput, Source};

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Counted; `auto_occurrence` is its 1-based number among counted auto-termination types.
    Counted {
        /// `Some(n)`: the n-th counted occurrence of an auto-termination type.
        auto_occurrence: Option<u32>,
    },
    /// Inside the window of the last counted one of its kind.
    Coalesced,
    /// Older than one already applied of its kind: the tally must be recomputed from the store.
    OutOfOrder,
}

/// A session's running tally.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Σ severity × weight, in thousandths.
    milli: i64,
    /// Per (source, type): the last counted event's instant.
    last_counted: HashMap<(Source, String), DateTime<Utc>>,
    /// Per (source, type): the last applied `(timestamp, id)`.
    last_applied: HashMap<(Source, String), (DateTime<Utc>, Uuid)>,
    /// Counted occurrences of auto-termination types.
    auto_counted: u32,
}

impl Tally {
    /// The violation score.
    pub fn score(&self) -> f64 {
        self.milli as f64 / 1000.0
    }

    /// Counted occurrences of the policy's auto-termination types so far.
    pub fn auto_counted(&self) -> u32 {
        self.auto_counted
    }

    /// Applies the next event of the session.
    pub fn apply(&mut self, e: &ScoringInput, policy: &Policy) -> Applied {
        let key = (e.source, e.event_type.clone());
        let at = (e.timestamp, e.id);
        if let Some(last) = self.last_applied.get(&key) {
            if at < *last {
                return Applied::OutOfOrder;
            }
        }
        self.last_applied.insert(key.clone(), at);
        if let Some(last) = self.last_counted.get(&key) {
            let window = chrono::Duration::from_std(policy.coalesce).unwrap_or_default();
            if e.timestamp - *last < window {
                return Applied::Coalesced;
            }
        }
        self.last_counted.insert(key, e.timestamp);
        let contribution = f64::from(e.severity) * policy.weight(&e.event_type);
        self.milli += (contribution * 1000.0).round() as i64;
        let auto_occurrence =
            if e.source != Source::System && policy.is_auto_terminate_type(&e.event_type) {
                self.auto_counted += 1;
                Some(self.auto_counted)
            } else {
                None
            };
        Applied::Counted { auto_occurrence }
    }
}

/// The tally of a session from its stored events (any order: they are sorted here).
pub fn recompute(events: &[ScoringInput], policy: &Policy) -> Tally {
    let mut sorted: Vec<&ScoringInput> = events.iter().collect();
    sorted.sort_by_key(|e| (e.timestamp, e.id));
    let mut tally = Tally::default();
    for e in sorted {
        let applied = tally.apply(e, policy);
        debug_assert_ne!(applied, Applied::OutOfOrder, "sorted input");
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(source: Source, kind: &str, severity: i16, secs: i64) -> ScoringInput {
        ScoringInput {
            id: Uuid::new_v4(),
            source,
            event_type: kind.into(),
            severity,
            timestamp: DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap(),
        }
    }

    #[test]
    fn weights_times_severity_with_coalescing_per_type_and_source() {
        let p = Policy::default();
        let events = [
            ev(Source::Laptop, "TAB_HIDDEN", 3, 0),          // 3
            ev(Source::Laptop, "TAB_HIDDEN", 5, 4), // coalesced (4 s after the counted one)
            ev(Source::Laptop, "TAB_HIDDEN", 5, 9), // coalesced (9 s)
            ev(Source::Laptop, "TAB_HIDDEN", 2, 10), // counted (10 s): 2
            ev(Source::Mobile, "TAB_HIDDEN", 4, 11), // other source: 4
            ev(Source::Mobile, "MULTIPLE_FACES", 3, 12), // 3 × 2.0 = 6
            ev(Source::Laptop, "FACE_ABSENT", 2, 12), // 2 × 1.5 = 3
            ev(Source::System, "TELEMETRY_GAP", 9, 13), // weight 0
            ev(Source::System, "LAPTOP_RECONNECTED", 1, 13), // weight 0
            ev(Source::Laptop, "UNKNOWN_THING", 7, 14), // default 1.0: 7
        ];
        let t = recompute(&events, &p);
        assert_eq!(t.score(), 3.0 + 2.0 + 4.0 + 6.0 + 3.0 + 7.0);
    }

    #[test]
    fn a_repeat_inside_the_window_of_the_last_counted_one_is_not_counted() {
        // 0 counted; 6 coalesced (inside 0+10); 12 counted (12 ≥ 10 from the last *counted*);
        // 18 coalesced (6 after 12) even though it is 12 s after the coalesced one at 6.
        let p = Policy::default();
        let events = [0, 6, 12, 18]
            .map(|s| ev(Source::Laptop, "FULLSCREEN_EXIT", 1, s))
            .to_vec();
        assert_eq!(recompute(&events, &p).score(), 2.0);
    }

    #[test]
    fn incremental_equals_recompute_whatever_the_batches() {
        let p = Policy::parse(Some(
            &json!({"weights": {"A": 0.1, "B": 0.7}, "coalesceSeconds": 3}),
        ))
        .unwrap();
        let kinds = ["A", "B", "C"];
        let events: Vec<ScoringInput> = (0..200)
            .map(|i| {
                let source = if i % 3 == 0 {
                    Source::Mobile
                } else {
                    Source::Laptop
                };
                ev(
                    source,
                    kinds[i % 3],
                    (i % 10 + 1) as i16,
                    (i as i64 * 7) % 400,
                )
            })
            .collect();
        let whole = recompute(&events, &p);
        // Incremental, in per-key order but interleaved across keys differently from the sort.
        let mut by_key: Vec<&ScoringInput> = events.iter().collect();
        by_key.sort_by_key(|e| (e.event_type.clone(), e.source, e.timestamp, e.id));
        let mut inc = Tally::default();
        for e in by_key {
            assert_ne!(inc.apply(e, &p), Applied::OutOfOrder);
        }
        assert_eq!(inc.score(), whole.score());
    }

    #[test]
    fn out_of_order_is_detected_and_auto_types_are_numbered() {
        let p = Policy::parse(Some(
            &json!({"autoTerminate": {"eventTypes": ["TAB_HIDDEN"], "afterWarnings": 1}}),
        ))
        .unwrap();
        let mut t = Tally::default();
        assert_eq!(
            t.apply(&ev(Source::Laptop, "TAB_HIDDEN", 1, 20), &p),
            Applied::Counted {
                auto_occurrence: Some(1)
            }
        );
        assert_eq!(
            t.apply(&ev(Source::Laptop, "TAB_HIDDEN", 1, 25), &p),
            Applied::Coalesced
        );
        assert_eq!(
            t.apply(&ev(Source::Laptop, "TAB_HIDDEN", 1, 30), &p),
            Applied::Counted {
                auto_occurrence: Some(2)
            }
        );
        assert_eq!(
            t.apply(&ev(Source::Laptop, "TAB_HIDDEN", 1, 5), &p),
            Applied::OutOfOrder
        );
        // Other types and SYSTEM never count towards termination.
        assert_eq!(
            t.apply(&ev(Source::Laptop, "PHONE_DETECTED", 1, 30), &p),
            Applied::Counted {
                auto_occurrence: None
            }
        );
        assert_eq!(
            t.apply(&ev(Source::System, "TAB_HIDDEN", 1, 30), &p),
            Applied::Counted {
                auto_occurrence: None
            }
        );
        assert_eq!(t.auto_counted(), 2);
    }
}
