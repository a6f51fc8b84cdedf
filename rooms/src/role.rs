//! Roles and the authenticated principal.

use std::fmt;
use std::str::FromStr;

use crate::error::RoomError;
use crate::id::{SessionId, UserId};
use crate::liveness::Device;

/// Who is on the other end of a connection.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// The candidate's laptop.
    Candidate,
    /// The candidate's paired phone (a MOBILE token scoped to one session).
    Mobile,
    /// A proctor: watches, warns, terminates.
    Proctor,
    /// An administrator: everything a proctor can, and more.
    Admin,
}

impl Role {
    /// The contract's name: `CANDIDATE`, `MOBILE`, `PROCTOR`, `ADMIN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Candidate => "CANDIDATE",
            Role::Mobile => "MOBILE",
            Role::Proctor => "PROCTOR",
            Role::Admin => "ADMIN",
        }
    }

    /// Candidate and phone: bound to one session, one live connection each.
    pub fn is_device(self) -> bool {
        matches!(self, Role::Candidate | Role::Mobile)
    }

    /// Proctor and admin: may join any room of an exam they can see.
    pub fn is_staff(self) -> bool {
        !self.is_device()
    }

    /// Which device's liveness this role reports, if any.
    pub fn device(self) -> Option<Device> {
        match self {
            Role::Candidate => Some(Device::Laptop),
            Role::Mobile => Some(Device::Mobile),
            Role::Proctor | Role::Admin => None,
        }
    }

    /// Whether a peer of this role may signal a peer of role `to`: laptop↔staff, phone↔staff and
    /// laptop↔phone. Staff never signal each other (they only watch).
    pub fn may_signal(self, to: Role) -> bool {
        match (self, to) {
            (Role::Candidate, Role::Mobile) | (Role::Mobile, Role::Candidate) => true,
            (a, b) => a.is_device() != b.is_device(),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RoomError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "CANDIDATE" => Ok(Role::Candidate),
            "MOBILE" => Ok(Role::Mobile),
            "PROCTOR" => Ok(Role::Proctor),
            "ADMIN" => Ok(Role::Admin),
            other => Err(RoomError::UnknownRole(other.chars().take(32).collect())),
        }
    }
}

/// An authenticated user as the room logic sees it. Built only through [`Principal::new`], so a
/// candidate or phone always has its session and staff never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The account.
    user_id: UserId,
    /// The role from the access token.
    role: Role,
    /// For candidate and phone: the session the token is bound to.
    session_id: Option<SessionId>,
}

impl Principal {
    /// Checks that devices have a session and staff have none.
    pub fn new(
        user_id: UserId,
        role: Role,
        session_id: Option<SessionId>,
    ) -> Result<Self, RoomError> {
        match (role.is_device(), session_id.is_some()) {
            (true, false) => Err(RoomError::InvalidPrincipal(role, "have a session")),
            (false, true) => Err(RoomError::InvalidPrincipal(role, "not have a session")),
            _ => Ok(Principal {
                user_id,
                role,
                session_id,
            }),
        }
    }

    /// The account.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The bound session (candidate and phone only).
    pub fn session_id(&self) -> Option<SessionId> {
        self.session_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const ALL: [Role; 4] = [Role::Candidate, Role::Mobile, Role::Proctor, Role::Admin];

    #[test]
    fn names_roundtrip() {
        for r in ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("candidate".parse::<Role>().is_err());
    }

    #[test]
    fn signal_matrix() {
        use Role::*;
        let allowed = [
            (Candidate, Mobile),
            (Mobile, Candidate),
            (Candidate, Proctor),
            (Proctor, Candidate),
            (Candidate, Admin),
            (Admin, Candidate),
            (Mobile, Proctor),
            (Proctor, Mobile),
            (Mobile, Admin),
            (Admin, Mobile),
        ];
        for a in ALL {
            for b in ALL {
                assert_eq!(a.may_signal(b), allowed.contains(&(a, b)), "{a:?}->{b:?}");
            }
        }
    }

    #[test]
    fn principal_invariants() {
        let user = UserId::from(Uuid::from_u128(1));
        let session = Some(SessionId::from(Uuid::from_u128(2)));
        assert!(Principal::new(user, Role::Candidate, session).is_ok());
        assert!(Principal::new(user, Role::Mobile, None).is_err());
        assert!(Principal::new(user, Role::Proctor, session).is_err());
        assert!(Principal::new(user, Role::Admin, None).is_ok());
    }
}
