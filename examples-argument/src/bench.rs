//! `examples-argument bench`: the tutorial "Fastest Way To Share NumPy Array
//! Between Processes", measured for this program's two methods.
//!
//! Each method creates n float64 ones, gives them to one new child process that
//! checks the length, and waits for it. `floor` creates the same array with no
//! child at all: the part of every figure that is not sharing. The methods move
//! the array as the scenes do: `inherit` by fork, `argument` in the scene's wire
//! format (`wire.rs`) down a pipe the child inherits, with one difference said at
//! `send_lending`: the bench lends its pages to the pipe, a scene writes them.

use std::fs::File;

use anyhow::{Result, bail, ensure};
use bench_protocol as bench;
use plumbing::{HandOver, Process};

use crate::{Task, wire};

pub const METHODS: [&str; 3] = ["floor", "inherit", "argument"];

/// One run of `method`, timed by the protocol, in this fresh process.
pub fn run_once(method: &str, n: usize) -> Result<()> {
    bench::time_one_run(|| match method {
        "floor" => bench::floor(n),
        "inherit" => inherit(n),
        "argument" => argument(n),
        other => bail!("unknown bench method {other:?}; the methods are {METHODS:?}"),
    })
}

fn inherit(n: usize) -> Result<()> {
    let data = plumbing::arrays::ones(n);
    // SAFETY: a bench run starts no thread of its own; see plumbing::fork.
    let child = unsafe {
        plumbing::fork(|| {
            check_length(data.len(), n)?;
            bench::report_child_peak(plumbing::memory::peak());
            Ok(())
        })
    }?;
    child.join()?;
    Ok(())
}

fn argument(n: usize) -> Result<()> {
    let data = plumbing::arrays::ones(n);
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let child = Process::new(Task::Bench { values: n, data: HandOver::from(&read_end) }).start()?;
    drop(read_end);
    let sent = send_lending(File::from(write_end), &data);
    child.join_with(sent)
}

/// The scene's `wire::send` with one difference: the values are lent to the pipe
/// (`vmsplice`) instead of written into it. The bytes on the pipe are the same
/// (the header by bincode, then the values), and the child receives them the same
/// way, with `wire::receive`; but the kernel makes one copy instead of two, as in
/// the pipe program's bench. A scene must not lend its pages: its parent's array
/// would then be the source of the child's "copy" until the child has read it,
/// and a change to the parent's array would travel too. Here nothing writes to
/// `data`, and the caller waits for the child before dropping it.
fn send_lending(mut pipe: File, data: &[f64]) -> Result<()> {
    wire::widen_pipe(&pipe);
    // The protocol's array is one-dimensional: it travels as a single row.
    wire::write_header(&mut pipe, (1, data.len()))?;
    bench::lend_to_pipe(&pipe, plumbing::arrays::as_bytes(data))
    // Dropping `pipe` closes it: the child's end of input.
}

/// The child of the `argument` method: deserialize, check the length, exit.
pub fn child(n: usize, data: HandOver) -> Result<()> {
    let data = wire::receive(File::from(data.take()?))?;
    check_length(data.len(), n)?;
    bench::report_child_peak(plumbing::memory::peak());
    Ok(())
}

fn check_length(found: usize, n: usize) -> Result<()> {
    ensure!(found == n, "the child expected {n} values but found {found}");
    Ok(())
}
