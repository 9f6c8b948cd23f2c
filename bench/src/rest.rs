//! JSON over HTTP/1 for set-up calls (registration, group creation): never on a measured
//! path, so one plain hyper client is enough.
use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::{Request, body::Bytes};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::Value;

/// A client for one server; clones share its connection pool.
#[derive(Clone)]
pub struct Rest {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Rest {
    pub fn new(base: &str) -> Self {
        Rest {
            base: base.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// POSTs `body` to `path` (with a bearer `token` if given) and returns the JSON answer;
    /// any status other than 2xx is an error carrying the server's body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> anyhow::Result<Value> {
        let mut req =
            Request::post(format!("{}{path}", self.base)).header("content-type", "application/json");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = req.body(Full::new(Bytes::from(body.to_string())))?;
        let res = self
            .client
            .request(req)
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = res.status();
        let bytes = res.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!(
                "POST {path} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        serde_json::from_slice(&bytes).with_context(|| format!("POST {path}: body is not JSON"))
    }
}
