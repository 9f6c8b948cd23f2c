//! Group conversations: creation, metadata, members and roles.
//!
//! Every operation checks the caller's membership and role (missing group and
//! not-a-member are one error, so ids cannot be probed), commits, then announces what
//! happened through the message writer's queue, so a membership change never
//! overtakes a device's catch-up or a send queued before it.
pub mod roles;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::{
    DomainError, DomainResult,
    messaging::{Messaging, Outcome},
    receipts::Position,
    types::{GroupDescription, GroupName},
};
use crate::store::{self, groups::MemberRow, positions};
pub use roles::Role;
use roles::Standing;

/// What happened to a group, for its members' devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupChange {
    Created,
    MemberAdded,
    MemberRemoved,
    MemberLeft,
    RoleChanged,
    Updated,
}

/// One announcement about a group.
#[derive(Debug, Clone)]
pub struct GroupEvent {
    pub change: GroupChange,
    pub conversation_id: i64,
    pub actor_id: i64,
    pub user_id: Option<i64>,
    pub role: Option<Role>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Who hears of it: the current members and the affected user.
    pub audience: Vec<i64>,
    /// Users whose live devices join the group's room before the announcement.
    pub join: Vec<i64>,
    /// Users whose devices leave the group's room after it.
    pub leave: Vec<i64>,
}

impl GroupEvent {
    fn new(change: GroupChange, conversation_id: i64, actor_id: i64, audience: Vec<i64>) -> Self {
        GroupEvent {
            change,
            conversation_id,
            actor_id,
            user_id: None,
            role: None,
            name: None,
            description: None,
            audience,
            join: Vec::new(),
            leave: Vec::new(),
        }
    }
}

/// A group as its members see it.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub conversation_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<i64>,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: i64,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// The group service: the database, the writer's queue and the size limit.
#[derive(Clone)]
pub struct Groups {
    db: DatabaseConnection,
    messaging: Messaging,
    max_members: usize,
}

fn members_of(rows: Vec<MemberRow>) -> Vec<Member> {
    rows.into_iter()
        .map(|r| Member {
            user_id: r.user_id,
            role: Role::parse(&r.role).unwrap_or(Role::Member),
            joined_at: r.joined_at,
        })
        .collect()
}

fn role_of(members: &[Member], user: i64) -> DomainResult<Role> {
    members
        .iter()
        .find(|m| m.user_id == user)
        .map(|m| m.role)
        .ok_or(DomainError::ConversationNotFound)
}

fn ids(members: &[Member]) -> Vec<i64> {
    members.iter().map(|m| m.user_id).collect()
}

impl Groups {
    pub fn new(db: DatabaseConnection, messaging: Messaging, max_members: usize) -> Self {
        Groups {
            db,
            messaging,
            max_members,
        }
    }

    /// Creates a group; the creator is its owner.
    pub async fn create(
        &self,
        creator: i64,
        name: &str,
        description: Option<&str>,
        member_ids: &[i64],
    ) -> DomainResult<GroupView> {
        let name = GroupName::parse(name)?;
        let description = description.map(GroupDescription::parse).transpose()?;
        let mut others: Vec<i64> = member_ids.iter().copied().filter(|id| *id != creator).collect();
        others.sort_unstable();
        others.dedup();
        if others.len() + 1 > self.max_members {
            return Err(DomainError::TooManyMembers(self.max_members));
        }
        self.require_users(&others).await?;
        let mut members: Vec<(i64, &str)> = vec![(creator, Role::Owner.as_str())];
        members.extend(others.iter().map(|id| (*id, Role::Member.as_str())));
        let now = store::now();
        let txn = store::begin_write(&self.db).await?;
        let id = store::groups::create(
            &txn,
            creator,
            name.as_str(),
            description.as_ref().map(GroupDescription::as_str),
            &members,
            now,
        )
        .await?;
        txn.commit().await?;
        let view = self.view(creator, id).await?;
        let everyone = ids(&view.members);
        let mut event = GroupEvent::new(GroupChange::Created, id, creator, everyone.clone());
        event.name = Some(view.name.clone());
        event.description = view.description.clone();
        event.join = everyone;
        self.messaging.announce_in_order(Outcome::Group(event)).await;
        Ok(view)
    }

    /// The group, for one of its current members.
    pub async fn view(&self, caller: i64, group: i64) -> DomainResult<GroupView> {
        let row = store::groups::get(&self.db, group)
            .await?
            .filter(|g| g.closed_at.is_none())
            .ok_or(DomainError::ConversationNotFound)?;
        let members = members_of(store::groups::members(&self.db, group).await?);
        role_of(&members, caller)?;
        Ok(GroupView {
            conversation_id: row.id,
            name: row.name.unwrap_or_default(),
            description: row.description,
            created_at: row.created_at,
            created_by: row.created_by,
            members,
        })
    }

    /// Renames and/or re-describes the group (owner and admins); neither changes nothing.
    pub async fn update(
        &self,
        caller: i64,
        group: i64,
        name: Option<&str>,
        description: Option<&str>,
    ) -> DomainResult<GroupView> {
        let name = name.map(GroupName::parse).transpose()?;
        let description = description.map(GroupDescription::parse).transpose()?;
        if name.is_none() && description.is_none() {
            // Nothing to change (as in JSON merge patch, RFC 7396): the group as it is,
            // after the same checks a change gets, with no write and no event.
            let view = self.view(caller, group).await?;
            roles::may_manage(role_of(&view.members, caller)?)?;
            return Ok(view);
        }
        let txn = store::begin_write(&self.db).await?;
        let members = self.locked_members(&txn, group).await?;
        roles::may_manage(role_of(&members, caller)?)?;
        store::groups::update(
            &txn,
            group,
            name.as_ref().map(GroupName::as_str),
            description.as_ref().map(GroupDescription::as_str),
        )
        .await?;
        txn.commit().await?;
        let view = self.view(caller, group).await?;
        let mut event = GroupEvent::new(GroupChange::Updated, group, caller, ids(&view.members));
        event.name = Some(view.name.clone());
        event.description = view.description.clone();
        self.messaging.announce_in_order(Outcome::Group(event)).await;
        Ok(view)
    }

    /// Adds members (owner and admins); current members are skipped.
    pub async fn add_members(&self, caller: i64, group: i64, user_ids: &[i64]) -> DomainResult<GroupView> {
        let mut wanted: Vec<i64> = user_ids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        self.require_users(&wanted).await?;
        let now = store::now();
        let txn = store::begin_write(&self.db).await?;
        let members = self.locked_members(&txn, group).await?;
        roles::may_manage(role_of(&members, caller)?)?;
        let current = ids(&members);
        let added: Vec<i64> = wanted.into_iter().filter(|u| !current.contains(u)).collect();
        if current.len() + added.len() > self.max_members {
            return Err(DomainError::TooManyMembers(self.max_members));
        }
        for user in &added {
            store::groups::add_member(&txn, group, *user, now).await?;
        }
        txn.commit().await?;
        let view = self.view(caller, group).await?;
        for user in added {
            let mut event = GroupEvent::new(GroupChange::MemberAdded, group, caller, ids(&view.members));
            event.user_id = Some(user);
            event.role = Some(Role::Member);
            event.join = vec![user];
            self.messaging.announce_in_order(Outcome::Group(event)).await;
        }
        Ok(view)
    }

    /// Removes a member (owner: anyone; admins: plain members). Removing oneself is
    /// leaving, after which the caller sees no group: None.
    pub async fn remove_member(&self, caller: i64, group: i64, user: i64) -> DomainResult<Option<GroupView>> {
        if user == caller {
            self.leave(caller, group).await?;
            return Ok(None);
        }
        let now = store::now();
        let txn = store::begin_write(&self.db).await?;
        let members = self.locked_members(&txn, group).await?;
        let actor = role_of(&members, caller)?;
        let target = role_of(&members, user)?;
        roles::may_remove(actor, target)?;
        store::groups::set_left(&txn, group, user, now).await?;
        txn.commit().await?;
        let view = self.view(caller, group).await?;
        let mut audience = ids(&view.members);
        audience.push(user);
        let mut event = GroupEvent::new(GroupChange::MemberRemoved, group, caller, audience);
        event.user_id = Some(user);
        event.leave = vec![user];
        self.messaging.announce_in_order(Outcome::Group(event)).await;
        self.settle(group).await;
        Ok(Some(view))
    }

    /// Sets a member's role (owner only); `Owner` hands the group over, and the previous
    /// owner becomes an admin.
    pub async fn set_role(&self, caller: i64, group: i64, user: i64, role: Role) -> DomainResult<GroupView> {
        let txn = store::begin_write(&self.db).await?;
        let members = self.locked_members(&txn, group).await?;
        roles::may_change_roles(role_of(&members, caller)?)?;
        let current = role_of(&members, user)?;
        if user == caller {
            return Err(DomainError::InvalidGroup(
                "the owner hands over ownership by giving another member the owner role".into(),
            ));
        }
        let mut changes = Vec::new();
        if current != role {
            store::groups::set_role(&txn, group, user, role.as_str()).await?;
            changes.push((user, role));
            if role == Role::Owner {
                store::groups::set_role(&txn, group, caller, Role::Admin.as_str()).await?;
                changes.push((caller, Role::Admin));
            }
        }
        txn.commit().await?;
        let view = self.view(caller, group).await?;
        for (user, role) in changes {
            self.announce_role(group, caller, user, role, &view.members).await;
        }
        Ok(view)
    }

    /// Leaves the group. An owner's leaving passes ownership on; the last member's
    /// leaving closes the group.
    pub async fn leave(&self, caller: i64, group: i64) -> DomainResult<()> {
        let now = store::now();
        let txn = store::begin_write(&self.db).await?;
        let members = self.locked_members(&txn, group).await?;
        let role = role_of(&members, caller)?;
        store::groups::set_left(&txn, group, caller, now).await?;
        let heir = if role == Role::Owner {
            let standing: Vec<Standing> = members
                .iter()
                .map(|m| Standing {
                    user_id: m.user_id,
                    role: m.role,
                    joined_at: m.joined_at,
                })
                .collect();
            roles::successor(&standing, caller)
        } else {
            None
        };
        if let Some(heir) = heir {
            store::groups::set_role(&txn, group, heir, Role::Owner.as_str()).await?;
        }
        let remaining: Vec<Member> = members.into_iter().filter(|m| m.user_id != caller).collect();
        if remaining.is_empty() {
            store::groups::close(&txn, group, now).await?;
        }
        txn.commit().await?;
        let mut audience = ids(&remaining);
        audience.push(caller);
        let mut event = GroupEvent::new(GroupChange::MemberLeft, group, caller, audience);
        event.user_id = Some(caller);
        event.leave = vec![caller];
        self.messaging.announce_in_order(Outcome::Group(event)).await;
        if let Some(heir) = heir {
            self.announce_role(group, caller, heir, Role::Owner, &remaining)
                .await;
        }
        self.settle(group).await;
        Ok(())
    }

    async fn announce_role(&self, group: i64, actor: i64, user: i64, role: Role, members: &[Member]) {
        let mut event = GroupEvent::new(GroupChange::RoleChanged, group, actor, ids(members));
        event.user_id = Some(user);
        event.role = Some(role);
        self.messaging.announce_in_order(Outcome::Group(event)).await;
    }

    /// The current members of an open group, its row locked; not-found for a missing,
    /// closed or direct conversation.
    async fn locked_members<C: sea_orm::ConnectionTrait>(
        &self,
        txn: &C,
        group: i64,
    ) -> DomainResult<Vec<Member>> {
        if !store::groups::lock(txn, group).await? {
            return Err(DomainError::ConversationNotFound);
        }
        Ok(members_of(store::groups::members(txn, group).await?))
    }

    async fn require_users(&self, ids: &[i64]) -> DomainResult<()> {
        let found = store::users::existing_ids(&self.db, ids).await?;
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !found.contains(id))
            .map(i64::to_string)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DomainError::InvalidGroup(format!(
                "unknown user ids: {}",
                missing.join(", ")
            )))
        }
    }

    /// A member gone may have been the last one a message waited for.
    async fn settle(&self, group: i64) {
        let now = store::now();
        let settled = async {
            let txn = store::begin_write(&self.db).await?;
            positions::settle(&txn, Position::Read, &[group], now).await?;
            let delivered = positions::settle(&txn, Position::Delivered, &[group], now).await?;
            txn.commit().await?;
            anyhow::Ok(delivered)
        }
        .await;
        match settled {
            Ok(messages) if !messages.is_empty() => {
                self.messaging
                    .announce_in_order(Outcome::Delivered { messages, at: now })
                    .await
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, group, "receipts not settled after a member left"),
        }
    }
}
