//! The HTTP endpoint (axum on the server's tokio runtime): `POST /ingest/<stream>`,
//! `GET /health`, `GET /metrics`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sluice::Database;

use crate::metrics::Metrics;

/// JSON to Arrow for ingest.
pub(crate) mod ingest;

/// What the HTTP handlers share.
#[derive(Debug, Clone)]
pub(crate) struct HttpState {
    pub db: Database,
    pub metrics: Arc<Metrics>,
    pub body_limit: usize,
}

/// The routes.
pub(crate) fn router(state: HttpState) -> Router {
    let limit = state.body_limit;
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/ingest/{stream}", post(ingest_handler))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn metrics(State(s): State<HttpState>) -> Response {
    Metrics::add(&s.metrics.http_requests, 1);
    let body = s.metrics.render(s.db.streams().len(), &s.db.streaming_totals(), &s.db.column_cache_stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn ingest_handler(
    State(s): State<HttpState>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    Metrics::add(&s.metrics.http_requests, 1);
    let resp = ingest_inner(&s, stream, headers, body).await;
    if !resp.status().is_success() {
        Metrics::add(&s.metrics.http_errors, 1);
    }
    resp
}

async fn ingest_inner(s: &HttpState, stream: String, headers: HeaderMap, body: Body) -> Response {
    let too_large = || {
        json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            serde_json::json!({ "error": format!("request body larger than {} bytes", s.body_limit) }),
        )
    };
    // Refuse by Content-Length before reading (and before `100 Continue` is sent).
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.body_limit as u64) {
        return too_large();
    }
    let def = match s.db.stream_def(&stream) {
        Ok(d) => d,
        Err(e) => return engine_response(&e),
    };
    let bytes = match axum::body::to_bytes(body, s.body_limit).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    let db = s.db.clone();
    let n_bytes = bytes.len();
    let work = tokio::task::spawn_blocking(move || -> Result<u64, Box<Response>> {
        let batch = ingest::json_to_batch(&def, &bytes).map_err(|e| {
            Box::new(json_response(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": e.to_string(), "row": e.row, "column": e.column }),
            ))
        })?;
        db.append(&def.name, &batch).map(|r| r.rows).map_err(|e| Box::new(engine_response(&e)))
    })
    .await;
    match work {
        Ok(Ok(rows)) => {
            Metrics::add(&s.metrics.ingest_rows, rows);
            Metrics::add(&s.metrics.ingest_bytes, n_bytes as u64);
            json_response(StatusCode::OK, serde_json::json!({ "rows": rows }))
        }
        Ok(Err(resp)) => *resp,
        Err(e) => json_response(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({ "error": e.to_string() })),
    }
}

fn engine_response(e: &sluice::Error) -> Response {
    let status = StatusCode::from_u16(crate::http_status(e)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, serde_json::json!({ "error": e.to_string(), "sqlstate": crate::sqlstate(e) }))
}
