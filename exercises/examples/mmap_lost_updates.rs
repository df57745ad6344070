//! Exercise "an atomic add instead of a lock" (docs/exercises/mmap.md): several
//! children add 1 to every value of one memory-mapped file at the same time.
//!
//! `--how load-store` is examples-mmap's `many-children` with no lock: read the
//! value, add 1, write it back. Between the read and the write another child may
//! write the same value, and one of the two additions is lost. `--how fetch-update`
//! makes the read-add-write one atomic step (a compare-and-swap loop on the value's
//! bits): if the value changed since it was read, the processor refuses the write
//! and the child tries again with the new value. No lock, and no update is lost.
//!
//! `cargo run -p exercises --example mmap_lost_updates -- --how fetch-update`

use std::fs::OpenOptions;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::{Parser, ValueEnum};
use memmap2::MmapRaw;

/// Children add 1 to every f32 of a shared file, with or without atomic updates.
#[derive(Parser)]
struct Cli {
    /// Number of f32 values in the file [default: 10000000, 40 MB]
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u32).range(1..))]
    n: u32,
    /// Children adding at the same time [default: 8]
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    children: u32,
    /// How each child adds 1
    #[arg(long, value_enum, default_value_t = How::LoadStore)]
    how: How,
}

#[derive(Clone, Copy, ValueEnum)]
enum How {
    /// Read, add, write back: what `data[:] += 1` does, updates can be lost
    LoadStore,
    /// One atomic read-add-write per value: nothing is lost
    FetchUpdate,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return child(Path::new(&args[2]), args[3].parse()?, &args[4]);
    }
    let cli = Cli::parse();
    let (n, children) = (cli.n as usize, cli.children);
    let dir = tempfile::tempdir()?; // removed when `dir` is dropped
    let path = dir.path().join("data.f32");
    // A new file of n zeros: set_len fills with zero bytes, and 0.0f32 is all zeros.
    OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&path)?
        .set_len(n as u64 * 4)?;

    let how = match cli.how {
        How::LoadStore => "load-store",
        How::FetchUpdate => "fetch-update",
    };
    let started = Instant::now();
    let mut running = Vec::new();
    for _ in 0..children {
        let child = Command::new(std::env::current_exe()?)
            .arg("child")
            .arg(&path)
            .args([&n.to_string(), how])
            .spawn()
            .context("could not start a child")?;
        running.push(child);
    }
    for mut child in running {
        let status = child.wait()?;
        ensure!(status.success(), "a child process failed: {status}");
    }
    let seconds = started.elapsed().as_secs_f64();

    // Every child has exited: nobody writes the file any more, so plain reads are fine.
    let bytes = std::fs::read(&path)?;
    let values = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let expected = children as f32;
    let (mut below, mut total) = (0usize, 0f64);
    for value in values {
        below += usize::from(value < expected);
        total += f64::from(value);
    }
    let lost = f64::from(children) * n as f64 - total;
    println!("parent: {children} children added 1 to {n} values ({how}) in {seconds:.2} s");
    println!("parent: {below} values ended below {children}; {lost} updates were lost");
    if let How::FetchUpdate = cli.how {
        ensure!(lost == 0.0, "expected no lost update with atomic adds, but {lost} were lost");
        println!("verdict: fetch-update: all {n} values are exactly {children}, with no lock");
    } else {
        println!("verdict: load-store: {lost} of {} updates lost", f64::from(children) * n as f64);
    }
    Ok(())
}

fn child(path: &Path, n: usize, how: &str) -> Result<()> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let map = MmapRaw::map_raw(&file)?;
    ensure!(map.len() == n * 4, "the file does not hold {n} values");
    // Other children write these values while we run, so no &[f32] may exist: each
    // value is an AtomicU32 holding an f32's bits.
    // SAFETY: the mapping is n * 4 bytes, page-aligned (so 4-byte aligned), and
    // outlives `values`; atomics may be written by other processes at any time.
    let values: &[AtomicU32] = unsafe { std::slice::from_raw_parts(map.as_ptr().cast(), n) };
    let plus_one = |bits: u32| (f32::from_bits(bits) + 1.0).to_bits();
    for value in values {
        if how == "fetch-update" {
            // Retries until no other child wrote the value between our read and write.
            let _ = value
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some(plus_one(bits)));
        } else {
            let old = value.load(Ordering::Relaxed);
            value.store(plus_one(old), Ordering::Relaxed); // may overwrite another's +1
        }
    }
    Ok(())
}
