//! examples-manager: a server process hosts the array; the parent and its children
//! work on it through typed proxies, and the array itself never moves.
//!
//! Mirrors the manager tutorial of the series (sharing a NumPy array between
//! processes by hosting it in a manager's server process) and the manager method of
//! "Fastest Way To Share NumPy Array Between Processes". Scenes, in the tutorial's
//! order: hosted-sum, child-proxy, attribute, slice; then mutate, the series'
//! common pattern (a child changes the array, the parent looks).
//!
//! Read this file top to bottom; `lib.rs` holds the proxy, the requests and the
//! server loop; `bench.rs` times the manager method the benchmark tutorial's way.

mod bench;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand};
use examples_manager::{
    Process, Proxy, array_len, clean_up_on_interrupt, fault_switch, let_cleanup_finish, mb,
    peak_memory_kib, serve, spawn_and_accept,
};
use ipc_channel::ipc::{self, IpcReceiver, IpcSender};
use ndarray::Array1;
use serde::{Deserialize, Serialize};

/// The tutorial's sizes: 50,000,000 f64 for the timing example, 100,000,000 for the others.
const HOSTED_SUM_N: u64 = 50_000_000;
const N: u64 = 100_000_000;
const CLIENTS: u64 = 4;
/// Each adding client walks the array in this many requests, so that requests from
/// different clients interleave at the server.
const ADD_REQUESTS: usize = 100;

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
}

#[derive(Subcommand)]
enum Scene {
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
    Bench {
        /// Timed runs per method, after one warm-up
        #[arg(long, default_value_t = bench_protocol::DEFAULT_REPEATS, value_parser = clap::value_parser!(u32).range(1..))]
        repeats: u32,
    },
    /// One timed run of one bench method, in a fresh process.
    #[command(hide = true)]
    BenchRun { method: String },
    /// The server process (started by the parent).
    #[command(hide = true)]
    Server { len: usize, socket: String },
    /// A child process (started by the parent).
    #[command(hide = true)]
    Child { socket: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server's and the children's own errors are labelled, so that the one
    // `error:` line on stderr is the parent's, the one that says what happened.
    let who = match cli.scene {
        Some(Scene::Server { .. }) => "server: ",
        Some(Scene::Child { .. }) => "child: ",
        _ => "",
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let_cleanup_finish();
            eprintln!("{who}error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let scenes = match cli.scene {
        Some(Scene::Server { len, socket }) => return server(len, &socket),
        Some(Scene::Child { socket }) => return task(&socket),
        Some(Scene::Bench { repeats }) => {
            ensure!(
                cli.clients.is_none(),
                "bench measures the tutorial's method, one child and one server: --clients applies to the mutate scene"
            );
            let n = cli.n.unwrap_or(bench_protocol::DEFAULT_N);
            array_len(Some(n), n, 1)?;
            return bench_protocol::run_methods(&bench::METHODS, n, repeats);
        }
        Some(Scene::BenchRun { method }) => {
            let n = cli.n.unwrap_or(bench_protocol::DEFAULT_N);
            let len = array_len(Some(n), n, 1)?;
            // A run interrupted while a socket waits for its caller still removes it.
            clean_up_on_interrupt()?;
            return bench::run_once(&method, len);
        }
        Some(scene) => vec![scene],
        None => {
            vec![Scene::HostedSum, Scene::ChildProxy, Scene::Attribute, Scene::Slice, Scene::Mutate]
        }
    };
    clean_up_on_interrupt()?;
    for (i, scene) in scenes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        match scene {
            // The parent also holds a full copy in this scene: two arrays must fit.
            Scene::HostedSum => hosted_sum(array_len(cli.n, HOSTED_SUM_N, 2)?)?,
            Scene::ChildProxy => child_proxy(array_len(cli.n, N, 1)?)?,
            Scene::Attribute => attribute(array_len(cli.n, N, 1)?)?,
            Scene::Slice => slice(array_len(cli.n, N, 1)?)?,
            Scene::Mutate => mutate(array_len(cli.n, N, 1)?, cli.clients.unwrap_or(CLIENTS))?,
            Scene::Server { .. }
            | Scene::Child { .. }
            | Scene::Bench { .. }
            | Scene::BenchRun { .. } => unreachable!("handled above"),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The scenes (the parent's side)
// ---------------------------------------------------------------------------

/// The tutorial's first example: a sum computed on the server sends back one number;
/// a sum on a copy first sends the whole array across.
fn hosted_sum(len: usize) -> Result<()> {
    println!("=== hosted-sum: summing where the array lives versus copying it out first ===");
    let array_mb = mb(len as u64 * 8);
    let (hosted, copied) = with_server(len, |proxy| {
        let start = Instant::now();
        let hosted = proxy.sum()?;
        let hosted_time = start.elapsed().as_secs_f64();
        println!(
            "parent: sum on the hosted array: {hosted} in {hosted_time:.3} s (only the answer came back)"
        );

        let start = Instant::now();
        let copy = proxy.copy()?;
        let copied = copy.sum();
        let copied_time = start.elapsed().as_secs_f64();
        println!(
            "parent: sum on a fetched copy: {copied} in {copied_time:.3} s ({array_mb} MB crossed over first)"
        );
        drop(copy);

        println!(
            "parent: fetching a copy first took {:.1}x as long as asking the server",
            copied_time / hosted_time
        );
        println!(
            "parent: peak memory: parent {} MB, server {} MB (the array is {array_mb} MB)",
            mb(peak_memory_kib() * 1024),
            mb(proxy.peak_memory_kib()? * 1024)
        );
        Ok((hosted, copied))
    })?;
    ensure!(
        hosted == len as f64 && copied == len as f64,
        "expected both sums to be {len}, but the server said {hosted} and the copy gave {copied}"
    );
    println!(
        "verdict: hosted-sum: both sums are {len}; the hosted sum moved one number, the copied sum the whole array ({array_mb} MB)"
    );
    Ok(())
}

/// The tutorial's second example: the proxy is handed to a child, which sums through it.
fn child_proxy(len: usize) -> Result<()> {
    println!(
        "=== child-proxy: the parent and a child both sum the hosted array through proxies ==="
    );
    let (parent_sum, child_sum) = with_server(len, |proxy| {
        let parent_sum = proxy.sum()?;
        println!("parent: sum through my proxy: {parent_sum}");
        let mut child = ChildHandle::start("child")?;
        // The child receives a clone of our proxy: one more sender into the same
        // server. The array does not move; only requests and answers do.
        child.order(proxy, Job::Sum)?;
        let FromChild::Summed(child_sum) = child.finish()? else {
            bail!("the child reported something other than its sum");
        };
        Ok((parent_sum, child_sum))
    })?;
    ensure!(
        parent_sum == len as f64 && child_sum == len as f64,
        "expected both sums to be {len}, but the parent got {parent_sum} and the child {child_sum}"
    );
    println!(
        "verdict: child-proxy: the parent and the child both summed {len} through their proxies; one array, never copied"
    );
    Ok(())
}

/// The tutorial could not read `data_proxy.shape`; here `shape` is one of the
/// requests the server offers, so the proxy has a method for it.
fn attribute(len: usize) -> Result<()> {
    println!(
        "=== attribute: the proxy answers the array's shape (a typed request, not an attribute lookup) ==="
    );
    let (shape, sum) = with_server(len, |proxy| {
        let shape = proxy.shape()?;
        println!("parent: shape through my proxy: {shape:?}");
        let sum = proxy.sum()?;
        println!("parent: sum through my proxy: {sum}");
        let median = round_trip(proxy, 1000)?;
        println!(
            "parent: one small request (shape) there and back takes {:.1} µs (median of 1000)",
            median.as_secs_f64() * 1e6
        );
        Ok((shape, sum))
    })?;
    ensure!(
        shape == [len] && sum == len as f64,
        "expected shape [{len}] and sum {len}, but the proxy answered {shape:?} and {sum}"
    );
    println!(
        "verdict: attribute: the proxy reports shape [{len}], and the server's sum over all {len} elements agrees"
    );
    Ok(())
}

/// The tutorial's `data_proxy[:10]` failed; its fix was a wrapper with `getdata`.
/// Here `slice` is a request: the answer is a copy of just those values.
fn slice(len: usize) -> Result<()> {
    println!("=== slice: the proxy returns a slice of values, a copy of just those ===");
    let (first, min, max) = with_server(len, |proxy| {
        println!("parent: sum through my proxy: {}", proxy.sum()?);
        let first = proxy.slice(0, len.min(10))?;
        print_corner("parent", &first);
        let (min, max) = proxy.min_max()?;
        println!(
            "parent: smallest and largest of all {len} elements, from the server: {min} and {max}"
        );
        Ok((first, min, max))
    })?;
    ensure!(
        first.iter().all(|&x| x == 1.0) && min == 1.0 && max == 1.0,
        "expected ones everywhere, but the slice was {first:?} and the server saw min {min}, max {max}"
    );
    println!(
        "verdict: slice: the first {} values arrived as a copy of {} bytes, and all {len} elements are 1.0 (min = max = 1)",
        first.len(),
        first.len() * 8
    );
    Ok(())
}

/// The series' common pattern: a child changes the array and the parent looks.
/// Then several clients change it at once; the server applies one request at a time.
fn mutate(len: usize, clients: u64) -> Result<()> {
    println!(
        "=== mutate: a child's writes through its proxy are seen by the parent; clients at once lose nothing ==="
    );
    let (after_fill, min, max, total) = with_server(len, |proxy| {
        let mut child = ChildHandle::start("child")?;
        child.order(proxy, Job::Fill(0.0))?;
        child.finish()?;
        let after_fill = proxy.sum()?;
        println!("parent: sum through my proxy after the child's fill: {after_fill}");

        let mut team = Vec::new();
        for i in 1..=clients {
            team.push(ChildHandle::start(&format!("child {i}"))?);
        }
        // Orders go out only once every client is up, so their requests really
        // interleave at the server instead of one client running after another.
        for client in &mut team {
            client.order(proxy, Job::AddOne)?;
        }
        for client in team {
            client.finish()?;
        }
        let (min, max) = proxy.min_max()?;
        let total = proxy.sum()?;
        print_corner("parent", &proxy.slice(0, len.min(10))?);
        println!("parent: sum {total}; smallest element {min}, largest {max}");
        Ok((after_fill, min, max, total))
    })?;
    let k = clients as f64;
    ensure!(
        after_fill == 0.0,
        "expected the parent to see the child's zeros (sum 0), but the sum was {after_fill}"
    );
    ensure!(
        min == k && max == k && total == k * len as f64,
        "expected {clients} in every element after {clients} clients each added 1, but saw min {min}, max {max}, sum {total}"
    );
    println!(
        "verdict: mutate: the parent saw the child's zeros, and {clients} clients adding 1 at once left exactly {clients} in all {len} elements"
    );
    Ok(())
}

/// Starts a server process hosting `len` ones, lets `scene` use it through a proxy,
/// then shuts it down and waits for it: the tutorial's `with CustomManager() as manager:`.
/// If anything fails, the error says how the server ended (if it did), and the server
/// is killed and reaped when `server` is dropped.
fn with_server<T>(len: usize, scene: impl FnOnce(&Proxy) -> Result<T>) -> Result<T> {
    let (mut server, _, proxy) =
        spawn_and_accept::<Proxy>("server", &["server", &len.to_string()])?;
    println!("parent: the server (process {}) hosts ones of shape [{len}]", server.id());
    let value = scene(&proxy).map_err(|err| server.explain(err))?;
    proxy.shutdown().map_err(|err| server.explain(err))?;
    server.wait()?;
    Ok(value)
}

/// Median time of `count` shape requests: the fixed price of asking the server anything.
fn round_trip(proxy: &Proxy, count: usize) -> Result<Duration> {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        proxy.shape()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[count / 2])
}

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

/// The manager's server: creates the array, gives the parent a proxy, then serves.
fn server(len: usize, socket: &str) -> Result<()> {
    // Ones made the way numpy's `ones` makes a large array: the kernel is asked for
    // 2 MiB (huge) pages instead of 4 KiB ones, so filling 800 MB takes 400 page
    // faults rather than 200,000 and is several times faster. The array is the same.
    let array = Array1::from_vec(bench_protocol::ones(len));
    let (requests, incoming) = ipc::channel()?;
    let parent: IpcSender<Proxy> = IpcSender::connect(socket.to_string())?;
    // The proxy carries our request channel's only sender away: from now on only
    // clients hold one, so `serve` also ends by itself when the last client is gone.
    parent.send(Proxy::new(requests))?;
    fault_switch("EXAMPLES_SERVER_FAULT", "server");
    serve(array, incoming);
    Ok(())
}

// ---------------------------------------------------------------------------
// The child processes
// ---------------------------------------------------------------------------

/// What a child sends its parent, on the socket it called back on.
#[derive(Serialize, Deserialize)]
enum FromChild {
    /// "I am up: send my orders here."
    Ready(IpcSender<Order>),
    /// The sum the child got through its proxy.
    Summed(f64),
    /// The job is done.
    Done,
}

/// What the parent sends a child: its name for output, its proxy and its job.
#[derive(Serialize, Deserialize)]
struct Order {
    label: String,
    proxy: Proxy,
    job: Job,
}

#[derive(Serialize, Deserialize)]
enum Job {
    Sum,
    Fill(f64),
    AddOne,
}

/// The child's task (the tutorial's `task(data_proxy)`): it gets a proxy, never the array.
/// It was started with PDEATHSIG=SIGKILL and SIGINT/SIGTERM unblocked (see `spawn_and_accept`).
fn task(socket: &str) -> Result<()> {
    let parent: IpcSender<FromChild> = IpcSender::connect(socket.to_string())?;
    let (orders, incoming) = ipc::channel()?;
    parent.send(FromChild::Ready(orders))?;
    let Order { label, proxy, job } =
        incoming.recv().context("the parent went away before sending orders")?;
    fault_switch("EXAMPLES_CHILD_FAULT", &label);

    let report = match job {
        Job::Sum => {
            let sum = proxy.sum()?;
            println!("{label}: sum through my proxy: {sum}");
            FromChild::Summed(sum)
        }
        Job::Fill(value) => {
            proxy.fill(value)?;
            let len: usize = proxy.shape()?.iter().product();
            println!("{label}: filled all {len} elements with {value} through my proxy");
            print_corner(&label, &proxy.slice(0, len.min(10))?);
            FromChild::Done
        }
        Job::AddOne => {
            let len: usize = proxy.shape()?.iter().product();
            let step = len.div_ceil(ADD_REQUESTS);
            for start in (0..len).step_by(step) {
                proxy.add(start, (start + step).min(len), 1.0)?;
            }
            println!("{label}: added 1 to all {len} elements, {step} at a time");
            FromChild::Done
        }
    };
    // Our lines must be out before the parent, once it has our report, prints more.
    std::io::stdout().flush()?;
    parent.send(report)?;
    Ok(())
}

/// A child process, as the parent sees it.
struct ChildHandle {
    label: String,
    process: Process,
    orders: IpcSender<Order>,
    reports: IpcReceiver<FromChild>,
}

impl ChildHandle {
    /// Starts a child and waits until it has called back, ready for orders.
    fn start(label: &str) -> Result<ChildHandle> {
        let (process, reports, first) = spawn_and_accept(label, &["child"])?;
        let FromChild::Ready(orders) = first else {
            bail!("the {label} process did not start by asking for orders");
        };
        Ok(ChildHandle { label: label.to_string(), process, orders, reports })
    }

    /// Hands the child its job and a proxy: a clone of a sender, not of the array.
    /// A child that died first makes the send fail with a broken pipe; its exit
    /// status says why.
    fn order(&mut self, proxy: &Proxy, job: Job) -> Result<()> {
        let order = Order { label: self.label.clone(), proxy: proxy.clone(), job };
        self.orders.send(order).map_err(|err| {
            let err = anyhow::Error::new(err)
                .context(format!("the {} process went away before its orders", self.label));
            self.process.explain_closed(err)
        })
    }

    /// Waits for the child's report, then for the child. A child that dies closes
    /// its channel, so `recv` fails instead of waiting forever; its exit status
    /// then says what happened.
    fn finish(mut self) -> Result<FromChild> {
        let report = self.reports.recv();
        self.process.wait()?;
        report.with_context(|| format!("the {} process ended without reporting", self.label))
    }
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// Prints the first values of the array, as the tutorial prints `data[:10]`.
fn print_corner(who: &str, values: &[f64]) {
    println!("{who}: first {} values: {values:?}", values.len());
}
