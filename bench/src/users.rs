//! Bench users: tokens minted with the server's secret, or accounts registered over REST.
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::rest::Rest;

#[derive(Clone)]
pub struct BenchUser {
    pub id: i64,
    pub token: String,
}

#[derive(Serialize)]
struct Claims {
    sub: String,
    user_id: i64,
    exp: i64,
}

/// Tokens for users `first..first+count` (servers that need no user rows, or seeded ones).
pub fn mint(secret: &str, first: i64, count: usize) -> Vec<BenchUser> {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    let exp = 4_000_000_000;
    (0..count as i64)
        .map(|i| {
            let id = first + i;
            let claims = Claims {
                sub: id.to_string(),
                user_id: id,
                exp,
            };
            let token =
                jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("HS256 signs");
            BenchUser { id, token }
        })
        .collect()
}

#[derive(Deserialize)]
struct Registered {
    token: String,
    user: RegisteredUser,
}

#[derive(Deserialize)]
struct RegisteredUser {
    id: i64,
}

/// Registers `count` fresh accounts through `POST /api/auth/register`.
pub async fn register(base: &str, count: usize) -> anyhow::Result<Vec<BenchUser>> {
    let rest = Rest::new(base);
    let run = std::process::id();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let mut out = Vec::with_capacity(count);
    // A few at a time: registration hashes a password (deliberately slow).
    for chunk in (0..count).collect::<Vec<_>>().chunks(8) {
        let mut tasks = Vec::new();
        for i in chunk {
            let body = serde_json::json!({
                "email": format!("bench-{run}-{nonce}-{i}@bench.example"),
                "password": "bench-password",
            });
            let rest = rest.clone();
            tasks.push(tokio::spawn(async move {
                let answer = rest.post("/api/auth/register", None, &body).await?;
                let r: Registered = serde_json::from_value(answer).context("register body")?;
                anyhow::Ok(BenchUser {
                    id: r.user.id,
                    token: r.token,
                })
            }));
        }
        for t in tasks {
            out.push(t.await??);
        }
    }
    Ok(out)
}
