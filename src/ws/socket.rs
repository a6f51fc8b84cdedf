//! One WebSocket connection: the auth phase, then a loop that reads frames, writes the
//! outbound queue, pings, and closes with a code when anything asks it to. The protocol rules
//! live in `signaling::Connection`; room state lives in the hub actor; this task only moves
//! frames between them and the stores.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{SinkExt, StreamExt};
use signaling::{
    authenticate, Action, Admission, ClientMessage, CloseCode, Connection, Inbound, Outbound,
    PeerId, ResumeGrant, ResumeToken, Role, ServerMessage, Timestamp,
};
use tokio::time::Instant;
use uuid::Uuid;

use crate::cluster::Home;
use crate::hub::{JoinError, Principal, ResumeClaim, SignalError};
use crate::state::AppState;
use crate::store::sessions_lookup;
use crate::ws::outbox::{outbox, Frame, Next, Outbox, OutboxReceiver};

/// The close code a client sends on a socket it will resume: the hub keeps the connection
/// for the resume window, as after a drop.
pub const RECONNECTING: u16 = 4000;

/// A text frame without copying it: axum's bytes seen as `str`.
pub struct Text(Utf8Bytes);

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

fn to_inbound(msg: Result<Message, axum::Error>) -> Inbound<Text> {
    match msg {
        Ok(Message::Text(t)) => Inbound::Text(Text(t)),
        Ok(Message::Binary(b)) => Inbound::Binary { len: b.len() },
        Ok(Message::Ping(_)) => Inbound::Ping,
        Ok(Message::Pong(_)) => Inbound::Pong,
        Ok(Message::Close(_)) => Inbound::Close,
        // Over the socket library's size limit: report a frame too big for the protocol.
        Err(e) if e.to_string().to_lowercase().contains("too long") => {
            Inbound::Binary { len: usize::MAX }
        }
        Err(_) => Inbound::Close,
    }
}

fn to_message(out: Outbound) -> Message {
    match out {
        Outbound::Text(t) => Message::Text(Utf8Bytes::from(&*t)),
        Outbound::Ping => Message::Ping(Default::default()),
        Outbound::Close(code) => Message::Close(Some(CloseFrame {
            code: code.code(),
            reason: Utf8Bytes::from_static(code.reason()),
        })),
    }
}

/// Who authenticated, and whether the socket continues a dropped connection.
struct Admitted {
    principal: Principal,
    /// `Some(last_seq)`: a resume the hub granted (messages after `last_seq` follow).
    resumed: Option<u64>,
    /// The token `authed` carried (a fresh one, or the resumed connection's).
    resume_token: String,
}

async fn verify(state: &AppState, auth: signaling::Auth) -> Result<Admission<Admitted>, CloseCode> {
    let token = auth.token.as_str();
    // Only a token that is really bad gets 4500 (which tells clients to log in again); a store
    // that cannot answer gets 1013 so a reconnect storm does not turn into a login storm.
    let caller = crate::http::extract::AuthUser::from_socket_token(state, token)
        .await
        .map_err(|e| match e {
            crate::error::Error::Unauthenticated { .. } => CloseCode::InvalidToken,
            _ => CloseCode::TryAgainLater,
        })?;
    if let Some(session_id) = caller.session_id {
        // A phone's token is bound to one session; once it ended, the phone has no business here.
        match sessions_lookup::by_id(&state.db, session_id).await {
            Ok(Some(f)) if f.is_open => {}
            Ok(_) => return Err(CloseCode::SessionEnded),
            Err(_) => return Err(CloseCode::TryAgainLater),
        }
    }
    let window = state.config.ws.resume_window;
    // A socket coming back after a drop continues its old peer when the hub still holds it
    // for this user and role and can replay everything it missed; otherwise it starts afresh.
    let resumed = match (&auth.resume, window.is_zero()) {
        (Some(r), false) => state
            .hub
            .claim_resume(ResumeClaim {
                token: r.token.as_str().to_string(),
                last_seq: r.last_seq,
                user_id: caller.user_id,
                role: caller.role,
            })
            .await
            .map(|peer| (peer, r)),
        _ => None,
    };
    let (peer_id, resume_token, last_seq) = match resumed {
        Some((peer, r)) => (peer, r.token.as_str().to_string(), Some(r.last_seq)),
        None => (PeerId::new_v4(), crate::auth::random_token(), None),
    };
    let grant = (!window.is_zero()).then(|| ResumeGrant {
        resume_token: ResumeToken::new(resume_token.clone()),
        resume_window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
        resumed: last_seq.is_some(),
    });
    Ok(Admission {
        principal: Admitted {
            principal: Principal {
                peer_id,
                user_id: caller.user_id,
                role: caller.role,
                session_id: caller.session_id,
            },
            resumed: last_seq,
            resume_token,
        },
        peer_id,
        role: caller.role,
        server_now: Timestamp::from(chrono::Utc::now()),
        resume: grant,
    })
}

/// Runs one socket to its end.
pub async fn run(state: AppState, socket: WebSocket) {
    metrics::gauge!("hub_ws_connections").increment(1.0);
    let (mut sink, stream) = socket.split();
    let said_goodbye = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let goodbye = said_goodbye.clone();
    let mut inbound = stream.map(move |m| {
        // A close frame is a goodbye, unless the client says it will resume (4000).
        if let Ok(Message::Close(frame)) = &m {
            let resuming = frame.as_ref().is_some_and(|f| f.code == RECONNECTING);
            goodbye.store(!resuming, std::sync::atomic::Ordering::Relaxed);
        }
        to_inbound(m)
    });
    let mut outbound =
        (&mut sink).with(|o: Outbound| futures::future::ready(Ok::<_, axum::Error>(to_message(o))));
    let limits = state.ws_limits();
    let origin = Instant::now();
    let now = move || origin.elapsed();
    let mut conn = Connection::new(limits.clone(), now());

    let shutdown = state.shutdown.clone();
    // The auth phase, the phone's home lookup and every request but a heartbeat are boxed:
    // a task's future is as large as its largest await, and an idle socket waits in `serve`'s
    // select, so what it does only sometimes lives on the heap only while it runs.
    let auth = Box::pin(authenticate(
        &mut conn,
        &mut inbound,
        &mut outbound,
        async {
            tokio::select! {
                () = tokio::time::sleep(limits.auth_timeout) => {},
                () = shutdown.cancelled() => {},
            }
        },
        |auth| {
            let state = state.clone();
            async move { verify(&state, auth).await }
        },
    ))
    .await;
    drop(outbound);
    let Ok(admitted) = auth else {
        metrics::gauge!("hub_ws_connections").decrement(1.0);
        return;
    };
    let principal = admitted.principal;
    let peer = principal.peer_id;
    // A phone belongs to its session's exam from the start: to that exam's home node.
    if let Some(session) = principal
        .session_id
        .filter(|_| principal.role == Role::Mobile)
    {
        if let Some(url) = Box::pin(phone_home(&state, session)).await {
            let _ = sink
                .send(to_message(Outbound::message(&ServerMessage::Redirect {
                    url,
                })))
                .await;
            let _ = sink
                .send(to_message(Outbound::Close(CloseCode::Moved)))
                .await;
            metrics::counter!("hub_ws_redirected_total").increment(1);
            metrics::gauge!("hub_ws_connections").decrement(1.0);
            return;
        }
    }
    let limits = state.ws_limits_for(principal.role);
    conn.set_limits(limits.clone());
    let (tx, rx) = outbox(limits.outbound_queue_messages, limits.outbound_queue_bytes);
    let socket_queue = tx.clone();
    match admitted.resumed {
        Some(last_seq) => state.hub.reattach(peer, tx.clone(), last_seq).await,
        None => {
            state
                .hub
                .register(peer, principal.clone(), tx.clone(), admitted.resume_token)
                .await
        }
    }
    let reason = serve(
        &state,
        &mut conn,
        &mut inbound,
        &mut sink,
        rx,
        tx,
        peer,
        &principal,
        now,
    )
    .await;
    // A socket that dropped with no goodbye (the network went, or stopped answering pings)
    // may come back and resume; one that said goodbye, or that the hub closed, is gone.
    let dropped = match reason {
        None => !said_goodbye.load(std::sync::atomic::Ordering::Relaxed),
        Some(code) => code == CloseCode::NoPong,
    };
    if dropped {
        state.hub.detach(peer, &socket_queue).await;
    } else {
        state.hub.unregister(peer, &socket_queue).await;
    }
    tracing::debug!(%peer, ?reason, "socket closed");
    metrics::gauge!("hub_ws_connections").decrement(1.0);
}

/// Most frames, and bytes, written with one flush.
const WRITE_BATCH_FRAMES: usize = 64;
/// See [`WRITE_BATCH_FRAMES`]; also the socket library's write buffer target, so frames fed
/// before a flush stay in user space.
pub const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// Writes `first` and whatever else is already queued (up to a batch) with one flush: a
/// proctor watching a busy exam gets its updates in one system call and one TCP segment
/// instead of one each (the socket has TCP_NODELAY, so every flush goes out at once).
async fn write_queued<Si>(sink: &mut Si, rx: &mut OutboxReceiver, first: Frame) -> Result<(), ()>
where
    Si: futures::Sink<Message> + Unpin,
{
    let text = |f: &Frame| Message::Text(Utf8Bytes::from(&*f.wire_text()));
    sink.feed(text(&first)).await.map_err(drop)?;
    let mut bytes = first.text.len();
    let mut more = Vec::new();
    while more.len() + 1 < WRITE_BATCH_FRAMES && bytes < WRITE_BATCH_BYTES {
        let Some(frame) = rx.try_recv() else {
            break;
        };
        sink.feed(text(&frame)).await.map_err(drop)?;
        bytes += frame.text.len();
        more.push(frame);
    }
    sink.flush().await.map_err(drop)?;
    rx.written(&first);
    for frame in &more {
        rx.written(frame);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn serve<St, Si>(
    state: &AppState,
    conn: &mut Connection,
    inbound: &mut St,
    sink: &mut Si,
    mut rx: OutboxReceiver,
    outbox: Outbox,
    peer: PeerId,
    principal: &Principal,
    now: impl Fn() -> Duration,
) -> Option<CloseCode>
where
    St: futures::Stream<Item = Inbound<Text>> + Unpin,
    Si: futures::Sink<Message> + Unpin,
{
    let origin = Instant::now() - now();
    loop {
        let timer = conn.next_timeout().map(|t| origin + t);
        let action = tokio::select! {
            biased;
            () = state.shutdown.cancelled() => conn.close(CloseCode::ShuttingDown),
            next = rx.next() => match next {
                Next::Close(code) => conn.close(code),
                Next::Frame(frame) => {
                    if write_queued(sink, &mut rx, frame).await.is_err() {
                        return None;
                    }
                    Action::Nothing
                }
            },
            frame = inbound.next() => conn.on_frame(frame.unwrap_or(Inbound::Close), now()),
            () = async { match timer { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                conn.on_timeout(now())
            }
        };
        let action = match action {
            Action::Request(ClientMessage::Heartbeat) => heartbeat(state, peer).await,
            Action::Request(msg) => {
                Box::pin(handle(state, conn, peer, principal, &outbox, msg)).await
            }
            other => other,
        };
        match action {
            Action::Reply(msg) => {
                if sink
                    .send(to_message(Outbound::message(&msg)))
                    .await
                    .is_err()
                {
                    return None;
                }
            }
            Action::Ping => {
                if sink.send(to_message(Outbound::Ping)).await.is_err() {
                    return None;
                }
            }
            Action::Close(code) => {
                // Flush what was queued before the close (e.g. `session-ended`).
                while let Some(first) = rx.try_recv() {
                    if write_queued(sink, &mut rx, first).await.is_err() {
                        return Some(code);
                    }
                }
                let _ = sink.send(to_message(Outbound::Close(code))).await;
                // Close handshake: read (and discard) until the client's close, briefly, so
                // frames it sent meanwhile do not turn our close into a connection reset.
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Some(frame) = inbound.next().await {
                        if matches!(frame, Inbound::Close) {
                            break;
                        }
                    }
                })
                .await;
                let _ = sink.close().await;
                return Some(code);
            }
            Action::Disconnected => return None,
            Action::Authenticate(_) | Action::Request(_) | Action::Nothing => {}
        }
    }
}

/// The home node's URL when `exam` belongs to another node (multi-process hub only).
async fn moved(state: &AppState, exam: Uuid) -> Option<String> {
    let (cluster, _) = state.cluster.as_ref()?;
    match cluster.home_of(exam).await {
        Home::Here => None,
        Home::There(url) => Some(url),
    }
}

async fn phone_home(state: &AppState, session: Uuid) -> Option<String> {
    state.cluster.as_ref()?;
    let facts = sessions_lookup::by_id(&state.db, session).await.ok()??;
    moved(state, facts.exam_id).await
}

/// Sends the socket to its exam's home: `redirect`, then close 4010.
fn redirect(conn: &mut Connection, outbox: &Outbox, url: String) -> Action {
    outbox.push(std::sync::Arc::from(signaling::encode_server(
        &ServerMessage::Redirect { url },
    )));
    metrics::counter!("hub_ws_redirected_total").increment(1);
    conn.close(CloseCode::Moved)
}

fn error(code: &'static str, message: impl Into<String>) -> Action {
    Action::Reply(ServerMessage::error(code, message))
}

/// Liveness for the peer, answered with the server clock. `serve` calls it directly (not
/// boxed): it is most of what an idle socket sends.
async fn heartbeat(state: &AppState, peer: PeerId) -> Action {
    state.hub.heartbeat(peer).await;
    Action::Reply(ServerMessage::HeartbeatAck {
        server_now: Timestamp::from(chrono::Utc::now()),
    })
}

async fn handle(
    state: &AppState,
    conn: &mut Connection,
    peer: PeerId,
    principal: &Principal,
    outbox: &Outbox,
    msg: ClientMessage,
) -> Action {
    match msg {
        ClientMessage::Heartbeat => heartbeat(state, peer).await,
        ClientMessage::Join(j) => {
            let room = j.room_id.as_uuid();
            let facts = match sessions_lookup::by_room(&state.db, room).await {
                Ok(Some(f)) => f,
                // Not a session's room: a candidate's own media-check room, or nothing.
                Ok(None) if principal.role == Role::Candidate => {
                    match crate::http::media_check::facts_of(state, room, principal.user_id).await {
                        Ok(Some(f)) => f,
                        Ok(None) => return conn.close(CloseCode::Forbidden),
                        Err(_) => {
                            return error("STORE_UNAVAILABLE", "cannot look the room up; retry")
                        }
                    }
                }
                Ok(None) => return conn.close(CloseCode::Forbidden),
                Err(_) => return error("STORE_UNAVAILABLE", "cannot look the room up; retry"),
            };
            if !facts.media_check {
                if let Some(url) = moved(state, facts.exam_id).await {
                    return redirect(conn, outbox, url);
                }
            }
            match state.hub.join(peer, facts).await {
                Ok(joined) => Action::Reply(joined),
                Err(JoinError::Forbidden) => conn.close(CloseCode::Forbidden),
                Err(JoinError::SessionEnded) => conn.close(CloseCode::SessionEnded),
            }
        }
        ClientMessage::Leave(l) => {
            state.hub.leave(peer, l.room_id.as_uuid()).await;
            Action::Nothing
        }
        ClientMessage::Signal(s) => {
            // Refusals come back through the outbox (an `error` frame or a 4507 close).
            state.hub.signal(peer, s, std::time::Instant::now()).await;
            Action::Nothing
        }
        ClientMessage::Subscribe(sub) => match state.hub.subscribe(peer, sub).await {
            Ok(()) => Action::Nothing,
            Err(SignalError::NotInRoom) => conn.close(CloseCode::Forbidden),
            Err(SignalError::MediaForbidden) => {
                error("MEDIA_FORBIDDEN", "only proctors and admins subscribe")
            }
            Err(_) => error(
                "RELAY_UNAVAILABLE",
                "the media relay is not enabled on this hub or is overloaded",
            ),
        },
        ClientMessage::Event(e) => {
            match crate::hub::events::accept(state, principal, e, outbox).await {
                // The ack goes out through the outbox once the event is stored.
                Ok(()) => Action::Nothing,
                Err((code, message)) => error(code, message),
            }
        }
        ClientMessage::Watch(w) => {
            if !principal.role.is_staff() {
                return conn.close(CloseCode::Forbidden);
            }
            if let Some(url) = moved(state, w.exam_id.as_uuid()).await {
                return redirect(conn, outbox, url);
            }
            match crate::hub::watch::snapshot(state, w.exam_id.as_uuid()).await {
                Ok(Some(snapshot)) => {
                    state.hub.watch(peer, w.exam_id.as_uuid(), snapshot).await;
                    Action::Nothing
                }
                Ok(None) => error("EXAM_NOT_FOUND", "no such exam"),
                Err(_) => error("STORE_UNAVAILABLE", "cannot load the exam; retry"),
            }
        }
        ClientMessage::Unwatch(w) => {
            state.hub.unwatch(peer, w.exam_id.as_uuid()).await;
            Action::Nothing
        }
        ClientMessage::Warn(w) => {
            if !principal.role.is_staff() {
                return conn.close(CloseCode::Forbidden);
            }
            match crate::hub::watch::warn(
                state,
                principal.user_id,
                w.session_id.as_uuid(),
                w.message.as_str(),
            )
            .await
            {
                Ok(true) => Action::Nothing,
                Ok(false) => error("SESSION_NOT_FOUND", "no such session"),
                Err(_) => error("STORE_UNAVAILABLE", "the warning was not recorded; retry"),
            }
        }
        ClientMessage::PairingReject => {
            if principal.role != Role::Candidate {
                return conn.close(CloseCode::Forbidden);
            }
            state.hub.pairing_reject(peer).await;
            Action::Nothing
        }
        // The auth phase is over; a second `auth` is a protocol error.
        ClientMessage::Auth(_) => conn.close(CloseCode::BadRequest),
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use super::*;

    /// A sink that keeps what it was fed and counts flushes (a flush is one system call on a
    /// real socket).
    #[derive(Default)]
    struct Recording {
        fed: Vec<String>,
        flushed: usize,
        flushes: usize,
    }

    impl futures::Sink<Message> for Recording {
        type Error = ();
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), ()> {
            match item {
                Message::Text(t) => self.fed.push(t.as_str().to_string()),
                _ => return Err(()),
            }
            Ok(())
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            self.flushes += 1;
            self.flushed = self.fed.len();
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn queued_frames_go_out_in_order_a_batch_per_flush() {
        let (tx, mut rx) = outbox(1024, 1 << 20);
        for i in 0..100 {
            assert!(tx.push(Arc::from(format!("frame {i}"))));
        }
        let mut sink = Recording::default();
        let mut batches = Vec::new();
        while let Some(first) = rx.try_recv() {
            write_queued(&mut sink, &mut rx, first).await.unwrap();
            batches.push(sink.flushed);
        }
        let expected: Vec<String> = (0..100).map(|i| format!("frame {i}")).collect();
        assert_eq!(sink.fed, expected, "every frame once, in order");
        assert_eq!(batches, vec![64, 100], "two flushes for 100 queued frames");
        assert_eq!(sink.flushes, 2);
        // Every frame's bytes were released: the queue takes a full load again.
        for i in 0..1024 {
            assert!(
                tx.push(Arc::from(format!("again {i}"))),
                "frame {i} refused"
            );
        }
    }

    #[tokio::test]
    async fn a_batch_stops_at_its_byte_budget() {
        let (tx, mut rx) = outbox(1024, 1 << 20);
        let big: Arc<str> = Arc::from("x".repeat(20 * 1024));
        for _ in 0..5 {
            assert!(tx.push(big.clone()));
        }
        let mut sink = Recording::default();
        let first = rx.try_recv().unwrap();
        write_queued(&mut sink, &mut rx, first).await.unwrap();
        // 20 KiB frames: the batch closes once 64 KiB is reached (4 frames), one stays queued.
        assert_eq!(sink.fed.len(), 4);
        assert_eq!(sink.flushes, 1);
        assert!(rx.try_recv().is_some());
    }
}
