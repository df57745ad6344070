//! named: the tutorial's `SharedMemory`. The parent creates a named segment and
//! fills it with ones through an ndarray view; a child started fresh (spawn style)
//! finds it by its name, maps it and adds 1; the parent sees 2.0 everywhere. Both
//! processes used the same physical pages: nothing was copied.

use std::time::Instant;

use anyhow::Result;
use ndarray::ArrayViewMut1;
use plumbing::show::{expect_all, seconds, show_values, size, verdict};
use plumbing::{Process, memory::show_memory, pause_here};

use crate::mapping::{view, view_mut};
use crate::scenes::scene_took;
use crate::segment::{self, NamedSegment};
use crate::{Task, names};

/// What the command line says about the segment: `--name`, `--keep`, `--replace`,
/// and `--child-cmd`, another program as the child (None: this program's own).
pub struct Named {
    pub name: Option<String>,
    pub keep: bool,
    pub replace: bool,
    pub cmd: Option<String>,
}

/// The parent: `shm = SharedMemory(create=True, size=...)`, ones, the child, a look.
pub fn parent(n: usize, name: &str, options: &Named) -> Result<()> {
    let started = Instant::now();
    let bytes = n * size_of::<f64>(); // checked to fit before the scene
    let segment = NamedSegment::create(name, bytes, options.replace)?;
    let (mode, path) = (names::mode(name)?, names::dev_shm_path(name));
    let took = seconds(started.elapsed());
    println!("parent: created {name} ({}, mode {mode:04o}) in {took},", size(bytes as u64));
    println!("parent:   which is the file {path}");
    let filling = Instant::now();
    // SAFETY: no other process knows the segment yet (no child exists), and the view
    // ends with this statement, before the child starts writing.
    unsafe { view_mut(&segment, n) }?.fill(1.0); // ndarray(..., buffer=shm.buf).fill(1.0)
    println!("parent: filled {n} ones through an ndarray view ({})", seconds(filling.elapsed()));

    // Process(target=task, args=(name, n)): the child gets the name, not the memory.
    let task = Task::Named { segment: name.into(), len: n };
    let child = Process::new(task).program(options.cmd.as_deref()).start()?; // start()
    let took = child.join()?; // join()
    println!("parent: the child took {} (started, attached, added 1, exited)", seconds(took));

    // SAFETY: the child has exited, so nobody writes the segment while this view lives.
    let data = unsafe { view(&segment, n) }?;
    show_values("parent", data); // print(data[:10])
    expect_all(data, 2.0, "the segment")?;
    let gone = match options.keep {
        true => segment.keep(n),   // for Python to open after us
        false => segment.close()?, // shm.close(); shm.unlink()
    };
    scene_took(started);
    verdict(&format!(
        "named: the parent sees 2.0 in all {n} elements: the child's +1 came through the named segment, and {path} {gone}."
    ));
    Ok(())
}

/// The child: the tutorial's `task`, which attaches with `SharedMemory(name=name)`.
pub fn child(name: &str, n: usize) -> Result<()> {
    let shm = segment::open(name)?; // SharedMemory(name=name)
    println!("child: attached to {name} by name ({} bytes mapped)", shm.len());
    // SAFETY: `shm` maps `len()` bytes and outlives the view; the parent holds none
    // while we run (it waits for us): this is the only reference.
    task(unsafe { view_mut(&shm, n) }?) // ndarray(shape, dtype, buffer=shm.buf)
} // `shm` drops here: unmap and close, but no unlink (only the creator unlinks)

/// The child's work in every scene: show what it sees, then change all of it.
pub fn task(mut data: ArrayViewMut1<f64>) -> Result<()> {
    show_values("child", data.view()); // print(data[:10])
    data += 1.0; // data[:] += 1
    println!("child: added 1 to all {} elements", data.len());
    show_memory("child", &data); // the kernel's word: the same pages as the parent's
    pause_here(&data); // --pause: look at it from another terminal, then Enter
    Ok(())
}
