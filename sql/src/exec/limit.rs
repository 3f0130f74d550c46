//! LIMIT / OFFSET: reads partitions one after another and stops as soon as it has enough rows.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use super::{ExecNode, LazyPart, PartStream};
use crate::context::ExecContext;
use crate::error::Result;

/// LIMIT `fetch` OFFSET `skip`.
#[derive(Debug)]
pub struct LimitExec {
    /// Input.
    pub input: Arc<dyn ExecNode>,
    /// Rows skipped.
    pub skip: usize,
    /// Rows returned.
    pub fetch: Option<usize>,
}

impl ExecNode for LimitExec {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }

    fn execute(&self, ctx: &ExecContext) -> Result<Vec<LazyPart>> {
        let mut parts = self.input.execute(ctx)?.into_iter();
        let (mut skip, mut left) = (self.skip, self.fetch.unwrap_or(usize::MAX));
        let mut cur: Option<PartStream> = None;
        let stream = std::iter::from_fn(move || {
            loop {
                if left == 0 {
                    return None;
                }
                if let Some(s) = cur.as_mut() {
                    match s.next() {
                        Some(Ok(b)) => {
                            let n = b.num_rows();
                            if skip >= n {
                                skip -= n;
                                continue;
                            }
                            let take = (n - skip).min(left);
                            let out = b.slice(skip, take);
                            skip = 0;
                            left -= take;
                            return Some(Ok(out));
                        }
                        Some(Err(e)) => return Some(Err(e)),
                        None => cur = None,
                    }
                }
                let p = parts.next()?;
                match p() {
                    Ok(s) => cur = Some(s),
                    Err(e) => return Some(Err(e)),
                }
            }
        });
        Ok(vec![Box::new(move || Ok(Box::new(stream) as PartStream))])
    }

    fn describe(&self) -> String {
        match self.fetch {
            Some(f) => format!("Limit {f} offset {}", self.skip),
            None => format!("Offset {}", self.skip),
        }
    }

    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
}
