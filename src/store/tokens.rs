//! Token standing: the user's token version and single revoked tokens.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::stmt;

#[derive(FromQueryResult)]
struct StandingRow {
    token_version: i64,
    revoked: i64,
}

/// The user's current token version and whether `jti` was revoked; None if the user
/// does not exist. One query.
pub async fn standing<C: ConnectionTrait>(
    db: &C,
    user: i64,
    jti: Option<&str>,
) -> anyhow::Result<Option<(i64, bool)>> {
    Ok(StandingRow::find_by_statement(stmt(
        db,
        "SELECT u.token_version, \
           (SELECT COUNT(*) FROM revoked_tokens r WHERE r.jti = $2) AS revoked \
         FROM users u WHERE u.id = $1",
        [user.into(), jti.unwrap_or_default().into()],
    ))
    .one(db)
    .await?
    .map(|r| (r.token_version, r.revoked > 0)))
}

/// Ends one token; forgets revocations of tokens that have expired anyway.
pub async fn revoke<C: ConnectionTrait>(
    db: &C,
    jti: &str,
    user: i64,
    expires_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    db.execute_raw(stmt(
        db,
        "INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING",
        [jti.into(), user.into(), expires_at.into()],
    ))
    .await?;
    db.execute_raw(stmt(
        db,
        "DELETE FROM revoked_tokens WHERE expires_at < $1",
        [Utc::now().into()],
    ))
    .await?;
    Ok(())
}

/// Ends every token of the user issued so far; returns the new version.
pub async fn bump_version<C: ConnectionTrait>(db: &C, user: i64) -> anyhow::Result<i64> {
    #[derive(FromQueryResult)]
    struct Version {
        token_version: i64,
    }
    Ok(Version::find_by_statement(stmt(
        db,
        "UPDATE users SET token_version = token_version + 1 WHERE id = $1 RETURNING token_version",
        [user.into()],
    ))
    .one(db)
    .await?
    .map_or(0, |v| v.token_version))
}

/// Replaces the password hash.
pub async fn set_password<C: ConnectionTrait>(db: &C, user: i64, hash: &str) -> anyhow::Result<()> {
    db.execute_raw(stmt(
        db,
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        [user.into(), hash.into()],
    ))
    .await?;
    Ok(())
}
