//! Who may do what in a group: pure rules, no database.
use chrono::{DateTime, Utc};

use crate::domain::{DomainError, DomainResult};

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(raw: &str) -> DomainResult<Role> {
        match raw {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(DomainError::InvalidGroup(
                "role must be \"admin\", \"member\" or \"owner\"".into(),
            )),
        }
    }
}

fn forbidden(what: &str) -> DomainError {
    DomainError::Forbidden(what.to_owned())
}

/// Renaming, describing and adding members: owner and admins.
pub fn may_manage(actor: Role) -> DomainResult<()> {
    match actor {
        Role::Owner | Role::Admin => Ok(()),
        Role::Member => Err(forbidden("only the owner and admins can change the group")),
    }
}

/// Removing `target` (not oneself: that is leaving): the owner removes anyone, an admin
/// removes plain members only.
pub fn may_remove(actor: Role, target: Role) -> DomainResult<()> {
    match (actor, target) {
        (Role::Owner, _) => Ok(()),
        (Role::Admin, Role::Member) => Ok(()),
        (Role::Admin, _) => Err(forbidden("admins cannot remove the owner or another admin")),
        (Role::Member, _) => Err(forbidden("only the owner and admins can remove members")),
    }
}

/// Changing roles, ownership included, is the owner's alone.
pub fn may_change_roles(actor: Role) -> DomainResult<()> {
    match actor {
        Role::Owner => Ok(()),
        _ => Err(forbidden("only the owner can change roles")),
    }
}

/// A current member, as the succession rule sees them.
#[derive(Debug, Clone)]
pub struct Standing {
    pub user_id: i64,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// Who becomes owner when `leaving` (the owner) goes: the longest-standing admin, else
/// the longest-standing member; ties go to the lower user id. None if nobody is left.
pub fn successor(members: &[Standing], leaving: i64) -> Option<i64> {
    members
        .iter()
        .filter(|m| m.user_id != leaving)
        .min_by_key(|m| (m.role != Role::Admin, m.joined_at, m.user_id))
        .map(|m| m.user_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn managing_needs_owner_or_admin() {
        assert!(may_manage(Role::Owner).is_ok());
        assert!(may_manage(Role::Admin).is_ok());
        assert!(matches!(may_manage(Role::Member), Err(DomainError::Forbidden(_))));
    }

    #[test]
    fn removal_follows_rank() {
        assert!(may_remove(Role::Owner, Role::Admin).is_ok());
        assert!(may_remove(Role::Owner, Role::Member).is_ok());
        assert!(may_remove(Role::Admin, Role::Member).is_ok());
        assert!(may_remove(Role::Admin, Role::Admin).is_err());
        assert!(may_remove(Role::Admin, Role::Owner).is_err());
        assert!(may_remove(Role::Member, Role::Member).is_err());
    }

    #[test]
    fn only_the_owner_changes_roles() {
        assert!(may_change_roles(Role::Owner).is_ok());
        assert!(may_change_roles(Role::Admin).is_err());
        assert!(may_change_roles(Role::Member).is_err());
    }

    #[test]
    fn roles_parse_strictly() {
        assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
        assert!(matches!(Role::parse("Admin"), Err(DomainError::InvalidGroup(_))));
        assert!(Role::parse("superuser").is_err());
    }

    #[test]
    fn succession_prefers_the_longest_standing_admin_then_member() {
        let members = vec![
            Standing {
                user_id: 1,
                role: Role::Owner,
                joined_at: at(0),
            },
            Standing {
                user_id: 5,
                role: Role::Member,
                joined_at: at(1),
            },
            Standing {
                user_id: 4,
                role: Role::Admin,
                joined_at: at(3),
            },
            Standing {
                user_id: 3,
                role: Role::Admin,
                joined_at: at(2),
            },
        ];
        assert_eq!(successor(&members, 1), Some(3));
        let no_admins = vec![
            Standing {
                user_id: 1,
                role: Role::Owner,
                joined_at: at(0),
            },
            Standing {
                user_id: 9,
                role: Role::Member,
                joined_at: at(2),
            },
            Standing {
                user_id: 8,
                role: Role::Member,
                joined_at: at(2),
            },
            Standing {
                user_id: 7,
                role: Role::Member,
                joined_at: at(5),
            },
        ];
        assert_eq!(successor(&no_admins, 1), Some(8), "a tie goes to the lower id");
        assert_eq!(
            successor(&no_admins[..1], 1),
            None,
            "the last member leaves nobody"
        );
    }
}
