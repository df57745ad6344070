//! The kernel's own account of an array's pages: how many are shared with another
//! process right now, how many are this process's alone, and what kind of mapping
//! they sit in. The answer to "is it really the same memory, or a copy that happens
//! to hold the same values?"
//!
//! `/proc/self/pagemap` has one 64-bit entry per virtual page of this process,
//! readable without privileges: bit 63 says the page is present in memory, bit 56
//! that exactly one process maps it ("exclusively mapped"). A present page that is
//! not exclusive is shared, whatever the mapping's type (the kernel's
//! Documentation/admin-guide/mm/pagemap.rst): two processes after a fork share
//! their pages copy-on-write in a *private* mapping until one writes, while shared
//! memory is shared in a *shared* mapping for good. So the line names the mapping
//! too, from `/proc/self/maps`. Only the array's own pages are counted: never a whole
//! mapping, which may hold other data (small arrays live on the ordinary heap, and
//! the kernel merges neighbouring anonymous mappings).

use std::fs::File;
use std::os::unix::fs::FileExt;

use ndarray::{ArrayBase, Dimension, RawData};

use crate::show::size;

/// Something whose memory can be looked at: an ndarray array or view, or a slice.
pub trait Region {
    /// The first byte and the number of bytes.
    fn region(&self) -> (usize, usize);
}

impl<T> Region for [T] {
    fn region(&self) -> (usize, usize) {
        (self.as_ptr() as usize, size_of_val(self))
    }
}

impl<S: RawData, D: Dimension> Region for ArrayBase<S, D> {
    fn region(&self) -> (usize, usize) {
        // The arrays of the lessons are contiguous, in standard order.
        (self.as_ptr() as usize, self.len() * size_of::<S::Elem>())
    }
}

/// Prints this process's memory line for `array`, for example
/// `child: memory: the array's 80 MB: 80 MB shared, 0 MB private, in a shared mapping`.
///
/// Call it after the process has touched the array: the kernel maps a page into a
/// process only when the process first uses it. In a child started with `--pause`,
/// this is also where the child waits, holding the array, until the parent says go
/// (see [`crate::pause`]).
pub fn show_memory<R: Region + ?Sized>(who: &str, array: &R) {
    let (start, bytes) = array.region();
    show_memory_at(who, start as *const u8, bytes);
}

/// [`show_memory`] for `bytes` of memory at `start`, such as a whole mapping that
/// other processes write (so that no reference to it may exist): only the address
/// is used, to look the pages up.
pub fn show_memory_at(who: &str, start: *const u8, bytes: usize) {
    let start = start as usize;
    println!("{who}: memory: {}", describe(start, bytes));
    crate::pause::hold_here(start);
}

/// "the array's 80 MB: 80 MB shared, 0 MB private, in a shared mapping".
fn describe(start: usize, bytes: usize) -> String {
    if bytes < 1_000_000 {
        return format!("the array's {} are too small to tell (under 1 MB)", size(bytes as u64));
    }
    let Ok(pages) = count(start, bytes) else {
        return "the kernel's page counts cannot be read here (no /proc/self/pagemap)".into();
    };
    let mb = |bytes: u64| (bytes as f64 / 1e6).round();
    let mut line = format!(
        "the array's {}: {} MB shared, {} MB private",
        size(bytes as u64),
        mb(pages.shared),
        mb(pages.private)
    );
    let absent = bytes as u64 - pages.shared - pages.private;
    if absent >= 1_000_000 {
        line.push_str(&format!(", {} MB not in memory", mb(absent)));
    }
    line.push_str(&format!(", {}", kind(start)));
    line
}

/// Bytes of the array in pages that more than one process maps, and in pages only
/// this one maps.
#[derive(Debug, Default, PartialEq)]
pub struct Pages {
    pub shared: u64,
    pub private: u64,
}

/// Reads the pagemap entries of `[start, start + bytes)`, counting each page's
/// bytes that lie inside the array.
pub fn count(start: usize, bytes: usize) -> std::io::Result<Pages> {
    const PRESENT: u64 = 1 << 63;
    const EXCLUSIVE: u64 = 1 << 56;
    let page = page_size();
    let end = start + bytes;
    let (first, last) = (start / page, (end - 1) / page);
    let pagemap = File::open("/proc/self/pagemap")?;
    let mut pages = Pages::default();
    let mut entries = vec![0u8; 8 * 65536];
    let mut index = first;
    while index <= last {
        let count = (last + 1 - index).min(65536);
        let chunk = &mut entries[..8 * count];
        pagemap.read_exact_at(chunk, index as u64 * 8)?;
        for (k, entry) in chunk.chunks_exact(8).enumerate() {
            let entry = u64::from_ne_bytes(entry.try_into().expect("8 bytes"));
            let page_start = (index + k) * page;
            let inside = (page_start + page).min(end) - page_start.max(start);
            match (entry & PRESENT != 0, entry & EXCLUSIVE != 0) {
                (true, true) => pages.private += inside as u64,
                (true, false) => pages.shared += inside as u64,
                (false, _) => {}
            }
        }
        index += count;
    }
    Ok(pages)
}

/// What kind of mapping holds `address`, from /proc/self/maps.
fn kind(address: usize) -> String {
    match mapping_of(std::process::id(), address) {
        Some(mapping) => mapping.kind(),
        None => "in a mapping /proc/self/maps does not show".into(),
    }
}

/// One line of /proc/<pid>/maps.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub start: usize,
    pub end: usize,
    pub shared: bool,
    /// The file behind it, if any ("/dev/zero (deleted)" for shared anonymous memory).
    pub path: Option<String>,
}

impl Mapping {
    /// "in a private (copy-on-write) mapping", "in a shared mapping" or "in the pages
    /// of the file PATH, mapped shared".
    pub fn kind(&self) -> String {
        let file = self.file().map(|path| match path.strip_suffix(" (deleted)") {
            Some(gone) => format!("{gone}, now unlinked"),
            None => path.to_owned(),
        });
        match (self.shared, file) {
            (true, Some(file)) if file.starts_with("/dev/shm/") => {
                format!("in a shared mapping of {file}")
            }
            (true, Some(file)) => format!("in the pages of the file {file}, mapped shared"),
            (true, None) => "in a shared mapping".into(),
            (false, Some(file)) => format!("in a private (copy-on-write) mapping of {file}"),
            (false, None) => "in a private (copy-on-write) mapping".into(),
        }
    }

    /// The file behind the mapping, if it is a file a learner would know: shared
    /// memory without a name shows as the deleted file /dev/zero, which is not.
    pub fn file(&self) -> Option<&str> {
        let path = self.path.as_deref()?;
        (path.starts_with('/') && !path.starts_with("/dev/zero")).then_some(path)
    }
}

/// The mapping of process `pid` that holds `address`.
pub fn mapping_of(pid: u32, address: usize) -> Option<Mapping> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        let shared = fields.next()?.as_bytes().get(3) == Some(&b's');
        // offset, device, inode, then the path (which may hold spaces).
        let path =
            line.splitn(6, char::is_whitespace).nth(5).map(str::trim).filter(|p| !p.is_empty());
        (start..end).contains(&address).then(|| Mapping {
            start,
            end,
            shared,
            path: path.map(str::to_owned),
        })
    })
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |size| size as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_private_array_is_all_private() {
        let array = vec![1.0f64; 5_000_000]; // 40 MB, every page written
        let (start, bytes) = array.region();
        let pages = count(start, bytes).unwrap();
        assert!(pages.private >= 39_000_000, "{pages:?}");
        assert_eq!(pages.shared, 0, "{pages:?}");
        assert!(mapping_of(std::process::id(), start).is_some_and(|m| !m.shared));
    }
}
