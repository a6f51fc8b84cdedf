//! Device liveness per (session, device), sans-IO: heartbeats and `now` come in as arguments,
//! changes come out. A device is lost when silent for longer than the TTL (3 heartbeat
//! intervals). While the heartbeat store is unreachable (a telemetry gap) no loss is reported,
//! and when it recovers every deadline restarts, so an outage is never read as cheating.

use std::collections::HashMap;
use std::time::Duration;

use signaling::DeviceState;
use tokio::time::Instant;
use uuid::Uuid;

/// Which device of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// The candidate's laptop (role CANDIDATE).
    Laptop,
    /// The paired phone (role MOBILE).
    Mobile,
}

impl Device {
    /// `laptop` / `mobile`, as in Redis keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Laptop => "laptop",
            Device::Mobile => "mobile",
        }
    }

    /// The SYSTEM event recorded when this device goes silent.
    pub fn lost_event(self) -> &'static str {
        match self {
            Device::Laptop => "LAPTOP_HEARTBEAT_LOST",
            Device::Mobile => "MOBILE_HEARTBEAT_LOST",
        }
    }

    /// The SYSTEM event recorded when it comes back.
    pub fn reconnected_event(self) -> &'static str {
        match self {
            Device::Laptop => "LAPTOP_RECONNECTED",
            Device::Mobile => "MOBILE_RECONNECTED",
        }
    }
}

/// A change of a device's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivenessChange {
    /// Silent past its deadline.
    Lost(Uuid, Device),
    /// Heartbeating; `true` when it was lost before (a reconnection).
    Online(Uuid, Device, bool),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    last: Instant,
    lost: bool,
}

/// Deadlines of every tracked device.
#[derive(Debug)]
pub struct LivenessTracker {
    ttl: Duration,
    entries: HashMap<(Uuid, Device), Entry>,
    /// Set while the heartbeat store is unreachable.
    gap: bool,
}

impl LivenessTracker {
    /// Devices are lost after `ttl` of silence.
    pub fn new(ttl: Duration) -> Self {
        LivenessTracker {
            ttl,
            entries: HashMap::new(),
            gap: false,
        }
    }

    /// A heartbeat; returns a change when the device was unknown or lost.
    pub fn beat(&mut self, session: Uuid, device: Device, now: Instant) -> Option<LivenessChange> {
        match self.entries.get_mut(&(session, device)) {
            Some(e) => {
                e.last = now;
                if e.lost {
                    e.lost = false;
                    Some(LivenessChange::Online(session, device, true))
                } else {
                    None
                }
            }
            None => {
                self.entries.insert(
                    (session, device),
                    Entry {
                        last: now,
                        lost: false,
                    },
                );
                Some(LivenessChange::Online(session, device, false))
            }
        }
    }

    /// Devices whose deadline passed (none during a telemetry gap).
    pub fn poll(&mut self, now: Instant) -> Vec<LivenessChange> {
        if self.gap {
            return Vec::new();
        }
        let ttl = self.ttl;
        let mut out = Vec::new();
        for ((session, device), e) in &mut self.entries {
            if !e.lost && now.saturating_duration_since(e.last) > ttl {
                e.lost = true;
                out.push(LivenessChange::Lost(*session, *device));
            }
        }
        out
    }

    /// The heartbeat store became unreachable; returns the sessions affected (once per gap).
    pub fn gap_started(&mut self) -> Vec<Uuid> {
        if self.gap {
            return Vec::new();
        }
        self.gap = true;
        let mut sessions: Vec<Uuid> = self.entries.keys().map(|(s, _)| *s).collect();
        sessions.sort();
        sessions.dedup();
        sessions
    }

    /// The store is back: deadlines restart from `now`.
    pub fn gap_ended(&mut self, now: Instant) {
        if !self.gap {
            return;
        }
        self.gap = false;
        for e in self.entries.values_mut() {
            if !e.lost {
                e.last = e.last.max(now);
            }
        }
    }

    /// Current state of a device.
    pub fn state(&self, session: Uuid, device: Device) -> DeviceState {
        match self.entries.get(&(session, device)) {
            None => DeviceState::Unknown,
            Some(e) if e.lost => DeviceState::Lost,
            Some(_) => DeviceState::Online,
        }
    }

    /// Stops tracking a session (it ended).
    pub fn forget(&mut self, session: Uuid) {
        self.entries.retain(|(s, _), _| *s != session);
    }

    /// Number of tracked devices.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_after_ttl_then_reconnected() {
        let ttl = Duration::from_secs(15);
        let mut t = LivenessTracker::new(ttl);
        let s = Uuid::new_v4();
        let t0 = Instant::now();
        assert_eq!(
            t.beat(s, Device::Laptop, t0),
            Some(LivenessChange::Online(s, Device::Laptop, false))
        );
        assert_eq!(t.beat(s, Device::Laptop, t0 + Duration::from_secs(5)), None);
        assert!(
            t.poll(t0 + Duration::from_secs(20)).is_empty(),
            "15 s since the last beat is not past"
        );
        assert_eq!(
            t.poll(t0 + Duration::from_secs(21)),
            vec![LivenessChange::Lost(s, Device::Laptop)]
        );
        assert!(
            t.poll(t0 + Duration::from_secs(30)).is_empty(),
            "reported once"
        );
        assert_eq!(t.state(s, Device::Laptop), DeviceState::Lost);
        assert_eq!(
            t.beat(s, Device::Laptop, t0 + Duration::from_secs(31)),
            Some(LivenessChange::Online(s, Device::Laptop, true))
        );
        assert_eq!(t.state(s, Device::Mobile), DeviceState::Unknown);
    }

    #[test]
    fn telemetry_gap_suppresses_losses_and_restarts_deadlines() {
        let mut t = LivenessTracker::new(Duration::from_secs(15));
        let s = Uuid::new_v4();
        let t0 = Instant::now();
        t.beat(s, Device::Mobile, t0);
        assert_eq!(t.gap_started(), vec![s]);
        assert!(t.gap_started().is_empty(), "one report per gap");
        assert!(t.poll(t0 + Duration::from_secs(60)).is_empty());
        t.gap_ended(t0 + Duration::from_secs(60));
        assert!(
            t.poll(t0 + Duration::from_secs(74)).is_empty(),
            "a full TTL after recovery"
        );
        assert_eq!(
            t.poll(t0 + Duration::from_secs(76)),
            vec![LivenessChange::Lost(s, Device::Mobile)]
        );
        t.forget(s);
        assert!(t.is_empty());
    }
}
