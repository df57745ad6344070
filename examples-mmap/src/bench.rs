//! `examples-mmap bench`: the tutorial "Fastest Way To Share NumPy Array Between
//! Processes", measured for the memory-mapped file.
//!
//! Each method creates n float64 ones, shares them with one new child process that
//! checks the length, and waits for it; the clock covers all of it. The rows, in
//! order:
//!
//! - `floor`: `plumbing::arrays::ones(n)` in one process, no child: ordinary memory,
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
//! msync would write 800 MB to the disk and doubled the time here (docs/deeper/mmap.md).
//!
//! The file lives in the temporary directory ($TMPDIR, else /tmp), and that choice
//! is the largest lever of all. Measured here (docs/deeper/mmap.md, "The benchmark"): /tmp is
//! on ext4, which on this kernel caches a file in large folios that the kernel maps
//! with 2 MiB page-table entries, while /dev/shm (tmpfs, shmem huge pages `never`)
//! hands out 4 KiB pages: `floor-mmap` took 0.56 to 0.60 s there, 0.22 s on ext4.
//! The other two levers, used in both `floor-mmap` and `mmap`, are in
//! [`file::create`], which the scenes use too: blocks reserved with fallocate (0.04 s
//! less per run than numpy's sparse file, whose blocks ext4 reserves one at a time as
//! the fill first writes each page), and MADV_HUGEPAGE (0.015 s less: the page cache
//! starts with 2 MiB folios at once).

use anyhow::{Result, ensure};
use bench_protocol::{self as bench, DEFAULT_N};
use plumbing::Made;
use plumbing::{Process, memory};

use crate::{Task, file};

/// The bench's rows, in the order they are printed.
pub const METHODS: [&str; 3] = ["floor", "floor-mmap", "mmap"];

/// `bench`: every method, each run in a fresh process (`bench-run <method>`). `given`
/// says which of the scenes' flags were given (--path, --children, --child-cmd,
/// --pause): bench measures the tutorial's method as it is, and refuses them.
pub fn run(n: Option<u64>, args: &bench::BenchArgs, given: [bool; 4]) -> Result<()> {
    bench::refuse_scene_flags(&[
        ("--path (set TMPDIR to choose where bench's file lives)", given[0]),
        ("--children", given[1]),
        ("--child-cmd", given[2]),
        ("--pause", given[3]),
    ])?;
    let n = n.unwrap_or(DEFAULT_N);
    array_len(n)?; // refuse an impossible size once, before any run
    bench::run_methods(&METHODS, n, args)
}

/// `bench-run <method>`: one timed run, in this fresh process.
pub fn run_once(method: &str, n: Option<u64>) -> Result<()> {
    let n = array_len(n.unwrap_or(DEFAULT_N))?;
    ensure!(
        METHODS.contains(&method),
        "unknown bench method {method:?}; the methods are {METHODS:?}"
    );
    bench::time_one_run(|| {
        if method == "floor" {
            return bench::floor(n);
        }
        // Python's tempfile.TemporaryDirectory(), inside the clock as in Python.
        // Every early return below drops `scratch`, which removes the directory and
        // the file: nothing is left behind by a failed run either.
        let (dir, scratch) = Made::scratch_dir("examples-mmap-bench-")?;
        let path = dir.join("data.f64");
        // numpy's memmap(path, dtype='float64', mode='w+', shape=(n,)); fill(1.0)
        let map = file::create(&path, n, 1.0f64)?;
        match method {
            "mmap" => {
                Process::new(Task::Bench { file: path.clone(), len: n }).start()?.join()?;
            }
            _ => check_length(map.len() / size_of::<f64>(), n)?, // floor-mmap
        }
        drop(map);
        scratch.remove().map(drop)
    })
}

/// The child of `mmap` (`Task::Bench`): the tutorial's `task(filename, n)`, numpy's
/// `memmap(filename, mode='r+', shape=(n,))` and a look at its shape. It maps the file
/// without touching a value, so no page is faulted in: the child stays small.
pub fn child(path: &std::path::Path, n: usize) -> Result<()> {
    let (_file, map) = file::open::<f64>(path, n)?;
    check_length(map.len() / size_of::<f64>(), n)?;
    drop(map);
    bench::report_child_peak(plumbing::memory::peak());
    Ok(())
}

fn check_length(found: usize, n: usize) -> Result<()> {
    ensure!(found == n, "expected {n} values but found {found}");
    Ok(())
}

/// n f64 for the file, refused with a clear message, before any run, if they do not
/// fit in the address space, in memory (the whole file lives in the page cache), or
/// in the file system of the runs' scratch directories (one is made to look).
fn array_len(n: u64) -> Result<usize> {
    let len = memory::array_len(n, Some(n), size_of::<f64>(), 1, "")?;
    let (scratch, _made) = Made::scratch_dir("examples-mmap-bench-")?;
    // Named by the directory it is in (TMPDIR): the scratch directory goes at once.
    let dir = scratch.parent().unwrap_or(&scratch);
    crate::place::check_disk(n, (len * size_of::<f64>()) as u64, dir, 0)?;
    Ok(len)
}
