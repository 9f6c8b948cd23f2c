use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::{state::AppState, store};

#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses(
        (status = 200, description = "the database answers", body = crate::http::openapi::Health),
        (status = 503, description = "the database is unreachable", body = crate::http::openapi::Health),
    )
)]
/// `GET /health`: 200 while the database answers, 503 otherwise. Redis does not change
/// the code: a node without it still serves its own clients (`redis: "down"`), and a
/// balancer taking every node out because the shared Redis went away would serve nobody.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let node = &state.config.node_id;
    let redis = state.cluster.bus.state().as_str();
    if store::db::ping(&state.db).await {
        (
            StatusCode::OK,
            Json(json!({ "status": "ok", "database": "connected", "node": node, "redis": redis })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "unavailable", "database": "disconnected", "node": node, "redis": redis }),
            ),
        )
    }
}
