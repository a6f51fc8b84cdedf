//! Postgres: connecting with bounded waits, creating the database when missing, migrating.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::error::Error;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a request waits for a pooled connection before 503 `STORE_UNAVAILABLE`.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(2500);

/// Pool options used by the hub: bounded acquire wait and a statement timeout so a stuck
/// store fails requests within seconds instead of hanging them.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(32)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query("SET statement_timeout = '10s'")
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
}

/// Waits at most `deadline` for `work` on Postgres, then gives up with 503
/// `STORE_UNAVAILABLE`. A partitioned or black-holed store leaves a query hanging with no
/// error (the server-side `statement_timeout` never starts, since the server never sees the
/// query), so a caller that must answer promptly bounds its own wait. Giving up drops `work`:
/// a write it carried may still commit later, which is why only idempotent work (versioned
/// autosaves, reads) is bounded this way, and why the answer is "not confirmed", never "not
/// done".
pub async fn bounded<T>(
    deadline: Duration,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(deadline, work).await {
        Ok(result) => result,
        Err(_) => {
            metrics::counter!("hub_store_timeouts_total").increment(1);
            Err(Error::store_unavailable())
        }
    }
}

/// Connects a pool to `url` (the database must exist).
pub async fn connect(url: &str) -> Result<PgPool, Error> {
    let opts = PgConnectOptions::from_str(url)?.application_name("proctor-hub");
    Ok(pool_options().connect_with(opts).await?)
}

/// Creates the database named in `url` if it does not exist, connecting to the server's
/// `postgres` database to do so.
pub async fn ensure_database(url: &str) -> Result<(), Error> {
    let opts = PgConnectOptions::from_str(url)?;
    let name = opts
        .get_database()
        .ok_or_else(|| Error::Config(format!("DATABASE_URL names no database: {url}")))?
        .to_string();
    let mut admin = opts.clone().database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        tracing::info!(database = %name, "creating database");
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut admin)
            .await
        {
            Ok(_) => {}
            // Another process created it between our check and our CREATE.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    admin.close().await?;
    Ok(())
}

/// Applies pending migrations, logging each one as it goes.
pub async fn migrate(pool: &PgPool) -> Result<(), Error> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    let pending: Vec<_> = MIGRATOR
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .collect();
    let total = pending.len();
    for (i, m) in pending.iter().enumerate() {
        tracing::info!(version = m.version, description = %m.description, "migration {}/{}", i + 1, total);
    }
    MIGRATOR.run(pool).await?;
    if total == 0 {
        tracing::info!("database schema is up to date");
    } else {
        tracing::info!(applied = total, "migrations applied");
    }
    Ok(())
}
