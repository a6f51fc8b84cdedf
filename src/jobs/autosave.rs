//! Autosave group commit. Handlers hand each validated save to one batcher task through a
//! bounded channel; the batcher gathers the saves that arrive within a short window (up to a
//! maximum), keeps the highest version of each `(session, question)`, writes them with one
//! multi-row upsert in one transaction, and answers every waiter through its oneshot only after
//! COMMIT. A few batches may be in flight at once so commit latency overlaps.
//!
//! The batcher holds no lock across `.await` and owns nothing but its channel; shutdown closes
//! the channel, writes what was already queued, and waits for the batches in flight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::config::ExamConfig;
use crate::error::Error;
use crate::model::QuestionType;
use crate::store::answers::{self, AnswerWrite, WriteResult};

/// Saves waiting for the batcher; past this, handlers wait for room (backpressure).
const QUEUE_CAPACITY: usize = 16 * 1024;

/// Cached entries past which a cache is simply cleared (entries are cheap to reload).
const CACHE_LIMIT: usize = 200_000;

/// One save handed to the batcher.
struct Pending {
    /// What to write.
    write: AnswerWrite,
    /// Where the outcome goes; `Err(())` means the batch failed and was logged.
    reply: oneshot::Sender<Result<WriteResult, ()>>,
}

/// Immutable facts about a session that every save needs (who owns it, which exam).
#[derive(Debug, Clone, Copy)]
pub struct SessionMeta {
    /// The candidate owning the session.
    pub candidate_id: Uuid,
    /// Its exam.
    pub exam_id: Uuid,
}

/// Immutable facts about a question of a non-DRAFT exam (questions change only while DRAFT,
/// so these never go stale).
#[derive(Debug, Clone)]
pub struct QuestionMeta {
    /// Its exam.
    pub exam_id: Uuid,
    /// Its type.
    pub kind: QuestionType,
    /// MCQ option ids.
    pub option_ids: Arc<[String]>,
}

/// The handle handlers use: a sender to the batcher and read-through caches of the immutable
/// session and question facts, so a save costs no query besides its share of the batch.
pub struct Autosaver {
    /// To the batcher.
    tx: mpsc::Sender<Pending>,
    /// Session id → owner and exam.
    sessions: DashMap<Uuid, SessionMeta>,
    /// Question id → exam, type, options (non-DRAFT exams only).
    questions: DashMap<Uuid, QuestionMeta>,
    /// Postgres, for cache misses.
    db: PgPool,
}

impl Autosaver {
    /// Starts the batcher on `tasks`; it stops when `shutdown` fires, after writing what was
    /// queued.
    pub fn spawn(
        db: PgPool,
        config: &ExamConfig,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let slots = u32::try_from(config.autosave_max_inflight.clamp(1, 64)).unwrap_or(4);
        let batcher = Batcher {
            db: db.clone(),
            rx,
            shutdown,
            max: config.autosave_batch_max.max(1),
            window: config.autosave_batch_window,
            grace: config.autosave_grace,
            inflight: Arc::new(Semaphore::new(slots as usize)),
            slots,
            tasks: tasks.clone(),
        };
        tasks.spawn(batcher.run());
        Autosaver {
            tx,
            sessions: DashMap::new(),
            questions: DashMap::new(),
            db,
        }
    }

    /// Writes one save through the next batch; returns after COMMIT. 503 when the batch
    /// failed or the hub is shutting down (never a false 200).
    pub async fn save(&self, write: AnswerWrite) -> Result<WriteResult, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending { write, reply })
            .await
            .map_err(|_| Error::store_unavailable())?;
        match rx.await {
            Ok(Ok(result)) => Ok(result),
            _ => Err(Error::store_unavailable()),
        }
    }

    /// Owner and exam of a session (cached; sessions never change either).
    pub async fn session(&self, id: Uuid) -> Result<Option<SessionMeta>, Error> {
        if let Some(m) = self.sessions.get(&id) {
            return Ok(Some(*m));
        }
        let row: Option<(Uuid, Uuid)> =
            sqlx::query_as("SELECT candidate_id, exam_id FROM sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.db)
                .await?;
        Ok(row.map(|(candidate_id, exam_id)| {
            let meta = SessionMeta {
                candidate_id,
                exam_id,
            };
            self.sessions.insert(id, meta);
            meta
        }))
    }

    /// Exam, type and option ids of a question whose exam is no longer DRAFT (cached).
    pub async fn question(&self, id: Uuid) -> Result<Option<QuestionMeta>, Error> {
        if let Some(m) = self.questions.get(&id) {
            return Ok(Some(m.clone()));
        }
        let row: Option<(Uuid, QuestionType, serde_json::Value)> = sqlx::query_as(
            "SELECT q.exam_id, q.type, q.options_json FROM questions q
               JOIN exams e ON e.id = q.exam_id AND e.status <> 'DRAFT'
              WHERE q.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.map(|(exam_id, kind, options)| {
            let option_ids: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|o| o.get("id").and_then(|v| v.as_str()).map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let meta = QuestionMeta {
                exam_id,
                kind,
                option_ids: option_ids.into(),
            };
            self.questions.insert(id, meta.clone());
            meta
        }))
    }

    /// Keeps the caches bounded.
    pub fn prune(&self) {
        if self.sessions.len() > CACHE_LIMIT {
            self.sessions.clear();
        }
        if self.questions.len() > CACHE_LIMIT {
            self.questions.clear();
        }
    }
}

/// The batcher task's state.
struct Batcher {
    /// Postgres.
    db: PgPool,
    /// Saves from handlers.
    rx: mpsc::Receiver<Pending>,
    /// Process shutdown.
    shutdown: CancellationToken,
    /// Most saves per batch.
    max: usize,
    /// How long to wait for more after a batch's first save.
    window: Duration,
    /// Autosave grace after expiry.
    grace: Duration,
    /// Batches being written at once.
    inflight: Arc<Semaphore>,
    /// Permits `inflight` started with.
    slots: u32,
    /// Where batch writes are spawned.
    tasks: TaskTracker,
}

impl Batcher {
    async fn run(mut self) {
        let mut closing = false;
        loop {
            let first = if closing {
                self.rx.recv().await
            } else {
                tokio::select! {
                    m = self.rx.recv() => m,
                    () = self.shutdown.cancelled() => {
                        // No new saves; what is queued is still written below.
                        self.rx.close();
                        closing = true;
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            let mut batch = vec![first];
            let deadline = Instant::now() + self.window;
            while batch.len() < self.max {
                match self.rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                            Ok(Some(p)) => batch.push(p),
                            _ => break,
                        }
                    }
                }
            }
            let permit = match self.inflight.clone().acquire_owned().await {
                Ok(p) => p,
                // The semaphore is never closed; drop the batch's waiters (they get 503).
                Err(_) => continue,
            };
            // Saves that queued up while waiting for a slot join this batch.
            while batch.len() < self.max {
                match self.rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            let db = self.db.clone();
            let grace = self.grace;
            self.tasks.spawn(async move {
                flush(&db, batch, grace).await;
                drop(permit);
            });
        }
        // Wait for the batches in flight (each holds one permit) before reporting done.
        let _ = self.inflight.acquire_many(self.slots).await;
    }
}

/// Writes one batch and answers its waiters.
async fn flush(db: &PgPool, batch: Vec<Pending>, grace: Duration) {
    metrics::histogram!("hub_autosave_batch_size").record(batch.len() as f64);
    // Keep the highest version of each (session, question): ON CONFLICT cannot touch a row
    // twice in one statement, and the lower versions would lose anyway.
    let mut slot: HashMap<(Uuid, Uuid), usize> = HashMap::with_capacity(batch.len());
    let mut writes: Vec<AnswerWrite> = Vec::with_capacity(batch.len());
    let mut waiters: Vec<(usize, oneshot::Sender<Result<WriteResult, ()>>)> =
        Vec::with_capacity(batch.len());
    for Pending { write, reply } in batch {
        let key = (write.session_id, write.question_id);
        let i = match slot.get(&key) {
            Some(&i) => {
                if write.version > writes[i].version {
                    writes[i] = write;
                }
                i
            }
            None => {
                slot.insert(key, writes.len());
                writes.push(write);
                writes.len() - 1
            }
        };
        waiters.push((i, reply));
    }
    let started = std::time::Instant::now();
    let result = answers::upsert_batch(db, &writes, grace).await;
    metrics::histogram!("hub_autosave_batch_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(results) => {
            for (i, reply) in waiters {
                let _ = reply.send(Ok(results[i]));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, saves = waiters.len(), "autosave batch failed");
            metrics::counter!("hub_autosave_batch_failures_total").increment(1);
            for (_, reply) in waiters {
                let _ = reply.send(Err(()));
            }
        }
    }
}
