//! many-children-locked: the tutorial's third example. The same 100 children, each
//! taking a lock before it adds 1, so no update can be lost: every value must end
//! exactly at 100. Our lock covers 1 MiB of the file at a time, not the whole array,
//! so children can work on different parts of it at once.

use std::path::Path;

use anyhow::{Result, ensure};
use ndarray::ArrayViewMut1;
use plumbing::Process;
use plumbing::memory::show_memory;
use plumbing::pause_here;
use plumbing::show::verdict;

use crate::scenes::many_children;
use crate::{Task, file, updates::Updates};

/// How many values a child updates under one lock: 1 MiB of f32. A lock per value
/// would cost two system calls per value (hours for 100 x 100,000,000 updates); one
/// around the whole array, as in the tutorial, lets one child work at a time while
/// the rest wait. With 1 MiB a child holds the lock for well under a millisecond.
const CHUNK: usize = 256 * 1024;

/// The parent: many-children's, then the verdict that nothing was lost.
pub fn parent(path: &Path, n: usize, children: u32) -> Result<()> {
    let task = |id| Task::ManyChildrenLocked { file: path.into(), len: n, id };
    let start = |id| Process::new(task(id)).start();
    let Updates { below, smallest, .. } = many_children::run(path, n, children, start)?;
    ensure!(
        below == 0,
        "expected {children} in all {n} values, but {below} are below (smallest {smallest})"
    );
    verdict(&format!(
        "lock: all {n} values are exactly {children}; not one of the {children} x {n} updates was lost"
    ));
    Ok(())
}

/// The child: the tutorial's `task(filename, shape, lock)`, one locked chunk at a time.
pub fn child(path: &Path, n: usize, id: u32) -> Result<()> {
    let (file, map) = file::open::<f32>(path, n)?; // memmap(..., mode='r+')
    file::populate(&map)?;
    for start in (0..n).step_by(CHUNK) {
        let len = CHUNK.min(n - start);
        let _lock = file::lock_values(&file, start, len)?; // with lock: (waits its turn)
        // SAFETY: values start..start + len lie inside the mapping (n aligned f32,
        // checked by file::open). We hold the lock on exactly their bytes, every
        // child takes it before writing, and the parent holds no view: nobody else
        // touches them while `chunk` lives. `chunk` is dropped before `_lock`.
        let mut chunk = unsafe {
            let first = map.as_mut_ptr().cast::<f32>().add(start);
            ArrayViewMut1::from_shape_ptr(len, first)
        };
        chunk += 1.0; // data[:] += 1, for this chunk
    }
    if id == 1 {
        show_memory("child 1", &(map.as_ptr(), map.len())); // speaks for every child
        pause_here(&(map.as_ptr(), map.len())); // --pause: look, then Enter
    }
    Ok(())
}
