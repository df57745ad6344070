//! pipe: the tutorial's "via pipe", a simulated return value. The child makes an
//! (n, n) array of ones and sends it through an OS pipe; the parent receives it into
//! a buffer of its own. Nothing is shared: the parent ends up with a copy.

use std::fs::File;
use std::time::Instant;

use anyhow::{Context, Result};
use ndarray::Array2;
use plumbing::memory::{peak, show_memory};
use plumbing::show::{expect_all, show_values, size, verdict};
use plumbing::{HandOver, Process, pause_here};

use crate::channel::{self, Via};
use crate::{Task, frame};

/// The parent: a pipe, the child on its write end, the array from its read end.
pub fn parent(n: usize, via: Via, pipe_size: Option<u32>) -> Result<()> {
    let started = Instant::now();
    // parent_conn, child_conn = Pipe()
    let (read_end, write_end) = channel::open(via, pipe_size)?;
    // child = Process(target=task, args=(child_conn,)); child.start()
    let conn = HandOver::from(&write_end);
    let child = Process::new(Task::Pipe { side: n, conn }).start()?;
    // Close our copy now. The reader sees end-of-file only once EVERY write end is
    // closed: if we kept one, a child dying mid-send would leave us in read() forever.
    drop(write_end);
    // data = parent_conn.recv(); child.join() first, to judge what was received.
    let received = channel::receive(read_end, n).context("receiving the array");
    let (array, transfer) = child.join_with(received)?;

    let bytes = (array.len() * size_of::<f64>()) as u64;
    let times = match transfer.read_calls {
        1 => "once".to_string(),
        calls => format!("{calls} times"),
    };
    let rate = bytes as f64 / transfer.seconds / 1e9;
    println!("parent: received {} in {:.2} s ({rate:.2} GB/s),", size(bytes), transfer.seconds);
    println!("parent:   calling read() {times}, into one buffer allocated once");
    show_values("parent", array.view()); // print(data[:5, :5])
    show_memory("parent", &array); // the kernel's word: a copy of our own
    expect_all(array.view(), 1.0, "the received array")?;
    println!("parent: peak memory {}", size(peak())); // the child says its own
    let wall = started.elapsed().as_secs_f64();
    println!("parent: the scene took {wall:.2} s (start the child, fill, send, receive, check)");
    verdict(&format!(
        "copy: all {} elements arrived as 1.0 in the parent's own buffer; the child's array was a second buffer, gone with the child.",
        array.len()
    ));
    Ok(())
}

/// The child: the tutorial's `task(conn)`: make ones, show the corner, send.
pub fn child(n: usize, conn: HandOver) -> Result<()> {
    let mut out = File::from(conn.take()?); // child_conn
    // data = ones((n, n)), made the way numpy makes a large array, on 2 MiB pages.
    let array = Array2::from_shape_vec((n, n), plumbing::arrays::ones(n * n))?;
    let bytes = size((array.len() * size_of::<f64>()) as u64);
    println!("child: made ones of shape ({n}, {n}), {bytes}");
    show_values("child", array.view()); // print(data[:5, :5])
    show_memory("child", &array);
    pause_here(&array); // --pause: look at it from another terminal, then Enter
    let clock = Instant::now();
    frame::write_array(&mut out, &array).context("sending the array to the parent")?; // conn.send(data)
    drop(out); // closing our end is what lets the parent see end-of-file after the data
    let took = clock.elapsed().as_secs_f64();
    println!("child: sent a {}-byte header and {bytes} of data in {took:.2} s", frame::HEADER_LEN);
    println!("child: peak memory {}", size(peak()));
    Ok(())
}
