//! A socket's bounded outbound queue. Producers (the hub, fan-outs) never wait: when the queue
//! is over its message or byte bound the socket is told to close with 4008 ("too slow to
//! read") — never a silent drop, never unbounded memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use signaling::CloseCode;
use tokio::sync::{mpsc, watch};

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

/// The sending side, held by the hub. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    /// Encoded frames for the socket task.
    frames: mpsc::Sender<Frame>,
    /// Bytes queued and not yet written, shared with the receiving side.
    queued_bytes: Arc<AtomicUsize>,
    /// Byte bound of the queue.
    max_bytes: usize,
    /// Tells the socket task to close with a code.
    close: Arc<watch::Sender<Option<CloseCode>>>,
}

/// The receiving side, owned by the socket task.
pub struct OutboxReceiver {
    /// Frames to write.
    pub frames: mpsc::Receiver<Frame>,
    /// Same counter as the sender's.
    queued_bytes: Arc<AtomicUsize>,
    /// Fires when someone asks this socket to close.
    pub close: watch::Receiver<Option<CloseCode>>,
}

/// A new queue of `max_messages` messages and `max_bytes` bytes.
pub fn outbox(max_messages: usize, max_bytes: usize) -> (Outbox, OutboxReceiver) {
    let (tx, rx) = mpsc::channel(max_messages.max(1));
    let (close_tx, close_rx) = watch::channel(None);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    (
        Outbox {
            frames: tx,
            queued_bytes: queued_bytes.clone(),
            max_bytes,
            close: Arc::new(close_tx),
        },
        OutboxReceiver {
            frames: rx,
            queued_bytes,
            close: close_rx,
        },
    )
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
        // Once a close is requested nothing more is queued, so the client never sees a gap
        // followed by more frames: what it got is a contiguous prefix, then the close.
        if self.close.borrow().is_some() {
            return false;
        }
        let len = frame.text.len();
        if self.queued_bytes.load(Ordering::Relaxed) + len > self.max_bytes {
            self.close_with(CloseCode::TooSlow);
            return false;
        }
        match self.frames.try_send(frame) {
            Ok(()) => {
                self.queued_bytes.fetch_add(len, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("hub_ws_slow_consumer_total").increment(1);
                self.close_with(CloseCode::TooSlow);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// True when both are the sending side of the same socket's queue.
    pub fn same_socket(&self, other: &Outbox) -> bool {
        self.frames.same_channel(&other.frames)
    }

    /// Asks the socket to close with `code` (the first code asked for wins).
    pub fn close_with(&self, code: CloseCode) {
        self.close.send_if_modified(|c| {
            if c.is_none() {
                *c = Some(code);
                true
            } else {
                false
            }
        });
    }

    /// True once the socket task has gone.
    pub fn is_closed(&self) -> bool {
        self.frames.is_closed()
    }
}

impl OutboxReceiver {
    /// Marks a frame as written (releases its bytes; records a relayed signal's pass).
    pub fn written(&self, frame: &Frame) {
        self.queued_bytes
            .fetch_sub(frame.text.len(), Ordering::Relaxed);
        if let Some(since) = frame.since {
            metrics::histogram!("hub_signal_pass_seconds").record(since.elapsed().as_secs_f64());
        }
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
        assert_eq!(*rx.close.borrow_and_update(), Some(CloseCode::TooSlow));
        let f = rx.frames.try_recv().unwrap();
        rx.written(&f);
        assert_eq!(&*f.text, "a");
    }

    #[test]
    fn overflow_by_bytes_asks_to_close_with_4008() {
        let (tx, rx) = outbox(100, 10);
        assert!(tx.push("12345678".into()));
        assert!(!tx.push("123".into()));
        assert_eq!(*rx.close.borrow(), Some(CloseCode::TooSlow));
    }

    #[test]
    fn nothing_is_queued_after_a_close_request() {
        let (tx, mut rx) = outbox(1, 1 << 20);
        assert!(tx.push("a".into()));
        assert!(!tx.push("b".into()));
        let a = rx.frames.try_recv().unwrap();
        rx.written(&a);
        assert!(
            !tx.push("c".into()),
            "the queue has room, but the socket is closing"
        );
        assert!(rx.frames.try_recv().is_err());
    }

    #[test]
    fn first_close_code_wins() {
        let (tx, rx) = outbox(1, 10);
        tx.close_with(CloseCode::Replaced);
        tx.close_with(CloseCode::TooSlow);
        assert_eq!(*rx.close.borrow(), Some(CloseCode::Replaced));
    }
}
