//! The scenes, one file each, in the tutorial's order, and what runs them: the file
//! they share, their headings, and the commands that start their children.

pub mod copy_on_write;
pub mod many_children;
pub mod many_children_locked;
pub mod one_child;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::Result;
use plumbing::children::{as_child, other_program, this_program};

use crate::Scene;
use crate::file::Place;

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
    child_cmd: Option<String>,
) -> Result<()> {
    let children = children.unwrap_or(100);
    let n_for = |scene: Scene| n.unwrap_or(scene.default_n());
    let _ = CHILD_CMD.set(child_cmd.clone());
    let place = Place::choose(path)?;
    for &scene in scenes {
        place.check_room(n_for(scene), u64::from(scene == Scene::CopyOnWrite))?;
    }
    for (i, &scene) in scenes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", scene.heading(children));
        if let (Some(_), Some(why)) = (&child_cmd, scene.needs_own_child()) {
            println!("parent: --child-cmd is not used here: {why}");
        }
        let (path, n) = (&place.path, usize::try_from(n_for(scene))?); // check_room: it fits
        match scene {
            Scene::OneChild => one_child::parent(path, n)?,
            Scene::ManyChildren => many_children::parent(path, n, children)?,
            Scene::ManyChildrenLocked => many_children_locked::parent(path, n, children)?,
            Scene::CopyOnWrite => copy_on_write::parent(path, n)?,
        }
    }
    if place.keep {
        let (path, n) = (place.path.display(), n_for(scenes[scenes.len() - 1]));
        println!("\nparent: kept {path}; Python opens it with");
        println!("parent:   numpy.memmap('{path}', dtype='float32', mode='r+', shape=({n},))");
    }
    Ok(())
}

/// The child's half of `scene`, run by the hidden `child` sub-command: "child", or
/// "child 3" when it has brothers and sisters.
pub fn child(scene: Scene, path: &Path, n: usize, id: u32) -> Result<()> {
    let label = match scene.has_one_child() {
        true => "child".to_string(),
        false => format!("child {id}"),
    };
    as_child(&label, || match scene {
        Scene::OneChild => one_child::child(path, n),
        Scene::ManyChildren => many_children::child(path, n, id),
        Scene::ManyChildrenLocked => many_children_locked::child(path, n, id),
        Scene::CopyOnWrite => copy_on_write::child(path, n),
    })
}

/// `--child-cmd`, set once by [`run`].
static CHILD_CMD: OnceLock<Option<String>> = OnceLock::new();

/// The commands that start the `count` children of `scene`: the tutorial's
/// `Process(target=task, args=(filename, n))`. Each is this program's hidden `child`
/// sub-command with the file's name and size (never its data), or the `--child-cmd`
/// program with what `numpy.memmap` needs to open the file.
pub fn child_processes(scene: Scene, path: &Path, n: usize, count: u32) -> Result<Vec<Command>> {
    let external = CHILD_CMD.get().cloned().flatten();
    let external = external.filter(|_| scene.needs_own_child().is_none());
    let n = n.to_string();
    if let Some(cmd) = &external {
        let each = if count == 1 { "starting the child" } else { "each child runs" };
        println!("parent: {each}: {cmd} {} float32 {n}", path.display());
    }
    (1..=count)
        .map(|id| match &external {
            Some(cmd) => Ok(other_program(cmd, [path.as_os_str(), "float32".as_ref(), n.as_ref()])),
            None => this_program([
                "child".as_ref(),
                scene.name().as_ref(),
                path.as_os_str(),
                n.as_ref(),
                id.to_string().as_ref(),
            ]),
        })
        .collect()
}
