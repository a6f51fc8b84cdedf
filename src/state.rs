//! The state every handler and job shares: stores, keys, configuration and the signals that
//! tell the real-time side about changes made through HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::auth::jwt::JwtKeys;
use crate::auth::limiter::LoginThrottle;
use crate::auth::password::PasswordHasher;
use crate::config::Config;
use crate::error::Error;
use crate::events::artifacts::Artifacts;
use crate::events::ingest::Ingest;
use crate::events::SharedStore;
use crate::hub::HubHandle;
use crate::model::{Role, SessionStatus, UserRole};
use crate::store::redis::Keys;

/// Something that happened through the API and that connected devices must learn about;
/// also the cross-node notice (`cluster::notices`), hence serialisable.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum HubSignal {
    /// The user was deactivated or their token family revoked: close their sockets.
    UserRevoked {
        /// Whose sockets to close.
        user_id: Uuid,
    },
    /// A session ended (submitted, auto-submitted, terminated): its devices get
    /// `session-ended` and close 4503; watching proctors get a `session-update`.
    SessionEnded {
        /// The session.
        session_id: Uuid,
        /// Its exam (watchers subscribe per exam).
        exam_id: Uuid,
        /// `SUBMITTED`, `AUTO_SUBMITTED` or `TERMINATED`.
        status: SessionStatus,
        /// Why, for the devices (e.g. "submitted", "time is up", the proctor's reason).
        reason: String,
    },
    /// A session started: the exam's watchers get a `session-update` at once (with the
    /// candidate), so a new tile appears before the laptop's first heartbeat.
    SessionStarted {
        /// The session.
        session_id: Uuid,
        /// Its exam.
        exam_id: Uuid,
        /// Who sits it.
        candidate_id: Uuid,
    },
    /// A session changed in a way watchers should see (time extended, review decided, score).
    SessionChanged {
        /// The session.
        session_id: Uuid,
        /// Its exam.
        exam_id: Uuid,
    },
    /// A session's time ran out (its autosave grace runs on): its devices get `time-up`.
    TimeUp {
        /// The session.
        session_id: Uuid,
        /// Its exam.
        exam_id: Uuid,
        /// When its time ran out.
        expires_at: chrono::DateTime<chrono::Utc>,
        /// Until when saves are still accepted.
        grace_ends_at: chrono::DateTime<chrono::Utc>,
    },
    /// Staff extended a session's time: its devices and the exam's watchers get
    /// `time-extended`.
    TimeExtended {
        /// The session.
        session_id: Uuid,
        /// Its exam.
        exam_id: Uuid,
        /// The new expiry.
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    /// Staff warned a candidate: the laptop gets `warning`.
    Warn {
        /// The session whose laptop is warned.
        session_id: Uuid,
        /// The text shown to the candidate.
        message: String,
    },
    /// A phone claimed the session's pairing token: the laptop gets `pairing-claimed`; when it
    /// replaced a different phone, that phone is closed with 4504.
    PairingClaimed {
        /// The session.
        session_id: Uuid,
        /// Short code shown on both devices so the candidate can confirm the pairing.
        confirm_code: String,
        /// The new phone's fingerprint.
        device_fingerprint: String,
        /// True when a different phone was paired before.
        replaced: bool,
    },
    /// Staff unpaired the phone: it is closed with 4503.
    UnpairMobile {
        /// The session whose phone is unpaired.
        session_id: Uuid,
    },
}

/// Cheap to clone; everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    /// Shared parts.
    inner: Arc<Inner>,
}

/// What [`AppState`] holds.
pub struct Inner {
    /// Configuration as loaded at start-up.
    pub config: Config,
    /// Postgres: the authority.
    pub db: PgPool,
    /// Redis: what may be lost.
    pub redis: ConnectionManager,
    /// Redis key layout (with this hub's prefix).
    pub keys: Keys,
    /// Access-token signing and verification.
    pub jwt: JwtKeys,
    /// Bounded password hashing.
    pub hasher: PasswordHasher,
    /// Failed-login throttling per (account, client IP) and per client IP.
    pub login_throttle: LoginThrottle,
    /// Recently checked current role of each user (`None`: deactivated or gone), so the
    /// access tokens of a deactivated or re-roled user stop working within
    /// [`ACTIVE_CACHE_TTL`] without a query per request.
    pub active_users: DashMap<Uuid, (Option<UserRole>, Instant)>,
    /// Short-lived cache of a device's open session, `(user, phone's session)` → `(session,
    /// exam)`, so WebSocket events need no query each; an ending removes its entries.
    pub device_sessions: DashMap<DeviceKey, (SessionOfDevice, Instant)>,
    /// Fan-out of [`HubSignal`]s to the real-time side.
    pub signals: broadcast::Sender<HubSignal>,
    /// This node of a multi-process hub, and where its notices for other nodes go; `None`
    /// for a single hub.
    pub cluster: Option<(
        Arc<crate::cluster::Cluster>,
        mpsc::UnboundedSender<HubSignal>,
    )>,
    /// Cancelled when the process shuts down.
    pub shutdown: CancellationToken,
    /// Cancelled after `shutdown`, once the HTTP server has answered its last in-flight
    /// request (or the grace ran out): the autosave batcher takes saves until then, so a save
    /// already received when SIGTERM came gets its normal answer.
    pub served: CancellationToken,
    /// Every background task, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// The real-time hub's mailbox.
    pub hub: HubHandle,
    /// The autosave group commit and its caches.
    pub autosave: crate::jobs::autosave::Autosaver,
    /// The proctoring-event store (Postgres, or MongoDB when configured). Writes go through
    /// [`Inner::ingest`]; reads (queries, counts, retention) come here directly.
    pub event_store: SharedStore,
    /// The bounded, batched way into the event store; acknowledges after commit.
    pub ingest: Ingest,
    /// Encrypted frame artifacts.
    pub artifacts: Artifacts,
}

/// How stale an "active" answer may be.
pub const ACTIVE_CACHE_TTL: Duration = Duration::from_secs(2);

/// A device: its user, and the session a phone's token is bound to (`None` for a laptop).
pub type DeviceKey = (Uuid, Option<Uuid>);

/// The open session a device reports for: `(session, exam)`.
pub type SessionOfDevice = (Uuid, Uuid);

/// How long a device's open session is remembered. A session ended by another hub process
/// (this one forgets its own endings at once) may still take a device's events this long:
/// they are stored against it, as events sent just before its end would be.
pub const DEVICE_SESSION_TTL: Duration = Duration::from_secs(2);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl AppState {
    /// Assembles the state from connected stores and starts the autosave batcher (so it must
    /// be called inside the Tokio runtime).
    pub fn new(
        config: Config,
        db: PgPool,
        redis: ConnectionManager,
        shutdown: CancellationToken,
        hub: HubHandle,
        event_store: SharedStore,
        cluster: Option<(
            Arc<crate::cluster::Cluster>,
            mpsc::UnboundedSender<HubSignal>,
        )>,
    ) -> Result<Self, Error> {
        let (signals, _) = broadcast::channel(1024);
        let tasks = TaskTracker::new();
        let served = CancellationToken::new();
        let autosave = crate::jobs::autosave::Autosaver::spawn(
            db.clone(),
            &config.exams,
            config.store_timeout,
            &tasks,
            served.clone(),
        );
        let ingest = Ingest::new(config.events.buffer, config.events.writers);
        let artifacts = Artifacts::open(
            &config.events.artifact_storage,
            config.events.artifact_master_key.clone(),
        )?;
        Ok(AppState {
            inner: Arc::new(Inner {
                keys: Keys::new(config.redis_prefix.clone()),
                jwt: JwtKeys::new(&config.jwt),
                hasher: PasswordHasher::new(
                    config.auth.hash_concurrency,
                    config.auth.hash_queue_timeout,
                )?,
                login_throttle: LoginThrottle::new(&config.auth),
                config,
                db,
                redis,
                active_users: DashMap::new(),
                device_sessions: DashMap::new(),
                signals,
                shutdown,
                served,
                tasks,
                cluster,
                autosave,
                hub,
                ingest,
                event_store,
                artifacts,
            }),
        })
    }

    /// The current role of an active user (`None` when deactivated or unknown), from the
    /// short-lived cache or Postgres.
    pub async fn active_role(&self, user_id: Uuid) -> Result<Option<UserRole>, Error> {
        if let Some(entry) = self.active_users.get(&user_id) {
            let (role, at) = *entry;
            if at.elapsed() < ACTIVE_CACHE_TTL {
                return Ok(role);
            }
        }
        let role: Option<UserRole> =
            crate::store::postgres::bounded(self.config.store_timeout, async {
                Ok(
                    sqlx::query_scalar("SELECT role FROM users WHERE id = $1 AND is_active")
                        .bind(user_id)
                        .fetch_optional(&self.db)
                        .await?,
                )
            })
            .await?;
        self.active_users.insert(user_id, (role, Instant::now()));
        Ok(role)
    }

    /// The open session a device reports events for, as `(session, exam)`: a phone's is the
    /// one in its token (`session`), a laptop's its user's newest STARTED one. Cached for
    /// [`DEVICE_SESSION_TTL`]; only found sessions are cached, and an ending forgets them.
    pub async fn device_session(
        &self,
        user_id: Uuid,
        session: Option<Uuid>,
    ) -> Result<Option<(Uuid, Uuid)>, Error> {
        let key = (user_id, session);
        if let Some(entry) = self.device_sessions.get(&key) {
            let (found, at) = *entry;
            if at.elapsed() < DEVICE_SESSION_TTL {
                return Ok(Some(found));
            }
        }
        let row: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT id, exam_id FROM sessions
              WHERE status = 'STARTED'
                AND (($1::uuid IS NOT NULL AND id = $1) OR ($1::uuid IS NULL AND candidate_id = $2))
              ORDER BY started_at DESC LIMIT 1",
        )
        .bind(session)
        .bind(user_id)
        .fetch_optional(&self.db)
        .await?;
        if let Some(found) = row {
            self.device_sessions.insert(key, (found, Instant::now()));
        }
        Ok(row)
    }

    /// Forgets the cached device sessions of an ended session.
    pub fn forget_device_session(&self, candidate: Uuid, session: Uuid) {
        self.device_sessions.remove(&(candidate, Some(session)));
        self.device_sessions
            .remove_if(&(candidate, None), |_, ((s, _), _)| *s == session);
    }

    /// Ends a STARTED session ([`crate::store::sessions::end_session`]: the guarded
    /// transition, MCQ scoring, COMMIT), then forgets it in the device cache and tells its
    /// devices and watchers ([`HubSignal::SessionEnded`]). `None` when it was not STARTED.
    pub async fn end_session(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Postgres>,
        id: Uuid,
        status: SessionStatus,
        reason: &str,
    ) -> Result<Option<crate::store::sessions::Ending>, crate::error::Error> {
        let Some(ending) = crate::store::sessions::end_session(tx, id, status, reason).await?
        else {
            return Ok(None);
        };
        self.forget_device_session(ending.candidate_id, id);
        self.signal(HubSignal::SessionEnded {
            session_id: id,
            exam_id: ending.exam_id,
            status,
            reason: reason.to_string(),
        });
        Ok(Some(ending))
    }

    /// This process's name in logs and records: the cluster node id, or `single`.
    pub fn node_label(&self) -> String {
        match &self.cluster {
            Some((cluster, _)) => cluster.node_id().to_string(),
            None => "single".into(),
        }
    }

    /// Tells the real-time side (and, on a multi-process hub, the node that is the exam's
    /// home); nobody listening is fine.
    pub fn signal(&self, signal: HubSignal) {
        if let Some((_, notices)) = &self.cluster {
            let _ = notices.send(signal.clone());
        }
        let _ = self.signals.send(signal);
    }

    /// The WebSocket limits in force.
    /// (Before `auth` every socket has the device limits.)
    pub fn ws_limits(&self) -> signaling::Limits {
        self.ws_limits_for(Role::Candidate)
    }

    /// The WebSocket limits of an authenticated role: staff pages (a proctor's grid) send and
    /// receive far more than a candidate's devices. The auth timeout and the heartbeat
    /// interval are the hub-wide settings.
    pub fn ws_limits_for(&self, role: Role) -> signaling::Limits {
        let of_role = match role {
            Role::Proctor | Role::Admin => &self.config.ws.staff,
            Role::Candidate | Role::Mobile => &self.config.ws.device,
        };
        signaling::Limits {
            heartbeat_interval: self.config.heartbeat_interval,
            auth_timeout: self.config.ws_auth_timeout,
            ..of_role.clone()
        }
    }

    /// Drops stale entries of the active-user cache (run periodically).
    pub fn prune_caches(&self) {
        self.active_users
            .retain(|_, (_, at)| at.elapsed() < ACTIVE_CACHE_TTL * 30);
        self.device_sessions
            .retain(|_, (_, at)| at.elapsed() < DEVICE_SESSION_TTL);
        self.autosave.prune();
    }
}
