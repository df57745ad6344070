//! one-child: the tutorial's first example. The parent creates a memory-mapped file
//! of ones; a child maps the same file read-write and adds 1; the parent sees 2s.
//! Nothing is copied: both processes map the same pages of the kernel's page cache.

use std::path::Path;

use anyhow::{Result, ensure};
use plumbing::memory::show_memory;
use plumbing::show::{show_values, verdict};
use plumbing::{Process, pause_here};

use crate::{Task, file};

/// The parent: the tutorial's `if __name__ == '__main__':` block. `child_cmd` is
/// `--child-cmd`, another program as the child (None: this program's own).
pub fn parent(path: &Path, n: usize, child_cmd: Option<&str>) -> Result<()> {
    // data = memmap(filename, dtype='float32', mode='w+', shape=(n,)); data.fill(1.0)
    let map = file::create(path, n, 1.0f32)?;
    // data.flush(): puts the values on the disk. The child would see them without it:
    // both processes map the same page-cache pages, so flushing is about the disk only.
    map.flush()?;
    println!("parent: created {}", path.display());
    println!("parent:   with {n} f32 values of 1, flushed");
    // SAFETY: no child exists yet, so no other process writes the file.
    show_values("parent", unsafe { file::view(&map, n) }); // print(data[:10])

    // child = Process(target=task, args=(filename, n)); child.start(); child.join()
    // While the child runs, the parent holds no view of the mapping, only `map`, which
    // hands out raw pointers: a &[f32] that another process writes under is undefined
    // behaviour.
    let task = Task::OneChild { file: path.into(), len: n };
    Process::new(task).program(child_cmd).start()?.join()?;

    // SAFETY: the child has exited; no other process writes the file any more.
    let data = unsafe { file::view(&map, n) };
    show_values("parent", data); // print(data[:10])
    let wrong = data.iter().filter(|&&v| v != 2.0).count();
    ensure!(wrong == 0, "expected 2 in all {n} values after the child's +1, but {wrong} are not 2");
    verdict(&format!(
        "shared: the parent sees the child's 2 in all {n} values; both mapped one file"
    ));
    Ok(())
}

/// The child: the tutorial's `task(filename, n)`.
pub fn child(path: &Path, n: usize) -> Result<()> {
    // data = memmap(filename, dtype='float32', mode='r+', shape=(n,))
    let (_file, map) = file::open::<f32>(path, n)?;
    // SAFETY: the parent is waiting for us and holds no view; nobody else writes.
    let mut data = unsafe { file::view_mut(&map, n) };
    show_values("child", data.view()); // print(f'Child: {data[:10]}')
    data += 1.0; // data[:] += 1
    map.flush()?; // data.flush()
    show_values("child", data.view()); // print(f'Child: {data[:10]}')
    show_memory("child", &data); // the kernel's word: the file's pages, shared
    pause_here(&data); // --pause: look at it from another terminal, then Enter
    Ok(())
}
