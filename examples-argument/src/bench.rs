//! `examples-argument bench`: the tutorial "Fastest Way To Share NumPy Array
//! Between Processes", measured for this program's two methods.
//!
//! Each method creates n float64 ones, gives them to one new child process that
//! checks the length, and waits for it. `floor` creates the same array with no
//! child at all: the part of every figure that is not sharing.

use std::io::{BufReader, BufWriter, Write};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork};

pub const METHODS: [&str; 3] = ["floor", "inherit", "argument"];

/// One run of `method`, timed by the protocol, in this fresh process.
pub fn run_once(method: &str, n: usize) -> Result<()> {
    bench_protocol::time_one_run(|| match method {
        "floor" => floor(n),
        "inherit" => inherit(n),
        "argument" => argument(n),
        other => bail!("unknown bench method {other:?}; the methods are {METHODS:?}"),
    })
}

fn floor(n: usize) -> Result<()> {
    let data = bench_protocol::ones(n);
    check_length(std::hint::black_box(&data).len(), n)
}

fn inherit(n: usize) -> Result<()> {
    let data = bench_protocol::ones(n);
    // SAFETY: this process is single-threaded (the bench run starts no thread), so
    // the child inherits no lock held by another thread; it only reads a length
    // and leaves through `exit`, never returning into the parent's code path.
    match unsafe { fork() }.context("could not fork")? {
        ForkResult::Child => {
            let ok = check_length(data.len(), n).is_ok();
            bench_protocol::report_child_peak();
            let _ = std::io::stdout().flush();
            std::process::exit(if ok { 0 } else { 1 });
        }
        ForkResult::Parent { child } => match waitpid(child, None)? {
            nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
            other => bail!("the child failed: {other:?}"),
        },
    }
}

fn argument(n: usize) -> Result<()> {
    // The protocol's array is one-dimensional: it travels as a single row.
    let data = ndarray::Array2::from_shape_vec((1, n), bench_protocol::ones(n))?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["bench-child", "--n", &n.to_string()])
        .stdin(Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.take().expect("stdin was piped");
    crate::widen_pipe(&stdin);
    let mut pipe = BufWriter::with_capacity(1 << 20, stdin);
    let sent = bincode::serde::encode_into_std_write(
        crate::wire::Outgoing(&data),
        &mut pipe,
        crate::wire_format(),
    );
    let flushed = pipe.flush();
    drop(pipe);
    let status = child.wait()?;
    if !status.success() {
        bail!("the child failed: {status}");
    }
    sent?;
    flushed?;
    Ok(())
}

/// The child of the `argument` method: deserialize, check the length, exit.
pub fn child(n: usize) -> Result<()> {
    let mut input = BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let crate::wire::Incoming(data) =
        bincode::serde::decode_from_std_read(&mut input, crate::wire_format())?;
    check_length(data.len(), n)?;
    bench_protocol::report_child_peak();
    Ok(())
}

fn check_length(found: usize, n: usize) -> Result<()> {
    if found != n {
        bail!("the child expected {n} values but found {found}");
    }
    Ok(())
}
