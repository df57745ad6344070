//! `examples-pipe bench`: the tutorial "Fastest Way To Share NumPy Array Between
//! Processes", measured for the pipe method.
//!
//! The benchmark sends the array the other way round from the lesson: the parent
//! creates n float64 ones (1-D), starts one new child (spawn style) holding the read
//! end of a pipe, writes the array into the pipe and waits; the child receives it
//! into a buffer of its own and checks the length. The bytes are the lesson's frame
//! (`frame.rs`), the 1-D array travelling as a single row of shape (1, n).
//! `floor` creates the same ones in one process, with no pipe and no child: the cost
//! every method pays before anything is shared.
//!
//! The levers, each measured (docs/deeper/pipe.md, "The benchmark"): both buffers on huge
//! pages, the largest pipe buffer, `vmsplice` instead of `write` for the data, and
//! calls that each ask for all the bytes still to go (not small pieces).

use std::fs::File;
use std::io::Write;

use anyhow::{Context, Result, bail, ensure};
use bench_protocol as bench;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::pipe2;
use plumbing::{HandOver, Process};

use crate::{Task, channel, frame};

pub const METHODS: [&str; 2] = ["floor", "pipe"];

/// One run of `method`, timed by the protocol, in this fresh process.
pub fn run_once(method: &str, n: usize) -> Result<()> {
    bench::time_one_run(|| match method {
        "floor" => bench::floor(n),
        "pipe" => pipe(n),
        other => bail!("unknown bench method {other:?}; the methods are {METHODS:?}"),
    })
}

/// The parent's side: ones, a pipe, a child on its read end, one frame, wait.
fn pipe(n: usize) -> Result<()> {
    let data = plumbing::arrays::ones(n);
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).context("creating the pipe")?;
    // 1 MiB instead of 64 KiB: 16 times fewer rounds of "the parent fills the pipe and
    // sleeps, the child drains it and sleeps". Only a speed-up: if the kernel refuses,
    // the default buffer carries the same bytes.
    if let Some(max) = channel::pipe_max_size() {
        let _ = fcntl(&write_end, FcntlArg::F_SETPIPE_SZ(max));
    }
    let conn = HandOver::from(&read_end);
    let child = Process::new(Task::Bench { values: n, conn }).start()?;
    // Our copy must go, or a write into a pipe whose child died would block forever.
    drop(read_end);

    let mut out = File::from(write_end);
    let sent = send_frame(&mut out, &data);
    // Closing the write end is the child's end-of-file after the frame.
    drop(out);
    // Wait before judging the send: a dead child is the cause, EPIPE only its symptom.
    child.join_with(sent.context("sending the array to the child"))
}

/// Sends the lesson's frame: the header with `write`, the data with `vmsplice`.
///
/// `write` copies the bytes into the pipe's own pages, and the child's `read` copies
/// them out again: two copies of 800 MB. `vmsplice` puts references to our pages into
/// the pipe instead, and the child's `read` copies straight out of them: one copy,
/// about half the time of a run (docs/deeper/pipe.md, "The benchmark"). The child still gets its
/// own copy. The price is a rule the compiler cannot check: the pages are lent, not
/// copied, so `data` must not change until the child has read them (a change would
/// travel too). Here nothing writes to `data` again, and the caller waits for the
/// child before dropping it. (Freeing it would be safe anyway: the pipe holds its
/// own references to the pages.) The scene's child sends with `write` (`frame.rs`).
fn send_frame(out: &mut File, data: &[f64]) -> Result<()> {
    out.write_all(&frame::header(1, data.len())).context("sending the header")?;
    bench::lend_to_pipe(&*out, plumbing::arrays::as_bytes(data))
}

/// The child's side: receive the frame into one buffer and check the length.
pub fn child(n: usize, conn: HandOver) -> Result<()> {
    let mut input = File::from(conn.take()?);
    let shape = frame::read_header(&mut input)?;
    // The length check: the header must announce exactly n values, the data must fill
    // all n of them, and the stream must end right after.
    ensure!(shape == (1, n), "expected shape (1, {n}), but the header announces {shape:?}");
    // The receive buffer, allocated once: fresh zero pages advised to be huge, so the
    // kernel faults in about 400 pages of 2 MiB while `read` copies into them, rather
    // than 195,000 of 4 KiB. (With 4 KiB pages a run takes about 2.5 times as long.)
    let mut data = plumbing::arrays::zeros(n)?;
    frame::read_values_into(&mut input, &mut data).context("receiving the array")?;
    frame::expect_end(&mut input)?;
    bench::report_child_peak(plumbing::memory::peak());
    Ok(())
}
