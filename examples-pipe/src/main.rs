//! A child process makes an array and sends it to its parent through an OS pipe:
//! the tutorial's "simulated return value" via `Pipe()`, and the pipe method of
//! "Fastest Way To Share NumPy Array Between Processes".
//!
//! The scene is `scenes/pipe.rs`, to read beside the tutorial. What crosses the
//! pipe, byte by byte, is in `frame.rs`; the pipe itself in `channel.rs`. This file
//! only reads the command line; `bench.rs` times the tutorial's benchmark.

mod bench;
mod channel;
mod frame;
mod scenes;

use std::process::ExitCode;

use bench_protocol::{BenchArgs, DEFAULT_N, refuse_scene_flags, run_methods};
use channel::Via;
use clap::{Parser, Subcommand};
use plumbing::{HandOver, PauseArg, Word, args, as_child, memory};

/// A child process makes an (n, n) array of ones and sends it to the parent through an
/// OS pipe; the parent receives its own copy and checks every element.
#[derive(Parser)]
#[command(name = "examples-pipe", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Side of the (n, n) f64 array the child sends [pipe: 10000, i.e. 800 MB]; for
    /// `bench`, the number of f64 values in its 1-D array [bench: 100000000]
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    n: Option<u64>,

    /// Kernel buffer of the pipe in bytes, set with fcntl(F_SETPIPE_SZ) [pipe: the
    /// largest allowed, /proc/sys/fs/pipe-max-size, usually 1048576; Linux's own
    /// default is 65536]
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
    pipe_size: Option<u32>,

    /// What carries the bytes [pipe: an OS pipe]; `socketpair` is what Python's Pipe() uses
    #[arg(long, global = true, value_enum)]
    via: Option<Via>,

    #[command(flatten)]
    pause: PauseArg,
    #[command(flatten)]
    trace: trace_summary::TraceArg,
}

#[derive(Subcommand)]
enum Command {
    /// The child makes ones (n, n) [n = 10000], prints the corner and sends the array
    /// through an OS pipe; the parent receives a copy and checks every element
    Pipe,
    /// Time the tutorial's pipe benchmark: the parent makes n f64 ones (1-D, default
    /// n = 100,000,000), sends them through a pipe to one new child that checks the
    /// length, and waits; prints one line per method (floor, pipe)
    Bench(BenchArgs),
    /// One timed run of one bench method, in a fresh process
    #[command(hide = true)]
    BenchRun { method: String },
    /// A child's task (its parent starts it, not you)
    #[command(hide = true, subcommand)]
    Child(Task),
}

/// What a child does: one variant per child function, with its arguments (never named
/// like a flag above), started with `Process::new(Task::...)`; `args` is its command line.
#[derive(Subcommand, Debug)]
pub enum Task {
    /// `pipe`'s child: makes (side, side) ones and sends them into `conn`
    Pipe { side: usize, conn: HandOver },
    /// The bench's `pipe` child: receives this many values from `conn`
    Bench { values: usize, conn: HandOver },
}

impl plumbing::Task for Task {
    fn args(&self) -> Vec<Word> {
        match self {
            Task::Pipe { side, conn } => args!["pipe", side, conn],
            Task::Bench { values, conn } => args!["bench", values, conn],
        }
    }
}

fn main() -> ExitCode {
    plumbing::main(|| {
        let cli = Cli::parse();
        cli.trace.run_traced_if_asked(); // --trace: this command line again, under strace
        cli.pause.apply();
        // The bench's array is 1-D: its --n counts the values the parent and child hold.
        let bench_n = || {
            let n = cli.n.unwrap_or(DEFAULT_N);
            memory::array_len(n, Some(n), size_of::<f64>(), 2, "the parent's and the child's")
        };
        match cli.command {
            Some(Command::Child(task)) => as_child("child", || match task {
                Task::Pipe { side, conn } => scenes::pipe::child(side, conn),
                Task::Bench { values, conn } => bench::child(values, conn),
            }),
            Some(Command::Bench(args)) => {
                refuse_scene_flags(&[
                    ("--via", cli.via.is_some()),
                    ("--pipe-size", cli.pipe_size.is_some()),
                    ("--pause", cli.pause.pause),
                ])?;
                run_methods(&bench::METHODS, bench_n()? as u64, &args)
            }
            Some(Command::BenchRun { method }) => bench::run_once(&method, bench_n()?),
            // `pipe` is the only scene, so "every scene" and "the pipe scene" are the same run.
            Some(Command::Pipe) | None => {
                println!(
                    "=== pipe: the child sends an array through a pipe; the parent gets a copy ==="
                );
                let n = scenes::checked_side(cli.n.unwrap_or(10_000))?;
                scenes::pipe::parent(n, cli.via.unwrap_or(Via::Pipe), cli.pipe_size)
            }
        }
    })
}
