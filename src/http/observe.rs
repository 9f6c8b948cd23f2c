//! Watching the REST transport: one log line and two series per request, and the
//! `/metrics` scrape endpoint.
use std::{
    sync::{Arc, OnceLock},
    time::Instant,
};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use metrics::{counter, histogram};
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;

use crate::monitoring;

/// The route label of a request no route matched (a 404): the raw path would let any
/// client mint new series.
const UNMATCHED: &str = "unmatched";

/// The user a request authenticated as, filled in by the `Bearer` extractor so the
/// request's log line can name them. Never the token itself.
#[derive(Clone, Default)]
pub struct Caller(Arc<OnceLock<i64>>);

impl Caller {
    pub fn set(&self, user_id: i64) {
        let _ = self.0.set(user_id);
    }
}

/// Middleware: counts and times each request by its route template (`/api/groups/{id}`,
/// never the raw path) and status, and logs one line for it. Headers and bodies are not
/// logged: they carry tokens and passwords.
pub async fn track(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let caller = Caller::default();
    req.extensions_mut().insert(caller.clone());
    let res = next.run(req).await;
    let elapsed = started.elapsed();
    let route = route.unwrap_or_else(|| UNMATCHED.to_owned());
    let status = res.status().as_u16();
    let labels = [
        ("method", method.to_owned()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    counter!(monitoring::HTTP_REQUESTS, &labels).increment(1);
    histogram!(monitoring::HTTP_DURATION, &labels).record(elapsed.as_secs_f64());
    tracing::info!(
        method,
        route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1_000.0,
        user_id = caller.0.get().copied(),
        "http request"
    );
    res
}

/// Standard methods by name; anything else as `other` (label values stay few).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// What `/metrics` needs: the recorder's handle and the pool it samples at scrape time.
#[derive(Clone)]
pub struct Scrape {
    pub handle: PrometheusHandle,
    pub db: DatabaseConnection,
}

/// `GET /metrics` alone, to merge into the public router or serve on `METRICS_ADDR`.
pub fn metrics_router(scrape: Scrape) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(scrape)
}

async fn metrics(State(scrape): State<Scrape>) -> impl IntoResponse {
    monitoring::sample(&scrape.db);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        scrape.handle.render(),
    )
}
