//! Exercise "the name outlives the writer" (docs/exercises/shm.md): a named
//! segment keeps its contents after the process that wrote them has exited, for as
//! long as its name exists (or someone still maps it).
//!
//! The parent creates a named segment of ones. Child 1 opens it by name, writes 2.0
//! and exits. Then child 2 opens the same name and reads: it finds the 2.0s. With
//! `--unlink-early` the parent removes the name between the two children: child 2
//! can no longer open it, yet the parent, which still has it mapped, keeps reading
//! the 2.0s. A name is a way to *find* memory; the memory lives while it is mapped.
//!
//! `cargo run -p exercises --example shm_outlives_writer -- --unlink-early`

use std::fs::File;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use memmap2::MmapRaw;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::Mode;

/// Two children, one after the other, open a named segment by its name.
#[derive(Parser)]
struct Cli {
    /// Number of f64 values [default: 1000000, 8 MB]
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..))]
    n: u32,
    /// Unlink the name after the first child, before the second opens it
    #[arg(long)]
    unlink_early: bool,
}

/// Unlinks the segment's name when dropped (if still linked), also on an error.
struct Name {
    name: String,
    linked: bool,
}

impl Name {
    fn unlink(&mut self) -> Result<()> {
        if std::mem::take(&mut self.linked) {
            shm_unlink(self.name.as_str()).context("shm_unlink failed")?;
        }
        Ok(())
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = self.unlink();
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return child(&args[2], &args[3], args[4].parse()?);
    }
    let cli = Cli::parse();
    let n = cli.n as usize;
    let name = format!("/exercise-{}", std::process::id());
    let fd = shm_open(
        name.as_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .context("shm_open failed")?;
    let mut segment = Name { name: name.clone(), linked: true };
    let file = File::from(fd);
    file.set_len(n as u64 * 8)?;
    let map = MmapRaw::map_raw(&file)?;
    let values = map.as_mut_ptr().cast::<f64>();
    // SAFETY: n f64 fit the page-aligned mapping, and no child exists yet.
    unsafe { std::slice::from_raw_parts_mut(values, n) }.fill(1.0);
    println!("parent: created {name} with {n} ones");

    run_child("write", &name, n)?;
    if cli.unlink_early {
        segment.unlink()?;
        println!("parent: unlinked {name}; I still have it mapped");
    }
    run_child("read", &name, n)?;

    // SAFETY: both children have exited; nobody else writes the mapping.
    let seen = unsafe { std::slice::from_raw_parts(values, n) };
    ensure!(seen.iter().all(|&x| x == 2.0), "expected child 1's 2.0 everywhere");
    println!(
        "verdict: the parent's mapping holds child 1's 2.0 in all {n} values, after child 1 exited"
    );
    segment.unlink()?;
    Ok(())
}

fn run_child(job: &str, name: &str, n: usize) -> Result<()> {
    let status = Command::new(std::env::current_exe()?)
        .args(["child", job, name, &n.to_string()])
        .status()
        .context("could not start a child")?;
    ensure!(status.success(), "the child process failed: {status}");
    Ok(())
}

fn child(job: &str, name: &str, n: usize) -> Result<()> {
    let who = if job == "write" { "child 1" } else { "child 2" };
    let fd = match shm_open(name, OFlag::O_RDWR, Mode::empty()) {
        Ok(fd) => fd,
        Err(err) => {
            println!("{who}: cannot open {name}: {err}; the name is gone");
            return Ok(());
        }
    };
    let map = MmapRaw::map_raw(&File::from(fd))?;
    ensure!(map.len() >= n * 8, "the segment is smaller than {n} values");
    let values = map.as_mut_ptr().cast::<f64>();
    if job == "write" {
        // SAFETY: the parent waits for us and reads nothing meanwhile; ours is the only slice.
        unsafe { std::slice::from_raw_parts_mut(values, n) }.fill(2.0);
        println!("{who}: opened {name} by name, wrote 2.0, exiting");
    } else {
        // SAFETY: nobody writes the segment while we read it.
        let seen = unsafe { std::slice::from_raw_parts(values, n) };
        let twos = seen.iter().filter(|&&x| x == 2.0).count();
        println!(
            "{who}: opened {name} by name: {twos} of {n} values are 2.0, written by a process that has exited"
        );
    }
    Ok(())
}
