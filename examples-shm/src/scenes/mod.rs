//! The scenes, one file each, in the tutorial's order, and what runs them: their
//! headings, the sizes they check first, and the command line named's child gets.

pub mod anonymous;
pub mod copy_in;
pub mod named;

use std::time::Instant;

use anyhow::Result;
use plumbing::{Word, args, memory};

use crate::{Scene, Task, names};

/// The tutorial's array: 100,000,000 float64 values (800 MB).
const TUTORIAL_N: u64 = 100_000_000;

/// Runs `scenes` in order, each under its heading. `named`: what the command line
/// says about the segment (only the named scene has one).
pub fn run(scenes: &[Scene], n: Option<u64>, named: named::Named) -> Result<()> {
    for (i, &scene) in scenes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let heading = match scene {
            Scene::Named => {
                "named: a named shared-memory segment, opened by name in a spawned child"
            }
            Scene::Anonymous => {
                "anonymous: a MAP_SHARED anonymous mapping, inherited by fork (RawArray)"
            }
            Scene::CopyIn => {
                "copy-in: an array copied into a fresh shared mapping, then fork (Array)"
            }
        };
        println!("=== {heading} ===");
        if scene != Scene::Named {
            not_used_here(&named);
        }
        // copy-in holds the original and the shared copy at once.
        let arrays = if scene == Scene::CopyIn { 2 } else { 1 };
        let n = n.unwrap_or(TUTORIAL_N);
        let n = memory::array_len(n, Some(n), 8, arrays, "the original and the shared copy")?;
        match scene {
            Scene::Named => {
                let name = named.name.clone().unwrap_or_else(names::default_name);
                if let Some(cmd) = &named.cmd {
                    // What it gets: the task's arguments, as our own child does (below).
                    println!("parent: the child runs: {cmd} {name} {n}");
                }
                named::parent(n, &name, &named)?;
            }
            Scene::Anonymous => anonymous::parent(n)?,
            Scene::CopyIn => copy_in::parent(n)?,
        }
    }
    Ok(())
}

/// The flags of the named scene that a scene without a name does not use, said once.
fn not_used_here(named: &named::Named) {
    let given = [
        ("--name", named.name.is_some()),
        ("--keep", named.keep),
        ("--replace", named.replace),
        ("--child-cmd", named.cmd.is_some()),
    ];
    let given: Vec<&str> = given.iter().filter(|(_, on)| *on).map(|(flag, _)| *flag).collect();
    let verb = if given.len() == 1 { "is" } else { "are" };
    if !given.is_empty() {
        println!("parent: {} {verb} not used here:", given.join(", "));
        println!("parent:   this memory has no name, and only a fork of this program gets it");
    }
}

/// A task as its child's command line: the sub-command, then the arguments in the
/// order the variant declares them, as clap reads them back. An external child
/// (`--child-cmd`) gets the arguments alone: the segment's name and n.
impl plumbing::Task for Task {
    fn args(&self) -> Vec<Word> {
        match self {
            Task::Named { segment, len } => args!["named", segment, len],
            Task::Bench { segment, len } => args!["bench", segment, len],
        }
    }
}

pub fn scene_took(started: Instant) {
    println!("parent: the scene took {}", plumbing::show::seconds(started.elapsed()));
}
