//! Expressions outside queries: `INSERT ... VALUES` rows, DEFAULT expressions (constant or over
//! other columns of the inserted batch), setting values.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use sqlparser::ast::Expr;

use crate::binder::{Binder, ExprCtx, Scope, ScopeCol};
use crate::catalog::{Catalog, Table};
use crate::context::QueryOptions;
use crate::error::{Error, Result};
use crate::functions::{cast::cast_array, type_name};
use crate::scalar::ScalarValue;

struct NoTables;

impl Catalog for NoTables {
    fn table(&self, name: &str) -> Result<Arc<dyn Table>> {
        Err(Error::UnknownStream { name: name.to_string() })
    }
}

fn constant_array(b: &mut Binder<'_>, e: &Expr) -> Result<ArrayRef> {
    let scope = Scope::default();
    let ctx = ExprCtx { scope: &scope, aliases: None, aggs: None, clause: "a constant expression" };
    match b.bind_expr(e, &ctx)? {
        crate::expr::BExpr::Literal(a) => Ok(a),
        other => Err(Error::InvalidValue { message: format!("`{other}` is not a constant") }),
    }
}

/// Evaluates a constant expression (casts, `now()`, functions) to a value.
pub fn eval_constant(expr: &Expr) -> Result<ScalarValue> {
    let opts = QueryOptions::default();
    let mut b = Binder::new(&NoTables, &opts);
    let a = constant_array(&mut b, expr)?;
    ScalarValue::try_from_array(a.as_ref(), 0)
}

/// Builds the batch of an `INSERT INTO s (columns) VALUES rows`: each value is constant-folded
/// and cast to its column's type in `target`. Columns not listed are left out (the engine fills
/// their defaults). Errors name the row (1-based) and column.
pub fn values_to_batch(rows: &[Vec<Expr>], target: &SchemaRef, columns: &[String]) -> Result<RecordBatch> {
    let fields = columns
        .iter()
        .map(|c| {
            target.field_with_name(c).cloned().map_err(|_| Error::UnknownColumn {
                name: c.clone(),
                stream: None,
                span: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = QueryOptions::default();
    let mut b = Binder::new(&NoTables, &opts);
    let mut cols: Vec<Vec<ArrayRef>> = vec![Vec::with_capacity(rows.len()); fields.len()];
    for (r, row) in rows.iter().enumerate() {
        if row.len() != fields.len() {
            return Err(Error::InvalidValue {
                message: format!("row {} has {} values, expected {}", r + 1, row.len(), fields.len()),
            });
        }
        for (i, (e, f)) in row.iter().zip(&fields).enumerate() {
            let at = |m: String| Error::InvalidValue { message: format!("row {}, column `{}`: {m}", r + 1, f.name()) };
            let a = constant_array(&mut b, e).map_err(|err| match err {
                Error::InvalidValue { message } => at(message),
                other => other,
            })?;
            let a = cast_array(&a, f.data_type()).map_err(|err| {
                at(format!(
                    "cannot convert {} of type {} to {}: {err}",
                    e,
                    type_name(a.data_type()),
                    type_name(f.data_type())
                ))
            })?;
            if a.is_null(0) && !f.is_nullable() {
                return Err(at(format!(
                    "NULL is not allowed in non-nullable column of type {}",
                    type_name(f.data_type())
                )));
            }
            cols[i].push(a);
        }
    }
    let arrays = cols
        .into_iter()
        .zip(&fields)
        .map(|(parts, f)| {
            if parts.is_empty() {
                return Ok(arrow::array::new_empty_array(f.data_type()));
            }
            let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            Ok(arrow::compute::concat(&refs)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let schema = Arc::new(Schema::new(fields));
    Ok(RecordBatch::try_new_with_options(schema, arrays, &RecordBatchOptions::new().with_row_count(Some(rows.len())))?)
}

/// Evaluates an expression over the columns of `batch` (DEFAULT / ALIAS expressions that
/// reference other columns), one value per row.
pub fn eval_expr_on_batch(expr: &Expr, batch: &RecordBatch) -> Result<ArrayRef> {
    let opts = QueryOptions::default();
    let mut b = Binder::new(&NoTables, &opts);
    let schema = batch.schema();
    let scope = Scope {
        cols: schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| ScopeCol {
                qualifier: None,
                info: crate::logical::ColumnInfo {
                    id: i,
                    name: f.name().clone(),
                    ty: f.data_type().clone(),
                    nullable: f.is_nullable(),
                },
                hidden: false,
            })
            .collect(),
        table: None,
    };
    let ctx = ExprCtx { scope: &scope, aliases: None, aggs: None, clause: "a column expression" };
    let e = b.bind_expr(expr, &ctx)?;
    // Column ids are the batch positions.
    e.eval_array(batch)
}
