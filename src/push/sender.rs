//! Posts one signed hook and says how it went. Knows HTTP, not the outbox.
use chrono::Utc;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::{retry::Attempt, signature::sign};
use crate::config::PushConfig;

/// The headers every hook carries (see docs/PROTOCOL.md, "Push hooks").
pub const SIGNATURE_HEADER: &str = "X-RC-Signature";
pub const TIMESTAMP_HEADER: &str = "X-RC-Timestamp";
pub const DELIVERY_HEADER: &str = "X-RC-Delivery";
pub const ATTEMPT_HEADER: &str = "X-RC-Attempt";

/// The HTTP client that posts hooks to `PUSH_WEBHOOK_URL`.
pub struct Sender {
    client: reqwest::Client,
    url: url::Url,
    secret: Vec<u8>,
}

impl Sender {
    pub fn new(config: &PushConfig) -> anyhow::Result<Sender> {
        // reqwest is built without a crypto provider of its own: rustls's ring one, as
        // sqlx's rustls already builds ring. Installing twice is harmless (Err ignored).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            // A hook answered by a redirect is refused, not followed somewhere unplanned.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("realtime-chat-push/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender {
            client,
            url: config.url.clone(),
            secret: config.secret.clone(),
        })
    }

    /// Signs `body` with the current time and posts it.
    pub async fn post(&self, delivery_id: &str, attempt: i32, body: Vec<u8>) -> Attempt {
        let timestamp = Utc::now().timestamp();
        let signature = sign(&self.secret, timestamp, &body);
        let sent = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(DELIVERY_HEADER, delivery_id)
            .header(ATTEMPT_HEADER, attempt.to_string())
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Attempt::from_status(response.status().as_u16(), retry_after.as_deref(), Utc::now())
            }
            Err(e) => {
                // Without the URL: it may carry a token of the operator's.
                tracing::debug!(error = %e.without_url(), delivery_id, "push hook not delivered");
                Attempt::Transient { retry_after: None }
            }
        }
    }
}
