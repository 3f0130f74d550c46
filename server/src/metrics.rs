//! [`Metrics`]: counters shared by every connection and request, rendered as Prometheus text.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Server counters (monotonic unless named `_active`).
#[derive(Debug, Default)]
pub struct Metrics {
    /// HTTP requests received.
    pub http_requests: AtomicU64,
    /// HTTP requests answered with a 4xx/5xx status.
    pub http_errors: AtomicU64,
    /// Rows appended through HTTP ingest.
    pub ingest_rows: AtomicU64,
    /// Request body bytes accepted by HTTP ingest.
    pub ingest_bytes: AtomicU64,
    /// Records of rejected ingest requests written to dead-letter streams.
    pub ingest_dead_letters: AtomicU64,
    /// Rejected ingest requests whose records could not be written to the dead-letter stream.
    pub ingest_dead_letter_failures: AtomicU64,
    /// Postgres connections accepted.
    pub pg_connections: AtomicU64,
    /// Postgres connections open now.
    pub pg_connections_active: AtomicU64,
    /// Postgres connections refused by the connection limit.
    pub pg_connections_refused: AtomicU64,
    /// Statements run over Postgres.
    pub pg_statements: AtomicU64,
    /// Statements that ended in an error.
    pub pg_errors: AtomicU64,
    /// Rows sent to Postgres clients.
    pub pg_rows_sent: AtomicU64,
    /// Cancel requests that hit a running statement.
    pub pg_cancels: AtomicU64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Prometheus text exposition format: these counters and the engine's (streams, storage,
    /// streaming queries and views, column cache).
    pub fn render(&self, db: &sluice::Database) -> String {
        let streams = db.streams().len();
        let streaming = &db.streaming_totals();
        let cache = &db.column_cache_stats();
        let storage = db.storage_totals();
        let views = db.views();
        let mut out = String::with_capacity(4096);
        let mut one = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        one("sluice_http_requests_total", "counter", "HTTP requests received.", g(&self.http_requests));
        one(
            "sluice_http_errors_total",
            "counter",
            "HTTP requests answered with an error status.",
            g(&self.http_errors),
        );
        one("sluice_ingest_rows_total", "counter", "Rows appended through HTTP ingest.", g(&self.ingest_rows));
        one("sluice_ingest_bytes_total", "counter", "Request bytes accepted by HTTP ingest.", g(&self.ingest_bytes));
        one(
            "sluice_ingest_dead_letters_total",
            "counter",
            "Records of rejected ingest requests written to dead-letter streams.",
            g(&self.ingest_dead_letters),
        );
        one(
            "sluice_ingest_dead_letter_failures_total",
            "counter",
            "Rejected ingest requests whose records could not be written to the dead-letter stream.",
            g(&self.ingest_dead_letter_failures),
        );
        one("sluice_pg_connections_total", "counter", "Postgres connections accepted.", g(&self.pg_connections));
        one("sluice_pg_connections_active", "gauge", "Postgres connections open now.", g(&self.pg_connections_active));
        one(
            "sluice_pg_connections_refused_total",
            "counter",
            "Postgres connections refused by the connection limit.",
            g(&self.pg_connections_refused),
        );
        one("sluice_pg_statements_total", "counter", "Statements run over Postgres.", g(&self.pg_statements));
        one("sluice_pg_errors_total", "counter", "Postgres statements that failed.", g(&self.pg_errors));
        one("sluice_pg_rows_sent_total", "counter", "Rows sent to Postgres clients.", g(&self.pg_rows_sent));
        one(
            "sluice_pg_cancels_total",
            "counter",
            "Cancel requests that reached a running statement.",
            g(&self.pg_cancels),
        );
        one("sluice_streams", "gauge", "Streams in the catalog.", streams as u64);
        let st = streaming;
        one("sluice_streaming_queries", "gauge", "Streaming queries running (views included).", st.queries);
        one("sluice_views", "gauge", "Materialized views running.", st.views);
        one("sluice_streaming_rows_in", "gauge", "Rows read by the running streaming queries.", st.rows_in);
        one("sluice_streaming_rows_out", "gauge", "Rows emitted by the running streaming queries.", st.rows_out);
        one(
            "sluice_streaming_late_rows",
            "gauge",
            "Rows the running streaming queries dropped as older than their watermark.",
            st.late_rows,
        );
        one("sluice_streaming_skipped_rows", "gauge", "Rows skipped for errors (best_effort views).", st.skipped_rows);
        one("sluice_streaming_state_bytes", "gauge", "Aggregation state held by streaming queries.", st.state_bytes);
        one("sluice_column_cache_bytes", "gauge", "Decoded part columns held for queries.", cache.bytes as u64);
        one("sluice_column_cache_hits_total", "counter", "Row-group columns read from the cache.", cache.hits);
        one("sluice_column_cache_misses_total", "counter", "Row-group columns decoded from parts.", cache.misses);
        let t = &storage;
        one("sluice_rows_appended_total", "counter", "Rows acknowledged by appends (all paths).", t.rows_appended);
        one("sluice_wal_appends_total", "counter", "Log records appended.", t.wal_appends);
        one("sluice_wal_syncs_total", "counter", "fdatasync calls of the logs.", t.wal_syncs);
        one("sluice_wal_written_bytes_total", "counter", "Bytes written to the logs.", t.wal_bytes_written);
        one("sluice_wal_bytes", "gauge", "Bytes the logs hold on disk.", t.wal_bytes);
        one("sluice_flushes_total", "counter", "Flushes that wrote a part.", t.flushes);
        one("sluice_flush_rows_total", "counter", "Rows moved from memtables into parts.", t.flush_rows);
        one("sluice_merges_total", "counter", "Part merges.", t.merges);
        one("sluice_parts", "gauge", "Live parts.", t.parts);
        one("sluice_part_bytes", "gauge", "Bytes of the live parts.", t.part_bytes);
        one("sluice_memtable_rows", "gauge", "Rows in memtables, not yet in parts.", t.memtable_rows);
        // Durations as summaries without quantiles (sum and count: rate(sum)/rate(count) is
        // the mean duration).
        for (name, help, secs, count) in [
            ("sluice_flush_duration_seconds", "Time spent in flushes.", t.flush_seconds, t.flushes),
            ("sluice_merge_duration_seconds", "Time spent in merges.", t.merge_seconds, t.merges),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} summary\n{name}_sum {secs:.6}\n{name}_count {count}"
            );
        }
        let name = "sluice_view_lag_rows";
        let _ = writeln!(out, "# HELP {name} Source rows a materialized view has not read yet.\n# TYPE {name} gauge");
        for v in &views {
            let _ = writeln!(out, "{name}{{view=\"{}\"}} {}", label(&v.name), v.lag);
        }
        out
    }
}

/// A label value with `\`, `"` and newlines escaped (Prometheus text format).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
