//! copy-in: the tutorial's `Array`. An array that already exists in the parent's own
//! memory is copied into a fresh shared mapping first; then the same forked child as
//! in `anonymous` adds 1. Only the copy is shared: the original still holds ones.

use std::time::Instant;

use anyhow::Result;
use ndarray::Array1;
use plumbing::show::{expect_all, seconds, show_values, size, verdict};

use crate::mapping::{SharedMapping, view, view_mut};
use crate::scenes::{anonymous, scene_took};

/// The parent: an ordinary array, `Array('d', data)` to share it, then the child.
pub fn parent(n: usize) -> Result<()> {
    let started = Instant::now();
    let bytes = n * size_of::<f64>(); // checked to fit, twice, before the scene
    let making = Instant::now();
    // An ordinary array in this process's private memory: a fork would give the
    // child a copy-on-write copy, so the child's writes would never come back.
    let original = Array1::<f64>::ones(n);
    println!(
        "parent: made an ordinary (private) array of {n} ones ({})",
        seconds(making.elapsed())
    );

    // The extra step of copy-in: a second array's worth of shared memory, and one
    // pass that copies every byte across. (One memcpy here; the tutorial's Array()
    // converts each of the 100 million values through a Python object.)
    let copying = Instant::now();
    let shared = SharedMapping::new(bytes)?;
    // SAFETY: a fresh read-write mapping, no child yet; the view ends with the statement.
    unsafe { view_mut(&shared, n) }?.assign(&original);
    let cost = seconds(copying.elapsed());
    let bytes = size(bytes as u64);
    println!("parent: copied it into a new shared mapping of {bytes} (extra cost: {cost})");

    // SAFETY: this program starts no thread of its own (see plumbing::fork).
    let child = unsafe { plumbing::fork(|| anonymous::child(&shared, n)) }?;
    let took = child.join()?;
    println!("parent: the child took {} (forked, added 1, exited)", seconds(took));
    // SAFETY: the child has exited; nobody writes while this read-only view lives.
    let data = unsafe { view(&shared, n) }?;
    show_values("parent", data);
    expect_all(data, 2.0, "the shared copy")?;
    expect_all(original.view(), 1.0, "the original array")?;
    scene_took(started);
    verdict(&format!(
        "copy-in: the parent sees 2.0 in all {n} elements of the shared copy and 1.0 in the original: only the copy is shared."
    ));
    Ok(())
}
