//! The sender: on every hub process, claims due deliveries from the outbox, signs them
//! (Standard Webhooks, with the `standardwebhooks` crate), posts them with a bounded number in
//! flight, and records each attempt. A failing or slow endpoint costs at most its own
//! per-endpoint share of requests, each bounded by the timeout; the hub's other work never
//! waits on a webhook.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::backoff::{self, Next};
use super::guard::{self, Policy};
use super::outbox::{self, Attempt, Claimed};
use super::WebhookConfig;

/// Runs until `shutdown`: claims what is due every `poll` (and again at once while there is
/// more), sends it, records the outcome.
pub async fn run(db: PgPool, cfg: WebhookConfig, node: String, shutdown: CancellationToken) {
    let policy = Policy {
        allow_loopback: cfg.allow_loopback,
        allow_private: cfg.allow_private,
    };
    let client = guard::client(policy, cfg.timeout);
    let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let lease_ms = (cfg.timeout + Duration::from_secs(30)).as_millis() as i64;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let free = permits.available_permits();
        let mut claimed = 0;
        if free > 0 {
            match outbox::claim(&db, free as i64, cfg.per_endpoint, lease_ms).await {
                Ok(batch) => {
                    claimed = batch.len();
                    for delivery in batch {
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            break;
                        };
                        let (db, client, cfg, node) =
                            (db.clone(), client.clone(), cfg.clone(), node.clone());
                        tasks.spawn(async move {
                            let _permit = permit;
                            attempt(&db, &client, &cfg, &node, delivery).await;
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot claim webhook deliveries"),
            }
        }
        metrics::gauge!("hub_webhook_in_flight")
            .set((cfg.concurrency.max(1) - permits.available_permits()) as f64);
        // More may be due at once when this round was full; otherwise wait for the next poll,
        // or for a request to finish (its endpoint and permit are free again, and the next
        // delivery of its session may be due).
        let pause = if claimed > 0 && claimed == free {
            Duration::from_millis(10)
        } else {
            cfg.poll
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // In-flight requests get their timeout to finish; an unfinished one keeps its lease and is
    // sent again by whichever process claims it after the lease (at least once).
    let drain = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(cfg.timeout, drain).await;
}

/// One attempt of one delivery.
async fn attempt(
    db: &PgPool,
    client: &reqwest::Client,
    cfg: &WebhookConfig,
    node: &str,
    c: Claimed,
) {
    let started = Instant::now();
    let result = send(client, &c).await;
    let duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    let outcome = match result {
        Ok(status) if (200..300).contains(&status) => {
            metrics::counter!("hub_webhook_attempts_total", "outcome" => "delivered").increment(1);
            let a = Attempt {
                status: Some(status),
                error: None,
                duration_ms,
                node: node.to_string(),
            };
            outbox::delivered(db, &c, &a).await.map(|()| false)
        }
        other => {
            let (status, error) = match other {
                Ok(status) => (Some(status), format!("HTTP {status}")),
                Err(e) => (None, e),
            };
            metrics::counter!("hub_webhook_attempts_total", "outcome" => "failed").increment(1);
            let age = (Utc::now() - c.created_at).to_std().unwrap_or_default();
            let next = backoff::after_failure(cfg, c.attempts.max(1) as u32, age, rand::random());
            let retry_in = match next {
                Next::Retry(d) => Some(d),
                Next::GiveUp => None,
            };
            let a = Attempt {
                status,
                error: Some(error),
                duration_ms,
                node: node.to_string(),
            };
            outbox::failed(db, &c, &a, retry_in, cfg.disable_after.as_secs_f64()).await
        }
    };
    match outcome {
        Ok(true) => tracing::warn!(endpoint = %c.endpoint_id, "webhook endpoint disabled"),
        Ok(false) => {}
        // The lease runs out and another attempt follows: at least once.
        Err(e) => tracing::warn!(delivery = %c.id, error = %e, "cannot record a webhook attempt"),
    }
}

/// Signs and posts `c`; the response status, or why there was none.
async fn send(client: &reqwest::Client, c: &Claimed) -> Result<u16, String> {
    let body = serde_json::to_vec(&c.body).map_err(|e| e.to_string())?;
    let signer = standardwebhooks::Webhook::new(&c.secret).map_err(|e| format!("secret: {e}"))?;
    let msg_id = format!("msg_{}", c.message_id.simple());
    let now = Utc::now();
    let signature = signer
        .sign(&msg_id, now.timestamp(), &body)
        .map_err(|e| format!("signing: {e}"))?;
    let response = client
        .post(&c.url)
        .header("content-type", "application/json")
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", now.timestamp().to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    Ok(response.status().as_u16())
}

/// A short, stable description of a transport failure.
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        let mut text = String::from("cannot connect");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text = format!("cannot connect: {s}");
            source = s.source();
        }
        text
    } else {
        e.without_url().to_string()
    }
}
