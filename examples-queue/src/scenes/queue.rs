//! queue: the tutorial's "via queue", a simulated return value. The child makes an
//! (n, n) array of ones and puts it on a queue; the parent gets it. What the parent
//! gets is a copy: the array was made in the child and copied through the queue.

use anyhow::Result;
use callback::StartCallingBack;
use ipc_channel::ipc::{self, IpcSender};
use ndarray::Array2;
use plumbing::memory::show_memory;
use plumbing::show::{expect_all, seconds, show_values, verdict};
use plumbing::{Process, join_all, pause_here};

use crate::Task;
use crate::parcel::{Parcel, get, put};
use crate::scenes::{report_peak_memory, report_transfer};

/// The parent: a queue, a child with its put end, one get().
pub fn parent(n: usize) -> Result<()> {
    // queue = SimpleQueue(): the put end goes to the child, the get end stays here.
    let (queue, get_end) = ipc::channel::<Parcel>()?;
    // child = Process(target=task, args=(queue,)); child.start(). `queue` moves into
    // the task: the parent keeps no put end, so if the child dies, get() sees a
    // closed queue instead of waiting forever.
    let child = Process::new(Task::MakeOnes { n, queue }).start_calling_back()?;
    println!("parent: started the child (pid {}) with the queue; waiting on get()", child.pid());
    let got = get(&get_end); // data = queue.get()
    let (got, took) = join_all(vec![child], got)?; // child.join()
    let child_took = took[0];

    report_transfer(&got);
    show_values("parent", got.array.view()); // print(data[:5, :5])
    show_memory("parent", &got.array); // the kernel's word: a copy of our own
    println!(
        "parent: the child took {} (started, made ones, put them, exited)",
        seconds(child_took)
    );
    report_peak_memory();
    expect_all(got.array.view(), 1.0, "the array from the queue")?;
    verdict(&format!(
        "copy: the parent now owns its own array with 1.0 in all {} elements; it was made in the child and copied through the queue.",
        got.array.len()
    ));
    Ok(())
}

/// The child: the tutorial's `task(queue)`.
pub fn child(n: usize, queue: &IpcSender<Parcel>) -> Result<()> {
    let data = Array2::<f64>::ones((n, n)); // data = ones((n, n))
    println!("child: made ones of shape {:?}", data.dim());
    show_values("child", data.view());
    show_memory("child", &data);
    pause_here(&data); // --pause: look at it from another terminal, then Enter
    println!("child: putting the array on the queue");
    put(queue, 1, &data) // queue.put(data)
}
