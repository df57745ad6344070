//! Share an array with a child process through its function argument.
//!
//! This mirrors the tutorial "Share Numpy Array Between Processes" (the part that
//! passes the array as an argument to the child's task) and the "inherit" and
//! "function argument" methods of "Fastest Way To Share NumPy Array Between
//! Processes". The parent makes an (n, n) array of ones, a child process fills it with
//! zeros, and the parent looks again. It still sees ones, in both scenes:
//!
//! * `argument` (spawn style): the child is a fresh run of this program. The array
//!   travels to it serialized with serde + bincode, the way Python pickles the
//!   arguments of a process started with `spawn` or `forkserver`. The child owns a
//!   second, independent array.
//! * `inherit` (fork style): the child is a `fork` of the parent and starts with the
//!   parent's memory, shared copy-on-write. Nothing is copied until the child writes,
//!   and then only the pages it writes, into memory the parent never sees.

mod bench;
mod wire;

use std::io::{BufReader, BufWriter, Write};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ndarray::{Array2, s};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};

/// The tutorial's array is 10000 x 10000 float64: 800 MB.
const DEFAULT_N: u64 = 10_000;

/// Share an (n, n) array of ones with a child process through its argument.
///
/// With no scene, runs every scene in the tutorial's order.
#[derive(Parser)]
#[command(name = "examples-argument", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    scene: Option<Scene>,

    /// The tutorial's n: the array has shape (n, n), n*n float64 values
    /// [default: 10000, an 800 MB array]
    #[arg(long, global = true, value_parser = at_least_one)]
    n: Option<u64>,
}

fn at_least_one(text: &str) -> Result<u64, String> {
    match text.parse() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number of at least 1".into()),
    }
}

const AFTER_HELP: &str = "\
Each scene prints what the parent and the child see, then one verdict line.
Exit status: 0 when every verdict holds, 1 when one fails or the run fails,
2 for a bad command line.";

#[derive(Subcommand)]
enum Scene {
    /// The child is a new run of this program and receives the array serialized
    /// (serde + bincode) as its argument: Python's spawn start method
    Argument,
    /// The child is a fork of the parent and inherits its memory copy-on-write:
    /// Python's fork start method
    Inherit,
    /// Time both methods and the floor the tutorial's way: n float64 ones (1-D,
    /// default n = 100,000,000) shared with one child that reads the length
    Bench {
        /// Timed runs per method, after one warm-up
        #[arg(long, default_value_t = bench_protocol::DEFAULT_REPEATS, value_parser = clap::value_parser!(u32).range(1..))]
        repeats: u32,
    },
    /// The child side of `argument`: reads the array from standard input
    #[command(hide = true)]
    ChildArgument {
        /// The process id of the parent that started it
        #[arg(long)]
        parent: i32,
    },
    /// One timed run of one bench method, in a fresh process
    #[command(hide = true)]
    BenchRun { method: String },
    /// The child of the bench's `argument` method
    #[command(hide = true)]
    BenchChild,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    let n = cli.n.unwrap_or(DEFAULT_N);
    match &cli.scene {
        None => {
            scene_argument(n)?;
            println!();
            scene_inherit(n)
        }
        Some(Scene::Argument) => scene_argument(n),
        Some(Scene::Inherit) => scene_inherit(n),
        Some(Scene::ChildArgument { parent }) => child_argument(Pid::from_raw(*parent)),
        Some(Scene::Bench { repeats }) => {
            let n = cli.n.unwrap_or(bench_protocol::DEFAULT_N);
            checked_len(Some(n), n, 2)?;
            bench_protocol::run_methods(&bench::METHODS, n, *repeats)
        }
        Some(Scene::BenchRun { method }) => {
            let n = cli.n.unwrap_or(bench_protocol::DEFAULT_N);
            bench::run_once(method, checked_len(Some(n), n, 2)?)
        }
        Some(Scene::BenchChild) => {
            let n = cli.n.unwrap_or(bench_protocol::DEFAULT_N);
            bench::child(checked_len(Some(n), n, 1)?)
        }
    }
}

/// The child's task, the same in both scenes: look at the array, overwrite all of
/// it with zeros, look again. Whatever it changes is the child's own memory.
fn task(data: &mut Array2<f64>) -> Result<()> {
    fail_on_purpose_if_asked();
    print_corner("child", data);
    data.fill(0.0);
    print_corner("child", data);
    let not_zero = data.iter().filter(|&&x| x != 0.0).count();
    if not_zero != 0 {
        bail!("the child filled zeros, but {not_zero} elements of its array are not 0");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Scene 1: the array as an argument, serialized (spawn style)
// ---------------------------------------------------------------------------------

fn scene_argument(n: u64) -> Result<()> {
    println!("=== argument: the child gets a serialized copy as its argument (spawn) ===");
    // The parent and the child each hold a whole array.
    let shape = checked_shape(n, 2)?;

    let data = Array2::<f64>::ones(shape);
    let mb = megabytes(data.len() * size_of::<f64>());
    println!("parent: created ones of shape {shape:?} ({mb} MB)");

    // Spawn style: a fresh process running this same program, not a copy of this one.
    // It knows nothing of our memory; everything it gets must be sent to it.
    let mut child = Command::new(std::env::current_exe()?)
        .args(["child-argument", "--parent", &getpid().to_string()])
        .stdin(Stdio::piped())
        .spawn()
        .context("could not start the child process")?;

    // Serialize straight into the child's standard input, through a small buffer:
    // the bytes are produced as the pipe drains, so no second 800 MB buffer exists.
    // (Python's pickle builds the whole pickled bytes object first.)
    let started = Instant::now();
    let stdin = child.stdin.take().expect("stdin was piped");
    widen_pipe(&stdin);
    let sent = {
        let mut pipe = BufWriter::with_capacity(1 << 20, stdin);
        let encoded =
            bincode::serde::encode_into_std_write(wire::Outgoing(&data), &mut pipe, wire_format());
        encoded.map_err(anyhow::Error::from).and_then(|bytes| {
            pipe.flush()?;
            Ok(bytes)
        })
        // Dropping the writer closes our end of the pipe: the child sees the end.
    };
    let elapsed = started.elapsed();

    // Wait before judging the send: if the child died, its exit status is the real
    // story and "broken pipe" is only the symptom.
    let status = child.wait().context("could not wait for the child")?;
    check_child(status)?;
    let bytes = sent.context("could not send the array to the child")?;
    println!(
        "parent: serialized {} MB into the child's input in {}",
        megabytes(bytes),
        seconds(elapsed)
    );

    println!("parent: the child has exited; the parent's array now:");
    print_corner("parent", &data);
    report_peak_memory();
    let changed = count_not_equal(&data, 1.0);
    if changed != 0 {
        bail!(
            "expected the parent's array to be all 1.0 (the child worked on a copy), \
             but {changed} of {} elements changed",
            data.len()
        );
    }
    println!(
        "verdict: copy: the parent still sees 1.0 in all {} elements; \
         the child filled its own deserialized copy.",
        data.len()
    );
    Ok(())
}

/// The child side of scene 1: rebuild the array from the bytes on standard input
/// (unpickling, in Python's words), then run the task on it.
fn child_argument(parent: Pid) -> Result<()> {
    die_with_parent(parent)?;
    let started = Instant::now();
    let mut input = BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let wire::Incoming(mut data) = bincode::serde::decode_from_std_read(&mut input, wire_format())
        .context("could not read the array from the parent")?;
    println!(
        "child: deserialized an array of shape {:?} in {}",
        data.dim(),
        seconds(started.elapsed())
    );
    task(&mut data)?;
    println!("child: peak memory {} MB", peak_memory_mb());
    std::io::stdout().flush()?;
    Ok(())
}

/// A pipe holds 64 KiB by default, so 800 MB cross it in 12,000 rounds of "parent
/// fills, child drains", each a pair of context switches. Linux lets a pipe grow to
/// /proc/sys/fs/pipe-max-size (1 MiB unless changed): 16 times fewer rounds. This is
/// only a speed-up; if the kernel refuses, the default pipe works the same.
fn widen_pipe(pipe: &std::process::ChildStdin) {
    #[cfg(target_os = "linux")]
    let _ = nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
}

/// Both sides must agree on the byte layout; bincode's standard configuration
/// writes each f64 as 8 little-endian bytes.
fn wire_format() -> bincode::config::Configuration {
    bincode::config::standard()
}

// ---------------------------------------------------------------------------------
// Scene 2: the array inherited through fork (copy-on-write)
// ---------------------------------------------------------------------------------

fn scene_inherit(n: u64) -> Result<()> {
    println!("=== inherit: the child is a fork and inherits the array copy-on-write ===");
    // After the child writes every page, both processes hold a whole array.
    let shape = checked_shape(n, 2)?;

    let mut data = Array2::<f64>::ones(shape);
    let mb = megabytes(data.len() * size_of::<f64>());
    println!("parent: created ones of shape {shape:?} ({mb} MB)");

    // Anything still in our stdout buffer would be inherited and printed twice.
    std::io::stdout().flush()?;
    // Taken before the fork: in the child, getpid() is the child's own pid.
    let parent = getpid();
    let started = Instant::now();
    // SAFETY: fork is sound to call here because this process has exactly one
    // thread: we start none, and the child processes of scene 1 are separate
    // processes, not threads. So no other thread can be holding a lock (in the
    // allocator or in stdout) that would stay locked forever in the child, and the
    // child may allocate, print and run ordinary Rust code. It leaves only through
    // `std::process::exit`, never by returning into the parent's code path.
    match unsafe { fork() }.context("could not fork a child process")? {
        ForkResult::Child => {
            // The child's `data` is the parent's array: same virtual addresses, same
            // physical pages, marked read-only for both. Its first write to a page
            // makes the kernel copy that 4 KiB page for the child alone.
            let faults_before = minor_page_faults();
            let outcome = die_with_parent(parent).and_then(|()| task(&mut data));
            let pages_copied = minor_page_faults() - faults_before;
            if outcome.is_ok() {
                println!(
                    "child: filling zeros made the kernel copy {pages_copied} pages \
                     (about {} MB) for this process alone",
                    megabytes(usize::try_from(pages_copied).unwrap_or(0) * page_size())
                );
            }
            std::process::exit(exit_code_of_child(outcome));
        }
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).context("could not wait for the child")?;
            check_fork_child(status)?;
        }
    }
    println!(
        "parent: the child has exited after {}; the parent's array now:",
        seconds(started.elapsed())
    );
    print_corner("parent", &data);
    report_peak_memory();
    let changed = count_not_equal(&data, 1.0);
    if changed != 0 {
        bail!(
            "expected the parent's array to be all 1.0 (the child wrote to its own \
             copies of the pages), but {changed} of {} elements changed",
            data.len()
        );
    }
    println!(
        "verdict: copy-on-write: the parent still sees 1.0 in all {} elements; \
         the child's writes went to page copies of its own.",
        data.len()
    );
    Ok(())
}

/// Prints a failed child's error the way `main` would, flushes its output, and
/// returns the exit code a forked child leaves with.
fn exit_code_of_child(outcome: Result<()>) -> i32 {
    let flushed = std::io::stdout().flush();
    match outcome.and(flushed.map_err(Into::into)) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("child: error: {err:#}");
            1
        }
    }
}

// ---------------------------------------------------------------------------------
// Small helpers: sizes, printing, children, memory
// ---------------------------------------------------------------------------------

/// The shape (n, n), or a clear error if `copies` such arrays cannot fit in memory.
/// Checked before allocating, so a typo in `--n` is an error message, not an
/// out-of-memory kill.
fn checked_shape(n: u64, copies: u64) -> Result<(usize, usize)> {
    checked_len(n.checked_mul(n), n, copies)?;
    // n fits in usize because n * n does.
    Ok((n as usize, n as usize))
}

/// `len` f64 values (None: the count overflowed), checked as above.
fn checked_len(len: Option<u64>, n: u64, copies: u64) -> Result<usize> {
    let too_big =
        || anyhow::anyhow!("--n {n} is too large: the array does not fit in the address space");
    let len = len.ok_or_else(too_big)?;
    let bytes = len
        .checked_mul(size_of::<f64>() as u64)
        .filter(|&bytes| isize::try_from(bytes).is_ok())
        .ok_or_else(too_big)?;
    if let Some(available) = available_memory() {
        let needed = bytes.saturating_mul(copies);
        if needed > available {
            bail!(
                "--n {n} needs {} MB ({copies} arrays of {} MB), but only {} MB of memory \
                 is available; choose a smaller --n",
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

fn print_corner(who: &str, data: &Array2<f64>) {
    println!("{who}: top-left 5x5 corner:");
    let (rows, cols) = data.dim();
    for row in data.slice(s![..rows.min(5), ..cols.min(5)]).rows() {
        let values: Vec<String> = row.iter().map(|x| format!("{x:.1}")).collect();
        println!("{who}:   [{}]", values.join(", "));
    }
}

fn count_not_equal(data: &Array2<f64>, expected: f64) -> usize {
    data.iter().filter(|&&x| x != expected).count()
}

/// Turns a child's exit status into an error the parent can report.
fn check_child(status: ExitStatus) -> Result<()> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return Ok(());
    }
    match status.signal() {
        Some(number) => bail!("the child process failed: it was killed by {}", signal_name(number)),
        None => bail!("the child process failed: {status}"),
    }
}

fn check_fork_child(status: WaitStatus) -> Result<()> {
    match status {
        WaitStatus::Exited(_, 0) => Ok(()),
        WaitStatus::Exited(_, code) => bail!("the child process failed: exit status: {code}"),
        WaitStatus::Signaled(_, signal, _) => {
            bail!("the child process failed: it was killed by {}", signal_name(signal as i32))
        }
        other => bail!("the child process failed: {other:?}"),
    }
}

fn signal_name(number: i32) -> String {
    match Signal::try_from(number) {
        Ok(signal) => format!("signal {number} ({})", signal.as_str()),
        Err(_) => format!("signal {number}"),
    }
}

/// A child must not outlive its parent: if the parent dies, the kernel sends the
/// child SIGKILL (Linux). Checked once more afterwards, in case the parent died
/// before the request was made: the child then belongs to another process (init,
/// or a subreaper such as a service manager), not to `parent`.
fn die_with_parent(parent: Pid) -> Result<()> {
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    if getppid() != parent {
        bail!("the parent process has already exited");
    }
    Ok(())
}

/// The test suite's way to make a child fail on purpose; not a user feature.
/// EXAMPLES_CHILD_FAULT=exit makes the child exit with status 3, =panic makes it
/// panic, =sleep makes it sleep for a minute (so a test can kill it mid-scene).
fn fail_on_purpose_if_asked() {
    match std::env::var("EXAMPLES_CHILD_FAULT").as_deref() {
        Ok("exit") => {
            eprintln!("child: failing on purpose (EXAMPLES_CHILD_FAULT=exit)");
            std::process::exit(3);
        }
        Ok("panic") => panic!("child: failing on purpose (EXAMPLES_CHILD_FAULT=panic)"),
        Ok("sleep") => std::thread::sleep(Duration::from_secs(60)),
        _ => {}
    }
}

fn report_peak_memory() {
    println!("parent: peak memory so far: {} MB", peak_memory_mb());
}

/// This process's peak resident memory in MB: VmHWM, which starts afresh at `exec`.
/// (getrusage's ru_maxrss would do for the parent, but for a spawned child Linux
/// carries over the resident size of the parent it was forked from.)
fn peak_memory_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok());
    kib.unwrap_or(0) * 1024 / 1_000_000
}

/// Page faults served without I/O: for a forked child writing inherited memory,
/// mostly the kernel copying a shared page.
fn minor_page_faults() -> i64 {
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |usage| usage.minor_page_faults())
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |size| size as usize)
}

fn megabytes(bytes: usize) -> usize {
    bytes / 1_000_000
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}
