//! Share an array between processes through shared memory: the SharedMemory, ctype
//! RawArray and ctype Array parts of the tutorial "Fastest Way To Share NumPy Array
//! Between Processes", in Rust.
//!
//! Each scene is one file in `scenes/`, to read beside the tutorial: `named` (a named
//! POSIX segment, `SharedMemory`), `anonymous` (`RawArray`) and `copy-in` (`Array`).
//! `segment.rs` is the named segment they use and `mapping.rs` the shared mapping
//! without a name. This file only chooses which scene runs; `bench` is in bench.rs.

mod bench;
mod mapping;
mod names;
mod scenes;
mod segment;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use plumbing::bench::{BenchArgs, refuse_scene_flags};
use plumbing::children::as_child;
use plumbing::pause::PauseArg;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Share an array between processes through named POSIX shared \
    memory and anonymous shared mappings. Without a scene, runs every scene in order."
)]
pub struct Cli {
    #[command(subcommand)]
    scene: Option<Scene>,

    /// Number of f64 elements in the array [default: 100000000 in every scene]
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub n: Option<u64>,

    /// Name of the segment in `named` ("x" or "/x", at most 30 characters)
    /// [default: a fresh name per run, /exshm-<pid>-<random>]
    #[arg(long, global = true, value_parser = names::parse_name)]
    pub name: Option<String>,

    /// `named`: leave the segment in /dev/shm after a successful run, to open it
    /// from Python; remove it yourself with `rm /dev/shm/NAME` [default: unlink]
    #[arg(long, global = true)]
    pub keep: bool,

    /// `named`: if a segment of that name exists, unlink it first [default: refuse]
    #[arg(long, global = true)]
    pub replace: bool,

    /// `named`: run CMD as the child instead of this program, e.g.
    /// "python3 docs/python/shm_child.py". Appended to it: the segment's name
    /// (without the '/', as Python's SharedMemory takes it), the dtype (float64)
    /// and the shape (N). The child must print its first values, add 1 to every
    /// element and exit 0; the parent checks as always. Only `named` takes it: the
    /// other scenes hand the memory over by fork, which no other program can
    /// inherit [default: this program's own child]
    #[arg(long, global = true, value_name = "CMD", value_parser = plumbing::children::parse_child_cmd, conflicts_with = "pause")]
    pub child_cmd: Option<String>,

    #[command(flatten)]
    pause: PauseArg,
}

#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Scene {
    /// SharedMemory: a named segment, opened by name in a spawned child [n = 100000000]
    Named,
    /// RawArray: a MAP_SHARED anonymous mapping, filled in place, inherited by fork [n = 100000000]
    Anonymous,
    /// Array: an existing array copied into a fresh shared mapping, then fork [n = 100000000]
    CopyIn,
    /// Time the three methods and their floors the tutorial's way: n f64 ones
    /// shared with one child that reads the length [n = 100000000]
    Bench(BenchArgs),
    /// The child of `named` (started by the parent, not by hand).
    #[command(hide = true)]
    ChildNamed,
    /// One timed run of one bench method, in a fresh process.
    #[command(hide = true)]
    BenchRun { method: bench::Method },
    /// The child of the bench's `named-shm` method.
    #[command(hide = true)]
    BenchChild,
}

fn main() -> ExitCode {
    plumbing::main(|| {
        let cli = Cli::parse();
        match cli.scene.clone() {
            Some(Scene::ChildNamed) => as_child("child", || {
                let name = cli.name.as_deref().context("the child needs --name")?;
                scenes::named::child(name, usize::try_from(cli.n.context("the child needs --n")?)?)
            }),
            Some(Scene::Bench(args)) => {
                refuse_scene_flags(&[
                    ("--name", cli.name.is_some()),
                    ("--keep", cli.keep),
                    ("--replace", cli.replace),
                    ("--child-cmd", cli.child_cmd.is_some()),
                    ("--pause", cli.pause.pause),
                ])?;
                bench::run(cli.n, &args)
            }
            Some(Scene::BenchRun { method }) => bench::run_once(method, cli.n),
            Some(Scene::BenchChild) => {
                as_child("child", || bench::child(cli.name.as_deref(), cli.n))
            }
            Some(scene) => {
                cli.pause.apply()?;
                scenes::run(&[scene], &cli)
            }
            None => {
                cli.pause.apply()?;
                scenes::run(&[Scene::Named, Scene::Anonymous, Scene::CopyIn], &cli)
            }
        }
    })
}
