//! One WebRTC room: its members, who may join, who may signal whom.

use crate::error::RoomError;
use crate::id::{ExamId, PeerId, RoomId, SessionId, UserId};
use crate::role::{Principal, Role};

/// The facts about a room that the server loads from the session (the room is the session's
/// `webrtcRoomId`); they decide who may join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoomInfo {
    /// The room.
    pub room_id: RoomId,
    /// The session the room belongs to.
    pub session_id: SessionId,
    /// The session's exam (staff visibility is checked by the server against it).
    pub exam_id: ExamId,
    /// The session's candidate: the only user whose laptop may join.
    pub candidate_id: UserId,
}

/// A member of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Member {
    /// The member's connection.
    pub peer_id: PeerId,
    /// The member's account.
    pub user_id: UserId,
    /// The member's role.
    pub role: Role,
}

/// A presence change and who must hear about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Every other member of the room at the time of the change.
    pub recipients: Vec<PeerId>,
    /// What happened.
    pub event: PresenceEvent,
}

/// What happened to a room's membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceEvent {
    /// `peer-joined`.
    PeerJoined {
        /// The room.
        room_id: RoomId,
        /// The newcomer.
        member: Member,
    },
    /// `peer-left`.
    PeerLeft {
        /// The room.
        room_id: RoomId,
        /// The peer that left.
        peer_id: PeerId,
    },
}

/// The result of a successful join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The room joined.
    pub room_id: RoomId,
    /// The other members, for the `peers` of `joined`.
    pub peers: Vec<Member>,
    /// An older connection of the same session and role that this join displaced: the server
    /// closes it with 4504 ("replaced").
    pub replaced: Option<PeerId>,
    /// Notifications to deliver, in order (`peer-left` of the replaced peer, then `peer-joined`).
    /// Empty when the peer was already a member (joining twice is idempotent).
    pub presence: Vec<Presence>,
}

/// One room's membership. Rooms are small (a laptop, a phone and a few proctors), so members
/// live in a `Vec` in join order.
#[derive(Debug, Clone)]
pub struct Room {
    /// Who the room belongs to.
    info: RoomInfo,
    /// Members in join order.
    members: Vec<Member>,
}

impl Room {
    /// An empty room.
    pub fn new(info: RoomInfo) -> Self {
        Room {
            info,
            members: Vec::new(),
        }
    }

    /// The room's facts.
    pub fn info(&self) -> &RoomInfo {
        &self.info
    }

    /// The members, in join order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member with this peer id.
    pub fn member(&self, peer: PeerId) -> Option<&Member> {
        self.members.iter().find(|m| m.peer_id == peer)
    }

    /// Whether `peer` is a member.
    pub fn contains(&self, peer: PeerId) -> bool {
        self.member(peer).is_some()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the room has no members (the registry then drops it).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every member except `except`: the recipients of a broadcast.
    pub fn others(&self, except: PeerId) -> Vec<PeerId> {
        self.members
            .iter()
            .filter(|m| m.peer_id != except)
            .map(|m| m.peer_id)
            .collect()
    }

    /// The join rule: a candidate only into its own session's room (and only the session's
    /// candidate), a phone only into its session's room, staff into any room (the server has
    /// already checked that they can see the exam).
    pub fn admits(&self, principal: &Principal) -> Result<(), RoomError> {
        let own_session = principal.session_id() == Some(self.info.session_id);
        let ok = match principal.role() {
            Role::Candidate => own_session && principal.user_id() == self.info.candidate_id,
            Role::Mobile => own_session,
            Role::Proctor | Role::Admin => true,
        };
        if ok {
            Ok(())
        } else {
            Err(RoomError::NotYourRoom(self.info.room_id))
        }
    }

    /// Adds `peer`. A second candidate or phone replaces the first (see [`Joined::replaced`]).
    pub fn join(&mut self, peer: PeerId, principal: &Principal) -> Result<Joined, RoomError> {
        self.admits(principal)?;
        let room_id = self.info.room_id;
        if self.contains(peer) {
            return Ok(Joined {
                room_id,
                peers: self.others_as_members(peer),
                replaced: None,
                presence: Vec::new(),
            });
        }
        let mut presence = Vec::new();
        let mut replaced = None;
        if principal.role().is_device() {
            // The session is fixed by the room, so "same session and role" is "same role" here.
            if let Some(old) = self.members.iter().find(|m| m.role == principal.role()) {
                let old = old.peer_id;
                presence.extend(self.leave(old));
                replaced = Some(old);
            }
        }
        let member = Member {
            peer_id: peer,
            user_id: principal.user_id(),
            role: principal.role(),
        };
        let peers = self.members.clone();
        if !peers.is_empty() {
            presence.push(Presence {
                recipients: peers.iter().map(|m| m.peer_id).collect(),
                event: PresenceEvent::PeerJoined { room_id, member },
            });
        }
        self.members.push(member);
        Ok(Joined {
            room_id,
            peers,
            replaced,
            presence,
        })
    }

    fn others_as_members(&self, except: PeerId) -> Vec<Member> {
        self.members
            .iter()
            .filter(|m| m.peer_id != except)
            .copied()
            .collect()
    }

    /// Removes `peer`; returns the `peer-left` for the remaining members, or `None` if `peer`
    /// was not a member (or nobody is left to tell).
    pub fn leave(&mut self, peer: PeerId) -> Option<Presence> {
        let index = self.members.iter().position(|m| m.peer_id == peer)?;
        self.members.remove(index);
        if self.members.is_empty() {
            return None;
        }
        Some(Presence {
            recipients: self.members.iter().map(|m| m.peer_id).collect(),
            event: PresenceEvent::PeerLeft {
                room_id: self.info.room_id,
                peer_id: peer,
            },
        })
    }

    /// Checks that `from` may send a signal to `to` in this room; returns the target.
    pub fn check_signal(&self, from: PeerId, to: PeerId) -> Result<&Member, RoomError> {
        let sender = self
            .member(from)
            .ok_or(RoomError::NotInRoom(self.info.room_id))?;
        if from == to {
            return Err(RoomError::SignalToSelf);
        }
        let target = self.member(to).ok_or(RoomError::PeerNotInRoom(to))?;
        if sender.role.may_signal(target.role) {
            Ok(target)
        } else {
            Err(RoomError::SignalNotAllowed {
                from: sender.role,
                to: target.role,
            })
        }
    }
}
