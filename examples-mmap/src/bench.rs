//! `examples-mmap bench`: the tutorial "Fastest Way To Share NumPy Array Between
//! Processes", measured for the memory-mapped file.
//!
//! Each method creates n float64 ones, shares them with one new child process that
//! checks the length, and waits for it; the clock covers all of it. The rows, in
//! order:
//!
//! - `floor`: `bench_protocol::ones(n)` in one process, no child: ordinary memory,
//!   in huge pages where the kernel allows (as numpy's `ones`).
//! - `floor-mmap`: the memory this method uses, made in one process with no child:
//!   a file of n f64 in a fresh private directory, mapped shared, filled with ones,
//!   unmapped, removed. The pages of a file are page-cache pages, not ordinary
//!   memory, so `mmap` is judged against this floor: the difference is the sharing.
//! - `mmap`: the tutorial's method, in f64 like every other row. The parent makes
//!   the file the same way, then starts a child (spawn style: this program again)
//!   that opens and maps the file by its name and checks it holds n values. The
//!   parent waits for it, unmaps and removes the file.
//!
//! No flush: the tutorial's benchmark fills the array and starts the child without
//! `flush()`, and the child does not need one (both map the same page-cache pages).
//! msync would write 800 MB to the disk and doubled the time here (docs/mmap.md).
//!
//! The file lives in the temporary directory ($TMPDIR, else /tmp), and that choice
//! is the largest lever of all. Measured here (docs/mmap.md, "Benchmark"): /tmp is
//! on ext4, which on this kernel caches a file in large folios that the kernel maps
//! with 2 MiB page-table entries, while /dev/shm (tmpfs, shmem huge pages `never`)
//! hands out 4 KiB pages: `floor-mmap` took 0.56 to 0.60 s there, 0.22 s on ext4.
//! The other two levers, used in both `floor-mmap` and `mmap`, are in
//! [`create_ones`]: blocks reserved with fallocate, and MADV_HUGEPAGE.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use clap::ValueEnum;
use memmap2::{MmapOptions, MmapRaw};
use nix::errno::Errno;
use nix::fcntl::{FallocateFlags, fallocate};

use crate::file::human;
use crate::processes::{self, Supervisor, fail_on_purpose_if_asked};

/// The bench's rows, in the order they are printed.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Floor,
    FloorMmap,
    Mmap,
}

/// `bench`: every method, each run in a fresh process (`bench-run <method>`).
pub fn run(n: Option<u64>, repeats: u32) -> Result<()> {
    let n = n.unwrap_or(bench_protocol::DEFAULT_N);
    array_bytes(n)?; // refuse an impossible size once, before any run
    let names: Vec<String> = Method::value_variants()
        .iter()
        .filter_map(|method| Some(method.to_possible_value()?.get_name().to_owned()))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    bench_protocol::run_methods(&names, n, repeats)
}

/// `bench-run <method>`: one timed run, in this fresh process.
pub fn run_once(method: Method, n: Option<u64>) -> Result<()> {
    let n = n.unwrap_or(bench_protocol::DEFAULT_N);
    let n = array_bytes(n)? / size_of::<f64>();
    if method == Method::Floor {
        return bench_protocol::time_one_run(|| {
            check_length(std::hint::black_box(bench_protocol::ones(n)).len(), n)
        });
    }
    // Not part of the method: from here on, Ctrl-C or SIGTERM kills the child and
    // removes the scratch directory before this process exits (processes.rs).
    let supervisor = Supervisor::start()?;
    bench_protocol::time_one_run(|| {
        // Python's tempfile.TemporaryDirectory(), inside the clock as in Python.
        // Every early return below drops `scratch`, which removes the directory and
        // the file: nothing is left behind by a failed run either.
        let scratch = scratch_dir(&supervisor)?;
        let path = scratch.path().join("data.f64");
        let map = create_ones(&path, n)?;
        match method {
            Method::Mmap => {
                supervisor.run_children(vec![child_command(&path, n)?])?;
            }
            _ => check_length(map.len() / size_of::<f64>(), n)?,
        }
        drop(map);
        scratch.close().context("cannot remove the temporary directory")
    })
}

/// A fresh directory only this user can enter, in $TMPDIR (else /tmp).
fn scratch_dir(supervisor: &Supervisor) -> Result<tempfile::TempDir> {
    let scratch = tempfile::Builder::new()
        .prefix("examples-mmap-bench-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .with_context(|| {
            let tmp = std::env::temp_dir();
            format!("cannot create a temporary directory in {}", tmp.display())
        })?;
    supervisor.remove_on_signal(scratch.path());
    Ok(scratch)
}

/// numpy's `memmap(path, dtype='float64', mode='w+', shape=(n,))` then `fill(1.0)`,
/// with two levers numpy does not pull.
fn create_ones(path: &Path, n: usize) -> Result<MmapRaw> {
    let bytes = n * size_of::<f64>(); // array_bytes checked it fits
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    reserve(&file, bytes)
        .with_context(|| format!("cannot make {} {} long", path.display(), human(bytes as u64)))?;
    let map = MmapOptions::new().len(bytes).map_raw(&file).context("cannot map the file")?;
    ensure!(map.as_ptr().cast::<f64>().is_aligned(), "the mapping is not aligned for f64");
    // Lever: ask for 2 MiB pages before the first touch. ext4 gives large folios
    // even unasked (740 of 800 MB were mapped with 2 MiB entries here); asked, the
    // page cache starts with 2 MiB folios at once (780 MB), 0.015 s less per run.
    // MADV_POPULATE_WRITE (the lesson's children use it) saved nothing here: with
    // 2 MiB entries there are only about 400 page faults to save.
    bench_protocol::advise_huge_pages(map.as_mut_ptr(), bytes);
    // SAFETY: the mapping holds n aligned f64 (checked above) and outlives the
    // slice, which ends with this statement; no child exists yet, so no other
    // process uses the file.
    unsafe { std::slice::from_raw_parts_mut(map.as_mut_ptr().cast::<f64>(), n) }.fill(1.0);
    Ok(map)
}

/// Give the new, empty file its length. Lever: fallocate reserves its disk blocks
/// in one call. numpy's sparse file (set_len) leaves ext4 to reserve them one 4 KiB
/// block at a time as the fill first writes each page ("delayed allocation"):
/// 0.04 s more per run here. No data is written to the disk either way. Where the
/// file system cannot fallocate, the file is made sparse, as numpy does.
fn reserve(file: &File, bytes: usize) -> Result<()> {
    match fallocate(file, FallocateFlags::empty(), 0, bytes as i64) {
        Ok(()) => Ok(()),
        Err(Errno::EOPNOTSUPP) => Ok(file.set_len(bytes as u64)?),
        Err(err) => Err(err.into()),
    }
}

/// The child, spawn style: this program again, told the file's name and n, like the
/// tutorial's `Process(target=task, args=(filename, n))`.
fn child_command(path: &Path, n: usize) -> Result<std::process::Command> {
    let exe = std::env::current_exe().context("cannot find this program to start a child")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("bench-child")
        .arg(path)
        .arg(std::process::id().to_string())
        .args(["--n", &n.to_string()]);
    Ok(command)
}

/// `bench-child <file> <parent> --n <n>`: the tutorial's `task(filename, n)`, numpy's
/// `memmap(filename, mode='r+', shape=(n,))` and a look at its shape. It maps the file
/// without touching a value, so no page is faulted in: the child stays small.
pub fn child(path: &Path, n: Option<u64>, parent: u32) -> Result<()> {
    processes::become_child(parent)?;
    let n = usize::try_from(n.context("the bench child needs --n")?)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // numpy refuses a file too short for the shape; we also refuse a longer one.
    let found = file.metadata()?.len();
    ensure!(
        found == n as u64 * size_of::<f64>() as u64,
        "{} holds {found} bytes, but {n} f64 values need {}",
        path.display(),
        n * size_of::<f64>()
    );
    let map = MmapOptions::new().map_raw(&file).context("cannot map the file")?;
    fail_on_purpose_if_asked("child");
    check_length(map.len() / size_of::<f64>(), n)?;
    drop(map);
    bench_protocol::report_child_peak();
    std::io::stdout().flush()?;
    Ok(())
}

fn check_length(found: usize, n: usize) -> Result<()> {
    ensure!(found == n, "expected {n} values but found {found}");
    Ok(())
}

/// The file's size for n f64, refused with a clear message, before anything is
/// made, if it does not fit in the address space, in memory (the whole file lives
/// in the page cache), or in the temporary directory's file system.
fn array_bytes(n: u64) -> Result<usize> {
    let bytes = n
        .checked_mul(size_of::<f64>() as u64)
        .filter(|&bytes| bytes <= isize::MAX as u64)
        .with_context(|| format!("--n {n} is too large for this machine's address space"))?;
    if let Some(available) = processes::memory_available() {
        ensure!(
            bytes <= available,
            "--n {n} needs {} of memory, but only {} are available",
            human(bytes),
            human(available)
        );
    }
    let tmp = std::env::temp_dir();
    let disk = nix::sys::statvfs::statvfs(&tmp)
        .with_context(|| format!("cannot use the temporary directory {}", tmp.display()))?;
    let free = disk.blocks_available() * disk.fragment_size();
    ensure!(
        bytes <= free,
        "--n {n} needs a file of {}, but only {} are free in {}",
        human(bytes),
        human(free),
        tmp.display()
    );
    Ok(usize::try_from(bytes)?)
}
