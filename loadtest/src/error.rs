//! The load generator's one error type.

/// Everything that stops a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target is not on loopback: this tool only loads hubs on this machine.
    #[error(
        "refusing to target {0}: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed"
    )]
    NotLoopback(String),
    /// The machine cannot give the connections asked for.
    #[error("need {needed} file descriptors but the limit is {limit}: raise `ulimit -n` (hard limit) or ask for fewer connections")]
    FdLimit {
        /// Descriptors the run needs.
        needed: u64,
        /// What the process may open.
        limit: u64,
    },
    /// The hub answered something unexpected.
    #[error("{what}: HTTP {status}: {body}")]
    Http {
        /// The call.
        what: String,
        /// Status received.
        status: u16,
        /// Body received.
        body: String,
    },
    /// Network failure talking HTTP.
    #[error("request failed: {0}")]
    Request(#[from] reqwest::Error),
    /// WebSocket failure.
    #[error("websocket: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    /// Writing results.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The WebRTC client (media scenario) failed.
    #[error("webrtc: {0}")]
    WebRtc(String),
    /// Bad arguments or an impossible state.
    #[error("{0}")]
    Usage(String),
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        Error::WebSocket(Box::new(e))
    }
}
