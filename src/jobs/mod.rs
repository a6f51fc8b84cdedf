//! Background jobs, each spawned on `AppState::tasks` and watching `AppState::shutdown`:
//! the autosave batcher and the sweeper that auto-submits expired sessions.

pub mod autosave;
pub mod sweeper;
