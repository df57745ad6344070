//! Share an array between processes through shared memory: the SharedMemory, ctype
//! RawArray and ctype Array parts of the tutorial "Fastest Way To Share NumPy Array
//! Between Processes", in Rust.
//! Each scene is one file in `scenes/`: `named` (a POSIX segment, `SharedMemory`),
//! `anonymous` (`RawArray`) and `copy-in` (`Array`); `segment.rs` and `mapping.rs`
//! are the memory they share. This file reads the command line: which scene runs.

mod bench;
mod mapping;
mod names;
mod scenes;
mod segment;

use std::process::ExitCode;

use bench_protocol::BenchArgs;
use clap::{Parser, Subcommand};
use plumbing::{PauseArg, as_child, parse_child_cmd};
use scenes::named::Named;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Share an array between processes through named POSIX shared \
    memory and anonymous shared mappings. Without a scene, runs every scene in order."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Number of f64 elements in the array [default: 100000000 in every scene]
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    n: Option<u64>,

    /// Name of the segment in `named` ("x" or "/x", at most 30 characters)
    /// [default: a fresh name per run, /exshm-<pid>-<random>]
    #[arg(long, global = true, value_parser = names::parse_name)]
    name: Option<String>,

    /// `named`: leave the segment in /dev/shm after a successful run, to open it
    /// from Python; remove it yourself with `rm /dev/shm/NAME` [default: unlink]
    #[arg(long, global = true)]
    keep: bool,

    /// `named`: if a segment of that name exists, unlink it first [default: refuse]
    #[arg(long, global = true)]
    replace: bool,

    /// `named`: run CMD as the child instead of this program, e.g.
    /// "python3 docs/python/shm_child.py", with the segment's name and N appended; it
    /// must print its first values, add 1 to every element and exit 0 (the other
    /// scenes hand the memory over by fork, which no other program can join)
    #[arg(long, global = true, value_name = "CMD", value_parser = parse_child_cmd, conflicts_with = "pause")]
    child_cmd: Option<String>,

    #[command(flatten)]
    pause: PauseArg,
    #[command(flatten)]
    trace: trace_summary::TraceArg,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Scene(Scene),
    /// Time the three methods and their floors the tutorial's way: n f64 ones
    /// shared with one child that reads the length [n = 100000000]
    Bench(BenchArgs),
    /// One timed run of one bench method, in a fresh process.
    #[command(hide = true)]
    BenchRun { method: String },
    /// A child's task (its parent starts it, not you)
    #[command(hide = true, subcommand)]
    Child(Task),
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq)]
pub enum Scene {
    /// SharedMemory: a named segment, opened by name in a spawned child [n = 100000000]
    Named,
    /// RawArray: a MAP_SHARED anonymous mapping, filled in place, inherited by fork [n = 100000000]
    Anonymous,
    /// Array: an existing array copied into a fresh shared mapping, then fork [n = 100000000]
    CopyIn,
}

/// What a child does: one variant per child function (`Bench`: the bench's), with its
/// arguments (never named like a flag above), started with `Process::new(Task::...)`.
/// Its command line is written in scenes/mod.rs; `child` below runs the function.
#[derive(Subcommand, Debug, Clone)]
pub enum Task {
    Named { segment: String, len: usize },
    Bench { segment: String, len: usize },
}

fn main() -> ExitCode {
    plumbing::main(|| {
        let cli = Cli::parse();
        cli.trace.run_traced_if_asked(); // --trace: this command line again, under strace
        cli.pause.apply();
        let named =
            Named { name: cli.name, keep: cli.keep, replace: cli.replace, cmd: cli.child_cmd };
        let scenes = match cli.command {
            None => vec![Scene::Named, Scene::Anonymous, Scene::CopyIn],
            Some(Command::Scene(scene)) => vec![scene],
            Some(Command::Bench(args)) => return bench::run(cli.n, &args, &named, cli.pause),
            Some(Command::BenchRun { method }) => return bench::run_once(&method, cli.n),
            Some(Command::Child(task)) => return as_child("child", || child(task)),
        };
        scenes::run(&scenes, cli.n, named)
    })
}

/// The child's side: the function its task names, with the task's arguments.
fn child(task: Task) -> anyhow::Result<()> {
    match task {
        Task::Named { segment, len } => scenes::named::child(&segment, len),
        Task::Bench { segment, len } => bench::child(&segment, len),
    }
}
