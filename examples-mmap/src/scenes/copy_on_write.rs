//! copy-on-write: numpy's mode 'c', which the tutorial lists beside 'r+'. The child
//! maps the parent's file privately and adds 1: its pages become its own copies, and
//! the parent, which maps the file shared, still sees 1s.

use std::path::Path;

use anyhow::{Result, ensure};
use ndarray::ArrayViewMut1;
use plumbing::memory::show_memory;
use plumbing::show::{show_values, verdict};
use plumbing::{Process, pause_here};

use crate::{Task, file};

/// The parent: the same file of ones as in one-child, the same wait for the child.
pub fn parent(path: &Path, n: usize) -> Result<()> {
    let map = file::create(path, n, 1.0f32)?; // memmap(..., mode='w+'); fill(1.0)
    map.flush()?;
    println!("parent: created {}", path.display());
    println!("parent:   with {n} f32 values of 1, flushed");
    // SAFETY: no child exists yet, so no other process writes the file.
    show_values("parent", unsafe { file::view(&map, n) });

    Process::new(Task::CopyOnWrite { file: path.into(), len: n }).start()?.join()?;

    // SAFETY: the child has exited (and it could not write the file anyway).
    let data = unsafe { file::view(&map, n) };
    show_values("parent", data);
    let changed = data.iter().filter(|&&v| v != 1.0).count();
    ensure!(
        changed == 0,
        "expected 1 in all {n} values (the child's mapping was private), but {changed} changed"
    );
    verdict(&format!(
        "copy-on-write: the parent still sees 1 in all {n} values; the child's 2s stayed private"
    ));
    Ok(())
}

/// The child: one-child's task, but with memmap(filename, mode='c', ...).
pub fn child(path: &Path, n: usize) -> Result<()> {
    let mut private = file::map_private(path, n)?;
    // SAFETY: n aligned f32 values (map_private checked), in a mapping that only this
    // process can see; `private` outlives the view.
    let mut data = unsafe { ArrayViewMut1::from_shape_ptr(n, private.as_mut_ptr().cast::<f32>()) };
    show_values("child", data.view());
    let ones = data.iter().filter(|&&v| v == 1.0).count(); // reading every page copies none
    println!("child: read all {n} values, {ones} of them 1");
    show_memory("child", &data); // read, not written: still the file's pages, shared
    pause_here(&data); // --pause: look from another terminal (Enter goes on)
    data += 1.0; // each page written becomes this process's own copy
    show_values("child", data.view());
    show_memory("child", &data); // written: private copies
    pause_here(&data); // --pause: and look again
    Ok(())
}
