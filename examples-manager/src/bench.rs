//! `examples-manager bench`: the tutorial "Fastest Way To Share NumPy Array Between
//! Processes", measured for the manager method.
//!
//! The tutorial's manager run: a server process creates n float64 ones, one new
//! child is handed a proxy and asks for the sum (the tutorial's proxy could not
//! read the shape, so the sum, which must be n, is its check), then the server is
//! shut down. The run below is the lesson's own code: `with_server`, the `server`
//! sub-command and a child doing `Job::Sum`, as in the `child-proxy` scene; the
//! child reports its sum and the parent checks it.
//!
//! Two floors, each in one process with no child: `floor` only creates the ones;
//! `floor-manager` creates them and sums them, the work the manager run does too
//! (in its server). What the manager row costs beyond `floor-manager` is the price
//! of the processes, the sockets and the messages.

use std::time::Instant;

use anyhow::{Result, bail, ensure};
use ndarray::Array1;
use plumbing::bench;
use plumbing::room::children_peak;

use crate::manager::{ChildHandle, FromChild, Job, with_server};

pub const METHODS: [&str; 3] = ["floor", "floor-manager", "manager"];

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
    let array = Array1::from_vec(bench::ones(n));
    check_sum(std::hint::black_box(&array).sum(), n)
}

/// The server hosts the ones; a new child gets a proxy and sums through it.
///
/// Besides the protocol's figures, a run started by hand (`examples-manager
/// bench-run manager`) prints when each step ended and each process's peak memory:
/// where the time goes. The driver reads only a run's last line, so these lines
/// cost the benchmark nothing but a few clock readings.
fn manager(n: usize) -> Result<()> {
    let start = Instant::now();
    let after = |step: &str| format!("after {:.3} s: {step}", start.elapsed().as_secs_f64());
    let (sum, mut steps) = with_server(n, |proxy| {
        let mut steps = vec![after("the server is up, its ones filled")];
        let mut child = ChildHandle::start("child")?;
        steps.push(after("the child is up and has called back"));
        child.order(proxy, Job::Sum)?;
        let FromChild::Summed(sum) = child.finish()? else {
            bail!("the child reported something other than its sum");
        };
        steps.push(after("the child has its sum (computed in the server) and has exited"));
        // The protocol's `peak_child_mb` is the largest of all children: the
        // server's, which holds the array. The only child waited for so far is the
        // one that summed, so the children's peak right now is its own.
        steps.push(format!(
            "peak memory: server {} MB, child {} MB",
            proxy.peak_memory()? / 1_000_000,
            children_peak() / 1_000_000
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
