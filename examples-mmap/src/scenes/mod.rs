//! The scenes, one file each, in the tutorial's order, and what runs them: the file
//! they share, their headings, and the command line their children get.

pub mod copy_on_write;
pub mod many_children;
pub mod many_children_locked;
pub mod one_child;

use std::path::PathBuf;

use anyhow::Result;
use plumbing::Word;
use plumbing::args;

use crate::place::Place;
use crate::{Scene, Task};

impl Scene {
    pub const ALL: [Scene; 4] =
        [Scene::OneChild, Scene::ManyChildren, Scene::ManyChildrenLocked, Scene::CopyOnWrite];

    pub fn name(self) -> &'static str {
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
    /// takes one). An external child gets a path and a size, nothing else.
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

    pub fn has_one_child(self) -> bool {
        matches!(self, Scene::OneChild | Scene::CopyOnWrite)
    }

    fn default_n(self) -> u64 {
        if self.has_one_child() { 1000 } else { 100_000_000 }
    }
}

/// Runs `scenes` in order, each under its heading, sharing one file.
pub fn run(
    scenes: &[Scene],
    n: Option<u64>,
    children: Option<u32>,
    path: Option<PathBuf>,
    child_cmd: Option<&str>,
) -> Result<()> {
    let children = children.unwrap_or(100);
    let n_for = |scene: Scene| n.unwrap_or(scene.default_n());
    let mut place = Place::choose(path)?;
    for &scene in scenes {
        place.check_room(n_for(scene), u64::from(scene == Scene::CopyOnWrite))?;
    }
    for (i, &scene) in scenes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", scene.heading(children));
        let cmd = match (child_cmd, scene.needs_own_child()) {
            (Some(_), Some(why)) => {
                println!("parent: --child-cmd is not used here: {why}");
                None
            }
            (cmd, _) => cmd,
        };
        let (path, n) = (&place.path, usize::try_from(n_for(scene))?); // check_room: it fits
        if let Some(cmd) = cmd {
            // What it gets: the task's arguments, as our own child does (see below).
            let (who, id) = if scene.has_one_child() { ("the", "") } else { ("each", " ID") };
            println!("parent: {who} child runs: {cmd} {} {n}{id}", path.display());
        }
        match scene {
            Scene::OneChild => one_child::parent(path, n, cmd)?,
            Scene::ManyChildren => many_children::parent(path, n, children, cmd)?,
            Scene::ManyChildrenLocked => many_children_locked::parent(path, n, children)?,
            Scene::CopyOnWrite => copy_on_write::parent(path, n)?,
        }
    }
    place.hand_over(); // every scene went well: a --path file is the user's now
    if place.keep {
        let (path, n) = (place.path.display(), n_for(scenes[scenes.len() - 1]));
        println!("\nparent: kept {path}; Python opens it with");
        println!("parent:   numpy.memmap('{path}', dtype='float32', mode='r+', shape=({n},))");
    }
    Ok(())
}

/// A task as its child's command line: the sub-command, then the arguments in the
/// order the variant declares them, as clap reads them back. An external child
/// (`--child-cmd`) gets the arguments alone: the file's path, n, the child's number.
impl plumbing::Task for Task {
    fn args(&self) -> Vec<Word> {
        match self {
            Task::OneChild { file, len } => args!["one-child", file, len],
            Task::ManyChildren { file, len, id } => args!["many-children", file, len, id],
            Task::ManyChildrenLocked { file, len, id } => {
                args!["many-children-locked", file, len, id]
            }
            Task::CopyOnWrite { file, len } => args!["copy-on-write", file, len],
            Task::Bench { file, len } => args!["bench", file, len],
        }
    }
}

impl Task {
    /// How the child names itself in its error lines: "child", or "child 3" when it
    /// has brothers and sisters.
    pub fn role(&self) -> String {
        match self {
            Task::ManyChildren { id, .. } | Task::ManyChildrenLocked { id, .. } => {
                format!("child {id}")
            }
            _ => "child".into(),
        }
    }
}
