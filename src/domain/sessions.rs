//! Who a token speaks for, and ending tokens early: logout (this token), logout
//! everywhere and password changes (every token of the user). Tokens stay stateless
//! JWTs; each check adds one indexed query (the user's token version, and whether this
//! token was revoked), so an ended token stops working on every node at once.
use sea_orm::DatabaseConnection;

use super::{
    DomainError, DomainResult,
    hashing::Hasher,
    messaging::{Messaging, Outcome},
    types::Password,
};
use crate::{
    auth::{
        jwt::{JwtKeys, TokenError, Verified},
        password,
    },
    store,
};

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("user not found")]
    UnknownUser,
    #[error("authentication temporarily unavailable")]
    Unavailable,
}

#[derive(Clone)]
pub struct Sessions {
    db: DatabaseConnection,
    jwt: JwtKeys,
    messaging: Messaging,
}

impl Sessions {
    pub fn new(db: DatabaseConnection, jwt: JwtKeys, messaging: Messaging) -> Self {
        Sessions { db, jwt, messaging }
    }

    /// A new token for the user at their current token version.
    pub fn issue(&self, user: &entity::users::Model) -> String {
        self.jwt.issue(user.id, user.token_version)
    }

    /// The token's claims, if it is valid, its user exists and it has not been ended.
    pub async fn authenticate(&self, token: &str) -> Result<Verified, AuthFailure> {
        let verified = self.jwt.verify_claims(token)?;
        match store::tokens::standing(&self.db, verified.user_id, verified.jti.as_deref()).await {
            Ok(None) => Err(AuthFailure::UnknownUser),
            Ok(Some((version, revoked))) if revoked || verified.version < version => {
                Err(TokenError::Revoked.into())
            }
            Ok(Some(_)) => Ok(verified),
            Err(e) => {
                tracing::error!(error = ?e, user_id = verified.user_id, "token standing lookup failed");
                Err(AuthFailure::Unavailable)
            }
        }
    }

    /// Whether a token a socket stands on was ended since (revoked, or the user logged
    /// out everywhere, or is gone). A failed lookup says no: it is asked again later.
    pub async fn ended(&self, user: i64, jti: Option<&str>, version: i64) -> bool {
        match store::tokens::standing(&self.db, user, jti).await {
            Ok(None) => true,
            Ok(Some((current, revoked))) => revoked || version < current,
            Err(e) => {
                tracing::warn!(error = ?e, user_id = user, "token standing lookup failed");
                false
            }
        }
    }

    /// Ends this token (and the sockets it opened).
    pub async fn logout(&self, token: &Verified) -> DomainResult<()> {
        let Some(jti) = &token.jti else {
            return Err(DomainError::Unprocessable(
                "this token has no id to revoke alone; log out everywhere instead".into(),
            ));
        };
        let expires_at = chrono::DateTime::from_timestamp(token.expires_at, 0).unwrap_or_default();
        store::tokens::revoke(&self.db, jti, token.user_id, expires_at).await?;
        self.messaging.announce_now(Outcome::EndSessions {
            user_id: token.user_id,
            jti: Some(jti.clone()),
        });
        Ok(())
    }

    /// Ends every token of the user issued so far, and all their sockets.
    pub async fn logout_everywhere(&self, user: i64) -> DomainResult<()> {
        store::tokens::bump_version(&self.db, user).await?;
        self.messaging.announce_now(Outcome::EndSessions {
            user_id: user,
            jti: None,
        });
        Ok(())
    }

    /// Changes the password after checking the current one; every existing token and
    /// socket ends, and the caller gets a fresh token.
    pub async fn change_password(
        &self,
        hasher: &Hasher,
        user: i64,
        current: &str,
        new: &str,
    ) -> DomainResult<String> {
        let account = store::users::by_id(&self.db, user)
            .await?
            .ok_or(DomainError::UserNotFound)?;
        let new = Password::parse(new)?;
        let (given, stored) = (current.to_owned(), account.password_hash.clone());
        if !hasher.run(move || password::verify(&given, &stored)).await? {
            return Err(DomainError::BadCredentials);
        }
        let fresh = new.as_str().to_owned();
        let hash = hasher.run(move || password::hash(&fresh)).await??;
        let txn = store::begin_write(&self.db).await?;
        store::tokens::set_password(&txn, user, &hash).await?;
        let version = store::tokens::bump_version(&txn, user).await?;
        txn.commit().await?;
        self.messaging.announce_now(Outcome::EndSessions {
            user_id: user,
            jti: None,
        });
        Ok(self.jwt.issue(user, version))
    }
}
