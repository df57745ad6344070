//! argument: the tutorial's "via function argument", under the spawn start method.
//! The child is a fresh run of this program and receives the array serialized
//! through a pipe it inherits, as Python pickles a spawned process's arguments into
//! one. It fills its copy with zeros; the parent's array still holds ones.

use std::fs::File;
use std::time::Instant;

use anyhow::{Context, Result};
use ndarray::Array2;
use nix::fcntl::OFlag;
use plumbing::memory::show_memory;
use plumbing::show::{expect_all, seconds, show_values, verdict};
use plumbing::{HandOver, Process, pause_here};

use crate::scenes::{checked_shape, megabytes, report_peak_memory};
use crate::{Task, wire};

/// The parent: ones, a child given them as its argument, a look afterwards.
pub fn parent(n: u64) -> Result<()> {
    let shape = checked_shape(n, 2)?; // the parent and the child each hold one
    let data = Array2::<f64>::ones(shape); // data = ones((n, n))
    println!("parent: created ones of shape {shape:?} ({} MB)", megabytes(data.len() * 8));

    // child = Process(target=task, args=(data,)); child.start(): a new program that
    // knows nothing of our memory, so the array goes to it as bytes, down a pipe.
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let child = Process::new(Task::Argument { data: HandOver::from(&read_end) }).start()?;
    drop(read_end); // the child's now: a dead child must mean a broken pipe for us
    let started = Instant::now();
    let sent = wire::send(File::from(write_end), &data); // pickle, into the pipe
    let elapsed = started.elapsed();
    // join(), before the send is judged: if the child died, its exit status is the
    // real story, and "broken pipe" only the symptom.
    let bytes = child.join_with(sent.context("could not send the array to the child"))?;
    println!(
        "parent: serialized {} MB into the child's pipe in {}",
        megabytes(bytes),
        seconds(elapsed)
    );

    println!("parent: the child has exited; the parent's array now:");
    show_values("parent", data.view()); // print(data[:5, :5])
    report_peak_memory();
    expect_all(data.view(), 1.0, "the parent's array (the child worked on a copy)")?;
    verdict(&format!(
        "copy: the parent still sees 1.0 in all {} elements; the child filled its own deserialized copy.",
        data.len()
    ));
    Ok(())
}

/// The child: rebuild the array from the bytes in the pipe (unpickle), then the
/// tutorial's `task(data)`.
pub fn child(data: HandOver) -> Result<()> {
    let started = Instant::now();
    let input = File::from(data.take()?);
    let mut data = wire::receive(input).context("could not read the array from the parent")?;
    println!(
        "child: deserialized an array of shape {:?} in {}",
        data.dim(),
        seconds(started.elapsed())
    );
    task(&mut data)?;
    show_memory("child", &data); // the kernel's word: a copy of our own
    pause_here(&data); // --pause: look at it from another terminal, then Enter
    println!("child: peak memory {} MB", plumbing::memory::peak() / 1_000_000);
    Ok(())
}

/// The child's task in both scenes: look at the array, overwrite all of it with
/// zeros, look again. Whatever it changes is the child's own memory.
pub fn task(data: &mut Array2<f64>) -> Result<()> {
    show_values("child", data.view()); // print(data[:5, :5])
    data.fill(0.0); // data.fill(0.0)
    show_values("child", data.view());
    Ok(())
}
