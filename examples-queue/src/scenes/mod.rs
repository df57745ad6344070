//! The scenes, one file each, in the tutorial's order, the sizes they check first,
//! and the name each child goes by.

pub mod argument_and_queue;
pub mod many_producers;
pub mod queue;

use anyhow::Result;
use plumbing::memory;
use plumbing::show::{seconds, size};

use crate::parcel::{self, Got};
use crate::{Scene, Task};

/// Each task holds the child's end of the queue. Python hands the whole queue to the
/// child; an ipc-channel has two ends, and each process gets the one it uses. A put
/// end (`IpcSender`) may be cloned into many processes; the get end (`IpcReceiver`)
/// is in exactly one.
impl callback::Task for Task {
    fn role(&self) -> String {
        match self {
            Task::Produce { id, .. } => format!("child {id}"),
            _ => "child".into(),
        }
    }

    fn label(&self) -> String {
        match self {
            Task::Produce { id, .. } => format!("child process {id}"),
            _ => "the child process".into(),
        }
    }
}

/// Runs `scenes` in order, each under its heading, after checking that the arrays
/// each one holds at its peak fit in memory.
pub fn run(scenes: &[Scene], n: u64, producers: u32) -> Result<()> {
    for (i, scene) in scenes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        match scene {
            Scene::Queue => {
                println!("=== queue: the child puts ones on a queue; the parent gets a copy ===");
                queue::parent(checked_side(n, 2, "the child's and the parent's copy")?)?;
            }
            Scene::ArgumentAndQueue => {
                println!(
                    "=== argument-and-queue: ones go to the child; zeros come back on the queue ==="
                );
                let holders = "the parent's ones, the child's copy and the array that comes back";
                argument_and_queue::parent(checked_side(n, 3, holders)?)?;
            }
            Scene::ManyProducers => {
                let who = children_word(producers);
                println!("=== many-producers: {who} put an array each on one queue ===");
                let holders = "every child's array and the one the parent is receiving";
                many_producers::parent(
                    checked_side(n, u64::from(producers) + 1, holders)?,
                    producers,
                )?;
            }
        }
    }
    Ok(())
}

/// The shape (n, n), or a clear error if `copies` such arrays can't fit in memory.
/// Checked before allocating, so a typo in `--n` is a message, not an OOM kill.
pub fn checked_side(n: u64, copies: u64, holders: &str) -> Result<usize> {
    memory::array_len(n, n.checked_mul(n), size_of::<f64>(), copies, holders)?;
    Ok(usize::try_from(n)?) // n * n fits, so n does
}

/// n values of the bench's 1-D array, the parent's and the child's, if they fit.
pub fn checked_len(n: u64) -> Result<usize> {
    memory::array_len(n, Some(n), size_of::<f64>(), 2, "the parent's and the child's")
}

pub fn report_transfer(got: &Got) {
    let rate = got.bytes as f64 / got.took.as_secs_f64().max(1e-9) / 1e9;
    println!("parent: got an array of shape {:?} from {}:", got.array.dim(), parcel::who(got.from));
    println!("parent:   {} in {} ({rate:.2} GB/s)", size(got.bytes as u64), seconds(got.took));
}

/// The parent's peak so far in this run; each child prints its own when it is done.
pub fn report_peak_memory() {
    println!("parent: peak memory so far: {} MB", memory::peak() / 1_000_000);
}

/// "1 child", "4 children".
pub fn children_word(count: u32) -> String {
    match count {
        1 => "1 child".to_owned(),
        _ => format!("{count} children"),
    }
}
