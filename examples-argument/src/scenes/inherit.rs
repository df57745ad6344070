//! inherit: the same task under the fork start method, where Python's argument is
//! not pickled at all. The child is a copy of the parent and starts with its memory,
//! shared copy-on-write: nothing is copied until the child writes, and then only the
//! pages it writes, into memory the parent never sees.

use std::time::Instant;

use anyhow::Result;
use ndarray::Array2;
use plumbing::memory::show_memory;
use plumbing::pause_here;
use plumbing::show::{expect_all, seconds, show_values, verdict};

use crate::scenes::{argument::task, checked_shape, megabytes, report_peak_memory, report_writes};

/// The parent: ones, a forked child that fills zeros, a look afterwards.
pub fn parent(n: u64) -> Result<()> {
    let shape = checked_shape(n, 2)?; // once the child has written every page: two arrays
    let mut data = Array2::<f64>::ones(shape); // data = ones((n, n))
    println!("parent: created ones of shape {shape:?} ({} MB)", megabytes(data.len() * 8));

    let started = Instant::now();
    // child = Process(target=task, args=(data,)); start(); join(), under fork.
    // SAFETY: this program starts no thread of its own; what the plumbing's own
    // threads do, and what the child may do, is in plumbing::fork.
    let child = unsafe { plumbing::fork(|| child(&mut data)) }?;
    child.join()?;
    println!(
        "parent: the child has exited after {}; the parent's array now:",
        seconds(started.elapsed())
    );
    show_values("parent", data.view()); // print(data[:5, :5])
    report_peak_memory();
    expect_all(data.view(), 1.0, "the parent's array (the child wrote its own page copies)")?;
    verdict(&format!(
        "copy-on-write: the parent still sees 1.0 in all {} elements; the child's writes went to page copies of its own.",
        data.len()
    ));
    Ok(())
}

/// The forked child. Its `data` is the parent's array: the same addresses, the same
/// physical pages, now read-only for both. Its first write to a page makes the
/// kernel copy that page (4 KiB) for the child alone.
fn child(data: &mut Array2<f64>) -> Result<()> {
    let before = show_memory("child", data); // before writing: the parent's pages, shared
    pause_here(data); // --pause: look from another terminal (Enter goes on)
    task(data)?;
    let after = show_memory("child", data); // after writing: copies of its own, private
    report_writes(data, after - before); // what it wrote, what the kernel copied
    pause_here(data); // --pause: and look again
    Ok(())
}
