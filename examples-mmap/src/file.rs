//! The shared file, this program's `numpy.memmap`: creating it (mode 'w+'), opening
//! it (mode 'r+'), mapping it shared or privately (mode 'c'), typed views of the
//! mapping, and a lock on some of its bytes (the tutorial's `Lock`). Where it lives
//! is place.rs.
//!
//! The file is raw little-endian values with no header, which is exactly what
//! `numpy.memmap(path, dtype='float32', mode='r+', shape=(n,))` reads and writes.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use memmap2::{Advice, MmapOptions, MmapRaw};
use ndarray::{ArrayView1, ArrayViewMut1};
use nix::errno::Errno;
use nix::fcntl::{FallocateFlags, FcntlArg, fallocate, fcntl};
use nix::libc;
use plumbing::show::size;

// We write values in the machine's byte order; numpy's 'float32' means little-endian.
#[cfg(not(target_endian = "little"))]
compile_error!("the file format is little-endian: build this on a little-endian machine");

/// A new file is readable and writable by its owner only: other users have no
/// business reading or changing the array. (An existing file keeps its mode.)
pub const OWNER_ONLY: u32 = 0o600;

/// numpy's mode 'w+': create or overwrite the file, give it room for n values, map
/// it shared and fill it with `value`.
pub fn create<T: Copy>(path: &Path, n: usize, value: T) -> Result<MmapRaw> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(OWNER_ONLY)
        .custom_flags(libc::O_NOFOLLOW) // the name place.rs took, never a link put there
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let bytes = len::<T>(n)?;
    // The disk blocks are reserved now, in one call: a disk that fills up later can
    // no longer kill us with SIGBUS when we first write a page. numpy makes a sparse
    // file instead (set_len), our fallback where a file system cannot reserve.
    match fallocate(&file, FallocateFlags::empty(), 0, bytes as i64) {
        Err(Errno::EOPNOTSUPP) => file.set_len(bytes as u64),
        other => other.map_err(Into::into),
    }
    .with_context(|| format!("cannot make {} {} long", path.display(), size(bytes as u64)))?;
    let map = map_shared::<T>(&file, n)?;
    // Large pages where the file system has them: fewer page faults while filling.
    let _ = map.advise(Advice::HugePage);
    // SAFETY: the mapping holds n aligned T (map_shared checked) and outlives the
    // slice, which ends with this statement; no child exists yet, so no other
    // process uses the file.
    unsafe { std::slice::from_raw_parts_mut(map.as_mut_ptr().cast::<T>(), n) }.fill(value);
    Ok(map)
}

/// numpy's mode 'r+', what a child does: open the existing file read-write (never
/// truncate it: that would erase the parent's values) and map it shared.
pub fn open<T>(path: &Path, n: usize) -> Result<(File, MmapRaw)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    check_length::<T>(&file, path, n)?;
    let map = map_shared::<T>(&file, n)?;
    Ok((file, map))
}

/// Asks for every page of the mapping, writable, now: one system call instead of a
/// page fault every few pages, for a child about to write every value. It nearly
/// halved the many-children scenes' kernel time while the file was sparse; now that
/// `create` allocates the file and advises huge pages, it makes no measurable
/// difference here (docs/deeper/mmap.md). It costs one system call.
pub fn populate(map: &MmapRaw) -> Result<()> {
    match map.advise(Advice::PopulateWrite) {
        // EINVAL: a kernel before 5.14 without this advice; pages then come one by one.
        Err(err) if err.raw_os_error() != Some(libc::EINVAL) => {
            Err(err).context("cannot bring the file's pages into memory")
        }
        _ => Ok(()),
    }
}

/// A shared mapping (MAP_SHARED) of the whole file: every process that maps it sees
/// the same pages of the page cache. MmapRaw hands out raw pointers only, never a
/// reference, so holding it while others write is fine.
fn map_shared<T>(file: &File, n: usize) -> Result<MmapRaw> {
    let map = MmapOptions::new().len(len::<T>(n)?).map_raw(file).context("cannot map the file")?;
    ensure!(map.as_ptr().cast::<T>().is_aligned(), "the mapping is not aligned");
    Ok(map)
}

/// A private mapping (MAP_PRIVATE, numpy's mode 'c'): pages this process writes become
/// its own copies; the file and every other process never see those writes.
pub fn map_private(path: &Path, n: usize) -> Result<memmap2::MmapMut> {
    // Read-only is enough: a private mapping never writes back to the file.
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    check_length::<f32>(&file, path, n)?;
    // SAFETY: the parent does not write the file while the child maps it (it waits for
    // the child), and no one else knows the file. Until we write a page, it still shows
    // the file's contents; once we write it, it is ours.
    let map = unsafe { MmapOptions::new().len(len::<f32>(n)?).map_copy(&file) }
        .context("cannot map the file")?;
    ensure!(map.as_ptr().cast::<f32>().is_aligned(), "the mapping is not aligned");
    Ok(map)
}

/// A file shorter than the mapping would kill us with SIGBUS when we touch the missing
/// part; a longer one would not be the array the parent described.
fn check_length<T>(file: &File, path: &Path, n: usize) -> Result<()> {
    let found = file.metadata()?.len();
    let expected = len::<T>(n)? as u64;
    let name = std::any::type_name::<T>();
    ensure!(
        found == expected,
        "{} holds {found} bytes, but {n} {name} values need {expected}",
        path.display()
    );
    Ok(())
}

/// A read-only view of the n values of a shared mapping.
///
/// # Safety
/// No other process may write the file while the view lives: memmap2 documents a file
/// that changes under a live reference as undefined behaviour.
pub unsafe fn view(map: &MmapRaw, n: usize) -> ArrayView1<'_, f32> {
    // SAFETY: map_shared checked that the mapping holds n aligned f32 values, and it
    // outlives the view; the caller promises that no other process writes meanwhile.
    unsafe { ArrayView1::from_shape_ptr(n, map.as_ptr().cast::<f32>()) }
}

/// A read-write view of the n values of a shared mapping.
///
/// # Safety
/// As for `view`, and no other view of the same mapping may exist while it lives.
pub unsafe fn view_mut(map: &MmapRaw, n: usize) -> ArrayViewMut1<'_, f32> {
    // SAFETY: as in `view`; the caller promises this is the only view.
    unsafe { ArrayViewMut1::from_shape_ptr(n, map.as_mut_ptr().cast::<f32>()) }
}

/// The file's length for n f32 values (check_room has made sure it fits).
pub fn bytes(n: usize) -> u64 {
    n as u64 * size_of::<f32>() as u64
}

fn len<T>(n: usize) -> Result<usize> {
    n.checked_mul(size_of::<T>()).context("the array does not fit in the address space")
}

/// A lock on the bytes of values `start..start + len` of the file, held until the
/// lock is dropped: the tutorial's `with lock:`, for part of the array.
///
/// It is an open-file-description lock (fcntl F_OFD_SETLKW) on the data file itself:
/// there is no lock object to create or clean up, the kernel drops it when a process
/// dies, and two children can hold locks on different bytes at the same time. Like a
/// mutex, it also orders memory: what one child wrote before unlocking is what the
/// next one reads after locking.
pub struct ValuesLock<'a> {
    file: &'a File,
    range: libc::flock,
}

/// Takes the lock, waiting as long as another process holds any of those bytes.
pub fn lock_values(file: &File, start: usize, len: usize) -> Result<ValuesLock<'_>> {
    let byte = |values: usize| (values * size_of::<f32>()) as libc::off_t;
    let range = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: byte(start),
        l_len: byte(len),
        l_pid: 0, // must be 0 for an open-file-description lock
    };
    fcntl(file, FcntlArg::F_OFD_SETLKW(&range))
        .with_context(|| format!("cannot lock values {start}..{}", start + len))?;
    Ok(ValuesLock { file, range })
}

impl Drop for ValuesLock<'_> {
    fn drop(&mut self) {
        let unlock = libc::flock { l_type: libc::F_UNLCK as libc::c_short, ..self.range };
        let _ = fcntl(self.file, FcntlArg::F_OFD_SETLK(&unlock));
    }
}
