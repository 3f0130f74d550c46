//! Query results as an aligned text table (the `sluice sql` command).

use sluice::arrow::array::RecordBatch;
use sluice::arrow::datatypes::Schema;

/// Renders batches as a table with a header and a row count, psql style.
pub fn render(schema: &Schema, batches: &[RecordBatch]) -> String {
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows: Vec<Vec<String>> = vec![];
    for b in batches {
        for r in 0..b.num_rows() {
            rows.push(
                (0..b.num_columns())
                    .map(|c| sluice::text::format_value(b.column(c), r).unwrap_or_else(|| "NULL".into()))
                    .collect(),
            );
        }
    }
    let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    for row in &rows {
        for (w, v) in widths.iter_mut().zip(row) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let parts: Vec<String> = cells.iter().zip(&widths).map(|(v, w)| format!(" {v:<w$} ")).collect();
        parts.join("|").trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&line(&names));
    out.push('\n');
    out.push_str(&widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out.push_str(&format!("({} row{})\n", rows.len(), if rows.len() == 1 { "" } else { "s" }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use sluice::arrow::array::{Int64Array, StringArray};
    use sluice::arrow::datatypes::{DataType, Field};

    #[test]
    fn aligned_with_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 22])), Arc::new(StringArray::from(vec![Some("a"), None]))],
        )
        .unwrap();
        assert_eq!(render(&schema, &[b]), " id | name\n----+------\n 1  | a\n 22 | NULL\n(2 rows)\n");
    }
}
