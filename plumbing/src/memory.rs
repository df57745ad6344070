//! Memory: whether an array fits before it is made, the kernel's own account of its
//! pages once it exists, and a process's peak.
//!
//! The account answers "is it the same memory, or a copy with the same values?".
//! `/proc/self/pagemap` has an entry per page: bit 63 says it is present, bit 56
//! that only this process maps it (the kernel's admin-guide/mm/pagemap.rst). After a
//! fork, pages are shared copy-on-write in a *private* mapping until one side
//! writes; shared memory stays shared in a *shared* mapping: so the line names the
//! mapping too (`/proc/self/maps`). Only the array's own pages are counted.

use std::fs::File;
use std::os::unix::fs::FileExt;

use anyhow::{Context, Result, bail};
use ndarray::{ArrayBase, Dimension, RawData};

use crate::show::size;

/// Something whose memory can be looked at: an ndarray array or view, or a slice.
pub trait Region {
    /// The first byte and the number of bytes.
    fn region(&self) -> (*const u8, usize);
}

impl<T> Region for [T] {
    fn region(&self) -> (*const u8, usize) {
        (self.as_ptr().cast(), size_of_val(self))
    }
}

impl<S: RawData, D: Dimension> Region for ArrayBase<S, D> {
    fn region(&self) -> (*const u8, usize) {
        // The arrays of the lessons are contiguous, in standard order.
        (self.as_ptr().cast(), self.len() * size_of::<S::Elem>())
    }
}

/// Memory other processes write, seen only by its address: `(start, bytes)`.
impl Region for (*const u8, usize) {
    fn region(&self) -> (*const u8, usize) {
        *self
    }
}

/// The number of values of an array given by `--n N` (`values`: N or N * N, None if
/// that overflowed), refused with a clear message before anything is allocated if
/// it cannot exist in this address space, or if `copies` such arrays (held by
/// `holders`) do not fit in the memory available now (0 copies: not checked).
pub fn array_len(
    n: u64,
    values: Option<u64>,
    element: usize,
    copies: u64,
    holders: &str,
) -> Result<usize> {
    let bytes = values
        .and_then(|values| values.checked_mul(element as u64))
        .filter(|&bytes| bytes <= isize::MAX as u64)
        .with_context(|| {
            format!("--n {n} is too large: the array does not fit in the address space")
        })?;
    let what = match copies {
        1 => String::new(),
        k => format!(" ({k} arrays of {}: {holders})", size(bytes)),
    };
    let needed = bytes.saturating_mul(copies);
    if let Some(available) = available().filter(|&available| needed > available) {
        let (needed, available) = (size(needed), size(available));
        bail!(
            "--n {n} needs {needed}{what}, but only {available} of memory is available; choose a smaller --n"
        );
    }
    Ok((bytes / element as u64) as usize)
}

/// MemAvailable from /proc/meminfo, in bytes; None where there is no such file.
pub fn available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// This process's own peak resident memory in bytes: VmHWM, which starts afresh at
/// `exec` (getrusage's RUSAGE_SELF also counts the parent a child copied).
pub fn peak() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"));
    line.and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Prints this process's memory lines for `array`, after it has touched it (a page
/// is mapped at first use): `child: memory: the array's 80 MB: 80 MB shared, 0 MB
/// private,` / `child:   in a shared mapping of /dev/shm/exshm-4711-1a2b3c4d`.
/// Returns how many of the array's pages only this process maps.
pub fn show_memory<R: Region + ?Sized>(who: &str, array: &R) -> u64 {
    let (start, bytes) = array.region();
    let (start, end) = (start as usize, start as usize + bytes);
    let Ok(pages) = count(start, end) else {
        println!("{who}: memory: the kernel's page counts cannot be read here (no pagemap)");
        return 0;
    };
    if bytes < 1_000_000 {
        let too_small = size(bytes as u64);
        println!("{who}: memory: the array's {too_small} are too small to tell (under 1 MB)");
        return pages.private_pages;
    }
    let mb = |bytes: u64| (bytes as f64 / 1e6).round();
    let mut line = format!(
        "{who}: memory: the array's {}: {} MB shared, {} MB private",
        size(bytes as u64),
        mb(pages.shared),
        mb(pages.private)
    );
    let absent = bytes as u64 - pages.shared - pages.private;
    if absent >= 1_000_000 {
        line.push_str(&format!(", {} MB not in memory", mb(absent)));
    }
    let kind = match mappings_of(std::process::id(), start, end).first() {
        Some(mapping) => mapping.kind(pages.shared > 0),
        None => "in a mapping /proc/self/maps does not show".into(),
    };
    println!("{line},\n{who}:   {kind}");
    pages.private_pages
}

/// Bytes of an array in pages that more than one process maps, and in pages only
/// this one maps; and how many pages of the second kind hold some of it.
#[derive(Default)]
struct Pages {
    shared: u64,
    private: u64,
    private_pages: u64,
}

/// Reads the pagemap entries of `[start, end)` (8 bytes a page: 1.6 MB for 800 MB),
/// counting each page's bytes that lie inside it.
fn count(start: usize, end: usize) -> std::io::Result<Pages> {
    const PRESENT: u64 = 1 << 63;
    const EXCLUSIVE: u64 = 1 << 56;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten();
    let page = page.map_or(4096, |size| size as usize);
    let first = start / page;
    let mut entries = vec![0u8; 8 * ((end - 1) / page + 1 - first)];
    File::open("/proc/self/pagemap")?.read_exact_at(&mut entries, first as u64 * 8)?;
    let mut pages = Pages::default();
    for (k, entry) in entries.chunks_exact(8).enumerate() {
        let entry = u64::from_ne_bytes(entry.try_into().expect("8 bytes"));
        let page_start = (first + k) * page;
        let inside = ((page_start + page).min(end) - page_start.max(start)) as u64;
        match (entry & PRESENT != 0, entry & EXCLUSIVE != 0) {
            (true, true) => {
                pages.private += inside;
                pages.private_pages += 1;
            }
            (true, false) => pages.shared += inside,
            (false, _) => {}
        }
    }
    Ok(pages)
}

/// One line of /proc/<pid>/maps.
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    pub start: usize,
    pub end: usize,
    pub shared: bool,
    /// The file behind it, if any ("/dev/zero (deleted)" for shared anonymous memory).
    pub path: Option<String>,
}

impl Mapping {
    /// What kind of memory it is, in the words of the memory line. "Copy-on-write"
    /// only where it applies: a private mapping of a file, or private memory whose
    /// pages a fork shares (`shared_pages`); anything else private is one process's own.
    fn kind(&self, shared_pages: bool) -> String {
        let file = self.path.as_deref().filter(|path| path.starts_with('/'));
        let file = file.filter(|path| !path.starts_with("/dev/zero")).map(|path| {
            path.strip_suffix(" (deleted)")
                .map_or(path.into(), |gone| format!("{gone}, now unlinked"))
        });
        match (self.shared, file, shared_pages) {
            (true, Some(file), _) => format!("in a shared mapping of {file}"),
            (true, None, _) => "in a shared mapping of memory without a name".into(),
            (false, Some(file), _) => format!("in a private (copy-on-write) mapping of {file}"),
            (false, None, true) => "in private memory, shared copy-on-write since a fork".into(),
            (false, None, false) => "in this process's own private memory".into(),
        }
    }
}

/// The mappings of process `pid` that hold any byte of `[start, end)`, in order.
pub(crate) fn mappings_of(pid: u32, start: usize, end: usize) -> Vec<Mapping> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let parse = |line: &str| -> Option<Mapping> {
        let mut fields = line.split_whitespace();
        let (from, to) = fields.next()?.split_once('-')?;
        let (from, to) =
            (usize::from_str_radix(from, 16).ok()?, usize::from_str_radix(to, 16).ok()?);
        let shared = fields.next()?.as_bytes().get(3) == Some(&b's');
        // offset, device, inode, then the path (which may hold spaces).
        let path =
            line.splitn(6, char::is_whitespace).nth(5).map(str::trim).filter(|p| !p.is_empty());
        Some(Mapping { start: from, end: to, shared, path: path.map(str::to_owned) })
    };
    maps.lines().filter_map(parse).filter(|m| m.start < end && start < m.end).collect()
}
