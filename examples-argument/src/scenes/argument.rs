//! argument: the tutorial's "via function argument", under the spawn start method.
//! The child is a fresh run of this program and receives the array serialized
//! through its standard input, as Python pickles a spawned process's arguments. It
//! fills its copy with zeros; the parent's array still holds ones.

use std::io::Stdin;
use std::time::Instant;

use anyhow::{Context, Result};
use ndarray::Array2;
use plumbing::Process;
use plumbing::show::seconds;
use plumbing::verdict::expect_all;
use plumbing::{show_corner, show_memory};

use crate::scenes::{checked_shape, megabytes, report_peak_memory};
use crate::{Task, wire};

/// The parent: ones, a child given them as its argument, a look afterwards.
pub fn parent(n: u64) -> Result<()> {
    let shape = checked_shape(n, 2)?; // the parent and the child each hold one
    let data = Array2::<f64>::ones(shape); // data = ones((n, n))
    println!("parent: created ones of shape {shape:?} ({} MB)", megabytes(data.len() * 8));

    // child = Process(target=task, args=(data,)); child.start(): a new program that
    // knows nothing of our memory, so the array is sent to it, as bytes, on its input.
    let mut child = Process::new(Task::Argument).stdin_piped().start()?;
    let started = Instant::now();
    let sent = wire::send(child.stdin()?, &data); // pickle, into the pipe
    let elapsed = started.elapsed();
    // join(), before the send is judged: if the child died, its exit status is the
    // real story, and "broken pipe" only the symptom.
    let bytes = child.join_with(sent.context("could not send the array to the child"))?;
    println!(
        "parent: serialized {} MB into the child's input in {}",
        megabytes(bytes),
        seconds(elapsed)
    );

    println!("parent: the child has exited; the parent's array now:");
    show_corner("parent", data.view()); // print(data[:5, :5])
    report_peak_memory();
    expect_all(data.view(), 1.0, "the parent's array (the child worked on a copy)")?;
    println!(
        "verdict: copy: the parent still sees 1.0 in all {} elements; the child filled its own deserialized copy.",
        data.len()
    );
    Ok(())
}

/// The child: rebuild the array from the bytes on standard input (unpickle), then
/// the tutorial's `task(data)`.
pub fn child(input: Stdin) -> Result<()> {
    let started = Instant::now();
    let mut data =
        wire::receive(input.lock()).context("could not read the array from the parent")?;
    println!(
        "child: deserialized an array of shape {:?} in {}",
        data.dim(),
        seconds(started.elapsed())
    );
    task(&mut data)?;
    show_memory("child", &data); // the kernel's word: a copy of our own
    println!("child: peak memory {} MB", plumbing::room::peak() / 1_000_000);
    Ok(())
}

/// The child's task in both scenes: look at the array, overwrite all of it with
/// zeros, look again. Whatever it changes is the child's own memory.
pub fn task(data: &mut Array2<f64>) -> Result<()> {
    show_corner("child", data.view()); // print(data[:5, :5])
    data.fill(0.0); // data.fill(0.0)
    show_corner("child", data.view());
    Ok(())
}
