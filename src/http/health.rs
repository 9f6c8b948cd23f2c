use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::{state::AppState, store};

/// `GET /health`: 200 while the database answers, 503 otherwise.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if store::db::ping(&state.db).await {
        (
            StatusCode::OK,
            Json(json!({ "status": "ok", "database": "connected" })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "database": "disconnected" })),
        )
    }
}
