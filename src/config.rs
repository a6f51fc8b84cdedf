//! Typed configuration, loaded once at start-up from an optional TOML file and then from
//! environment variables (the environment wins). Every option is documented in the README.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
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
    /// Whether to read the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// The media relay (SFU); `None` when `HUB_MEDIA_ADDR=off`.
    pub media: Option<MediaConfig>,
    /// STUN/TURN servers handed to clients in `joined`.
    pub ice: IceConfig,
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
    /// Failed logins per account within `login_window` before 429.
    pub login_max_failures_per_account: u32,
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
    login_max_failures_per_account: Option<u32>,
    login_max_failures_per_ip: Option<u32>,
    login_window_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    pairing_ttl_secs: Option<u64>,
    ws_auth_timeout_secs: Option<u64>,
    heartbeat_interval_ms: Option<u64>,
    trust_forwarded_for: Option<bool>,
    media_addr: Option<String>,
    media_public_addrs: Option<Vec<String>>,
    stun_urls: Option<Vec<String>>,
    turn_urls: Option<Vec<String>>,
    turn_secret: Option<String>,
    turn_ttl_secs: Option<u64>,
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
        let secs = |key: &str, file: Option<u64>, default: u64| -> Result<Duration, Error> {
            Ok(Duration::from_secs(match env.get(key) {
                Some(v) => parse(key, v)?,
                None => file.unwrap_or(default),
            }))
        };

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
                Some(MediaConfig { addr, public_addrs })
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

        Ok(Config {
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
                login_max_failures_per_account: match env.get("HUB_LOGIN_MAX_FAILURES_ACCOUNT") {
                    Some(v) => parse("HUB_LOGIN_MAX_FAILURES_ACCOUNT", v)?,
                    None => f.login_max_failures_per_account.unwrap_or(10),
                },
                login_max_failures_per_ip: match env.get("HUB_LOGIN_MAX_FAILURES_IP") {
                    Some(v) => parse("HUB_LOGIN_MAX_FAILURES_IP", v)?,
                    None => f.login_max_failures_per_ip.unwrap_or(50),
                },
                login_window: secs("HUB_LOGIN_WINDOW_SECS", f.login_window_secs, 900)?,
            },
            shutdown_grace: secs("HUB_SHUTDOWN_GRACE_SECS", f.shutdown_grace_secs, 10)?,
            pairing_ttl: secs("HUB_PAIRING_TTL_SECS", f.pairing_ttl_secs, 120)?,
            ws_auth_timeout: secs("HUB_WS_AUTH_TIMEOUT_SECS", f.ws_auth_timeout_secs, 10)?,
            heartbeat_interval: Duration::from_millis(match env.get("HUB_HEARTBEAT_INTERVAL_MS") {
                Some(v) => parse("HUB_HEARTBEAT_INTERVAL_MS", v)?,
                None => f.heartbeat_interval_ms.unwrap_or(5000),
            }),
            trust_forwarded_for: match env.get("HUB_TRUST_FORWARDED_FOR") {
                Some(v) => parse("HUB_TRUST_FORWARDED_FOR", v)?,
                None => f.trust_forwarded_for.unwrap_or(false),
            },
        })
    }
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
