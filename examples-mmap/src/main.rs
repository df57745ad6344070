//! Share an array between processes through a memory-mapped file.
//!
//! The Rust side of the tutorial "How to Share a NumPy Array Between Processes Using a
//! Memory-Mapped File": one child changes the file the parent mapped (`one-child`),
//! then many children change it at once, without a lock (`many-children`) and with one
//! (`many-children-locked`). `copy-on-write` adds numpy's mode 'c'. Read it beside
//! docs/mmap.md. file.rs holds the mapping helpers, processes.rs the child bookkeeping.
//! `bench` times the memory-mapped file method of "Fastest Way To Share NumPy Array
//! Between Processes" (bench.rs).
//!
//! The file is raw little-endian f32 with no header, which is exactly what
//! `numpy.memmap(path, dtype='float32', mode='r+', shape=(n,))` reads and writes. So
//! the child of one-child and many-children can also be a Python script
//! (`--child-cmd`, e.g. docs/python/mmap_child.py): a path is all it needs.

mod bench;
mod file;
mod processes;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use clap::{Args, Parser, Subcommand, ValueEnum};
use memmap2::MmapRaw;
use ndarray::{ArrayView1, ArrayViewMut1};
use nix::libc;

use file::{Place, create_file, open_shared, view, view_mut};
use processes::{Supervisor, fail_on_purpose_if_asked};

/// How many values a child of many-children-locked updates under one lock: 1 MiB of
/// f32. A lock per value would cost two system calls per value (2.4 us a pair here:
/// hours for 100 x 100,000,000 updates). One lock around the whole array, as in the
/// tutorial, lets one child work at a time for a whole pass while the rest wait. With
/// 1 MiB a child holds the lock for well under a millisecond, and another child can
/// work on another chunk meanwhile. For this +1, limited by memory bandwidth, both
/// measured the same; with 20 times the work per value, 1 MiB was 3x faster (docs).
const CHUNK: usize = 256 * 1024;

/// Share an array between processes through a memory-mapped file.
///
/// With no scene, every scene runs in order at the tutorial's sizes. The file is raw
/// little-endian f32 with no header: numpy.memmap(path, dtype='float32', mode='r+',
/// shape=(n,)) opens it.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    action: Option<Action>,

    /// Number of f32 values in the file (f64 in bench) [default: 1000 in one-child and
    /// copy-on-write, 100000000 in the many-children scenes and bench]
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    n: Option<u64>,

    /// Children started at once in the many-children scenes, 1 to 1000 [default: 100]
    /// (one-child and copy-on-write always have one child; bench refuses it)
    #[arg(long, global = true, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=1000))]
    children: Option<u32>,

    /// Use this file, created or overwritten like numpy's mode 'w+', and keep it
    /// [default: data.f32 in a fresh private temporary directory, removed at the end]
    #[arg(long, global = true, value_name = "FILE")]
    path: Option<PathBuf>,

    /// one-child and many-children: run CMD as each child instead of this program,
    /// e.g. "python3 docs/python/mmap_child.py". Appended to it: the file's path, the
    /// dtype (float32) and the shape (N). The child must map the file read-write, add
    /// 1 to every value and exit 0 (in one-child, printing the first 10 values before
    /// and after); the parent checks as always. many-children-locked keeps its own
    /// children (they take our byte-range locks) and copy-on-write its own child (its
    /// private mapping is the lesson) [default: this program's own child]
    #[arg(long, global = true, value_name = "CMD", value_parser = parse_child_cmd)]
    child_cmd: Option<String>,
}

#[derive(Subcommand)]
enum Action {
    #[command(flatten)]
    Scene(Scene),
    /// One child's task; the parent starts it.
    #[command(hide = true)]
    Child(ChildArgs),
    /// Time the tutorial's benchmark and its floors: n float64 ones in a memory-mapped
    /// file in $TMPDIR, shared with one child that checks the length [--n 100000000]
    Bench {
        /// Timed runs per method, after one warm-up
        #[arg(long, default_value_t = bench_protocol::DEFAULT_REPEATS, value_parser = clap::value_parser!(u32).range(1..))]
        repeats: u32,
    },
    /// One timed run of one bench method, in a fresh process.
    #[command(hide = true)]
    BenchRun { method: bench::Method },
    /// The child of the bench's `mmap` method.
    #[command(hide = true)]
    BenchChild { file: PathBuf, parent: u32 },
}

#[derive(Subcommand, ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Scene {
    /// A child opens the file read-write and adds 1; the parent sees 2s [--n 1000]
    OneChild,
    /// Children add 1 to the same values at once, with no lock; the parent counts lost
    /// updates [--n 100000000 --children 100]
    ManyChildren,
    /// The same, each child locking the bytes it updates; every value must end exactly
    /// at --children [--n 100000000 --children 100]
    ManyChildrenLocked,
    /// A child maps the file privately (numpy's mode 'c') and adds 1; the parent does not
    /// see it [--n 1000]
    CopyOnWrite,
}

#[derive(Args)]
struct ChildArgs {
    scene: Scene,
    // Not `path` and `n`: those names belong to the global flags.
    file: PathBuf,
    values: usize,
    /// Which child this is, from 1.
    id: u32,
    /// The parent's process id, to notice a parent that died before we could follow it.
    parent: u32,
}

impl Scene {
    const ALL: [Scene; 4] =
        [Scene::OneChild, Scene::ManyChildren, Scene::ManyChildrenLocked, Scene::CopyOnWrite];

    fn name(self) -> &'static str {
        match self {
            Scene::OneChild => "one-child",
            Scene::ManyChildren => "many-children",
            Scene::ManyChildrenLocked => "many-children-locked",
            Scene::CopyOnWrite => "copy-on-write",
        }
    }

    fn heading(self, children: u32) -> String {
        let what = match self {
            Scene::OneChild => "a child maps the same file read-write and adds 1".to_string(),
            Scene::ManyChildren => format!("{children} children add 1 at once, with no lock"),
            Scene::ManyChildrenLocked => format!("{children} children add 1 at once, with a lock"),
            Scene::CopyOnWrite => "a child maps the file privately (numpy's mode 'c')".to_string(),
        };
        format!("=== {}: {what} ===", self.name())
    }

    /// Why this scene runs its own child even when given `--child-cmd` (None: it
    /// takes one). An external child gets a path, a dtype and a shape, nothing else.
    fn needs_own_child(self) -> Option<&'static str> {
        match self {
            Scene::OneChild | Scene::ManyChildren => None,
            Scene::ManyChildrenLocked => Some(
                "these children lock the bytes they change (fcntl OFD locks on 1 MiB chunks); \
                 another program would have to take the very same locks",
            ),
            Scene::CopyOnWrite => Some(
                "the lesson is the private mapping this program's child makes (numpy's mode \
                 'c'); another program would choose its own",
            ),
        }
    }

    fn default_n(self) -> u64 {
        match self {
            Scene::OneChild | Scene::CopyOnWrite => 1000,
            Scene::ManyChildren | Scene::ManyChildrenLocked => 100_000_000,
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let scenes = match cli.action {
        Some(Action::Child(args)) => {
            return child_main(&args).with_context(|| format!("child {}", args.id));
        }
        Some(Action::Bench { repeats }) => {
            ensure!(
                cli.path.is_none(),
                "bench makes its own file; set TMPDIR to choose where it lives, not --path"
            );
            ensure!(
                cli.children.is_none() && cli.child_cmd.is_none(),
                "bench measures the tutorial's method, one child of this program: --children applies to the many-children scenes, --child-cmd to one-child and many-children"
            );
            return bench::run(cli.n, repeats);
        }
        Some(Action::BenchRun { method }) => return bench::run_once(method, cli.n),
        Some(Action::BenchChild { file, parent }) => return bench::child(&file, cli.n, parent),
        Some(Action::Scene(scene)) => vec![scene],
        None => Scene::ALL.to_vec(),
    };
    let children = cli.children.unwrap_or(100);
    let n_for = |scene: Scene| cli.n.unwrap_or(scene.default_n());

    // From here on, Ctrl-C and SIGTERM stop the children and remove the scratch
    // directory before the program exits (processes.rs).
    let supervisor = Supervisor::start()?;
    let place = Place::choose(cli.path, &supervisor)?;
    for &scene in &scenes {
        let private_copies = u64::from(scene == Scene::CopyOnWrite);
        place.check_room(n_for(scene), private_copies)?;
    }

    for (i, &scene) in scenes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", scene.heading(children));
        let n = usize::try_from(n_for(scene))?; // check_room: n * 4 bytes fit in memory
        let external = match (cli.child_cmd.as_deref(), scene.needs_own_child()) {
            (Some(_), Some(why)) => {
                println!("parent: --child-cmd is not used here: {why}");
                None
            }
            (external, _) => external,
        };
        match scene {
            Scene::OneChild => one_child(&supervisor, &place.path, n, external)?,
            Scene::ManyChildren | Scene::ManyChildrenLocked => {
                many_children(&supervisor, scene, &place.path, n, children, external)?;
            }
            Scene::CopyOnWrite => copy_on_write(&supervisor, &place.path, n)?,
        }
    }
    if place.keep {
        let (path, n) = (place.path.display(), n_for(scenes[scenes.len() - 1]));
        println!("\nparent: kept {path}; Python opens it with");
        println!("parent:   numpy.memmap('{path}', dtype='float32', mode='r+', shape=({n},))");
    }
    Ok(())
}

/// Scene one-child, the tutorial's first example: the parent's 1s, the child's +1.
fn one_child(supervisor: &Supervisor, path: &Path, n: usize, external: Option<&str>) -> Result<()> {
    let map = create_file(path, n, 1.0)?;
    // msync: puts the values in the file on disk. The child would see them without it:
    // both processes map the same page-cache pages, so flushing is about the disk only.
    map.flush()?;
    println!("parent: created {} with {n} f32 values of 1, flushed", path.display());
    // SAFETY: no child exists yet, so no other process writes the file.
    print_corner("parent", unsafe { view(&map, n) });

    // The child gets the file's name and size, not the data: it maps the file itself.
    // While it runs the parent holds no view of the mapping, only `map`, which hands out
    // raw pointers: a &[f32] that another process writes under is undefined behaviour.
    let child = match external {
        Some(cmd) => {
            println!("parent: starting the child: {}", external_args(cmd, path, n));
            external_child(cmd, path, n)
        }
        None => child_command(Scene::OneChild, path, n, 1)?,
    };
    supervisor.run_children(vec![child]).map_err(|err| name_the_command(err, external))?;

    // SAFETY: the child has exited; no other process writes the file any more.
    let data = unsafe { view(&map, n) };
    print_corner("parent", data);
    let wrong = data.iter().filter(|&&v| v != 2.0).count();
    ensure!(wrong == 0, "expected 2 in all {n} values after the child's +1, but {wrong} are not 2");
    println!(
        "verdict: shared: the parent sees the child's 2 in all {n} values; both mapped one file"
    );
    Ok(())
}

/// The child's task in one-child: the tutorial's `task(filename, n)`.
fn task_one_child(path: &Path, n: usize) -> Result<()> {
    let (_file, map) = open_shared(path, n)?;
    fail_on_purpose_if_asked("child");
    // SAFETY: the parent is blocked waiting for us and holds no view; nobody else writes.
    let mut data = unsafe { view_mut(&map, n) };
    print_corner("child", data.view());
    data += 1.0;
    map.flush()?;
    print_corner("child", data.view());
    Ok(())
}

/// Scenes many-children and many-children-locked: `children` processes each add 1 to
/// every value of the same file, all at once. The tutorial looked at 10 values; we
/// check all of them, and time one process doing the same work first (the floor).
fn many_children(
    supervisor: &Supervisor,
    scene: Scene,
    path: &Path,
    n: usize,
    children: u32,
    external: Option<&str>,
) -> Result<()> {
    let map = create_file(path, n, 0.0)?;
    let size = file::human(file::bytes(n));
    println!("parent: created {} with {n} f32 values of 0 ({size})", path.display());
    let floor = floor(&map, n, children);
    let floor_s = floor.as_secs_f64();
    println!("parent: floor: one process adding 1 to every value {children} times: {floor_s:.2} s");
    // SAFETY: no child exists yet, so no other process writes the file.
    print_corner("parent", unsafe { view(&map, n) });

    // Each child opens and maps the file by its name: nothing of the array is copied
    // to it. The parent holds no view while they write (see one_child).
    let lock =
        if scene == Scene::ManyChildrenLocked { ", 1 MiB at a time under a lock" } else { "" };
    println!(
        "parent: starting {children} children; each maps the file and adds 1 to every value{lock}"
    );
    if let Some(cmd) = external {
        println!("parent: each child runs: {}", external_args(cmd, path, n));
    }
    let commands = (1..=children).map(|id| match external {
        Some(cmd) => Ok(external_child(cmd, path, n)),
        None => child_command(scene, path, n, id),
    });
    let started = Instant::now();
    let finished = supervisor
        .run_children(commands.collect::<Result<_>>()?)
        .map_err(|err| name_the_command(err, external))?;
    let took = started.elapsed().as_secs_f64();
    let first = finished.iter().min().copied().unwrap_or_default().as_secs_f64();
    // A ratio to a floor of a few milliseconds (small --n) would only measure noise.
    let ratio =
        if floor_s >= 0.05 { format!(", {:.1}x the floor", took / floor_s) } else { String::new() };
    println!(
        "parent: all {children} children finished after {took:.2} s{ratio} (the first after {first:.2} s)"
    );

    // SAFETY: every child has exited; no other process writes the file any more.
    let data = unsafe { view(&map, n) };
    print_corner("parent", data);
    let tally = Tally::count(data, children);
    let Tally { below, lost, smallest, .. } = tally;
    println!(
        "parent: checked all {n} values: {below} below {children}, smallest {smallest}, largest {}",
        tally.largest
    );
    ensure!(
        tally.impossible == 0,
        "expected whole numbers from 1 to {children} (each child adds 1 once), but {} values are not",
        tally.impossible
    );
    if scene == Scene::ManyChildrenLocked {
        ensure!(
            below == 0,
            "expected {children} in all {n} values, but {below} are below (smallest {smallest})"
        );
        println!(
            "verdict: lock: all {n} values are exactly {children}; not one of the {children} x {n} updates was lost"
        );
    } else if below == 0 {
        println!(
            "verdict: no lock: all {n} values are {children}; no update was lost this time, but nothing prevented it"
        );
    } else {
        println!(
            "verdict: no lock: {lost} updates were lost: {below} of {n} values ended below {children} (smallest {smallest})"
        );
    }
    Ok(())
}

/// The child's task in many-children: numpy's `data[:] += 1`, with no lock.
fn task_add_one(path: &Path, n: usize, who: &str) -> Result<()> {
    let (_file, map) = open_shared(path, n)?;
    fail_on_purpose_if_asked(who);
    // Other children write these same values while we run, so a &[f32] or &mut [f32]
    // is out of the question. AtomicU32 is the honest type for memory that changes
    // under us, and costs nothing here: a relaxed load or store is a plain mov on x86.
    // SAFETY: the mapping holds n aligned 4-byte values (map_shared checked) and lives
    // as long as `values`; atomics may be written by others at any time.
    let values: &[AtomicU32] = unsafe { std::slice::from_raw_parts(map.as_ptr().cast(), n) };
    for value in values {
        // Three steps, as in numpy: read the value, add 1, write it back.
        let old = f32::from_bits(value.load(Ordering::Relaxed));
        // If another child writes this value right here, our store below overwrites
        // its +1 with ours: a lost update. Nothing in this loop prevents it.
        value.store((old + 1.0).to_bits(), Ordering::Relaxed);
    }
    Ok(())
}

/// The child's task in many-children-locked: the same +1, one locked chunk at a time.
///
/// The lock is an open-file-description lock (fcntl F_OFD_SETLKW) on the chunk's bytes
/// of the data file itself: there is no lock object to create or clean up, the kernel
/// drops it when a child dies, and two children can work on different chunks at the
/// same time, which one lock around the whole array (the tutorial's) forbids.
fn task_add_one_locked(path: &Path, n: usize, who: &str) -> Result<()> {
    let (file, map) = open_shared(path, n)?;
    fail_on_purpose_if_asked(who);
    for start in (0..n).step_by(CHUNK) {
        let len = CHUNK.min(n - start);
        lock_values(&file, start, len, libc::F_WRLCK)?; // waits while another child has them
        {
            // SAFETY: values start..start + len lie inside the mapping (n aligned f32,
            // checked by map_shared). We hold the lock on exactly their bytes, every
            // child takes it before writing, and the parent holds no view: nobody else
            // touches them while `chunk` lives.
            let mut chunk = unsafe {
                let first = map.as_mut_ptr().cast::<f32>().add(start);
                ArrayViewMut1::from_shape_ptr(len, first)
            };
            chunk += 1.0;
        } // the view ends before the unlock
        lock_values(&file, start, len, libc::F_UNLCK)?;
    }
    Ok(())
}

/// Lock (F_WRLCK, waiting as long as needed) or unlock (F_UNLCK) the bytes of values
/// `start..start + len`. Like a mutex, the kernel's lock also orders memory: what one
/// child wrote before unlocking is what the next child reads after locking.
fn lock_values(file: &File, start: usize, len: usize, kind: libc::c_int) -> Result<()> {
    let byte = |values: usize| (values * size_of::<f32>()) as libc::off_t;
    let range = libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: byte(start),
        l_len: byte(len),
        l_pid: 0, // must be 0 for an open-file-description lock
    };
    nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_OFD_SETLKW(&range))
        .with_context(|| format!("cannot lock or unlock values {start}..{}", start + len))?;
    Ok(())
}

/// The floor for the many-children scenes: the same `times` passes of +1 over the
/// same mapping, by one process with no children and no lock. Leaves 0 behind.
fn floor(map: &MmapRaw, n: usize, times: u32) -> Duration {
    // SAFETY: no child exists yet, so this process is the file's only user.
    let mut data = unsafe { view_mut(map, n) };
    let started = Instant::now();
    for _ in 0..times {
        data += 1.0;
    }
    let took = started.elapsed();
    data.fill(0.0);
    took
}

/// Scene copy-on-write, numpy's mode 'c': the child's mapping is private.
fn copy_on_write(supervisor: &Supervisor, path: &Path, n: usize) -> Result<()> {
    let map = create_file(path, n, 1.0)?;
    map.flush()?;
    println!("parent: created {} with {n} f32 values of 1, flushed", path.display());
    // SAFETY: no child exists yet, so no other process writes the file.
    print_corner("parent", unsafe { view(&map, n) });

    supervisor.run_children(vec![child_command(Scene::CopyOnWrite, path, n, 1)?])?;

    // SAFETY: the child has exited (and it could not write the file anyway).
    let data = unsafe { view(&map, n) };
    print_corner("parent", data);
    let changed = data.iter().filter(|&&v| v != 1.0).count();
    ensure!(
        changed == 0,
        "expected 1 in all {n} values (the child's mapping was private), but {changed} changed"
    );
    println!(
        "verdict: copy-on-write: the parent still sees 1 in all {n} values; the child's 2s stayed private"
    );
    Ok(())
}

/// The child's task in copy-on-write: the same +1 as in one-child, in a private mapping.
fn task_copy_on_write(path: &Path, n: usize) -> Result<()> {
    let mut private = file::map_private(path, n)?;
    fail_on_purpose_if_asked("child");
    // SAFETY: n aligned f32 values (map_private checked), in a mapping that only this
    // process can see; `private` outlives the view.
    let mut data = unsafe { ArrayViewMut1::from_shape_ptr(n, private.as_mut_ptr().cast::<f32>()) };
    print_corner("child", data.view());
    data += 1.0;
    print_corner("child", data.view());
    Ok(())
}

/// What a child does, chosen by the hidden `child` sub-command the parent runs.
fn child_main(args: &ChildArgs) -> Result<()> {
    processes::become_child(args.parent)?;
    let who = format!("child {}", args.id);
    let (path, n) = (&args.file, args.values);
    match args.scene {
        Scene::OneChild => task_one_child(path, n),
        Scene::ManyChildren => task_add_one(path, n, &who),
        Scene::ManyChildrenLocked => task_add_one_locked(path, n, &who),
        Scene::CopyOnWrite => task_copy_on_write(path, n),
    }
}

/// The command that starts child `id` of `scene`: this same program, spawn style. It
/// carries the file's name and size, like the tutorial's `args=(filename, n)`.
fn child_command(scene: Scene, path: &Path, n: usize, id: u32) -> Result<std::process::Command> {
    let exe = std::env::current_exe().context("cannot find this program to start a child")?;
    let mut command = std::process::Command::new(exe);
    command.arg("child").arg(scene.name()).arg(path);
    command.args([n.to_string(), id.to_string(), std::process::id().to_string()]);
    Ok(command)
}

/// `--child-cmd`: another program as the child, told what `numpy.memmap(path, dtype,
/// mode='r+', shape)` needs.
///
/// /bin/sh splits CMD the way a prompt would (so quotes work), then `exec`s it: the
/// child is that program itself, not a shell waiting for it, so killing the child
/// kills the program. Our three arguments follow as "$@": they are never pasted into
/// the command line, so no path can be misread as shell syntax.
fn external_child(cmd: &str, path: &Path, n: usize) -> std::process::Command {
    let mut command = std::process::Command::new("/bin/sh");
    command.arg("-c").arg(format!("exec {cmd} \"$@\""));
    command.arg("sh"); // $0; the arguments are $1, $2, $3
    command.arg(path).args(["float32", &n.to_string()]);
    processes::prepare_external_child(&mut command);
    command
}

/// The external child's command line as the parent shows it.
fn external_args(cmd: &str, path: &Path, n: usize) -> String {
    format!("{cmd} {} float32 {n}", path.display())
}

/// With `--child-cmd`, an error says which command failed (its own messages are above).
fn name_the_command(err: anyhow::Error, external: Option<&str>) -> anyhow::Error {
    match external {
        Some(cmd) => anyhow!("{err:#} (child command: {cmd})"),
        None => err,
    }
}

/// `--child-cmd` must name something to run.
fn parse_child_cmd(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the child command is empty".into());
    }
    Ok(text.to_string())
}

/// The first 10 values, as the tutorial prints them.
fn print_corner(who: &str, data: ArrayView1<'_, f32>) {
    let first: Vec<String> = data.iter().take(10).map(|v| format!("{v:?}")).collect();
    println!("{who}: first {} values: [{}]", first.len(), first.join(", "));
}

/// What the many-children scenes found in the whole array.
struct Tally {
    below: u64,
    lost: u64,
    impossible: u64,
    smallest: f32,
    largest: f32,
}

impl Tally {
    /// Each child adds 1 once, so every value should be `children`. A lost update leaves
    /// a whole number from 1 to children - 1 (every store wrote something read + 1);
    /// anything else (0, a fraction, more than `children`) no race can make: a bug.
    fn count(data: ArrayView1<'_, f32>, children: u32) -> Tally {
        let expected = children as f32;
        let (smallest, largest) = (f32::INFINITY, f32::NEG_INFINITY);
        let mut tally = Tally { below: 0, lost: 0, impossible: 0, smallest, largest };
        for &v in data {
            tally.smallest = tally.smallest.min(v);
            tally.largest = tally.largest.max(v);
            if !(1.0..=expected).contains(&v) || v.fract() != 0.0 {
                tally.impossible += 1;
            } else if v < expected {
                tally.below += 1;
                tally.lost += (expected - v) as u64;
            }
        }
        tally
    }
}
