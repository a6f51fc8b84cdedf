//! Building and running the hub: connect the stores, bind the listener, serve until the
//! shutdown token fires, then drain within the grace period.

use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::ListenerExt;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::Error;
use crate::state::AppState;
use crate::store;

/// A built hub, bound to its port, not yet serving.
pub struct Application {
    /// The bound listener (port 0 in tests resolves here).
    listener: TcpListener,
    /// The real-time hub actor, started by `run`.
    hub: crate::hub::Hub,
    /// The store work the hub asks for.
    hub_effects: tokio::sync::mpsc::UnboundedReceiver<crate::hub::Effect>,
    /// The media relay's tasks and where their events go, when enabled.
    media: Option<(
        Vec<crate::relay::MediaTask>,
        tokio::sync::mpsc::UnboundedSender<crate::relay::Event>,
    )>,
    /// The relay's bound UDP address.
    media_addr: Option<SocketAddr>,
    /// Shared state, exposed so tests can reach the stores.
    state: AppState,
    /// Notices for other nodes, published by the cluster task (multi-process hub only).
    notices: Option<tokio::sync::mpsc::UnboundedReceiver<crate::state::HubSignal>>,
    /// Events the ingest committed, for the live feed.
    committed: (
        tokio::sync::mpsc::Sender<Vec<crate::events::NewEvent>>,
        tokio::sync::mpsc::Receiver<Vec<crate::events::NewEvent>>,
    ),
}

impl Application {
    /// Creates the database if missing, migrates, connects Redis and binds.
    pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Self, Error> {
        store::postgres::ensure_database(&config.database_url).await?;
        let db = store::postgres::connect(&config.database_url).await?;
        store::postgres::migrate(&db).await?;
        Self::build_with_pool(config, db, shutdown).await
    }

    /// Builds on an existing, migrated pool (tests hand in a fresh database per test).
    pub async fn build_with_pool(
        config: Config,
        db: PgPool,
        shutdown: CancellationToken,
    ) -> Result<Self, Error> {
        Self::build_with_store(config, db, None, shutdown).await
    }

    /// Builds on an existing pool with an event store of the caller's (tests inject failing
    /// ones); `None` picks the configured store: MongoDB when `MONGODB_URL` is set, else
    /// Postgres.
    pub async fn build_with_store(
        config: Config,
        db: PgPool,
        event_store: Option<crate::events::SharedStore>,
        shutdown: CancellationToken,
    ) -> Result<Self, Error> {
        crate::telemetry::metrics_handle();
        let redis = store::redis::connect(&config.redis_url).await?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|e| Error::Config(format!("cannot bind {}: {e}", config.http_addr)))?;
        if config.jwt.generated {
            tracing::warn!(
                "HUB_JWT_SECRET is not set: using a random secret (demo mode). Tokens will not \
                 survive a restart and other hub processes cannot verify them."
            );
        }
        if config.events.artifact_key_generated {
            tracing::warn!(
                "HUB_ARTIFACT_MASTER_KEY is not set: using a random key (demo mode). Artifacts \
                 stored now cannot be decrypted after a restart."
            );
        }
        let event_store: crate::events::SharedStore = match (event_store, &config.mongodb_url) {
            (Some(store), _) => store,
            (None, Some(url)) => std::sync::Arc::new(
                crate::events::mongo::MongoEventStore::connect(url)
                    .await
                    .map_err(|e| Error::Config(format!("MONGODB_URL: {e}")))?,
            ),
            (None, None) => {
                std::sync::Arc::new(crate::events::postgres::PgEventStore::new(db.clone()))
            }
        };
        let (relay, media, media_addr) = match &config.media {
            Some(m) => {
                let (handle, tasks, locals) =
                    crate::relay::bind(m.addr, &m.public_addrs, m.socket_buffer, m.tasks)
                        .await
                        .map_err(|e| Error::Config(format!("cannot bind UDP {}: {e}", m.addr)))?;
                let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
                for local in &locals {
                    tracing::info!(addr = %local, "media relay bound");
                }
                (
                    Some((handle, events_rx)),
                    Some((tasks, events_tx)),
                    locals.first().copied(),
                )
            }
            None => (None, None, None),
        };
        let (hub_handle, hub, hub_effects) = crate::hub::new(
            config.heartbeat_interval,
            config.ws.resume_window,
            config.ice.clone(),
            relay,
        );
        let (cluster, notices) = match &config.cluster {
            Some(c) => {
                let bound = listener
                    .local_addr()
                    .map_err(|e| Error::Config(format!("listener address: {e}")))?;
                let ws_url = c.public_ws_url.clone().unwrap_or_else(|| {
                    let ip = if bound.ip().is_unspecified() {
                        std::net::IpAddr::from([127, 0, 0, 1])
                    } else {
                        bound.ip()
                    };
                    format!("ws://{}/ws", SocketAddr::new(ip, bound.port()))
                });
                let media = config
                    .media
                    .as_ref()
                    .and_then(|m| m.public_addrs.first().copied())
                    .or(media_addr)
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                let node = std::sync::Arc::new(crate::cluster::Cluster::new(
                    redis.clone(),
                    &config.redis_prefix,
                    c.clone(),
                    ws_url,
                    media,
                ));
                // In the registry before the first socket, so placement can choose this node.
                if let Err(e) = node.announce().await {
                    tracing::warn!(error = %e, "cannot register the node yet");
                }
                tracing::info!(node = node.node_id(), url = node.ws_url(), "cluster node");
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                (Some((node, tx)), Some(rx))
            }
            None => (None, None),
        };
        let state = AppState::new(
            config,
            db,
            redis,
            shutdown,
            hub_handle,
            event_store,
            cluster,
        )?;
        Ok(Application {
            notices,
            listener,
            hub,
            hub_effects,
            media,
            media_addr,
            state,
            committed: tokio::sync::mpsc::channel(64),
        })
    }

    /// The media relay's bound UDP address, when enabled.
    pub fn media_addr(&self) -> Option<SocketAddr> {
        self.media_addr
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until the state's shutdown token is cancelled, then waits up to the grace period
    /// for background tasks.
    pub async fn run(self) -> Result<(), Error> {
        let Application {
            listener,
            hub,
            hub_effects,
            media,
            media_addr: _,
            state,
            notices,
            committed: (committed_tx, committed_rx),
        } = self;
        let shutdown = state.shutdown.clone();
        // Events other nodes pass on to this one (the home) join the committed ones.
        let forwarded_events = state.cluster.is_some().then(|| committed_tx.clone());
        spawn_housekeeping(&state);
        let events = &state.config.events;
        state.tasks.spawn(crate::events::ingest::run(
            state.ingest.clone(),
            state.event_store.clone(),
            crate::events::ingest::IngestOptions {
                capacity: events.buffer,
                max_batch: events.batch_max,
                linger: events.linger,
                ..Default::default()
            },
            committed_tx,
            shutdown.clone(),
        ));
        state.tasks.spawn(crate::events::feed::run(
            state.clone(),
            state.event_store.clone(),
            committed_rx,
        ));
        state
            .tasks
            .spawn(crate::events::retention::run(state.clone()));
        state
            .tasks
            .spawn(hub.run(state.signals.subscribe(), shutdown.clone()));
        state
            .tasks
            .spawn(crate::hub::effects::run(state.clone(), hub_effects));
        crate::jobs::sweeper::spawn(&state);
        state.tasks.spawn(crate::webhooks::sender::run(
            state.db.clone(),
            state.config.webhooks.clone(),
            state.node_label(),
            shutdown.clone(),
        ));
        if let (Some((cluster, _)), Some(notices), Some(forwarded_events)) =
            (state.cluster.clone(), notices, forwarded_events)
        {
            state.tasks.spawn(crate::cluster::run(
                state.clone(),
                cluster,
                notices,
                forwarded_events,
            ));
        }
        if let Some((tasks, events)) = media {
            // Recorded sessions' frames go from every media task to the one recorder.
            let recording = state.config.recording.clone();
            let sink = match (recording.enabled, state.hub.relay()) {
                (true, Some(relay)) => {
                    let (sink, captures) = crate::recording::queue(recording.queue_frames);
                    state.tasks.spawn(crate::recording::run(
                        state.clone(),
                        captures,
                        relay,
                        recording,
                    ));
                    Some(sink)
                }
                _ => None,
            };
            for task in tasks {
                state
                    .tasks
                    .spawn(task.run(events.clone(), sink.clone(), shutdown.clone()));
            }
        }
        let app =
            crate::http::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        // Small frames (acks, updates, relayed signals) go out at once: with Nagle's algorithm
        // a frame written while an earlier one is unacknowledged waits for the peer's delayed
        // ACK, up to 40 ms on Linux.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        let served =
            axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let grace = state.config.shutdown_grace;
        let result = tokio::select! {
            r = served => r.map_err(|e| Error::Internal(format!("serve: {e}"))),
            // In-flight requests get the grace period; then we stop waiting for them.
            () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("grace period over with requests still in flight");
                Ok(())
            }
        };
        // No request is left to take a save: the batcher writes what it holds and stops.
        state.served.cancel();
        state.tasks.close();
        if tokio::time::timeout(grace, state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = state.tasks.len(),
                "background tasks still running after the grace period"
            );
        }
        tracing::info!("hub stopped");
        result
    }
}

fn spawn_housekeeping(state: &AppState) {
    let s = state.clone();
    state.tasks.spawn(async move {
        let mut prune = tokio::time::interval(Duration::from_secs(30));
        // The Prometheus recorder keeps every histogram sample until it is drained; a scrape
        // drains it, but a hub nobody scrapes would grow by every request it served.
        let mut upkeep = tokio::time::interval(Duration::from_secs(5));
        let metrics = crate::telemetry::metrics_handle();
        loop {
            tokio::select! {
                () = s.shutdown.cancelled() => break,
                _ = prune.tick() => s.prune_caches(),
                _ = upkeep.tick() => metrics.run_upkeep(),
            }
        }
    });
}

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT: shutting down"),
            () = term => tracing::info!("SIGTERM: shutting down"),
        }
        token.cancel();
    });
}
