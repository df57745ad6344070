//! The shared file: where it lives, creating it (numpy's mode 'w+'), opening it (mode
//! 'r+'), mapping it, and typed views of the mapping.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use memmap2::{Advice, MmapOptions, MmapRaw};
use ndarray::{ArrayView1, ArrayViewMut1};

use crate::processes::{self, Supervisor};

// We write f32 in the machine's byte order; numpy's 'float32' means little-endian.
#[cfg(not(target_endian = "little"))]
compile_error!("the file format is little-endian f32: build this on a little-endian machine");

/// Where the shared file lives: `data.f32` in a fresh temporary directory that only
/// this user can enter (removed on drop, or by the supervisor on Ctrl-C), or --path.
pub struct Place {
    pub path: PathBuf,
    pub keep: bool,
    _scratch: Option<tempfile::TempDir>,
}

impl Place {
    pub fn choose(path: Option<PathBuf>, supervisor: &Supervisor) -> Result<Place> {
        if let Some(path) = path {
            return Ok(Place { path, keep: true, _scratch: None });
        }
        let scratch = tempfile::Builder::new()
            .prefix("examples-mmap-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .with_context(|| {
                let tmp = std::env::temp_dir();
                format!("cannot create a temporary directory in {}", tmp.display())
            })?;
        supervisor.remove_on_signal(scratch.path());
        let path = scratch.path().join("data.f32");
        Ok(Place { path, keep: false, _scratch: Some(scratch) })
    }

    /// Fail early, with a clear message, if the file cannot be created, or if n values
    /// do not fit on the disk or in memory (the lesson needs the whole file in the page
    /// cache; a private mapping needs memory for its copies too).
    pub fn check_room(&self, n: u64, private_copies: u64) -> Result<()> {
        let bytes = n
            .checked_mul(size_of::<f32>() as u64)
            .filter(|&bytes| bytes <= isize::MAX as u64)
            .with_context(|| format!("--n {n} is too large for this machine's address space"))?;
        // A missing or read-only directory fails here, before anything is written.
        let existed = self.path.exists();
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(OWNER_ONLY)
            .open(&self.path)
            .with_context(|| format!("cannot create {}", self.path.display()))?;
        if !existed {
            std::fs::remove_file(&self.path)?; // the scene creates it again
        }
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let disk = nix::sys::statvfs::statvfs(dir)
            .with_context(|| format!("cannot use the directory {}", dir.display()))?;
        let overwritten = std::fs::metadata(&self.path).map_or(0, |meta| meta.len());
        let free = disk.blocks_available() * disk.fragment_size() + overwritten;
        ensure!(
            bytes <= free,
            "--n {n} needs a file of {}, but only {} are free in {}",
            human(bytes),
            human(free),
            dir.display()
        );
        let needed = bytes.saturating_mul(1 + private_copies);
        if let Some(available) = processes::memory_available() {
            ensure!(
                needed <= available,
                "--n {n} needs {} of memory, but only {} are available",
                human(needed),
                human(available)
            );
        }
        Ok(())
    }
}

/// A new file is readable and writable by its owner only. The default file sits in
/// an owner-only directory anyway; a --path file may be anywhere, and other users
/// have no business reading or changing the array. (The mode applies when the file
/// is created; an existing file keeps the permissions it has.)
const OWNER_ONLY: u32 = 0o600;

/// numpy's mode 'w+': create or overwrite the file, size it for `n` f32 values, map it
/// shared and fill it with `value`.
pub fn create_file(path: &Path, n: usize, value: f32) -> Result<MmapRaw> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(OWNER_ONLY)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.set_len(bytes(n))
        .with_context(|| format!("cannot make {} {} long", path.display(), human(bytes(n))))?;
    let map = map_shared(&file, n)?;
    // SAFETY: no child has been started yet, so no other process uses the file.
    unsafe { view_mut(&map, n) }.fill(value);
    Ok(map)
}

/// numpy's mode 'r+', what a child does: open the existing file read-write (never
/// truncate it: that would erase the parent's values) and map it shared.
pub fn open_shared(path: &Path, n: usize) -> Result<(File, MmapRaw)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    check_length(&file, path, n)?;
    let map = map_shared(&file, n)?;
    // Ask for every page of the mapping, writable, now: one system call instead of a
    // page fault every few pages while adding. With 100 children each mapping 400 MB,
    // this nearly halved the kernel time of a many-children scene here (docs/mmap.md).
    // Kernels before 5.14 refuse the advice; they just fault pages in as they go.
    let _ = map.advise(Advice::PopulateWrite);
    Ok((file, map))
}

/// A shared mapping (MAP_SHARED) of the whole file: every process that maps it sees
/// the same pages of the page cache. MmapRaw hands out raw pointers only, never a
/// reference, so holding it while others write is fine.
fn map_shared(file: &File, n: usize) -> Result<MmapRaw> {
    let map = MmapOptions::new().len(len(n)?).map_raw(file).context("cannot map the file")?;
    ensure!(map.as_ptr().cast::<f32>().is_aligned(), "the mapping is not aligned for f32");
    Ok(map)
}

/// A private mapping (MAP_PRIVATE, numpy's mode 'c'): pages this process writes become
/// its own copies; the file and every other process never see those writes.
pub fn map_private(path: &Path, n: usize) -> Result<memmap2::MmapMut> {
    // Read-only is enough: a private mapping never writes back to the file.
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    check_length(&file, path, n)?;
    // SAFETY: the parent does not write the file while the child maps it (it waits for
    // the child), and no one else knows the file. Until we write a page, it still shows
    // the file's contents; once we write it, it is ours.
    let map = unsafe { MmapOptions::new().len(len(n)?).map_copy(&file) }
        .context("cannot map the file")?;
    ensure!(map.as_ptr().cast::<f32>().is_aligned(), "the mapping is not aligned for f32");
    Ok(map)
}

/// A file shorter than the mapping would kill us with SIGBUS when we touch the missing
/// part; a longer one would not be the array the parent described.
fn check_length(file: &File, path: &Path, n: usize) -> Result<()> {
    let found = file.metadata()?.len();
    ensure!(
        found == bytes(n),
        "{} holds {found} bytes, but {n} f32 values need {}",
        path.display(),
        bytes(n)
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

/// The file's length for n values (check_room has made sure it fits).
pub fn bytes(n: usize) -> u64 {
    n as u64 * size_of::<f32>() as u64
}

fn len(n: usize) -> Result<usize> {
    n.checked_mul(size_of::<f32>()).context("the array does not fit in the address space")
}

pub fn human(bytes: u64) -> String {
    match bytes {
        b if b < 1_000_000 => format!("{b} bytes"),
        b if b < 1_000_000_000 => format!("{:.0} MB", b as f64 / 1e6),
        b => format!("{:.1} GB", b as f64 / 1e9),
    }
}
