//! Integration tests: the real hub on port 0, a fresh Postgres database per test
//! (`#[sqlx::test]`) and a unique Redis key prefix per test.

mod auth;
mod browser;
mod helpers;
mod media;
mod ops;
mod proxy;
mod users;
mod ws;
