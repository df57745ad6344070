//! What carries the bytes: an OS pipe with as large a kernel buffer as we may have,
//! or a Unix socketpair (what Python's `multiprocessing.Pipe()` makes), and the
//! parent's receiving end, which reads one frame straight into one array.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::ValueEnum;
use ndarray::Array2;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::pipe2;

use crate::frame;

#[derive(Clone, Copy, ValueEnum)]
pub enum Via {
    /// An OS pipe: one direction, a kernel buffer we can enlarge
    Pipe,
    /// A Unix socketpair: two directions, what Python's multiprocessing.Pipe() creates
    Socketpair,
}

/// Makes the channel: (read end, write end). Both ends are close-on-exec, so no
/// program we start inherits one by accident; the parent hands the write end over
/// to its child on purpose.
pub fn open(via: Via, pipe_size: Option<u32>) -> Result<(OwnedFd, OwnedFd)> {
    match via {
        Via::Pipe => {
            let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).context("creating the pipe")?;
            set_pipe_buffer(&read_end, pipe_size)?;
            Ok((read_end, write_end))
        }
        Via::Socketpair => {
            ensure!(
                pipe_size.is_none(),
                "--pipe-size sets a pipe's buffer; a socketpair has socket buffers instead"
            );
            let ends =
                socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
                    .context("creating the socketpair")?;
            println!(
                "parent: made a Unix socketpair (what Python's Pipe() uses) instead of a pipe"
            );
            Ok(ends)
        }
    }
}

/// A pipe holds 64 KiB by default, so 800 MB cross it in about 12,000 rounds of "the
/// writer fills it, sleeps, the reader drains it, sleeps". A larger buffer means fewer,
/// larger rounds. Unprivileged processes may go up to /proc/sys/fs/pipe-max-size.
fn set_pipe_buffer(pipe: &OwnedFd, requested: Option<u32>) -> Result<()> {
    let default = fcntl(pipe, FcntlArg::F_GETPIPE_SZ).context("reading the pipe's buffer size")?;
    let max = pipe_max_size();
    let Some(wanted) = requested.map(|bytes| bytes as i32).or(max) else {
        println!("parent: made an OS pipe with the default {default}-byte kernel buffer");
        return Ok(());
    };
    match fcntl(pipe, FcntlArg::F_SETPIPE_SZ(wanted)) {
        Ok(size) => println!(
            "parent: made an OS pipe, its buffer widened to {size} bytes (default {default})"
        ),
        Err(err) if requested.is_some() => {
            return Err(err).with_context(|| {
                format!("cannot set the pipe buffer to {wanted} bytes (pipe-max-size is {max:?})")
            });
        }
        Err(err) => println!(
            "parent: made an OS pipe; could not raise its {default}-byte buffer ({err}), keeping it"
        ),
    }
    Ok(())
}

/// The largest pipe buffer an unprivileged process may ask for (None where unknown).
pub fn pipe_max_size() -> Option<i32> {
    std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

/// How the array arrived.
pub struct Transfer {
    pub seconds: f64,
    pub read_calls: u64,
}

/// `parent_conn.recv()`: reads one frame of an (n, n) array. Takes the read end by
/// value, so it is closed on every return path (a child still writing then gets
/// EPIPE instead of blocking forever).
pub fn receive(read_end: OwnedFd, n: usize) -> Result<(Array2<f64>, Transfer)> {
    let mut stream = File::from(read_end);
    let shape = frame::read_header(&mut stream)?;
    // The header decides how much we allocate, so it must be exactly what we asked the
    // child for: a foreign or corrupted header must not make us allocate terabytes.
    ensure!(shape == (n, n), "expected shape ({n}, {n}), but the header announces {shape:?}");
    // The one allocation: fresh zero pages, untouched until read() copies the child's
    // bytes into them, so there is no second whole buffer. They are advised to be 2 MiB
    // (huge) pages, as numpy does for large arrays: about 400 page faults for 800 MB
    // while read() copies, instead of 195,000 (docs/deeper/pipe.md has the figures).
    let mut array = Array2::from_shape_vec(shape, plumbing::arrays::zeros(n * n)?)?;
    let clock = Instant::now();
    let read_calls = frame::read_data_into(&mut stream, &mut array)?;
    let seconds = clock.elapsed().as_secs_f64();
    frame::expect_end(&mut stream)?;
    Ok((array, Transfer { seconds, read_calls }))
}
