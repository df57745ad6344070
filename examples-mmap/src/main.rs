//! Share an array between processes through a memory-mapped file: the tutorial "How
//! to Share a NumPy Array Between Processes Using a Memory-Mapped File", in Rust.
//!
//! Each scene is one file in `scenes/`, to read beside the tutorial; `file.rs` is the
//! `numpy.memmap` they use. This file only chooses which scene runs.

mod bench;
mod file;
mod scenes;
mod tally;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use plumbing::bench::{BenchArgs, refuse_scene_flags};
use plumbing::children::{as_child, parse_child_cmd};
use plumbing::pause::PauseArg;

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

    /// one-child and many-children: run CMD as each child instead of this program, e.g.
    /// "python3 docs/python/mmap_child.py". Appended to it: the file's path, the dtype
    /// (float32) and the shape (N). The child must add 1 to every value and exit 0; the
    /// parent checks as always [default: this program's own child]
    #[arg(long, global = true, value_name = "CMD", value_parser = parse_child_cmd, conflicts_with = "pause")]
    child_cmd: Option<String>,

    #[command(flatten)]
    pause: PauseArg,
}

#[derive(Subcommand)]
enum Action {
    #[command(flatten)]
    Scene(Scene),
    /// One child's task; the parent starts it.
    #[command(hide = true)]
    Child { scene: Scene, file: PathBuf, values: usize, id: u32 },
    /// Time the tutorial's benchmark and its floors: n float64 ones in a memory-mapped
    /// file in $TMPDIR, shared with one child that checks the length [--n 100000000]
    Bench(BenchArgs),
    /// One timed run of one bench method, in a fresh process.
    #[command(hide = true)]
    BenchRun { method: bench::Method },
    /// The child of the bench's `mmap` method.
    #[command(hide = true)]
    BenchChild { file: PathBuf },
}

#[derive(Subcommand, ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Scene {
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

fn main() -> ExitCode {
    plumbing::main(|| {
        let cli = Cli::parse();
        let n = cli.n;
        match cli.action {
            Some(Action::Child { scene, file, values, id }) => {
                scenes::child(scene, &file, values, id)
            }
            Some(Action::Bench(args)) => {
                refuse_scene_flags(&[
                    ("--path (set TMPDIR to choose where bench's file lives)", cli.path.is_some()),
                    ("--children", cli.children.is_some()),
                    ("--child-cmd", cli.child_cmd.is_some()),
                    ("--pause", cli.pause.pause),
                ])?;
                bench::run(n, &args)
            }
            Some(Action::BenchRun { method }) => bench::run_once(method, n),
            Some(Action::BenchChild { file }) => as_child("child", || bench::child(&file, n)),
            Some(Action::Scene(scene)) => {
                cli.pause.apply()?;
                scenes::run(&[scene], n, cli.children, cli.path, cli.child_cmd)
            }
            None => {
                cli.pause.apply()?;
                scenes::run(&Scene::ALL, n, cli.children, cli.path, cli.child_cmd)
            }
        }
    })
}
