//! examples-manager: a server process hosts the array; the parent and its children
//! work on it through typed proxies, and the array itself never moves. The manager
//! tutorial of the series, and the manager method of "Fastest Way To Share NumPy
//! Array Between Processes".
//!
//! Each scene is one file in `scenes/`, to read beside the tutorial: hosted-sum,
//! child-proxy, attribute, slice, then mutate, the series' common pattern. The
//! manager itself is the library (`lib.rs`: the proxy and the requests; `server.rs`:
//! the server's loop); `manager.rs` starts the server and the children. This file
//! only reads the command line; `bench.rs` times the manager method.

mod bench;
mod manager;
mod scenes;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use plumbing::bench::{BenchArgs, DEFAULT_N, refuse_scene_flags, run_methods};
use plumbing::children::as_child;
use plumbing::pause::PauseArg;

#[derive(Parser)]
#[command(
    name = "examples-manager",
    about = "Share an array between processes through a manager: a server process hosts it, clients use typed proxies",
    long_about = "Share an array between processes through a manager: a server process hosts it, \
                  clients use typed proxies.\n\nWithout a scene, runs every scene in order at the tutorial's sizes."
)]
struct Cli {
    #[command(subcommand)]
    scene: Option<Scene>,

    /// Number of f64 elements the server hosts [default: 50000000 in hosted-sum, 100000000 in the other scenes and in bench]
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    n: Option<u64>,

    /// Clients adding 1 at the same time in the mutate scene, 1 to 64 [default: 4]
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..=64))]
    clients: Option<u64>,

    #[command(flatten)]
    pause: PauseArg,
}

#[derive(Subcommand, Clone, PartialEq)]
pub enum Scene {
    /// Sum on the server versus fetching a full copy and summing locally, both timed [default --n 50000000]
    HostedSum,
    /// The parent sums through its proxy, then a child is handed a proxy and sums too [default --n 100000000]
    ChildProxy,
    /// The proxy answers the array's shape; the cost of one small request [default --n 100000000]
    Attribute,
    /// The proxy returns a slice of values, the first 10 [default --n 100000000]
    Slice,
    /// A child fills zeros through its proxy; then --clients children add 1 at once [default --n 100000000]
    Mutate,
    /// Time the manager method the benchmark tutorial's way: a server hosts n ones, one
    /// child sums them through a proxy; with the floors, one line each [default --n 100000000]
    Bench(BenchArgs),
    /// One timed run of one bench method, in a fresh process.
    #[command(hide = true)]
    BenchRun { method: String },
    /// The server process (started by the parent).
    #[command(hide = true)]
    Server { len: usize, socket: String },
    /// A child process (started by the parent).
    #[command(hide = true)]
    Child { label: String, socket: String },
}

fn main() -> ExitCode {
    plumbing::main(|| {
        let cli = Cli::parse();
        let clients = cli.clients.unwrap_or(4);
        let bench_len = || scenes::array_len(cli.n, DEFAULT_N, 1);
        match cli.scene {
            Some(Scene::Server { len, socket }) => {
                as_child("server", || manager::server(len, &socket))
            }
            Some(Scene::Child { label, socket }) => scenes::child(&label, &socket),
            Some(Scene::Bench(args)) => {
                let pause = cli.pause.pause;
                refuse_scene_flags(&[("--clients", cli.clients.is_some()), ("--pause", pause)])?;
                run_methods(&bench::METHODS, bench_len()? as u64, &args)
            }
            Some(Scene::BenchRun { method }) => bench::run_once(&method, bench_len()?),
            Some(scene) => {
                cli.pause.apply()?;
                scenes::run(&[scene], cli.n, clients)
            }
            None => {
                cli.pause.apply()?;
                use Scene::*;
                scenes::run(&[HostedSum, ChildProxy, Attribute, Slice, Mutate], cli.n, clients)
            }
        }
    })
}
