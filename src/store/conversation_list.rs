//! A user's conversation list, in one statement: the rows, the other member of each
//! direct chat, and whether a block stands between the user and that member.
//!
//! PostgreSQL sends the rows as they are (binary rows decode cheaply, and building JSON
//! in the database cost it more than the rows did). SQLite answers the same SELECT as a
//! single JSON value: sqlx hands each SQLite row from its worker thread to the caller
//! through a channel, and a thousand such hand-overs, each waking the caller, cost the
//! server more than the query and the rendering together (BENCHMARKS.md, scenario 4).
use chrono::{DateTime, NaiveDateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, QueryResult, Value};
use serde::{Deserialize, Deserializer, de};

use super::stmt;

/// One row of a user's conversation list.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationSummary {
    pub id: i64,
    pub kind: String,
    pub user_a: Option<i64>,
    pub user_b: Option<i64>,
    pub name: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub last_content: Option<String>,
    pub last_sent_at: Option<DateTime<Utc>>,
    pub last_sender_id: Option<i64>,
    pub unread_count: i64,
    pub other_last_seen: Option<DateTime<Utc>>,
    /// Current members, for groups.
    pub member_count: Option<i64>,
    /// Whether the other user of a direct chat has written in it.
    pub other_has_written: Option<bool>,
    /// Whether the user and the other user of a direct chat have blocked one another,
    /// either way (false for groups).
    pub other_blocked: bool,
}

/// Columns are read by position, in [`LIST_COLUMNS`]' order: a list holds a row per
/// conversation, and looking each column up by name was a measurable part of its cost.
impl FromQueryResult for ConversationSummary {
    fn from_query_result(row: &QueryResult, _pre: &str) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.try_get_by_index(0)?,
            kind: row.try_get_by_index(1)?,
            user_a: row.try_get_by_index(2)?,
            user_b: row.try_get_by_index(3)?,
            name: row.try_get_by_index(4)?,
            updated_at: row.try_get_by_index(5)?,
            last_content: row.try_get_by_index(6)?,
            last_sent_at: row.try_get_by_index(7)?,
            last_sender_id: row.try_get_by_index(8)?,
            unread_count: row.try_get_by_index(9)?,
            other_last_seen: row.try_get_by_index(10)?,
            member_count: row.try_get_by_index(11)?,
            other_has_written: row.try_get_by_index(12)?,
            other_blocked: row.try_get_by_index(13)?,
        })
    }
}

/// The preview of the last message lives on the conversation row (kept by the writer),
/// so the list touches no messages: members, conversations and the other users only.
/// Unread is everything after the read position except the member's own messages and
/// deleted ones (both counted in `sent_since_read`).
/// The blocks between the user and anyone are one small set, read once per statement
/// (PostgreSQL hashes the subquery, SQLite builds an index of it).
const LIST_COLUMNS: &str = "\
SELECT c.id AS id, c.kind AS kind, c.user_a AS user_a, c.user_b AS user_b, c.name AS name, \
       c.updated_at AS updated_at, c.last_content AS last_content, c.last_sent_at AS last_sent_at, \
       c.last_sender_id AS last_sender_id, \
       CASE WHEN c.last_seq - me.read_seq - me.sent_since_read > 0 \
            THEN c.last_seq - me.read_seq - me.sent_since_read ELSE 0 END AS unread_count, \
       other.last_seen_at AS other_last_seen, \
       CASE WHEN c.kind = 'group' THEN \
         (SELECT COUNT(*) FROM conversation_members x WHERE x.conversation_id = c.id AND x.left_at IS NULL) END \
         AS member_count, \
       om.has_written AS other_has_written, \
       COALESCE(other.id IN (SELECT blocked_id FROM blocks WHERE blocker_id = $1 \
                             UNION SELECT blocker_id FROM blocks WHERE blocked_id = $1), false) AS other_blocked";

/// The other member's row and user, for the conversations `me` and `c` name.
const LIST_JOINS: &str = "\
LEFT JOIN users other ON other.id = CASE WHEN c.user_a = me.user_id THEN c.user_b ELSE c.user_a END \
LEFT JOIN conversation_members om ON om.conversation_id = c.id AND om.user_id = other.id";

/// The list's order, on the conversation row (`c`) or on [`LIST_COLUMNS`]' names.
const LIST_ORDER: &str = "ORDER BY c.updated_at DESC, c.id DESC";
const NAMED_ORDER: &str = "ORDER BY updated_at DESC, id DESC";

/// Where a page of the list starts: after the conversation last seen, in list order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    pub updated_at: DateTime<Utc>,
    pub id: i64,
}

/// `user`'s conversations, most recently updated first, in one statement: all of them,
/// or a page of `limit` after `cursor`.
pub async fn list_for_user<C: ConnectionTrait>(
    db: &C,
    user: i64,
    page: Option<(u64, Option<ListCursor>)>,
) -> anyhow::Result<Vec<ConversationSummary>> {
    let (select, values) = select(user, page);
    if db.get_database_backend() == DbBackend::Sqlite {
        let sql = format!(
            "SELECT json_group_array(json_array(id, kind, user_a, user_b, name, updated_at, last_content, \
               last_sent_at, last_sender_id, unread_count, other_last_seen, member_count, other_has_written, \
               other_blocked) {NAMED_ORDER}) AS list FROM ({select}) AS l"
        );
        let row = db
            .query_one_raw(stmt(db, &sql, values))
            .await?
            .ok_or_else(|| anyhow::anyhow!("an aggregate answered no row"))?;
        let list: String = row.try_get_by_index(0)?;
        return Ok(from_json(&list)?);
    }
    let sql = format!("{select} {NAMED_ORDER}");
    Ok(ConversationSummary::find_by_statement(stmt(db, &sql, values))
        .all(db)
        .await?)
}

/// The list's SELECT, unordered, and its values.
fn select(user: i64, page: Option<(u64, Option<ListCursor>)>) -> (String, Vec<Value>) {
    let Some((limit, cursor)) = page else {
        return (
            format!(
                "{LIST_COLUMNS} FROM conversation_members me \
                 JOIN conversations c ON c.id = me.conversation_id {LIST_JOINS} \
                 WHERE me.user_id = $1 AND me.left_at IS NULL"
            ),
            vec![user.into()],
        );
    };
    // The page is chosen from memberships and conversations alone; only its rows are
    // joined to the other member (joining all first cost a page nearly what the whole
    // list costs: BENCHMARKS.md, scenario 4).
    let (after, values) = match cursor {
        None => ("", vec![user.into(), (limit as i64).into()]),
        Some(after) => (
            "AND (c.updated_at < $3 OR (c.updated_at = $3 AND c.id < $4))",
            vec![
                user.into(),
                (limit as i64).into(),
                after.updated_at.into(),
                after.id.into(),
            ],
        ),
    };
    (
        format!(
            "WITH page AS (\
               SELECT c.id FROM conversation_members me \
               JOIN conversations c ON c.id = me.conversation_id \
               WHERE me.user_id = $1 AND me.left_at IS NULL {after} {LIST_ORDER} LIMIT $2) \
             {LIST_COLUMNS} FROM page \
             JOIN conversations c ON c.id = page.id \
             JOIN conversation_members me ON me.conversation_id = c.id AND me.user_id = $1 \
             {LIST_JOINS}"
        ),
        values,
    )
}

/// One list row as SQLite's `json_array` writes it, in [`LIST_COLUMNS`]' order.
#[derive(Deserialize)]
struct JsonRow(
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    SqliteTime,
    Option<String>,
    Option<SqliteTime>,
    Option<i64>,
    i64,
    Option<SqliteTime>,
    Option<i64>,
    Option<Flag>,
    Flag,
);

/// The rows of a list rendered by SQLite as one JSON array of arrays.
fn from_json(list: &str) -> serde_json::Result<Vec<ConversationSummary>> {
    let rows: Vec<JsonRow> = serde_json::from_str(list)?;
    Ok(rows
        .into_iter()
        .map(|r| ConversationSummary {
            id: r.0,
            kind: r.1,
            user_a: r.2,
            user_b: r.3,
            name: r.4,
            updated_at: r.5.0,
            last_content: r.6,
            last_sent_at: r.7.map(|t| t.0),
            last_sender_id: r.8,
            unread_count: r.9,
            other_last_seen: r.10.map(|t| t.0),
            member_count: r.11,
            other_has_written: r.12.map(|f| f.0),
            other_blocked: r.13.0,
        })
        .collect())
}

/// A timestamp as SQLite keeps it: text, RFC 3339 as sqlx writes it, or a bare
/// `YYYY-MM-DD HH:MM:SS[.f]` (SQLite's own functions), read as UTC as sqlx reads it.
struct SqliteTime(DateTime<Utc>);

impl<'de> Deserialize<'de> for SqliteTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = SqliteTime;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<SqliteTime, E> {
                parse_sqlite_time(text)
                    .map(SqliteTime)
                    .ok_or_else(|| E::custom(format!("not a timestamp: {text}")))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

fn parse_sqlite_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.to_utc());
    }
    ["%F %T%.f", "%FT%T%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|t| t.and_utc())
}

/// A boolean, which SQLite writes as 0 or 1.
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Flag;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a boolean or 0/1")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flag, E> {
                Ok(Flag(v != 0))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flag, E> {
                Ok(Flag(v != 0))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn reads_sqlite_json_rows() {
        let list = r#"[
            [7,"direct",1,2,null,"2026-11-24T20:40:00.123456+00:00","say \"hi\"\n\u00e9","2026-11-24T20:39:59.5+00:00",2,3,"2026-11-24 20:00:00",null,1,0],
            [9,"group",null,null,"Team",  "2026-11-24T20:30:00+00:00",null,null,null,0,null,5,null,0]
        ]"#;
        let rows = from_json(list).unwrap();
        let at = |h, m, s, micros| {
            Utc.with_ymd_and_hms(2026, 11, 24, h, m, s).unwrap() + chrono::Duration::microseconds(micros)
        };
        assert_eq!(
            rows,
            vec![
                ConversationSummary {
                    id: 7,
                    kind: "direct".into(),
                    user_a: Some(1),
                    user_b: Some(2),
                    name: None,
                    updated_at: at(20, 40, 0, 123_456),
                    last_content: Some("say \"hi\"\né".into()),
                    last_sent_at: Some(at(20, 39, 59, 500_000)),
                    last_sender_id: Some(2),
                    unread_count: 3,
                    other_last_seen: Some(at(20, 0, 0, 0)),
                    member_count: None,
                    other_has_written: Some(true),
                    other_blocked: false,
                },
                ConversationSummary {
                    id: 9,
                    kind: "group".into(),
                    user_a: None,
                    user_b: None,
                    name: Some("Team".into()),
                    updated_at: at(20, 30, 0, 0),
                    last_content: None,
                    last_sent_at: None,
                    last_sender_id: None,
                    unread_count: 0,
                    other_last_seen: None,
                    member_count: Some(5),
                    other_has_written: None,
                    other_blocked: false,
                },
            ]
        );
    }

    #[test]
    fn an_empty_list_is_an_empty_array() {
        assert_eq!(from_json("[]").unwrap(), vec![]);
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        let list = r#"[[1,"direct",1,2,null,"yesterday",null,null,null,0,null,null,null,0]]"#;
        assert!(from_json(list).is_err());
    }

    #[test]
    fn flags_are_booleans_or_integers() {
        let flags: Vec<Flag> = serde_json::from_str("[true, false, 1, 0]").unwrap();
        assert_eq!(
            flags.iter().map(|f| f.0).collect::<Vec<_>>(),
            [true, false, true, false]
        );
    }
}
