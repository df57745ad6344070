//! `examples-manager bench`: the tutorial "Fastest Way To Share NumPy Array Between
//! Processes", measured for the manager method.
//!
//! The tutorial's manager run: a server process creates n float64 ones, one new
//! child is handed a proxy and asks for the sum (the tutorial's proxy could not
//! read the shape, so the sum, which must be n, is its check), then the server is
//! shut down. The run below is the lesson's own code: `with_server_and` (the
//! scenes' `with_server`, with the child started beside the server), the server's
//! `Task::Server` and a child doing `Task::Sum`, as in the `child-proxy` scene; the
//! child reports its sum and the parent checks it.
//!
//! Two floors, each in one process with no child: `floor` only creates the ones;
//! `floor-manager` creates them and sums them, the work the manager run does too
//! (in its server). What the manager row costs beyond `floor-manager` is the price
//! of the processes, the sockets and the messages.

use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use bench_protocol as bench;
use examples_manager::Proxy;
use ipc_channel::ipc;
use ndarray::Array1;

use crate::Task;
use crate::scenes::with_server_and;

pub const METHODS: [&str; 3] = ["floor", "floor-manager", "manager"];

/// `bench`: every method, each run in a fresh process. `given` says whether the
/// scenes' --clients and --pause were given: bench refuses them.
pub fn run(n: usize, args: &bench::BenchArgs, given: [bool; 2]) -> Result<()> {
    bench::refuse_scene_flags(&[("--clients", given[0]), ("--pause", given[1])])?;
    bench::run_methods(&METHODS, n as u64, args)
}

/// One run of `method`, timed by the protocol, in this fresh process.
pub fn run_once(method: &str, n: usize) -> Result<()> {
    bench::time_one_run(|| match method {
        "floor" => bench::floor(n),
        "floor-manager" => floor_manager(n),
        "manager" => manager(n),
        other => bail!("unknown bench method {other:?}; the methods are {METHODS:?}"),
    })
}

/// What the manager run computes, without its processes: ones, then their sum,
/// with the same `sum` the server's `serve` uses.
fn floor_manager(n: usize) -> Result<()> {
    let array = Array1::from_vec(plumbing::arrays::ones(n));
    check_sum(std::hint::black_box(&array).sum(), n)
}

/// The server hosts the ones; a new child gets a proxy and sums through it. Both
/// start at once (`with_server_and`): the child starts up while the server does,
/// and its request waits in the server's channel until the server serves.
///
/// Besides the protocol's figures, a run started by hand (`examples-manager
/// bench-run manager`) prints when each step ended and each process's peak memory:
/// where the time goes. The driver reads only a run's last line, so these lines
/// cost the benchmark nothing but a few clock readings.
fn manager(n: usize) -> Result<()> {
    let start = Instant::now();
    let after = |step: &str| format!("after {:.3} s: {step}", start.elapsed().as_secs_f64());
    // The sockets' directory and its watchdog (a fork) while this process is small.
    callback::prepare()?;
    let (report, reports) = ipc::channel()?;
    let child_task = |proxy: &Proxy| vec![Task::Sum { proxy: proxy.clone(), report }];
    let (sum, mut steps) = with_server_and(n, child_task, |proxy, mut children| {
        let mut steps = vec![after("the server is up, its ones filled; the child started")];
        let child = children.pop().context("the child was not started")?;
        let summed = reports.recv().context("the child ended without reporting its sum");
        let (sum, child_peak) = child.join_with(summed)?;
        steps.push(after("the child has its sum, computed in the server, and exited"));
        // The protocol's `peak_child_mb` is the largest of all children: the
        // server's, which holds the array.
        let server_peak = proxy.peak_memory()?;
        bench::report_child_peak(server_peak);
        bench::report_child_peak(child_peak);
        let mb = |bytes: u64| bytes / 1_000_000;
        steps.push(format!(
            "peak memory: server {} MB, child {} MB",
            mb(server_peak),
            mb(child_peak)
        ));
        Ok((sum, steps))
    })?;
    steps.push(after("the server has shut down and exited"));
    for step in steps {
        println!("parent: {step}");
    }
    check_sum(sum, n)
}

fn check_sum(sum: f64, n: usize) -> Result<()> {
    ensure!(sum == n as f64, "expected a sum of {n}, but the sum was {sum}");
    Ok(())
}
