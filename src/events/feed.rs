//! The live feed: takes the events the ingest just committed (new ones only, in commit order),
//! keeps each active session's violation tally, persists `sessions.violation_score` right after
//! each batch (one statement for every session of the batch), pushes a `session-update` per
//! event to watching proctors, and applies the exam policy's automatic warnings and
//! termination.
//!
//! The tally of a session first seen (or seen out of order) is recomputed from the store, so a
//! restart or a late event never changes the number the pure [`scoring::recompute`] gives.
//! Automatic actions are counted against the `AUTO_WARN` rows already written, so a restart
//! neither repeats nor skips a warning.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use signaling::{LastEvent, SessionStatus, Severity, Timestamp};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::policy::{self, Policy};
use super::scoring::{self, Applied, Tally};
use super::{NewEvent, ScoringInput, SharedStore};
use crate::error::Error;
use crate::hub::SessionFact;
use crate::state::AppState;

/// How long a policy is trusted before it is read again (policy edits apply within this).
const POLICY_TTL: Duration = Duration::from_secs(30);
/// Sessions untouched this long are forgotten (reloaded from the store if they come back).
const IDLE: Duration = Duration::from_secs(600);
/// Most sessions loaded from the store with one pair of queries.
const LOAD_CHUNK: usize = 500;

/// What the feed keeps of one session.
struct Live {
    /// The running tally.
    tally: Tally,
    /// Row ids already in the tally (a batch committed before the first load is not counted
    /// twice).
    applied: HashSet<Uuid>,
    /// Auto-termination occurrences already acted upon (warned or terminated).
    acted: u32,
    /// Last known status.
    status: SessionStatus,
    /// Last batch that touched it.
    touched: Instant,
}

/// The feed's state.
struct Feed {
    state: AppState,
    store: SharedStore,
    sessions: HashMap<Uuid, Live>,
    policies: HashMap<Uuid, (Policy, Instant)>,
}

/// Runs until the ingest's writer stops (its sender dropped).
pub async fn run(
    state: AppState,
    store: SharedStore,
    mut committed: mpsc::Receiver<Vec<NewEvent>>,
) {
    let mut feed = Feed {
        state,
        store,
        sessions: HashMap::new(),
        policies: HashMap::new(),
    };
    while let Some(batch) = committed.recv().await {
        let started = std::time::Instant::now();
        feed.batch(batch).await;
        metrics::histogram!("hub_event_feed_batch_seconds").record(started.elapsed().as_secs_f64());
    }
}

impl Feed {
    async fn policy(&mut self, exam: Uuid) -> Policy {
        if let Some((p, at)) = self.policies.get(&exam) {
            if at.elapsed() < POLICY_TTL {
                return p.clone();
            }
        }
        match policy::load(&self.state, exam).await {
            Ok(p) => {
                self.policies.insert(exam, (p.clone(), Instant::now()));
                p
            }
            Err(e) => {
                tracing::warn!(%exam, error = %e, "cannot load the proctoring policy");
                self.policies
                    .get(&exam)
                    .map_or_else(Policy::default, |(p, _)| p.clone())
            }
        }
    }

    /// The tallies of `wanted` sessions recomputed from the store, with the warnings already
    /// given, in two queries whatever their number. Each session's `pending` events (the
    /// batch at hand) are left out, to be applied one by one. A session not in the store is
    /// left out of the answer.
    async fn load(
        &self,
        wanted: &[(Uuid, &Policy, HashSet<Uuid>)],
    ) -> Result<HashMap<Uuid, Live>, Error> {
        let ids: Vec<Uuid> = wanted.iter().map(|w| w.0).collect();
        let mut inputs = self
            .store
            .scoring_inputs_of(&ids)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let rows: Vec<(Uuid, SessionStatus, i64)> = sqlx::query_as(
            "SELECT s.id, s.status,
                    (SELECT count(*) FROM admin_actions a
                      WHERE a.session_id = s.id AND a.action_type = 'AUTO_WARN')
               FROM sessions s WHERE s.id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&self.state.db)
        .await?;
        let found: HashMap<Uuid, (SessionStatus, i64)> = rows
            .into_iter()
            .map(|(id, status, warned)| (id, (status, warned)))
            .collect();
        let mut out = HashMap::with_capacity(wanted.len());
        for (session, policy, pending) in wanted {
            let Some((status, warned)) = found.get(session) else {
                continue;
            };
            let mut mine = inputs.remove(session).unwrap_or_default();
            mine.retain(|e| !pending.contains(&e.id));
            out.insert(
                *session,
                Live {
                    tally: scoring::recompute(&mine, policy),
                    applied: mine.iter().map(|e| e.id).collect(),
                    acted: u32::try_from(*warned).unwrap_or(u32::MAX),
                    status: *status,
                    touched: Instant::now(),
                },
            );
        }
        Ok(out)
    }

    /// Loads the tallies of the sessions this batch is the first to touch, all together: at
    /// an exam's start (or after a restart) hundreds of sessions send their first event
    /// within a second, and loading them one after the other held every proctor's update
    /// behind those queries. Sessions that cannot be loaded are logged and skipped.
    async fn load_new(
        &mut self,
        by_session: &HashMap<Uuid, Vec<NewEvent>>,
        policies: &HashMap<Uuid, Policy>,
    ) {
        let fallback = Policy::default();
        let wanted: Vec<(Uuid, &Policy, HashSet<Uuid>)> = by_session
            .iter()
            .filter(|(session, _)| !self.sessions.contains_key(session))
            .map(|(session, events)| {
                let policy = policies.get(&events[0].exam_id).unwrap_or(&fallback);
                (*session, policy, events.iter().map(|e| e.id).collect())
            })
            .collect();
        for chunk in wanted.chunks(LOAD_CHUNK) {
            match self.load(chunk).await {
                Ok(loaded) => self.sessions.extend(loaded),
                Err(e) => {
                    tracing::warn!(sessions = chunk.len(), error = %e, "cannot score sessions now");
                }
            }
        }
    }

    async fn batch(&mut self, events: Vec<NewEvent>) {
        // One scoring writer per session: events of exams another node is the home of go
        // to that home.
        let events = match &self.state.cluster {
            Some((cluster, _)) => {
                let bus = crate::cluster::notices::RedisBus::new(
                    self.state.redis.clone(),
                    &self.state.config.redis_prefix,
                );
                crate::cluster::notices::route_events(cluster, &bus, events).await
            }
            None => events,
        };
        if events.is_empty() {
            return;
        }
        let mut by_session: HashMap<Uuid, Vec<NewEvent>> = HashMap::new();
        for e in events {
            by_session.entry(e.session_id).or_default().push(e);
        }
        let mut policies: HashMap<Uuid, Policy> = HashMap::new();
        for events in by_session.values_mut() {
            events.sort_by_key(|e| (e.timestamp, e.id));
            let exam = events[0].exam_id;
            if let Entry::Vacant(slot) = policies.entry(exam) {
                slot.insert(self.policy(exam).await);
            }
        }
        self.load_new(&by_session, &policies).await;
        // (session, exam, policy, per-event running scores)
        let mut touched = Vec::with_capacity(by_session.len());
        for (session, events) in by_session {
            let exam = events[0].exam_id;
            let policy = policies.get(&exam).cloned().unwrap_or_default();
            if !self.sessions.contains_key(&session) {
                // Not loaded (logged above): scored when a later batch can load it.
                continue;
            }
            let mut running = Vec::with_capacity(events.len());
            let mut reload = false;
            if let Some(live) = self.sessions.get_mut(&session) {
                live.touched = Instant::now();
                for e in &events {
                    if !live.applied.contains(&e.id) {
                        if live.tally.apply(&ScoringInput::from(e), &policy) == Applied::OutOfOrder
                        {
                            reload = true;
                            break;
                        }
                        live.applied.insert(e.id);
                    }
                    running.push(live.tally.score());
                }
            }
            if reload {
                // Everything of this batch is committed: the store's view includes it.
                let acted = self.sessions.get(&session).map_or(0, |l| l.acted);
                let loaded = self
                    .load(&[(session, &policy, HashSet::new())])
                    .await
                    .and_then(|mut l| {
                        l.remove(&session)
                            .ok_or_else(|| Error::Internal("session gone".into()))
                    });
                match loaded {
                    Ok(mut live) => {
                        live.acted = live.acted.max(acted);
                        running = vec![live.tally.score(); events.len()];
                        self.sessions.insert(session, live);
                    }
                    Err(e) => {
                        tracing::warn!(%session, error = %e, "cannot rescore the session now");
                        self.sessions.remove(&session);
                        continue;
                    }
                }
            }
            touched.push((session, exam, policy, events, running));
        }
        if touched.is_empty() {
            return;
        }
        self.persist(touched.iter().map(|t| (t.0, t.2.flag_at)).collect())
            .await;
        for (session, exam, policy, events, running) in &touched {
            let Some(live) = self.sessions.get(session) else {
                continue;
            };
            let status = live.status;
            for (e, score) in events.iter().zip(running) {
                let flagged = policy.flag_at.map(|f| *score >= f);
                self.state
                    .hub
                    .update(SessionFact {
                        session_id: *session,
                        exam_id: *exam,
                        status,
                        violation_score: *score,
                        last_event: last_event(e),
                        flagged,
                    })
                    .await;
            }
            self.act(*session, policy, events).await;
        }
        let now = Instant::now();
        self.sessions.retain(|_, l| {
            now.duration_since(l.touched) < IDLE && l.status == SessionStatus::Started
        });
        metrics::gauge!("hub_event_feed_sessions").set(self.sessions.len() as f64);
    }

    /// Writes every touched session's score in one statement and refreshes their status.
    /// A session whose score first reaches its policy's flag threshold (`flag_at`) is marked
    /// `flagged_at`, and its `session.flagged` webhook written, in the same transaction.
    async fn persist(&mut self, touched: Vec<(Uuid, Option<f64>)>) {
        let ids: Vec<Uuid> = touched.iter().map(|t| t.0).collect();
        let flags: Vec<Option<f64>> = touched.iter().map(|t| t.1).collect();
        let scores: Vec<f64> = ids
            .iter()
            .map(|id| self.sessions.get(id).map_or(0.0, |l| l.tally.score()))
            .collect();
        let started = std::time::Instant::now();
        let rows = write_scores(&self.state.db, &ids, &scores, &flags).await;
        metrics::histogram!("hub_event_score_write_seconds")
            .record(started.elapsed().as_secs_f64());
        match rows {
            Ok(rows) => {
                for (id, status) in rows {
                    if let Some(l) = self.sessions.get_mut(&id) {
                        l.status = status;
                    }
                }
            }
            Err(e) => {
                // The next batch of these sessions writes the score again.
                tracing::warn!(error = %e, "cannot persist violation scores now");
            }
        }
    }

    /// Automatic warnings, then termination, for counted occurrences not yet acted upon.
    async fn act(&mut self, session: Uuid, policy: &Policy, events: &[NewEvent]) {
        let Some(rule) = policy.auto_terminate.as_ref() else {
            return;
        };
        let Some(live) = self.sessions.get_mut(&session) else {
            return;
        };
        if live.status != SessionStatus::Started {
            return;
        }
        let (from, to) = (live.acted, live.tally.auto_counted());
        if to <= from {
            return;
        }
        live.acted = to;
        let event_type = events
            .iter()
            .rev()
            .find(|e| policy.is_auto_terminate_type(&e.event_type))
            .map_or_else(|| rule.event_types[0].clone(), |e| e.event_type.clone());
        for occurrence in from + 1..=to {
            let result = if occurrence <= rule.after_warnings {
                policy::auto_warn(
                    &self.state,
                    session,
                    &event_type,
                    occurrence,
                    rule.after_warnings,
                )
                .await
            } else {
                let reason = format!(
                    "terminated automatically: {event_type} after {} warning(s)",
                    rule.after_warnings
                );
                match policy::terminate(
                    &self.state,
                    session,
                    None,
                    "AUTO_TERMINATE",
                    &reason,
                    Some(serde_json::json!({"eventType": event_type, "warnings": rule.after_warnings})),
                )
                .await
                {
                    Ok(_) => {
                        if let Some(l) = self.sessions.get_mut(&session) {
                            l.status = SessionStatus::Terminated;
                        }
                        break;
                    }
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = result {
                tracing::warn!(%session, error = %e, "automatic policy action failed");
                // Retry with the next event of this session.
                if let Some(l) = self.sessions.get_mut(&session) {
                    l.acted = occurrence - 1;
                }
                break;
            }
        }
    }
}

fn last_event(e: &NewEvent) -> Option<LastEvent> {
    Some(LastEvent {
        event_id: signaling::EventId::from_uuid(e.event_id),
        event_type: signaling::EventType::new(e.event_type.as_str()).ok()?,
        severity: Severity::new(u8::try_from(e.severity).ok()?).ok()?,
        timestamp: Timestamp::from(e.timestamp),
    })
}

/// Writes violation scores (and first flags) in one transaction with the webhooks of the
/// sessions flagged now; returns every session's status.
async fn write_scores(
    db: &sqlx::PgPool,
    ids: &[Uuid],
    scores: &[f64],
    flags: &[Option<f64>],
) -> Result<Vec<(Uuid, SessionStatus)>, crate::error::Error> {
    let mut tx = db.begin().await?;
    type Row = (Uuid, SessionStatus, bool, Uuid, Uuid, f64, Option<f64>);
    let rows: Vec<Row> = sqlx::query_as(
        "UPDATE sessions s
            SET violation_score = u.score,
                flagged_at = COALESCE(s.flagged_at,
                    CASE WHEN u.flag_at IS NOT NULL AND u.score >= u.flag_at THEN now() END)
           FROM UNNEST($1::uuid[], $2::float8[], $3::float8[]) AS u(id, score, flag_at),
                sessions o
          WHERE s.id = u.id AND o.id = u.id
      RETURNING s.id, s.status, (o.flagged_at IS NULL AND s.flagged_at IS NOT NULL),
                s.exam_id, s.candidate_id, s.violation_score, u.flag_at",
    )
    .bind(ids)
    .bind(scores)
    .bind(flags)
    .fetch_all(&mut *tx)
    .await?;
    for (id, _, newly, exam, candidate, score, flag_at) in &rows {
        if *newly {
            crate::webhooks::outbox::enqueue(
                &mut *tx,
                crate::webhooks::SESSION_FLAGGED,
                Some(*id),
                serde_json::json!({"sessionId": id, "examId": exam, "candidateId": candidate,
                                   "violationScore": score, "flagAt": flag_at}),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(rows.into_iter().map(|r| (r.0, r.1)).collect())
}
