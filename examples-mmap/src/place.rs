//! Where the shared file lives, and why no other run touches it meanwhile.
//!
//! By default it is `data.f32` in a fresh directory that only this user can enter,
//! removed at the end (on Ctrl-C too, and by the watchdog after a SIGKILL). With
//! `--path` it is the user's file, kept, and this run's alone while the run lasts:
//!
//! - Only a regular file or a new name is taken. Opening a FIFO waits until someone
//!   reads it; a device or a directory holds no array; a symbolic link would be
//!   followed to wherever it points (a dangling one would create a file there). So
//!   the name is looked at first (lstat), then opened without following a link and
//!   without waiting (O_NOFOLLOW | O_NONBLOCK), and what was opened is looked at
//!   again (fstat): the name may have changed in between.
//! - The file is locked (flock) until the run ends. A second run on the same path
//!   is refused: it would cut the file short under the first run's mapping, and the
//!   first would die of SIGBUS at its next look. The lock is advisory (it stops our
//!   runs, not other programs), and the kernel drops it however the process ends.
//! - A file this run created is removed if the run fails or is interrupted, and the
//!   user's once the run has succeeded.

use std::fs::{File, Metadata, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::libc;
use nix::sys::statvfs::statvfs;
use plumbing::Made;
use plumbing::{memory, show::size};

use crate::file::OWNER_ONLY;

/// Where the shared file lives, for the whole run.
pub struct Place {
    pub path: PathBuf,
    /// `--path`: the file is the user's, kept after the run.
    pub keep: bool,
    /// What this run made: the scratch directory, or the `--path` file if it was new.
    made: Option<Made>,
    /// The `--path` file, open and locked until the run ends.
    _locked: Option<Flock<File>>,
}

impl Place {
    pub fn choose(path: Option<PathBuf>) -> Result<Place> {
        let Some(path) = path else {
            let (dir, scratch) = Made::scratch_dir("examples-mmap-")?;
            let path = dir.join("data.f32");
            return Ok(Place { path, keep: false, made: Some(scratch), _locked: None });
        };
        let (locked, made) = claim(&path)?;
        Ok(Place { path, keep: true, made, _locked: Some(locked) })
    }

    /// The run went well: a `--path` file it created is the user's from now on.
    pub fn hand_over(&mut self) {
        if let Some(made) = self.made.take().filter(|_| self.keep) {
            made.keep();
        }
    }

    /// Fail early, with a clear message, if n f32 do not fit on the disk or in
    /// memory (the whole file lives in the page cache; a private mapping needs
    /// memory for its copies too).
    pub fn check_room(&self, n: u64, private_copies: u64) -> Result<()> {
        let bytes = memory::array_len(n, Some(n), size_of::<f32>(), 0, "")? * size_of::<f32>();
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        // The scratch directory is gone by the time anyone reads the message: name
        // the directory it was made in (TMPDIR), which is on the same disk.
        let dir = if self.keep { dir } else { dir.parent().unwrap_or(dir) };
        let overwritten = std::fs::metadata(&self.path).map_or(0, |meta| meta.len());
        check_disk(n, bytes as u64, dir, overwritten)?;
        let holders = "the file's and the private copies";
        memory::array_len(n, Some(n), size_of::<f32>(), 1 + private_copies, holders).map(drop)
    }
}

/// Refuses a file of `bytes` that the file system holding `dir` has no room for
/// (`reusable` bytes, of a file about to be overwritten, count as free): a full
/// disk would otherwise be a SIGBUS at the first write of a page.
pub fn check_disk(n: u64, bytes: u64, dir: &Path, reusable: u64) -> Result<()> {
    let disk =
        statvfs(dir).with_context(|| format!("cannot use the directory {}", dir.display()))?;
    let free = disk.blocks_available() * disk.fragment_size() + reusable;
    let (needed, free_size, dir) = (size(bytes), size(free), dir.display());
    ensure!(
        bytes <= free,
        "--n {n} needs a file of {needed}, but only {free_size} are free in {dir}"
    );
    Ok(())
}

/// Opens and locks the `--path` file for this run (see the module's documentation);
/// a new one is made and registered, to be removed unless the run succeeds.
fn claim(path: &Path) -> Result<(Flock<File>, Option<Made>)> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) => refuse_unless_file(path, &meta)?,
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot create {shown}")),
    }
    let open = |new: bool| {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(new).mode(OWNER_ONLY);
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)
    };
    let (file, made) = match open(false) {
        Ok(file) => (file, None),
        Err(err) if err.kind() == ErrorKind::NotFound => {
            let (file, made) = Made::by(false, path, || Ok(open(true)?))
                .with_context(|| format!("cannot create {shown}"))?;
            (file, Some(made))
        }
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => {
            bail!("cannot use {shown}: it is a symbolic link, not a regular file")
        }
        Err(err) => return Err(err).with_context(|| format!("cannot open {shown}")),
    };
    refuse_unless_file(path, &file.metadata()?)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => Ok((locked, made)),
        Err((_, Errno::EWOULDBLOCK)) => {
            // Made by us a moment ago, but another run holds it now: it is that run's.
            if let Some(made) = made {
                made.keep();
            }
            bail!("{shown} is in use by another run; choose another --path")
        }
        Err((_, err)) => Err(err).with_context(|| format!("cannot lock {shown}")),
    }
}

fn refuse_unless_file(path: &Path, meta: &Metadata) -> Result<()> {
    let kind = meta.file_type();
    let what = match () {
        _ if kind.is_file() => return Ok(()),
        _ if kind.is_dir() => "a directory",
        _ if kind.is_symlink() => "a symbolic link",
        _ if kind.is_fifo() => "a FIFO (a named pipe)",
        _ if kind.is_char_device() || kind.is_block_device() => "a device",
        _ => "a socket",
    };
    bail!("cannot use {}: it is {what}, not a regular file", path.display())
}
