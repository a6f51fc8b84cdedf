//! Device liveness: heartbeat deadlines per (session, device), driven by a `now` argument.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::id::SessionId;

/// Which of a session's devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Device {
    /// The candidate's laptop (role CANDIDATE).
    Laptop,
    /// The paired phone (role MOBILE).
    Mobile,
}

/// A session's device: the unit of liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LivenessKey {
    /// The session.
    pub session_id: SessionId,
    /// The device.
    pub device: Device,
}

/// What the hub knows about a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LivenessState {
    /// No heartbeat seen (or forgotten).
    Unknown,
    /// Heartbeats arriving within the TTL.
    Online,
    /// No heartbeat for longer than the TTL.
    Lost,
}

/// A change to report (a `session-update` for the watching proctors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LivenessChange {
    /// First heartbeat of a device: Unknown → Online.
    Online(LivenessKey),
    /// The deadline passed without a heartbeat: Online → Lost.
    Lost(LivenessKey),
    /// A heartbeat after a loss: Lost → Online.
    Reconnected(LivenessKey),
}

/// One device's deadline.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The device is Lost once `now` is past this.
    deadline: Duration,
    /// Whether it is already Lost.
    lost: bool,
}

/// Heartbeat deadlines for every device the hub has seen.
///
/// Time is a `Duration` since any fixed origin the server chooses (it never reads a clock). A
/// device is Lost when `now > last heartbeat + ttl` (TTL = 3 × heartbeat interval). While a
/// telemetry gap is open (the heartbeat store is unreachable) nothing is declared Lost, and when
/// it closes every online deadline restarts from a full TTL, so a store outage is never reported
/// as devices dropping. Deadlines sit in an ordered index: heartbeats and polls are O(log n).
#[derive(Debug, Clone)]
pub struct Liveness {
    /// How long a heartbeat keeps a device online.
    ttl: Duration,
    /// Per-device state.
    entries: HashMap<LivenessKey, Entry>,
    /// Deadlines of online devices, earliest first.
    deadlines: BTreeSet<(Duration, LivenessKey)>,
    /// Start of the open telemetry gap, if any.
    gap_since: Option<Duration>,
}

impl Liveness {
    /// Liveness with this TTL.
    pub fn new(ttl: Duration) -> Self {
        Liveness {
            ttl,
            entries: HashMap::new(),
            deadlines: BTreeSet::new(),
            gap_since: None,
        }
    }

    /// Liveness for clients heartbeating every `interval`: TTL = 3 × interval.
    pub fn with_heartbeat_interval(interval: Duration) -> Self {
        Liveness::new(interval * 3)
    }

    /// The TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Records a heartbeat; returns the change it causes, if any.
    pub fn on_heartbeat(&mut self, key: LivenessKey, now: Duration) -> Option<LivenessChange> {
        let deadline = now + self.ttl;
        match self.entries.get_mut(&key) {
            None => {
                self.entries.insert(
                    key,
                    Entry {
                        deadline,
                        lost: false,
                    },
                );
                self.deadlines.insert((deadline, key));
                Some(LivenessChange::Online(key))
            }
            Some(entry) => {
                let was_lost = entry.lost;
                if !was_lost {
                    self.deadlines.remove(&(entry.deadline, key));
                }
                // A heartbeat never shortens a deadline (one pushed out after a gap stays).
                entry.deadline = entry.deadline.max(deadline);
                entry.lost = false;
                self.deadlines.insert((entry.deadline, key));
                was_lost.then_some(LivenessChange::Reconnected(key))
            }
        }
    }

    /// Declares Lost every online device whose deadline is before `now`. Nothing during a gap.
    pub fn poll(&mut self, now: Duration) -> Vec<LivenessChange> {
        let mut changes = Vec::new();
        if self.gap_since.is_some() {
            return changes;
        }
        while let Some(&(deadline, key)) = self.deadlines.first() {
            if now <= deadline {
                break;
            }
            self.deadlines.pop_first();
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.lost = true;
            }
            changes.push(LivenessChange::Lost(key));
        }
        changes
    }

    /// The earliest `now` at which [`poll`](Liveness::poll) would report something (just past
    /// the first deadline), so the server can sleep exactly until then. `None` when no device is
    /// online or a gap is open (nothing can expire).
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.gap_since.is_some() {
            return None;
        }
        self.deadlines
            .first()
            .map(|(deadline, _)| *deadline + Duration::from_nanos(1))
    }

    /// The heartbeat store became unreachable at `now`: stop declaring devices Lost (their
    /// heartbeats may be arriving elsewhere). A second call while open is ignored.
    pub fn telemetry_gap_started(&mut self, now: Duration) {
        self.gap_since.get_or_insert(now);
    }

    /// The store is back at `now`: every online device gets a full TTL from now.
    pub fn telemetry_gap_ended(&mut self, now: Duration) {
        if self.gap_since.take().is_none() {
            return;
        }
        let deadline = now + self.ttl;
        self.deadlines.clear();
        for (key, entry) in &mut self.entries {
            if !entry.lost {
                entry.deadline = entry.deadline.max(deadline);
                self.deadlines.insert((entry.deadline, *key));
            }
        }
    }

    /// Start of the open telemetry gap, if any.
    pub fn gap_since(&self) -> Option<Duration> {
        self.gap_since
    }

    /// The device's state.
    pub fn state(&self, key: LivenessKey) -> LivenessState {
        match self.entries.get(&key) {
            None => LivenessState::Unknown,
            Some(e) if e.lost => LivenessState::Lost,
            Some(_) => LivenessState::Online,
        }
    }

    /// Drops a device (its session ended or it was unpaired); it becomes Unknown.
    pub fn forget(&mut self, key: LivenessKey) {
        if let Some(entry) = self.entries.remove(&key) {
            if !entry.lost {
                self.deadlines.remove(&(entry.deadline, key));
            }
        }
    }

    /// Drops both devices of a session.
    pub fn forget_session(&mut self, session_id: SessionId) {
        for device in [Device::Laptop, Device::Mobile] {
            self.forget(LivenessKey { session_id, device });
        }
    }

    /// Number of devices tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no device is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const S: Duration = Duration::from_secs(1);

    fn key(n: u128, device: Device) -> LivenessKey {
        LivenessKey {
            session_id: SessionId::from(Uuid::from_u128(n)),
            device,
        }
    }

    fn live() -> Liveness {
        Liveness::with_heartbeat_interval(5 * S)
    }

    #[test]
    fn first_heartbeat_brings_a_device_online() {
        let mut l = live();
        let k = key(1, Device::Laptop);
        assert_eq!(l.state(k), LivenessState::Unknown);
        assert_eq!(l.on_heartbeat(k, S), Some(LivenessChange::Online(k)));
        assert_eq!(l.state(k), LivenessState::Online);
        assert_eq!(l.on_heartbeat(k, 2 * S), None);
        assert_eq!(l.ttl(), 15 * S);
    }

    #[test]
    fn lost_strictly_after_the_ttl_and_reconnected_on_the_next_heartbeat() {
        let mut l = live();
        let k = key(1, Device::Mobile);
        l.on_heartbeat(k, 10 * S);
        assert!(
            l.poll(25 * S).is_empty(),
            "exactly at last + ttl is still online"
        );
        assert_eq!(l.next_deadline(), Some(25 * S + Duration::from_nanos(1)));
        assert_eq!(
            l.poll(25 * S + Duration::from_nanos(1)),
            vec![LivenessChange::Lost(k)]
        );
        assert_eq!(l.state(k), LivenessState::Lost);
        assert!(l.poll(100 * S).is_empty(), "lost is reported once");
        assert_eq!(l.next_deadline(), None);
        assert_eq!(
            l.on_heartbeat(k, 101 * S),
            Some(LivenessChange::Reconnected(k))
        );
        assert_eq!(l.state(k), LivenessState::Online);
        assert_eq!(l.next_deadline(), Some(116 * S + Duration::from_nanos(1)));
    }

    #[test]
    fn heartbeats_keep_pushing_the_deadline() {
        let mut l = live();
        let k = key(1, Device::Laptop);
        for t in 0..100 {
            l.on_heartbeat(k, t * 5 * S);
            assert!(l.poll(t * 5 * S + 4 * S).is_empty());
        }
        assert_eq!(l.deadlines.len(), 1, "one index entry per device");
    }

    #[test]
    fn deadlines_are_ordered_across_devices() {
        let mut l = live();
        let (a, b, c) = (
            key(1, Device::Laptop),
            key(1, Device::Mobile),
            key(2, Device::Laptop),
        );
        l.on_heartbeat(a, Duration::ZERO);
        l.on_heartbeat(b, 3 * S);
        l.on_heartbeat(c, 6 * S);
        assert_eq!(
            l.poll(19 * S),
            vec![LivenessChange::Lost(a), LivenessChange::Lost(b)]
        );
        assert_eq!(l.next_deadline(), Some(21 * S + Duration::from_nanos(1)));
        assert_eq!(l.poll(30 * S), vec![LivenessChange::Lost(c)]);
    }

    #[test]
    fn no_loss_during_a_telemetry_gap_and_a_full_ttl_after_it() {
        let mut l = live();
        let (a, b) = (key(1, Device::Laptop), key(2, Device::Laptop));
        l.on_heartbeat(a, Duration::ZERO);
        l.on_heartbeat(b, Duration::ZERO);
        // Control: without a gap both are lost at 16 s.
        assert_eq!(l.clone().poll(16 * S).len(), 2);
        let mut l = live();
        l.on_heartbeat(a, Duration::ZERO);
        l.on_heartbeat(b, Duration::ZERO);
        l.telemetry_gap_started(10 * S);
        l.telemetry_gap_started(12 * S);
        assert_eq!(l.gap_since(), Some(10 * S));
        assert_eq!(l.next_deadline(), None);
        assert!(l.poll(60 * S).is_empty());
        assert_eq!(l.state(a), LivenessState::Online);
        l.telemetry_gap_ended(100 * S);
        assert_eq!(l.next_deadline(), Some(115 * S + Duration::from_nanos(1)));
        assert!(l.poll(115 * S).is_empty());
        l.on_heartbeat(a, 110 * S);
        let lost = l.poll(116 * S);
        assert_eq!(lost, vec![LivenessChange::Lost(b)]);
        assert_eq!(l.poll(126 * S), vec![LivenessChange::Lost(a)]);
    }

    #[test]
    fn a_device_lost_before_the_gap_stays_lost() {
        let mut l = live();
        let k = key(1, Device::Mobile);
        l.on_heartbeat(k, Duration::ZERO);
        assert_eq!(l.poll(20 * S).len(), 1);
        l.telemetry_gap_started(21 * S);
        l.telemetry_gap_ended(30 * S);
        assert_eq!(l.state(k), LivenessState::Lost);
        assert_eq!(l.next_deadline(), None);
        l.telemetry_gap_ended(31 * S);
    }

    #[test]
    fn forget_removes_state_and_deadlines() {
        let mut l = live();
        let s = SessionId::from(Uuid::from_u128(7));
        let (laptop, phone) = (key(7, Device::Laptop), key(7, Device::Mobile));
        l.on_heartbeat(laptop, Duration::ZERO);
        l.on_heartbeat(phone, Duration::ZERO);
        l.poll(16 * S);
        l.on_heartbeat(laptop, 17 * S);
        l.forget_session(s);
        assert!(l.is_empty());
        assert_eq!(l.next_deadline(), None);
        assert_eq!(l.state(phone), LivenessState::Unknown);
        assert_eq!(
            l.on_heartbeat(phone, 20 * S),
            Some(LivenessChange::Online(phone))
        );
        l.forget(phone);
        l.forget(phone);
        assert_eq!(l.len(), 0);
    }
}
