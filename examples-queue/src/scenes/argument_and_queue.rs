//! argument-and-queue: the tutorial's "via argument and queue". The parent gives
//! ones to the child as its argument; the child fills its copy with zeros and puts
//! it back on the queue. The parent gets zeros, while its own array still holds
//! ones: copies both ways, and a change comes back only when it is sent back.

use anyhow::{Context, Result};
use callback::StartCallingBack;
use ipc_channel::ipc::{self, IpcSender};
use plumbing::memory::show_memory;
use plumbing::show::{expect_all, seconds, show_values, size, verdict};
use plumbing::{Process, join_all, pause_here};

use crate::Task;
use crate::parcel::{self, Parcel, get, put};
use crate::scenes::{report_peak_memory, report_transfer};

/// The parent: ones given away as the argument, the zeros that come back.
pub fn parent(n: usize) -> Result<()> {
    let data = ndarray::Array2::<f64>::ones((n, n)); // data = ones((n, n))
    println!("parent: made ones of shape {:?} ({})", data.dim(), size(data.len() as u64 * 8));
    let (queue, get_end) = ipc::channel::<Parcel>()?; // queue = SimpleQueue()
    // child = Process(target=task, args=(data, queue)); child.start(). Python pickles
    // `data` into the new process's arguments; here the argument is a parcel, and its
    // bytes follow through the parcel's windows once the child has it.
    let (argument, packing) = Parcel::wrap(0, data.dim())?;
    let child = Process::new(Task::FillZeros { argument, queue }).start_calling_back()?;
    println!("parent: started the child (pid {}) with the array and the queue", child.pid());
    let got = parcel::send_bytes(packing, &data).and_then(|()| get(&get_end)); // queue.get()
    let (got, took) = join_all(vec![child], got)?; // child.join()
    let child_took = took[0];

    report_transfer(&got);
    show_values("parent", got.array.view());
    show_memory("parent", &got.array); // a copy of the child's copy
    println!("parent: and its own array, the one it gave away:");
    show_values("parent", data.view());
    println!(
        "parent: the child took {} (started, received, filled zeros, put, exited)",
        seconds(child_took)
    );
    report_peak_memory();
    expect_all(got.array.view(), 0.0, "the array from the queue")?;
    expect_all(data.view(), 1.0, "the parent's own array")?;
    verdict(&format!(
        "copies both ways: the array from the queue has 0.0 in all {} elements, the parent's own array still has 1.0 in all {}; the change came back only because the child sent it back.",
        got.array.len(),
        data.len()
    ));
    Ok(())
}

/// The child: the tutorial's `task(data, queue)`, with its own copy of `data`.
pub fn child(argument: Parcel, queue: &IpcSender<Parcel>) -> Result<()> {
    let mut data = argument.open().context("could not receive the argument")?.array;
    println!("child: got its argument, its own copy, of shape {:?}", data.dim());
    show_values("child", data.view());
    show_memory("child", &data); // the kernel's word: its own copy
    pause_here(&data); // --pause: look at it from another terminal, then Enter
    data.fill(0.0); // data.fill(0.0)
    println!("child: filled its copy with zeros");
    show_values("child", data.view());
    println!("child: putting its copy back on the queue");
    put(queue, 1, &data) // queue.put(data)
}
