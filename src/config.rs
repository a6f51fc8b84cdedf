//! Typed configuration, loaded once at start-up from an optional TOML file and then from
//! environment variables (the environment wins). Every option is documented in the README.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use secrecy::SecretString;

use crate::events::artifacts::MasterKey;
use serde::Deserialize;

use crate::error::Error;

/// Everything the hub can be configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Postgres connection string; the database is created on `serve`/`migrate` if missing.
    pub database_url: String,
    /// Redis connection string.
    pub redis_url: String,
    /// MongoDB connection string; `None` keeps proctoring events in Postgres.
    pub mongodb_url: Option<String>,
    /// Address the HTTP and WebSocket listener binds to.
    pub http_addr: SocketAddr,
    /// Prefix of every Redis key this hub writes, so several hubs (or tests) share one Redis.
    pub redis_prefix: String,
    /// Browser origins allowed to open the WebSocket (and to call the API cross-origin).
    /// Empty means: no browser origin is allowed; clients without an `Origin` header always are.
    pub allowed_origins: Vec<String>,
    /// Public base URL of the hub, used in pairing links and demo output.
    pub public_url: String,
    /// Access-token signing.
    pub jwt: JwtConfig,
    /// Password hashing and login throttling.
    pub auth: AuthConfig,
    /// Seconds that in-flight work gets to finish after SIGINT/SIGTERM.
    pub shutdown_grace: Duration,
    /// Time a new WebSocket gets to send `auth` (close 4502 after it).
    pub ws_auth_timeout: Duration,
    /// Lifetime of a pairing token.
    pub pairing_ttl: Duration,
    /// How often devices heartbeat; a device is lost after 3 intervals of silence.
    pub heartbeat_interval: Duration,
    /// WebSocket limits per kind of client.
    pub ws: WsConfig,
    /// Whether to read the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// How long an autosave, or the per-request role check, waits on Postgres before 503
    /// `STORE_UNAVAILABLE`: a partitioned store leaves queries hanging (no error, no answer),
    /// and a candidate's page must hear "not saved, retry" within seconds.
    pub store_timeout: Duration,
    /// Exam-taking timings and autosave batching.
    pub exams: ExamConfig,
    /// Proctoring-event ingest and artifacts.
    pub events: EventsConfig,
    /// Days events and artifacts are kept (unless their session is under review).
    pub retention_days: u32,
    /// How often the retention job runs.
    pub retention_interval: Duration,
    /// The media relay (SFU); `None` when `HUB_MEDIA_ADDR=off`.
    pub media: Option<MediaConfig>,
    /// STUN/TURN servers handed to clients in `joined`.
    pub ice: IceConfig,
    /// Running as one node of several (`HUB_CLUSTER`); `None`: a single hub.
    pub cluster: Option<ClusterConfig>,
    /// Recording of sessions' media by the relay.
    pub recording: crate::recording::RecordingConfig,
    /// Webhook delivery.
    pub webhooks: crate::webhooks::WebhookConfig,
}

/// One node of a multi-process hub (`../shared/design/SCALEOUT.md`): the node registry and
/// exam-home leases in Redis, redirects, cross-node notices.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The WebSocket URL other nodes redirect this node's exams' sockets to
    /// (`HUB_PUBLIC_WS_URL`; default `ws://<bound HTTP address>/ws`).
    pub public_ws_url: Option<String>,
    /// A readable prefix of the node id (`HUB_NODE_NAME`, default the host name); the id
    /// itself gets a random suffix new at every start.
    pub node_name: String,
    /// Where the node runs (`HUB_REGION`, default `local`), shown in the registry.
    pub region: String,
    /// Lifetime of an exam-home lease without renewal (`HUB_CLUSTER_LEASE_MS`, default
    /// 15000); renewed every third of it.
    pub lease_ttl: Duration,
    /// Lifetime of the node's registry key without refresh (`HUB_CLUSTER_NODE_TTL_MS`,
    /// default 6000); refreshed every third of it.
    pub node_ttl: Duration,
    /// How often the node re-reads the status of the sessions it serves
    /// (`HUB_CLUSTER_RECONCILE_MS`, default 30000), covering notices lost between COMMIT and
    /// PUBLISH or while its subscription was down.
    pub reconcile_interval: Duration,
    /// Sockets above which a node takes no new exam homes (`HUB_CLUSTER_MAX_LOAD`, default
    /// 20000).
    pub max_load: u32,
}

/// WebSocket limits: one set for devices (laptops, phones), one for staff (proctors, admins),
/// whose pages send and receive far more (a 50-candidate grid joins, subscribes and answers
/// for every tile at once). Before `auth` every socket has the device limits.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Candidates' laptops and paired phones.
    pub device: signaling::Limits,
    /// Proctors and admins.
    pub staff: signaling::Limits,
    /// How long a socket that dropped without a goodbye can come back as the same peer
    /// (`auth.resume`); zero turns resuming off.
    pub resume_window: Duration,
}

/// Exam-taking timings and the autosave group commit.
#[derive(Debug, Clone)]
pub struct ExamConfig {
    /// How long after `expiresAt` an autosave is still accepted (network latency of the last
    /// save), default 5 s.
    pub autosave_grace: Duration,
    /// How often the sweeper auto-submits expired sessions, default 1 s.
    pub sweep_interval: Duration,
    /// Most saves written by one multi-row upsert.
    pub autosave_batch_max: usize,
    /// How long the batcher waits for more saves after the first of a batch arrived.
    pub autosave_batch_window: Duration,
    /// Batches being written at once (overlaps commit latency).
    pub autosave_max_inflight: usize,
}

impl Default for ExamConfig {
    fn default() -> Self {
        ExamConfig {
            autosave_grace: Duration::from_secs(5),
            sweep_interval: Duration::from_secs(1),
            autosave_batch_max: 256,
            autosave_batch_window: Duration::from_millis(2),
            autosave_max_inflight: 4,
        }
    }
}

/// The event ingest and the encrypted artifacts.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// Most events buffered while the event store is slow or down; beyond, producers get 503.
    pub buffer: usize,
    /// Most events per store write.
    pub batch_max: usize,
    /// How long the ingest waits for more events before a write that is not full.
    pub linger: Duration,
    /// Event writes in flight at once (writer lanes, each session's events in one lane).
    pub writers: usize,
    /// How long a producer waits for its ack before 503 (its events may still be stored).
    pub ack_timeout: Duration,
    /// Most events in one `POST /sessions/{id}/events`.
    pub per_request: usize,
    /// Wraps the per-session artifact data keys (AES-256).
    pub artifact_master_key: MasterKey,
    /// True when the master key was generated at start-up (demo mode only).
    pub artifact_key_generated: bool,
    /// Where artifact bytes go.
    pub artifact_storage: ArtifactStorage,
    /// Largest artifact upload.
    pub artifact_max_bytes: usize,
}

/// Where encrypted artifacts are stored.
#[derive(Debug, Clone)]
pub enum ArtifactStorage {
    /// A local directory.
    Local(PathBuf),
    /// An S3-compatible bucket.
    S3(S3Config),
}

/// An S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Region (`us-east-1` by default).
    pub region: String,
    /// Endpoint URL for S3-compatible stores (MinIO, …); `None` for AWS.
    pub endpoint: Option<String>,
    /// Access key id; `None` uses the environment's usual AWS credentials.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<SecretString>,
    /// Allow plain-HTTP endpoints (local MinIO).
    pub allow_http: bool,
}

/// The media relay's one UDP port.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Where the UDP socket binds (`HUB_MEDIA_ADDR`, default `0.0.0.0:3480`; port 0 in tests).
    pub addr: SocketAddr,
    /// Addresses advertised as ICE host candidates (`HUB_MEDIA_PUBLIC_ADDRS`, comma-separated
    /// `ip` or `ip:port`; a missing port means the bound port). Empty: the bound address, with
    /// an unspecified IP advertised as 127.0.0.1, which only suits a single machine.
    pub public_addrs: Vec<SocketAddr>,
    /// Receive and send buffer of the UDP socket, bytes (`HUB_MEDIA_SOCKET_BUFFER`, default
    /// 4 MiB). The kernel caps it at `net.core.rmem_max`/`wmem_max`; the hub warns when it
    /// got less than asked.
    pub socket_buffer: usize,
    /// Media tasks (`HUB_MEDIA_TASKS`, default 1): each owns one UDP socket (port `addr`'s
    /// port + i) and the connections of the rooms hashed to it, so forwarding spreads over
    /// cores; a room never spans tasks.
    pub tasks: usize,
}

/// STUN/TURN for clients. TURN uses the REST-credential scheme of coturn's
/// `use-auth-secret`: username `expiry:peerId`, credential base64(HMAC-SHA1(secret, username)).
#[derive(Debug, Clone, Default)]
pub struct IceConfig {
    /// `stun:` URLs (`HUB_STUN_URLS`, comma-separated).
    pub stun_urls: Vec<String>,
    /// `turn:`/`turns:` URLs (`HUB_TURN_URLS`, comma-separated); used only with a secret.
    pub turn_urls: Vec<String>,
    /// The secret shared with the TURN server (`HUB_TURN_SECRET`).
    pub turn_secret: Option<SecretString>,
    /// Lifetime of a TURN credential (`HUB_TURN_TTL_SECS`, default 3600).
    pub turn_ttl: Duration,
}

/// How access tokens are signed and checked.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// HMAC secret of the current signing key.
    pub secret: SecretString,
    /// Secrets of previous keys, still accepted for verification during a rotation.
    pub previous_secrets: Vec<SecretString>,
    /// `iss` claim written and required.
    pub issuer: String,
    /// `aud` claim written and required.
    pub audience: String,
    /// Access-token lifetime (at most 15 minutes).
    pub access_ttl: Duration,
    /// Lifetime of one refresh token.
    pub refresh_ttl: Duration,
    /// Absolute lifetime of a refresh-token family (at most 12 hours).
    pub refresh_family_ttl: Duration,
    /// How long after a rotation the same device may retry with the spent token and get the
    /// same successor (a lost response), instead of tripping reuse detection.
    pub refresh_grace: Duration,
    /// True when the secret was generated at start-up (demo mode only).
    pub generated: bool,
}

/// Password hashing and login throttling.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Concurrent argon2 hashes; more wait briefly, then get 503 `AUTH_BUSY`.
    pub hash_concurrency: usize,
    /// How long a login waits for a hashing slot before `AUTH_BUSY`.
    pub hash_queue_timeout: Duration,
    /// Failed logins for one account from one client IP within `login_window` before 429
    /// (that IP only: the account holder elsewhere is never locked out).
    pub login_max_failures_per_account_ip: u32,
    /// Failed logins per client IP within `login_window` before 429.
    pub login_max_failures_per_ip: u32,
    /// Window of the failed-login counters.
    pub login_window: Duration,
}

/// The shape of the optional TOML file; every field optional, names as in the environment
/// variables without the `HUB_` prefix, lower-cased.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    redis_url: Option<String>,
    mongodb_url: Option<String>,
    http_addr: Option<String>,
    redis_prefix: Option<String>,
    allowed_origins: Option<Vec<String>>,
    public_url: Option<String>,
    jwt_secret: Option<String>,
    jwt_key_file: Option<PathBuf>,
    jwt_previous_secrets: Option<Vec<String>>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    access_ttl_secs: Option<u64>,
    refresh_ttl_secs: Option<u64>,
    refresh_family_ttl_secs: Option<u64>,
    refresh_grace_secs: Option<u64>,
    hash_concurrency: Option<usize>,
    login_max_failures_per_account_ip: Option<u32>,
    login_max_failures_per_ip: Option<u32>,
    login_window_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    pairing_ttl_secs: Option<u64>,
    ws_auth_timeout_secs: Option<u64>,
    heartbeat_interval_ms: Option<u64>,
    ws_max_message_bytes: Option<usize>,
    ws_ping_interval_secs: Option<u64>,
    ws_pong_timeout_secs: Option<u64>,
    ws_rate_limit_strikes: Option<u32>,
    ws_inbound_per_second: Option<u32>,
    ws_inbound_burst: Option<u32>,
    ws_outbound_queue_messages: Option<usize>,
    ws_outbound_queue_bytes: Option<usize>,
    ws_staff_inbound_per_second: Option<u32>,
    ws_staff_inbound_burst: Option<u32>,
    ws_staff_outbound_queue_messages: Option<usize>,
    ws_staff_outbound_queue_bytes: Option<usize>,
    ws_resume_window_secs: Option<u64>,
    trust_forwarded_for: Option<bool>,
    autosave_grace_secs: Option<u64>,
    sweep_interval_ms: Option<u64>,
    store_timeout_ms: Option<u64>,
    autosave_batch_max: Option<usize>,
    autosave_batch_window_ms: Option<u64>,
    event_buffer: Option<usize>,
    event_batch_max: Option<usize>,
    event_linger_ms: Option<u64>,
    event_writers: Option<usize>,
    event_ack_timeout_ms: Option<u64>,
    events_per_request: Option<usize>,
    artifact_master_key: Option<String>,
    artifact_dir: Option<PathBuf>,
    artifact_max_bytes: Option<usize>,
    artifact_s3_bucket: Option<String>,
    artifact_s3_region: Option<String>,
    artifact_s3_endpoint: Option<String>,
    artifact_s3_access_key_id: Option<String>,
    artifact_s3_secret_access_key: Option<String>,
    artifact_s3_allow_http: Option<bool>,
    retention_days: Option<u32>,
    retention_interval_secs: Option<u64>,
    media_addr: Option<String>,
    media_public_addrs: Option<Vec<String>>,
    media_socket_buffer: Option<usize>,
    media_tasks: Option<usize>,
    stun_urls: Option<Vec<String>>,
    turn_urls: Option<Vec<String>>,
    turn_secret: Option<String>,
    turn_ttl_secs: Option<u64>,
}

fn cluster_config(env: &dyn Env) -> Result<Option<ClusterConfig>, Error> {
    let on = match env.get("HUB_CLUSTER") {
        Some(v) => parse::<bool>("HUB_CLUSTER", v)?,
        None => false,
    };
    if !on {
        return Ok(None);
    }
    let ms = |key: &str, default: u64| -> Result<Duration, Error> {
        Ok(Duration::from_millis(match env.get(key) {
            Some(v) => parse(key, v)?,
            None => default,
        }))
    };
    let config = ClusterConfig {
        public_ws_url: env.get("HUB_PUBLIC_WS_URL"),
        node_name: env
            .get("HUB_NODE_NAME")
            .or_else(|| env.get("HOSTNAME"))
            .unwrap_or_else(|| "hub".into()),
        region: env.get("HUB_REGION").unwrap_or_else(|| "local".into()),
        lease_ttl: ms("HUB_CLUSTER_LEASE_MS", 15_000)?,
        node_ttl: ms("HUB_CLUSTER_NODE_TTL_MS", 6_000)?,
        reconcile_interval: ms("HUB_CLUSTER_RECONCILE_MS", 30_000)?,
        max_load: match env.get("HUB_CLUSTER_MAX_LOAD") {
            Some(v) => parse("HUB_CLUSTER_MAX_LOAD", v)?,
            None => 20_000,
        },
    };
    if let Some(url) = &config.public_ws_url {
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(Error::Config(format!(
                "HUB_PUBLIC_WS_URL must be a ws:// or wss:// URL, not {url:?}"
            )));
        }
    }
    if config.lease_ttl < config.node_ttl * 2 {
        return Err(Error::Config(
            "HUB_CLUSTER_LEASE_MS must be at least twice HUB_CLUSTER_NODE_TTL_MS".into(),
        ));
    }
    Ok(Some(config))
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn public_addr(s: &str, default_port: u16) -> Result<SocketAddr, Error> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip: std::net::IpAddr = parse("HUB_MEDIA_PUBLIC_ADDRS", s.to_string())?;
    Ok(SocketAddr::new(ip, default_port))
}

/// Reads variables; a seam so tests can load configuration from a map instead of the process.
pub trait Env {
    /// The value of `key`, if set and not empty.
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn get(&self, key: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_string())
    }
}

/// `HUB_WEBHOOK_*`.
fn webhook_config(env: &dyn Env) -> Result<crate::webhooks::WebhookConfig, Error> {
    let d = crate::webhooks::WebhookConfig::default();
    let flag = |key: &str| {
        env.get(key)
            .is_some_and(|v| matches!(v.as_str(), "true" | "1" | "on"))
    };
    let ms = |key: &str, default: Duration| -> Result<Duration, Error> {
        Ok(match env.get(key) {
            Some(v) => Duration::from_millis(parse::<u64>(key, v)?.max(1)),
            None => default,
        })
    };
    let secs = |key: &str, default: Duration| -> Result<Duration, Error> {
        Ok(match env.get(key) {
            Some(v) => Duration::from_secs(parse::<u64>(key, v)?.max(1)),
            None => default,
        })
    };
    let concurrency = match env.get("HUB_WEBHOOK_CONCURRENCY") {
        Some(v) => parse::<usize>("HUB_WEBHOOK_CONCURRENCY", v)?.clamp(1, 1024),
        None => d.concurrency,
    };
    let per_endpoint = match env.get("HUB_WEBHOOK_PER_ENDPOINT") {
        Some(v) => parse::<i64>("HUB_WEBHOOK_PER_ENDPOINT", v)?.clamp(1, 256),
        None => d.per_endpoint,
    };
    Ok(crate::webhooks::WebhookConfig {
        allow_loopback: flag("HUB_WEBHOOK_ALLOW_LOOPBACK"),
        allow_private: flag("HUB_WEBHOOK_ALLOW_PRIVATE"),
        concurrency,
        per_endpoint,
        timeout: ms("HUB_WEBHOOK_TIMEOUT_MS", d.timeout)?,
        retry_for: secs("HUB_WEBHOOK_RETRY_FOR_SECS", d.retry_for)?,
        disable_after: secs("HUB_WEBHOOK_DISABLE_AFTER_SECS", d.disable_after)?,
        backoff_base: ms("HUB_WEBHOOK_BACKOFF_BASE_MS", d.backoff_base)?,
        backoff_max: ms("HUB_WEBHOOK_BACKOFF_MAX_MS", d.backoff_max)?,
        poll: ms("HUB_WEBHOOK_POLL_MS", d.poll)?,
    })
}

fn parse<T: std::str::FromStr>(key: &str, value: String) -> Result<T, Error> {
    value
        .parse()
        .map_err(|_| Error::Config(format!("{key}: cannot parse {value:?}")))
}

impl Config {
    /// Loads the file (if given), then the environment. `demo` allows a generated JWT secret.
    pub fn load(file: Option<&Path>, env: &dyn Env, demo: bool) -> Result<Self, Error> {
        let f: FileConfig = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
                toml::from_str(&text)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
            }
            None => FileConfig::default(),
        };
        let events = events_config(&f, env, demo)?;
        let secs = |key: &str, file: Option<u64>, default: u64| -> Result<Duration, Error> {
            Ok(Duration::from_secs(match env.get(key) {
                Some(v) => parse(key, v)?,
                None => file.unwrap_or(default),
            }))
        };
        let auth_timeout = secs("HUB_WS_AUTH_TIMEOUT_SECS", f.ws_auth_timeout_secs, 10)?;
        let heartbeat_interval =
            Duration::from_millis(match env.get("HUB_HEARTBEAT_INTERVAL_MS") {
                Some(v) => parse("HUB_HEARTBEAT_INTERVAL_MS", v)?,
                None => f.heartbeat_interval_ms.unwrap_or(5000),
            });
        let ws = ws_config(&f, env, auth_timeout, heartbeat_interval)?;

        let http_addr = env
            .get("HUB_HTTP_ADDR")
            .or(f.http_addr)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let http_addr: SocketAddr = parse("HUB_HTTP_ADDR", http_addr)?;

        let allowed_origins = match env.get("HUB_ALLOWED_ORIGINS") {
            Some(v) => v
                .split(',')
                .map(|s| s.trim().trim_end_matches('/').to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            None => f.allowed_origins.unwrap_or_default(),
        };
        let public_url = env
            .get("HUB_PUBLIC_URL")
            .or(f.public_url)
            .unwrap_or_else(|| format!("http://{http_addr}"));

        let key_file = env
            .get("HUB_JWT_KEY_FILE")
            .map(PathBuf::from)
            .or(f.jwt_key_file);
        let secret = match (env.get("HUB_JWT_SECRET").or(f.jwt_secret), key_file) {
            (Some(s), _) => Some(s),
            (None, Some(path)) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
                    .trim()
                    .to_string(),
            ),
            (None, None) => None,
        };
        let (secret, generated) = match secret {
            Some(s) if s.len() >= 32 => (s, false),
            Some(_) => {
                return Err(Error::Config(
                    "HUB_JWT_SECRET must be at least 32 characters".into(),
                ))
            }
            None if demo => (crate::auth::random_token(), true),
            None => {
                return Err(Error::Config(
                    "HUB_JWT_SECRET (or HUB_JWT_KEY_FILE) is required outside demo mode".into(),
                ))
            }
        };
        let previous_secrets = match env.get("HUB_JWT_PREVIOUS_SECRETS") {
            Some(v) => v.split(',').map(|s| s.trim().to_string()).collect(),
            None => f.jwt_previous_secrets.unwrap_or_default(),
        };

        let access_ttl = secs("HUB_ACCESS_TTL_SECS", f.access_ttl_secs, 900)?;
        if access_ttl > Duration::from_secs(900) || access_ttl.is_zero() {
            return Err(Error::Config(
                "HUB_ACCESS_TTL_SECS must be between 1 and 900".into(),
            ));
        }
        let refresh_family_ttl = secs(
            "HUB_REFRESH_FAMILY_TTL_SECS",
            f.refresh_family_ttl_secs,
            12 * 3600,
        )?;
        if refresh_family_ttl > Duration::from_secs(12 * 3600) {
            return Err(Error::Config(
                "HUB_REFRESH_FAMILY_TTL_SECS must be at most 43200 (12 h)".into(),
            ));
        }

        let ms = |key: &str, file: Option<u64>, default: u64| -> Result<Duration, Error> {
            Ok(Duration::from_millis(match env.get(key) {
                Some(v) => parse(key, v)?,
                None => file.unwrap_or(default),
            }))
        };
        let defaults = ExamConfig::default();
        let exams = ExamConfig {
            autosave_grace: secs("HUB_AUTOSAVE_GRACE_SECS", f.autosave_grace_secs, 5)?,
            sweep_interval: ms("HUB_SWEEP_INTERVAL_MS", f.sweep_interval_ms, 1000)?,
            autosave_batch_max: match env.get("HUB_AUTOSAVE_BATCH_MAX") {
                Some(v) => parse("HUB_AUTOSAVE_BATCH_MAX", v)?,
                None => f.autosave_batch_max.unwrap_or(defaults.autosave_batch_max),
            },
            autosave_batch_window: ms(
                "HUB_AUTOSAVE_BATCH_WINDOW_MS",
                f.autosave_batch_window_ms,
                2,
            )?,
            autosave_max_inflight: defaults.autosave_max_inflight,
        };
        let store_timeout = ms("HUB_STORE_TIMEOUT_MS", f.store_timeout_ms, 2000)?;

        if store_timeout.is_zero() {
            return Err(Error::Config(
                "HUB_STORE_TIMEOUT_MS must be positive".into(),
            ));
        }
        if exams.sweep_interval.is_zero() || !(1..=10_000).contains(&exams.autosave_batch_max) {
            return Err(Error::Config(
                "HUB_SWEEP_INTERVAL_MS must be positive and HUB_AUTOSAVE_BATCH_MAX 1..=10000"
                    .into(),
            ));
        }
        let retention_days = match env.get("HUB_RETENTION_DAYS") {
            Some(v) => parse("HUB_RETENTION_DAYS", v)?,
            None => f.retention_days.unwrap_or(30),
        };
        if retention_days == 0 {
            return Err(Error::Config(
                "HUB_RETENTION_DAYS must be at least 1".into(),
            ));
        }
        let retention_interval = secs(
            "HUB_RETENTION_INTERVAL_SECS",
            f.retention_interval_secs,
            24 * 3600,
        )?;
        if retention_interval.is_zero() {
            return Err(Error::Config(
                "HUB_RETENTION_INTERVAL_SECS must be at least 1".into(),
            ));
        }

        let media = match env.get("HUB_MEDIA_ADDR").or(f.media_addr) {
            Some(v) if v == "off" => None,
            v => {
                let addr: SocketAddr =
                    parse("HUB_MEDIA_ADDR", v.unwrap_or_else(|| "0.0.0.0:3480".into()))?;
                let public = match env.get("HUB_MEDIA_PUBLIC_ADDRS") {
                    Some(v) => list(&v),
                    None => f.media_public_addrs.unwrap_or_default(),
                };
                let public_addrs = public
                    .iter()
                    .map(|p| public_addr(p, addr.port()))
                    .collect::<Result<_, _>>()?;
                let socket_buffer = match env.get("HUB_MEDIA_SOCKET_BUFFER") {
                    Some(v) => parse("HUB_MEDIA_SOCKET_BUFFER", v)?,
                    None => f.media_socket_buffer.unwrap_or(4 << 20),
                };
                let tasks = match env.get("HUB_MEDIA_TASKS") {
                    Some(v) => parse("HUB_MEDIA_TASKS", v)?,
                    None => f.media_tasks.unwrap_or(1),
                };
                if !(1..=64).contains(&tasks) {
                    return Err(Error::Config("HUB_MEDIA_TASKS must be 1 to 64".into()));
                }
                Some(MediaConfig {
                    addr,
                    public_addrs,
                    socket_buffer,
                    tasks,
                })
            }
        };
        let ice = IceConfig {
            stun_urls: env
                .get("HUB_STUN_URLS")
                .map(|v| list(&v))
                .or(f.stun_urls)
                .unwrap_or_default(),
            turn_urls: env
                .get("HUB_TURN_URLS")
                .map(|v| list(&v))
                .or(f.turn_urls)
                .unwrap_or_default(),
            turn_secret: env.get("HUB_TURN_SECRET").or(f.turn_secret).map(Into::into),
            turn_ttl: secs("HUB_TURN_TTL_SECS", f.turn_ttl_secs, 3600)?,
        };

        let cluster = cluster_config(env)?;
        let recording = crate::recording::RecordingConfig {
            enabled: match env.get("HUB_RECORDING") {
                Some(v) => !matches!(v.as_str(), "off" | "false" | "0"),
                None => true,
            },
            segment: Duration::from_secs(match env.get("HUB_RECORDING_SEGMENT_SECS") {
                Some(v) => parse::<u64>("HUB_RECORDING_SEGMENT_SECS", v)?.max(2),
                None => 120,
            }),
            queue_frames: match env.get("HUB_RECORDING_QUEUE_FRAMES") {
                Some(v) => parse("HUB_RECORDING_QUEUE_FRAMES", v)?,
                None => 4096,
            },
            store_queue: match env.get("HUB_RECORDING_STORE_QUEUE") {
                Some(v) => parse("HUB_RECORDING_STORE_QUEUE", v)?,
                None => 64,
            },
        };

        let webhooks = webhook_config(env)?;
        Ok(Config {
            cluster,
            recording,
            webhooks,
            events,
            retention_days,
            retention_interval,
            media,
            ice,
            database_url: env
                .get("DATABASE_URL")
                .or(f.database_url)
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/proctor_hub".into()),
            redis_url: env
                .get("REDIS_URL")
                .or(f.redis_url)
                .unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            mongodb_url: env.get("MONGODB_URL").or(f.mongodb_url),
            http_addr,
            redis_prefix: env
                .get("HUB_REDIS_PREFIX")
                .or(f.redis_prefix)
                .unwrap_or_else(|| "hub:".into()),
            allowed_origins,
            public_url: public_url.trim_end_matches('/').to_string(),
            jwt: JwtConfig {
                secret: secret.into(),
                previous_secrets: previous_secrets.into_iter().map(Into::into).collect(),
                issuer: env
                    .get("HUB_JWT_ISSUER")
                    .or(f.jwt_issuer)
                    .unwrap_or_else(|| "proctor-hub".into()),
                audience: env
                    .get("HUB_JWT_AUDIENCE")
                    .or(f.jwt_audience)
                    .unwrap_or_else(|| "proctor-hub".into()),
                access_ttl,
                refresh_ttl: secs("HUB_REFRESH_TTL_SECS", f.refresh_ttl_secs, 12 * 3600)?,
                refresh_family_ttl,
                refresh_grace: secs("HUB_REFRESH_GRACE_SECS", f.refresh_grace_secs, 10)?,
                generated,
            },
            auth: AuthConfig {
                hash_concurrency: match env.get("HUB_HASH_CONCURRENCY") {
                    Some(v) => parse("HUB_HASH_CONCURRENCY", v)?,
                    None => f.hash_concurrency.unwrap_or_else(default_hash_concurrency),
                },
                hash_queue_timeout: Duration::from_secs(2),
                login_max_failures_per_account_ip: match env
                    .get("HUB_LOGIN_MAX_FAILURES_ACCOUNT_IP")
                {
                    Some(v) => parse("HUB_LOGIN_MAX_FAILURES_ACCOUNT_IP", v)?,
                    None => f.login_max_failures_per_account_ip.unwrap_or(10),
                },
                login_max_failures_per_ip: match env.get("HUB_LOGIN_MAX_FAILURES_IP") {
                    Some(v) => parse("HUB_LOGIN_MAX_FAILURES_IP", v)?,
                    None => f.login_max_failures_per_ip.unwrap_or(50),
                },
                login_window: secs("HUB_LOGIN_WINDOW_SECS", f.login_window_secs, 900)?,
            },
            shutdown_grace: secs("HUB_SHUTDOWN_GRACE_SECS", f.shutdown_grace_secs, 10)?,
            pairing_ttl: secs("HUB_PAIRING_TTL_SECS", f.pairing_ttl_secs, 120)?,
            ws_auth_timeout: auth_timeout,
            heartbeat_interval,
            ws,
            trust_forwarded_for: match env.get("HUB_TRUST_FORWARDED_FOR") {
                Some(v) => parse("HUB_TRUST_FORWARDED_FOR", v)?,
                None => f.trust_forwarded_for.unwrap_or(false),
            },
            store_timeout,
            exams,
        })
    }
}

fn ws_config(
    f: &FileConfig,
    env: &dyn Env,
    auth_timeout: Duration,
    heartbeat_interval: Duration,
) -> Result<WsConfig, Error> {
    fn num<T: std::str::FromStr + PartialOrd + From<u8>>(
        env: &dyn Env,
        key: &str,
        file: Option<T>,
        default: T,
    ) -> Result<T, Error>
    where
        T::Err: std::fmt::Display,
    {
        let v = match env.get(key) {
            Some(v) => parse(key, v)?,
            None => file.unwrap_or(default),
        };
        if v < T::from(1) {
            return Err(Error::Config(format!("{key} must be at least 1")));
        }
        Ok(v)
    }
    let d = signaling::Limits::default();
    let device = signaling::Limits {
        max_message_bytes: num(
            env,
            "HUB_WS_MAX_MESSAGE_BYTES",
            f.ws_max_message_bytes,
            d.max_message_bytes,
        )?,
        auth_timeout,
        ping_interval: Duration::from_secs(num(
            env,
            "HUB_WS_PING_INTERVAL_SECS",
            f.ws_ping_interval_secs,
            20u64,
        )?),
        pong_timeout: Duration::from_secs(num(
            env,
            "HUB_WS_PONG_TIMEOUT_SECS",
            f.ws_pong_timeout_secs,
            10u64,
        )?),
        outbound_queue_messages: num(
            env,
            "HUB_WS_OUTBOUND_QUEUE_MESSAGES",
            f.ws_outbound_queue_messages,
            d.outbound_queue_messages,
        )?,
        outbound_queue_bytes: num(
            env,
            "HUB_WS_OUTBOUND_QUEUE_BYTES",
            f.ws_outbound_queue_bytes,
            d.outbound_queue_bytes,
        )?,
        inbound_per_second: num(
            env,
            "HUB_WS_INBOUND_PER_SECOND",
            f.ws_inbound_per_second,
            d.inbound_per_second,
        )?,
        inbound_burst: num(
            env,
            "HUB_WS_INBOUND_BURST",
            f.ws_inbound_burst,
            d.inbound_burst,
        )?,
        rate_limit_strikes: num(
            env,
            "HUB_WS_RATE_LIMIT_STRIKES",
            f.ws_rate_limit_strikes,
            d.rate_limit_strikes,
        )?,
        heartbeat_interval,
    };
    let staff = signaling::Limits {
        inbound_per_second: num(
            env,
            "HUB_WS_STAFF_INBOUND_PER_SECOND",
            f.ws_staff_inbound_per_second,
            200,
        )?,
        inbound_burst: num(
            env,
            "HUB_WS_STAFF_INBOUND_BURST",
            f.ws_staff_inbound_burst,
            1000,
        )?,
        outbound_queue_messages: num(
            env,
            "HUB_WS_STAFF_OUTBOUND_QUEUE_MESSAGES",
            f.ws_staff_outbound_queue_messages,
            4096,
        )?,
        outbound_queue_bytes: num(
            env,
            "HUB_WS_STAFF_OUTBOUND_QUEUE_BYTES",
            f.ws_staff_outbound_queue_bytes,
            8 << 20,
        )?,
        ..device.clone()
    };
    let resume_window = Duration::from_secs(match env.get("HUB_WS_RESUME_WINDOW_SECS") {
        Some(v) => parse("HUB_WS_RESUME_WINDOW_SECS", v)?,
        None => f.ws_resume_window_secs.unwrap_or(30),
    });
    Ok(WsConfig {
        device,
        staff,
        resume_window,
    })
}

fn events_config(f: &FileConfig, env: &dyn Env, demo: bool) -> Result<EventsConfig, Error> {
    let num = |key: &str, file: Option<usize>, default: usize| -> Result<usize, Error> {
        let v = match env.get(key) {
            Some(v) => parse(key, v)?,
            None => file.unwrap_or(default),
        };
        if v == 0 {
            return Err(Error::Config(format!("{key} must be at least 1")));
        }
        Ok(v)
    };
    let millis = |key: &str, file: Option<u64>, default: u64| -> Result<Duration, Error> {
        Ok(Duration::from_millis(match env.get(key) {
            Some(v) => parse(key, v)?,
            None => file.unwrap_or(default),
        }))
    };
    let (artifact_master_key, artifact_key_generated) = match env
        .get("HUB_ARTIFACT_MASTER_KEY")
        .or(f.artifact_master_key.clone())
    {
        Some(text) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| Error::Config("HUB_ARTIFACT_MASTER_KEY must be base64".into()))?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| {
                Error::Config("HUB_ARTIFACT_MASTER_KEY must be 32 bytes (base64)".into())
            })?;
            (MasterKey(key), false)
        }
        None if demo => (MasterKey::random(), true),
        None => {
            return Err(Error::Config(
                "HUB_ARTIFACT_MASTER_KEY (32 bytes, base64) is required outside demo mode".into(),
            ))
        }
    };
    let artifact_storage = match env
        .get("HUB_ARTIFACT_S3_BUCKET")
        .or(f.artifact_s3_bucket.clone())
    {
        Some(bucket) => ArtifactStorage::S3(S3Config {
            bucket,
            region: env
                .get("HUB_ARTIFACT_S3_REGION")
                .or(f.artifact_s3_region.clone())
                .unwrap_or_else(|| "us-east-1".into()),
            endpoint: env
                .get("HUB_ARTIFACT_S3_ENDPOINT")
                .or(f.artifact_s3_endpoint.clone()),
            access_key_id: env
                .get("HUB_ARTIFACT_S3_ACCESS_KEY_ID")
                .or(f.artifact_s3_access_key_id.clone()),
            secret_access_key: env
                .get("HUB_ARTIFACT_S3_SECRET_ACCESS_KEY")
                .or(f.artifact_s3_secret_access_key.clone())
                .map(Into::into),
            allow_http: match env.get("HUB_ARTIFACT_S3_ALLOW_HTTP") {
                Some(v) => parse("HUB_ARTIFACT_S3_ALLOW_HTTP", v)?,
                None => f.artifact_s3_allow_http.unwrap_or(false),
            },
        }),
        None => ArtifactStorage::Local(
            env.get("HUB_ARTIFACT_DIR")
                .map(PathBuf::from)
                .or(f.artifact_dir.clone())
                .unwrap_or_else(|| PathBuf::from("./data/artifacts")),
        ),
    };
    Ok(EventsConfig {
        buffer: num("HUB_EVENT_BUFFER", f.event_buffer, 100_000)?,
        batch_max: num("HUB_EVENT_BATCH_MAX", f.event_batch_max, 2_000)?,
        linger: millis("HUB_EVENT_LINGER_MS", f.event_linger_ms, 2)?,
        writers: num("HUB_EVENT_WRITERS", f.event_writers, 3)?,
        ack_timeout: millis("HUB_EVENT_ACK_TIMEOUT_MS", f.event_ack_timeout_ms, 10_000)?,
        per_request: num("HUB_EVENTS_PER_REQUEST", f.events_per_request, 500)?,
        artifact_master_key,
        artifact_key_generated,
        artifact_storage,
        artifact_max_bytes: num(
            "HUB_ARTIFACT_MAX_BYTES",
            f.artifact_max_bytes,
            5 * 1024 * 1024,
        )?,
    })
}

fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_secret_is_required_outside_demo() {
        let env: [(&str, &str); 0] = [];
        assert!(matches!(
            Config::load(None, &env, false),
            Err(Error::Config(_))
        ));
        let demo = Config::load(None, &env, true).expect("demo config");
        assert!(demo.jwt.generated);
        assert_eq!(demo.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(demo.redis_prefix, "hub:");
        assert_eq!(
            demo.database_url,
            "postgres://postgres@127.0.0.1:5432/proctor_hub"
        );
        assert!(demo.mongodb_url.is_none());
        assert!(demo.events.artifact_key_generated);
        assert_eq!(demo.events.buffer, 100_000);
        assert_eq!(demo.events.artifact_max_bytes, 5 * 1024 * 1024);
        assert_eq!(demo.retention_days, 30);
        assert!(matches!(
            demo.events.artifact_storage,
            ArtifactStorage::Local(_)
        ));
    }

    #[test]
    fn artifact_master_key_is_32_bytes_of_base64_and_required_outside_demo() {
        let secret = ("HUB_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        // 32 zero bytes.
        let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let c = Config::load(None, &[secret, ("HUB_ARTIFACT_MASTER_KEY", key)], false).unwrap();
        assert_eq!(c.events.artifact_master_key, MasterKey([0; 32]));
        assert!(!c.events.artifact_key_generated);
        assert!(Config::load(None, &[secret], false).is_err());
        assert!(Config::load(None, &[secret, ("HUB_ARTIFACT_MASTER_KEY", "AAAA")], false).is_err());
        let c = Config::load(
            None,
            &[
                secret,
                ("HUB_ARTIFACT_MASTER_KEY", key),
                ("HUB_EVENT_BUFFER", "7"),
                ("HUB_RETENTION_DAYS", "3"),
                ("HUB_ARTIFACT_S3_BUCKET", "frames"),
            ],
            false,
        )
        .unwrap();
        assert_eq!((c.events.buffer, c.retention_days), (7, 3));
        assert!(
            matches!(c.events.artifact_storage, ArtifactStorage::S3(ref s) if s.bucket == "frames")
        );
    }

    #[test]
    fn environment_overrides_and_validates() {
        let env = [
            ("HUB_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("HUB_HTTP_ADDR", "0.0.0.0:9000"),
            (
                "HUB_ALLOWED_ORIGINS",
                "https://a.example/, https://b.example",
            ),
            ("HUB_ACCESS_TTL_SECS", "60"),
            (
                "HUB_ARTIFACT_MASTER_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
        ];
        let c = Config::load(None, &env, false).expect("config");
        assert_eq!(c.http_addr.port(), 9000);
        assert_eq!(
            c.allowed_origins,
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(c.jwt.access_ttl, Duration::from_secs(60));
        assert!(!c.jwt.generated);

        let too_long = [
            ("HUB_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("HUB_ACCESS_TTL_SECS", "3600"),
        ];
        assert!(Config::load(None, &too_long, false).is_err());
        let short = [("HUB_JWT_SECRET", "short")];
        assert!(Config::load(None, &short, false).is_err());
    }
}
