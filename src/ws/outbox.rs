//! A socket's bounded outbound queue. Producers (the hub, fan-outs) never wait: when the queue
//! is over its message or byte bound the socket is told to close with 4008 ("too slow to
//! read") — never a silent drop, never unbounded memory. The queue allocates nothing until a
//! frame is pushed, so an idle socket costs only the shared header.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use signaling::CloseCode;
use tokio::sync::Notify;

/// One encoded frame for the socket.
#[derive(Debug)]
pub struct Frame {
    /// The encoded message.
    pub text: Arc<str>,
    /// For a relayed `signal`: when the hub read it from its sender's socket, so the writer can
    /// record the hub's whole pass (`hub_signal_pass_seconds`) once the frame is written.
    pub since: Option<Instant>,
    /// For a message the hub pushed (not a reply): its `seq` for this peer, which the writer
    /// adds to the JSON object (the encoded text is shared by every receiver).
    pub seq: Option<u64>,
}

impl Frame {
    /// The text to send: the shared encoding, with `"seq":N` first when it has one.
    pub fn wire_text(&self) -> std::borrow::Cow<'_, str> {
        match (self.seq, self.text.strip_prefix('{')) {
            (Some(seq), Some(rest)) => {
                let sep = if rest.starts_with('}') { "" } else { "," };
                std::borrow::Cow::Owned(format!("{{\"seq\":{seq}{sep}{rest}"))
            }
            _ => std::borrow::Cow::Borrowed(&self.text),
        }
    }
}

/// What the hub and the socket task share: the queue, its byte count and the close request,
/// under one short lock (never held across an `.await`). An idle socket's queue holds no
/// allocation: `VecDeque::new` allocates on the first push, and a drained queue that grew past
/// [`KEEP_CAPACITY`] gives its memory back (the hub holds tens of thousands of idle sockets).
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the socket task: a frame was queued or a close was asked for. `notify_one` keeps a
    /// permit when the task is not waiting, so no wake-up is lost.
    wake: Notify,
    max_messages: usize,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Frame>,
    /// Bytes of `frames` not yet written (frames being written count until `written`).
    queued_bytes: usize,
    /// The close code asked for (the first wins).
    close: Option<CloseCode>,
    /// The socket task has gone: nothing more is queued.
    gone: bool,
}

/// Capacity a drained queue may keep; past it the memory is released.
const KEEP_CAPACITY: usize = 8;

impl State {
    /// The next frame, releasing the queue's memory once it is drained after a burst.
    fn pop(&mut self) -> Option<Frame> {
        let frame = self.frames.pop_front()?;
        if self.frames.is_empty() && self.frames.capacity() > KEEP_CAPACITY {
            self.frames = VecDeque::new();
        }
        Some(frame)
    }
}

/// The sending side, held by the hub. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The receiving side, owned by the socket task.
#[derive(Debug)]
pub struct OutboxReceiver {
    shared: Arc<Shared>,
    /// The close request was already handed to the task.
    close_seen: bool,
}

/// What the socket task is woken for.
#[derive(Debug)]
pub enum Next {
    /// Asked to close with this code (reported once, before any frame still queued).
    Close(CloseCode),
    /// A frame to write.
    Frame(Frame),
}

/// A new queue of `max_messages` messages and `max_bytes` bytes.
pub fn outbox(max_messages: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake: Notify::new(),
        max_messages: max_messages.max(1),
        max_bytes,
    });
    (
        Outbox {
            shared: shared.clone(),
        },
        OutboxReceiver {
            shared,
            close_seen: false,
        },
    )
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves the queue consistent (every step is one push,
        // pop or assignment), so a poisoned lock is used as is.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Outbox {
    /// Queues a frame. Returns false (and asks the socket to close with 4008) when the reader
    /// is too slow; false also when the socket is already gone.
    pub fn push(&self, frame: Arc<str>) -> bool {
        self.push_frame(Frame {
            text: frame,
            since: None,
            seq: None,
        })
    }

    /// Queues a message the hub pushed, numbered `seq` for this peer; `since` for a relayed
    /// signal (when the hub read it from its sender's socket).
    pub fn push_seq(&self, frame: Arc<str>, seq: u64, since: Option<Instant>) -> bool {
        self.push_frame(Frame {
            text: frame,
            since,
            seq: Some(seq),
        })
    }

    fn push_frame(&self, frame: Frame) -> bool {
        let shared = &*self.shared;
        let mut state = shared.lock();
        // Once a close is requested nothing more is queued, so the client never sees a gap
        // followed by more frames: what it got is a contiguous prefix, then the close.
        if state.gone || state.close.is_some() {
            return false;
        }
        let len = frame.text.len();
        let over_count = state.frames.len() >= shared.max_messages;
        if over_count || state.queued_bytes + len > shared.max_bytes {
            if over_count {
                metrics::counter!("hub_ws_slow_consumer_total").increment(1);
            }
            state.close = Some(CloseCode::TooSlow);
            drop(state);
            shared.wake.notify_one();
            return false;
        }
        state.frames.push_back(frame);
        state.queued_bytes += len;
        drop(state);
        shared.wake.notify_one();
        true
    }

    /// True when both are the sending side of the same socket's queue.
    pub fn same_socket(&self, other: &Outbox) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Asks the socket to close with `code` (the first code asked for wins).
    pub fn close_with(&self, code: CloseCode) {
        let mut state = self.shared.lock();
        if state.close.is_none() && !state.gone {
            state.close = Some(code);
            drop(state);
            self.shared.wake.notify_one();
        }
    }

    /// True once the socket task has gone.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().gone
    }
}

impl OutboxReceiver {
    /// Waits for the next thing to do: a close request first (once), else a queued frame.
    pub async fn next(&mut self) -> Next {
        loop {
            if let Some(next) = self.poll_now() {
                return next;
            }
            self.shared.wake.notified().await;
        }
    }

    fn poll_now(&mut self) -> Option<Next> {
        let mut state = self.shared.lock();
        if !self.close_seen {
            if let Some(code) = state.close {
                self.close_seen = true;
                return Some(Next::Close(code));
            }
        }
        state.pop().map(Next::Frame)
    }

    /// A frame already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Frame> {
        self.shared.lock().pop()
    }

    /// The close code asked for, if any.
    #[cfg(test)]
    fn close_requested(&self) -> Option<CloseCode> {
        self.shared.lock().close
    }

    /// Marks a frame as written (releases its bytes; records a relayed signal's pass).
    pub fn written(&self, frame: &Frame) {
        {
            let mut state = self.shared.lock();
            state.queued_bytes = state.queued_bytes.saturating_sub(frame.text.len());
        }
        if let Some(since) = frame.since {
            metrics::histogram!("hub_signal_pass_seconds").record(since.elapsed().as_secs_f64());
        }
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let frames = {
            let mut state = self.shared.lock();
            state.gone = true;
            state.queued_bytes = 0;
            std::mem::take(&mut state.frames)
        };
        // Frames (and the texts they share) are released outside the lock.
        drop(frames);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numbered_frame_carries_its_seq_and_the_shared_text_is_untouched() {
        let shared: Arc<str> = Arc::from(r#"{"type":"warning","message":"hi"}"#);
        let numbered = Frame {
            text: shared.clone(),
            since: None,
            seq: Some(7),
        };
        let wire: serde_json::Value = serde_json::from_str(&numbered.wire_text()).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({"seq": 7, "type": "warning", "message": "hi"})
        );
        let reply = Frame {
            text: shared.clone(),
            since: None,
            seq: None,
        };
        assert_eq!(&*reply.wire_text(), &*shared);
        let empty = Frame {
            text: Arc::from("{}"),
            since: None,
            seq: Some(1),
        };
        assert_eq!(&*empty.wire_text(), r#"{"seq":1}"#);
    }

    #[test]
    fn overflow_by_count_asks_to_close_with_4008() {
        let (tx, mut rx) = outbox(2, 1 << 20);
        assert!(tx.push("a".into()));
        assert!(tx.push("b".into()));
        assert!(!tx.push("c".into()));
        assert_eq!(rx.close_requested(), Some(CloseCode::TooSlow));
        let f = rx.try_recv().unwrap();
        rx.written(&f);
        assert_eq!(&*f.text, "a");
    }

    #[test]
    fn overflow_by_bytes_asks_to_close_with_4008() {
        let (tx, rx) = outbox(100, 10);
        assert!(tx.push("12345678".into()));
        assert!(!tx.push("123".into()));
        assert_eq!(rx.close_requested(), Some(CloseCode::TooSlow));
    }

    #[test]
    fn written_bytes_make_room_again() {
        let (tx, mut rx) = outbox(100, 10);
        assert!(tx.push("12345678".into()));
        let f = rx.try_recv().unwrap();
        // Taken but not yet written: its bytes still count.
        assert!(!tx.push("123".into()));
        let (tx, mut rx) = outbox(100, 10);
        assert!(tx.push("12345678".into()));
        let g = rx.try_recv().unwrap();
        rx.written(&g);
        assert!(tx.push("123".into()));
        drop(f);
    }

    #[test]
    fn nothing_is_queued_after_a_close_request() {
        let (tx, mut rx) = outbox(1, 1 << 20);
        assert!(tx.push("a".into()));
        assert!(!tx.push("b".into()));
        let a = rx.try_recv().unwrap();
        rx.written(&a);
        assert!(
            !tx.push("c".into()),
            "the queue has room, but the socket is closing"
        );
        assert!(rx.try_recv().is_none());
    }

    #[test]
    fn first_close_code_wins() {
        let (tx, rx) = outbox(1, 10);
        tx.close_with(CloseCode::Replaced);
        tx.close_with(CloseCode::TooSlow);
        assert_eq!(rx.close_requested(), Some(CloseCode::Replaced));
    }

    #[tokio::test]
    async fn the_close_request_comes_once_and_before_queued_frames() {
        let (tx, mut rx) = outbox(8, 1 << 20);
        assert!(tx.push("a".into()));
        tx.close_with(CloseCode::SessionEnded);
        assert!(matches!(
            rx.next().await,
            Next::Close(CloseCode::SessionEnded)
        ));
        match rx.next().await {
            Next::Frame(f) => assert_eq!(&*f.text, "a"),
            other => panic!("expected the queued frame, got {other:?}"),
        }
        assert!(rx.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_push_wakes_a_waiting_receiver() {
        let (tx, mut rx) = outbox(8, 1 << 20);
        let waiter = tokio::spawn(async move {
            match rx.next().await {
                Next::Frame(f) => f.text.to_string(),
                Next::Close(c) => format!("close {c:?}"),
            }
        });
        tokio::task::yield_now().await;
        assert!(tx.push("late".into()));
        assert_eq!(waiter.await.unwrap(), "late");
    }

    #[test]
    fn a_gone_socket_takes_nothing_and_says_so() {
        let (tx, rx) = outbox(8, 1 << 20);
        let other = tx.clone();
        assert!(tx.same_socket(&other));
        assert!(!tx.same_socket(&outbox(1, 1).0));
        assert!(!tx.is_closed());
        drop(rx);
        assert!(tx.is_closed());
        assert!(!tx.push("after".into()));
    }

    #[test]
    fn a_drained_queue_gives_its_memory_back() {
        let (tx, mut rx) = outbox(1024, 1 << 20);
        assert_eq!(tx.shared.lock().frames.capacity(), 0, "idle: no allocation");
        for i in 0..100 {
            assert!(tx.push(Arc::from(format!("{i}"))));
        }
        while let Some(f) = rx.try_recv() {
            rx.written(&f);
        }
        assert_eq!(tx.shared.lock().frames.capacity(), 0);
        assert_eq!(tx.shared.lock().queued_bytes, 0);
    }
}
