//! inherit: the same task under the fork start method, where Python's argument is
//! not pickled at all. The child is a copy of the parent and starts with its memory,
//! shared copy-on-write: nothing is copied until the child writes, and then only the
//! pages it writes, into memory the parent never sees.

use std::time::Instant;

use anyhow::Result;
use ndarray::Array2;
use plumbing::room::minor_page_faults;
use plumbing::show::seconds;
use plumbing::verdict::expect_all;
use plumbing::{show_corner, show_memory};

use crate::scenes::{argument::task, checked_shape, megabytes, report_peak_memory};

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
    show_corner("parent", data.view()); // print(data[:5, :5])
    report_peak_memory();
    expect_all(data.view(), 1.0, "the parent's array (the child wrote its own page copies)")?;
    println!(
        "verdict: copy-on-write: the parent still sees 1.0 in all {} elements; the child's writes went to page copies of its own.",
        data.len()
    );
    Ok(())
}

/// The forked child. Its `data` is the parent's array: the same addresses, the same
/// physical pages, now read-only for both. Its first write to a page makes the
/// kernel copy that 4 KiB page for the child alone (a "minor page fault").
fn child(data: &mut Array2<f64>) -> Result<()> {
    show_memory("child", data); // before writing: the parent's pages, shared
    let faults_before = minor_page_faults();
    task(data)?;
    let copied = minor_page_faults() - faults_before;
    let mb = megabytes(usize::try_from(copied).unwrap_or(0) * 4096);
    println!(
        "child: filling zeros made the kernel copy {copied} pages (about {mb} MB) for this process alone"
    );
    show_memory("child", data); // after writing: copies of its own, private
    Ok(())
}
