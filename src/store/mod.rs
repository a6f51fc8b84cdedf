//! Connections to the stores: Postgres (the authority for everything acknowledged) and Redis
//! (what may be lost: tokens in flight, heartbeats, counters, caches).

pub mod answers;
pub mod cursor;
pub mod exams;
pub mod postgres;
pub mod redis;
pub mod sessions;
pub mod sessions_lookup;
pub mod users;
