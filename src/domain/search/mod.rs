//! Full-text search over the messages a user may still see: those of conversations
//! they are a current member of (history's rule), never deleted ones, never those
//! without text (tombstones, encrypted messages). Ranked by relevance, then newest
//! first; paged by a cursor on that order, so a page never repeats an earlier one's hit.
//!
//! The engines differ (PostgreSQL `ts_rank` over a `simple` tsvector, SQLite FTS5's
//! bm25, see `store::search`); what they are asked is the same: every term of `q`, as
//! a whole word, case-insensitive.
pub mod query;
pub mod snippet;

use std::collections::HashMap;

use sea_orm::DatabaseConnection;

use super::{
    DomainError, DomainResult,
    lifecycle::{self, Reactions},
};
use crate::store::{self, conversations::HistoryMessage};
pub use query::{Cursor, MAX_QUERY_CHARS, SearchText};
pub use snippet::Segment;

/// Hits on one page unless asked otherwise.
pub const DEFAULT_PAGE: u64 = 20;
/// Most hits one page holds (larger requests are capped).
pub const MAX_PAGE: u64 = 50;

/// What a client asked: raw text, checked here.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub q: &'a str,
    /// Only this conversation (which the caller must belong to).
    pub conversation_id: Option<i64>,
    pub limit: u64,
    /// A previous page's `next_cursor`.
    pub cursor: Option<&'a str>,
}

/// One message found, as history shows it, with the part worth showing.
pub struct Hit {
    pub message: HistoryMessage,
    pub reactions: Reactions,
    pub snippet: Vec<Segment>,
}

/// One page of hits, best first, and where the next one starts (None after the last).
pub struct Results {
    pub hits: Vec<Hit>,
    pub next_cursor: Option<Cursor>,
}

/// How often the background indexer looks for messages to index (SQLite; a search
/// indexes what it finds pending itself, so this only bounds how much one has to).
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Keeps the search index close behind the messages, off the send path.
pub fn spawn_indexer(db: DatabaseConnection) {
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return;
    }
    tokio::spawn(async move {
        let mut every = tokio::time::interval(INDEX_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = store::search::index_pending(&db).await {
                tracing::warn!(error = ?e, "indexing messages for search failed; will retry");
            }
        }
    });
}

/// Searches the caller's conversations (or one of them).
pub async fn search(db: &DatabaseConnection, user: i64, request: Request<'_>) -> DomainResult<Results> {
    let text = SearchText::parse(request.q)?;
    let after = request.cursor.map(Cursor::parse).transpose()?;
    let limit = request.limit.clamp(1, MAX_PAGE);
    if let Some(conversation) = request.conversation_id {
        // Missing and not-a-member are one answer, as for history.
        store::conversations::member_view(db, conversation, user)
            .await?
            .ok_or(DomainError::ConversationNotFound)?;
    }
    if text.is_empty() {
        return Ok(Results {
            hits: Vec::new(),
            next_cursor: None,
        });
    }
    // A search finds every message sent before it, even those the index has not
    // reached yet (SQLite indexes behind the send path).
    store::search::index_pending(db).await?;
    let (found, has_more) = store::search::matching(
        db,
        user,
        store::search::Terms {
            plain: &text.plain(),
            fts5: &text.fts5(),
        },
        request.conversation_id,
        after.map(|c| (c.rank, c.message_id)),
        limit,
    )
    .await?;
    let next_cursor = has_more
        .then(|| {
            found.last().map(|f| Cursor {
                rank: f.rank,
                message_id: f.message.id,
            })
        })
        .flatten();
    let messages: Vec<HistoryMessage> = found.into_iter().map(|f| f.message).collect();
    let mut reactions: HashMap<i64, Reactions> = lifecycle::reactions_of(db, user, &messages).await?;
    let hits = messages
        .into_iter()
        .map(|message| Hit {
            reactions: reactions.remove(&message.id).unwrap_or_default(),
            snippet: snippet::snippet(&message.content, text.words()),
            message,
        })
        .collect();
    Ok(Results { hits, next_cursor })
}
