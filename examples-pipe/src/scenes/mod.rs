//! The one scene of this program, and the size check it needs first.

pub mod pipe;

use anyhow::Result;
use plumbing::memory;

/// The side n of an (n, n) array that the child and the parent can both hold at
/// once, or a clear error before anything is allocated.
pub fn checked_side(n: u64) -> Result<usize> {
    memory::array_len(n, n.checked_mul(n), size_of::<f64>(), 2, "the child's and the parent's")?;
    Ok(usize::try_from(n)?) // n * n fits, so n does
}
