//! many-children: the tutorial's second example. 100 children each add 1 to every
//! value of one file, all at the same time, with no lock. The tutorial looked at 10
//! values and saw no race; we check every value and count the updates that were lost.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use anyhow::Result;
use plumbing::memory::show_memory;
use plumbing::show::{show_values, size, verdict};
use plumbing::{Child, Process, join_all, pause_here};

use crate::updates::{self, Updates};
use crate::{Task, file};

/// The parent, and the verdict on the race. `child_cmd`: as in one-child.
pub fn parent(path: &Path, n: usize, children: u32, child_cmd: Option<&str>) -> Result<()> {
    // children = [Process(target=task, args=(filename, shape)) for _ in range(100)]
    let task = |id| Task::ManyChildren { file: path.into(), len: n, id };
    let start = |id| Process::new(task(id)).program(child_cmd).start();
    let Updates { below, lost, smallest, .. } = run(path, n, children, start)?;
    let what = match below {
        0 => {
            format!("all {n} values are {children}; none lost this time, but nothing prevented it")
        }
        _ => format!("{lost} updates were lost: {below} of {n} values ended below {children}"),
    };
    let smallest = if below > 0 { format!(" (smallest {smallest})") } else { String::new() };
    verdict(&format!("no lock: {what}{smallest}"));
    Ok(())
}

/// The parent's half of both many-children scenes: zeros, the children, the count.
pub fn run(path: &Path, n: usize, k: u32, start: impl Fn(u32) -> Result<Child>) -> Result<Updates> {
    // data = memmap(filename, dtype='float32', mode='w+', shape=shape); data.fill(0.0)
    let map = file::create(path, n, 0.0f32)?;
    println!("parent: created {}", path.display());
    println!("parent:   with {n} f32 values of 0 ({})", size(file::bytes(n)));
    let floor = updates::floor(&map, n, k); // the same work in one process
    // SAFETY: no child exists yet, so no other process writes the file.
    show_values("parent", unsafe { file::view(&map, n) }); // print(data[:10])

    // start() and join() each child. Each maps the file by its name: nothing is copied.
    println!("parent: starting {k} children; each maps the file and adds 1 to every value");
    let started = Instant::now();
    let team: Result<Vec<Child>> = (1..=k).map(start).collect();
    let (_, finished) = join_all(team?, Ok(()))?;
    updates::report_times(floor, started, &finished);

    // SAFETY: every child has exited; no other process writes the file any more.
    let data = unsafe { file::view(&map, n) };
    show_values("parent", data); // print(data[:10])
    Updates::count(data, k)
}

/// The child: the tutorial's `task(filename, shape)`, `data[:] += 1` with no lock.
/// Child 1 speaks for all in the memory line (100 lines would say the same).
pub fn child(path: &Path, n: usize, id: u32) -> Result<()> {
    let (_file, map) = file::open::<f32>(path, n)?; // memmap(..., mode='r+')
    file::populate(&map)?;
    // Other children write these same values while we run, so a &[f32] or &mut [f32]
    // is out of the question. AtomicU32 is the honest type for memory that changes
    // under us, and costs nothing here: a relaxed load or store is a plain mov on x86.
    // SAFETY: the mapping holds n aligned 4-byte values (file::open checked) and lives
    // as long as `values`; atomics may be written by others at any time.
    let values: &[AtomicU32] = unsafe { std::slice::from_raw_parts(map.as_ptr().cast(), n) };
    for value in values {
        // Three steps, as in numpy: read the value, add 1, write it back.
        let old = f32::from_bits(value.load(Ordering::Relaxed));
        // If another child writes this value right here, our store below overwrites
        // its +1 with ours: a lost update. Nothing in this loop prevents it.
        value.store((old + 1.0).to_bits(), Ordering::Relaxed);
    }
    if id == 1 {
        show_memory("child 1", values); // the file's pages, shared by every child
        pause_here(values); // --pause: look at it from another terminal, then Enter
    }
    Ok(())
}
