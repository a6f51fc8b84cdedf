//! The real `proctor-hub serve` binary as a child process: its own database (the test's),
//! its own Redis prefix, port 0 (the bound address is read from its JSON log), and signals
//! sent the way an operator or a crash sends them.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proctor_hub::auth::jwt::JwtKeys;
use proctor_hub::config::{Config, ProcessEnv};
use proctor_hub::model::Role;
use serde_json::Value;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use uuid::Uuid;

/// The signing secret every child hub gets.
pub const SECRET: &str = "process-test-secret-0123456789-abcdef";
/// The artifact master key every child hub gets (32 zero bytes, base64).
const MASTER_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// Where and how a child hub runs; the same settings start it again after a crash.
#[derive(Debug, Clone)]
pub struct HubSpec {
    /// `DATABASE_URL` of the test's database.
    pub database_url: String,
    /// `HUB_REDIS_PREFIX`, unique per test.
    pub redis_prefix: String,
    /// More `HUB_*` settings.
    pub env: Vec<(String, String)>,
}

impl HubSpec {
    /// A hub on `pool`'s database (the `#[sqlx::test]` one) with a fresh Redis prefix.
    pub fn on(pool: &PgPool) -> HubSpec {
        let db = pool
            .connect_options()
            .get_database()
            .expect("the test database has a name")
            .to_string();
        HubSpec {
            database_url: format!("postgres://postgres@127.0.0.1:5432/{db}"),
            redis_prefix: format!("proc:{}:", Uuid::new_v4().simple()),
            env: Vec::new(),
        }
    }

    /// With one more setting.
    pub fn with(mut self, key: &str, value: &str) -> HubSpec {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts `proctor-hub serve` and waits until it listens.
    pub async fn start(&self) -> HubProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_proctor-hub"));
        cmd.args(["--log-format", "json", "serve"])
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", "redis://127.0.0.1:6379")
            .env("HUB_REDIS_PREFIX", &self.redis_prefix)
            .env("HUB_HTTP_ADDR", "127.0.0.1:0")
            .env("HUB_MEDIA_ADDR", "off")
            .env("HUB_JWT_SECRET", SECRET)
            .env("HUB_ARTIFACT_MASTER_KEY", MASTER_KEY)
            .env(
                "HUB_ARTIFACT_DIR",
                std::env::temp_dir().join(format!("proctor-hub-proc-{}", Uuid::new_v4().simple())),
            )
            .env("RUST_LOG", "info,sqlx=warn")
            .env_remove("MONGODB_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the hub binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = oneshot::channel();
        let mut addr_tx = Some(addr_tx);
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let l = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = listening_addr(&line) {
                    if let Some(tx) = addr_tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                let mut log = l.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let l = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = l.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match tokio::time::timeout(Duration::from_secs(30), addr_rx).await {
            Ok(Ok(addr)) => addr,
            _ => panic!("the hub did not start:\n{}", log.lock().unwrap()),
        };
        HubProcess { child, addr, log }
    }
}

/// The address in the hub's "proctor hub listening" log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let v: Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields")?;
    if fields.get("message")?.as_str()? != "proctor hub listening" {
        return None;
    }
    fields.get("addr")?.as_str()?.parse().ok()
}

/// A running child hub.
pub struct HubProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Everything it printed.
    log: Arc<Mutex<String>>,
}

impl HubProcess {
    /// `http://addr/api/v1{path}`.
    pub fn api(&self, path: &str) -> String {
        format!("http://{}/api/v1{path}", self.addr)
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.child.id().expect("running") as i32
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({signal})");
    }

    /// SIGKILL, and waits for it to be gone.
    pub async fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait().await;
    }

    /// Waits for the process to exit, at most `within`.
    pub async fn exited(&mut self, within: Duration) -> ExitStatus {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!("the hub did not exit within {within:?}:\n{}", self.log()),
        }
    }

    /// Everything it printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The sum of a counter over its series in `/metrics` whose labels contain `labels`.
    pub async fn counter(&self, name: &str, labels: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Access tokens signed with [`SECRET`], as the child hubs expect them.
pub fn tokens() -> JwtKeys {
    let mut c = Config::load(None, &ProcessEnv, true).expect("config");
    c.jwt.secret = SECRET.to_string().into();
    c.jwt.generated = false;
    c.jwt.previous_secrets = vec![];
    JwtKeys::new(&c.jwt)
}

/// A candidate's access token.
pub fn candidate_token(keys: &JwtKeys, candidate: Uuid) -> String {
    keys.issue(candidate, Role::Candidate, None).unwrap()
}

/// An exam open now with `questions` SUBJECTIVE questions and `candidates` assigned candidates,
/// each with a STARTED session bound to `laptop-<i>` expiring in `expires_in_secs`, all by SQL:
/// (exam, questions, [(candidate, session)]).
pub async fn exam_with_sessions(
    db: &PgPool,
    questions: usize,
    candidates: usize,
    expires_in_secs: f64,
) -> (Uuid, Vec<Uuid>, Vec<(Uuid, Uuid)>) {
    let admin = Uuid::new_v4();
    sqlx::query("INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, 'A', 'x', 'ADMIN')")
        .bind(admin)
        .bind(format!("{}@admins.test", admin.simple()))
        .execute(db)
        .await
        .unwrap();
    let exam = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO exams (id, title, status, duration_minutes, starts_at, ends_at, created_by_user_id)
         VALUES ($1, 'Process', 'PUBLISHED', 60, now() - interval '1 minute', now() + interval '1 day', $2)",
    )
    .bind(exam)
    .bind(admin)
    .execute(db)
    .await
    .unwrap();
    let mut qs = Vec::with_capacity(questions);
    for i in 0..questions {
        let q = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO questions (id, exam_id, type, prompt, points, order_index)
             VALUES ($1, $2, 'SUBJECTIVE', 'Explain', 1, $3)",
        )
        .bind(q)
        .bind(exam)
        .bind(i as i32)
        .execute(db)
        .await
        .unwrap();
        qs.push(q);
    }
    let mut sessions = Vec::with_capacity(candidates);
    for i in 0..candidates {
        let (candidate, session) = (Uuid::new_v4(), Uuid::new_v4());
        sqlx::query("INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, 'C', 'x', 'CANDIDATE')")
            .bind(candidate)
            .bind(format!("{}@candidates.test", candidate.simple()))
            .execute(db)
            .await
            .unwrap();
        sqlx::query("INSERT INTO exam_assignments (id, exam_id, candidate_id) VALUES ($1, $2, $3)")
            .bind(Uuid::new_v4())
            .bind(exam)
            .bind(candidate)
            .execute(db)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO sessions (id, exam_id, candidate_id, expires_at, webrtc_room_id,
                                   question_order, device_fingerprint)
             VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5, $6, $7)",
        )
        .bind(session)
        .bind(exam)
        .bind(candidate)
        .bind(expires_in_secs)
        .bind(Uuid::new_v4())
        .bind(&qs)
        .bind(format!("laptop-{i}"))
        .execute(db)
        .await
        .unwrap();
        sessions.push((candidate, session));
    }
    (exam, qs, sessions)
}
