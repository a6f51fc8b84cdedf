//! All rooms of one hub process (or one shard), with a reverse index from peers to rooms.

use std::collections::HashMap;

use crate::error::RoomError;
use crate::id::{PeerId, RoomId};
use crate::role::Principal;
use crate::room::{Joined, Member, Presence, Room, RoomInfo};

/// The room registry: a plain struct with exactly one owner.
///
/// It is neither `Arc`-shared nor locked: the server gives it to one actor task (or shards rooms
/// by `RoomId` across a few tasks) and sends it commands over a channel; each command returns the
/// [`Presence`] notifications and replacements for the server to deliver. Empty rooms are removed
/// as soon as their last member leaves, so the registry holds nothing for idle rooms.
#[derive(Debug, Default)]
pub struct Rooms {
    /// Rooms with at least one member.
    rooms: HashMap<RoomId, Room>,
    /// For each peer, the rooms it is in (a proctor may be in many; a device in one).
    peers: HashMap<PeerId, Vec<RoomId>>,
}

impl Rooms {
    /// An empty registry.
    pub fn new() -> Self {
        Rooms::default()
    }

    /// `peer` (authenticated as `principal`) joins the room described by `info`, creating it if
    /// needed. If the join displaces an older candidate or phone connection, that peer is removed
    /// from the room and named in [`Joined::replaced`].
    pub fn join(
        &mut self,
        peer: PeerId,
        principal: &Principal,
        info: RoomInfo,
    ) -> Result<Joined, RoomError> {
        let room = match self.rooms.get_mut(&info.room_id) {
            Some(room) if *room.info() != info => {
                return Err(RoomError::RoomInfoMismatch(info.room_id))
            }
            Some(room) => room,
            None => {
                // Check before inserting so a refused join leaves no empty room behind.
                Room::new(info).admits(principal)?;
                self.rooms
                    .entry(info.room_id)
                    .or_insert_with(|| Room::new(info))
            }
        };
        let joined = room.join(peer, principal)?;
        if let Some(old) = joined.replaced {
            self.unindex(old, info.room_id);
        }
        let rooms = self.peers.entry(peer).or_default();
        if !rooms.contains(&info.room_id) {
            rooms.push(info.room_id);
        }
        Ok(joined)
    }

    /// `peer` leaves one room; returns the `peer-left` notification, if anyone remains.
    pub fn leave(&mut self, peer: PeerId, room_id: RoomId) -> Result<Option<Presence>, RoomError> {
        let room = self
            .rooms
            .get_mut(&room_id)
            .filter(|r| r.contains(peer))
            .ok_or(RoomError::NotInRoom(room_id))?;
        let presence = room.leave(peer);
        if room.is_empty() {
            self.rooms.remove(&room_id);
        }
        self.unindex(peer, room_id);
        Ok(presence)
    }

    /// `peer` disconnected: it leaves every room; returns all `peer-left` notifications.
    pub fn leave_all(&mut self, peer: PeerId) -> Vec<Presence> {
        let Some(room_ids) = self.peers.remove(&peer) else {
            return Vec::new();
        };
        let mut presence = Vec::new();
        for room_id in room_ids {
            if let Some(room) = self.rooms.get_mut(&room_id) {
                presence.extend(room.leave(peer));
                if room.is_empty() {
                    self.rooms.remove(&room_id);
                }
            }
        }
        presence
    }

    fn unindex(&mut self, peer: PeerId, room_id: RoomId) {
        if let Some(rooms) = self.peers.get_mut(&peer) {
            rooms.retain(|r| *r != room_id);
            if rooms.is_empty() {
                self.peers.remove(&peer);
            }
        }
    }

    /// The room, if it has members.
    pub fn room(&self, room_id: RoomId) -> Option<&Room> {
        self.rooms.get(&room_id)
    }

    /// The room's members (empty if the room does not exist).
    pub fn members(&self, room_id: RoomId) -> &[Member] {
        self.rooms.get(&room_id).map_or(&[], Room::members)
    }

    /// The rooms `peer` is in.
    pub fn rooms_of(&self, peer: PeerId) -> &[RoomId] {
        self.peers.get(&peer).map_or(&[], Vec::as_slice)
    }

    /// Checks that `from` may signal `to` in `room_id`; returns the target member.
    /// A sender outside the room gets [`RoomError::NotInRoom`] (the server closes with 4507).
    pub fn check_signal(
        &self,
        from: PeerId,
        room_id: RoomId,
        to: PeerId,
    ) -> Result<&Member, RoomError> {
        self.rooms
            .get(&room_id)
            .ok_or(RoomError::NotInRoom(room_id))?
            .check_signal(from, to)
    }

    /// Number of rooms with members.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Number of peers in at least one room.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Whether no room has members (the leak check of tests).
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty() && self.peers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Role;
    use crate::room::PresenceEvent;
    use uuid::Uuid;

    fn id<T: From<Uuid>>(n: u128) -> T {
        T::from(Uuid::from_u128(n))
    }

    fn info(n: u128) -> RoomInfo {
        RoomInfo {
            room_id: id(1000 + n),
            session_id: id(2000 + n),
            exam_id: id(3000),
            candidate_id: id(4000 + n),
        }
    }

    fn candidate(n: u128) -> Principal {
        Principal::new(id(4000 + n), Role::Candidate, Some(id(2000 + n))).expect("valid")
    }

    fn mobile(n: u128) -> Principal {
        Principal::new(id(4000 + n), Role::Mobile, Some(id(2000 + n))).expect("valid")
    }

    fn proctor(n: u128) -> Principal {
        Principal::new(id(5000 + n), Role::Proctor, None).expect("valid")
    }

    fn peer(n: u128) -> PeerId {
        id(n)
    }

    #[test]
    fn join_lists_others_and_notifies_them() {
        let mut rooms = Rooms::new();
        let first = rooms
            .join(peer(1), &candidate(1), info(1))
            .expect("own room");
        assert!(first.peers.is_empty() && first.presence.is_empty() && first.replaced.is_none());
        let second = rooms.join(peer(2), &proctor(1), info(1)).expect("staff");
        assert_eq!(second.peers.len(), 1);
        assert_eq!(second.peers[0].peer_id, peer(1));
        assert_eq!(second.presence.len(), 1);
        assert_eq!(second.presence[0].recipients, vec![peer(1)]);
        let PresenceEvent::PeerJoined { member, .. } = second.presence[0].event else {
            panic!("expected peer-joined")
        };
        assert_eq!((member.peer_id, member.role), (peer(2), Role::Proctor));
        assert_eq!(rooms.members(info(1).room_id).len(), 2);
    }

    #[test]
    fn devices_join_only_their_own_session() {
        let mut rooms = Rooms::new();
        assert_eq!(
            rooms.join(peer(1), &candidate(2), info(1)).map(|_| ()),
            Err(RoomError::NotYourRoom(info(1).room_id))
        );
        assert!(rooms.join(peer(1), &mobile(2), info(1)).is_err());
        // Same session but another user's laptop token.
        let intruder = Principal::new(id(9999), Role::Candidate, Some(id(2001))).expect("valid");
        assert!(rooms.join(peer(1), &intruder, info(1)).is_err());
        assert!(rooms.is_empty(), "a refused join leaves no room behind");
        assert!(rooms.join(peer(1), &mobile(1), info(1)).is_ok());
    }

    #[test]
    fn second_candidate_replaces_the_first() {
        let mut rooms = Rooms::new();
        rooms.join(peer(1), &candidate(1), info(1)).expect("join");
        rooms.join(peer(2), &proctor(1), info(1)).expect("join");
        rooms.join(peer(3), &mobile(1), info(1)).expect("join");
        let again = rooms.join(peer(4), &candidate(1), info(1)).expect("join");
        assert_eq!(again.replaced, Some(peer(1)));
        assert_eq!(again.presence.len(), 2);
        assert!(
            matches!(again.presence[0].event, PresenceEvent::PeerLeft { peer_id, .. } if peer_id == peer(1))
        );
        assert_eq!(again.presence[1].recipients, vec![peer(2), peer(3)]);
        assert!(rooms.rooms_of(peer(1)).is_empty());
        assert_eq!(rooms.members(info(1).room_id).len(), 3);
        // The old connection's cleanup finds nothing left to do.
        assert!(rooms.leave_all(peer(1)).is_empty());
        // A second phone replaces the first phone, not the laptop.
        let phone = rooms.join(peer(5), &mobile(1), info(1)).expect("join");
        assert_eq!(phone.replaced, Some(peer(3)));
    }

    #[test]
    fn rejoin_is_idempotent() {
        let mut rooms = Rooms::new();
        rooms.join(peer(1), &candidate(1), info(1)).expect("join");
        rooms.join(peer(2), &proctor(1), info(1)).expect("join");
        let again = rooms.join(peer(2), &proctor(1), info(1)).expect("join");
        assert!(again.presence.is_empty() && again.replaced.is_none());
        assert_eq!(again.peers.len(), 1);
        assert_eq!(rooms.rooms_of(peer(2)), &[info(1).room_id]);
    }

    #[test]
    fn room_info_must_match() {
        let mut rooms = Rooms::new();
        rooms.join(peer(1), &candidate(1), info(1)).expect("join");
        let mut other = info(1);
        other.session_id = id(7);
        assert_eq!(
            rooms.join(peer(2), &proctor(1), other).map(|_| ()),
            Err(RoomError::RoomInfoMismatch(other.room_id))
        );
    }

    #[test]
    fn leave_notifies_and_removes_empty_rooms() {
        let mut rooms = Rooms::new();
        rooms.join(peer(1), &candidate(1), info(1)).expect("join");
        rooms.join(peer(2), &proctor(1), info(1)).expect("join");
        let left = rooms.leave(peer(1), info(1).room_id).expect("member");
        let left = left.expect("someone remains");
        assert_eq!(left.recipients, vec![peer(2)]);
        assert_eq!(
            rooms.leave(peer(1), info(1).room_id),
            Err(RoomError::NotInRoom(info(1).room_id))
        );
        assert_eq!(rooms.leave(peer(2), info(1).room_id), Ok(None));
        assert!(rooms.is_empty());
    }

    #[test]
    fn leave_all_covers_every_room_of_a_proctor() {
        let mut rooms = Rooms::new();
        for n in 1..=5 {
            rooms.join(peer(n), &candidate(n), info(n)).expect("join");
            rooms.join(peer(100), &proctor(1), info(n)).expect("join");
        }
        assert_eq!(rooms.rooms_of(peer(100)).len(), 5);
        let presence = rooms.leave_all(peer(100));
        assert_eq!(presence.len(), 5);
        assert_eq!(rooms.room_count(), 5);
        assert_eq!(rooms.peer_count(), 5);
    }

    #[test]
    fn signal_rules() {
        let mut rooms = Rooms::new();
        let room = info(1).room_id;
        rooms.join(peer(1), &candidate(1), info(1)).expect("join");
        rooms.join(peer(2), &mobile(1), info(1)).expect("join");
        rooms.join(peer(3), &proctor(1), info(1)).expect("join");
        rooms.join(peer(4), &proctor(2), info(1)).expect("join");
        assert!(rooms.check_signal(peer(1), room, peer(3)).is_ok());
        assert!(rooms.check_signal(peer(3), room, peer(2)).is_ok());
        assert!(rooms.check_signal(peer(1), room, peer(2)).is_ok());
        assert_eq!(
            rooms.check_signal(peer(1), room, peer(1)).map(|_| ()),
            Err(RoomError::SignalToSelf)
        );
        let e = rooms
            .check_signal(peer(3), room, peer(4))
            .map(|_| ())
            .expect_err("staff");
        assert!(e.is_forbidden());
        let e = rooms
            .check_signal(peer(9), room, peer(1))
            .map(|_| ())
            .expect_err("outsider");
        assert_eq!(e, RoomError::NotInRoom(room));
        assert!(e.is_forbidden());
        let e = rooms
            .check_signal(peer(1), room, peer(9))
            .map(|_| ())
            .expect_err("gone");
        assert_eq!(e.code(), "PEER_NOT_FOUND");
        assert!(!e.is_forbidden());
        assert!(rooms
            .check_signal(peer(1), info(2).room_id, peer(3))
            .is_err());
    }

    #[test]
    fn a_thousand_join_leave_cycles_leave_nothing_behind() {
        let mut rooms = Rooms::new();
        for cycle in 0..1000u128 {
            let n = cycle % 7;
            rooms
                .join(peer(10 + cycle), &candidate(n), info(n))
                .expect("join");
            rooms
                .join(peer(5000 + cycle), &mobile(n), info(n))
                .expect("join");
            rooms.join(peer(9000), &proctor(1), info(n)).expect("join");
            if cycle % 2 == 0 {
                rooms
                    .leave(peer(10 + cycle), info(n).room_id)
                    .expect("member");
                rooms.leave_all(peer(5000 + cycle));
            } else {
                rooms.leave_all(peer(10 + cycle));
                rooms
                    .leave(peer(5000 + cycle), info(n).room_id)
                    .expect("member");
            }
            rooms.leave(peer(9000), info(n).room_id).expect("member");
        }
        assert!(rooms.is_empty());
        assert_eq!((rooms.room_count(), rooms.peer_count()), (0, 0));
        assert!(rooms.rooms.capacity() < 64 && rooms.peers.capacity() < 64);
    }
}
