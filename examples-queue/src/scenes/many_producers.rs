//! many-producers: a queue takes puts from any number of processes (a pipe joins
//! just two ends). Several children put an array each on the one queue; the parent
//! gets until the queue closes, and every array must arrive exactly once, whole.

use anyhow::{Result, bail};
use callback::StartCallingBack;
use ipc_channel::ipc::{self, IpcSender};
use ndarray::Array2;
use plumbing::memory::show_memory;
use plumbing::show::verdict;
use plumbing::{Process, join_all, pause_here};

use crate::Task;
use crate::arrivals::Arrivals;
use crate::parcel::{Parcel, put};
use crate::scenes::{children_word, report_peak_memory};

/// The parent: one queue, a put end for each child, gets until it closes.
pub fn parent(n: usize, producers: u32) -> Result<()> {
    let (queue, get_end) = ipc::channel::<Parcel>()?;
    println!(
        "parent: starting {}, each with its own put end of the one queue",
        children_word(producers)
    );
    // Process(target=task, args=(id, queue)) for each id: a clone of the put end each.
    let mut team = Vec::new();
    let started: Result<()> = (1..=producers).try_for_each(|id| {
        let task = Task::Produce { id, n, queue: queue.clone() };
        team.push(Process::new(task).start_calling_back()?);
        Ok(())
    });
    // The parent's put end must go, or the queue could never close: see `get`.
    drop(queue);
    // while queue.get(): until the queue closes, which it does when every child is gone
    let got = started.and_then(|()| Arrivals::get_until_closed(&get_end, &mut team, producers, n));
    let (arrivals, _) = join_all(team, got)?;

    report_peak_memory();
    let missing = arrivals.missing();
    if !missing.is_empty() || !arrivals.problems.is_empty() {
        bail!(
            "expected one correct array from each of the {producers} children, but missing from children {missing:?}; problems: {}",
            arrivals.problems.join("; ")
        );
    }
    verdict(&format!(
        "queue: {} put on one queue at once and the parent got each array exactly once, all {} elements right; each put arrived whole, with no lock.",
        children_word(producers),
        arrivals.elements
    ));
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
        pause_here(&data); // --pause: look at it from another terminal, then Enter
    }
    put(queue, id, &data) // queue.put(data)
}
