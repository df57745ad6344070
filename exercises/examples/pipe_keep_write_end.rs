//! Exercise "who holds the write end?" (docs/exercises/pipe.md): a reader sees
//! end-of-file only when every write end of the pipe is closed, including its own.
//!
//! The child writes n f64 values into a pipe and exits. The parent reads until
//! end-of-file. With `--keep-write-end` the parent keeps its own copy of the write
//! end open (as examples-pipe would if `spawn_child` did not drop it): all the data
//! arrives, and then `read` waits for an end that cannot come, because the parent
//! itself could still write. Here the wait is cut short after one second so the
//! program can report it; a real reader would hang forever.
//!
//! `cargo run -p exercises --example pipe_keep_write_end -- --keep-write-end`

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use nix::fcntl::OFlag;
use nix::unistd::pipe2;

/// Reads a child's output through a pipe, with or without keeping a write end.
#[derive(Parser)]
struct Cli {
    /// How many f64 values the child sends [default: 1000000, 8 MB]
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..))]
    n: u32,
    /// Keep the parent's copy of the write end open while reading
    #[arg(long)]
    keep_write_end: bool,
}

fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("child") {
        return child();
    }
    let cli = Cli::parse();
    let expected = cli.n as usize * 8;
    // Close-on-exec: the child gets the write end only as its standard output.
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).context("could not make a pipe")?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["child", &cli.n.to_string()])
        .stdout(Stdio::from(write_end.try_clone()?))
        .spawn()
        .context("could not start the child")?;
    let kept = if cli.keep_write_end {
        println!("parent: the child writes into the pipe; I keep my copy of its write end open");
        Some(write_end)
    } else {
        println!("parent: the child writes into the pipe; I closed my copy of its write end");
        drop(write_end);
        None
    };

    // Read on a helper thread, so the main thread can stop waiting after a second.
    let (progress, updates) = mpsc::channel();
    std::thread::spawn(move || {
        let mut pipe = File::from(read_end);
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) => break, // end-of-file: the channel closes with the thread
                Ok(count) => progress.send(count).expect("main thread is listening"),
                Err(err) => panic!("read failed: {err}"),
            }
        }
    });
    let mut received = 0;
    let end_of_file = loop {
        match updates.recv_timeout(Duration::from_secs(1)) {
            Ok(count) => received += count,
            Err(mpsc::RecvTimeoutError::Disconnected) => break true,
            Err(mpsc::RecvTimeoutError::Timeout) => break false,
        }
    };
    let status = child.wait()?;
    ensure!(status.success(), "the child process failed: {status}");
    ensure!(received == expected, "expected {expected} bytes, got {received}");
    if end_of_file {
        println!("parent: got all {received} bytes, then end-of-file: every write end is closed");
        println!(
            "verdict: end-of-file came, because the child exited and the parent held no write end"
        );
    } else {
        println!(
            "parent: got all {received} bytes, the child has exited, and still no end-of-file after 1 s"
        );
        println!(
            "verdict: no end-of-file: a write end is still open (the parent's own), so read() would wait forever"
        );
        drop(kept); // now the reader thread sees end-of-file and ends
    }
    Ok(())
}

/// The child: n values of 1.0, as raw bytes, on its standard output (the pipe).
fn child() -> Result<()> {
    let n: usize = std::env::args().nth(2).context("missing n")?.parse()?;
    let bytes: Vec<u8> = std::iter::repeat_n(1.0f64.to_le_bytes(), n).flatten().collect();
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(())
}
