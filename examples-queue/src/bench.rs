//! `examples-queue bench`: the queue method of the tutorial "Fastest Way To Share
//! NumPy Array Between Processes", measured.
//!
//! The protocol: create n float64 ones, share them with one new child process that
//! checks the length, wait for the child. Here the parent starts the child (spawn
//! style, like every scene), puts the array on a queue, and the child gets it: the
//! same `put` and `get` as the scenes (see `parcel.rs`), in the tutorial's
//! direction, parent to child. `floor` creates the same array with no child at
//! all: the part of every figure that is not sharing.

use anyhow::{Result, bail, ensure};
use ipc_channel::ipc::{self, IpcReceiver};
use ndarray::Array2;
use plumbing::bench;
use plumbing::ipc::finish_all;

use crate::parcel::{Parcel, get, put};
use crate::scenes::{Task, start_child};

pub const METHODS: [&str; 2] = ["floor", "queue"];

/// One run of `method`, timed by the protocol, in this fresh process.
pub fn run_once(method: &str, n: usize) -> Result<()> {
    bench::time_one_run(|| match method {
        "floor" => bench::floor(n),
        "queue" => queue(n),
        other => bail!("unknown bench method {other:?}; the methods are {METHODS:?}"),
    })
}

fn queue(n: usize) -> Result<()> {
    // The protocol's array is one-dimensional: it travels as a single row.
    let data = Array2::from_shape_vec((1, n), bench::ones(n))?;
    let (queue, gets) = ipc::channel::<Parcel>()?;
    let (child, task) = start_child("the child process")?;
    // The get end goes to the child; the parent keeps the put end. If the child
    // dies, the put fails (nobody is reading) instead of waiting forever.
    let outcome = task.send(Task::GetAndCheck { n, queue: gets }).map_err(Into::into);
    finish_all(vec![child], outcome.and_then(|()| put(&queue, 0, &data)))?;
    Ok(())
}

/// The bench's child: get the array from the queue, check its length, report its
/// peak memory to the bench.
pub fn child(n: usize, queue: &IpcReceiver<Parcel>) -> Result<()> {
    let got = get(queue)?;
    check_length(got.array.len(), n)?;
    bench::report_child_peak();
    Ok(())
}

fn check_length(found: usize, n: usize) -> Result<()> {
    ensure!(found == n, "the child expected {n} values but found {found}");
    Ok(())
}
