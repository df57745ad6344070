//! examples-pipe: a child process makes an array and sends it to its parent through an
//! OS pipe, the tutorial's "simulated return value" via `Pipe()`.
//!
//! Reading order: the command line, `scene_pipe` (the parent's story), `task` (the
//! child's story), then the helpers they call. What crosses the pipe, byte by byte, is
//! in `frame.rs`; `plumbing.rs` holds what is not this lesson (memory checks, Ctrl-C);
//! `bench.rs` times the tutorial's benchmark (`examples-pipe bench`).
//! The parent ends up with a copy: its own buffer, filled by the kernel from the bytes
//! the child wrote. Nothing is shared.

mod bench;
mod frame;
mod plumbing;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand, ValueEnum};
use ndarray::{Array2, ArrayView2, s};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::resource::UsageWho;
use nix::sys::signal::Signal;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::{getppid, pipe2};

use plumbing::{
    CHILD_PID, HANDLING_INTERRUPT, check_memory, clean_up_on_interrupt, describe,
    interrupt_signals, megabytes, peak_memory,
};

/// A child process makes an (n, n) array of ones and sends it to the parent through an
/// OS pipe; the parent receives its own copy and checks every element.
#[derive(Parser)]
#[command(name = "examples-pipe", version)]
struct Cli {
    #[command(subcommand)]
    scene: Option<Scene>,

    /// Side of the (n, n) f64 array the child sends [pipe: 10000, i.e. 800 MB]; for
    /// `bench`, the number of f64 values in its 1-D array [bench: 100000000]
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    n: Option<u64>,

    /// Kernel buffer of the pipe in bytes, set with fcntl(F_SETPIPE_SZ) [pipe: the
    /// largest allowed, /proc/sys/fs/pipe-max-size, usually 1048576; Linux's own
    /// default is 65536]
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
    pipe_size: Option<u32>,

    /// What carries the bytes [pipe: an OS pipe]; `socketpair` is what Python's Pipe() uses
    #[arg(long, global = true, value_enum)]
    via: Option<Via>,
}

#[derive(Subcommand)]
enum Scene {
    /// The child makes ones (n, n) [n = 10000], prints the corner and sends the array
    /// through an OS pipe; the parent receives a copy and checks every element
    Pipe,
    /// The child's side of `pipe`, started by the parent (not by hand)
    #[command(hide = true)]
    ChildPipe {
        /// Number of the inherited descriptor to write the array into
        #[arg(long)]
        fd: i32,
        /// The parent's process id, to notice that it is already gone
        #[arg(long)]
        parent: i32,
    },
    /// Time the tutorial's pipe benchmark: the parent makes n f64 ones (1-D, default
    /// n = 100,000,000), sends them through a pipe to one new child that checks the
    /// length, and waits; prints one line per method (floor, pipe)
    Bench {
        /// Timed runs per method, after one warm-up
        #[arg(long, default_value_t = bench_protocol::DEFAULT_REPEATS, value_parser = clap::value_parser!(u32).range(1..))]
        repeats: u32,
    },
    /// One timed run of one bench method, in a fresh process
    #[command(hide = true)]
    BenchRun { method: String },
    /// The child of the bench's `pipe` method: reads the array from an inherited fd
    #[command(hide = true)]
    BenchChild {
        /// Number of the inherited descriptor to read the array from
        #[arg(long)]
        fd: i32,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Via {
    /// An OS pipe: one direction, a kernel buffer we can enlarge
    Pipe,
    /// A Unix socketpair: two directions, what Python's multiprocessing.Pipe() creates
    Socketpair,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The child's own errors are labelled, so the one `error:` line is the parent's.
    let who = match cli.scene {
        Some(Scene::ChildPipe { .. } | Scene::BenchChild { .. }) => "child: ",
        _ => "",
    };
    let result = run(cli);
    // While an interrupt is being handled, wait here: the handler reports and exits, and
    // an error from the main thread (say, the child it just killed) would only confuse.
    let _quiet = HANDLING_INTERRUPT.lock();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{who}error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.scene {
        Some(Scene::ChildPipe { fd, parent }) => task(fd, parent, cli.n.context("--n is missing")?),
        // The bench's array is 1-D: --n counts elements, not the side of a square.
        Some(Scene::Bench { repeats }) => {
            ensure!(
                cli.via.is_none() && cli.pipe_size.is_none(),
                "bench measures the tutorial's method, a pipe with the largest buffer: --via and --pipe-size apply to the pipe scene"
            );
            let n = cli.n.unwrap_or(bench_protocol::DEFAULT_N);
            plumbing::check_bench_memory(n)?;
            bench_protocol::run_methods(&bench::METHODS, n, repeats)
        }
        Some(Scene::BenchRun { ref method }) => {
            let n = cli.n.unwrap_or(bench_protocol::DEFAULT_N);
            bench::run_once(method, plumbing::check_bench_memory(n)?)
        }
        Some(Scene::BenchChild { fd }) => {
            bench::child(fd, usize::try_from(cli.n.context("--n is missing")?)?)
        }
        // `pipe` is the only scene, so "every scene" and "the pipe scene" are the same run.
        Some(Scene::Pipe) | None => {
            clean_up_on_interrupt()?;
            scene_pipe(&cli)
        }
    }
}

/// Scene `pipe`: the parent makes the pipe, starts the child with the write end and
/// reads the array from the read end.
fn scene_pipe(cli: &Cli) -> Result<()> {
    let n = cli.n.unwrap_or(10_000);
    let via = cli.via.unwrap_or(Via::Pipe);
    println!(
        "=== pipe: the child sends an array through an OS pipe; the parent receives a copy ==="
    );
    let bytes = check_memory(n)?;
    let started = Instant::now();

    let (read_end, write_end) = open_channel(via, cli.pipe_size)?;
    let mut child = spawn_child(n, write_end)?;
    let received = receive_array(read_end, n as usize).context("receiving the array");
    // Wait before judging what we received: if the child died, that is the cause and a
    // short stream only its symptom. This cannot hang: `receive_array` has closed the
    // read end, so a child still writing gets EPIPE and stops.
    let status = child.wait().context("waiting for the child")?;
    CHILD_PID.store(0, Ordering::SeqCst);
    if !status.success() {
        let symptom = received.err().map(|e| format!(" ({e:#})")).unwrap_or_default();
        bail!("the child process failed: {}{symptom}", describe(status));
    }
    let (array, transfer) = received?;

    let times = match transfer.read_calls {
        1 => "once".to_string(),
        calls => format!("{calls} times"),
    };
    println!(
        "parent: received {} in {:.2} s ({:.2} GB/s), calling read() {times} into one buffer allocated once",
        megabytes(bytes),
        transfer.seconds,
        bytes as f64 / transfer.seconds / 1e9,
    );
    print_corner("parent", array.view());
    check_all_ones(&array)?;
    let wall = started.elapsed().as_secs_f64();
    println!(
        "parent: peak memory: parent {}, child {}",
        peak_memory(UsageWho::RUSAGE_SELF)?,
        peak_memory(UsageWho::RUSAGE_CHILDREN)?
    );
    println!("parent: the scene took {wall:.2} s (start the child, fill, send, receive, check)");
    println!(
        "verdict: copy: all {} elements arrived as 1.0 in the parent's own buffer; the child's array was a second buffer, gone with the child.",
        array.len()
    );
    Ok(())
}

/// The child's side, the tutorial's `task(pipe)`: make ones, show the corner, send.
fn task(fd: i32, parent: i32, n: u64) -> Result<()> {
    // std clears the signal mask of programs it starts; be explicit anyway, because the
    // parent blocks SIGINT/SIGTERM and a child must still die of Ctrl-C.
    interrupt_signals().thread_unblock()?;
    // Die with the parent instead of writing into a pipe nobody reads, and make sure it
    // did not die before we asked (then we would never get the signal).
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    ensure!(getppid().as_raw() == parent, "the parent process is already gone");
    let pipe = take_inherited_fd(fd)?;

    // Test-only fault switch (not in --help): EXAMPLES_CHILD_FAULT=exit exits 3, =panic
    // panics, =sleep sleeps 60 s (tests kill the parent meanwhile), =truncate sends the
    // header and only half of the data, then exits 0 as if nothing were wrong.
    let fault = std::env::var("EXAMPLES_CHILD_FAULT").unwrap_or_default();
    match fault.as_str() {
        "exit" => {
            eprintln!("child: failing on purpose (EXAMPLES_CHILD_FAULT=exit)");
            std::process::exit(3);
        }
        "panic" => panic!("failing on purpose (EXAMPLES_CHILD_FAULT=panic)"),
        "sleep" => std::thread::sleep(Duration::from_secs(60)),
        _ => {}
    }

    let n = usize::try_from(n)?;
    ensure!(n.checked_mul(n).and_then(|e| e.checked_mul(8)).is_some(), "n = {n} is too large");
    // Ones made the way numpy's `ones` makes a large array, on 2 MiB (huge) pages: the
    // same values as `Array2::ones`, filled several times faster.
    let array = Array2::from_shape_vec((n, n), bench_protocol::ones(n * n))?;
    println!("child: made ones of shape ({n}, {n}), {}", megabytes(8 * array.len() as u64));
    print_corner("child", array.view());
    let mut out = File::from(pipe);

    if fault == "truncate" {
        let mut out = BufWriter::new(out);
        out.write_all(&frame::header(n, n))?;
        for value in array.iter().take(array.len() / 2) {
            out.write_all(&value.to_le_bytes())?;
        }
        out.flush()?;
        eprintln!("child: stopping halfway on purpose (EXAMPLES_CHILD_FAULT=truncate)");
        return Ok(());
    }

    let clock = Instant::now();
    frame::write_array(&mut out, &array).context("sending the array to the parent")?;
    // Closing our end is what lets the parent see end-of-file after the data.
    drop(out);
    println!(
        "child: sent a {}-byte header and {} of data in {:.2} s",
        frame::HEADER_LEN,
        megabytes(8 * array.len() as u64),
        clock.elapsed().as_secs_f64()
    );
    std::io::stdout().flush()?;
    Ok(())
}

/// Makes the channel. Both ends are close-on-exec, so no program we start inherits one
/// by accident; `spawn_child` opens that door for the write end only.
fn open_channel(via: Via, pipe_size: Option<u32>) -> Result<(OwnedFd, OwnedFd)> {
    match via {
        Via::Pipe => {
            let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).context("creating the pipe")?;
            set_pipe_buffer(&read_end, pipe_size)?;
            Ok((read_end, write_end))
        }
        Via::Socketpair => {
            ensure!(
                pipe_size.is_none(),
                "--pipe-size sets a pipe's buffer; a socketpair has socket buffers instead"
            );
            let ends =
                socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
                    .context("creating the socketpair")?;
            println!(
                "parent: made a Unix socketpair (what Python's Pipe() uses) instead of a pipe"
            );
            Ok(ends)
        }
    }
}

/// A pipe holds 64 KiB by default, so 800 MB cross it in about 12,000 rounds of "the
/// writer fills it, sleeps, the reader drains it, sleeps". A larger buffer means fewer,
/// larger rounds. Unprivileged processes may go up to /proc/sys/fs/pipe-max-size.
fn set_pipe_buffer(pipe: &OwnedFd, requested: Option<u32>) -> Result<()> {
    let default = fcntl(pipe, FcntlArg::F_GETPIPE_SZ).context("reading the pipe's buffer size")?;
    let max = pipe_max_size();
    let Some(wanted) = requested.map(|bytes| bytes as i32).or(max) else {
        println!("parent: made an OS pipe with the default {default}-byte kernel buffer");
        return Ok(());
    };
    match fcntl(pipe, FcntlArg::F_SETPIPE_SZ(wanted)) {
        Ok(size) => println!(
            "parent: made an OS pipe; its kernel buffer is {size} bytes (F_SETPIPE_SZ, default {default})"
        ),
        Err(err) if requested.is_some() => {
            return Err(err).with_context(|| {
                format!("cannot set the pipe buffer to {wanted} bytes (pipe-max-size is {max:?})")
            });
        }
        Err(err) => println!(
            "parent: made an OS pipe; could not raise its {default}-byte buffer ({err}), keeping it"
        ),
    }
    Ok(())
}

/// The largest pipe buffer an unprivileged process may ask for (None where unknown).
fn pipe_max_size() -> Option<i32> {
    std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

/// Starts this same program as the child (spawn style), handing it the write end.
fn spawn_child(n: u64, write_end: OwnedFd) -> Result<Child> {
    // Inheritable for exactly this one spawn; the child learns the number from --fd.
    fcntl(&write_end, FcntlArg::F_SETFD(FdFlag::empty())).context("passing the write end on")?;
    let child = Command::new(std::env::current_exe().context("finding our own program")?)
        .arg("child-pipe")
        .args(["--fd", &write_end.as_raw_fd().to_string()])
        .args(["--parent", &std::process::id().to_string()])
        .args(["--n", &n.to_string()])
        .spawn()
        .context("starting the child process")?;
    CHILD_PID.store(child.id() as i32, Ordering::SeqCst);
    // Close our copy now. The reader sees end-of-file only once EVERY write end is
    // closed: if the parent kept one, a child dying mid-send would leave the parent
    // waiting in read() forever.
    drop(write_end);
    Ok(child)
}

struct Transfer {
    seconds: f64,
    read_calls: u64,
}

/// Reads one frame. Takes the read end by value so it is closed on every return path.
fn receive_array(read_end: OwnedFd, n: usize) -> Result<(Array2<f64>, Transfer)> {
    let mut stream = File::from(read_end);
    let shape = frame::read_header(&mut stream)?;
    // The header decides how much we allocate, so it must be exactly what we asked the
    // child for: a foreign or corrupted header must not make us allocate terabytes.
    ensure!(shape == (n, n), "expected shape ({n}, {n}), but the header announces {shape:?}");
    // The one allocation (`n * n` cannot overflow: `check_memory` refused such n).
    // Fresh zero pages from the kernel, untouched until read() copies the child's bytes
    // into them: there is no second whole buffer. They are advised to be 2 MiB (huge)
    // pages, as numpy does for large arrays: the kernel then faults in 800 MB in about
    // 400 pieces while read() copies, instead of 195,000 pieces of 4 KiB, and receiving
    // takes markedly less time (docs/pipe.md has the figures).
    let mut array = Array2::from_shape_vec(shape, bench_protocol::zeros(n * n))?;
    let clock = Instant::now();
    let read_calls = frame::read_data_into(&mut stream, &mut array)?;
    let seconds = clock.elapsed().as_secs_f64();
    frame::expect_end(&mut stream)?;
    let transfer = Transfer { seconds, read_calls };
    Ok((array, transfer))
}

/// Checks the verdict over the whole array, not just the corner we printed.
fn check_all_ones(array: &Array2<f64>) -> Result<()> {
    if array.iter().all(|&v| v == 1.0) {
        return Ok(());
    }
    let wrong = array.iter().filter(|&&v| v != 1.0).count();
    let ((i, j), v) = array.indexed_iter().find(|(_, v)| **v != 1.0).expect("counted above");
    bail!(
        "expected 1.0 in all {} received elements, but {wrong} differ (the first, [{i}, {j}], is {v})",
        array.len()
    )
}

fn print_corner(who: &str, view: ArrayView2<f64>) {
    let (rows, cols) = view.dim();
    println!("{who}: top-left 5x5 corner:");
    for row in view.slice(s![..rows.min(5), ..cols.min(5)]).rows() {
        let values: Vec<String> = row.iter().map(|x| format!("{x:.1}")).collect();
        println!("{who}:   [{}]", values.join(", "));
    }
}

/// Turns the descriptor number from the command line into an owned fd, after checking
/// through /proc that it is an open pipe or socket (and not stdin, stdout or stderr).
fn take_inherited_fd(fd: i32) -> Result<OwnedFd> {
    ensure!(fd > 2, "--fd must name an inherited descriptor (3 or higher), not {fd}");
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .with_context(|| format!("descriptor {fd} is not open in the child"))?;
    let target = target.to_string_lossy();
    ensure!(
        target.starts_with("pipe:") || target.starts_with("socket:"),
        "descriptor {fd} is {target}, not a pipe or a socket"
    );
    // SAFETY: the descriptor is open (checked above) and the parent left it open for
    // this process; nothing else in this program owns it, so this OwnedFd is its only
    // owner and closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
