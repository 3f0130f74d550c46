//! The engine seen by the SQL layer: [`sluice_sql::Catalog`] and [`sluice_sql::Table`] over
//! stream snapshots. A query takes one snapshot per stream it names, so all its reads of a
//! stream see the same rows; each scan unit (a part's row group, the log-only rows, the
//! memtable) becomes a partition the executor may run on any thread.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sluice_columnstore::{ColumnPredicate, ColumnRange, Predicate, Stat};
use sluice_sql::catalog::{Catalog, ColumnFilter, FilterOp, Partition, SeekTo, StreamSource, SubscribeRequest, Table};
use sluice_sql::scalar::ScalarValue;
use sluice_sql::sqlparser::ast::Expr;

use crate::database::{Database, WeakDb};
use crate::scan::{ScanRequest, Snapshot};
use crate::stream_def::{TP_SN, TP_TIME, tp_sn_field};
use crate::streaming::EngineSource;
use crate::subscribe::StartAt;

/// The catalog of a database for one query.
#[derive(Debug, Clone)]
pub(crate) struct EngineCatalog {
    pub(crate) db: Database,
}

impl Catalog for EngineCatalog {
    fn table(&self, name: &str) -> sluice_sql::Result<Arc<dyn Table>> {
        if name.eq_ignore_ascii_case("system.queries") {
            let batch = self.db.inner.queries.queries_batch().map_err(to_sql_error)?;
            let t = sluice_sql::MemTable::new("system.queries", batch.schema(), vec![vec![batch]])?.bounded_only();
            return Ok(Arc::new(t));
        }
        if name.eq_ignore_ascii_case("system.views") {
            let batch = crate::views::views_batch(&self.db.views()).map_err(to_sql_error)?;
            let t = sluice_sql::MemTable::new("system.views", batch.schema(), vec![vec![batch]])?.bounded_only();
            return Ok(Arc::new(t));
        }
        let snapshot =
            self.db.snapshot(name).map_err(|_| sluice_sql::Error::UnknownStream { name: name.to_string() })?;
        Ok(Arc::new(EngineTable::new(snapshot, self.db.downgrade())?))
    }
}

/// One stream at one snapshot.
#[derive(Debug)]
pub(crate) struct EngineTable {
    snapshot: Snapshot,
    /// Weak: a running query (a view's thread) must not keep the database open.
    db: WeakDb,
    /// Stored columns, `_tp_sn`, then ALIAS columns.
    schema: SchemaRef,
    aliases: Arc<Vec<AliasEval>>,
}

/// An ALIAS column ready to evaluate.
#[derive(Debug)]
struct AliasEval {
    field: Field,
    expr: Expr,
    deps: Vec<String>,
}

impl EngineTable {
    pub(crate) fn new(snapshot: Snapshot, db: WeakDb) -> sluice_sql::Result<Self> {
        let mut fields: Vec<Field> = snapshot.def().columns.iter().map(|c| c.field.clone()).collect();
        fields.push(tp_sn_field());
        let stored = Arc::new(Schema::new(fields.clone()));
        let mut aliases = Vec::new();
        for a in snapshot.def().aliases() {
            let expr = sluice_sql::parse_expr(&a.sql)?;
            let deps = crate::ddl::columns_of(&expr);
            let field = match &a.type_sql {
                Some(t) => t.parse::<sluice_sql::SqlType>()?.to_arrow_field(a.name.clone()),
                None => {
                    // The expression's own type: evaluate it on no rows.
                    let empty = RecordBatch::new_empty(stored.clone());
                    let v = sluice_sql::eval_expr_on_batch(&expr, &empty)?;
                    Field::new(a.name.clone(), v.data_type().clone(), true)
                }
            };
            fields.push(field.clone());
            aliases.push(AliasEval { field, expr, deps });
        }
        Ok(Self { schema: Arc::new(Schema::new(fields)), snapshot, db, aliases: Arc::new(aliases) })
    }

    fn clone_for_kv(&self) -> KvReader {
        KvReader { schema: self.schema.clone(), aliases: self.aliases.clone() }
    }

    /// The stored columns to read for `columns` (ALIAS columns replaced by what they use),
    /// and the schema of the result when ALIAS columns must be computed.
    fn stored_columns(&self, columns: &[String]) -> sluice_sql::Result<(Vec<String>, Option<SchemaRef>)> {
        let is_alias = |c: &str| self.aliases.iter().any(|a| a.field.name() == c);
        let mut stored: Vec<String> = columns.iter().filter(|c| !is_alias(c)).cloned().collect();
        let mut any = false;
        for a in self.aliases.iter().filter(|a| columns.iter().any(|c| c == a.field.name())) {
            any = true;
            for d in &a.deps {
                if !stored.contains(d) {
                    stored.push(d.clone());
                }
            }
        }
        if !any {
            return Ok((stored, None));
        }
        let fields = columns
            .iter()
            .map(|c| self.schema.field_with_name(c).cloned())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| sluice_sql::Error::Internal { message: e.to_string() })?;
        Ok((stored, Some(Arc::new(Schema::new(fields)))))
    }
}

impl Table for EngineTable {
    fn name(&self) -> &str {
        &self.snapshot.def().name
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn star_columns(&self) -> Vec<String> {
        self.snapshot
            .def()
            .columns
            .iter()
            .map(|c| c.field.name().clone())
            .filter(|n| n != TP_TIME && n != TP_SN && n != crate::stream_def::TP_DELTA)
            .collect()
    }

    fn changelog_delta(&self) -> bool {
        self.snapshot.def().settings.changelog
    }

    fn versioned_key(&self) -> Option<(Vec<String>, String)> {
        let s = &self.snapshot.def().settings;
        s.is_versioned_kv().then(|| (s.primary_key.clone(), s.version_column().to_string()))
    }

    fn row_count(&self) -> Option<u64> {
        // A versioned_kv stream stores every version; its rows are the latest per key.
        (!self.snapshot.def().settings.is_versioned_kv()).then(|| self.snapshot.rows())
    }

    fn scan(&self, req: &sluice_sql::catalog::ScanRequest) -> sluice_sql::Result<Vec<Partition>> {
        if self.snapshot.def().settings.is_versioned_kv() {
            let (snapshot, table_cols) = (self.snapshot.clone(), self.clone_for_kv());
            let columns = req.columns.clone();
            return Ok(vec![Box::new(move || {
                let out = table_cols.latest(&snapshot, &columns)?;
                Ok(Box::new(out.into_iter().map(Ok))
                    as Box<dyn Iterator<Item = sluice_sql::Result<RecordBatch>> + Send>)
            })]);
        }
        // ALIAS columns are computed from the stored columns they use; those are read instead.
        let is_alias = |c: &str| self.aliases.iter().any(|a| a.field.name() == c);
        let (stored, result_schema) = self.stored_columns(&req.columns)?;
        let filters: Vec<ColumnFilter> = req.filters.iter().filter(|f| !is_alias(&f.column)).cloned().collect();
        let predicate = to_predicate(&self.schema, &filters);
        let scan = ScanRequest { projection: Some(stored), predicate, exact: false };
        let out = self.snapshot.output_schema(&scan).map_err(to_sql_error)?;
        let units = self.snapshot.units(&scan.predicate);
        let mut parts: Vec<Partition> = Vec::with_capacity(units.len());
        for unit in units {
            let snapshot = self.snapshot.clone();
            let scan = scan.clone();
            let out = out.clone();
            let aliases = self.aliases.clone();
            let result_schema = result_schema.clone();
            parts.push(Box::new(move || {
                let it = snapshot.read_unit(&unit, &scan, &out).map_err(to_sql_error)?;
                let it = it.map(move |r| {
                    let b = r.map_err(to_sql_error)?;
                    match &result_schema {
                        None => Ok(b),
                        Some(schema) => with_aliases(&b, schema, &aliases),
                    }
                });
                Ok(Box::new(it) as Box<dyn Iterator<Item = sluice_sql::Result<RecordBatch>> + Send>)
            }));
        }
        Ok(parts)
    }

    fn subscribe(&self, req: &SubscribeRequest) -> sluice_sql::Result<Box<dyn StreamSource>> {
        let (mut stored, result_schema) = self.stored_columns(&req.columns)?;
        if stored.is_empty() {
            // `count(*)` reads no column; the rows still need one to be counted.
            stored.push(TP_SN.to_string());
        }
        let start = match &req.start {
            SeekTo::Latest => StartAt::Latest,
            SeekTo::Earliest => StartAt::Earliest,
            SeekTo::Time(ms) => StartAt::Time(*ms),
            SeekTo::Sn(n) => StartAt::Seq(*n),
            SeekTo::Positions(p) => StartAt::Positions(p.clone()),
        };
        let db = self.db.upgrade().ok_or_else(|| to_sql_error(crate::Error::Closed))?;
        // A versioned_kv stream read from now on starts with the latest row of every key.
        let kv_backlog = self.snapshot.def().settings.is_versioned_kv() && req.start == SeekTo::Latest;
        let (start, backlog) = if kv_backlog {
            (StartAt::Positions(self.snapshot.positions()), self.clone_for_kv().latest(&self.snapshot, &req.columns)?)
        } else {
            (start, Vec::new())
        };
        let sub = db.subscribe(self.name(), start, Some(stored)).map_err(to_sql_error)?;
        let aliases = self.aliases.clone();
        let columns = req.columns.clone();
        let finish: Box<dyn Fn(RecordBatch) -> sluice_sql::Result<RecordBatch> + Send> = match result_schema {
            Some(schema) => Box::new(move |b| with_aliases(&b, &schema, &aliases)),
            None => Box::new(move |b| project_names(&b, &columns)),
        };
        Ok(Box::new(EngineSource::new(&db, sub, finish).with_backlog(backlog)))
    }
}

/// Reads the latest row per key of a versioned_kv snapshot.
struct KvReader {
    schema: SchemaRef,
    aliases: Arc<Vec<AliasEval>>,
}

impl KvReader {
    /// The latest rows, as batches of `columns` (ALIAS columns computed).
    fn latest(&self, snapshot: &Snapshot, columns: &[String]) -> sluice_sql::Result<Vec<RecordBatch>> {
        let settings = &snapshot.def().settings;
        let is_alias = |c: &str| self.aliases.iter().any(|a| a.field.name() == c);
        let mut need: Vec<String> = columns.iter().filter(|c| !is_alias(c)).cloned().collect();
        for a in self.aliases.iter().filter(|a| columns.iter().any(|c| c == a.field.name())) {
            need.extend(a.deps.iter().cloned());
        }
        need.extend(settings.primary_key.iter().cloned());
        need.push(settings.version_column().to_string());
        need.push(TP_SN.to_string());
        if settings.changelog {
            need.push(crate::stream_def::TP_DELTA.to_string());
        }
        let mut seen = std::collections::HashSet::new();
        need.retain(|c| seen.insert(c.clone()));
        // No pushed-down filter: a filter must see only the latest version of each key.
        let scan = ScanRequest { projection: Some(need), predicate: Predicate::all(), exact: false };
        let batches: Vec<RecordBatch> =
            snapshot.scan(&scan).map_err(to_sql_error)?.collect::<crate::Result<_>>().map_err(to_sql_error)?;
        let Some(latest) = crate::kv::latest_per_key(&batches, &settings.primary_key, settings.version_column())
            .map_err(to_sql_error)?
        else {
            return Ok(Vec::new());
        };
        // changelog_kv: a key whose latest row is a delete is gone.
        let latest = if settings.changelog {
            let d = latest
                .column_by_name(crate::stream_def::TP_DELTA)
                .ok_or_else(|| sluice_sql::Error::Internal { message: "no _tp_delta".into() })?;
            let d = arrow::compute::cast(d, &DataType::Int8)
                .map_err(|e| sluice_sql::Error::Internal { message: e.to_string() })?;
            let keep = arrow::compute::kernels::cmp::gt(&d, &arrow::array::Int8Array::new_scalar(0))
                .map_err(|e| sluice_sql::Error::Internal { message: e.to_string() })?;
            arrow::compute::filter_record_batch(&latest, &keep)
                .map_err(|e| sluice_sql::Error::Internal { message: e.to_string() })?
        } else {
            latest
        };
        let fields = columns
            .iter()
            .map(|c| self.schema.field_with_name(c).cloned())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| sluice_sql::Error::Internal { message: e.to_string() })?;
        let schema = Arc::new(Schema::new(fields));
        let out = if columns.iter().any(|c| is_alias(c)) {
            with_aliases(&latest, &schema, &self.aliases)?
        } else {
            project_names(&latest, columns)?
        };
        Ok(vec![out])
    }
}

/// The columns of `b` named `columns`, in that order.
fn project_names(b: &RecordBatch, columns: &[String]) -> sluice_sql::Result<RecordBatch> {
    let idx = columns
        .iter()
        .map(|c| b.schema().index_of(c))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| sluice_sql::Error::Internal { message: e.to_string() })?;
    b.project(&idx).map_err(|e| sluice_sql::Error::Internal { message: e.to_string() })
}

/// The batch with the ALIAS columns of `schema` computed, in `schema`'s column order.
fn with_aliases(b: &RecordBatch, schema: &SchemaRef, aliases: &[AliasEval]) -> sluice_sql::Result<RecordBatch> {
    let mut cols = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        match aliases.iter().find(|a| a.field.name() == f.name()) {
            Some(a) => {
                let v = sluice_sql::eval_expr_on_batch(&a.expr, b)?;
                let v = if v.data_type() == f.data_type() {
                    v
                } else {
                    arrow::compute::cast(&v, f.data_type())
                        .map_err(|e| sluice_sql::Error::Execution { message: format!("ALIAS {}: {e}", f.name()) })?
                };
                cols.push(v);
            }
            None => cols.push(
                b.column_by_name(f.name())
                    .cloned()
                    .ok_or_else(|| sluice_sql::Error::Internal { message: format!("scan lost column {}", f.name()) })?,
            ),
        }
    }
    let fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
        .map_err(|e| sluice_sql::Error::Internal { message: e.to_string() })
}

/// Engine errors met while executing a query, as SQL execution errors.
pub(crate) fn to_sql_error(e: crate::Error) -> sluice_sql::Error {
    match e {
        crate::Error::StreamNotFound { name } => sluice_sql::Error::UnknownStream { name },
        crate::Error::ResourcesExhausted(message) => sluice_sql::Error::ResourcesExhausted { message },
        crate::Error::Sql(e) => e,
        other => sluice_sql::Error::Execution { message: other.to_string() },
    }
}

/// Pushed-down filters as a pruning predicate. Filters whose value cannot be expressed in the
/// column's statistics are left out (pruning is only an optimisation: the executor filters).
fn to_predicate(schema: &SchemaRef, filters: &[ColumnFilter]) -> Predicate {
    let mut p = Predicate::all();
    for f in filters {
        let Ok(field) = schema.field_with_name(&f.column) else { continue };
        let dt = field.data_type();
        let conj = match &f.op {
            FilterOp::In(values) => {
                let vals: Option<Vec<Stat>> = values.iter().map(|v| stat_of(v, dt)).collect();
                match vals {
                    Some(values) => ColumnPredicate::In { column: f.column.clone(), values },
                    None => continue,
                }
            }
            op => {
                let Some(v) = stat_of(&f.value, dt) else { continue };
                let r = ColumnRange::new(f.column.clone());
                ColumnPredicate::Range(match op {
                    FilterOp::Eq => ColumnRange::eq(f.column.clone(), v),
                    FilterOp::Lt => r.lt(v),
                    FilterOp::LtEq => r.le(v),
                    FilterOp::Gt => r.gt(v),
                    FilterOp::GtEq => r.ge(v),
                    FilterOp::In(_) => continue,
                })
            }
        };
        p = p.and(conj);
    }
    p
}

/// A literal as a statistics value comparable with a column of type `dt` (timestamps in the
/// column's unit).
fn stat_of(v: &ScalarValue, dt: &DataType) -> Option<Stat> {
    let unit_scale = |u: &TimeUnit| -> i128 {
        match u {
            TimeUnit::Second => 1,
            TimeUnit::Millisecond => 1_000,
            TimeUnit::Microsecond => 1_000_000,
            TimeUnit::Nanosecond => 1_000_000_000,
        }
    };
    match (v, dt) {
        (ScalarValue::Timestamp(x, from, _), DataType::Timestamp(to, _)) => {
            let (a, b) = (unit_scale(from), unit_scale(to));
            let scaled = *x as i128 * b / a;
            i64::try_from(scaled).ok().map(Stat::Int)
        }
        (ScalarValue::Timestamp(..), _) | (_, DataType::Timestamp(..)) => None,
        (ScalarValue::Date32(d), DataType::Date32) => Some(Stat::Int(*d as i64)),
        (ScalarValue::Int64(x), _) => Some(Stat::Int(*x)),
        (ScalarValue::UInt64(x), _) => Some(Stat::UInt(*x)),
        (ScalarValue::Float64(x), _) => Some(Stat::Float(*x)),
        (
            ScalarValue::Utf8(s),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..),
        ) => Some(Stat::Str(s.clone())),
        (ScalarValue::Boolean(b), DataType::Boolean) => Some(Stat::Bool(*b)),
        _ => None,
    }
}
