//! The node registry and exam-home leases against the real Redis (SCALEOUT.md): one owner per
//! exam however many nodes race, renew and release only by the owner, takeover only once the
//! owner's node key has expired.

use std::time::Duration;

use proctor_hub::cluster::{choose_home, Leases, NodeState, Owner};
use uuid::Uuid;

async fn node(prefix: &str, lease_ttl: Duration, node_ttl: Duration) -> Leases {
    let redis = proctor_hub::store::redis::connect("redis://127.0.0.1:6379")
        .await
        .unwrap();
    Leases::new(redis, prefix, lease_ttl, node_ttl)
}

fn prefix() -> String {
    format!("test:{}:", Uuid::new_v4().simple())
}

#[tokio::test]
async fn nodes_racing_for_an_exam_get_exactly_one_owner() {
    let p = prefix();
    let ttl = (Duration::from_secs(15), Duration::from_secs(6));
    let nodes = [
        node(&p, ttl.0, ttl.1).await,
        node(&p, ttl.0, ttl.1).await,
        node(&p, ttl.0, ttl.1).await,
    ];
    for n in &nodes {
        n.announce("ws://x/ws", "127.0.0.1:3480", "test", NodeState::Serving, 0)
            .await
            .unwrap();
    }
    for _ in 0..20 {
        let exam = Uuid::new_v4();
        let outcomes = futures::future::join_all(nodes.iter().map(|n| n.acquire(exam))).await;
        let mine: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o, Ok(Owner::Mine)))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(mine.len(), 1, "{outcomes:?}");
        let owner = nodes[mine[0]].node_id().to_string();
        for o in outcomes.iter().flatten() {
            if let Owner::Other(id) = o {
                assert_eq!(id, &owner, "everyone names the same owner");
            }
        }
    }
}

#[tokio::test]
async fn only_the_owner_renews_or_releases() {
    let p = prefix();
    let (a, b) = (
        node(&p, Duration::from_secs(15), Duration::from_secs(6)).await,
        node(&p, Duration::from_secs(15), Duration::from_secs(6)).await,
    );
    for n in [&a, &b] {
        n.announce("ws://x/ws", "", "test", NodeState::Serving, 0)
            .await
            .unwrap();
    }
    let exam = Uuid::new_v4();
    assert_eq!(a.acquire(exam).await.unwrap(), Owner::Mine);
    assert_eq!(
        a.acquire(exam).await.unwrap(),
        Owner::Mine,
        "acquiring again is harmless"
    );
    assert_eq!(
        b.acquire(exam).await.unwrap(),
        Owner::Other(a.node_id().to_string())
    );
    assert!(a.renew(exam).await.unwrap());
    assert!(!b.renew(exam).await.unwrap());
    assert!(!b.release(exam).await.unwrap());
    assert!(a.release(exam).await.unwrap());
    assert!(
        !a.renew(exam).await.unwrap(),
        "a released lease is not renewed"
    );
    assert_eq!(b.acquire(exam).await.unwrap(), Owner::Mine);
}

#[tokio::test]
async fn a_dead_nodes_exams_are_taken_over_and_it_cannot_renew_them() {
    let p = prefix();
    // A's node key lives 300 ms and is never refreshed (the process died); its lease would
    // live 15 s.
    let a = node(&p, Duration::from_secs(15), Duration::from_millis(300)).await;
    let b = node(&p, Duration::from_secs(15), Duration::from_secs(6)).await;
    a.announce("ws://a/ws", "", "test", NodeState::Serving, 0)
        .await
        .unwrap();
    b.announce("ws://b/ws", "", "test", NodeState::Serving, 0)
        .await
        .unwrap();
    let exam = Uuid::new_v4();
    assert_eq!(a.acquire(exam).await.unwrap(), Owner::Mine);
    assert!(matches!(b.acquire(exam).await.unwrap(), Owner::Other(_)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.acquire(exam).await.unwrap(), Owner::Mine, "taken over");
    assert!(
        !a.renew(exam).await.unwrap(),
        "the old owner learns it lost the exam"
    );
}

#[tokio::test]
async fn the_registry_lists_serving_and_draining_nodes_and_homes_go_to_serving_ones() {
    let p = prefix();
    let ttl = (Duration::from_secs(15), Duration::from_secs(6));
    let (a, b) = (node(&p, ttl.0, ttl.1).await, node(&p, ttl.0, ttl.1).await);
    a.announce("ws://a/ws", "10.0.0.1:3480", "test", NodeState::Serving, 7)
        .await
        .unwrap();
    b.announce("ws://b/ws", "10.0.0.2:3480", "test", NodeState::Draining, 0)
        .await
        .unwrap();
    let mut nodes = a.nodes().await.unwrap();
    nodes.sort_by(|x, y| x.ws_url.cmp(&y.ws_url));
    assert_eq!(nodes.len(), 2);
    assert_eq!(
        (nodes[0].node_id.as_str(), nodes[0].state, nodes[0].load),
        (a.node_id(), NodeState::Serving, 7)
    );
    assert_eq!(nodes[1].state, NodeState::Draining);
    let home = choose_home(&nodes, 100, |n| n - 1).unwrap();
    assert_eq!(
        home.node_id,
        a.node_id(),
        "a draining node takes no new exams"
    );
    b.withdraw().await.unwrap();
    assert_eq!(a.nodes().await.unwrap().len(), 1);
}
