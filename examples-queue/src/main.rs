//! Send arrays between processes through a queue: "via queue" and "via argument and
//! queue" of the tutorial on sharing NumPy arrays through arguments, pipes and queues,
//! and the queue method of "Fastest Way To Share NumPy Array Between Processes". Each
//! scene is one file in `scenes/`; the queue is an ipc-channel, the array's bytes
//! passing through two windows of shared memory (`parcel.rs`). This file reads the
//! command line: which scene runs, or which child's function.

mod arrivals;
mod bench;
mod parcel;
mod scenes;

use std::process::ExitCode;

use bench_protocol::{BenchArgs, DEFAULT_N};
use callback::as_child;
use clap::{Parser, Subcommand};
use ipc_channel::ipc::{IpcReceiver, IpcSender};
use parcel::Parcel;
use plumbing::{PauseArg, memory::peak};
use scenes::{argument_and_queue, many_producers, queue};
use serde::{Deserialize, Serialize};

/// Send an (n, n) array between processes through a queue. With no scene, runs every
/// scene in order.
#[derive(Parser)]
#[command(name = "examples-queue", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// The tutorial's n: each array has shape (n, n) [default: 1000, 8 MB, in every
    /// scene]; in bench, the number of float64 values [default: 100,000,000]
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    n: Option<u64>,

    /// How many children put on the queue in many-producers, 1 to 256 [default: 4]
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=256))]
    producers: Option<u32>,

    #[command(flatten)]
    pause: PauseArg,
    #[command(flatten)]
    trace: trace_summary::TraceArg,
}

const AFTER_HELP: &str = "\
Each scene prints what the parent and the children see, then one verdict line.
Exit status: 0 when every verdict holds, 1 when one fails or the run fails,
2 for a bad command line.";

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Scene(Scene),
    /// Time the queue and the floor the tutorial's way: n float64 ones put on a queue
    /// for one new child that checks the length [--n 100,000,000; --repeats 3]
    Bench(BenchArgs),
    /// One timed run of one bench method, in a fresh process
    #[command(hide = true)]
    BenchRun { method: String },
    /// A child, which calls back on `socket` for its task (its parent starts it)
    #[command(hide = true)]
    Child { role: String, socket: String },
}

#[derive(Subcommand, Clone, Copy)]
pub enum Scene {
    /// The child makes ones and puts them on a queue; the parent gets a copy [--n 1000]
    Queue,
    /// The parent gives ones to the child, which fills zeros and puts them back [--n 1000]
    ArgumentAndQueue,
    /// Several children put an array each on one queue; the parent gets every one
    ManyProducers,
}

/// What a child does: one variant per child function (`Bench`: the bench's), with its
/// arguments. They hold channel ends, which no command line carries, so the child
/// calls back for its task: `Process::new(Task::...).start_calling_back()`.
#[derive(Serialize, Deserialize)]
pub enum Task {
    MakeOnes { n: usize, queue: IpcSender<Parcel> },
    FillZeros { argument: Parcel, queue: IpcSender<Parcel> },
    Produce { id: u32, n: usize, queue: IpcSender<Parcel> },
    Bench { n: usize, queue: IpcReceiver<Parcel> },
}

fn main() -> ExitCode {
    plumbing::main(|| {
        let cli = Cli::parse();
        cli.trace.run_traced_if_asked(); // --trace: this command line again, under strace
        cli.pause.apply();
        let (n, producers) = (cli.n.unwrap_or(1000), cli.producers.unwrap_or(4));
        let bench_n = || scenes::checked_len(cli.n.unwrap_or(DEFAULT_N)); // 1-D: values
        let scenes = match cli.command {
            None => vec![Scene::Queue, Scene::ArgumentAndQueue, Scene::ManyProducers],
            Some(Command::Scene(scene)) => vec![scene],
            Some(Command::Bench(args)) => {
                let given = [cli.producers.is_some(), cli.pause.pause];
                return bench::run(bench_n()?, &args, given);
            }
            Some(Command::BenchRun { method }) => return bench::run_once(&method, bench_n()?),
            Some(Command::Child { role, socket }) => return as_child(&role, &socket, child),
        };
        scenes::run(&scenes, n, producers)
    })
}

/// The child's side: the function its task names, with the task's arguments.
fn child(task: Task) -> anyhow::Result<()> {
    let me = callback::Task::role(&task);
    match task {
        Task::MakeOnes { n, queue } => queue::child(n, &queue)?,
        Task::FillZeros { argument, queue } => argument_and_queue::child(argument, &queue)?,
        Task::Produce { id, n, queue } => many_producers::child(id, n, &queue)?,
        Task::Bench { n, queue } => return bench::child(n, &queue),
    }
    println!("{me}: peak memory {} MB", peak() / 1_000_000);
    Ok(())
}
