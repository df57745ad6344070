//! Send arrays between processes through a queue.
//!
//! This mirrors the queue examples of the tutorial on sharing NumPy arrays through
//! function arguments, pipes and queues ("via queue" and "via argument and queue"),
//! and the queue method of "Fastest Way To Share NumPy Array Between Processes". A
//! queue shares nothing: whatever is put on it is copied, and the getter owns a new
//! array.
//!
//! * `queue`: the child makes an array of ones and puts it on the queue; the parent
//!   gets it: a simulated return value.
//! * `argument-and-queue`: the parent gives ones to the child as its argument; the
//!   child fills its copy with zeros and puts it back; the parent gets zeros, while
//!   its own array is still ones.
//! * `many-producers`: several children put on the one queue; the parent gets every
//!   array. A pipe joins two ends; a queue takes puts from any number of processes.
//!
//! The queue is an `ipc-channel`: typed serde messages over Unix sockets, with the
//! array's bytes sent raw (see `parcel.rs`). Starting and watching the children is
//! in `children.rs`; `bench` (the benchmark tutorial's protocol) is in `bench.rs`.

mod bench;
mod children;
mod parcel;

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand};
use ipc_channel::ipc::{self, IpcReceiver, IpcSender};
use ndarray::{Array2, s};
use nix::sys::resource::{UsageWho, getrusage};
use serde::{Deserialize, Serialize};

use children::{Child, fail_on_purpose_if_asked, finish_all};
use parcel::{Parcel, get, put};

/// The tutorial's queue examples use a 1000 x 1000 float64 array: 8 MB.
const DEFAULT_N: u64 = 1000;
const DEFAULT_PRODUCERS: u32 = 4;

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
}

const AFTER_HELP: &str = "\
Each scene prints what the parent and the children see, then one verdict line.
Exit status: 0 when every verdict holds, 1 when one fails or the run fails,
2 for a bad command line.";

#[derive(Subcommand)]
enum Scene {
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
    Bench {
        /// Timed runs per method, after one warm-up
        #[arg(long, default_value_t = bench_protocol::DEFAULT_REPEATS, value_parser = clap::value_parser!(u32).range(1..))]
        repeats: u32,
    },
    /// One timed run of one bench method, in a fresh process
    #[command(hide = true)]
    BenchRun { method: String },
    /// The child side of every scene: connects to the parent, gets its arguments
    #[command(hide = true)]
    Child {
        #[arg(long)]
        server: String,
        #[arg(long)]
        parent: i32,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let (who, result) = match &cli.scene {
        Some(Scene::Child { server, parent }) => ("child: ", child_main(server, *parent)),
        _ => ("", run(&cli)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            children::let_cleanup_finish();
            eprintln!("{who}error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    children::clean_up_on_signals()?;
    let n = cli.n.unwrap_or(DEFAULT_N);
    let producers = cli.producers.unwrap_or(DEFAULT_PRODUCERS);
    match cli.scene {
        None => {
            scene_queue(n)?;
            println!();
            scene_argument_and_queue(n)?;
            println!();
            scene_many_producers(n, producers)
        }
        Some(Scene::Queue) => scene_queue(n),
        Some(Scene::ArgumentAndQueue) => scene_argument_and_queue(n),
        Some(Scene::ManyProducers) => scene_many_producers(n, producers),
        Some(Scene::Bench { repeats }) => {
            ensure!(
                cli.producers.is_none(),
                "bench measures the tutorial's method, one child and one queue: --producers applies to the many-producers scene"
            );
            let n = cli.n.unwrap_or(bench_protocol::DEFAULT_N);
            // The parent's array and the child's.
            checked_len(n, Some(n), 2)?;
            bench_protocol::run_methods(&bench::METHODS, n, repeats)
        }
        Some(Scene::BenchRun { ref method }) => {
            let n = cli.n.unwrap_or(bench_protocol::DEFAULT_N);
            bench::run_once(method, checked_len(n, Some(n), 2)?)
        }
        Some(Scene::Child { .. }) => unreachable!("handled in main"),
    }
}

/// What a child is to do, with everything it gets from the parent: Python's
/// `Process(target=task, args=(...))`.
///
/// Each task holds the child's end of the queue. Python hands the whole queue to
/// the child; an ipc-channel has two ends, and each process gets the one it uses.
/// A put end (`IpcSender`) may be cloned into many processes; the get end
/// (`IpcReceiver`) is in exactly one.
#[derive(Serialize, Deserialize)]
pub enum Task {
    /// Scene 1: make ones of shape (n, n), put them on the queue.
    MakeOnes { n: usize, queue: IpcSender<Parcel> },
    /// Scene 2: the argument is an array; fill it with zeros, put it back.
    FillZeros { argument: Parcel, queue: IpcSender<Parcel> },
    /// Scene 3: make an (n, n) array filled with the value `id`, put it.
    Produce { id: u32, n: usize, queue: IpcSender<Parcel> },
    /// The bench: get n values from the queue, check the length. The only task
    /// whose child gets: the parent puts.
    GetAndCheck { n: usize, queue: IpcReceiver<Parcel> },
}

// ---------------------------------------------------------------------------------
// Scene 1: the child makes the array and puts it on the queue
// ---------------------------------------------------------------------------------

fn scene_queue(n: u64) -> Result<()> {
    println!(
        "=== queue: the child makes ones and puts them on a queue; the parent gets a copy ==="
    );
    // At the peak: the child's array, and the parent's copy of it.
    let shape = checked_shape(n, 2)?;

    // SimpleQueue(): the put end goes to the child, the get end stays here.
    let (queue, gets) = ipc::channel::<Parcel>()?;
    let child = children::start("the child process")?;
    println!(
        "parent: started the child (pid {}) and gave it the queue; waiting on get()",
        child.pid()
    );
    // `queue` moves into the message: the parent keeps no put end, so if the child
    // dies, get() sees a closed queue instead of waiting forever.
    let task = Task::MakeOnes { n: shape.0, queue };
    let outcome = send_task(&child, task).and_then(|()| get(&gets));
    let (got, child_took) = finish_all(vec![child], outcome)?;

    report_transfer(&got);
    print_corner("parent", &got.array);
    println!(
        "parent: the child took {} (started, made ones, put them, exited)",
        seconds(child_took)
    );
    report_peak_memory();
    expect_all(&got.array, shape, 1.0, "the array from the queue")?;
    println!(
        "verdict: copy: the parent now owns its own array with 1.0 in all {} elements; \
         it was made in the child and copied through the queue.",
        got.array.len()
    );
    Ok(())
}

/// The child's task in scene 1, like the tutorial's `task(queue)`.
fn task_make_ones(n: usize, queue: &IpcSender<Parcel>) -> Result<()> {
    fail_on_purpose_if_asked();
    let data = Array2::<f64>::ones((n, n));
    println!("child: made ones of shape {:?}", data.dim());
    print_corner("child", &data);
    println!("child: putting the array on the queue");
    put(queue, 1, &data)
}

// ---------------------------------------------------------------------------------
// Scene 2: the array goes to the child as its argument, and back on the queue
// ---------------------------------------------------------------------------------

fn scene_argument_and_queue(n: u64) -> Result<()> {
    println!(
        "=== argument-and-queue: the parent gives ones to the child; its zeros come back \
         only on the queue ==="
    );
    // At the peak: the parent's ones, the child's copy, and the array that comes back.
    let shape = checked_shape(n, 3)?;

    let data = Array2::<f64>::ones(shape);
    println!("parent: made ones of shape {shape:?} ({})", megabytes(&data));
    let (queue, gets) = ipc::channel::<Parcel>()?;
    let child = children::start("the child process")?;
    println!(
        "parent: started the child (pid {}); giving it the array as its argument and the \
         queue, then waiting on get()",
        child.pid()
    );
    let outcome = give_argument(&child, queue, &data).and_then(|()| get(&gets));
    let (got, child_took) = finish_all(vec![child], outcome)?;

    report_transfer(&got);
    print_corner("parent", &got.array);
    println!("parent: and its own array, the one it gave away:");
    print_corner("parent", &data);
    println!(
        "parent: the child took {} (started, received, filled zeros, put them, exited)",
        seconds(child_took)
    );
    report_peak_memory();
    expect_all(&got.array, shape, 0.0, "the array from the queue")?;
    expect_all(&data, shape, 1.0, "the parent's own array")?;
    println!(
        "verdict: copies both ways: the array from the queue has 0.0 in all {} elements, \
         the parent's own array still has 1.0 in all {}; the change came back only \
         because the child sent it back.",
        got.array.len(),
        data.len()
    );
    Ok(())
}

/// Python pickles `data` into the new process's arguments. Here the argument is a
/// parcel inside the child's task, and its bytes follow on the parcel's channel.
fn give_argument(child: &Child, queue: IpcSender<Parcel>, data: &Array2<f64>) -> Result<()> {
    let (argument, bytes) = Parcel::wrap(0, data.dim())?;
    send_task(child, Task::FillZeros { argument, queue })?;
    // Returns once the child has read (nearly) all of it: the child is reading now.
    parcel::send_bytes(&bytes, data)
}

/// The child's task in scene 2, like the tutorial's `task(data, queue)`.
fn task_fill_zeros(mut data: Array2<f64>, queue: &IpcSender<Parcel>) -> Result<()> {
    fail_on_purpose_if_asked();
    println!("child: got its argument, its own copy, of shape {:?}", data.dim());
    print_corner("child", &data);
    data.fill(0.0);
    println!("child: filled its copy with zeros");
    print_corner("child", &data);
    println!("child: putting its copy back on the queue");
    put(queue, 1, &data)
}

// ---------------------------------------------------------------------------------
// Scene 3: many producers, one queue
// ---------------------------------------------------------------------------------

fn scene_many_producers(n: u64, producers: u32) -> Result<()> {
    println!(
        "=== many-producers: {} put an array each on one queue; the parent gets every \
         one ===",
        children_word(producers)
    );
    // At the peak: every child's array, and in the parent one being received.
    let shape = checked_shape(n, u64::from(producers) + 1)?;

    let (queue, gets) = ipc::channel::<Parcel>()?;
    println!(
        "parent: starting {}, each with its own put end of the one queue",
        children_word(producers)
    );
    let mut started = Vec::new();
    let outcome = start_producers(&mut started, &queue, producers, shape.0);
    // The parent's put end must go, or the queue could never close: see `get`.
    drop(queue);
    let outcome = outcome.and_then(|()| get_until_closed(&gets, &mut started, producers, shape));
    let (tally, _) = finish_all(started, outcome)?;

    report_peak_memory();
    let missing: Vec<u32> =
        (1..=producers).filter(|&id| tally.arrivals[id as usize - 1] == 0).collect();
    if !missing.is_empty() || !tally.problems.is_empty() {
        bail!(
            "expected one correct array from each of the {producers} children, but \
             missing from children {missing:?}; problems: {}",
            tally.problems.join("; ")
        );
    }
    println!(
        "verdict: queue: {} put on one queue at once and the parent got each array \
         exactly once, all {} elements right; each put arrived whole, with no lock.",
        children_word(producers),
        tally.elements
    );
    Ok(())
}

fn start_producers(
    started: &mut Vec<Child>,
    queue: &IpcSender<Parcel>,
    producers: u32,
    n: usize,
) -> Result<()> {
    for id in 1..=producers {
        let child = children::start(format!("child process {id} of {producers}"))?;
        let queue = queue.clone();
        let sent = send_task(&child, Task::Produce { id, n, queue });
        started.push(child);
        sent?;
    }
    Ok(())
}

/// What the parent saw on the queue in scene 3.
struct Tally {
    /// How many arrays came from each child (index 0 is child 1).
    arrivals: Vec<u32>,
    elements: usize,
    problems: Vec<String>,
}

/// Gets until the queue closes, that is until every child has exited. Draining to
/// the end, rather than stopping after `producers` arrays, is what proves that each
/// child put exactly once. A bad array is noted, not fatal, so the other children
/// can still deliver theirs; a child that dies ends the wait at once.
fn get_until_closed(
    gets: &IpcReceiver<Parcel>,
    children: &mut [Child],
    producers: u32,
    shape: (usize, usize),
) -> Result<Tally> {
    let mut tally =
        Tally { arrivals: vec![0; producers as usize], elements: 0, problems: Vec::new() };
    loop {
        let Some(parcel) = children::recv_unless_one_failed(gets, children)? else {
            return Ok(tally);
        };
        let id = parcel.from;
        let who = parcel::who(id);
        let Some(count) = tally.arrivals.get_mut((id as usize).wrapping_sub(1)) else {
            tally.problems.push(format!("an array from unknown {who}"));
            continue;
        };
        *count += 1;
        if *count > 1 {
            tally.problems.push(format!("{who} arrived {count} times"));
        }
        match parcel.open() {
            Ok(got) => {
                let wrong = count_not_equal(&got.array, f64::from(id));
                tally.elements += got.array.len();
                if got.array.dim() != shape || wrong > 0 {
                    tally.problems.push(format!(
                        "{who}'s array has shape {:?} and {wrong} elements that are not {id}",
                        got.array.dim()
                    ));
                }
                println!(
                    "parent: got {who}'s array: {} elements, {} of them {:.1} ({} in {})",
                    got.array.len(),
                    got.array.len() - wrong,
                    f64::from(id),
                    megabytes(&got.array),
                    seconds(got.took)
                );
            }
            Err(err) => tally.problems.push(format!("{err:#}")),
        }
    }
}

/// The child's task in scene 3: an array that says who made it.
fn task_produce(id: u32, n: usize, queue: &IpcSender<Parcel>) -> Result<()> {
    fail_on_purpose_if_asked();
    let data = Array2::from_elem((n, n), f64::from(id));
    println!(
        "child {id}: made an array of {:.1}s, shape {:?}; putting it on the queue",
        f64::from(id),
        data.dim()
    );
    put(queue, id, &data)
}

// ---------------------------------------------------------------------------------
// The child process
// ---------------------------------------------------------------------------------

/// The hidden `child` sub-command: connect, receive the arguments, run the task.
fn child_main(server: &str, parent: i32) -> Result<()> {
    let me = match children::connect_to_parent(server, parent)? {
        Task::MakeOnes { n, queue } => {
            task_make_ones(n, &queue)?;
            "child".to_owned()
        }
        Task::FillZeros { argument, queue } => {
            let got = argument.open().context("could not receive the argument")?;
            task_fill_zeros(got.array, &queue)?;
            "child".to_owned()
        }
        Task::Produce { id, n, queue } => {
            task_produce(id, n, &queue)?;
            format!("child {id}")
        }
        // The bench's child reports its peak in the bench's own format.
        Task::GetAndCheck { n, queue } => return bench::task_get_and_check(n, &queue),
    };
    // Not getrusage: Linux carries the parent's high-water mark into a child across
    // fork and exec, so ru_maxrss would report at least what the parent had resident
    // when it started us. VmHWM belongs to this program's own memory alone.
    if let Some(peak) = own_peak_memory_mb() {
        println!("{me}: peak memory {peak} MB");
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// This process's peak resident memory since exec (VmHWM), in MB.
fn own_peak_memory_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024 / 1_000_000)
}

fn send_task(child: &Child, task: Task) -> Result<()> {
    child.args.send(task).context("could not send the child its arguments")
}

// ---------------------------------------------------------------------------------
// Small helpers: sizes, checks, printing
// ---------------------------------------------------------------------------------

/// The shape (n, n), or a clear error if `copies` such arrays can't fit in memory.
/// Checked before allocating, so a typo in `--n` is a message, not an OOM kill.
fn checked_shape(n: u64, copies: u64) -> Result<(usize, usize)> {
    checked_len(n, n.checked_mul(n), copies)?;
    // n is no more than n * n, which fits.
    Ok((n as usize, n as usize))
}

/// The number of values `len` (n * n in the scenes, None if that overflows; n in
/// the bench), or a clear error if `copies` arrays of them can't fit in memory.
fn checked_len(n: u64, len: Option<u64>, copies: u64) -> Result<usize> {
    let too_big = || anyhow::anyhow!("--n {n} is too large: the array does not fit in memory");
    let len = len.ok_or_else(too_big)?;
    let bytes = len
        .checked_mul(size_of::<f64>() as u64)
        .filter(|&bytes| isize::try_from(bytes).is_ok())
        .ok_or_else(too_big)?;
    if let Some(available) = available_memory() {
        let needed = bytes.saturating_mul(copies);
        if needed > available {
            bail!(
                "--n {n} needs about {} MB ({copies} arrays of {} MB at once), but only {} MB \
                 of memory is available; choose a smaller --n",
                needed / 1_000_000,
                bytes / 1_000_000,
                available / 1_000_000
            );
        }
    }
    usize::try_from(len).map_err(|_| too_big())
}

/// MemAvailable from /proc/meminfo, in bytes; None where there is no such file.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Checks the whole array, not a corner: the shape, and every element.
fn expect_all(data: &Array2<f64>, shape: (usize, usize), value: f64, what: &str) -> Result<()> {
    if data.dim() != shape {
        bail!("expected {what} to have shape {shape:?}, but it has {:?}", data.dim());
    }
    let wrong = count_not_equal(data, value);
    if wrong > 0 {
        bail!(
            "expected {what} to be {value:.1} in all {} elements, but {wrong} are not",
            data.len()
        );
    }
    Ok(())
}

fn count_not_equal(data: &Array2<f64>, expected: f64) -> usize {
    data.iter().filter(|&&x| x != expected).count()
}

fn print_corner(who: &str, data: &Array2<f64>) {
    println!("{who}: top-left 5x5 corner:");
    let (rows, columns) = data.dim();
    for row in data.slice(s![..rows.min(5), ..columns.min(5)]).rows() {
        let values: Vec<String> = row.iter().map(|x| format!("{x:.1}")).collect();
        println!("{who}:   [{}]", values.join(", "));
    }
}

fn report_transfer(got: &parcel::Got) {
    let rate = got.bytes as f64 / got.took.as_secs_f64().max(1e-9) / 1e9;
    println!(
        "parent: got an array of shape {:?} from {}: {} of bytes in {} ({rate:.2} GB/s)",
        got.array.dim(),
        parcel::who(got.from),
        megabytes(&got.array),
        seconds(got.took)
    );
}

/// The parent's peak so far in this run (getrusage: ru_maxrss, in KiB on Linux).
/// Each child prints its own peak when it is done.
fn report_peak_memory() {
    let peak = getrusage(UsageWho::RUSAGE_SELF).map_or(0, |usage| usage.max_rss());
    println!("parent: peak memory so far: {} MB", peak * 1024 / 1_000_000);
}

fn megabytes(data: &Array2<f64>) -> String {
    format!("{:.1} MB", (data.len() * size_of::<f64>()) as f64 / 1e6)
}

/// "1 child", "4 children".
fn children_word(count: u32) -> String {
    match count {
        1 => "1 child".to_owned(),
        _ => format!("{count} children"),
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}
