//! A named POSIX shared-memory segment (`/dev/shm/<name>` on Linux) and the rules
//! for removing its name.
//!
//! `shared_memory::Shmem` unlinks the name in `Drop`, and only in the process that
//! created it (the "owner"); a signal or `process::exit` skips `Drop`, and the
//! segment would stay in /dev/shm (in RAM) until removed or the machine reboots.
//! `NamedSegment` keeps the owner's `Shmem` and the plumbing's cleanup registry in
//! step, so that whichever comes first (`close`, `Drop`, or the signal thread on
//! Ctrl-C) removes the name exactly once.

use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MmapAdvise, madvise, shm_open, shm_unlink};
use nix::sys::stat::Mode;
use nix::sys::statvfs::statvfs;
use plumbing::Made;
use plumbing::show::size;
use shared_memory::{Shmem, ShmemConf, ShmemError};

use crate::mapping::Mapped;
use crate::names::{dev_shm_path, keep_instructions};

/// The segment the parent created and owns.
pub struct NamedSegment {
    shmem: Shmem,
    name: String,
    /// Its name as this run made it: removed only while it still holds this segment,
    /// by `unlink`, or when dropped (an early return with an error drops it too).
    made: Option<Made>,
}

impl NamedSegment {
    /// Create a new segment of `bytes` bytes; never reuse an existing one,
    /// unless `replace` says to unlink it first.
    pub fn create(name: &str, bytes: usize, replace: bool) -> Result<Self> {
        let segment = Self::create_unallocated(name, bytes, replace)?;
        segment.populate()?;
        Ok(segment)
    }

    /// Create a new segment of `bytes` bytes holding `value` everywhere, written
    /// through the segment's file instead of through the mapping (the bench's way).
    ///
    /// Why it is faster: a page first touched through a mapping is allocated, zeroed,
    /// then overwritten; `write` into a tmpfs file allocates each page as it copies
    /// into it, with no zeroing. For 800 MB here: 0.4 s of CPU time against 0.7 s.
    /// A full /dev/shm is still an error (ENOSPC from `write`), never a SIGBUS.
    pub fn create_filled(name: &str, bytes: usize, value: f64) -> Result<Self> {
        let segment = Self::create_unallocated(name, bytes, false)?;
        segment.write_everywhere(value)?;
        Ok(segment)
    }

    /// A segment with its size set but no page allocated: touching a page that
    /// /dev/shm has no room for would be a SIGBUS, so callers allocate right away.
    fn create_unallocated(name: &str, bytes: usize, replace: bool) -> Result<Self> {
        check_room(name, bytes, replace)?;
        // Created and registered in one step, so that a Ctrl-C at this moment still
        // finds the name (plumbing::cleanup).
        let file = Path::new("/dev/shm").join(&name[1..]);
        let (mut shmem, made) =
            Made::by(false, &file, || Self::create_shmem(name, bytes, replace))?;
        // shared_memory's own `Drop` would unlink the name without asking whether it is
        // still ours: `made` removes it instead, checking.
        shmem.set_owner(false);
        Ok(NamedSegment { shmem, name: name.to_owned(), made: Some(made) })
    }

    fn create_shmem(name: &str, bytes: usize, replace: bool) -> Result<Shmem> {
        if replace {
            // Unlinking only removes the name: a process that still has the old
            // segment mapped keeps its memory, it just cannot be opened any more.
            match shm_unlink(name) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(err) => return Err(err).with_context(|| format!("cannot remove {name}")),
            }
        }
        // shared_memory creates with O_CREAT | O_EXCL and mode 0600 (its
        // unix.rs): an existing name is an error, never silently shared, and only
        // this user can open the segment (the umask can only remove bits).
        let shmem = match ShmemConf::new().os_id(name).size(bytes).create() {
            Ok(shmem) => shmem,
            Err(ShmemError::MappingIdExists) => bail!(
                "a shared-memory segment named {name} already exists; remove it with \
                 `rm {}` or pass --replace",
                dev_shm_path(name)
            ),
            Err(err) => bail!("cannot create the shared-memory segment {name}: {}", describe(err)),
        };
        Ok(shmem)
    }

    /// Allocate every page now. /dev/shm is a tmpfs with a size limit, and
    /// `ftruncate` happily makes a segment larger than the room left in it: the
    /// first write to a page that does not fit then kills the process with
    /// SIGBUS (leaking the segment). Populating up front turns that into an error.
    fn populate(&self) -> Result<()> {
        let ptr = std::ptr::NonNull::new(self.shmem.as_ptr().cast()).context("null mapping")?;
        // SAFETY: `ptr` and `len()` describe exactly the mapping `shmem` made and
        // still holds; MADV_POPULATE_WRITE only faults pages in (their contents
        // stay zero) and changes no Rust-visible state.
        match unsafe { madvise(ptr, self.shmem.len(), MmapAdvise::MADV_POPULATE_WRITE) } {
            // EINVAL: a kernel older than 5.14 without this advice; go on unchecked.
            Ok(()) | Err(Errno::EINVAL) => Ok(()),
            // A page that /dev/shm has no room for cannot be faulted in (EFAULT): the
            // error a write to it would have been a SIGBUS.
            Err(Errno::EFAULT) => bail!("{}", no_room(&self.name, self.shmem.len())),
            Err(err) => bail!("cannot allocate {} in /dev/shm: {}", self.name, err.desc()),
        }
    }

    /// Write `value` into every 8 bytes of the segment with `pwrite` on a second
    /// descriptor of the same segment (shared_memory keeps its own to itself).
    fn write_everywhere(&self, value: f64) -> Result<()> {
        let fd = shm_open(self.name.as_str(), OFlag::O_WRONLY, Mode::empty())
            .with_context(|| format!("cannot open {} to fill it", self.name))?;
        let file = std::fs::File::from(fd);
        // 1 MiB of values, written again and again: large writes, few system calls.
        let chunk = value.to_ne_bytes().repeat(1 << 17);
        let bytes = self.shmem.len();
        let mut offset = 0;
        while offset < bytes {
            let len = chunk.len().min(bytes - offset);
            file.write_all_at(&chunk[..len], offset as u64).map_err(|err| match err.kind() {
                std::io::ErrorKind::StorageFull => anyhow::anyhow!(no_room(&self.name, bytes)),
                _ => anyhow::Error::new(err).context(format!("cannot fill {}", self.name)),
            })?;
            offset += len;
        }
        Ok(())
    }

    /// The segment's name, with its leading '/'.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Remove the name now. The memory stays until the last process unmaps it;
    /// only new `open`s by name fail from here on. A name that no longer holds this
    /// segment (someone removed it, or another run took it with `--replace`) is left
    /// alone: Ok(false).
    pub fn unlink(&mut self) -> Result<bool> {
        match self.made.take() {
            Some(made) => made.remove(),
            None => Ok(false), // unlinked already
        }
    }

    /// Leave the segment in /dev/shm after this process exits (`--keep`), and say
    /// how to open it from Python. Returns what became of it, for the verdict.
    pub fn keep(mut self, n: usize) -> &'static str {
        if let Some(made) = self.made.take() {
            made.keep();
        }
        keep_instructions(&self.name, n);
        "is kept (--keep)"
    }

    /// Python's `shm.close(); shm.unlink()`: unmap, and remove the name. Returns what
    /// became of it, for the verdict.
    pub fn close(mut self) -> Result<&'static str> {
        let removed = self.unlink()?;
        Ok(if removed { "is gone" } else { "was someone else's by then: left alone" })
    }
}

impl Mapped for NamedSegment {
    fn start(&self) -> *mut u8 {
        self.shmem.as_ptr()
    }
    fn bytes(&self) -> usize {
        self.shmem.len()
    }
}

/// Refuses a segment that /dev/shm (a tmpfs of limited size) has no room for, before
/// it is made; a segment that `replace` removes first counts as room.
fn check_room(name: &str, bytes: usize, replace: bool) -> Result<()> {
    let Ok(fs) = statvfs("/dev/shm") else { return Ok(()) }; // no /dev/shm to ask
    let replaced = std::fs::metadata(dev_shm_path(name)).map_or(0, |meta| meta.len());
    let free = fs.blocks_available() * fs.fragment_size() + if replace { replaced } else { 0 };
    let (needed, free_size) = (size(bytes as u64), size(free));
    ensure!(bytes as u64 <= free, "{name} needs {needed}; /dev/shm has {free_size} free");
    Ok(())
}

/// "no room left in /dev/shm for the 800 MB of /exshm-x"
fn no_room(name: &str, bytes: usize) -> String {
    format!("no room left in /dev/shm for the {} of {name}", size(bytes as u64))
}

/// A child's way in: open an existing segment by name. The child never owns it.
pub fn open(name: &str) -> Result<Shmem> {
    let mut shmem = match ShmemConf::new().os_id(name).open() {
        Ok(shmem) => shmem,
        Err(ShmemError::MapOpenFailed(errno)) if errno == Errno::ENOENT as u32 => {
            bail!("there is no shared-memory segment named {name}")
        }
        Err(err) => bail!("cannot open the shared-memory segment {name}: {}", describe(err)),
    };
    // `open` already makes a non-owner; saying it again documents the rule: only
    // the creator decides when the name goes.
    shmem.set_owner(false);
    Ok(shmem)
}

/// shared_memory reports OS errors as bare numbers; name them.
fn describe(err: ShmemError) -> String {
    match err {
        ShmemError::MapCreateFailed(errno)
        | ShmemError::MapOpenFailed(errno)
        | ShmemError::UnknownOsError(errno) => Errno::from_raw(errno as i32).desc().to_owned(),
        other => other.to_string(),
    }
}
