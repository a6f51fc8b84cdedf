//! Per-connection protocol logic, free of sockets and clocks.
//!
//! [`Connection`] is a sans-IO state machine: the server feeds it frames ([`Inbound`]) and the
//! current time, and it answers with an [`Action`]. [`authenticate`] drives the first phase over
//! any `futures` `Stream`/`Sink` pair, so the auth handshake is one call in the server and is unit
//! tested with in-memory channels.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{select, Either};
use futures::{Sink, SinkExt, Stream, StreamExt};

use crate::bucket::{TokenBucket, Verdict};
use crate::close::CloseCode;
use crate::decode::{decode_client_limited, encode_server};
use crate::error::{codes, DecodeError};
use crate::field::Timestamp;
use crate::id::PeerId;
use crate::limits::Limits;
use crate::message::{Auth, ClientMessage, ResumeGrant, Role, ServerMessage};

/// A WebSocket frame from the client, as the server's socket library reports it.
///
/// `T` is any text type (`String`, axum's `Utf8Bytes`, …) so the server need not copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<T = String> {
    /// A text frame.
    Text(T),
    /// A binary frame, of which only the length matters (the protocol is text only).
    Binary {
        /// Length in bytes.
        len: usize,
    },
    /// A ping (the socket library answers it).
    Ping,
    /// A pong, answering our ping.
    Pong,
    /// The client closed the socket (or the socket failed).
    Close,
}

/// A WebSocket frame for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A text frame: one encoded [`ServerMessage`], shareable among receivers.
    Text(Arc<str>),
    /// A ping; the client must pong within [`Limits::pong_timeout`].
    Ping,
    /// A close frame with this code and its reason; nothing follows it.
    Close(CloseCode),
}

impl Outbound {
    /// Encodes `message` into a text frame.
    pub fn message(message: &ServerMessage) -> Self {
        Outbound::Text(Arc::from(encode_server(message)))
    }
}

/// What the server must do after feeding the [`Connection`] a frame or a timeout.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The client sent `auth`: verify the token, then call [`Connection::accept`] or
    /// [`Connection::reject`].
    Authenticate(Auth),
    /// A valid request from the authenticated client: handle it.
    Request(ClientMessage),
    /// Send this reply (an `error`) and keep the socket open.
    Reply(ServerMessage),
    /// Send a ping.
    Ping,
    /// Send a close frame with this code and end the connection.
    Close(CloseCode),
    /// The client closed the socket; end the connection without sending anything.
    Disconnected,
    /// Nothing to do.
    Nothing,
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the first frame, which must be `auth`.
    AwaitingAuth,
    /// `auth` received; the server is verifying the token.
    Verifying,
    /// Authenticated: requests flow.
    Open,
    /// Closed by either side; every further input is ignored.
    Closed,
}

/// The protocol state of one WebSocket connection (sans-IO).
///
/// `now` arguments are a monotonic offset from any fixed origin the server chooses, e.g.
/// `tokio::time::Instant::now() - origin`; the connection never reads a clock.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The limits this connection enforces.
    limits: Limits,
    /// Current phase.
    phase: Phase,
    /// When the auth phase times out (4502).
    auth_deadline: Duration,
    /// Inbound rate limit, checked on every data frame after auth.
    bucket: TokenBucket,
    /// When the next ping is due.
    next_ping: Duration,
    /// When an outstanding ping times out (4012), if one is outstanding.
    pong_deadline: Option<Duration>,
}

impl Connection {
    /// A new connection accepted at `now`, waiting for `auth`.
    pub fn new(limits: Limits, now: Duration) -> Self {
        let bucket = TokenBucket::new(
            limits.inbound_per_second,
            limits.inbound_burst,
            limits.rate_limit_strikes,
        );
        Connection {
            auth_deadline: now + limits.auth_timeout,
            next_ping: now + limits.ping_interval,
            pong_deadline: None,
            phase: Phase::AwaitingAuth,
            bucket,
            limits,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Applies the limits of the role that authenticated (a proctor's grid sends far more than
    /// a laptop): the inbound bucket starts full at the new rate and burst; the ping schedule
    /// and the auth deadline already running are kept.
    pub fn set_limits(&mut self, limits: Limits) {
        self.bucket = TokenBucket::new(
            limits.inbound_per_second,
            limits.inbound_burst,
            limits.rate_limit_strikes,
        );
        self.limits = limits;
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether `auth` succeeded and the connection is not closed.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Feeds one inbound frame received at `now`.
    pub fn on_frame<T: AsRef<str>>(&mut self, frame: Inbound<T>, now: Duration) -> Action {
        match self.phase {
            Phase::Closed => Action::Nothing,
            Phase::AwaitingAuth | Phase::Verifying => self.on_auth_frame(frame),
            Phase::Open => self.on_open_frame(frame, now),
        }
    }

    fn on_auth_frame<T: AsRef<str>>(&mut self, frame: Inbound<T>) -> Action {
        let text = match frame {
            Inbound::Text(t) => t,
            Inbound::Ping | Inbound::Pong => return Action::Nothing,
            Inbound::Close => return self.disconnected(),
            Inbound::Binary { len } if len > self.limits.max_message_bytes => {
                return self.close(CloseCode::TooBig)
            }
            Inbound::Binary { .. } => return self.close(CloseCode::BadRequest),
        };
        if self.phase == Phase::Verifying {
            // Only reachable if the server reads on while verifying; the client must wait.
            return Action::Reply(ServerMessage::error(
                codes::NOT_AUTHENTICATED,
                "wait for authed",
            ));
        }
        match decode_client_limited(text.as_ref(), self.limits.max_message_bytes) {
            Ok(ClientMessage::Auth(auth)) => {
                self.phase = Phase::Verifying;
                Action::Authenticate(auth)
            }
            Err(DecodeError::TooLarge { .. }) => self.close(CloseCode::TooBig),
            // Anything else first, or an unreadable auth, is a broken client.
            Ok(_) | Err(_) => self.close(CloseCode::BadRequest),
        }
    }

    fn on_open_frame<T: AsRef<str>>(&mut self, frame: Inbound<T>, now: Duration) -> Action {
        let text = match frame {
            Inbound::Ping => return Action::Nothing,
            Inbound::Pong => {
                self.pong_deadline = None;
                return Action::Nothing;
            }
            Inbound::Close => return self.disconnected(),
            Inbound::Binary { len } if len > self.limits.max_message_bytes => {
                return self.close(CloseCode::TooBig)
            }
            Inbound::Binary { .. } => None,
            Inbound::Text(t) => Some(t),
        };
        // Size is checked before the rate limit so oversized frames always close with 1009.
        if let Some(t) = &text {
            if t.as_ref().len() > self.limits.max_message_bytes {
                return self.close(CloseCode::TooBig);
            }
        }
        match self.bucket.check(now) {
            Verdict::Allow => {}
            Verdict::Limited => {
                return Action::Reply(ServerMessage::error(
                    codes::RATE_LIMITED,
                    "too many messages; slow down",
                ))
            }
            Verdict::Close => return self.close(CloseCode::RateLimited),
        }
        let Some(text) = text else {
            return reply_error(&DecodeError::BinaryFrame);
        };
        match decode_client_limited(text.as_ref(), self.limits.max_message_bytes) {
            Ok(ClientMessage::Auth(_)) => Action::Reply(ServerMessage::error(
                codes::ALREADY_AUTHENTICATED,
                "this socket is already authenticated",
            )),
            Ok(message) => Action::Request(message),
            Err(e) => match e.close_code() {
                Some(code) => self.close(code),
                None => reply_error(&e),
            },
        }
    }

    /// The token was valid: the connection opens and this `authed` message must be sent.
    ///
    /// Call only after [`Action::Authenticate`]; the heartbeat interval comes from the limits.
    pub fn accept(
        &mut self,
        peer_id: PeerId,
        role: Role,
        server_now: Timestamp,
        resume: Option<ResumeGrant>,
    ) -> ServerMessage {
        debug_assert_eq!(
            self.phase,
            Phase::Verifying,
            "accept without a pending auth"
        );
        if self.phase != Phase::Closed {
            self.phase = Phase::Open;
        }
        ServerMessage::Authed {
            peer_id,
            role,
            server_now,
            heartbeat_interval_ms: self.limits.heartbeat_interval_ms(),
            resume,
        }
    }

    /// The token was refused: close with `code` (normally [`CloseCode::InvalidToken`]; 4503 for
    /// an ended session, 4507 for a deactivated user).
    pub fn reject(&mut self, code: CloseCode) -> Action {
        self.close(code)
    }

    /// The server closes the connection (shutdown 4001, replaced 4504, session ended 4503,
    /// forbidden 4507, slow reader 4008, …). Returns the action to carry out.
    pub fn close(&mut self, code: CloseCode) -> Action {
        if self.phase == Phase::Closed {
            return Action::Nothing;
        }
        self.phase = Phase::Closed;
        Action::Close(code)
    }

    fn disconnected(&mut self) -> Action {
        self.phase = Phase::Closed;
        Action::Disconnected
    }

    /// When [`on_timeout`](Connection::on_timeout) must next be called; `None` once closed.
    pub fn next_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::AwaitingAuth | Phase::Verifying => Some(self.auth_deadline),
            Phase::Open => Some(match self.pong_deadline {
                Some(pong) => pong.min(self.next_ping),
                None => self.next_ping,
            }),
            Phase::Closed => None,
        }
    }

    /// Handles timers at `now`: the auth deadline (4502), pings, and missing pongs (4012).
    pub fn on_timeout(&mut self, now: Duration) -> Action {
        match self.phase {
            Phase::AwaitingAuth | Phase::Verifying if now >= self.auth_deadline => {
                self.close(CloseCode::NoAuthInTime)
            }
            Phase::Open => {
                if self.pong_deadline.is_some_and(|d| now >= d) {
                    return self.close(CloseCode::NoPong);
                }
                if now >= self.next_ping {
                    self.next_ping = now + self.limits.ping_interval;
                    if self.pong_deadline.is_none() {
                        self.pong_deadline = Some(now + self.limits.pong_timeout);
                    }
                    return Action::Ping;
                }
                Action::Nothing
            }
            _ => Action::Nothing,
        }
    }
}

fn reply_error(e: &DecodeError) -> Action {
    Action::Reply(ServerMessage::error(e.code(), e.to_string()))
}

/// What the server's `verify` callback returns for a valid token.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission<P> {
    /// The server's own record of who this is (user, role, session, …), handed back on success.
    pub principal: P,
    /// The id the hub assigns to this connection.
    pub peer_id: PeerId,
    /// The authenticated role, sent in `authed`.
    pub role: Role,
    /// The server clock, sent in `authed`.
    pub server_now: Timestamp,
    /// How this connection can be resumed, sent in `authed`.
    pub resume: Option<ResumeGrant>,
}

/// How an unsuccessful auth phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    /// A close frame with this code was sent.
    Closed(CloseCode),
    /// The client went away (or the sink failed) before authenticating.
    Disconnected,
}

/// Runs the auth phase: waits for `auth`, calls `verify`, sends `authed` or a close frame.
///
/// `timeout` completes when the auth phase has lasted too long (e.g.
/// `tokio::time::sleep(limits.auth_timeout)`); it covers verification too. On success the
/// connection is [`Phase::Open`] and the principal from `verify` is returned. On failure the close
/// frame (4500, 4501, 4502, 1009 or the code `verify` chose) has already been sent.
///
/// ```
/// # use futures::{channel::mpsc, executor::block_on, SinkExt, StreamExt};
/// # use signaling::*;
/// # use std::time::Duration;
/// let (mut client, mut inbound) = mpsc::unbounded::<Inbound>();
/// let (mut outbound, mut received) = mpsc::unbounded::<Outbound>();
/// let mut conn = Connection::new(Limits::default(), Duration::ZERO);
/// block_on(async {
///     client.send(Inbound::Text(r#"{"type":"auth","token":"t0k"}"#.into())).await.expect("channel open");
///     let user = authenticate(&mut conn, &mut inbound, &mut outbound, futures::future::pending(),
///         |auth: Auth| async move {
///             if auth.token.as_str() != "t0k" { return Err(CloseCode::InvalidToken); }
///             Ok(Admission { principal: "user-1", peer_id: PeerId::new_v4(), role: Role::Proctor,
///                            server_now: Timestamp::parse("2025-01-01T00:00:00Z").expect("valid literal"),
///                            resume: None })
///         }).await;
///     assert_eq!(user, Ok("user-1"));
///     let Some(Outbound::Text(authed)) = received.next().await else { panic!("expected authed") };
///     assert!(authed.contains(r#""type":"authed""#));
/// });
/// assert!(conn.is_open());
/// ```
pub async fn authenticate<T, St, Si, Tm, V, Fut, P>(
    conn: &mut Connection,
    stream: &mut St,
    sink: &mut Si,
    timeout: Tm,
    verify: V,
) -> Result<P, Unauthenticated>
where
    T: AsRef<str>,
    St: Stream<Item = Inbound<T>> + Unpin,
    Si: Sink<Outbound> + Unpin,
    Tm: Future<Output = ()>,
    V: FnOnce(Auth) -> Fut,
    Fut: Future<Output = Result<Admission<P>, CloseCode>>,
{
    let mut timeout = pin!(timeout);
    let token = loop {
        let frame = match select(stream.next(), timeout.as_mut()).await {
            Either::Left((Some(frame), _)) => frame,
            Either::Left((None, _)) => {
                conn.disconnected();
                return Err(Unauthenticated::Disconnected);
            }
            Either::Right(((), _)) => {
                let action = conn.close(CloseCode::NoAuthInTime);
                return finish(sink, action).await;
            }
        };
        // `now` only matters once open; auth-phase frames never consult the rate limiter.
        match conn.on_auth_frame(frame) {
            Action::Authenticate(auth) => break auth,
            Action::Reply(reply) => {
                if sink.send(Outbound::message(&reply)).await.is_err() {
                    conn.disconnected();
                    return Err(Unauthenticated::Disconnected);
                }
            }
            action @ (Action::Close(_) | Action::Disconnected) => {
                return finish(sink, action).await
            }
            Action::Request(_) | Action::Ping | Action::Nothing => {}
        }
    };
    let verified = pin!(verify(token));
    match select(verified, timeout.as_mut()).await {
        Either::Left((Ok(admission), _)) => {
            let authed = conn.accept(
                admission.peer_id,
                admission.role,
                admission.server_now,
                admission.resume,
            );
            if sink.send(Outbound::message(&authed)).await.is_err() {
                conn.disconnected();
                return Err(Unauthenticated::Disconnected);
            }
            Ok(admission.principal)
        }
        Either::Left((Err(code), _)) => {
            let action = conn.reject(code);
            finish(sink, action).await
        }
        Either::Right(((), _)) => {
            let action = conn.close(CloseCode::NoAuthInTime);
            finish(sink, action).await
        }
    }
}

/// Sends the close frame an auth failure calls for and reports it.
async fn finish<P, Si: Sink<Outbound> + Unpin>(
    sink: &mut Si,
    action: Action,
) -> Result<P, Unauthenticated> {
    match action {
        Action::Close(code) => {
            // The peer may already be gone; the outcome is the same either way.
            let _ = sink.send(Outbound::Close(code)).await;
            Err(Unauthenticated::Closed(code))
        }
        _ => Err(Unauthenticated::Disconnected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::{mpsc, oneshot};
    use futures::executor::block_on;
    use futures::future::pending;

    const S: Duration = Duration::from_secs(1);
    const AUTH: &str = r#"{"type":"auth","token":"good"}"#;

    fn now() -> Timestamp {
        Timestamp::parse("2025-01-01T00:00:00Z").expect("valid literal")
    }

    async fn verify(auth: Auth) -> Result<Admission<&'static str>, CloseCode> {
        match auth.token.as_str() {
            "good" => Ok(Admission {
                principal: "alice",
                peer_id: PeerId::new_v4(),
                role: Role::Candidate,
                server_now: now(),
                resume: None,
            }),
            "ended" => Err(CloseCode::SessionEnded),
            _ => Err(CloseCode::InvalidToken),
        }
    }

    /// Runs `authenticate` over in-memory channels with `frames` already sent by the client,
    /// returning the outcome and everything the server sent.
    fn run_auth<Tm: Future<Output = ()>>(
        frames: Vec<Inbound>,
        keep_open: bool,
        timeout: Tm,
    ) -> (
        Result<&'static str, Unauthenticated>,
        Vec<Outbound>,
        Connection,
    ) {
        let (client, mut inbound) = mpsc::unbounded();
        let (mut outbound, received) = mpsc::unbounded();
        for f in frames {
            client.unbounded_send(f).expect("receiver alive");
        }
        // With `keep_open` the client stays connected while the server waits.
        let client = keep_open.then_some(client);
        let mut conn = Connection::new(Limits::default(), Duration::ZERO);
        let result = block_on(authenticate(
            &mut conn,
            &mut inbound,
            &mut outbound,
            timeout,
            verify,
        ));
        drop(outbound);
        drop(client);
        let sent = block_on(received.collect::<Vec<_>>());
        (result, sent, conn)
    }

    fn open_conn() -> Connection {
        let mut c = Connection::new(Limits::default(), Duration::ZERO);
        assert!(matches!(
            c.on_frame(Inbound::Text(AUTH), Duration::ZERO),
            Action::Authenticate(_)
        ));
        c.accept(PeerId::new_v4(), Role::Proctor, now(), None);
        c
    }

    #[test]
    fn auth_succeeds_and_sends_authed() {
        let (result, sent, conn) = run_auth(
            vec![Inbound::Ping, Inbound::Text(AUTH.into())],
            false,
            pending(),
        );
        assert_eq!(result, Ok("alice"));
        assert!(conn.is_open());
        let [Outbound::Text(text)] = sent.as_slice() else {
            panic!("{sent:?}")
        };
        let Ok(ServerMessage::Authed {
            role,
            heartbeat_interval_ms,
            ..
        }) = crate::decode_server(text)
        else {
            panic!("{text}")
        };
        assert_eq!((role, heartbeat_interval_ms), (Role::Candidate, 5000));
    }

    #[test]
    fn bad_token_closes_4500_and_verify_can_choose_the_code() {
        let bad = Inbound::Text(r#"{"type":"auth","token":"bad"}"#.to_owned());
        let (result, sent, conn) = run_auth(vec![bad], false, pending());
        assert_eq!(
            result,
            Err(Unauthenticated::Closed(CloseCode::InvalidToken))
        );
        assert_eq!(sent, vec![Outbound::Close(CloseCode::InvalidToken)]);
        assert_eq!(conn.phase(), Phase::Closed);
        let ended = Inbound::Text(r#"{"type":"auth","token":"ended"}"#.to_owned());
        let (result, _, _) = run_auth(vec![ended], false, pending());
        assert_eq!(
            result,
            Err(Unauthenticated::Closed(CloseCode::SessionEnded))
        );
    }

    #[test]
    fn first_frame_must_be_a_valid_auth() {
        for first in [
            r#"{"type":"heartbeat"}"#,
            "not json",
            r#"{"type":"auth"}"#,
            r#"{"type":"auth","token":""}"#,
        ] {
            let (result, sent, _) = run_auth(vec![Inbound::Text(first.into())], false, pending());
            assert_eq!(
                result,
                Err(Unauthenticated::Closed(CloseCode::BadRequest)),
                "{first}"
            );
            assert_eq!(sent, vec![Outbound::Close(CloseCode::BadRequest)]);
        }
        let (result, _, _) = run_auth(vec![Inbound::Binary { len: 3 }], false, pending());
        assert_eq!(result, Err(Unauthenticated::Closed(CloseCode::BadRequest)));
        let huge = format!(r#"{{"type":"auth","token":"{}"}}"#, "a".repeat(70_000));
        let (result, _, _) = run_auth(vec![Inbound::Text(huge)], false, pending());
        assert_eq!(result, Err(Unauthenticated::Closed(CloseCode::TooBig)));
    }

    #[test]
    fn no_auth_in_time_closes_4502() {
        let (fire, fired) = oneshot::channel::<()>();
        drop(fire);
        let timeout = async move {
            let _ = fired.await;
        };
        let (result, sent, _) = run_auth(vec![], true, timeout);
        assert_eq!(
            result,
            Err(Unauthenticated::Closed(CloseCode::NoAuthInTime))
        );
        assert_eq!(sent, vec![Outbound::Close(CloseCode::NoAuthInTime)]);
    }

    #[test]
    fn client_leaving_before_auth_is_a_disconnect() {
        let (result, sent, _) = run_auth(vec![], false, pending());
        assert_eq!(result, Err(Unauthenticated::Disconnected));
        assert!(sent.is_empty());
        let (result, _, _) = run_auth(vec![Inbound::Close], true, pending());
        assert_eq!(result, Err(Unauthenticated::Disconnected));
    }

    #[test]
    fn sans_io_auth_deadline() {
        let mut c = Connection::new(Limits::default(), 5 * S);
        assert_eq!(c.next_timeout(), Some(15 * S));
        assert_eq!(c.on_timeout(14 * S), Action::Nothing);
        assert_eq!(c.on_timeout(15 * S), Action::Close(CloseCode::NoAuthInTime));
        assert_eq!(c.next_timeout(), None);
        assert_eq!(c.on_frame(Inbound::Text(AUTH), 15 * S), Action::Nothing);
    }

    #[test]
    fn open_connection_yields_requests_and_recoverable_errors() {
        let mut c = open_conn();
        let t = Duration::ZERO;
        assert_eq!(
            c.on_frame(Inbound::Text(r#"{"type":"heartbeat"}"#), t),
            Action::Request(ClientMessage::Heartbeat)
        );
        let Action::Reply(ServerMessage::Error { code, .. }) =
            c.on_frame(Inbound::Text(r#"{"type":"dance"}"#), t)
        else {
            panic!("expected an error reply")
        };
        assert_eq!(code, "UNKNOWN_TYPE");
        let Action::Reply(ServerMessage::Error { code, .. }) =
            c.on_frame(Inbound::Text(r#"{"type":"join","roomId":1}"#), t)
        else {
            panic!("expected an error reply")
        };
        assert_eq!(code, "INVALID_FIELD");
        let Action::Reply(ServerMessage::Error { code, .. }) =
            c.on_frame(Inbound::<&str>::Binary { len: 4 }, t)
        else {
            panic!("expected an error reply")
        };
        assert_eq!(code, "BAD_REQUEST");
        let Action::Reply(ServerMessage::Error { code, .. }) = c.on_frame(Inbound::Text(AUTH), t)
        else {
            panic!("expected an error reply")
        };
        assert_eq!(code, "ALREADY_AUTHENTICATED");
        assert!(c.is_open());
        assert_eq!(
            c.on_frame(Inbound::Text("{oops"), t),
            Action::Close(CloseCode::BadRequest)
        );
        assert!(!c.is_open());
    }

    #[test]
    fn oversized_frames_close_1009_even_when_rate_limited() {
        let mut c = open_conn();
        for _ in 0..100 {
            c.on_frame(Inbound::Text(r#"{"type":"heartbeat"}"#), Duration::ZERO);
        }
        let big = "x".repeat(64 * 1024 + 1);
        assert_eq!(
            c.on_frame(Inbound::Text(big), Duration::ZERO),
            Action::Close(CloseCode::TooBig)
        );
        let mut c = open_conn();
        assert_eq!(
            c.on_frame(Inbound::<&str>::Binary { len: 1 << 20 }, Duration::ZERO),
            Action::Close(CloseCode::TooBig)
        );
    }

    #[test]
    fn flood_is_rate_limited_then_closed_4013() {
        let mut c = open_conn();
        let hb = r#"{"type":"heartbeat"}"#;
        for _ in 0..100 {
            assert_eq!(
                c.on_frame(Inbound::Text(hb), Duration::ZERO),
                Action::Request(ClientMessage::Heartbeat)
            );
        }
        for _ in 0..19 {
            let Action::Reply(ServerMessage::Error { code, .. }) =
                c.on_frame(Inbound::Text(hb), Duration::ZERO)
            else {
                panic!("expected an error reply")
            };
            assert_eq!(code, "RATE_LIMITED");
        }
        assert_eq!(
            c.on_frame(Inbound::Text(hb), Duration::ZERO),
            Action::Close(CloseCode::RateLimited)
        );
    }

    #[test]
    fn ping_pong_cycle_and_4012() {
        let mut c = open_conn();
        assert_eq!(c.next_timeout(), Some(20 * S));
        assert_eq!(c.on_timeout(19 * S), Action::Nothing);
        assert_eq!(c.on_timeout(20 * S), Action::Ping);
        assert_eq!(c.next_timeout(), Some(30 * S));
        assert_eq!(c.on_frame(Inbound::<&str>::Pong, 25 * S), Action::Nothing);
        assert_eq!(c.next_timeout(), Some(40 * S));
        assert_eq!(c.on_timeout(40 * S), Action::Ping);
        assert_eq!(c.on_timeout(49 * S), Action::Nothing);
        assert_eq!(c.on_timeout(50 * S), Action::Close(CloseCode::NoPong));
        assert_eq!(c.next_timeout(), None);
    }

    #[test]
    fn server_close_and_client_close() {
        let mut c = open_conn();
        assert_eq!(
            c.close(CloseCode::Replaced),
            Action::Close(CloseCode::Replaced)
        );
        assert_eq!(c.close(CloseCode::ShuttingDown), Action::Nothing);
        let mut c = open_conn();
        assert_eq!(c.on_frame(Inbound::<&str>::Close, S), Action::Disconnected);
        assert_eq!(c.phase(), Phase::Closed);
    }
}
