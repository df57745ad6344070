//! Exercise "forget the flush" (docs/exercises/mmap.md): does the parent see the
//! child's change if the child never flushes?
//!
//! The child maps the file, adds 1 to every value and exits without `flush`. The
//! parent then reads the file with an ordinary `read`, not through a mapping. It
//! sees the 2s: a shared file mapping and `read` use the same pages of the kernel's
//! page cache, so the change is in the file for every process the moment it is
//! written to memory. `flush` (msync) only forces those pages to the disk, which
//! matters if the machine crashes, not for another process.
//!
//! `cargo run -p exercises --example mmap_no_flush -- --n 1000`

use std::fs::OpenOptions;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use memmap2::MmapMut;

/// A child adds 1 to every value of a mapped file and never flushes.
#[derive(Parser)]
struct Cli {
    /// Number of f32 values in the file [default: 1000]
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    n: u32,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return child(&args[2]);
    }
    let n = Cli::parse().n as usize;
    let dir = tempfile::tempdir()?; // removed when `dir` is dropped
    let path = dir.path().join("data.f32");
    let ones: Vec<u8> = std::iter::repeat_n(1.0f32.to_le_bytes(), n).flatten().collect();
    std::fs::write(&path, ones)?;

    let status = Command::new(std::env::current_exe()?)
        .arg("child")
        .arg(&path)
        .status()
        .context("could not start the child")?;
    ensure!(status.success(), "the child process failed: {status}");

    let bytes = std::fs::read(&path)?;
    let values: Vec<f32> =
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    println!("parent: read() the file: first values {:?}", &values[..values.len().min(10)]);
    ensure!(values.iter().all(|&x| x == 2.0), "expected 2.0 everywhere in the file");
    println!(
        "verdict: all {n} values read back as 2.0, although the child never flushed: mapping and read() share the page cache"
    );
    Ok(())
}

fn child(path: &str) -> Result<()> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    // SAFETY: the parent waits for us and does not touch the file meanwhile; no other
    // process maps it, so this is the only view of these bytes while it lives.
    let mut map = unsafe { MmapMut::map_mut(&file)? };
    for value in map.chunks_exact_mut(4) {
        let x = f32::from_le_bytes([value[0], value[1], value[2], value[3]]) + 1.0;
        value.copy_from_slice(&x.to_le_bytes());
    }
    println!("child: added 1 to every value through my mapping; exiting without flush");
    Ok(()) // the mapping is unmapped here; nothing is written to disk on purpose
}
