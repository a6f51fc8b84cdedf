//! The batched ingest: every producer (WebSocket `event`, HTTP batches, the hub's SYSTEM
//! events) hands validated events to one bounded buffer, split into writer lanes by session;
//! each lane's writer task drains its queue in multi-row writes (whatever accumulated while
//! its previous write was in flight, after a short linger) and acknowledges each producer
//! through a oneshot only after the write committed. Several lanes keep several writes in
//! flight, so Postgres works on one batch while another waits for its WAL flush; a session
//! always maps to the same lane, so one session's events commit in the order they were
//! submitted (the live scoring relies on it). When the store is down the writer retries the same batch with backoff while the
//! buffer fills up to its bound; beyond the bound producers are refused at once
//! ([`IngestError::Full`], 503 `EVENT_STORE_UNAVAILABLE`). Nothing acknowledged is ever
//! dropped, because nothing is acknowledged before it is stored.
//!
//! The writer then passes the events that were new to the live feed (`feed.rs`), which scores
//! them and tells watchers; the feed never slows the writes down beyond its channel's bound.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{NewEvent, SharedStore, StoreError};

/// Why events were not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The buffer is at its bound (the store has been down a while): retry later.
    #[error("the event buffer is full")]
    Full,
    /// Not stored within the producer's wait, or the hub is stopping; they may still be
    /// stored later (a retry with the same `eventId`s is safe).
    #[error("the event store did not confirm in time")]
    Unavailable,
    /// The store refused these events (a bug, not an outage).
    #[error("the event store refused the events")]
    Rejected,
}

/// The ack a producer waits for: the `eventId`s of its events that were new.
pub type Ack = Result<Vec<Uuid>, IngestError>;

/// Tuning of the ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Most events held (queued or being written) at once.
    pub capacity: usize,
    /// Most events per write.
    pub max_batch: usize,
    /// How long the writer waits for more events before a write that is not full.
    pub linger: Duration,
    /// First retry delay after a failed write (doubles up to `max_backoff`).
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            capacity: 100_000,
            max_batch: 2_000,
            linger: Duration::from_millis(2),
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

struct Pending {
    events: Vec<NewEvent>,
    ack: Option<oneshot::Sender<Ack>>,
}

/// One writer's queue.
struct Lane {
    /// Submitted, not yet taken by the writer. A std mutex: held for pushes and pops only,
    /// never across an `.await`.
    queue: Mutex<VecDeque<Pending>>,
    /// Wakes the writer.
    wake: Notify,
}

impl Lane {
    fn new() -> Self {
        Lane {
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        self.queue
            .lock()
            .expect("the ingest queue lock is never held across a panic")
    }

    /// Takes whole submissions up to `max` events (at least one submission).
    fn take(&self, max: usize) -> Vec<Pending> {
        let mut queue = self.lock();
        let mut taken = Vec::new();
        let mut n = 0;
        while let Some(front) = queue.front() {
            if n > 0 && n + front.events.len() > max {
                break;
            }
            n += front.events.len();
            taken.extend(queue.pop_front());
        }
        taken
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

struct Shared {
    /// The writers' queues; a session's events always go to the same one.
    lanes: Vec<Lane>,
    /// Events queued or being written, over all lanes; bounded by `capacity`.
    held: AtomicUsize,
    /// The bound.
    capacity: usize,
    /// False while the store is failing (for readiness and metrics).
    healthy: AtomicBool,
}

/// The producers' side. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    shared: Arc<Shared>,
}

impl Ingest {
    /// An ingest holding at most `capacity` events, written by `writers` lanes (writes in
    /// flight at once; [`run`] starts one writer per lane).
    pub fn new(capacity: usize, writers: usize) -> Self {
        Ingest {
            shared: Arc::new(Shared {
                lanes: (0..writers.max(1)).map(|_| Lane::new()).collect(),
                held: AtomicUsize::new(0),
                capacity: capacity.max(1),
                healthy: AtomicBool::new(true),
            }),
        }
    }

    /// The lane of a submission: by its (first) event's session. Every producer submits the
    /// events of one session at a time.
    fn lane(&self, events: &[NewEvent]) -> &Lane {
        let lanes = &self.shared.lanes;
        let key = events.first().map_or(0, |e| e.session_id.as_u64_pair().1);
        &lanes[(key % lanes.len() as u64) as usize]
    }

    fn reserve(&self, n: usize) -> Result<(), IngestError> {
        let cap = self.shared.capacity;
        self.shared
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + n <= cap).then_some(held + n)
            })
            .map(|_| ())
            .map_err(|_| {
                metrics::counter!("hub_events_refused_full_total").increment(n as u64);
                IngestError::Full
            })
    }

    fn push(&self, events: Vec<NewEvent>, ack: Option<oneshot::Sender<Ack>>) {
        debug_assert!(
            events.iter().all(|e| e.session_id == events[0].session_id),
            "one session per submission keeps each session in one lane"
        );
        let lane = self.lane(&events);
        lane.lock().push_back(Pending { events, ack });
        lane.wake.notify_one();
    }

    /// Queues `events`; the receiver gets the ack after the write committed. Refused at once
    /// when the buffer cannot take them all.
    pub fn submit(&self, events: Vec<NewEvent>) -> Result<oneshot::Receiver<Ack>, IngestError> {
        let (tx, rx) = oneshot::channel();
        if events.is_empty() {
            let _ = tx.send(Ok(Vec::new()));
            return Ok(rx);
        }
        self.reserve(events.len())?;
        self.push(events, Some(tx));
        Ok(rx)
    }

    /// Queues `events` without waiting for the ack (the hub's own SYSTEM events: the hub must
    /// not stall on its store; they are retried like everything else while buffered).
    pub fn submit_detached(&self, events: Vec<NewEvent>) -> Result<(), IngestError> {
        if events.is_empty() {
            return Ok(());
        }
        self.reserve(events.len())?;
        self.push(events, None);
        Ok(())
    }

    /// Submits and waits up to `wait` for the ack.
    pub async fn append(&self, events: Vec<NewEvent>, wait: Duration) -> Ack {
        let rx = self.submit(events)?;
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(ack)) => ack,
            Ok(Err(_)) | Err(_) => Err(IngestError::Unavailable),
        }
    }

    /// Events queued or being written.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::Acquire)
    }

    /// False while writes are failing.
    pub fn healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire)
    }
}

/// Runs the writers (one per lane) until `shutdown`; then each makes one last attempt to
/// write what it holds. New events (after deduplication) go to `committed`, each session's in
/// commit order.
pub async fn run(
    ingest: Ingest,
    store: SharedStore,
    options: IngestOptions,
    committed: mpsc::Sender<Vec<NewEvent>>,
    shutdown: CancellationToken,
) {
    let writers = (0..ingest.shared.lanes.len())
        .map(|lane| lane_writer(&ingest, lane, &store, &options, &committed, &shutdown));
    futures::future::join_all(writers).await;
}

async fn lane_writer(
    ingest: &Ingest,
    lane: usize,
    store: &SharedStore,
    options: &IngestOptions,
    committed: &mpsc::Sender<Vec<NewEvent>>,
    shutdown: &CancellationToken,
) {
    let queue = &ingest.shared.lanes[lane];
    loop {
        if queue.is_empty() {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = queue.wake.notified() => {}
            }
        }
        if ingest.held() < options.max_batch && !options.linger.is_zero() {
            tokio::time::sleep(options.linger).await;
        }
        let batch = queue.take(options.max_batch);
        if batch.is_empty() {
            continue;
        }
        write(ingest, store, options, batch, committed, Some(shutdown)).await;
    }
    // Shutdown: one last attempt for what is held; whatever fails is not acknowledged.
    while !queue.is_empty() {
        let batch = queue.take(options.max_batch);
        write(ingest, store, options, batch, committed, None).await;
    }
}

/// Writes one batch, retrying while the store is unavailable (until `shutdown`, if given),
/// then acknowledges its producers and forwards the new events.
async fn write(
    ingest: &Ingest,
    store: &SharedStore,
    options: &IngestOptions,
    batch: Vec<Pending>,
    committed: &mpsc::Sender<Vec<NewEvent>>,
    shutdown: Option<&CancellationToken>,
) {
    let events: Vec<NewEvent> = batch
        .iter()
        .flat_map(|p| p.events.iter().cloned())
        .collect();
    let n = events.len();
    let mut backoff = options.min_backoff;
    let result = loop {
        let started = std::time::Instant::now();
        let appended = store.append(&events).await;
        metrics::histogram!("hub_event_write_seconds").record(started.elapsed().as_secs_f64());
        match appended {
            Ok(new) => {
                if !ingest.healthy() {
                    tracing::info!(
                        held = ingest.held(),
                        "event store reachable again: flushing"
                    );
                    ingest.shared.healthy.store(true, Ordering::Release);
                }
                break Ok(new);
            }
            Err(StoreError::Unavailable(e)) => {
                if ingest.healthy() {
                    tracing::warn!(error = %e, "event store unavailable: buffering events");
                    ingest.shared.healthy.store(false, Ordering::Release);
                }
                metrics::counter!("hub_event_write_retries_total").increment(1);
                let Some(shutdown) = shutdown else {
                    break Err(IngestError::Unavailable);
                };
                tokio::select! {
                    () = shutdown.cancelled() => break Err(IngestError::Unavailable),
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(options.max_backoff);
            }
            Err(StoreError::Rejected(e)) => {
                tracing::error!(error = %e, events = n, "event store refused a batch");
                break Err(IngestError::Rejected);
            }
        }
    };
    match result {
        Ok(new) => {
            let new: HashSet<Uuid> = new.into_iter().collect();
            let mut fresh = Vec::with_capacity(new.len());
            let mut seen = HashSet::with_capacity(new.len());
            for p in batch {
                let mut mine = Vec::with_capacity(p.events.len());
                for e in p.events {
                    if new.contains(&e.event_id) && seen.insert(e.event_id) {
                        mine.push(e.event_id);
                        fresh.push(e);
                    }
                }
                if let Some(ack) = p.ack {
                    let _ = ack.send(Ok(mine));
                }
            }
            ingest.shared.held.fetch_sub(n, Ordering::AcqRel);
            metrics::counter!("hub_events_stored_total").increment(fresh.len() as u64);
            if !fresh.is_empty() {
                // Bounded: a slow feed slows the writer instead of growing without end.
                let _ = committed.send(fresh).await;
            }
        }
        Err(IngestError::Rejected) if batch.len() > 1 => {
            // One bad submission must not sink the others: write them one by one.
            ingest.shared.held.fetch_sub(n, Ordering::AcqRel);
            for p in batch {
                let m = p.events.len();
                ingest.shared.held.fetch_add(m, Ordering::AcqRel);
                Box::pin(write(ingest, store, options, vec![p], committed, shutdown)).await;
            }
        }
        Err(e) => {
            for p in batch {
                if let Some(ack) = p.ack {
                    let _ = ack.send(Err(e.clone()));
                }
            }
            ingest.shared.held.fetch_sub(n, Ordering::AcqRel);
        }
    }
    metrics::gauge!("hub_event_buffer").set(ingest.held() as f64);
}

/// 503 `EVENT_STORE_UNAVAILABLE` (+ `Retry-After`) for events the ingest could not take or
/// confirm; 500 when the store refused them.
pub fn to_error(e: &IngestError) -> crate::error::Error {
    match e {
        IngestError::Full | IngestError::Unavailable => crate::error::Error::Unavailable {
            code: crate::hub::events::EVENT_STORE_UNAVAILABLE,
            message: "the event store is unavailable; retry with the same eventIds".into(),
            retry_after: 2,
        },
        IngestError::Rejected => {
            crate::error::Error::Internal("the event store refused events".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Counts, EventQuery, EventStore, ScoringInput, Source, StoredEvent};
    use chrono::{DateTime, Utc};
    use std::sync::atomic::AtomicBool;

    /// An in-memory store that can be switched off.
    #[derive(Default)]
    struct Memory {
        down: AtomicBool,
        ids: Mutex<HashSet<Uuid>>,
        writes: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl EventStore for Memory {
        async fn append(&self, events: &[NewEvent]) -> Result<Vec<Uuid>, StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("down".into()));
            }
            self.writes.fetch_add(1, Ordering::SeqCst);
            let mut ids = self.ids.lock().unwrap();
            Ok(events
                .iter()
                .filter(|e| ids.insert(e.event_id))
                .map(|e| e.event_id)
                .collect())
        }
        async fn query(&self, _: Uuid, _: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
            Ok(Vec::new())
        }
        async fn counts(&self, _: Uuid) -> Result<Counts, StoreError> {
            Ok(Counts::default())
        }
        async fn erase_personal(&self, _: &[Uuid]) -> Result<u64, StoreError> {
            Ok(0)
        }
        async fn delete_older_than(&self, _: DateTime<Utc>, _: &[Uuid]) -> Result<u64, StoreError> {
            Ok(0)
        }
        async fn scoring_inputs(&self, _: Uuid) -> Result<Vec<ScoringInput>, StoreError> {
            Ok(Vec::new())
        }
    }

    fn event(id: Uuid) -> NewEvent {
        event_of(Uuid::nil(), id)
    }

    fn event_of(session: Uuid, id: Uuid) -> NewEvent {
        NewEvent {
            id: Uuid::new_v4(),
            event_id: id,
            session_id: session,
            exam_id: Uuid::nil(),
            candidate_id: Uuid::nil(),
            source: Source::Laptop,
            event_type: "TAB_HIDDEN".into(),
            severity: 1,
            timestamp: Utc::now(),
            received_at: Utc::now(),
            meta: None,
            frame_ref: None,
        }
    }

    fn options(capacity: usize) -> IngestOptions {
        IngestOptions {
            capacity,
            max_batch: 100,
            linger: Duration::from_millis(1),
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        }
    }

    #[tokio::test]
    async fn concurrent_producers_are_batched_and_deduplicated() {
        let store = Arc::new(Memory::default());
        let ingest = Ingest::new(10_000, 3);
        let (tx, mut rx) = mpsc::channel(1024);
        let stop = CancellationToken::new();
        let writer = tokio::spawn(run(
            ingest.clone(),
            store.clone(),
            options(10_000),
            tx,
            stop.clone(),
        ));
        let ids: Vec<Uuid> = (0..1000).map(|_| Uuid::new_v4()).collect();
        let mut producers = Vec::new();
        for chunk in ids.chunks(10) {
            let (ingest, chunk) = (ingest.clone(), chunk.to_vec());
            // Producers of many sessions, so every lane writes.
            let session = Uuid::new_v4();
            producers.push(tokio::spawn(async move {
                // Each producer sends its events twice: the retry stores nothing.
                let first = ingest
                    .append(
                        chunk.iter().map(|i| event_of(session, *i)).collect(),
                        Duration::from_secs(5),
                    )
                    .await
                    .unwrap();
                let again = ingest
                    .append(
                        chunk.iter().map(|i| event_of(session, *i)).collect(),
                        Duration::from_secs(5),
                    )
                    .await
                    .unwrap();
                (first.len(), again.len())
            }));
        }
        let mut new = 0;
        for p in producers {
            let (first, again) = p.await.unwrap();
            assert_eq!(again, 0);
            new += first;
        }
        assert_eq!(new, 1000);
        assert_eq!(store.ids.lock().unwrap().len(), 1000);
        assert!(store.writes.load(Ordering::SeqCst) < 200, "batched");
        let mut forwarded = 0;
        while let Ok(batch) = rx.try_recv() {
            forwarded += batch.len();
        }
        assert_eq!(forwarded, 1000);
        assert_eq!(ingest.held(), 0);
        stop.cancel();
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn outage_buffers_up_to_the_bound_and_flushes_on_recovery() {
        let store = Arc::new(Memory::default());
        store.down.store(true, Ordering::SeqCst);
        let ingest = Ingest::new(50, 3);
        let (tx, _rx) = mpsc::channel(1024);
        let stop = CancellationToken::new();
        let writer = tokio::spawn(run(
            ingest.clone(),
            store.clone(),
            options(50),
            tx,
            stop.clone(),
        ));
        let first: Vec<NewEvent> = (0..30).map(|_| event(Uuid::new_v4())).collect();
        let waiting = ingest.submit(first).unwrap();
        let second: Vec<NewEvent> = (0..30).map(|_| event(Uuid::new_v4())).collect();
        assert_eq!(ingest.submit(second).unwrap_err(), IngestError::Full);
        let third: Vec<NewEvent> = (0..20).map(|_| event(Uuid::new_v4())).collect();
        let waiting_too = ingest.submit(third).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!ingest.healthy());
        assert_eq!(ingest.held(), 50);
        store.down.store(false, Ordering::SeqCst);
        assert_eq!(waiting.await.unwrap().unwrap().len(), 30);
        assert_eq!(waiting_too.await.unwrap().unwrap().len(), 20);
        assert_eq!(store.ids.lock().unwrap().len(), 50);
        assert!(ingest.healthy());
        stop.cancel();
        writer.await.unwrap();
    }
}
