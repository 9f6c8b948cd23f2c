//! Credentials: JWTs for sessions, argon2id for passwords.
pub mod jwt;
pub mod password;
