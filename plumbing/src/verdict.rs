//! The evidence behind a verdict line: the whole array, not the corner that was
//! printed.

use anyhow::{Result, bail};
use ndarray::{ArrayView, Dimension};

/// Every element of `data` is `expected`, or an error that says what was expected
/// and the first element that is not: "expected 2.0 in all 1000 elements of the
/// segment, but element 0 is 1".
pub fn expect_all<D: Dimension>(
    data: ArrayView<'_, f64, D>,
    expected: f64,
    what: &str,
) -> Result<()> {
    if let Some((at, seen)) = data.indexed_iter().find(|(_, x)| **x != expected) {
        bail!(
            "expected {expected:.1} in all {} elements of {what}, but element {at:?} is {seen}",
            data.len()
        );
    }
    Ok(())
}
