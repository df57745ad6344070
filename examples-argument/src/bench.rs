//! `examples-argument bench`: the tutorial "Fastest Way To Share NumPy Array
//! Between Processes", measured for this program's two methods.
//!
//! Each method creates n float64 ones, gives them to one new child process that
//! checks the length, and waits for it. `floor` creates the same array with no
//! child at all: the part of every figure that is not sharing. The methods move
//! the array exactly as the scenes do: `inherit` by fork, `argument` through the
//! scene's `wire::send` into a spawned child's input.

use std::process::Stdio;

use anyhow::{Result, bail, ensure};
use plumbing::bench;
use plumbing::children::{self, this_program};

use crate::wire;

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
    let data = bench::ones(n);
    // SAFETY: a bench run starts no thread of its own; see plumbing::children::fork.
    let child = unsafe {
        children::fork(|| {
            check_length(data.len(), n)?;
            bench::report_child_peak();
            Ok(())
        })
    }?;
    child.wait()?;
    Ok(())
}

fn argument(n: usize) -> Result<()> {
    // The protocol's array is one-dimensional: it travels as a single row.
    let data = ndarray::Array2::from_shape_vec((1, n), bench::ones(n))?;
    let mut command = this_program(["bench-child", "--n", &n.to_string()])?;
    command.stdin(Stdio::piped());
    let mut child = children::start("the child process", command)?;
    let sent = wire::send(child.stdin.take().expect("piped"), &data);
    child.wait()?;
    sent?;
    Ok(())
}

/// The child of the `argument` method: deserialize, check the length, exit.
pub fn child(n: usize) -> Result<()> {
    let data = wire::receive(std::io::stdin().lock())?;
    check_length(data.len(), n)?;
    bench::report_child_peak();
    Ok(())
}

fn check_length(found: usize, n: usize) -> Result<()> {
    ensure!(found == n, "the child expected {n} values but found {found}");
    Ok(())
}
