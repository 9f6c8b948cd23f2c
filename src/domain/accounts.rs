//! Registration, login and user lookup.
use entity::users;
use sea_orm::DatabaseConnection;

use super::{
    DomainError, DomainResult,
    hashing::Hasher,
    types::{DisplayName, Email, Password},
};
use crate::{auth::password, store};

/// Creates an account. The password is hashed off the async runtime (argon2 is slow on purpose).
pub async fn register(
    db: &DatabaseConnection,
    hasher: &Hasher,
    email: &str,
    password_raw: &str,
    display_name: Option<&str>,
) -> DomainResult<users::Model> {
    let email = Email::parse(email)?;
    let password = Password::parse(password_raw)?;
    let display_name = match display_name {
        Some(name) => DisplayName::parse(name)?,
        None => DisplayName::parse(email.local_part())?,
    };
    let pw = password.as_str().to_owned();
    let hash = hasher.run(move || password::hash(&pw)).await??;
    match store::users::insert(db, email.as_str(), hash, display_name.into_inner()).await? {
        store::users::InsertUser::Created(user) => Ok(user),
        store::users::InsertUser::EmailTaken => Err(DomainError::EmailTaken),
    }
}

/// The user whose credentials these are. Unknown email and wrong password are one error.
pub async fn login(
    db: &DatabaseConnection,
    hasher: &Hasher,
    email: &str,
    password_raw: &str,
) -> DomainResult<users::Model> {
    let user = match Email::parse(email) {
        Ok(email) => store::users::by_email(db, email.as_str()).await?,
        Err(_) => None,
    };
    // Verify against a dummy hash when the user is unknown so timing does not reveal it.
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(dummy_hash);
    let pw = password_raw.to_owned();
    let ok = hasher.run(move || password::verify(&pw, &hash)).await?;
    match user {
        Some(user) if ok => Ok(user),
        _ => Err(DomainError::BadCredentials),
    }
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| password::hash("dummy password for timing").unwrap_or_default())
        .clone()
}

pub async fn get(db: &DatabaseConnection, id: i64) -> DomainResult<users::Model> {
    store::users::by_id(db, id)
        .await?
        .ok_or(DomainError::UserNotFound)
}
