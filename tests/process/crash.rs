//! kill -9 in the middle of a stream of autosaves: nothing that got a 2xx may be missing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::harness::{candidate_token, exam_with_sessions, tokens, HubSpec};

/// Kill rounds, candidates saving at once, questions each.
const ROUNDS: i64 = 6;
const CLIENTS: usize = 24;
const QUESTIONS: usize = 4;

/// What one client was told: (session, question) → the highest acknowledged version.
type Acked = Arc<Mutex<HashMap<(Uuid, Uuid), i64>>>;

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn kill_9_mid_autosave_loses_nothing_acknowledged(pool: PgPool) {
    let (_, questions, sessions) = exam_with_sessions(&pool, QUESTIONS, CLIENTS, 3600.0).await;
    let spec = HubSpec::on(&pool);
    let keys = tokens();
    let acked: Acked = Arc::default();
    let mut acks_total = 0usize;
    for round in 0..ROUNDS {
        let hub = spec.start().await;
        let base = format!("http://{}", hub.addr);
        let counted = Arc::new(Mutex::new(0usize));
        let clients: Vec<_> = sessions
            .iter()
            .map(|&(candidate, session)| {
                let (token, base) = (candidate_token(&keys, candidate), base.clone());
                let (questions, acked, counted) = (questions.clone(), acked.clone(), counted.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    // Versions keep rising across rounds, as a page's do across restarts.
                    for i in 0.. {
                        let question = questions[i as usize % questions.len()];
                        let version = round * 1_000_000 + i;
                        let sent = client
                            .put(format!("{base}/api/v1/sessions/{session}/answers/{question}"))
                            .bearer_auth(&token)
                            .json(&json!({"response": {"text": format!("r{round} v{version}")}, "version": version}))
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await;
                        let Ok(r) = sent else { return }; // the hub is gone
                        match r.status() {
                            StatusCode::OK => {
                                let Ok(body) = r.json::<Value>().await else { return };
                                let stored = body["version"].as_i64().expect("a version");
                                assert!(stored >= version, "an ack below the version sent");
                                let mut a = acked.lock().unwrap();
                                let e = a.entry((session, question)).or_insert(0);
                                *e = (*e).max(stored);
                                *counted.lock().unwrap() += 1;
                            }
                            // Shutting down or a store hiccup: not acknowledged, try on.
                            StatusCode::SERVICE_UNAVAILABLE => {}
                            other => panic!("unexpected answer {other}"),
                        }
                    }
                })
            })
            .collect();
        // Killed at a random moment once the saves flow.
        let flowing = Instant::now() + Duration::from_secs(10);
        while *counted.lock().unwrap() == 0 && Instant::now() < flowing {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let kill_after = Duration::from_millis(rand::thread_rng().gen_range(0..1000));
        tokio::time::sleep(kill_after).await;
        hub.kill9().await;
        for c in clients {
            tokio::time::timeout(Duration::from_secs(20), c)
                .await
                .expect("clients notice the dead hub")
                .expect("client task");
        }
        let n = *counted.lock().unwrap();
        acks_total += n;
        println!("round {round}: killed after {kill_after:?} with {n} saves acknowledged");
        assert_every_ack_stored(&pool, &acked).await;
    }
    assert!(acks_total > 0, "the rounds acknowledged nothing to check");

    // Restarted on the same database, every candidate reads back what was acknowledged.
    let hub = spec.start().await;
    let client = reqwest::Client::new();
    let acked = acked.lock().unwrap().clone();
    for &(candidate, session) in &sessions {
        let body: Value = client
            .get(hub.api(&format!("/sessions/{session}")))
            .bearer_auth(candidate_token(&keys, candidate))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for q in &questions {
            if let Some(v) = acked.get(&(session, *q)) {
                let read = body["answers"][q.to_string()]["version"]
                    .as_i64()
                    .unwrap_or(-1);
                assert!(
                    read >= *v,
                    "resumed {session}/{q}: {read} < acknowledged {v}"
                );
            }
        }
    }
    println!(
        "kill -9: {ROUNDS} rounds, {acks_total} acknowledged saves, {} (session, question) pairs checked, 0 missing",
        acked.len()
    );
    hub.kill9().await;
}

/// Every acknowledged (session, question, version) is in Postgres with at least that version.
async fn assert_every_ack_stored(pool: &PgPool, acked: &Acked) {
    let stored: HashMap<(Uuid, Uuid), i64> = sqlx::query_as::<_, (Uuid, Uuid, i64)>(
        "SELECT session_id, question_id, version FROM answers",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(s, q, v)| ((s, q), v))
    .collect();
    let acked = acked.lock().unwrap();
    let missing: Vec<_> = acked
        .iter()
        .filter(|(k, v)| stored.get(k).is_none_or(|s| s < v))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
}
