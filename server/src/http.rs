//! The HTTP endpoint (axum on the server's tokio runtime): `POST /ingest/<stream>`,
//! `GET /health`, `GET /metrics`. A request refused for its data (400) writes nothing to the
//! stream; when the stream has a `dead_letter_stream`, every record of the request goes there
//! with its own error (`sluice::dead_letter`).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sluice::{Database, DeadLetter};

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
    let body = s.metrics.render(&s.db);
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
    let metrics = s.metrics.clone();
    let n_bytes = bytes.len();
    let work = tokio::task::spawn_blocking(move || -> Result<u64, Box<Response>> {
        let (status, mut answer, error) = match ingest::json_to_batch(&def, &bytes) {
            Ok(batch) => match db.append(&def.name, &batch) {
                Ok(r) => return Ok(r.rows),
                // Data the engine refuses (a cast, a DEFAULT expression): rejected like a bad row.
                Err(e) if crate::http_status(&e) == 400 => {
                    let error = ingest::IngestError {
                        row: None,
                        column: None,
                        kind: ingest::ErrorKind::InvalidValue,
                        reason: e.to_string(),
                    };
                    let body = serde_json::json!({ "error": e.to_string(), "sqlstate": crate::sqlstate(&e) });
                    (StatusCode::BAD_REQUEST, body, error)
                }
                Err(e) => return Err(Box::new(engine_response(&e))),
            },
            Err(e) => {
                let body = serde_json::json!({
                    "error": e.to_string(), "row": e.row, "column": e.column, "error_type": e.kind.as_str(),
                });
                (StatusCode::BAD_REQUEST, body, e)
            }
        };
        if let Some(dlq) = &def.settings.dead_letter_stream {
            answer["dead_letter"] =
                dead_letter(&db, &metrics, &def.name, dlq, &ingest::rejected_records(&def, &bytes, &error));
        }
        Err(Box::new(json_response(status, answer)))
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

/// Writes the records of a rejected request to `stream`'s dead-letter stream `dlq`; returns what
/// the 400 answer says about it. A failure to write them is logged and counted, and said in the
/// answer (the request is refused either way).
fn dead_letter(
    db: &Database,
    metrics: &Metrics,
    stream: &str,
    dlq: &str,
    records: &[ingest::RejectedRecord],
) -> serde_json::Value {
    let failed_at_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let source = format!("http:/ingest/{stream}");
    let letters: Vec<DeadLetter> = records
        .iter()
        .map(|r| DeadLetter {
            original_record: r.original.clone(),
            error_message: r.error.to_string(),
            error_type: r.error.kind.as_str().to_string(),
            failed_at_ms,
            source: source.clone(),
        })
        .collect();
    let valid = records.iter().filter(|r| r.error.kind == ingest::ErrorKind::RequestRejected).count();
    match db.append_dead_letters(dlq, &letters) {
        Ok(r) => {
            Metrics::add(&metrics.ingest_dead_letters, r.rows);
            serde_json::json!({
                "stream": dlq,
                "records": r.rows,
                "message": format!(
                    "nothing was written to '{stream}'; its {} records went to dead-letter stream '{dlq}' with their \
                     errors ({} bad, {valid} valid but refused with the request: error_type 'request_rejected')",
                    r.rows,
                    records.len() - valid,
                ),
            })
        }
        Err(e) => {
            Metrics::add(&metrics.ingest_dead_letter_failures, 1);
            tracing::error!(stream, dead_letter_stream = dlq, error = %e, "writing dead letters failed");
            serde_json::json!({
                "stream": dlq,
                "records": 0,
                "error": format!("the records could not be written to dead-letter stream '{dlq}': {e}"),
            })
        }
    }
}

fn engine_response(e: &sluice::Error) -> Response {
    let status = StatusCode::from_u16(crate::http_status(e)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, serde_json::json!({ "error": e.to_string(), "sqlstate": crate::sqlstate(e) }))
}
