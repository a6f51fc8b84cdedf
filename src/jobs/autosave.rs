//! Autosave group commit. Handlers hand each validated save to one batcher task through a
//! bounded channel; the batcher keeps the highest version of each `(session, question)` of a
//! batch, writes them with one multi-row upsert in one transaction, and answers every waiter
//! through its oneshot only after COMMIT. A few batches may be in flight at once so commit
//! latency overlaps; each write slot keeps its own Postgres connection between batches, so a
//! batch is one round trip (a pooled connection costs two more: sqlx pings it when it is
//! taken and again when it is given back).
//!
//! A batch adds no delay when the database is idle: with no batch in flight, what is queued
//! goes at once. While one is in flight, the batcher gathers what arrives until that batch
//! commits, the gathered batch is big enough for a second writer, or the window
//! (`HUB_AUTOSAVE_BATCH_WINDOW_MS`) ends, as Postgres's own `commit_delay` waits only under
//! load.
//!
//! The batcher holds no lock across `.await` and owns nothing but its channel; shutdown closes
//! the channel, writes what was already queued, and waits for the batches in flight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{mpsc, oneshot, OnceCell};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::config::ExamConfig;
use crate::error::Error;
use crate::model::QuestionType;
use crate::store::answers::{self, AnswerWrite, WriteResult};
use crate::store::postgres::bounded;

/// Saves waiting for the batcher; past this, handlers wait for room (backpressure).
const QUEUE_CAPACITY: usize = 16 * 1024;

/// Saves a batch gathers, while another is being written, before it is written beside it
/// (it is written anyway when the window ends). A second writer costs Postgres more per save
/// than a bigger batch does: at 128 connections of `scripts/bench-vs-node.sh` a threshold of
/// 32 gave 21.4k saves/s at 21.2 µs of Postgres CPU per save, 64 gave 22.8k at 17.5 µs, and
/// 128 or none made no further difference.
const SECOND_WRITER_BATCH: usize = 64;

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
    sessions: ReadThrough<SessionMeta>,
    /// Question id → exam, type, options (non-DRAFT exams only).
    questions: ReadThrough<QuestionMeta>,
    /// Postgres, for cache misses.
    db: PgPool,
    /// How long a save or a cache miss waits on Postgres before 503.
    timeout: Duration,
}

impl Autosaver {
    /// Starts the batcher on `tasks`; it stops when `shutdown` fires (the hub passes
    /// `AppState::served`: after the last in-flight request), after writing what was queued.
    /// Every save and cache miss waits at most `timeout` on Postgres (503 beyond), and so
    /// does every batch write, so a partitioned store never wedges the batcher.
    pub fn spawn(
        db: PgPool,
        config: &ExamConfig,
        timeout: Duration,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let slots = config.autosave_max_inflight.clamp(1, 64);
        let (give_back, free) = mpsc::channel(slots);
        for _ in 0..slots {
            // Room for every slot: this never fails.
            let _ = give_back.try_send(Slot::default());
        }
        let batcher = Batcher {
            db: db.clone(),
            rx,
            shutdown,
            max: config.autosave_batch_max.max(1),
            window: config.autosave_batch_window,
            grace: config.autosave_grace,
            timeout,
            free,
            give_back,
            slots,
            tasks: tasks.clone(),
            finished: Arc::new(tokio::sync::Notify::new()),
        };
        tasks.spawn(batcher.run());
        Autosaver {
            tx,
            sessions: ReadThrough::default(),
            questions: ReadThrough::default(),
            db,
            timeout,
        }
    }

    /// Writes one save through the next batch; returns after COMMIT. 503 when the batch
    /// failed or the hub is shutting down (never a false 200).
    ///
    /// Waits at most the store timeout: past it the answer is 503 (the save may still be
    /// written by its batch; a retry with the same version is harmless).
    pub async fn save(&self, write: AnswerWrite) -> Result<WriteResult, Error> {
        bounded(self.timeout, async {
            let (reply, rx) = oneshot::channel();
            self.tx
                .send(Pending { write, reply })
                .await
                .map_err(|_| Error::store_unavailable())?;
            match rx.await {
                Ok(Ok(result)) => Ok(result),
                _ => Err(Error::store_unavailable()),
            }
        })
        .await
    }

    /// Caches a session's owner and exam as it starts or resumes, so the candidate's first
    /// save costs no query (at an exam's start every session's first save arrives at once).
    pub fn remember_session(&self, id: Uuid, meta: SessionMeta) {
        self.sessions.insert(id, meta);
    }

    /// Owner and exam of a session (cached; sessions never change either).
    pub async fn session(&self, id: Uuid) -> Result<Option<SessionMeta>, Error> {
        self.sessions
            .get_or_load(id, || async {
                let row: Option<(Uuid, Uuid)> = bounded(self.timeout, async {
                    Ok(
                        sqlx::query_as("SELECT candidate_id, exam_id FROM sessions WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&self.db)
                            .await?,
                    )
                })
                .await?;
                Ok(row.map(|(candidate_id, exam_id)| SessionMeta {
                    candidate_id,
                    exam_id,
                }))
            })
            .await
    }

    /// Exam, type and option ids of a question whose exam is no longer DRAFT (cached).
    pub async fn question(&self, id: Uuid) -> Result<Option<QuestionMeta>, Error> {
        self.questions
            .get_or_load(id, || async {
                let row: Option<(Uuid, QuestionType, serde_json::Value)> =
                    bounded(self.timeout, async {
                        Ok(sqlx::query_as(
                            "SELECT q.exam_id, q.type, q.options_json FROM questions q
                               JOIN exams e ON e.id = q.exam_id AND e.status <> 'DRAFT'
                              WHERE q.id = $1",
                        )
                        .bind(id)
                        .fetch_optional(&self.db)
                        .await?)
                    })
                    .await?;
                Ok(row.map(|(exam_id, kind, options)| QuestionMeta {
                    exam_id,
                    kind,
                    option_ids: option_ids(&options),
                }))
            })
            .await
    }

    /// Keeps the caches bounded.
    pub fn prune(&self) {
        self.sessions.prune();
        self.questions.prune();
    }
}

/// The `id`s of an MCQ's `[{id, text}]` options (none for other shapes).
fn option_ids(options: &serde_json::Value) -> Arc<[String]> {
    options
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o.get("id").and_then(|v| v.as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A read-through cache of immutable facts keyed by id, loading each missing id once: callers
/// that miss the same id at the same time wait for one query instead of each sending their
/// own (at an exam's start thousands of saves name the same few questions within
/// milliseconds, and a query each would queue them all behind the pool). An id found absent
/// is not cached (a DRAFT exam's question becomes valid when it is published); a failed load
/// is retried by the next caller.
struct ReadThrough<V> {
    /// Loaded or loading entries.
    entries: DashMap<Uuid, Arc<OnceCell<V>>>,
}

impl<V> Default for ReadThrough<V> {
    fn default() -> Self {
        ReadThrough {
            entries: DashMap::new(),
        }
    }
}

/// Why a load stored nothing.
enum Miss {
    /// No such row (or not eligible).
    Absent,
    /// The query failed.
    Failed(Error),
}

impl<V: Clone> ReadThrough<V> {
    /// Stores a value known without a query.
    fn insert(&self, id: Uuid, value: V) {
        self.entries
            .insert(id, Arc::new(OnceCell::new_with(Some(value))));
    }

    /// The cached value, or the one `load` finds (shared with concurrent callers for `id`).
    async fn get_or_load<F, Fut>(&self, id: Uuid, load: F) -> Result<Option<V>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<V>, Error>>,
    {
        // Clone the cell out so no shard lock is held across the load's await.
        let cell = self.entries.entry(id).or_default().value().clone();
        let loaded = cell
            .get_or_try_init(|| async {
                match load().await {
                    Ok(Some(v)) => Ok(v),
                    Ok(None) => Err(Miss::Absent),
                    Err(e) => Err(Miss::Failed(e)),
                }
            })
            .await;
        match loaded {
            Ok(v) => Ok(Some(v.clone())),
            Err(miss) => {
                // Forget the empty cell unless another caller has filled it meanwhile.
                self.entries.remove_if(&id, |_, c| !c.initialized());
                match miss {
                    Miss::Absent => Ok(None),
                    Miss::Failed(e) => Err(e),
                }
            }
        }
    }

    /// Clears the cache past [`CACHE_LIMIT`] entries (entries are cheap to reload).
    fn prune(&self) {
        if self.entries.len() > CACHE_LIMIT {
            self.entries.clear();
        }
    }
}

/// The batcher task's state.
struct Batcher {
    /// Postgres.
    db: PgPool,
    /// Saves from handlers.
    rx: mpsc::Receiver<Pending>,
    /// Fired when no request can bring a save any more.
    shutdown: CancellationToken,
    /// Most saves per batch.
    max: usize,
    /// How long to wait for more after a batch's first save.
    window: Duration,
    /// Autosave grace after expiry.
    grace: Duration,
    /// Longest a batch write may take before its waiters get 503 and its slot is freed.
    timeout: Duration,
    /// Write slots not in use; a batch takes one, so at most `slots` are written at once.
    free: mpsc::Receiver<Slot>,
    /// Where a batch's task gives its slot back.
    give_back: mpsc::Sender<Slot>,
    /// How many slots there are.
    slots: usize,
    /// Where batch writes are spawned.
    tasks: TaskTracker,
    /// Told whenever a batch write finishes.
    finished: Arc<tokio::sync::Notify>,
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
            self.gather(&mut batch).await;
            let Some(mut slot) = self.free.recv().await else {
                // The batcher holds a sender, so this never happens; the waiters get 503.
                continue;
            };
            // Saves that queued up while waiting for a slot join this batch.
            while batch.len() < self.max {
                match self.rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            let db = self.db.clone();
            let (grace, timeout) = (self.grace, self.timeout);
            let (finished, give_back) = (self.finished.clone(), self.give_back.clone());
            self.tasks.spawn(async move {
                flush(&db, &mut slot, batch, grace, timeout).await;
                // Room for every slot: this never fails.
                let _ = give_back.try_send(slot);
                finished.notify_waiters();
            });
        }
        // Wait for the batches in flight (each holds a slot) before reporting done; the slots'
        // connections go back to the pool as they drop.
        for _ in 0..self.slots {
            if self.free.recv().await.is_none() {
                break;
            }
        }
    }

    /// Batches being written now.
    fn in_flight(&self) -> usize {
        self.slots - self.free.len()
    }

    /// Adds what is queued to `batch`; then, only while another batch is being written, what
    /// arrives until no batch is in flight, the batch has [`SECOND_WRITER_BATCH`] saves, or
    /// the window ends.
    async fn gather(&mut self, batch: &mut Vec<Pending>) {
        let deadline = Instant::now() + self.window;
        while batch.len() < self.max {
            match self.rx.try_recv() {
                Ok(p) => {
                    batch.push(p);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            // Registered before the check, so a batch finishing in between is not missed.
            let finished = self.finished.clone();
            let notified = finished.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight() == 0 || batch.len() >= SECOND_WRITER_BATCH {
                return;
            }
            tokio::select! {
                m = self.rx.recv() => match m {
                    Some(p) => batch.push(p),
                    None => return,
                },
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    }
}

/// A kept connection idle longer than this goes back to the pool, which checks a connection
/// before handing it out, instead of being trusted with the next batch.
const KEEP_IDLE: Duration = Duration::from_secs(10);

/// One batch in flight at a time, with the connection it keeps between batches.
#[derive(Default)]
struct Slot {
    /// Taken from the pool by the slot's first batch, and again after a failure or a pause.
    conn: Option<PoolConnection<Postgres>>,
    /// When `conn` last finished a write.
    used: Option<std::time::Instant>,
}

impl Slot {
    /// Writes `writes` on the slot's connection (taken from the pool first if it has none).
    /// After any failure the connection is let go (back to the pool, which checks it), so a
    /// connection Postgres dropped, or one left mid-statement by the timeout, is never reused.
    async fn write(
        &mut self,
        db: &PgPool,
        writes: &[AnswerWrite],
        grace: Duration,
        timeout: Duration,
    ) -> Result<Vec<WriteResult>, Error> {
        if self.used.is_some_and(|t| t.elapsed() > KEEP_IDLE) {
            self.conn = None;
        }
        let result = bounded(timeout, async {
            let conn = match &mut self.conn {
                Some(conn) => conn,
                none => none.insert(db.acquire().await?),
            };
            answers::upsert_batch(conn, writes, grace).await
        })
        .await;
        if result.is_err() {
            self.conn = None;
        }
        self.used = Some(std::time::Instant::now());
        result
    }
}

/// Writes one batch and answers its waiters.
async fn flush(
    db: &PgPool,
    slot: &mut Slot,
    batch: Vec<Pending>,
    grace: Duration,
    timeout: Duration,
) {
    metrics::histogram!("hub_autosave_batch_size").record(batch.len() as f64);
    // Keep the highest version of each (session, question): ON CONFLICT cannot touch a row
    // twice in one statement, and the lower versions would lose anyway.
    let mut index: HashMap<(Uuid, Uuid), usize> = HashMap::with_capacity(batch.len());
    let mut writes: Vec<AnswerWrite> = Vec::with_capacity(batch.len());
    let mut waiters: Vec<(usize, oneshot::Sender<Result<WriteResult, ()>>)> =
        Vec::with_capacity(batch.len());
    for Pending { write, reply } in batch {
        let key = (write.session_id, write.question_id);
        let i = match index.get(&key) {
            Some(&i) => {
                if write.version > writes[i].version {
                    writes[i] = write;
                }
                i
            }
            None => {
                index.insert(key, writes.len());
                writes.push(write);
                writes.len() - 1
            }
        };
        waiters.push((i, reply));
    }
    let started = std::time::Instant::now();
    // Bounded, so a store that stops answering frees this slot instead of wedging the batcher.
    let result = slot.write(db, &writes, grace, timeout).await;
    metrics::histogram!("hub_autosave_batch_seconds").record(started.elapsed().as_secs_f64());
    if writes.len() > 1 && result.as_ref().is_err_and(refused_data) {
        // One save Postgres refuses (bad data, not a store failure) must not fail the others
        // of its group: each is written on its own, and only the bad one fails.
        let mut each = Vec::with_capacity(writes.len());
        for w in writes.chunks(1) {
            each.push(slot.write(db, w, grace, timeout).await);
        }
        for (i, reply) in waiters {
            let r = match &each[i] {
                Ok(r) => Ok(r[0]),
                Err(_) => Err(()),
            };
            let _ = reply.send(r);
        }
        return;
    }
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

/// Whether Postgres refused the data itself (SQLSTATE class 22, data exception; class 23,
/// integrity constraint): a store that works, answering no to one row.
fn refused_data(e: &Error) -> bool {
    matches!(e, Error::Database(sqlx::Error::Database(d))
        if d.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_misses_of_one_id_share_one_load() {
        let cache: ReadThrough<u32> = ReadThrough::default();
        let loads = AtomicUsize::new(0);
        let id = Uuid::new_v4();
        let callers = (0..50).map(|_| {
            cache.get_or_load(id, || async {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(Some(7))
            })
        });
        let got = futures::future::join_all(callers).await;
        assert!(got.iter().all(|r| matches!(r, Ok(Some(7)))));
        assert_eq!(
            loads.load(Ordering::SeqCst),
            1,
            "one query for fifty misses"
        );
        let again = cache
            .get_or_load(id, || async { panic!("a cached id is not loaded again") })
            .await;
        assert!(matches!(again, Ok(Some(7))));
    }

    #[tokio::test]
    async fn an_absent_or_failed_load_is_not_cached() {
        let cache: ReadThrough<u32> = ReadThrough::default();
        let id = Uuid::new_v4();
        let absent = cache.get_or_load(id, || async { Ok(None) }).await;
        assert!(matches!(absent, Ok(None)));
        let failed = cache
            .get_or_load(id, || async { Err(Error::store_unavailable()) })
            .await;
        assert!(failed.is_err());
        assert!(cache.entries.is_empty(), "no empty cell is left behind");
        // Published since: the next caller loads it and the value stays.
        let found = cache.get_or_load(id, || async { Ok(Some(3)) }).await;
        assert!(matches!(found, Ok(Some(3))));
        assert_eq!(cache.entries.len(), 1);
    }

    #[tokio::test]
    async fn a_remembered_value_needs_no_load() {
        let cache: ReadThrough<u32> = ReadThrough::default();
        let id = Uuid::new_v4();
        cache.insert(id, 5);
        let got = cache
            .get_or_load(id, || async { panic!("remembered ids are not loaded") })
            .await;
        assert!(matches!(got, Ok(Some(5))));
    }
}
