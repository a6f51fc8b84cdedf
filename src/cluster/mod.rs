//! Scale-out on Redis (`../shared/design/SCALEOUT.md`): the node registry and the exam-home
//! leases that pin each exam in progress to one hub process.
//!
//! - `placement.rs`: choosing a home among serving nodes (sans-IO: the less loaded of two
//!   random picks under a load limit).
//! - `leases.rs`: the registry keys (`{prefix}node:{nodeId}`, refreshed, expiring) and the
//!   exam-home leases (`{prefix}exam-home:{examId}`), each operation one Lua script so two
//!   nodes can never both own an exam: acquire (take it when free or when its owner's node key
//!   expired), renew-if-mine, release-if-mine.
//!
//! A node id is new at every process start, so a restarted process never inherits the leases
//! of its previous life.

pub mod leases;
pub mod placement;

pub use leases::{Leases, NodeInfo, NodeState, Owner};
pub use placement::choose_home;
