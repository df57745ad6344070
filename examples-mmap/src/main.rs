//! Share an array between processes through a memory-mapped file: the tutorial "How
//! to Share a NumPy Array Between Processes Using a Memory-Mapped File", in Rust.
//! Each scene is one file in `scenes/`; `file.rs` is the `numpy.memmap` they use.
//! This file reads the command line: which scene runs, or which child's function.

mod bench;
mod file;
mod place;
mod scenes;
mod updates;

use std::path::PathBuf;
use std::process::ExitCode;

use bench_protocol::BenchArgs;
use clap::{Parser, Subcommand};
use plumbing::{PauseArg, as_child, parse_child_cmd};
use scenes::{copy_on_write, many_children, many_children_locked, one_child};

/// Share an array between processes through a memory-mapped file. With no scene, every
/// scene runs in order. The file is raw little-endian f32: numpy.memmap opens it.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Number of f32 values in the file (f64 in bench) [default: 1000 in one-child and
    /// copy-on-write, 100000000 in the many-children scenes and bench]
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    n: Option<u64>,

    /// Children started at once in the many-children scenes, 1 to 1000 [default: 100]
    #[arg(long, global = true, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=1000))]
    children: Option<u32>,

    /// Use this file, created or overwritten like numpy's mode 'w+', and keep it
    /// [default: data.f32 in a fresh private temporary directory, removed at the end]
    #[arg(long, global = true, value_name = "FILE")]
    path: Option<PathBuf>,

    /// one-child and many-children: run CMD as each child instead of this program, e.g.
    /// "python3 docs/python/mmap_child.py", with the file's path, N and (many-children)
    /// the child's number appended; it must add 1 to every value and exit 0
    #[arg(long, global = true, value_name = "CMD", value_parser = parse_child_cmd, conflicts_with = "pause")]
    child_cmd: Option<String>,

    #[command(flatten)]
    pause: PauseArg,
    #[command(flatten)]
    trace: trace_summary::TraceArg,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Scene(Scene),
    /// Time the tutorial's benchmark: n float64 ones in a file in $TMPDIR [--n 10^8]
    Bench(BenchArgs),
    /// One timed run of one bench method, in a fresh process.
    #[command(hide = true)]
    BenchRun { method: String },
    /// A child's task (its parent starts it, not you)
    #[command(hide = true, subcommand)]
    Child(Task),
}

#[derive(Subcommand, Clone, Copy, PartialEq, Eq)]
pub enum Scene {
    /// A child opens the file read-write and adds 1; the parent sees 2s [--n 1000]
    OneChild,
    /// Children add 1 at once, with no lock; the parent counts lost updates [--n 10^8]
    ManyChildren,
    /// The same with a lock: every value must end exactly at --children [--n 10^8]
    ManyChildrenLocked,
    /// A child maps the file privately (numpy's mode 'c') and adds 1 [--n 1000]
    CopyOnWrite,
}

/// What a child does: one variant per child function, with its arguments (never named
/// like a flag above). scenes/mod.rs writes its command line; `child` below runs it.
#[derive(Subcommand, Debug)]
pub enum Task {
    OneChild { file: PathBuf, len: usize },
    ManyChildren { file: PathBuf, len: usize, id: u32 },
    ManyChildrenLocked { file: PathBuf, len: usize, id: u32 },
    CopyOnWrite { file: PathBuf, len: usize },
    Bench { file: PathBuf, len: usize },
}

fn main() -> ExitCode {
    plumbing::main(|| {
        let cli = Cli::parse();
        cli.trace.run_traced_if_asked(); // --trace: this command line again, under strace
        cli.pause.apply();
        let (n, children, path, cmd) = (cli.n, cli.children, cli.path, cli.child_cmd);
        let scenes = match cli.command {
            None => Scene::ALL.to_vec(),
            Some(Command::Scene(scene)) => vec![scene],
            Some(Command::Bench(args)) => {
                let given = [path.is_some(), children.is_some(), cmd.is_some(), cli.pause.pause];
                return bench::run(n, &args, given);
            }
            Some(Command::BenchRun { method }) => return bench::run_once(&method, n),
            Some(Command::Child(task)) => return as_child(&task.role(), || child(task)),
        };
        scenes::run(&scenes, n, children, path, cmd.as_deref())
    })
}

/// The child's side: the function its task names, with the task's arguments.
fn child(task: Task) -> anyhow::Result<()> {
    match task {
        Task::OneChild { file, len } => one_child::child(&file, len),
        Task::ManyChildren { file, len, id } => many_children::child(&file, len, id),
        Task::ManyChildrenLocked { file, len, id } => many_children_locked::child(&file, len, id),
        Task::CopyOnWrite { file, len } => copy_on_write::child(&file, len),
        Task::Bench { file, len } => bench::child(&file, len),
    }
}
