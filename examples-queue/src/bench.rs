//! `examples-queue bench`: the queue method of the tutorial "Fastest Way To Share
//! NumPy Array Between Processes", measured.
//!
//! The protocol: create n float64 ones, share them with one new child process that
//! checks the length, wait for the child. Here the parent puts the array on a
//! queue (on a feeder thread, as Python's queue does), starts the child (spawn
//! style, like every scene), and the child gets it: the same `put` and `get` as the
//! scenes (see `parcel.rs`), in the tutorial's order and direction, parent to
//! child. `floor` creates the same array with no child at
//! all: the part of every figure that is not sharing.

use anyhow::{Context, Result, bail, ensure};
use bench_protocol as bench;
use callback::StartCallingBack;
use ipc_channel::ipc::{self, IpcReceiver};
use ndarray::Array2;
use plumbing::{Process, join_all};

use crate::Task;
use crate::parcel::{Parcel, get, put};

pub const METHODS: [&str; 2] = ["floor", "queue"];

/// `bench`: every method, each run in a fresh process. `given` says whether the
/// scenes' --producers and --pause were given: bench refuses them.
pub fn run(n: usize, args: &bench::BenchArgs, given: [bool; 2]) -> Result<()> {
    bench::refuse_scene_flags(&[("--producers", given[0]), ("--pause", given[1])])?;
    bench::run_methods(&METHODS, n as u64, args)
}

/// One run of `method`, timed by the protocol, in this fresh process.
pub fn run_once(method: &str, n: usize) -> Result<()> {
    bench::time_one_run(|| match method {
        "floor" => bench::floor(n),
        "queue" => queue(n),
        other => bail!("unknown bench method {other:?}; the methods are {METHODS:?}"),
    })
}

fn queue(n: usize) -> Result<()> {
    // The sockets' directory and its watchdog (a fork) while this process is small,
    // and before the feeder thread: `prepare` sets TMPDIR, which no thread may read
    // meanwhile.
    callback::prepare()?;
    // The protocol's array is one-dimensional: it travels as a single row.
    let data = Array2::from_shape_vec((1, n), plumbing::arrays::ones(n))?;
    let (queue, get_end) = ipc::channel::<Parcel>()?;
    // As in the tutorial, the put comes first, before the child is started, and a
    // feeder thread does the writing (Python's queue has one too): the array goes
    // into the queue's windows while the child starts, and the put returns once
    // the child has taken all but the last two pieces. If the child dies, the put
    // fails (nobody is reading) instead of waiting forever.
    let feeder = std::thread::Builder::new()
        .name("feeder".into())
        .spawn(move || put(&queue, 0, &data))
        .context("cannot start the feeder thread")?;
    // The get end goes to the child.
    let child = Process::new(Task::Bench { n, queue: get_end }).start_calling_back()?;
    let put = feeder.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the feeder thread panicked")));
    join_all(vec![child], put)?;
    Ok(())
}

/// The bench's child: get the array from the queue, check its length, report its
/// peak memory to the bench.
pub fn child(n: usize, queue: &IpcReceiver<Parcel>) -> Result<()> {
    let got = get(queue)?;
    check_length(got.array.len(), n)?;
    bench::report_child_peak(plumbing::memory::peak());
    Ok(())
}

fn check_length(found: usize, n: usize) -> Result<()> {
    ensure!(found == n, "the child expected {n} values but found {found}");
    Ok(())
}
