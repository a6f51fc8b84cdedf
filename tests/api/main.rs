//! Integration tests: the real hub on port 0, a fresh Postgres database per test
//! (`#[sqlx::test]`) and a unique Redis key prefix per test.

mod auth;
mod cluster;
mod event_store;
mod events;
mod exam_day;
mod exams;
mod helpers;
mod load_scenarios;
mod media;
mod openapi;
mod ops;
mod partition;
mod privacy;
mod proctor;
#[path = "../support/proxy.rs"]
mod proxy;
#[path = "../support/receiver.rs"]
mod receiver;
mod recording;
mod resume;
mod sessions;
mod users;
mod webhooks;
mod ws;
