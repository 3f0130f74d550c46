//! Dead-letter streams: where the records of rejected ingest requests go, so that nothing sent
//! to sluice is lost silently. A stream names its dead-letter stream with
//! `SETTINGS dead_letter_stream = 's_dlq'`; the server's HTTP ingest writes one record per
//! record of a rejected request (see `server/src/http.rs`). The record shape is Moose's
//! `DeadLetterModel` in snake case:
//!
//! | column            | type                       | what                                         |
//! |-------------------|----------------------------|----------------------------------------------|
//! | `original_record` | `string`                   | the record as sent (the JSON text)           |
//! | `error_message`   | `string`                   | why it was refused                           |
//! | `error_type`      | `string`                   | a category (`invalid_value`, ...)            |
//! | `failed_at`       | `datetime64(3, 'UTC')`     | when the request was refused                 |
//! | `source`          | `string`                   | where it came from (`http:/ingest/s`)        |
//!
//! The dead-letter stream is created with `CREATE STREAM` of the stream naming it (and again at
//! the next rejection if it was dropped since). An existing stream of that name must have these
//! columns (string types may be `low_cardinality`/`nullable`, any timestamp precision; other
//! columns take their defaults), or the `CREATE STREAM` naming it fails.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::database::{AppendResult, Database};
use crate::stream_def::{StreamDef, validate_name};
use crate::{Error, Result};

/// The columns of a dead-letter record and their SQL types, in order.
pub const DEAD_LETTER_COLUMNS: [(&str, &str); 5] = [
    ("original_record", "string"),
    ("error_message", "string"),
    ("error_type", "string"),
    ("failed_at", "datetime64(3, 'UTC')"),
    ("source", "string"),
];

/// One record that could not be ingested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The record as it was sent (for JSON ingest: the JSON text of the object, or of the
    /// unparsable line).
    pub original_record: String,
    /// Why it was refused.
    pub error_message: String,
    /// A category of the error, e.g. `invalid_value`, `malformed_json`, `request_rejected`.
    pub error_type: String,
    /// When it was refused, ms since the epoch (UTC).
    pub failed_at_ms: i64,
    /// Where it came from, e.g. `http:/ingest/events`.
    pub source: String,
}

/// The `CREATE STREAM` of a dead-letter stream named `name`.
pub fn dead_letter_create_sql(name: &str) -> String {
    let cols: Vec<String> = DEAD_LETTER_COLUMNS.iter().map(|(n, t)| format!("{n} {t}")).collect();
    format!("CREATE STREAM IF NOT EXISTS `{name}` ({})", cols.join(", "))
}

fn is_string(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string(v),
        _ => false,
    }
}

/// Checks that `def` can hold dead-letter records: every column of
/// [`DEAD_LETTER_COLUMNS`] present with a string (a timestamp for `failed_at`) type.
pub fn check_dead_letter_def(def: &StreamDef) -> Result<()> {
    let mut wrong = Vec::new();
    for (name, sql_type) in DEAD_LETTER_COLUMNS {
        let ok = match def.column_index(name).map(|i| def.columns[i].field.data_type()) {
            None => false,
            Some(dt) if name == "failed_at" => matches!(dt, DataType::Timestamp(..)),
            Some(dt) => is_string(dt),
        };
        if !ok {
            wrong.push(format!("{name} {sql_type}"));
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    let want: Vec<String> = DEAD_LETTER_COLUMNS.iter().map(|(n, t)| format!("{n} {t}")).collect();
    Err(Error::InvalidDefinition(format!(
        "stream '{}' cannot be a dead-letter stream: it lacks or mistypes {} (a dead-letter stream has the columns {})",
        def.name,
        wrong.join(", "),
        want.join(", ")
    )))
}

impl Database {
    /// Checks the `dead_letter_stream` setting of a stream about to be created: a valid name,
    /// not the stream itself, and, if that stream exists, one with the dead-letter columns.
    pub(crate) fn check_dead_letter_setting(&self, def: &StreamDef) -> Result<()> {
        let Some(dlq) = &def.settings.dead_letter_stream else { return Ok(()) };
        validate_name(dlq)?;
        if *dlq == def.name {
            return Err(Error::InvalidDefinition(format!("stream '{dlq}' cannot be its own dead_letter_stream")));
        }
        match self.stream_def(dlq) {
            Ok(existing) => check_dead_letter_def(&existing),
            Err(Error::StreamNotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The dead-letter stream `name`, created if it does not exist; an error if a stream of
    /// that name exists without the dead-letter columns.
    pub fn ensure_dead_letter_stream(&self, name: &str) -> Result<Arc<StreamDef>> {
        validate_name(name)?;
        match self.stream_def(name) {
            Ok(def) => {
                check_dead_letter_def(&def)?;
                Ok(def)
            }
            Err(Error::StreamNotFound { .. }) => {
                self.execute(&dead_letter_create_sql(name))?;
                let def = self.stream_def(name)?;
                check_dead_letter_def(&def)?;
                Ok(def)
            }
            Err(e) => Err(e),
        }
    }

    /// Appends `records` to the dead-letter stream `stream` (created if missing, see
    /// [`Database::ensure_dead_letter_stream`]), all in one batch.
    pub fn append_dead_letters(&self, stream: &str, records: &[DeadLetter]) -> Result<AppendResult> {
        self.ensure_dead_letter_stream(stream)?;
        let strings =
            |f: fn(&DeadLetter) -> &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(records.iter().map(f))) };
        let failed_at: ArrayRef = Arc::new(
            TimestampMillisecondArray::from_iter_values(records.iter().map(|r| r.failed_at_ms)).with_timezone("UTC"),
        );
        let columns = vec![
            strings(|r| &r.original_record),
            strings(|r| &r.error_message),
            strings(|r| &r.error_type),
            failed_at,
            strings(|r| &r.source),
        ];
        let fields: Vec<Field> = DEAD_LETTER_COLUMNS
            .iter()
            .zip(&columns)
            .map(|((n, _), c)| Field::new(*n, c.data_type().clone(), false))
            .collect();
        debug_assert!(matches!(fields[3].data_type(), DataType::Timestamp(TimeUnit::Millisecond, _)));
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        self.append(stream, &batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(i: i64) -> DeadLetter {
        DeadLetter {
            original_record: format!("{{\"id\": {i}}}"),
            error_message: "row 1: column 'id': nope".into(),
            error_type: "invalid_value".into(),
            failed_at_ms: 1_704_067_200_000 + i,
            source: "http:/ingest/s".into(),
        }
    }

    #[test]
    fn create_with_setting_makes_the_dead_letter_stream() {
        let db = Database::in_memory();
        db.execute("CREATE STREAM s (id int64) SETTINGS dead_letter_stream = 's_dlq'").expect("create");
        let dlq = db.stream_def("s_dlq").expect("created with s");
        check_dead_letter_def(&dlq).expect("dead-letter columns");
        assert_eq!(db.stream_def("s").expect("s").settings.dead_letter_stream.as_deref(), Some("s_dlq"));
        db.append_dead_letters("s_dlq", &[letter(1), letter(2)]).expect("append");
        let out = db
            .query("SELECT original_record, error_type, failed_at, source FROM table(s_dlq) ORDER BY failed_at")
            .expect("query")
            .concat()
            .expect("rows");
        assert_eq!(out.num_rows(), 2);
        assert_eq!(crate::text::format_value(out.column(0), 1).as_deref(), Some("{\"id\": 2}"));
        // Dropped later: the next dead letter creates it again.
        db.execute("DROP STREAM s_dlq").expect("drop");
        db.append_dead_letters("s_dlq", &[letter(3)]).expect("recreated");
    }

    #[test]
    fn a_wrong_or_self_dead_letter_stream_is_refused_at_create() {
        let db = Database::in_memory();
        db.execute("CREATE STREAM bad (original_record string, error_message int64)").expect("create");
        let e = db.execute("CREATE STREAM s (id int64) SETTINGS dead_letter_stream = 'bad'").expect_err("wrong schema");
        assert!(e.to_string().contains("error_message string"), "{e}");
        assert!(db.stream_def("s").is_err(), "nothing created");
        let e = db.execute("CREATE STREAM s (id int64) SETTINGS dead_letter_stream = 's'").expect_err("itself");
        assert!(e.to_string().contains("its own"), "{e}");
        db.execute("CREATE STREAM ok_dlq (original_record string, error_message string, error_type low_cardinality(string), failed_at datetime64(6), source nullable(string), extra int32 DEFAULT 7)")
            .expect("create");
        db.execute("CREATE STREAM s (id int64) SETTINGS dead_letter_stream = 'ok_dlq'").expect("compatible");
        db.append_dead_letters("ok_dlq", &[letter(1)]).expect("append to a compatible stream");
        assert!(db.append_dead_letters("bad", &[letter(1)]).is_err());
    }
}
