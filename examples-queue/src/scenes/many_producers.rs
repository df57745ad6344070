//! many-producers: a queue takes puts from any number of processes (a pipe joins
//! just two ends). Several children put an array each on the one queue; the parent
//! gets until the queue closes, and every array must arrive exactly once, whole.

use anyhow::{Result, bail};
use ipc_channel::ipc::{self, IpcSender};
use ndarray::Array2;
use plumbing::Child;
use plumbing::ipc::finish_all;
use plumbing::show_memory;

use crate::parcel::{Parcel, put};
use crate::scenes::{Task, children_word, report_peak_memory, start_child};
use crate::tally::Tally;

/// The parent: one queue, a put end for each child, gets until it closes.
pub fn parent(n: usize, producers: u32) -> Result<()> {
    let (queue, gets) = ipc::channel::<Parcel>()?;
    println!(
        "parent: starting {}, each with its own put end of the one queue",
        children_word(producers)
    );
    let mut started = Vec::new();
    let outcome = start_producers(&mut started, &queue, producers, n);
    // The parent's put end must go, or the queue could never close: see `get`.
    drop(queue);
    // while queue.get(): until the queue closes, which it does when every child is gone
    let outcome = outcome.and_then(|()| Tally::get_until_closed(&gets, &mut started, producers, n));
    let (tally, _) = finish_all(started, outcome)?;

    report_peak_memory();
    let missing = tally.missing();
    if !missing.is_empty() || !tally.problems.is_empty() {
        bail!(
            "expected one correct array from each of the {producers} children, but missing from children {missing:?}; problems: {}",
            tally.problems.join("; ")
        );
    }
    println!(
        "verdict: queue: {} put on one queue at once and the parent got each array exactly once, all {} elements right; each put arrived whole, with no lock.",
        children_word(producers),
        tally.elements
    );
    Ok(())
}

/// `Process(target=task, args=(id, queue))` for each id: a clone of the put end
/// goes to each child, in its task.
fn start_producers(
    started: &mut Vec<Child>,
    queue: &IpcSender<Parcel>,
    count: u32,
    n: usize,
) -> Result<()> {
    for id in 1..=count {
        let (child, task) = start_child(&format!("child process {id} of {count}"))?;
        started.push(child);
        task.send(Task::Produce { id, n, queue: queue.clone() })?;
    }
    Ok(())
}

/// The child: an array that says who made it, put on the shared queue.
pub fn child(id: u32, n: usize, queue: &IpcSender<Parcel>) -> Result<()> {
    let data = Array2::from_elem((n, n), f64::from(id));
    println!(
        "child {id}: made an array of {:.1}s, shape {:?}; putting it on the queue",
        f64::from(id),
        data.dim()
    );
    if id == 1 {
        show_memory("child 1", &data); // one speaks for all
    }
    put(queue, id, &data) // queue.put(data)
}
