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
    /// The relay's UDP address (read by the browser test binary, which shares this file).
    #[allow(dead_code)]
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
    // Dropped sockets leave at once, as most tests expect; the resume tests turn it on.
    c.ws.resume_window = Duration::ZERO;
    c.allowed_origins = vec!["http://allowed.example".into()];
    c.events.artifact_storage =
        proctor_hub::config::ArtifactStorage::Local(std::env::temp_dir().join(format!(
            "proctor-hub-test-artifacts-{}",
            Uuid::new_v4().simple()
        )));
    // The media relay on a free loopback port, advertised as itself.
    c.media = Some(proctor_hub::config::MediaConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        public_addrs: vec![],
        socket_buffer: 1 << 20,
        tasks: 1,
    });
    c
}

pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |_| {}).await
}

pub async fn spawn_app_with(pool: PgPool, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with_store(pool, None, tweak).await
}

/// A hub on an event store of the test's (`None`: the configured one).
pub async fn spawn_app_with_store(
    pool: PgPool,
    store: Option<proctor_hub::events::SharedStore>,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    proctor_hub::telemetry::init_test_logging();
    let mut config = test_config();
    tweak(&mut config);
    let shutdown = CancellationToken::new();
    let app = Application::build_with_store(config, pool, store, shutdown.clone())
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

    /// Creates a user named `name` directly in the store (pages and lists show names).
    pub async fn named_user(
        &self,
        email: &str,
        password: &str,
        name: &str,
        role: UserRole,
    ) -> Uuid {
        let hash = proctor_hub::auth::password::hash_blocking(password).unwrap();
        proctor_hub::store::users::insert(&self.state.db, email, name, &hash, role)
            .await
            .unwrap()
            .id
    }

    /// Creates a user directly in the store.
    pub async fn user(&self, email: &str, password: &str, role: UserRole) -> Uuid {
        self.named_user(email, password, "Test User", role).await
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

/// An exam (published, open now) and a started session of a new candidate, by SQL:
/// (session, exam, candidate).
pub async fn session_in(db: &PgPool) -> (Uuid, Uuid, Uuid) {
    let admin: Uuid = sqlx::query_scalar("INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, 'A', 'x', 'ADMIN') RETURNING id")
        .bind(Uuid::new_v4())
        .bind(format!("{}@admins.test", Uuid::new_v4().simple()))
        .fetch_one(db)
        .await
        .unwrap();
    let candidate: Uuid = sqlx::query_scalar("INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, 'C', 'x', 'CANDIDATE') RETURNING id")
        .bind(Uuid::new_v4())
        .bind(format!("{}@candidates.test", Uuid::new_v4().simple()))
        .fetch_one(db)
        .await
        .unwrap();
    let exam = Uuid::new_v4();
    sqlx::query("INSERT INTO exams (id, title, status, duration_minutes, starts_at, ends_at, created_by_user_id) VALUES ($1, 'E', 'PUBLISHED', 60, now() - interval '1 minute', now() + interval '1 day', $2)")
        .bind(exam)
        .bind(admin)
        .execute(db)
        .await
        .unwrap();
    let session = new_session_of(db, exam, candidate).await;
    (session, exam, candidate)
}

/// A started session of `candidate` in `exam`.
pub async fn new_session_of(db: &PgPool, exam: Uuid, candidate: Uuid) -> Uuid {
    let session = Uuid::new_v4();
    sqlx::query("INSERT INTO sessions (id, exam_id, candidate_id, expires_at, webrtc_room_id) VALUES ($1, $2, $3, now() + interval '1 hour', $4)")
        .bind(session)
        .bind(exam)
        .bind(candidate)
        .bind(Uuid::new_v4())
        .execute(db)
        .await
        .unwrap();
    session
}

/// A started session of a new candidate in a new published exam:
/// (candidate token, session, room, exam).
pub async fn new_session(app: &TestApp) -> (String, Uuid, Uuid, Uuid) {
    let (session, exam, candidate) = session_in(&app.state.db).await;
    let token = app.token(candidate, proctor_hub::model::Role::Candidate, None);
    let room: Uuid = sqlx::query_scalar("SELECT webrtc_room_id FROM sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    (token, session, room, exam)
}

impl TestApp {
    /// An access token minted directly (no login, no password hashing).
    pub fn token(
        &self,
        user: Uuid,
        role: proctor_hub::model::Role,
        session: Option<Uuid>,
    ) -> String {
        self.state.jwt.issue(user, role, session).unwrap()
    }
}

/// Asserts status and error code of a response.
pub async fn assert_error(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "status");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "body: {body}");
    body
}

impl TestApp {
    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut req = self.client.put(self.api(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.delete(self.api(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// POST that must answer `status`; returns the body.
    pub async fn post_ok(&self, path: &str, token: &str, body: Value, status: StatusCode) -> Value {
        let r = self.post(path, Some(token), body).await;
        assert_eq!(r.status(), status, "POST {path}");
        r.json().await.unwrap()
    }
}

/// A published exam with one question of each kind, assigned to one candidate.
pub struct ExamFixture {
    pub exam_id: Uuid,
    #[allow(dead_code)]
    pub admin_id: Uuid,
    pub admin: String,
    pub candidate_id: Uuid,
    pub candidate: String,
    /// MCQ, single correct ("b"), 2 points.
    pub mcq: Uuid,
    /// MCQ, multiple correct ("a", "c"), 3 points.
    pub mcq_multi: Uuid,
    /// CODING, 5 points.
    pub coding: Uuid,
    /// SUBJECTIVE, 4 points.
    pub subjective: Uuid,
}

/// Exam body open now for an hour, `duration_minutes` long.
pub fn exam_body(duration_minutes: i32, randomize: bool) -> Value {
    let now = chrono::Utc::now();
    json!({
        "title": "Algebra", "instructions": "No notes.", "durationMinutes": duration_minutes,
        "startsAt": now - chrono::Duration::minutes(5),
        "endsAt": now + chrono::Duration::hours(1),
        "randomizeQuestions": randomize,
    })
}

pub fn mcq_body(points: i32, correct: &[&str]) -> Value {
    json!({
        "type": "MCQ", "prompt": "Pick", "points": points,
        "options": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}, {"id": "c", "text": "C"}],
        "answerKey": {"correct": correct},
    })
}

/// Creates, fills, publishes and assigns an exam through the API.
pub async fn published_exam(app: &TestApp) -> ExamFixture {
    published_exam_with(app, exam_body(60, false), true).await
}

pub async fn published_exam_with(app: &TestApp, exam: Value, manual: bool) -> ExamFixture {
    let (admin_id, admin) = app.user_with_token(UserRole::Admin).await;
    let (candidate_id, candidate) = app.user_with_token(UserRole::Candidate).await;
    let e = app
        .post_ok("/exams", &admin, exam, StatusCode::CREATED)
        .await;
    let exam_id: Uuid = e["id"].as_str().unwrap().parse().unwrap();
    let admin_ref = admin.as_str();
    let q = |v: Value| async move {
        let b = app
            .post_ok(
                &format!("/exams/{exam_id}/questions"),
                admin_ref,
                v,
                StatusCode::CREATED,
            )
            .await;
        b["id"].as_str().unwrap().parse::<Uuid>().unwrap()
    };
    let mcq = q(mcq_body(2, &["b"])).await;
    let mcq_multi = q(mcq_body(3, &["a", "c"])).await;
    let (coding, subjective) = if manual {
        (
            q(
                json!({"type": "CODING", "prompt": "Write fizzbuzz", "points": 5,
                     "answerKey": {"rubric": "works"}}),
            )
            .await,
            q(json!({"type": "SUBJECTIVE", "prompt": "Explain", "points": 4})).await,
        )
    } else {
        (Uuid::nil(), Uuid::nil())
    };
    app.post_ok(
        &format!("/exams/{exam_id}/publish"),
        &admin,
        json!({}),
        StatusCode::OK,
    )
    .await;
    let r = app
        .put(
            &format!("/exams/{exam_id}/assignments"),
            Some(&admin),
            json!({"candidateIds": [candidate_id]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    ExamFixture {
        exam_id,
        admin_id,
        admin,
        candidate_id,
        candidate,
        mcq,
        mcq_multi,
        coding,
        subjective,
    }
}

impl ExamFixture {
    /// Assigns one more fresh candidate; returns (id, token).
    pub async fn another_candidate(&self, app: &TestApp) -> (Uuid, String) {
        let (id, token) = app.user_with_token(UserRole::Candidate).await;
        let r = app
            .put(
                &format!("/exams/{}/assignments", self.exam_id),
                Some(&self.admin),
                json!({"candidateIds": [id]}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        (id, token)
    }

    /// Starts the fixture candidate's session (201); returns the body.
    pub async fn start(&self, app: &TestApp, token: &str) -> Value {
        app.post_ok(
            &format!("/exams/{}/sessions", self.exam_id),
            token,
            json!({"deviceFingerprint": "laptop-1"}),
            StatusCode::CREATED,
        )
        .await
    }
}

/// Panics if `v` carries an answer key anywhere.
pub fn assert_no_answer_key(v: &Value) {
    let text = v.to_string();
    assert!(
        !text.contains("answerKey") && !text.contains("correct") && !text.contains("rubric"),
        "answer key leaked: {text}"
    );
}

/// Inserts `n` candidates with STARTED sessions of `exam_id` directly in SQL, expiring at
/// `expires_in_secs` from now (negative: already expired). Returns (session id, candidate id).
pub async fn sessions_in_sql(
    app: &TestApp,
    exam_id: Uuid,
    n: usize,
    expires_in_secs: i64,
) -> Vec<(Uuid, Uuid)> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let candidate = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, role)
             VALUES ($1, $2, 'Bulk', 'x', 'CANDIDATE')",
        )
        .bind(candidate)
        .bind(format!("{}@bulk.test", candidate.simple()))
        .execute(&app.state.db)
        .await
        .unwrap();
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO sessions (id, exam_id, candidate_id, expires_at, webrtc_room_id)
             VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5)",
        )
        .bind(id)
        .bind(exam_id)
        .bind(candidate)
        .bind(expires_in_secs as f64)
        .bind(Uuid::new_v4())
        .execute(&app.state.db)
        .await
        .unwrap();
        ids.push((id, candidate));
    }
    ids
}

/// Polls until `f` holds (bounded).
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}
