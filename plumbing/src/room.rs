//! Refusing an array that cannot fit, before anything is allocated, and measuring
//! what a process used at its peak.
//!
//! A mistyped `--n` must be a clear message, not an out-of-memory kill minutes into
//! a scene, nor a SIGBUS when a full disk or /dev/shm cannot back a page.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use nix::sys::resource::{UsageWho, getrusage};

use crate::show::size;

/// The bytes of an array given by `--n N` with `values` elements of `element` bytes
/// each (`values` is N for a 1-D array, N * N for a 2-D one; None when that count
/// already overflowed). Refused when it cannot exist in this address space.
pub fn array_bytes(n: u64, values: Option<u64>, element: usize) -> Result<usize> {
    values
        .and_then(|values| values.checked_mul(element as u64))
        .filter(|&bytes| bytes <= isize::MAX as u64)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .with_context(|| {
            format!("--n {n} is too large: the array does not fit in the address space")
        })
}

/// The number of values of an array given by `--n N`: [`array_bytes`] and
/// [`check_memory`] in one step, so a typo in `--n` is a clear message before
/// anything is allocated, never an out-of-memory kill.
pub fn array_len(
    n: u64,
    values: Option<u64>,
    element: usize,
    copies: u64,
    holders: &str,
) -> Result<usize> {
    let bytes = array_bytes(n, values, element)?;
    check_memory(n, bytes, copies, holders)?;
    Ok(bytes / element)
}

/// Refuses `copies` arrays of `bytes` each when they do not fit in the memory
/// available now (MemAvailable). `holders` says who holds them, e.g. "the parent's
/// and the child's". Where /proc/meminfo does not exist, it does not refuse.
pub fn check_memory(n: u64, bytes: usize, copies: u64, holders: &str) -> Result<()> {
    let needed = (bytes as u64).saturating_mul(copies);
    let what = match copies {
        1 => String::new(),
        k => format!(" ({k} arrays of {}: {holders})", size(bytes as u64)),
    };
    if let Some(available) = memory_available() {
        ensure!(
            needed <= available,
            "--n {n} needs {}{what}, but only {} of memory is available; choose a smaller --n",
            size(needed),
            size(available)
        );
    }
    Ok(())
}

/// Refuses a file of `bytes` that the file system holding `dir` has no room for;
/// `reusable` bytes (a file about to be overwritten) count as free.
pub fn check_disk(n: u64, bytes: u64, dir: &Path, reusable: u64) -> Result<()> {
    let disk = nix::sys::statvfs::statvfs(dir)
        .with_context(|| format!("cannot use the directory {}", dir.display()))?;
    let free = disk.blocks_available() * disk.fragment_size() + reusable;
    ensure!(
        bytes <= free,
        "--n {n} needs a file of {}, but only {} are free in {}",
        size(bytes),
        size(free),
        dir.display()
    );
    Ok(())
}

/// MemAvailable from /proc/meminfo, in bytes; None where there is no such file.
pub fn memory_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// This process's peak resident memory in bytes: VmHWM from /proc/self/status,
/// which starts afresh at `exec` (getrusage where there is no /proc).
///
/// Not getrusage for a spawned child: Linux carries the resident size of the
/// parent it was forked from into the child's figure, even after `exec`, so a
/// child that holds nothing would seem to hold the parent's array.
pub fn peak() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(|| peak_of(UsageWho::RUSAGE_SELF), |kib| kib * 1024)
}

/// The largest peak resident memory of the children waited for so far, in bytes
/// (getrusage; see [`peak`] for what it overstates).
pub fn children_peak() -> u64 {
    peak_of(UsageWho::RUSAGE_CHILDREN)
}

fn peak_of(who: UsageWho) -> u64 {
    // ru_maxrss is in KiB on Linux.
    getrusage(who).map_or(0, |usage| u64::try_from(usage.max_rss()).unwrap_or(0) * 1024)
}

/// Page faults this process took that needed no disk: for a forked child writing
/// memory it inherited, mostly the kernel copying a shared page (copy-on-write).
pub fn minor_page_faults() -> i64 {
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |usage| usage.minor_page_faults())
}
