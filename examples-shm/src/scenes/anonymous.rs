//! anonymous: the tutorial's `RawArray`. The parent maps shared memory that has no
//! name, fills it with ones in place, and forks a child that inherits the mapping at
//! the same address; the child adds 1, and the parent sees 2.0 everywhere.

use std::time::Instant;

use anyhow::Result;
use plumbing::show::{expect_all, seconds, show_values, size, verdict};

use crate::mapping::{Mapped, SharedMapping, view, view_mut};
use crate::scenes::{named, scene_took};

/// The parent: `RawArray('d', n)`, filled with ones, then a forked child.
pub fn parent(n: usize) -> Result<()> {
    let started = Instant::now();
    let bytes = n * size_of::<f64>(); // checked to fit before the scene
    let filling = Instant::now();
    let shared = SharedMapping::new(bytes)?; // MAP_SHARED | MAP_ANONYMOUS
    // SAFETY: a fresh read-write mapping that no other process has yet (no child
    // exists); the view ends with this statement.
    unsafe { view_mut(&shared, n) }?.fill(1.0);
    let took = seconds(filling.elapsed());
    println!(
        "parent: mapped {} with no name, filled {n} ones in place ({took})",
        size(bytes as u64)
    );

    // Process(target=task, args=(data,)) under fork: the child inherits the mapping.
    // SAFETY: this program starts no thread of its own; what the plumbing's own
    // threads do, and what the child may do, is in plumbing::fork.
    let child = unsafe { plumbing::fork(|| child(&shared, n)) }?;
    let took = child.join()?; // join()
    println!("parent: the child took {} (forked, added 1, exited)", seconds(took));
    // SAFETY: the child has exited; nobody writes while this read-only view lives.
    let data = unsafe { view(&shared, n) }?;
    show_values("parent", data);
    expect_all(data, 2.0, "the shared mapping")?;
    scene_took(started);
    verdict(&format!(
        "anonymous: the parent sees 2.0 in all {n} elements: the forked child wrote into the same pages."
    ));
    Ok(())
}

/// The forked child: the mapping is already in its address space, at the same
/// address, because MAP_SHARED mappings are inherited as shared (a MAP_PRIVATE one
/// would be inherited copy-on-write, and the parent would never see our +1).
pub fn child(shared: &SharedMapping, n: usize) -> Result<()> {
    println!("child: forked; the shared mapping is here, at the same address {:p}", shared.start());
    // SAFETY: the mapping stays mapped in this process until it exits; the parent
    // holds no view while it waits for us.
    let data = unsafe { view_mut(shared, n) }?;
    named::task(data)
}
