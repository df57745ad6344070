//! `examples-queue bench`: the queue method of the tutorial "Fastest Way To Share
//! NumPy Array Between Processes", measured.
//!
//! The protocol: create n float64 ones, share them with one new child process that
//! checks the length, wait for the child. Here the parent starts the child (spawn
//! style, like every scene), puts the array on a queue, and the child gets it: the
//! same `put` and `get` as the scenes (see `parcel.rs`), in the tutorial's
//! direction, parent to child. `floor` creates the same array with no child at
//! all: the part of every figure that is not sharing.

use std::io::Write;

use anyhow::{Result, bail};
use ipc_channel::ipc::{self, IpcReceiver};
use ndarray::Array2;

use crate::children::{self, fail_on_purpose_if_asked, finish_all};
use crate::parcel::{Parcel, get, put};
use crate::{Task, send_task};

pub const METHODS: [&str; 2] = ["floor", "queue"];

/// One run of `method`, timed by the protocol, in this fresh process.
pub fn run_once(method: &str, n: usize) -> Result<()> {
    bench_protocol::time_one_run(|| match method {
        "floor" => floor(n),
        "queue" => queue(n),
        other => bail!("unknown bench method {other:?}; the methods are {METHODS:?}"),
    })
}

fn floor(n: usize) -> Result<()> {
    let data = bench_protocol::ones(n);
    check_length(std::hint::black_box(&data).len(), n)
}

fn queue(n: usize) -> Result<()> {
    // The protocol's array is one-dimensional: it travels as a single row.
    let data = Array2::from_shape_vec((1, n), bench_protocol::ones(n))?;
    let (queue, gets) = ipc::channel::<Parcel>()?;
    let child = children::start("the child process")?;
    // The get end goes to the child; the parent keeps the put end. If the child
    // dies, the put fails (nobody is reading) instead of waiting forever.
    let task = Task::GetAndCheck { n, queue: gets };
    let outcome = send_task(&child, task).and_then(|()| put(&queue, 0, &data));
    finish_all(vec![child], outcome)?;
    Ok(())
}

/// The bench's child: get the array from the queue, check its length, report its
/// peak memory to the bench.
pub fn task_get_and_check(n: usize, queue: &IpcReceiver<Parcel>) -> Result<()> {
    fail_on_purpose_if_asked();
    let got = get(queue)?;
    check_length(got.array.len(), n)?;
    bench_protocol::report_child_peak();
    std::io::stdout().flush()?;
    Ok(())
}

fn check_length(found: usize, n: usize) -> Result<()> {
    if found != n {
        bail!("the child expected {n} values but found {found}");
    }
    Ok(())
}
