//! A local webhook receiver: records every request it accepts (headers and body), answers
//! 503 while it is "down", and verifies nothing itself (tests verify signatures).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

/// One accepted request.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// The parsed body.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The `type` of the body.
    pub fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_string()
    }

    /// Whether `webhook-signature` verifies with `secret` (Standard Webhooks).
    pub fn verifies(&self, secret: &str) -> bool {
        let wh = standardwebhooks::Webhook::new(secret).expect("a whsec_ secret");
        wh.verify(&self.body, &self.headers).is_ok()
    }
}

#[derive(Clone, Default)]
struct Shared {
    up: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<Received>>>,
    refused: Arc<std::sync::atomic::AtomicUsize>,
}

/// A running receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
}

impl Receiver {
    /// Starts one on a free loopback port, up.
    pub async fn start() -> Receiver {
        let shared = Shared::default();
        shared.up.store(true, Ordering::SeqCst);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(accept))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, shared }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Up (2xx) or down (503).
    pub fn set_up(&self, up: bool) {
        self.shared.up.store(up, Ordering::SeqCst);
    }

    /// Requests refused while down.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Everything accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.got.lock().unwrap().clone()
    }

    /// Waits until `done(received)` holds, at most `within`.
    pub async fn wait_for(
        &self,
        within: std::time::Duration,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let got = self.received();
            if done(&got) {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: got {:?}",
                got.iter().map(Received::kind).collect::<Vec<_>>()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

async fn accept(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if !s.up.load(Ordering::SeqCst) {
        s.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    s.got.lock().unwrap().push(Received { headers, body });
    StatusCode::NO_CONTENT
}
