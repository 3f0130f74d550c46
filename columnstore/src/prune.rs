//! Pruning: which row groups, and which rows (pages) inside them, a predicate needs.
//!
//! Row groups are judged by their column-chunk statistics; inside the surviving row groups each
//! constrained column's pages are judged by the page index (column index min/max/null counts,
//! offset index row counts) and the per-column page selections are intersected. Anything that
//! cannot be judged is kept.

use arrow::array::{Array, ArrayRef, UInt64Array};
use arrow::datatypes::Schema;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use parquet::file::metadata::ParquetMetaData;

use crate::{ColumnPredicate, Predicate, Stat};

/// What a scan of one part reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanPlan {
    /// Row groups to read, ascending.
    pub row_groups: Vec<usize>,
    /// Rows to read within those row groups (concatenated), or `None` for all of them.
    pub selection: Option<RowSelection>,
    /// Rows in the part.
    pub total_rows: u64,
    /// Rows the plan reads (before the caller's exact filter).
    pub selected_rows: u64,
}

/// One constraint that can be checked, with its column's statistics converter.
struct Checked<'a> {
    pred: &'a ColumnPredicate,
    conv: StatisticsConverter<'a>,
}

fn may_match(
    pred: &ColumnPredicate,
    mins: &ArrayRef,
    maxes: &ArrayRef,
    nulls: &UInt64Array,
    i: usize,
    rows: u64,
) -> bool {
    let all_null = rows > 0 && !nulls.is_null(i) && nulls.value(i) == rows;
    let min = Stat::from_array(mins.as_ref(), i);
    let max = Stat::from_array(maxes.as_ref(), i);
    pred.may_match(min.as_ref(), max.as_ref(), all_null)
}

/// Plans a scan of a part with metadata `meta` and Arrow schema `schema`.
pub(crate) fn plan(meta: &ParquetMetaData, schema: &Schema, predicate: &Predicate, page_pruning: bool) -> ScanPlan {
    let rgs = meta.row_groups();
    let rg_rows: Vec<u64> = rgs.iter().map(|rg| u64::try_from(rg.num_rows()).unwrap_or(0)).collect();
    let total_rows: u64 = rg_rows.iter().sum();
    let descr = meta.file_metadata().schema_descr();
    let checked: Vec<Checked<'_>> = predicate
        .conjuncts
        .iter()
        .filter_map(|pred| {
            let field = schema.field_with_name(pred.column()).ok()?;
            if !Stat::supports(field.data_type()) {
                return None;
            }
            let conv = StatisticsConverter::try_new(pred.column(), schema, descr).ok()?;
            Some(Checked { pred, conv: conv.with_missing_null_counts_as_zero(false) })
        })
        .collect();

    // Row groups.
    let mut keep = vec![true; rgs.len()];
    for c in &checked {
        let (Ok(mins), Ok(maxes), Ok(nulls)) = (
            c.conv.row_group_mins(rgs.iter()),
            c.conv.row_group_maxes(rgs.iter()),
            c.conv.row_group_null_counts(rgs.iter()),
        ) else {
            continue;
        };
        if mins.len() != rgs.len() || maxes.len() != rgs.len() || nulls.len() != rgs.len() {
            continue;
        }
        for (i, k) in keep.iter_mut().enumerate() {
            if *k && !may_match(c.pred, &mins, &maxes, &nulls, i, rg_rows[i]) {
                *k = false;
            }
        }
    }
    let row_groups: Vec<usize> = (0..rgs.len()).filter(|&i| keep[i]).collect();

    // Pages.
    let page_index = meta.page_index().filter(|_| page_pruning && !checked.is_empty());
    let Some(page_index) = page_index else {
        let selected_rows = row_groups.iter().map(|&i| rg_rows[i]).sum();
        return ScanPlan { row_groups, selection: None, total_rows, selected_rows };
    };
    let page_index = page_index.as_ref();
    let mut selectors: Vec<RowSelector> = Vec::new();
    let mut kept_groups = Vec::with_capacity(row_groups.len());
    let mut pruned_any = false;
    for &rg in &row_groups {
        let rows = rg_rows[rg];
        let mut sel: Option<RowSelection> = None;
        for c in &checked {
            let idx = [rg];
            let (Ok(mins), Ok(maxes), Ok(nulls), Ok(Some(counts))) = (
                c.conv.data_page_mins(page_index, idx.iter()),
                c.conv.data_page_maxes(page_index, idx.iter()),
                c.conv.data_page_null_counts(page_index, idx.iter()),
                c.conv.data_page_row_counts(page_index, rgs, idx.iter()),
            ) else {
                continue;
            };
            let n = counts.len();
            if n == 0 || mins.len() != n || maxes.len() != n || nulls.len() != n {
                continue;
            }
            if counts.null_count() > 0 || counts.values().iter().sum::<u64>() != rows {
                continue;
            }
            let mut col: Vec<RowSelector> = Vec::with_capacity(n);
            for p in 0..n {
                let page_rows = counts.value(p);
                let r = page_rows as usize;
                if may_match(c.pred, &mins, &maxes, &nulls, p, page_rows) {
                    col.push(RowSelector::select(r));
                } else {
                    col.push(RowSelector::skip(r));
                }
            }
            let col = RowSelection::from(col);
            sel = Some(match sel {
                None => col,
                Some(s) => s.intersection(&col),
            });
        }
        match sel {
            None => {
                selectors.push(RowSelector::select(rows as usize));
                kept_groups.push(rg);
            }
            Some(s) if !s.selects_any() => pruned_any = true,
            Some(s) => {
                if s.row_count() as u64 != rows {
                    pruned_any = true;
                }
                // A selection may end early with skipped rows left implicit: pad it.
                let covered = (s.row_count() + s.skipped_row_count()) as u64;
                selectors.extend(s.iter().copied());
                if covered < rows {
                    selectors.push(RowSelector::skip((rows - covered) as usize));
                }
                kept_groups.push(rg);
            }
        }
    }
    let selection = RowSelection::from(selectors);
    let selected_rows = selection.row_count() as u64;
    ScanPlan { row_groups: kept_groups, selection: pruned_any.then_some(selection), total_rows, selected_rows }
}
