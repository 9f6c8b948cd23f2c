//! Member positions: moving them forward, logging each move, and setting the
//! aggregate receipts on the messages every other member has now reached.
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::{stmt, values_list};
use crate::domain::receipts::{Floor, Position};

/// A member's position moving to `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Move {
    pub conversation_id: i64,
    pub user_id: i64,
    pub seq: i64,
}

/// A message whose aggregate receipt was just set.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Settled {
    pub id: i64,
    pub conversation_id: i64,
    pub sender_id: i64,
}

#[derive(FromQueryResult)]
struct MovedRow {
    conversation_id: i64,
    user_id: i64,
    kind: String,
}

/// Moves each current member's position forward (never back); logs and returns the
/// moves that happened. Rows are updated in key order, so concurrent writers that both
/// move positions cannot deadlock on each other's rows.
pub async fn advance<C: ConnectionTrait>(
    db: &C,
    position: Position,
    moves: &[Move],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Move>> {
    let mut moves: Vec<Move> = moves.to_vec();
    moves.sort_unstable();
    // Per member, only the furthest move counts.
    moves.dedup_by(|later, earlier| {
        if (later.conversation_id, later.user_id) == (earlier.conversation_id, earlier.user_id) {
            earlier.seq = earlier.seq.max(later.seq);
            true
        } else {
            false
        }
    });
    if moves.is_empty() {
        return Ok(Vec::new());
    }
    take_turns(db, &moves).await?;
    let column = position.column();
    let (tuples, values) = values_list(
        Vec::new(),
        moves.iter().map(|m| [m.conversation_id, m.user_id, m.seq]),
    );
    let moved = MovedRow::find_by_statement(stmt(
        db,
        &format!(
            "UPDATE conversation_members SET {column} = v.column3 \
             FROM (VALUES {tuples}) AS v \
             WHERE conversation_members.conversation_id = v.column1 AND conversation_members.user_id = v.column2 \
               AND conversation_members.{column} < v.column3 AND conversation_members.left_at IS NULL \
             RETURNING conversation_members.conversation_id, conversation_members.user_id, \
               (SELECT c.kind FROM conversations c WHERE c.id = conversation_members.conversation_id) AS kind"
        ),
        values,
    ))
    .all(db)
    .await?;
    // A direct chat has one other member, so its messages' own receipts already say
    // exactly when that member had (read) them: only group moves need the log.
    let in_groups: BTreeSet<(i64, i64)> = moved
        .iter()
        .filter(|r| r.kind == "group")
        .map(|r| (r.conversation_id, r.user_id))
        .collect();
    let moved: BTreeSet<(i64, i64)> = moved
        .into_iter()
        .map(|r| (r.conversation_id, r.user_id))
        .collect();
    let moves: Vec<Move> = moves
        .into_iter()
        .filter(|m| moved.contains(&(m.conversation_id, m.user_id)))
        .collect();
    let logged: Vec<Move> = moves
        .iter()
        .copied()
        .filter(|m| in_groups.contains(&(m.conversation_id, m.user_id)))
        .collect();
    log(db, position, &logged, now).await?;
    Ok(moves)
}

/// One row per move: when each member's position got where.
async fn log<C: ConnectionTrait>(
    db: &C,
    position: Position,
    moves: &[Move],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if moves.is_empty() {
        return Ok(());
    }
    // VALUES rows are (conversation, user, seq); kind and time are the same for all.
    let (tuples, values) = values_list(
        vec![now.into(), position.log_kind().into()],
        moves.iter().map(|m| [m.conversation_id, m.user_id, m.seq]),
    );
    db.execute_raw(stmt(
        db,
        &format!(
            "INSERT INTO member_position_log (conversation_id, user_id, kind, seq, at) \
             SELECT v.column1, v.column2, $2, v.column3, $1 FROM (VALUES {tuples}) AS v"
        ),
        values,
    ))
    .await?;
    Ok(())
}

#[derive(FromQueryResult)]
struct LowRow {
    conversation_id: i64,
    user_id: i64,
    seq: i64,
}

/// Each conversation's two lowest positions among current members.
pub async fn floors<C: ConnectionTrait>(
    db: &C,
    position: Position,
    conversations: &[i64],
) -> anyhow::Result<Vec<Floor>> {
    if conversations.is_empty() {
        return Ok(Vec::new());
    }
    let column = position.column();
    let placeholders = (1..=conversations.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = LowRow::find_by_statement(stmt(
        db,
        &format!(
            "SELECT conversation_id, user_id, seq FROM ( \
               SELECT conversation_id, user_id, {column} AS seq, \
                 row_number() OVER (PARTITION BY conversation_id ORDER BY {column}, user_id) AS rn \
               FROM conversation_members WHERE left_at IS NULL AND conversation_id IN ({placeholders}) \
             ) low WHERE rn <= 2 ORDER BY conversation_id, seq, user_id"
        ),
        conversations.iter().map(|c| (*c).into()),
    ))
    .all(db)
    .await?;
    let mut floors = Vec::new();
    let mut at = 0;
    while at < rows.len() {
        let conversation = rows[at].conversation_id;
        let mut lowest = Vec::with_capacity(2);
        while at < rows.len() && rows[at].conversation_id == conversation {
            lowest.push((rows[at].user_id, rows[at].seq));
            at += 1;
        }
        floors.extend(Floor::from_lowest(conversation, &lowest));
    }
    Ok(floors)
}

/// Sets the aggregate receipt of every message of these conversations that all other
/// current members have now reached; returns those messages.
pub async fn settle<C: ConnectionTrait>(
    db: &C,
    position: Position,
    conversations: &[i64],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Settled>> {
    let floors = floors(db, position, conversations).await?;
    if floors.is_empty() {
        return Ok(Vec::new());
    }
    let column = position.message_column();
    let (tuples, values) = values_list(
        vec![now.into()],
        floors
            .iter()
            .map(|f| [f.conversation_id, f.lowest_user, f.lowest, f.second]),
    );
    // The partial index on unset receipts keeps this to the messages still waiting.
    Ok(Settled::find_by_statement(stmt(
        db,
        &format!(
            "UPDATE messages SET {column} = $1 FROM (VALUES {tuples}) AS v \
             WHERE messages.conversation_id = v.column1 AND messages.{column} IS NULL \
               AND messages.seq <= CASE WHEN messages.sender_id = v.column2 THEN v.column4 ELSE v.column3 END \
             RETURNING messages.id, messages.conversation_id, messages.sender_id"
        ),
        values,
    ))
    .all(db)
    .await?)
}

/// Two transactions moving different members of one conversation (two nodes, or a read
/// beside a delivery) would each see only its own move and neither settle the messages
/// both moves together complete. On PostgreSQL, movers of one conversation take turns
/// (a transaction-scoped advisory lock per conversation, taken in id order, so they
/// cannot deadlock); SQLite runs one write transaction at a time anyway.
async fn take_turns<C: ConnectionTrait>(db: &C, moves: &[Move]) -> anyhow::Result<()> {
    let conversations: BTreeSet<i64> = moves.iter().map(|m| m.conversation_id).collect();
    take_turns_in(db, conversations).await
}

/// Waits for the turn of these conversations' position movers (see [`take_turns`]), for
/// other writers of member positions and receipts, such as a deletion.
pub async fn take_turns_in<C: ConnectionTrait>(
    db: &C,
    conversations: impl IntoIterator<Item = i64>,
) -> anyhow::Result<()> {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    let ids = conversations
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>();
    db.execute_raw(stmt(
        db,
        "SELECT pg_advisory_xact_lock(id) FROM (SELECT unnest($1::bigint[]) AS id ORDER BY 1) AS c",
        [ids.into()],
    ))
    .await?;
    Ok(())
}

/// A message and what its receipts need.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ReceiptSubject {
    pub conversation_id: i64,
    pub sender_id: i64,
    pub seq: i64,
    pub sent_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
}

pub async fn receipt_subject<C: ConnectionTrait>(
    db: &C,
    message_id: i64,
) -> anyhow::Result<Option<ReceiptSubject>> {
    Ok(ReceiptSubject::find_by_statement(stmt(
        db,
        "SELECT conversation_id, sender_id, seq, sent_at, delivered_at, read_at FROM messages WHERE id = $1",
        [message_id.into()],
    ))
    .one(db)
    .await?)
}

/// A current member with their positions.
#[derive(Debug, Clone, FromQueryResult)]
pub struct MemberPositions {
    pub user_id: i64,
    pub role: String,
    pub joined_at: DateTime<Utc>,
    pub delivered_seq: i64,
    pub read_seq: i64,
}

pub async fn member_positions<C: ConnectionTrait>(
    db: &C,
    conversation: i64,
) -> anyhow::Result<Vec<MemberPositions>> {
    Ok(MemberPositions::find_by_statement(stmt(
        db,
        "SELECT user_id, role, joined_at, delivered_seq, read_seq FROM conversation_members \
         WHERE conversation_id = $1 AND left_at IS NULL ORDER BY user_id",
        [conversation.into()],
    ))
    .all(db)
    .await?)
}

/// When each member's position first reached `seq`, as `(user, kind, at)`.
#[derive(Debug, Clone, FromQueryResult)]
pub struct FirstReach {
    pub user_id: i64,
    pub kind: String,
    pub at: DateTime<Utc>,
}

pub async fn first_reached<C: ConnectionTrait>(
    db: &C,
    conversation: i64,
    seq: i64,
) -> anyhow::Result<Vec<FirstReach>> {
    Ok(FirstReach::find_by_statement(stmt(
        db,
        "SELECT user_id, kind, MIN(at) AS at FROM member_position_log \
         WHERE conversation_id = $1 AND seq >= $2 GROUP BY user_id, kind",
        [conversation.into(), seq.into()],
    ))
    .all(db)
    .await?)
}
