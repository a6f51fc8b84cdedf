//! WebSocket close codes the hub uses, with their numeric values and reasons.

/// Why the hub closes a WebSocket. The numeric values are part of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1009: a frame exceeded the message size limit.
    TooBig,
    /// 1013 ("try again later", RFC 6455 registry): a store the auth check needs is
    /// unavailable; the token may well be valid, so reconnect with backoff, do not log in again.
    TryAgainLater,
    /// 4001: the server is shutting down; reconnect to another instance.
    ShuttingDown,
    /// 4010 ("moved"): this node is not the home of the exam the socket is for; a `redirect`
    /// message with the home's URL came just before. Reconnect there at once.
    Moved,
    /// 4008: the client read too slowly and its outbound queue overflowed.
    TooSlow,
    /// 4012: no pong arrived in time after a ping.
    NoPong,
    /// 4013: the client kept sending over its rate limit.
    RateLimited,
    /// 4500: the access token was invalid, expired or revoked.
    InvalidToken,
    /// 4501: the client sent something that is not a valid message where one was required.
    BadRequest,
    /// 4502: no `auth` frame arrived within the auth timeout.
    NoAuthInTime,
    /// 4503: the exam session ended or was terminated.
    SessionEnded,
    /// 4504: a newer connection of the same session and role replaced this one.
    Replaced,
    /// 4507: the client tried to reach a room or peer that is not theirs.
    Forbidden,
}

impl CloseCode {
    /// Every close code, for tests and for clients that map numbers back.
    pub const ALL: [CloseCode; 13] = [
        CloseCode::TooBig,
        CloseCode::TryAgainLater,
        CloseCode::ShuttingDown,
        CloseCode::TooSlow,
        CloseCode::Moved,
        CloseCode::NoPong,
        CloseCode::RateLimited,
        CloseCode::InvalidToken,
        CloseCode::BadRequest,
        CloseCode::NoAuthInTime,
        CloseCode::SessionEnded,
        CloseCode::Replaced,
        CloseCode::Forbidden,
    ];

    /// The numeric code sent in the close frame.
    pub const fn code(self) -> u16 {
        match self {
            CloseCode::TooBig => 1009,
            CloseCode::TryAgainLater => 1013,
            CloseCode::ShuttingDown => 4001,
            CloseCode::TooSlow => 4008,
            CloseCode::Moved => 4010,
            CloseCode::NoPong => 4012,
            CloseCode::RateLimited => 4013,
            CloseCode::InvalidToken => 4500,
            CloseCode::BadRequest => 4501,
            CloseCode::NoAuthInTime => 4502,
            CloseCode::SessionEnded => 4503,
            CloseCode::Replaced => 4504,
            CloseCode::Forbidden => 4507,
        }
    }

    /// The short reason sent in the close frame (well under the 123-byte limit).
    pub const fn reason(self) -> &'static str {
        match self {
            CloseCode::TooBig => "message too big",
            CloseCode::TryAgainLater => "try again later",
            CloseCode::ShuttingDown => "server shutting down",
            CloseCode::TooSlow => "too slow to read",
            CloseCode::Moved => "moved",
            CloseCode::NoPong => "no pong",
            CloseCode::RateLimited => "rate limited",
            CloseCode::InvalidToken => "invalid token",
            CloseCode::BadRequest => "bad request",
            CloseCode::NoAuthInTime => "no auth in time",
            CloseCode::SessionEnded => "session ended",
            CloseCode::Replaced => "replaced by a newer connection",
            CloseCode::Forbidden => "forbidden",
        }
    }

    /// Maps a numeric code back (for clients such as the load generator); `None` if unknown.
    pub fn from_code(code: u16) -> Option<CloseCode> {
        CloseCode::ALL.into_iter().find(|c| c.code() == code)
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code(), self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_contract() {
        let expected = [
            1009, 1013, 4001, 4008, 4010, 4012, 4013, 4500, 4501, 4502, 4503, 4504, 4507,
        ];
        let actual: Vec<u16> = CloseCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn codes_map_back_and_reasons_fit_a_close_frame() {
        for c in CloseCode::ALL {
            assert_eq!(CloseCode::from_code(c.code()), Some(c));
            assert!(!c.reason().is_empty() && c.reason().len() <= 123);
        }
        assert_eq!(CloseCode::from_code(1000), None);
    }
}
