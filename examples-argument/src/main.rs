//! Share an array with a child process through its function argument: the part of
//! the tutorial "Share Numpy Array Between Processes" that passes the array as the
//! child's argument, and the "inherit" and "function argument" methods of "Fastest
//! Way To Share NumPy Array Between Processes".
//!
//! Each scene is one file in `scenes/`, to read beside the tutorial: `argument` (the
//! array serialized into a spawned child, `wire.rs` being this program's pickle) and
//! `inherit` (a forked child, copy-on-write). This file reads the command line and
//! says which function runs: a scene's, or the child's its parent asked for.

mod bench;
mod scenes;
mod wire;

use std::process::ExitCode;

use bench_protocol::{BenchArgs, DEFAULT_N, refuse_scene_flags, run_methods};
use clap::{Parser, Subcommand};
use plumbing::{HandOver, PauseArg, Word, args, as_child, memory};

/// Share an (n, n) array of ones with a child process through its argument.
///
/// With no scene, runs every scene in the tutorial's order.
#[derive(Parser)]
#[command(name = "examples-argument", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// The tutorial's n: the array has shape (n, n), n*n float64 values
    /// [default: 10000, an 800 MB array]
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    n: Option<u64>,

    #[command(flatten)]
    pause: PauseArg,
    #[command(flatten)]
    trace: trace_summary::TraceArg,
}

const AFTER_HELP: &str = "\
Each scene prints what the parent and the child see, then one verdict line.
Exit status: 0 when every verdict holds, 1 when one fails or the run fails,
2 for a bad command line.";

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Scene(Scene),
    /// Time both methods and the floor the tutorial's way: n float64 ones (1-D,
    /// default n = 100,000,000) shared with one child that reads the length
    Bench(BenchArgs),
    /// One timed run of one bench method, in a fresh process
    #[command(hide = true)]
    BenchRun { method: String },
    /// A child's task (its parent starts it, not you)
    #[command(hide = true, subcommand)]
    Child(Task),
}

#[derive(Subcommand, Clone, Copy)]
pub enum Scene {
    /// The child is a new run of this program and receives the array serialized
    /// (serde + bincode) as its argument: Python's spawn start method
    Argument,
    /// The child is a fork of the parent and inherits its memory copy-on-write:
    /// Python's fork start method
    Inherit,
}

/// What a child of this program does: one variant per child function, with its
/// arguments. A parent starts one with `Process::new(Task::...)`; the child gets
/// it as its command line (`examples-argument child argument 3`), written by `args`.
/// (A field never shares a flag's name, such as `n`: clap would read both as one.)
#[derive(Subcommand, Debug)]
pub enum Task {
    /// `argument`'s child; the array itself comes down the pipe `data`
    Argument { data: HandOver },
    /// The bench's `argument` child, which receives this many values from `data`
    Bench { values: usize, data: HandOver },
}

impl plumbing::Task for Task {
    fn args(&self) -> Vec<Word> {
        match self {
            Task::Argument { data } => args!["argument", data],
            Task::Bench { values, data } => args!["bench", values, data],
        }
    }
}

/// The tutorial's array is 10000 x 10000 float64: 800 MB.
const TUTORIAL_N: u64 = 10_000;

fn main() -> ExitCode {
    plumbing::main(|| {
        let cli = Cli::parse();
        cli.trace.run_traced_if_asked(); // --trace: this command line again, under strace
        cli.pause.apply();
        let n = cli.n.unwrap_or(TUTORIAL_N);
        // The bench's array is 1-D: its --n counts values, the parent's and the child's.
        let bench_n = || {
            let n = cli.n.unwrap_or(DEFAULT_N);
            memory::array_len(n, Some(n), size_of::<f64>(), 2, "the parent's and the child's")
        };
        match cli.command {
            None => scenes::run(&[Scene::Argument, Scene::Inherit], n),
            Some(Command::Scene(scene)) => scenes::run(&[scene], n),
            Some(Command::Bench(args)) => {
                refuse_scene_flags(&[("--pause", cli.pause.pause)])?;
                run_methods(&bench::METHODS, bench_n()? as u64, &args)
            }
            Some(Command::BenchRun { method }) => bench::run_once(&method, bench_n()?),
            Some(Command::Child(task)) => as_child("child", || match task {
                Task::Argument { data } => scenes::argument::child(data),
                Task::Bench { values, data } => bench::child(values, data),
            }),
        }
    })
}
