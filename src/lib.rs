//! Proctor Hub: the composition root. This crate is the only one that touches sockets, stores
//! and signals; the wire protocol lives in `signaling`, the room domain in `rooms`.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod error;
pub mod events;
pub mod http;
pub mod hub;
pub mod jobs;
pub mod model;
pub mod pairing;
pub mod privacy;
pub mod recording;
pub mod relay;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod webhooks;
pub mod ws;

pub use app::Application;
pub use config::Config;
pub use error::Error;
