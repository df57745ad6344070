//! The scenes, one file each, in the tutorial's order, and what runs them: their
//! headings, the sizes they check first, and the command that starts named's child.

pub mod anonymous;
pub mod copy_in;
pub mod named;

use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};
use ndarray::ArrayView1;
use plumbing::children::{other_program, this_program};
use plumbing::room;

use crate::{Cli, Scene, names};

/// The tutorial's array: 100,000,000 float64 values (800 MB).
const TUTORIAL_N: u64 = 100_000_000;

/// Runs `scenes` in order, each under its heading.
pub fn run(scenes: &[Scene], cli: &Cli) -> Result<()> {
    for (i, scene) in scenes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let heading = match scene {
            Scene::Named => {
                "named: a named shared-memory segment, opened by name in a spawned child"
            }
            Scene::Anonymous => {
                "anonymous: a MAP_SHARED anonymous mapping filled in place, inherited by fork (RawArray)"
            }
            _ => "copy-in: an existing array copied into a fresh shared mapping, then fork (Array)",
        };
        println!("=== {heading} ===");
        if cli.child_cmd.is_some() && *scene != Scene::Named {
            println!(
                "parent: --child-cmd is not used here: this memory has no name and reaches the child only through fork, which another program cannot join"
            );
        }
        // copy-in holds the original and the shared copy at once.
        let arrays = if *scene == Scene::CopyIn { 2 } else { 1 };
        let n = cli.n.unwrap_or(TUTORIAL_N);
        let bytes = room::array_bytes(n, Some(n), size_of::<f64>())?;
        room::check_memory(n, bytes, arrays, "the original and the shared copy")?;
        let n = bytes / size_of::<f64>();
        match scene {
            Scene::Named => {
                let name = cli.name.clone().unwrap_or_else(names::default_name);
                named::parent(n, &name, cli)?;
            }
            Scene::Anonymous => anonymous::parent(n)?,
            _ => copy_in::parent(n)?,
        }
    }
    Ok(())
}

/// The command that starts named's child, spawn style: this program's hidden
/// `child-named` sub-command, like the tutorial's `task(n)` that calls
/// `SharedMemory('MyMemory')`, or the `--child-cmd` program, told what Python's
/// `SharedMemory(name)` and `numpy.ndarray(shape, dtype, buffer)` need.
pub fn named_child(name: &str, n: usize, child_cmd: Option<&str>) -> Result<Command> {
    let n = n.to_string();
    match child_cmd {
        None => this_program(["child-named", "--name", name, "--n", &n]),
        Some(cmd) => {
            let bare = &name[1..]; // Python adds the leading '/' itself
            println!("parent: starting the child: {cmd} {bare} float64 {n}");
            Ok(other_program(cmd, [bare, "float64", &n]))
        }
    }
}

/// The verdict's evidence: every element, not only the ten that were printed.
pub fn expect_all(what: &str, data: ArrayView1<f64>, expected: f64) -> Result<()> {
    if let Some((i, seen)) = data.iter().enumerate().find(|(_, x)| **x != expected) {
        bail!(
            "expected {expected:.1} in all {} elements of {what}, but element {i} is {seen}",
            data.len()
        );
    }
    Ok(())
}

pub fn scene_took(started: Instant) {
    println!("parent: the scene took {}", plumbing::show::seconds(started.elapsed()));
}
