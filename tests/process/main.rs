//! The hub as an operator runs it: the real `proctor-hub serve` binary as a child process on a
//! fresh database (`#[sqlx::test]`) and its own Redis prefix, killed with SIGKILL mid-write,
//! stopped with SIGTERM mid-request, and run twice on one database.

mod cluster;
mod crash;
mod drain;
mod harness;
// The store proxy is shared with the API tests, which use all of it.
#[path = "../support/proxy.rs"]
#[allow(dead_code)]
mod proxy;
// The receiver is shared with the API tests, which use all of it.
#[path = "../support/receiver.rs"]
#[allow(dead_code)]
mod receiver;
mod sweepers;
mod webhooks;
