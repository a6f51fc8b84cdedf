//! Three hub processes as one cluster on one machine (shared database and Redis prefix, short
//! timers): one home per exam under a placement race, sockets redirected to it, notices from
//! other nodes, sweeping by every node, a killed or frozen home, lost subscriptions.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use proctor_hub::model::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::harness::{candidate_token, exam_with_sessions, tokens, HubProcess, HubSpec};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Lease 3 s, node key 1.5 s, reconcile every second.
fn cluster_spec(pool: &PgPool) -> HubSpec {
    HubSpec::on(pool)
        .with("HUB_CLUSTER", "true")
        .with("HUB_CLUSTER_LEASE_MS", "3000")
        .with("HUB_CLUSTER_NODE_TTL_MS", "1500")
        .with("HUB_CLUSTER_RECONCILE_MS", "1000")
}

async fn three_nodes(spec: &HubSpec) -> Vec<HubProcess> {
    let (a, b, c) = tokio::join!(spec.start(), spec.start(), spec.start());
    let nodes = vec![a, b, c];
    // Each registers at start; give the registry one refresh so every node sees the others.
    tokio::time::sleep(Duration::from_millis(700)).await;
    nodes
}

fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/ws")
}

async fn next_json(ws: &mut Ws, within: Duration) -> Value {
    loop {
        match tokio::time::timeout(within, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return json!({"type": "closed", "code": frame.map(|f| u16::from(f.code))})
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return json!({"type": "closed", "error": e.to_string()}),
            Ok(None) => return json!({"type": "closed"}),
            Err(_) => return json!({"type": "timeout"}),
        }
    }
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

/// Where a socket ended up: the socket, the URL it is on, and the reply to `first`.
struct Landed {
    ws: Ws,
    url: String,
    reply: Value,
    redirects: usize,
}

/// Connects to `url`, authenticates, sends `first` (a join or a watch; nothing for a phone)
/// and follows `redirect` + 4010 the way the browser client does.
async fn land(url: &str, token: &str, first: Option<Value>) -> Result<Landed, String> {
    let mut url = url.to_string();
    for redirects in 0..5 {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        send(&mut ws, json!({"type": "auth", "token": token})).await;
        let authed = next_json(&mut ws, Duration::from_secs(5)).await;
        if authed["type"] != "authed" {
            return Err(format!("{url}: {authed}"));
        }
        let reply = match &first {
            Some(msg) => {
                send(&mut ws, msg.clone()).await;
                next_json(&mut ws, Duration::from_secs(5)).await
            }
            None => next_json(&mut ws, Duration::from_millis(500)).await,
        };
        if reply["type"] == "redirect" {
            let closed = next_json(&mut ws, Duration::from_secs(5)).await;
            assert_eq!(
                closed["code"], 4010,
                "a redirect is followed by 4010: {closed}"
            );
            url = reply["url"].as_str().unwrap().to_string();
            continue;
        }
        return Ok(Landed {
            ws,
            url,
            reply,
            redirects,
        });
    }
    Err("more than 5 redirects".into())
}

async fn room_of(pool: &PgPool, session: Uuid) -> Uuid {
    sqlx::query_scalar("SELECT webrtc_room_id FROM sessions WHERE id = $1")
        .bind(session)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn proctor(pool: &PgPool) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, 'P', 'x', 'PROCTOR')",
    )
    .bind(id)
    .bind(format!("{}@proctors.test", id.simple()))
    .execute(pool)
    .await
    .unwrap();
    id
}

/// The owner recorded for `exam`, and every registered node's WebSocket URL by id.
async fn redis_view(prefix: &str, exam: Uuid) -> (Option<String>, Vec<(String, String)>) {
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let owner: Option<String> = redis::cmd("GET")
        .arg(format!("{prefix}exam-home:{exam}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}node:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut nodes = Vec::new();
    for key in keys {
        let url: String = redis::cmd("HGET")
            .arg(&key)
            .arg("wsUrl")
            .query_async(&mut conn)
            .await
            .unwrap();
        nodes.push((key.rsplit(':').next().unwrap().to_string(), url));
    }
    (owner, nodes)
}

/// One exam with one STARTED session on three nodes, its laptop in its room (at the home).
struct OneLaptop {
    exam: Uuid,
    session: Uuid,
    room: Uuid,
    /// The laptop's access token.
    token: String,
    keys: proctor_hub::auth::jwt::JwtKeys,
    nodes: Vec<HubProcess>,
    laptop: Landed,
}

async fn one_laptop(pool: &PgPool, spec: &HubSpec) -> OneLaptop {
    let (exam, _, sessions) = exam_with_sessions(pool, 1, 1, 3600.0).await;
    let nodes = three_nodes(spec).await;
    let keys = tokens();
    let (candidate, session) = sessions[0];
    let token = candidate_token(&keys, candidate);
    let room = room_of(pool, session).await;
    let laptop = land(
        &ws_url(nodes[0].addr),
        &token,
        Some(json!({"type": "join", "roomId": room})),
    )
    .await
    .unwrap();
    assert_eq!(laptop.reply["type"], "joined", "{}", laptop.reply);
    OneLaptop {
        exam,
        session,
        room,
        token,
        keys,
        nodes,
        laptop,
    }
}

impl OneLaptop {
    /// Where the laptop's home is in `nodes`.
    fn home(&self) -> usize {
        self.nodes
            .iter()
            .position(|n| ws_url(n.addr) == self.laptop.url)
            .expect("the home is one of the nodes")
    }
}

async fn terminate(node: &HubProcess, token: &str, session: Uuid) {
    let r = reqwest::Client::new()
        .post(node.api(&format!("/sessions/{session}/actions")))
        .bearer_auth(token)
        .json(&json!({"actionType": "TERMINATE", "reason": "cluster test"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

async fn stop_all(nodes: Vec<HubProcess>) {
    for mut n in nodes {
        n.signal(libc::SIGTERM);
        assert!(n.exited(Duration::from_secs(15)).await.success());
    }
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn an_exam_gets_one_home_and_every_socket_is_sent_there(pool: PgPool) {
    let (exam, _, sessions) = exam_with_sessions(&pool, 1, 3, 3600.0).await;
    let spec = cluster_spec(&pool);
    let nodes = three_nodes(&spec).await;
    let keys = tokens();
    // Three laptops of one exam reach three different nodes at the same moment.
    let mut joins = Vec::new();
    for (i, (candidate, session)) in sessions.iter().enumerate() {
        let url = ws_url(nodes[i].addr);
        let token = candidate_token(&keys, *candidate);
        let room = room_of(&pool, *session).await;
        joins.push(async move {
            land(&url, &token, Some(json!({"type": "join", "roomId": room}))).await
        });
    }
    let laptops: Vec<Landed> = futures::future::join_all(joins)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    for l in &laptops {
        assert_eq!(l.reply["type"], "joined", "{}", l.reply);
    }
    let home = laptops[0].url.clone();
    assert!(
        laptops.iter().all(|l| l.url == home),
        "one home: {:?}",
        laptops.iter().map(|l| &l.url).collect::<Vec<_>>()
    );
    let redirected = laptops.iter().filter(|l| l.redirects > 0).count();
    assert!(redirected >= 2, "two of three reached another node first");
    let (owner, registry) = redis_view(&spec.redis_prefix, exam).await;
    assert_eq!(registry.len(), 3, "{registry:?}");
    let owner_url = registry
        .iter()
        .find(|(id, _)| Some(id) == owner.as_ref())
        .map(|(_, url)| url.clone());
    assert_eq!(
        owner_url.as_deref(),
        Some(home.as_str()),
        "the lease names the home"
    );

    // A proctor who reaches another node is sent to the same home, watches and joins.
    let staff = proctor(&pool).await;
    let token = keys.issue(staff, Role::Proctor, None).unwrap();
    let elsewhere = nodes
        .iter()
        .map(|n| ws_url(n.addr))
        .find(|u| *u != home)
        .unwrap();
    let mut watcher = land(
        &elsewhere,
        &token,
        Some(json!({"type": "watch", "examId": exam})),
    )
    .await
    .unwrap();
    assert_eq!(watcher.url, home);
    assert_eq!(watcher.redirects, 1);
    assert_eq!(watcher.reply["type"], "session-snapshot");
    assert_eq!(watcher.reply["sessions"].as_array().unwrap().len(), 3);
    let room = room_of(&pool, sessions[0].1).await;
    send(&mut watcher.ws, json!({"type": "join", "roomId": room})).await;
    let joined = next_json(&mut watcher.ws, Duration::from_secs(5)).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(
        joined["peers"].as_array().unwrap().len(),
        1,
        "the laptop is there"
    );
    // Signalling between them is relayed inside the home.
    let laptop_peer = joined["peers"][0]["peerId"].clone();
    send(
        &mut watcher.ws,
        json!({"type": "signal", "roomId": room, "to": laptop_peer,
               "data": {"kind": "offer", "sdp": "v=0"}}),
    )
    .await;
    let mut laptop = laptops.into_iter().next().unwrap();
    loop {
        let m = next_json(&mut laptop.ws, Duration::from_secs(5)).await;
        match m["type"].as_str() {
            Some("signal") => break,
            Some("peer-joined") => continue,
            _ => panic!("the laptop should get the proctor's signal: {m}"),
        }
    }
    // The HTTP session list shows the laptop's liveness whatever node answers it: the home
    // writes the heartbeat keys every node reads.
    send(&mut laptop.ws, json!({"type": "heartbeat"})).await;
    let other_node = nodes.iter().find(|n| ws_url(n.addr) != home).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let list: Value = reqwest::Client::new()
            .get(other_node.api(&format!("/exams/{exam}/sessions")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mine = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == json!(sessions[0].1))
            .cloned()
            .unwrap();
        if mine["liveness"]["laptop"] == "ONLINE" {
            break;
        }
        assert!(Instant::now() < deadline, "{mine}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The web app's pages may connect to every node, so a redirect is not blocked by its CSP.
    let page = reqwest::get(nodes[0].url("/app")).await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    for n in &nodes {
        assert!(csp.contains(&format!("ws://{}", n.addr)), "{csp}");
    }
    println!(
        "placement race: 3 laptops on 3 nodes → one home ({redirected} redirected); proctor redirected once"
    );
    stop_all(nodes).await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn notices_from_other_nodes_reach_the_laptop_even_across_a_lost_subscription(pool: PgPool) {
    let (_, _, sessions) = exam_with_sessions(&pool, 1, 3, 3600.0).await;
    let spec = cluster_spec(&pool);
    let nodes = three_nodes(&spec).await;
    let keys = tokens();
    let staff = proctor(&pool).await;
    let staff_token = keys.issue(staff, Role::Proctor, None).unwrap();
    let mut laptops = Vec::new();
    for (candidate, session) in &sessions {
        let room = room_of(&pool, *session).await;
        let l = land(
            &ws_url(nodes[0].addr),
            &candidate_token(&keys, *candidate),
            Some(json!({"type": "join", "roomId": room})),
        )
        .await
        .unwrap();
        assert_eq!(l.reply["type"], "joined");
        laptops.push(l);
    }
    let home = laptops[0].url.clone();
    let others: Vec<&HubProcess> = nodes.iter().filter(|n| ws_url(n.addr) != home).collect();

    // A terminate sent to a node that is not the home reaches the laptop within 2 s.
    let started = Instant::now();
    terminate(others[0], &staff_token, sessions[0].1).await;
    let ended = next_json(&mut laptops[0].ws, Duration::from_secs(2)).await;
    let took = started.elapsed();
    assert_eq!(ended["type"], "session-ended", "{ended}");
    assert_eq!(ended["status"], "TERMINATED");
    let closed = next_json(&mut laptops[0].ws, Duration::from_secs(2)).await;
    assert_eq!(closed["code"], 4503);

    // Every pub/sub connection is killed, and a terminate goes out at once, perhaps into the
    // gap: the home resubscribes, and its reconcile loop finds the ending regardless.
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        killed >= 3,
        "every node's subscription was killed ({killed})"
    );
    let gap_started = Instant::now();
    terminate(others[1], &staff_token, sessions[1].1).await;
    let ended = next_json(&mut laptops[1].ws, Duration::from_secs(5)).await;
    let gap_took = gap_started.elapsed();
    assert_eq!(ended["type"], "session-ended", "{ended}");
    let home_node = nodes.iter().find(|n| ws_url(n.addr) == home).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while home_node
        .counter("hub_cluster_resubscribed_total", "")
        .await
        < 1.0
    {
        assert!(Instant::now() < deadline, "the home resubscribed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A notice lost outright (a crash between COMMIT and PUBLISH): the session ends in
    // Postgres with no notice at all, and the home's reconcile loop (every second here)
    // tells the laptop.
    let lost_at = Instant::now();
    sqlx::query(
        "UPDATE sessions SET status = 'TERMINATED', submitted_at = now(), ended_reason = 'lost notice'
          WHERE id = $1",
    )
    .bind(sessions[2].1)
    .execute(&pool)
    .await
    .unwrap();
    let ended = next_json(&mut laptops[2].ws, Duration::from_secs(3)).await;
    let reconciled = lost_at.elapsed();
    assert_eq!(ended["type"], "session-ended", "{ended}");
    assert_eq!(ended["reason"], "lost notice");
    println!(
        "terminate via another node: laptop told after {took:?}; across a killed subscription: \
         {gap_took:?}; with no notice at all (reconcile): {reconciled:?}"
    );
    stop_all(nodes).await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn three_sweeping_nodes_end_300_sessions_exactly_once(pool: PgPool) {
    const N: i64 = 300;
    exam_with_sessions(&pool, 2, N as usize, 3.0).await;
    sqlx::query(
        "UPDATE sessions SET expires_at = date_trunc('second', now()) + interval '4 seconds'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let spec = cluster_spec(&pool)
        .with("HUB_AUTOSAVE_GRACE_SECS", "1")
        .with("HUB_SWEEP_INTERVAL_MS", "100");
    let nodes = three_nodes(&spec).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ended: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sessions WHERE status = 'AUTO_SUBMITTED'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if ended == N {
            break;
        }
        assert!(Instant::now() < deadline, "only {ended} of {N} ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let scores: i64 = sqlx::query_scalar("SELECT count(*) FROM scores")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(scores, N);
    let mut by_node = Vec::new();
    for n in &nodes {
        by_node.push(
            n.counter("hub_sessions_ended_total", "AUTO_SUBMITTED")
                .await,
        );
    }
    assert_eq!(by_node.iter().sum::<f64>(), N as f64, "endings {by_node:?}");
    println!("three sweeping nodes: endings {by_node:?}, {scores} scores for {N} sessions");
    stop_all(nodes).await;
}

/// Lands a laptop through `entry`, retrying (as the browser client does: back to its entry
/// URL when the node it was sent to is gone) until it is in its room.
async fn rejoin(entry: &str, token: &str, room: Uuid, within: Duration) -> Landed {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(l) = land(entry, token, Some(json!({"type": "join", "roomId": room}))).await {
            if l.reply["type"] == "joined" {
                return l;
            }
        }
        assert!(Instant::now() < deadline, "the laptop never got back in");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_killed_home_hands_its_exam_to_another_node(pool: PgPool) {
    let spec = cluster_spec(&pool);
    let OneLaptop {
        room,
        token,
        mut nodes,
        laptop: first,
        ..
    } = one_laptop(&pool, &spec).await;
    let i = nodes
        .iter()
        .position(|n| ws_url(n.addr) == first.url)
        .unwrap();
    let home = nodes.remove(i);
    let entry = ws_url(nodes[0].addr);
    // The laptop reports events over its socket, one after the other, until the home dies.
    let mut ws = first.ws;
    let reporter = tokio::spawn(async move {
        let mut acked = Vec::new();
        loop {
            let id = Uuid::new_v4();
            let sent = ws
                .send(Message::Text(
                    json!({"type": "event", "eventId": id, "eventType": "TAB_HIDDEN", "severity": 2})
                        .to_string()
                        .into(),
                ))
                .await;
            if sent.is_err() {
                return acked;
            }
            loop {
                let m = next_json(&mut ws, Duration::from_secs(5)).await;
                match m["type"].as_str() {
                    Some("event-ack") => {
                        assert_eq!(m["eventId"], json!(id));
                        acked.push(id);
                        break;
                    }
                    Some("closed" | "timeout") => return acked,
                    _ => {}
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    home.kill9().await;
    let back = rejoin(&entry, &token, room, Duration::from_secs(15)).await;
    let took = killed.elapsed();
    assert_ne!(back.url, first.url);
    assert!(took < Duration::from_secs(8), "back after {took:?}");
    let acked = reporter.await.unwrap();
    assert!(
        acked.len() >= 10,
        "events flowed before the kill ({})",
        acked.len()
    );
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM proctoring_events WHERE event_id = ANY($1)")
            .bind(&acked)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        acked.len() as i64,
        "every acknowledged event is stored"
    );
    println!(
        "kill -9 of the home: the laptop is in its room on another node after {took:?}; {} acknowledged events, all stored",
        acked.len()
    );
    stop_all(nodes).await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_frozen_home_lets_its_exam_go_when_it_wakes(pool: PgPool) {
    let spec = cluster_spec(&pool);
    let mut s = one_laptop(&pool, &spec).await;
    let home = s.home();
    s.nodes[home].signal(libc::SIGSTOP);
    // Its node key expires (1.5 s); a proctor arriving meanwhile makes another node the home.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let staff = proctor(&pool).await;
    let token = s.keys.issue(staff, Role::Proctor, None).unwrap();
    let other = s
        .nodes
        .iter()
        .map(|n| ws_url(n.addr))
        .find(|u| *u != s.laptop.url)
        .unwrap();
    let watcher = land(
        &other,
        &token,
        Some(json!({"type": "watch", "examId": s.exam})),
    )
    .await
    .unwrap();
    assert_eq!(watcher.reply["type"], "session-snapshot");
    assert_ne!(watcher.url, s.laptop.url, "a live node took the exam over");
    let woke = Instant::now();
    s.nodes[home].signal(libc::SIGCONT);
    // Back, it finds its lease gone and lets the exam's sockets go with 4010.
    let closed = loop {
        let m = next_json(&mut s.laptop.ws, Duration::from_secs(6)).await;
        if m["type"] == "closed" || m["type"] == "timeout" {
            break m;
        }
    };
    assert_eq!(closed["code"], 4010, "{closed}");
    println!(
        "SIGSTOP/SIGCONT of the home: its laptop socket closed with 4010 {:?} after waking",
        woke.elapsed()
    );
    stop_all(s.nodes).await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn events_ingested_on_another_node_are_scored_by_the_home(pool: PgPool) {
    let spec = cluster_spec(&pool);
    let OneLaptop {
        exam,
        session,
        token,
        keys,
        nodes,
        laptop,
        ..
    } = one_laptop(&pool, &spec).await;
    let staff = proctor(&pool).await;
    let mut watcher = land(
        &laptop.url,
        &keys.issue(staff, Role::Proctor, None).unwrap(),
        Some(json!({"type": "watch", "examId": exam})),
    )
    .await
    .unwrap();
    let home = nodes.iter().find(|n| ws_url(n.addr) == laptop.url).unwrap();
    let other = nodes.iter().find(|n| ws_url(n.addr) != laptop.url).unwrap();
    // The laptop's page posts a batch to whichever node its HTTP request reached.
    let events: Vec<Value> = ["TAB_HIDDEN", "FACE_NOT_DETECTED", "MULTIPLE_FACES"]
        .iter()
        .map(|t| json!({"eventId": Uuid::new_v4(), "eventType": t, "severity": 5}))
        .collect();
    let r = reqwest::Client::new()
        .post(other.api(&format!("/sessions/{session}/events")))
        .bearer_auth(&token)
        .json(&json!({"events": events}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    // The home's watcher sees the score move: the home scored them.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = 0.0;
    while seen == 0.0 {
        assert!(
            Instant::now() < deadline,
            "no score update reached the home's watcher"
        );
        let m = next_json(&mut watcher.ws, Duration::from_secs(5)).await;
        if m["type"] == "session-update" {
            seen = m["violationScore"].as_f64().unwrap_or(0.0);
        }
    }
    let forwarded = other
        .counter("hub_cluster_events_forwarded_total", "")
        .await;
    let received = home.counter("hub_cluster_events_received_total", "").await;
    assert_eq!((forwarded, received), (3.0, 3.0));
    // Only the home wrote the score.
    let writes_elsewhere = other
        .counter("hub_event_score_write_seconds_count", "")
        .await;
    assert_eq!(writes_elsewhere, 0.0, "the ingesting node wrote no score");
    let writes_home = home
        .counter("hub_event_score_write_seconds_count", "")
        .await;
    assert!(
        writes_home >= 1.0,
        "the home wrote the score ({writes_home})"
    );
    let stored: f64 = sqlx::query_scalar("SELECT violation_score FROM sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(stored > 0.0);
    println!(
        "3 events posted to another node: forwarded {forwarded}, scored by the home ({stored})"
    );
    stop_all(nodes).await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_draining_home_releases_its_exam_and_closes_with_4001(pool: PgPool) {
    let spec = cluster_spec(&pool);
    let OneLaptop {
        exam,
        room,
        token,
        mut nodes,
        mut laptop,
        ..
    } = one_laptop(&pool, &spec).await;
    let i = nodes
        .iter()
        .position(|n| ws_url(n.addr) == laptop.url)
        .unwrap();
    let mut home = nodes.remove(i);
    let sent = Instant::now();
    home.signal(libc::SIGTERM);
    let closed = loop {
        let m = next_json(&mut laptop.ws, Duration::from_secs(5)).await;
        if m["type"] == "closed" || m["type"] == "timeout" {
            break m;
        }
    };
    assert_eq!(closed["code"], 4001, "{closed}");
    assert!(home.exited(Duration::from_secs(10)).await.success());
    let stopped = sent.elapsed();
    let (owner, registry) = redis_view(&spec.redis_prefix, exam).await;
    assert_eq!(owner, None, "the lease was released, not left to expire");
    assert_eq!(registry.len(), 2, "the node key was removed");
    // The laptop comes straight back through another node.
    let back = rejoin(&ws_url(nodes[0].addr), &token, room, Duration::from_secs(5)).await;
    let total = sent.elapsed();
    println!(
        "SIGTERM of the home: 4001, exit after {stopped:?}, lease released; laptop back after {total:?}"
    );
    drop(back);
    stop_all(nodes).await;
}

/// Counts the RTP packets a proctor's peer receives.
#[derive(Default)]
struct Received(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl loadtest::peer::Observer for Received {
    fn track(&self, track: std::sync::Arc<dyn webrtc::media_stream::track_remote::TrackRemote>) {
        use webrtc::media_stream::track_remote::TrackRemoteEvent;
        let received = self.0.clone();
        tokio::spawn(async move {
            while let Some(evt) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(_) = evt {
                    received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
}

/// The next `signal` from the hub of `kind`.
async fn hub_signal(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let m = next_json(ws, Duration::from_secs(15)).await;
        assert!(m["type"] != "closed" && m["type"] != "timeout", "{m}");
        if m["type"] == "signal" && m["from"] == "hub" && m["data"]["kind"] == kind {
            return m;
        }
    }
}

type Track = std::sync::Arc<webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP>;

/// The laptop publishes one VP8 camera track through its home's relay.
async fn publish(ws: &mut Ws, room: Uuid, ssrc: u32) -> (loadtest::peer::Peer, Track) {
    let peer = loadtest::peer::Peer::new(std::sync::Arc::new(loadtest::peer::Ignore))
        .await
        .unwrap();
    let track = loadtest::peer::camera_track(format!("laptop-{ssrc:x}"), ssrc);
    peer.add_track(track.clone()).await.unwrap();
    let sdp = peer.offer().await.unwrap();
    send(
        ws,
        json!({"type": "signal", "roomId": room, "to": "hub",
               "data": {"kind": "offer", "sdp": sdp, "tracks": {"0": "camera"}}}),
    )
    .await;
    let answer = hub_signal(ws, "answer").await;
    peer.accept_answer(answer["data"]["sdp"].as_str().unwrap().into())
        .await
        .unwrap();
    (peer, track)
}

/// The proctor subscribes to the room and answers the relay's offer: its peer and packet count.
async fn subscribe(
    ws: &mut Ws,
    room: Uuid,
) -> (
    loadtest::peer::Peer,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let received = Received::default();
    let count = received.0.clone();
    let peer = loadtest::peer::Peer::new(std::sync::Arc::new(received))
        .await
        .unwrap();
    send(ws, json!({"type": "subscribe", "roomId": room})).await;
    let offer = hub_signal(ws, "offer").await;
    let sdp = peer
        .answer(offer["data"]["sdp"].as_str().unwrap().into())
        .await
        .unwrap();
    send(
        ws,
        json!({"type": "signal", "roomId": room, "to": "hub",
               "data": {"kind": "answer", "sdp": sdp}}),
    )
    .await;
    (peer, count)
}

/// Writes 30 fps of synthetic VP8 to whichever track is current.
fn camera(ssrc: u32) -> tokio::sync::watch::Sender<Option<Track>> {
    let (tx, mut rx) = tokio::sync::watch::channel::<Option<Track>>(None);
    tokio::spawn(async move {
        let mut n = 0u32;
        loop {
            let track = rx.borrow_and_update().clone();
            if let Some(track) = track {
                let mut p = loadtest::peer::vp8_header(n % 30 == 0);
                p.resize(900, (n % 251) as u8);
                let packet =
                    loadtest::peer::vp8_packet(ssrc, u64::from(n), n * 3000, bytes::Bytes::from(p));
                use webrtc::media_stream::track_local::TrackLocal;
                let _ = track.write_rtp(packet).await;
                n += 1;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(33)) => {}
                r = rx.changed() => if r.is_err() { return },
            }
        }
    });
    tx
}

async fn packets_flow(count: &std::sync::atomic::AtomicUsize, within: Duration) {
    let deadline = Instant::now() + within;
    let start = count.load(std::sync::atomic::Ordering::Relaxed);
    while count.load(std::sync::atomic::Ordering::Relaxed) < start + 30 {
        assert!(Instant::now() < deadline, "no video reached the proctor");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn the_proctor_sees_video_through_the_home_and_again_after_the_home_is_killed(pool: PgPool) {
    const SSRC: u32 = 0x00C0_FFEE;
    let spec = cluster_spec(&pool).with("HUB_MEDIA_ADDR", "127.0.0.1:0");
    // The laptop and the proctor first reach different nodes and meet at the home.
    let OneLaptop {
        room,
        token: laptop_token,
        keys,
        mut nodes,
        mut laptop,
        ..
    } = one_laptop(&pool, &spec).await;
    let staff = proctor(&pool).await;
    let staff_token = keys.issue(staff, Role::Proctor, None).unwrap();
    let join = json!({"type": "join", "roomId": room});
    let elsewhere = nodes
        .iter()
        .map(|n| ws_url(n.addr))
        .find(|u| *u != laptop.url)
        .unwrap();
    let mut watcher = land(&elsewhere, &staff_token, Some(join.clone()))
        .await
        .unwrap();
    assert_eq!(watcher.url, laptop.url);
    assert_eq!(watcher.reply["type"], "joined");
    let camera = camera(SSRC);
    let (cam, track) = publish(&mut laptop.ws, room, SSRC).await;
    camera.send_replace(Some(track));
    let (eyes, seen) = subscribe(&mut watcher.ws, room).await;
    packets_flow(&seen, Duration::from_secs(20)).await;

    // The home dies. Both come back through the entry node, which becomes (or names) the new
    // home; the laptop publishes again and the proctor subscribes again.
    let i = nodes
        .iter()
        .position(|n| ws_url(n.addr) == laptop.url)
        .unwrap();
    let home = nodes.remove(i);
    let entry = ws_url(nodes[0].addr);
    let killed = Instant::now();
    home.kill9().await;
    camera.send_replace(None);
    drop((cam, eyes));
    let (mut laptop2, mut watcher2) = tokio::join!(
        rejoin(&entry, &laptop_token, room, Duration::from_secs(15)),
        rejoin(&entry, &staff_token, room, Duration::from_secs(15)),
    );
    assert_eq!(laptop2.url, watcher2.url);
    assert_ne!(laptop2.url, laptop.url);
    let rejoined = killed.elapsed();
    let (_cam, track) = publish(&mut laptop2.ws, room, SSRC).await;
    camera.send_replace(Some(track));
    let (_eyes, seen) = subscribe(&mut watcher2.ws, room).await;
    packets_flow(&seen, Duration::from_secs(20)).await;
    let video_again = killed.elapsed();
    println!(
        "kill -9 of the home: both back in the room after {rejoined:?}, the proctor sees video again after {video_again:?}"
    );
    stop_all(nodes).await;
}
