//! Exercise "send it the pickle way" (docs/exercises/pipe.md): what it costs the
//! sender to build the whole message before writing it.
//!
//! examples-pipe writes the array's bytes straight from the array into the pipe.
//! Python's `Connection.send` first pickles the array into one bytes object, a
//! second whole copy, and writes that. With `--whole-message` the child here does the
//! same: it collects every byte into one `Vec<u8>`, then writes it. Each child
//! reports its own peak memory (VmHWM, which starts afresh at exec).
//!
//! `cargo run -p exercises --example pipe_whole_message -- --whole-message`

use std::io::{BufReader, BufWriter, Read, Write};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use ndarray::Array2;

/// A child sends an (n, n) array through a pipe, streamed or as one whole message.
#[derive(Parser)]
struct Cli {
    /// The side of the (n, n) array of f64 [default: 2000, 32 MB]
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u16).range(1..))]
    n: u16,
    /// Build the whole message in memory first, as pickle does
    #[arg(long)]
    whole_message: bool,
}

fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("child") {
        return child();
    }
    let cli = Cli::parse();
    let n = usize::from(cli.n);
    let how = if cli.whole_message { "whole" } else { "streamed" };
    // The child's standard output is the pipe.
    let mut child = Command::new(std::env::current_exe()?)
        .args(["child", &n.to_string(), how])
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start the child")?;
    let mut pipe = BufReader::with_capacity(1 << 16, child.stdout.take().expect("piped"));
    let mut received = Array2::<f64>::zeros((n, n));
    let values = received.as_slice_mut().expect("a new array is contiguous");
    for value in values.iter_mut() {
        let mut raw = [0u8; 8];
        pipe.read_exact(&mut raw).context("the child sent too little")?;
        *value = f64::from_le_bytes(raw);
    }
    let status = child.wait()?;
    ensure!(status.success(), "the child process failed: {status}");
    ensure!(
        received.iter().all(|&x| x == 1.0),
        "expected 1.0 in every element of the received copy"
    );
    println!(
        "verdict: the parent received all {} elements as 1.0 ({} MB); compare the child's peak memory with the array's size",
        received.len(),
        received.len() * 8 / 1_000_000
    );
    Ok(())
}

fn child() -> Result<()> {
    let mut args = std::env::args().skip(2);
    let n: usize = args.next().context("missing n")?.parse()?;
    let whole = args.next().as_deref() == Some("whole");
    let array = Array2::<f64>::ones((n, n));
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if whole {
        // One bytes object holding every value, then one write: a second whole copy.
        let message: Vec<u8> = array.iter().flat_map(|x| x.to_le_bytes()).collect();
        out.write_all(&message)?;
    } else {
        // Straight from the array, a buffer's worth at a time.
        for x in &array {
            out.write_all(&x.to_le_bytes())?;
        }
    }
    out.flush()?;
    eprintln!(
        "child: sent {} MB {}; my peak memory: {} MB",
        array.len() * 8 / 1_000_000,
        if whole { "as one whole message" } else { "streamed from the array" },
        peak_memory_mb()
    );
    Ok(())
}

/// This process's peak resident memory (VmHWM) in MB.
fn peak_memory_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok());
    kib.unwrap_or(0) * 1024 / 1_000_000
}
