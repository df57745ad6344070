//! Exercise "read, don't write" (docs/exercises/argument.md): how many pages does a
//! forked child copy when it reads the inherited array, writes one row, or writes
//! all of it?
//!
//! A forked child shares the parent's pages until one of them writes: the kernel
//! copies a page at its first write, one 4 KiB page at a time. The child counts its
//! minor page faults (page faults served without disk I/O), which for memory
//! inherited through fork are mostly such copies.
//!
//! `cargo run -p exercises --example argument_fork_pages -- --n 2000`

use std::io::Write;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use ndarray::Array2;
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

/// Counts the pages a forked child copies when it reads, writes a row, or writes all.
#[derive(Parser)]
struct Cli {
    /// The side of the (n, n) array of f64 [default: 2000, 32 MB]
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u16).range(1..))]
    n: u16,
}

#[derive(Clone, Copy, Debug)]
enum Touch {
    ReadAll,
    WriteFirstRow,
    WriteAll,
}

fn main() -> Result<()> {
    let n = usize::from(Cli::parse().n);
    let mut data = Array2::<f64>::ones((n, n));
    let pages = (data.len() * 8).div_ceil(4096);
    println!("parent: ones of shape ({n}, {n}), {pages} pages of 4 KiB");
    for touch in [Touch::ReadAll, Touch::WriteFirstRow, Touch::WriteAll] {
        in_a_forked_child(&mut data, touch)?;
    }
    ensure!(
        data.iter().all(|&x| x == 1.0),
        "the parent's array changed, but every write happened in a child"
    );
    println!(
        "verdict: the parent still sees 1.0 in all {} elements after all three children",
        data.len()
    );
    Ok(())
}

/// `data` is `&mut` for the child's sake: after fork the child's `data` is its own
/// image of the parent's array (same addresses, shared pages), which it may change.
/// The parent never writes through it.
fn in_a_forked_child(data: &mut Array2<f64>, touch: Touch) -> Result<()> {
    // Lines still in our stdout buffer would be inherited and printed twice.
    std::io::stdout().flush()?;
    // SAFETY: this process has one thread (we start none), so no lock can be held by
    // a thread that does not exist in the child; the child only computes, prints and
    // leaves through `std::process::exit`.
    match unsafe { fork() }.context("fork failed")? {
        ForkResult::Child => {
            // Count only around the touch itself: printing and formatting touch
            // fresh pages of their own (stack, heap), which are not the array's.
            let before = minor_faults();
            let sum = match touch {
                Touch::ReadAll => data.sum(),
                Touch::WriteFirstRow => {
                    data.row_mut(0).fill(0.0);
                    0.0
                }
                Touch::WriteAll => {
                    data.fill(0.0);
                    0.0
                }
            };
            let after = minor_faults();
            let what = match touch {
                Touch::ReadAll => format!("reading every element (sum {sum})"),
                Touch::WriteFirstRow => "writing the first row".to_string(),
                Touch::WriteAll => "writing every element".to_string(),
            };
            let copied = after - before;
            println!("child: {what} made the kernel copy {copied} pages");
            let _ = std::io::stdout().flush();
            std::process::exit(0);
        }
        ForkResult::Parent { child } => match waitpid(child, None)? {
            WaitStatus::Exited(_, 0) => Ok(()),
            other => bail!("the child process failed: {other:?}"),
        },
    }
}

fn minor_faults() -> i64 {
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |usage| usage.minor_page_faults())
}
