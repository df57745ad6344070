//! Exercise "MAP_SHARED or MAP_PRIVATE" (docs/exercises/shm.md): the `anonymous`
//! scene of examples-shm with one flag changed.
//!
//! An anonymous mapping made before `fork` is inherited by the child. With
//! MAP_SHARED (the default here, ctype `RawArray`'s way) both processes use the same
//! physical pages, and the child's 2.0s are the parent's. With `--private`
//! (MAP_PRIVATE, which is also what memmap2's `map_anon` makes) the mapping is
//! copy-on-write, like ordinary memory after fork: the child's writes land in page
//! copies of its own, and the parent still sees 1.0.
//!
//! `cargo run -p exercises --example shm_private_anonymous -- --private`

use std::io::Write;
use std::num::NonZeroUsize;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

/// A forked child writes 2.0 into an anonymous mapping; does the parent see it?
#[derive(Parser)]
struct Cli {
    /// Number of f64 values [default: 1000000, 8 MB]
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..))]
    n: u32,
    /// Map with MAP_PRIVATE instead of MAP_SHARED
    #[arg(long)]
    private: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let n = cli.n as usize;
    let (flags, name) = if cli.private {
        (MapFlags::MAP_PRIVATE, "MAP_PRIVATE")
    } else {
        (MapFlags::MAP_SHARED, "MAP_SHARED")
    };
    let length = NonZeroUsize::new(n * 8).expect("n is at least 1");
    // SAFETY: a new anonymous mapping, placed by the kernel where nothing else lives.
    let memory = unsafe {
        mmap_anonymous(None, length, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, flags)
    }
    .context("mmap failed")?;
    let values = memory.as_ptr().cast::<f64>();
    // SAFETY: the mapping holds n f64 (page-aligned, so aligned for f64) and nobody
    // else uses it yet; the slice ends before the fork.
    unsafe { std::slice::from_raw_parts_mut(values, n) }.fill(1.0);
    println!("parent: an anonymous {name} mapping of {n} f64, filled with 1.0; forking");

    std::io::stdout().flush()?;
    // SAFETY: this process has one thread, so the child inherits no lock held by a
    // thread it does not have; the child writes, prints and leaves through `exit`.
    match unsafe { fork() }.context("fork failed")? {
        ForkResult::Child => {
            // SAFETY: the parent only waits while we write; this is the only slice.
            unsafe { std::slice::from_raw_parts_mut(values, n) }.fill(2.0);
            println!("child: wrote 2.0 into all {n} values of the inherited mapping");
            let _ = std::io::stdout().flush();
            std::process::exit(0);
        }
        ForkResult::Parent { child } => match waitpid(child, None)? {
            WaitStatus::Exited(_, 0) => {}
            other => bail!("the child process failed: {other:?}"),
        },
    }
    // SAFETY: the child has exited; nobody else writes the mapping any more.
    let seen = unsafe { std::slice::from_raw_parts(values, n) };
    let twos = seen.iter().filter(|&&x| x == 2.0).count();
    println!("parent: {twos} of {n} values are 2.0; the first is {}", seen[0]);
    if cli.private {
        ensure!(twos == 0, "expected the parent to keep its 1.0s under MAP_PRIVATE");
        println!(
            "verdict: {name}: the parent still sees 1.0 everywhere; the child wrote to copies of the pages"
        );
    } else {
        ensure!(twos == n, "expected the child's 2.0 in every value under MAP_SHARED");
        println!(
            "verdict: {name}: the parent sees the child's 2.0 in all {n} values; one set of pages, two processes"
        );
    }
    // SAFETY: `seen` is not used after this point; the mapping is ours to remove.
    unsafe { munmap(memory, n * 8) }?;
    Ok(())
}
