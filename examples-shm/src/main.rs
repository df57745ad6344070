//! Share a NumPy-style array between processes through shared memory: the
//! SharedMemory, ctype RawArray and ctype Array parts of the tutorial "Fastest Way
//! To Share NumPy Array Between Processes", in Rust.
//!
//! In every scene the parent puts 100,000,000 f64 ones in shared memory, a child
//! process adds 1 to every element, and the parent checks that it now sees 2.0
//! everywhere: nothing was copied, both processes used the same physical pages.
//!
//! - `named`: a POSIX shared-memory segment with a name (`SharedMemory`); a
//!   spawned child finds it by that name.
//! - `anonymous`: a shared mapping without a name, made before `fork` and filled in
//!   place (`RawArray`); the forked child inherits it.
//! - `copy-in`: an existing ordinary array copied into a fresh shared mapping
//!   first (`Array`), then the same forked child.
//!
//! In `named` the child can also be another program, for example the Python
//! script docs/python/shm_child.py (`--child-cmd`): a name is all it needs.
//!
//! `bench` times the three methods the tutorial's way (bench.rs).

mod bench;
mod cleanup;
mod memory;
mod segment;

use std::io::{BufRead, BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::{Parser, Subcommand};
use ndarray::{Array1, ArrayView1, ArrayViewMut1};
use nix::unistd::{ForkResult, Pid, fork, getpid};

use memory::{Mapped, SharedMapping, array_size, view, view_mut};
use segment::NamedSegment;

/// The tutorial's array: 100,000,000 float64 values (800 MB).
const TUTORIAL_N: u64 = 100_000_000;

/// The first line a named child prints once it has the segment mapped.
const ATTACHED: &str = "child: attached to";

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Share an array between processes through named POSIX shared \
    memory and anonymous shared mappings. Without a scene, runs every scene in order."
)]
struct Cli {
    #[command(subcommand)]
    scene: Option<Scene>,

    /// Number of f64 elements in the array [default: 100000000 in every scene]
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    n: Option<u64>,

    /// Name of the segment in `named` ("x" or "/x", at most 30 characters)
    /// [default: a fresh name per run, /exshm-<pid>-<random>]
    #[arg(long, global = true, value_parser = segment::parse_name)]
    name: Option<String>,

    /// `named`: leave the segment in /dev/shm after a successful run, to open it
    /// from Python; remove it yourself with `rm /dev/shm/NAME` [default: unlink]
    #[arg(long, global = true)]
    keep: bool,

    /// `named`: if a segment of that name exists, unlink it first [default: refuse]
    #[arg(long, global = true)]
    replace: bool,

    /// `named`: run CMD as the child instead of this program, e.g.
    /// "python3 docs/python/shm_child.py". Appended to it: the segment's name
    /// (without the '/', as Python's SharedMemory takes it), the dtype (float64)
    /// and the shape (N). The child must print its first values, add 1 to every
    /// element and exit 0; the parent checks as always. Only `named` takes it: the
    /// other scenes hand the memory over by fork, which no other program can
    /// inherit [default: this program's own child]
    #[arg(long, global = true, value_name = "CMD", value_parser = parse_child_cmd)]
    child_cmd: Option<String>,
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq)]
enum Scene {
    /// SharedMemory: a named segment, opened by name in a spawned child [n = 100000000]
    Named,
    /// RawArray: a MAP_SHARED anonymous mapping, filled in place, inherited by fork [n = 100000000]
    Anonymous,
    /// Array: an existing array copied into a fresh shared mapping, then fork [n = 100000000]
    CopyIn,
    /// Time the three methods and their floors the tutorial's way: n f64 ones
    /// shared with one child that reads the length [n = 100000000]
    Bench {
        /// Timed runs per method, after one warm-up
        #[arg(long, default_value_t = bench_protocol::DEFAULT_REPEATS, value_parser = clap::value_parser!(u32).range(1..))]
        repeats: u32,
    },
    /// The child of `named` (started by the parent, not by hand).
    #[command(hide = true)]
    ChildNamed {
        #[arg(long)]
        parent_pid: i32,
    },
    /// One timed run of one bench method, in a fresh process.
    #[command(hide = true)]
    BenchRun { method: bench::Method },
    /// The child of the bench's `named-shm` method.
    #[command(hide = true)]
    BenchChild {
        #[arg(long)]
        parent_pid: i32,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            cleanup::let_cleanup_finish();
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.scene {
        Some(Scene::ChildNamed { parent_pid }) => {
            return child_named(&cli, Pid::from_raw(parent_pid));
        }
        Some(Scene::Bench { repeats }) => {
            ensure!(
                cli.name.is_none() && !cli.keep && !cli.replace && cli.child_cmd.is_none(),
                "bench makes and removes its own segments with one child of this program: --name, --keep, --replace and --child-cmd apply to the named scene"
            );
            return bench::run(cli.n, repeats);
        }
        Some(Scene::BenchChild { parent_pid }) => {
            return bench::child(cli.name.as_deref(), cli.n, Pid::from_raw(parent_pid));
        }
        _ => {}
    }
    // Before anything exists that would need removing.
    cleanup::install_signal_cleanup()?;
    if let Some(Scene::BenchRun { method }) = cli.scene {
        return bench::run_once(method, cli.n);
    }
    let scenes = match cli.scene {
        Some(scene) => vec![scene],
        None => vec![Scene::Named, Scene::Anonymous, Scene::CopyIn],
    };
    for (i, scene) in scenes.into_iter().enumerate() {
        if i > 0 {
            println!();
        }
        match scene {
            Scene::Named => named(&cli)?,
            Scene::Anonymous => anonymous(&cli)?,
            Scene::CopyIn => copy_in(&cli)?,
            Scene::ChildNamed { .. }
            | Scene::Bench { .. }
            | Scene::BenchRun { .. }
            | Scene::BenchChild { .. } => unreachable!("handled above"),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Scene 1: named shared memory (the tutorial's SharedMemory)
// ---------------------------------------------------------------------------

fn named(cli: &Cli) -> Result<()> {
    println!("=== named: a named shared-memory segment, opened by name in a spawned child ===");
    let started = Instant::now();
    let (n, bytes) = array_size(cli.n.unwrap_or(TUTORIAL_N), 1)?;
    let name = cli.name.clone().unwrap_or_else(segment::default_name);

    let creating = Instant::now();
    let mut segment = NamedSegment::create(&name, bytes, cli.replace)?;
    println!(
        "parent: created {name} ({}, mode {:04o}), visible as {} ({})",
        size(bytes),
        segment.mode()?,
        segment::dev_shm_path(&name),
        secs(creating.elapsed())
    );
    let filling = Instant::now();
    {
        // SAFETY: the segment is mapped read-write and no other
        // process knows it yet (no child exists); the view ends with this block,
        // before the child starts writing.
        let mut data = unsafe { view_mut(&segment, n) }?;
        data.fill(1.0);
    }
    println!(
        "parent: filled {n} ones through an ndarray view of the segment ({})",
        secs(filling.elapsed())
    );

    let child = match &cli.child_cmd {
        None => own_child(&name, n)?,
        Some(cmd) => external_child(cmd, &name, n),
    };
    let took = spawn_named_child(child, &mut segment, cli.keep);
    // Another program as the child: say which (its own messages are above ours).
    let took = match &cli.child_cmd {
        Some(cmd) => took.map_err(|err| anyhow!("{err:#} (child command: {cmd})"))?,
        None => took?,
    };
    println!("parent: the child took {} (started, attached, added 1, exited)", secs(took));

    {
        // SAFETY: the child has exited, so nobody writes the segment while this
        // read-only view lives (to the end of this block).
        let data = unsafe { view(&segment, n) }?;
        print_corner("parent", data);
        expect_all("the segment", data, 2.0)?;
    }

    let file = segment::dev_shm_path(&name);
    if cli.keep {
        segment.keep();
        keep_instructions(&name, n);
        scene_took(started);
        println!(
            "verdict: named: the parent sees 2.0 in all {n} elements: the child's +1 came through the named segment, and {file} is kept (--keep)."
        );
    } else {
        drop(segment);
        ensure!(
            !std::path::Path::new(&file).exists(),
            "expected {file} to be gone, but it is still there"
        );
        scene_took(started);
        println!(
            "verdict: named: the parent sees 2.0 in all {n} elements: the child's +1 came through the named segment, and {file} is gone."
        );
    }
    Ok(())
}

/// Spawn style: a fresh run of this program that knows only the name and n,
/// like the tutorial's task(n) that calls SharedMemory('MyMemory').
fn own_child(name: &str, n: usize) -> Result<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["child-named", "--name", name, "--n", &n.to_string()])
        .args(["--parent-pid", &getpid().to_string()]);
    Ok(command)
}

/// `--child-cmd`: another program as the child, told what Python's
/// `SharedMemory(name)` and `numpy.ndarray(shape, dtype, buffer)` need.
///
/// /bin/sh splits CMD the way a prompt would (so quotes work), then `exec`s it:
/// the child is that program itself, not a shell waiting for it, so killing the
/// child kills the program. Our three arguments follow as "$@": they are never
/// pasted into the command line, so no name can be misread as shell syntax.
fn external_child(cmd: &str, name: &str, n: usize) -> Command {
    let bare = &name[1..]; // Python adds the leading '/' itself
    let args = [bare.to_string(), "float64".to_string(), n.to_string()];
    println!("parent: starting the child: {cmd} {}", args.join(" "));
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(format!("exec {cmd} \"$@\""));
    command.arg("sh").args(args); // "sh" is $0; the arguments are $1, $2, $3
    cleanup::external_child_start(&mut command);
    command
}

/// `--child-cmd` must name something to run.
fn parse_child_cmd(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the child command is empty".into());
    }
    Ok(text.to_string())
}

/// Start the child of `named` and pass its output on. Returns once the child
/// has exited, with how long it took.
fn spawn_named_child(
    mut command: Command,
    segment: &mut NamedSegment,
    keep: bool,
) -> Result<Duration> {
    let started = Instant::now();
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child =
        cleanup::spawn_watched(&mut command).context("cannot start the child process")?;
    let pid = Pid::from_raw(child.id() as i32);
    let output = child.stdout.take().context("no pipe from the child")?;
    // Wait for the child even if forwarding failed: never leave it running.
    let forwarded = forward_child_output(output, segment, keep);
    let waited = cleanup::wait_child(pid);
    waited?;
    forwarded?;
    Ok(started.elapsed())
}

/// Pass the child's lines on, and unlink the name as soon as the child has the
/// segment mapped (unless `--keep`). An external child says so with the same
/// line; one that never does keeps the name until the scene ends.
///
/// Why so early: a name is only needed to *find* the segment. Once both
/// processes have it mapped, the memory lives on without a name until the last
/// one unmaps it. Unlinking now shrinks the window in which a SIGKILL of the
/// parent (which no cleanup code can catch) would leave the segment in
/// /dev/shm, from the whole scene to the few moments before the child attaches.
fn forward_child_output(
    output: impl std::io::Read,
    segment: &mut NamedSegment,
    keep: bool,
) -> Result<()> {
    for line in BufReader::new(output).lines() {
        let line = line.context("cannot read the child's output")?;
        println!("{line}");
        if line.starts_with(ATTACHED) && !keep {
            segment.unlink()?;
            println!(
                "parent: the child has it mapped, so the name is no longer needed: unlinked it now"
            );
        }
    }
    Ok(())
}

/// The spawned child of `named`: it gets a name, not memory.
fn child_named(cli: &Cli, parent: Pid) -> Result<()> {
    cleanup::child_start(parent)?;
    let name = cli.name.as_deref().context("the child needs --name")?;
    let n = usize::try_from(cli.n.context("the child needs --n")?)?;
    let shmem = segment::open(name)?;
    println!("{ATTACHED} {name} by name ({} bytes mapped)", shmem.len());
    cleanup::child_fault();
    // SAFETY: `shmem` maps `len()` bytes read-write until it is dropped at the end
    // of this function, after the view. The parent holds no view while we run
    // (it is waiting for us), so this is the only reference to the memory.
    let data = unsafe { view_mut(&shmem, n) }?;
    task(data);
    Ok(())
    // `shmem` drops here: unmap and close, but no unlink (not the owner).
}

/// `--keep`: how to look at the segment from Python, and how to remove it.
fn keep_instructions(name: &str, n: usize) {
    let bare = &name[1..]; // Python adds the leading '/' itself
    println!("parent: kept {name}; from Python (3.13+; for older versions see docs/shm.md):");
    println!("parent:   shm = SharedMemory(name=\"{bare}\", track=False)");
    println!("parent:   a = numpy.ndarray(({n},), dtype=numpy.float64, buffer=shm.buf)");
    println!("parent: remove it with: rm {}", segment::dev_shm_path(name));
}

// ---------------------------------------------------------------------------
// Scene 2: anonymous shared mapping before fork (the tutorial's RawArray)
// ---------------------------------------------------------------------------

fn anonymous(cli: &Cli) -> Result<()> {
    println!(
        "=== anonymous: a MAP_SHARED anonymous mapping filled in place, inherited by fork (RawArray) ==="
    );
    note_own_child(cli);
    let started = Instant::now();
    let (n, bytes) = array_size(cli.n.unwrap_or(TUTORIAL_N), 1)?;
    let filling = Instant::now();
    let shared = SharedMapping::new(bytes)?;
    {
        // SAFETY: the mapping is fresh, read-write, `bytes` long; no child exists
        // yet and the view ends with this block.
        let mut data = unsafe { view_mut(&shared, n) }?;
        data.fill(1.0);
    }
    println!(
        "parent: mapped {} without a name and filled {n} ones in place ({})",
        size(bytes),
        secs(filling.elapsed())
    );

    let took = fork_child(&shared, n)?;
    println!("parent: the child took {} (forked, added 1, exited)", secs(took));
    // SAFETY: the child has exited; read-only view while nobody writes.
    let data = unsafe { view(&shared, n) }?;
    print_corner("parent", data);
    expect_all("the shared mapping", data, 2.0)?;
    scene_took(started);
    println!(
        "verdict: anonymous: the parent sees 2.0 in all {n} elements: the forked child wrote into the same pages."
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Scene 3: copy an existing array into shared memory (the tutorial's Array)
// ---------------------------------------------------------------------------

fn copy_in(cli: &Cli) -> Result<()> {
    println!(
        "=== copy-in: an existing array copied into a fresh shared mapping, then fork (Array) ==="
    );
    note_own_child(cli);
    let started = Instant::now();
    let (n, bytes) = array_size(cli.n.unwrap_or(TUTORIAL_N), 2)?;
    let making = Instant::now();
    // An ordinary array in this process's private memory: a fork would give the
    // child a copy-on-write copy, so the child's writes would never come back.
    let original = Array1::<f64>::ones(n);
    println!("parent: made an ordinary (private) array of {n} ones ({})", secs(making.elapsed()));

    // The extra step of copy-in: a second array's worth of shared memory, and
    // one pass that copies every byte across. (One memcpy here; the tutorial's
    // Array(ctype, data) instead converts each of the 100 million values one at
    // a time through Python objects, which is why it took seconds, not tenths.)
    let copying = Instant::now();
    let shared = SharedMapping::new(bytes)?;
    {
        // SAFETY: fresh read-write mapping of `bytes` bytes; no child yet; the
        // view ends with this block.
        let mut data = unsafe { view_mut(&shared, n) }?;
        data.assign(&original);
    }
    let copy_cost = copying.elapsed();
    println!(
        "parent: copied it into a fresh {} shared mapping ({}: the extra cost of copy-in)",
        size(bytes),
        secs(copy_cost)
    );

    let took = fork_child(&shared, n)?;
    println!("parent: the child took {} (forked, added 1, exited)", secs(took));
    // SAFETY: the child has exited; read-only view while nobody writes.
    let data = unsafe { view(&shared, n) }?;
    print_corner("parent", data);
    expect_all("the shared copy", data, 2.0)?;
    expect_all("the original array", original.view(), 1.0)?;
    scene_took(started);
    println!(
        "verdict: copy-in: the parent sees 2.0 in all {n} elements of the shared copy and 1.0 in the original: only the copy is shared."
    );
    Ok(())
}

/// The fork scenes keep their own child even with `--child-cmd`: say why.
fn note_own_child(cli: &Cli) {
    if cli.child_cmd.is_some() {
        println!(
            "parent: --child-cmd is not used here: this memory has no name and reaches the child only through fork, which another program cannot join"
        );
    }
}

/// Fork a child that adds 1 to the inherited mapping; return how long it took.
fn fork_child(shared: &SharedMapping, n: usize) -> Result<Duration> {
    let parent = getpid();
    // Anything still buffered would be printed twice, once by each process.
    std::io::stdout().flush()?;
    let started = Instant::now();
    // SAFETY: the child gets a copy of this process with only this thread. The
    // other thread (cleanup.rs) is parked in sigwait holding no lock, except
    // while it handles a signal, and then the parent is exiting and the child
    // dies by its parent-death signal. The child only prints (no other thread
    // holds stdout) and allocates (glibc resets its malloc locks in a fork
    // child). It never returns into the parent's code: it leaves with
    // `process::exit`, so no destructor of the parent's objects runs twice
    // (this program registers no atexit handlers).
    match unsafe { fork() }.context("fork failed")? {
        ForkResult::Child => {
            let code = match catch_unwind(AssertUnwindSafe(|| forked_child(shared, n, parent))) {
                Ok(Ok(())) => 0,
                Ok(Err(err)) => {
                    eprintln!("error: {err:#}");
                    1
                }
                Err(_panic) => 101, // the message is already on stderr
            };
            let _ = std::io::stdout().flush();
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            cleanup::watch_child(child);
            cleanup::wait_child(child)?;
            Ok(started.elapsed())
        }
    }
}

/// The forked child: the mapping is already in its address space, at the same
/// address, because MAP_SHARED mappings are inherited as shared.
fn forked_child(shared: &SharedMapping, n: usize, parent: Pid) -> Result<()> {
    cleanup::child_start(parent)?;
    println!(
        "child: forked; the shared mapping is inherited at the same address {:p}",
        shared.start()
    );
    cleanup::child_fault();
    // SAFETY: the mapping stays mapped in this process until it exits; the
    // parent holds no view while it waits for us.
    let data = unsafe { view_mut(shared, n) }?;
    task(data);
    Ok(())
}

// ---------------------------------------------------------------------------
// The child's task, and the helpers every scene uses
// ---------------------------------------------------------------------------

/// The child's work in every scene: show what it sees, then change all of it.
fn task(mut data: ArrayViewMut1<f64>) {
    print_corner("child", data.view());
    data += 1.0;
    println!("child: added 1 to all {} elements", data.len());
}

fn print_corner(who: &str, data: ArrayView1<f64>) {
    let first: Vec<String> = data.iter().take(10).map(|x| format!("{x:?}")).collect();
    println!("{who}: first {} values: [{}]", first.len(), first.join(", "));
}

/// The verdict's evidence: every element, not only the ten that were printed.
fn expect_all(what: &str, data: ArrayView1<f64>, expected: f64) -> Result<()> {
    if let Some((i, seen)) = data.iter().enumerate().find(|(_, x)| **x != expected) {
        bail!(
            "expected {expected:.1} in all {} elements of {what}, but element {i} is {seen}",
            data.len()
        );
    }
    Ok(())
}

fn scene_took(started: Instant) {
    println!("parent: the scene took {}", secs(started.elapsed()));
}

/// "800 MB", or the bytes when that would round to 0 MB.
fn size(bytes: usize) -> String {
    if bytes >= 1_000_000 { format!("{} MB", bytes / 1_000_000) } else { format!("{bytes} bytes") }
}

fn secs(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}
