//! `examples-shm bench`: the tutorial "Fastest Way To Share NumPy Array Between
//! Processes", measured for this program's three methods.
//!
//! Each method creates n f64 ones, shares them with one new child process that
//! checks the length, and waits for it. The rows, in order:
//!
//! - `floor`: `plumbing::arrays::ones(n)` in one process, no child: an ordinary
//!   array, in huge pages where the kernel allows (as numpy's `ones`).
//! - `floor-named-shm`, `floor-anonymous`: the same kind of memory as the method
//!   of that name, created and filled in one process, no child. Shared memory is
//!   a different kind of memory (tmpfs pages, see below), so each sharing method
//!   is judged against its own floor: the difference is the cost of sharing.
//! - `named-shm` (Python's `SharedMemory`): a named segment, filled with ones; a
//!   spawned child opens it by name; the parent waits, then unlinks the name.
//! - `anonymous` (`RawArray`): a MAP_SHARED anonymous mapping filled in place;
//!   a forked child inherits it.
//! - `copy-in` (`Array`): an existing ordinary array copied into a fresh shared
//!   mapping, then the same forked child. The original is still held while the
//!   child runs, as in Python: this method holds two arrays at its peak.
//!
//! The levers, measured on this machine (docs/deeper/shm.md, "The benchmark"):
//! - The named segment is filled by writing through its file
//!   ([`NamedSegment::create_filled`]): the kernel then does not zero each page
//!   before we overwrite it. This is 40% less work than a fill through the mapping,
//!   with or without MADV_POPULATE_WRITE (which the `named` scene uses).
//! - Huge pages are no lever for shared memory here: shared anonymous mappings
//!   and /dev/shm are tmpfs, and /sys/kernel/mm/transparent_hugepage/shmem_enabled
//!   says `never`, so MADV_HUGEPAGE changes nothing (ShmemPmdMapped stays 0) and
//!   the bench does not ask for it. Only `floor` and copy-in's original array,
//!   ordinary memory, get huge pages.

use anyhow::{Context, Result, bail};
use bench_protocol::{self as bench, DEFAULT_N};
use plumbing::PauseArg;
use plumbing::{Process, memory};

use crate::Task;
use crate::mapping::{Mapped, SharedMapping, view_mut};
use crate::scenes::named::Named;
use crate::segment::{self, NamedSegment};

/// The bench's rows, in the order they are printed.
pub const METHODS: [&str; 6] =
    ["floor", "floor-named-shm", "floor-anonymous", "named-shm", "anonymous", "copy-in"];

/// `bench`: every method, each run in a fresh process (`bench-run <method>`). The
/// named scene's flags and `--pause` are refused: bench measures the tutorial's way.
pub fn run(n: Option<u64>, args: &bench::BenchArgs, named: &Named, pause: PauseArg) -> Result<()> {
    bench::refuse_scene_flags(&[
        ("--name", named.name.is_some()),
        ("--keep", named.keep),
        ("--replace", named.replace),
        ("--child-cmd", named.cmd.is_some()),
        ("--pause", pause.pause),
    ])?;
    let n = n.unwrap_or(DEFAULT_N);
    // Refuse an impossible size once, before any run: copy-in needs two arrays.
    array_size(n, 2)?;
    bench::run_methods(&METHODS, n, args)
}

/// `bench-run <method>`: one timed run, in this fresh process.
pub fn run_once(method: &str, n: Option<u64>) -> Result<()> {
    let arrays = if method == "copy-in" { 2 } else { 1 };
    let (n, bytes) = array_size(n.unwrap_or(DEFAULT_N), arrays)?;
    bench::time_one_run(|| match method {
        "floor" => bench::floor(n),
        "floor-named-shm" => {
            let segment = segment_of_ones(bytes)?;
            check_length(length(&segment), n)
            // `segment` drops here: the name is unlinked, the pages freed.
        }
        "floor-anonymous" => check_length(length(&mapping_of_ones(n, bytes)?), n),
        "named-shm" => named_shm(n, bytes),
        "anonymous" => {
            let shared = mapping_of_ones(n, bytes)?;
            fork_and_wait(|| check_length(length(&shared), n))
        }
        "copy-in" => copy_in(n, bytes),
        other => bail!("unknown bench method {other:?}; the methods are {METHODS:?}"),
    })
}

/// n f64 as (n, bytes), refused before anything is made if `arrays` of them do not
/// fit in memory.
fn array_size(n: u64, arrays: u64) -> Result<(usize, usize)> {
    let len = memory::array_len(
        n,
        Some(n),
        size_of::<f64>(),
        arrays,
        "the original and the shared copy",
    )?;
    Ok((len, len * size_of::<f64>()))
}

/// A new named segment holding n ones, written through its file (the lever).
fn segment_of_ones(bytes: usize) -> Result<NamedSegment> {
    NamedSegment::create_filled(&crate::names::fresh_name("exshm-bench"), bytes, 1.0)
}

/// A new shared anonymous mapping, filled with ones in place, as in the scene.
fn mapping_of_ones(n: usize, bytes: usize) -> Result<SharedMapping> {
    let shared = SharedMapping::new(bytes)?;
    // SAFETY: a fresh read-write mapping of `bytes` bytes that no other process
    // has yet (no child exists); the view is dropped at the end of the statement.
    unsafe { view_mut(&shared, n) }?.fill(1.0);
    Ok(shared)
}

fn named_shm(n: usize, bytes: usize) -> Result<()> {
    let segment = segment_of_ones(bytes)?;
    Process::new(Task::Bench { segment: segment.name().into(), len: n }).start()?.join()?;
    // An error above returns early and drops the segment there: the name goes
    // on every path, and Ctrl-C removes it through the cleanup registry.
    drop(segment);
    Ok(())
}

/// The spawned child of `named-shm` (`Task::Bench`). It knows only the name and n.
pub fn child(name: &str, n: usize) -> Result<()> {
    let shmem = segment::open(name)?;
    check_length(length(&shmem), n)?;
    bench::report_child_peak(plumbing::memory::peak());
    Ok(())
}

fn copy_in(n: usize, bytes: usize) -> Result<()> {
    let original = plumbing::arrays::ones(n);
    // The extra step: a second array's worth of shared pages, and one memcpy.
    let shared = SharedMapping::new(bytes)?;
    {
        // SAFETY: a fresh read-write mapping of `bytes` bytes, no child yet; the
        // view ends with this block, before the fork.
        let mut copy = unsafe { view_mut(&shared, n) }?;
        copy.as_slice_mut()
            .context("a fresh mapping is one contiguous slice")?
            .copy_from_slice(&original);
    }
    fork_and_wait(|| check_length(length(&shared), n))?;
    // Held until here on purpose: the array being shared usually stays in use.
    drop(original);
    Ok(())
}

/// Fork a child that runs `check` (it only reads a length), and wait for it.
fn fork_and_wait(check: impl FnOnce() -> Result<()>) -> Result<()> {
    // SAFETY: a bench run starts no thread of its own; see plumbing::fork.
    let child = unsafe {
        plumbing::fork(|| {
            check()?;
            bench::report_child_peak(plumbing::memory::peak());
            Ok(())
        })
    }?;
    child.join()?;
    Ok(())
}

/// How many f64 values the memory holds: the length the child reads.
fn length(memory: &impl Mapped) -> usize {
    memory.bytes() / size_of::<f64>()
}

fn check_length(found: usize, n: usize) -> Result<()> {
    if found != n {
        bail!("expected {n} values but found {found}");
    }
    Ok(())
}
