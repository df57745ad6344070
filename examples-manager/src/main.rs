//! examples-manager: a server process hosts the array; the parent and its children
//! work on it through typed proxies, and the array itself never moves: the manager
//! tutorial, and the manager method of "Fastest Way To Share NumPy Array Between
//! Processes". Each scene is one file in `scenes/`; the manager itself is the library
//! (`lib.rs`: the proxy and the requests; `server.rs`: the server). This file reads
//! the command line: which scene runs, or which child's function.

mod bench;
mod scenes;

use std::process::ExitCode;

use bench_protocol::{BenchArgs, DEFAULT_N};
use callback::as_child;
use clap::{Parser, Subcommand};
use examples_manager::{Proxy, Request, host};
use ipc_channel::ipc::{IpcReceiver, IpcSender};
use plumbing::PauseArg;
use scenes::{child_proxy, mutate};
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(
    name = "examples-manager",
    about = "Share an array between processes through a manager: a server process hosts it, clients use typed proxies",
    long_about = "Share an array between processes through a manager: a server process hosts it, \
                  clients use typed proxies.\n\nWithout a scene, runs every scene in order at the tutorial's sizes."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Number of f64 elements the server hosts [default: 50000000 in hosted-sum, 100000000 in the other scenes and in bench]
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    n: Option<u64>,

    /// Clients adding 1 at the same time in the mutate scene, 1 to 64 [default: 4]
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..=64))]
    clients: Option<u64>,

    #[command(flatten)]
    pause: PauseArg,
    #[command(flatten)]
    trace: trace_summary::TraceArg,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Scene(Scene),
    /// Time the manager method the benchmark tutorial's way: a server hosts n ones, one
    /// child sums them through a proxy; with the floors, one line each [default --n 100000000]
    Bench(BenchArgs),
    /// One timed run of one bench method, in a fresh process.
    #[command(hide = true)]
    BenchRun { method: String },
    /// A child, which calls back on `socket` for its task (its parent starts it)
    #[command(hide = true)]
    Child { role: String, socket: String },
}

#[derive(Subcommand, Clone, Copy)]
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
}

/// What a child does: one variant per child function, with its arguments. They hold
/// channel ends, which no command line carries, so the child calls back for its
/// task: `Process::new(Task::...).start_calling_back()`.
#[derive(Serialize, Deserialize)]
pub enum Task {
    /// The server: hosts `len` ones and answers what comes on `requests`
    Server { len: usize, requests: IpcReceiver<Request> },
    /// child-proxy's child: sums through its proxy; reports (sum, peak memory)
    Sum { proxy: Proxy, report: IpcSender<(f64, u64)> },
    /// mutate's first child: fills the hosted array with `value`
    Fill { proxy: Proxy, value: f64 },
    /// mutate's clients: add 1 to every element, a part at a time
    AddOne { id: u64, proxy: Proxy },
}

fn main() -> ExitCode {
    plumbing::main(|| {
        let cli = Cli::parse();
        cli.trace.run_traced_if_asked(); // --trace: this command line again, under strace
        cli.pause.apply();
        let bench_len = || scenes::array_len(cli.n, DEFAULT_N, 1);
        use Scene::*;
        let scenes = match cli.command {
            None => vec![HostedSum, ChildProxy, Attribute, Slice, Mutate],
            Some(Command::Scene(scene)) => vec![scene],
            Some(Command::Bench(args)) => {
                let given = [cli.clients.is_some(), cli.pause.pause];
                return bench::run(bench_len()?, &args, given);
            }
            Some(Command::BenchRun { method }) => return bench::run_once(&method, bench_len()?),
            Some(Command::Child { role, socket }) => return as_child(&role, &socket, child),
        };
        scenes::run(&scenes, cli.n, cli.clients.unwrap_or(4))
    })
}

/// The child's side: the function its task names, with the task's arguments.
fn child(task: Task) -> anyhow::Result<()> {
    match task {
        Task::Server { len, requests } => host(len, requests),
        Task::Sum { proxy, report } => child_proxy::child(&proxy, &report),
        Task::Fill { proxy, value } => mutate::fill(&proxy, value),
        Task::AddOne { id, proxy } => mutate::add_one(id, &proxy),
    }
}
