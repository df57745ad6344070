//! Send arrays between processes through a queue: the queue examples of the
//! tutorial on sharing NumPy arrays through function arguments, pipes and queues
//! ("via queue", "via argument and queue"), and the queue method of "Fastest Way To
//! Share NumPy Array Between Processes". A queue shares nothing: whatever is put on
//! it is copied, and the getter owns a new array.
//!
//! Each scene is one file in `scenes/`, to read beside the tutorial. The queue is an
//! ipc-channel: typed serde messages over Unix sockets, the array's bytes passed
//! along through two small windows of shared memory (`parcel.rs`). This file only
//! reads the command line; `bench.rs` times the benchmark tutorial's protocol.

mod bench;
mod parcel;
mod scenes;
mod tally;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use plumbing::bench::{BenchArgs, DEFAULT_N, refuse_scene_flags, run_methods};
use plumbing::children::as_child;
use plumbing::pause::PauseArg;

/// Send an (n, n) array between processes through a queue.
///
/// With no scene, runs every scene in order.
#[derive(Parser)]
#[command(name = "examples-queue", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    scene: Option<Scene>,

    /// The tutorial's n: each array has shape (n, n), n*n float64 values
    /// [default: 1000, an 8 MB array, in every scene]; in bench, the number of
    /// values [default: 100,000,000]
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    n: Option<u64>,

    /// How many children put on the queue in many-producers, 1 to 256 [default: 4]
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=256))]
    producers: Option<u32>,

    #[command(flatten)]
    pause: PauseArg,
}

const AFTER_HELP: &str = "\
Each scene prints what the parent and the children see, then one verdict line.
Exit status: 0 when every verdict holds, 1 when one fails or the run fails,
2 for a bad command line.";

#[derive(Subcommand, Clone, PartialEq)]
pub enum Scene {
    /// The child makes ones and puts them on a queue; the parent gets a copy
    /// [--n, default 1000]
    Queue,
    /// The parent gives ones to the child as its argument; the child fills zeros
    /// and puts its copy back on the queue [--n, default 1000]
    ArgumentAndQueue,
    /// Several children put an array each on one queue; the parent gets every one
    /// [--n, default 1000; --producers, default 4]
    ManyProducers,
    /// Time the queue and the floor the tutorial's way: n float64 ones (1-D,
    /// default n = 100,000,000) put on a queue for one new child that checks the
    /// length [--n, the number of values; --repeats, default 3]
    Bench(BenchArgs),
    /// One timed run of one bench method, in a fresh process
    #[command(hide = true)]
    BenchRun { method: String },
    /// The child side of every scene: calls back to the parent, gets its task
    #[command(hide = true)]
    Child { socket: String },
}

fn main() -> ExitCode {
    plumbing::main(|| {
        let cli = Cli::parse();
        let n = cli.n.unwrap_or(1000);
        let producers = cli.producers.unwrap_or(4);
        // The bench's array is 1-D: its --n counts the values, the parent's and the child's.
        let bench_n = || scenes::checked_len(cli.n.unwrap_or(DEFAULT_N));
        match cli.scene {
            None => {
                cli.pause.apply()?;
                scenes::run(
                    &[Scene::Queue, Scene::ArgumentAndQueue, Scene::ManyProducers],
                    n,
                    producers,
                )
            }
            Some(Scene::Child { socket }) => as_child("child", || scenes::child(&socket)),
            Some(Scene::Bench(args)) => {
                let pause = cli.pause.pause;
                refuse_scene_flags(&[
                    ("--producers", cli.producers.is_some()),
                    ("--pause", pause),
                ])?;
                run_methods(&bench::METHODS, bench_n()? as u64, &args)
            }
            Some(Scene::BenchRun { method }) => bench::run_once(&method, bench_n()?),
            Some(scene) => {
                cli.pause.apply()?;
                scenes::run(&[scene], n, producers)
            }
        }
    })
}
