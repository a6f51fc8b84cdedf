//! `spawn_app()` and friends.

use std::net::SocketAddr;
use std::time::Duration;

use proctor_hub::config::{Config, ProcessEnv};
use proctor_hub::model::UserRole;
use proctor_hub::state::AppState;
use proctor_hub::Application;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The signing secret every test hub uses.
pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// A running hub and a client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The media relay's UDP address.
    pub media_addr: Option<SocketAddr>,
    pub state: AppState,
    pub client: reqwest::Client,
    pub shutdown: CancellationToken,
    pub server: tokio::task::JoinHandle<Result<(), proctor_hub::Error>>,
}

/// Test configuration: port 0, a unique Redis prefix, short timers.
pub fn test_config() -> Config {
    let mut c = Config::load(None, &ProcessEnv, true).expect("test config");
    c.http_addr = "127.0.0.1:0".parse().unwrap();
    c.redis_prefix = format!("test:{}:", Uuid::new_v4().simple());
    c.jwt.secret = SECRET.to_string().into();
    c.jwt.generated = false;
    c.jwt.previous_secrets = vec![];
    c.shutdown_grace = Duration::from_secs(3);
    c.allowed_origins = vec!["http://allowed.example".into()];
    // The media relay on a free loopback port, advertised as itself.
    c.media = Some(proctor_hub::config::MediaConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        public_addrs: vec![],
    });
    c
}

pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |_| {}).await
}

pub async fn spawn_app_with(pool: PgPool, tweak: impl FnOnce(&mut Config)) -> TestApp {
    proctor_hub::telemetry::init_logging(proctor_hub::telemetry::LogFormat::Text);
    let mut config = test_config();
    tweak(&mut config);
    let shutdown = CancellationToken::new();
    let app = Application::build_with_pool(config, pool, shutdown.clone())
        .await
        .expect("build app");
    let addr = app.local_addr();
    let media_addr = app.media_addr();
    let state = app.state().clone();
    let server = tokio::spawn(app.run());
    TestApp {
        addr,
        media_addr,
        state,
        client: reqwest::Client::new(),
        shutdown,
        server,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn api(&self, path: &str) -> String {
        self.url(&format!("/api/v1{path}"))
    }

    /// Creates a user directly in the store.
    pub async fn user(&self, email: &str, password: &str, role: UserRole) -> Uuid {
        let hash = proctor_hub::auth::password::hash_blocking(password).unwrap();
        proctor_hub::store::users::insert(&self.state.db, email, "Test User", &hash, role)
            .await
            .unwrap()
            .id
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut req = self.client.post(self.api(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut req = self.client.patch(self.api(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.api(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// Logs in and returns the whole response body.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let r = self
            .post(
                "/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "login {email}");
        r.json().await.unwrap()
    }

    /// Creates a user of `role` and returns (id, access token).
    pub async fn user_with_token(&self, role: UserRole) -> (Uuid, String) {
        let email = format!("{}@example.test", Uuid::new_v4().simple());
        let id = self.user(&email, "password-123", role).await;
        let body = self.login(&email, "password-123").await;
        (id, body["accessToken"].as_str().unwrap().to_string())
    }

    /// Stops the hub and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("hub stops within the grace period")
            .unwrap()
            .unwrap();
    }
}

/// Asserts status and error code of a response.
pub async fn assert_error(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "status");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "body: {body}");
    body
}
