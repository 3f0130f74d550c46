//! The pruning predicate: a conjunction of simple per-column constraints that can be checked
//! against min/max statistics (of a part, a row group or a page).
//!
//! Semantics are SQL's: a null never satisfies a constraint, NaN satisfies no range. Pruning is
//! conservative: a constraint that cannot be decided from the statistics (unknown column, no
//! statistics, values of kinds that do not compare) keeps the data.

use std::cmp::Ordering;

use crate::{PartInfo, Stat};

/// One end of a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// The bound's value.
    pub value: Stat,
    /// True for `>=`/`<=`, false for `>`/`<`.
    pub inclusive: bool,
}

/// `column` lies within `min..max` (either end optional). Timestamp columns are compared in
/// their own unit (see [`Stat`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRange {
    /// The top-level column.
    pub column: String,
    /// Lower bound.
    pub min: Option<Bound>,
    /// Upper bound.
    pub max: Option<Bound>,
}

impl ColumnRange {
    /// An unbounded range on `column` (matches every non-null value).
    pub fn new(column: impl Into<String>) -> Self {
        ColumnRange { column: column.into(), min: None, max: None }
    }

    /// `column = value`.
    pub fn eq(column: impl Into<String>, value: impl Into<Stat>) -> Self {
        let value = value.into();
        ColumnRange::new(column).ge(value.clone()).le(value)
    }

    /// Adds `column > value`.
    pub fn gt(mut self, value: impl Into<Stat>) -> Self {
        self.min = Some(Bound { value: value.into(), inclusive: false });
        self
    }

    /// Adds `column >= value`.
    pub fn ge(mut self, value: impl Into<Stat>) -> Self {
        self.min = Some(Bound { value: value.into(), inclusive: true });
        self
    }

    /// Adds `column < value`.
    pub fn lt(mut self, value: impl Into<Stat>) -> Self {
        self.max = Some(Bound { value: value.into(), inclusive: false });
        self
    }

    /// Adds `column <= value`.
    pub fn le(mut self, value: impl Into<Stat>) -> Self {
        self.max = Some(Bound { value: value.into(), inclusive: true });
        self
    }

    fn contains(&self, v: &Stat) -> Option<bool> {
        if let Some(lo) = &self.min {
            match v.compare(&lo.value)? {
                Ordering::Less => return Some(false),
                Ordering::Equal if !lo.inclusive => return Some(false),
                _ => {}
            }
        }
        if let Some(hi) = &self.max {
            match v.compare(&hi.value)? {
                Ordering::Greater => return Some(false),
                Ordering::Equal if !hi.inclusive => return Some(false),
                _ => {}
            }
        }
        Some(true)
    }

    /// False only when no value in `[min, max]` can lie in the range.
    fn overlaps(&self, min: Option<&Stat>, max: Option<&Stat>) -> bool {
        if let (Some(lo), Some(hi)) = (&self.min, &self.max) {
            match lo.value.compare(&hi.value) {
                Some(Ordering::Greater) => return false,
                Some(Ordering::Equal) if !(lo.inclusive && hi.inclusive) => return false,
                _ => {}
            }
        }
        if let (Some(lo), Some(max)) = (&self.min, max) {
            match max.compare(&lo.value) {
                Some(Ordering::Less) => return false,
                Some(Ordering::Equal) if !lo.inclusive => return false,
                _ => {}
            }
        }
        if let (Some(hi), Some(min)) = (&self.max, min) {
            match min.compare(&hi.value) {
                Some(Ordering::Greater) => return false,
                Some(Ordering::Equal) if !hi.inclusive => return false,
                _ => {}
            }
        }
        true
    }
}

/// One constraint on one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnPredicate {
    /// The value lies in a range (also `=`: a range with two equal inclusive ends).
    Range(ColumnRange),
    /// The value is one of `values` (`IN (...)`); an empty list matches nothing.
    In {
        /// The top-level column.
        column: String,
        /// The accepted values.
        values: Vec<Stat>,
    },
}

impl From<ColumnRange> for ColumnPredicate {
    fn from(r: ColumnRange) -> Self {
        ColumnPredicate::Range(r)
    }
}

impl ColumnPredicate {
    /// The column constrained.
    pub fn column(&self) -> &str {
        match self {
            ColumnPredicate::Range(r) => &r.column,
            ColumnPredicate::In { column, .. } => column,
        }
    }

    /// Whether a single value satisfies the constraint (null: never; undecidable: no).
    pub fn matches(&self, value: Option<&Stat>) -> bool {
        let Some(v) = value else { return false };
        match self {
            ColumnPredicate::Range(r) => r.contains(v) == Some(true),
            ColumnPredicate::In { values, .. } => values.iter().any(|x| v.compare(x) == Some(Ordering::Equal)),
        }
    }

    /// Whether some value with statistics `min`/`max` (bounds of the non-null values; `None`
    /// when unknown) might satisfy the constraint. `all_null` says the data holds only nulls.
    pub fn may_match(&self, min: Option<&Stat>, max: Option<&Stat>, all_null: bool) -> bool {
        if all_null {
            return false;
        }
        match self {
            ColumnPredicate::Range(r) => r.overlaps(min, max),
            ColumnPredicate::In { values, .. } => values.iter().any(|v| {
                let above_min = min.is_none_or(|m| v.compare(m) != Some(Ordering::Less));
                let below_max = max.is_none_or(|m| v.compare(m) != Some(Ordering::Greater));
                above_min && below_max
            }),
        }
    }
}

/// A conjunction of column constraints; the empty predicate matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Predicate {
    /// All must hold.
    pub conjuncts: Vec<ColumnPredicate>,
}

impl Predicate {
    /// The predicate that keeps everything.
    pub fn all() -> Self {
        Predicate::default()
    }

    /// Adds a constraint.
    pub fn and(mut self, c: impl Into<ColumnPredicate>) -> Self {
        self.conjuncts.push(c.into());
        self
    }

    /// Adds `column IN (values)`.
    pub fn and_in(mut self, column: impl Into<String>, values: Vec<Stat>) -> Self {
        self.conjuncts.push(ColumnPredicate::In { column: column.into(), values });
        self
    }

    /// True for the predicate that keeps everything.
    pub fn is_empty(&self) -> bool {
        self.conjuncts.is_empty()
    }

    /// Whether a part might hold matching rows, judged by its [`PartInfo`] statistics alone
    /// (no I/O). Used to skip whole parts before opening them.
    pub fn may_match_part(&self, info: &PartInfo) -> bool {
        if info.rows == 0 {
            return false;
        }
        self.conjuncts.iter().all(|c| match info.column(c.column()) {
            None => true,
            Some(stats) => {
                let all_null = stats.null_count == Some(info.rows);
                c.may_match(stats.min.as_ref(), stats.max.as_ref(), all_null)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(v: i64) -> Stat {
        Stat::Int(v)
    }

    #[test]
    fn ranges_prune_only_disjoint_data() {
        let r: ColumnPredicate = ColumnRange::new("a").ge(10).lt(20).into();
        assert!(!r.may_match(Some(&i(0)), Some(&i(9)), false));
        assert!(r.may_match(Some(&i(0)), Some(&i(10)), false));
        assert!(r.may_match(Some(&i(19)), Some(&i(30)), false));
        assert!(!r.may_match(Some(&i(20)), Some(&i(30)), false));
        assert!(r.may_match(None, Some(&i(30)), false));
        assert!(r.may_match(None, None, false));
        assert!(!r.may_match(None, None, true));
        // incomparable statistics never prune
        assert!(r.may_match(Some(&Stat::Str("x".into())), Some(&Stat::Str("y".into())), false));
        // an empty range matches nothing
        let empty: ColumnPredicate = ColumnRange::new("a").gt(5).lt(5).into();
        assert!(!empty.may_match(None, None, false));
        assert!(!empty.matches(Some(&i(5))));
    }

    #[test]
    fn in_lists_and_single_values() {
        let p = ColumnPredicate::In { column: "s".into(), values: vec!["b".into(), "q".into()] };
        let s = |v: &str| Stat::Str(v.into());
        assert!(p.may_match(Some(&s("a")), Some(&s("c")), false));
        assert!(!p.may_match(Some(&s("c")), Some(&s("p")), false));
        assert!(p.matches(Some(&s("q"))));
        assert!(!p.matches(Some(&s("c"))));
        assert!(!p.matches(None));
        let none = ColumnPredicate::In { column: "s".into(), values: vec![] };
        assert!(!none.may_match(None, None, false));
        let f: ColumnPredicate = ColumnRange::new("f").ge(1.0).into();
        assert!(!f.matches(Some(&Stat::Float(f64::NAN))));
        assert!(f.may_match(Some(&Stat::Float(f64::NAN)), None, false));
    }
}
