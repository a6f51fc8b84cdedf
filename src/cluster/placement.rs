//! Where a new exam's home goes (sans-IO): among the serving nodes under the load limit, the
//! less loaded of two random picks ("power of two choices": close to the least loaded without
//! every node rushing to the same one).

use super::leases::{NodeInfo, NodeState};

/// The node to make an exam's home, or `None` when no serving node is under `max_load`.
/// `pick` returns a random index below its argument (injected, so tests are deterministic).
pub fn choose_home(
    nodes: &[NodeInfo],
    max_load: u32,
    mut pick: impl FnMut(usize) -> usize,
) -> Option<&NodeInfo> {
    let open: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| n.state == NodeState::Serving && n.load < max_load)
        .collect();
    match open.len() {
        0 => None,
        1 => Some(open[0]),
        n => {
            let a = open[pick(n)];
            let b = open[pick(n)];
            Some(if b.load < a.load { b } else { a })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, state: NodeState, load: u32) -> NodeInfo {
        NodeInfo {
            node_id: id.into(),
            ws_url: format!("ws://{id}/ws"),
            media_addr: String::new(),
            state,
            load,
            region: "test".into(),
        }
    }

    #[test]
    fn the_less_loaded_of_two_picks_among_serving_nodes_under_the_limit() {
        let nodes = [
            node("a", NodeState::Serving, 10),
            node("b", NodeState::Draining, 0),
            node("c", NodeState::Serving, 3),
            node("full", NodeState::Serving, 500),
        ];
        // Picks a then c: c is less loaded.
        let mut picks = [0, 1].into_iter();
        let home = choose_home(&nodes, 100, |_| picks.next().unwrap()).unwrap();
        assert_eq!(home.node_id, "c");
        // Draining and full nodes are never chosen, whatever the picks.
        for i in 0..2 {
            let home = choose_home(&nodes, 100, |n| i % n).unwrap();
            assert!(home.node_id == "a" || home.node_id == "c");
        }
    }

    #[test]
    fn no_home_when_every_node_drains_or_is_full() {
        let nodes = [
            node("a", NodeState::Draining, 0),
            node("b", NodeState::Serving, 100),
        ];
        assert!(choose_home(&nodes, 100, |_| 0).is_none());
        assert!(choose_home(&[], 100, |_| 0).is_none());
    }
}
