//! A named POSIX shared-memory segment (`/dev/shm/<name>` on Linux) and the rules
//! for removing its name.
//!
//! `shared_memory::Shmem` unlinks the name in `Drop`, and only in the process
//! that created it (the "owner"). That is right for the happy path and wrong for
//! every other one: `process::exit`, a signal or an abort skip `Drop`, and the
//! segment stays in /dev/shm (in RAM) until someone removes it or the machine
//! reboots. `NamedSegment` keeps the owner's `Shmem` and the parent's cleanup
//! registry in step, so that whichever comes first (an early unlink, `Drop`, or
//! the SIGINT/SIGTERM thread) removes the name exactly once.

use std::os::unix::fs::{FileExt, PermissionsExt};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MmapAdvise, madvise, shm_open, shm_unlink};
use nix::sys::stat::Mode;
use shared_memory::{Shmem, ShmemConf, ShmemError};

use crate::cleanup;
use crate::memory::Mapped;

/// macOS refuses POSIX shm names longer than 31 bytes (leading slash included);
/// Linux allows 255. We keep to the portable limit.
const MAX_NAME_LEN: usize = 31;

/// `--name` parser: "exshm-demo" or "/exshm-demo" both become "/exshm-demo".
pub fn parse_name(text: &str) -> Result<String, String> {
    let bare = text.strip_prefix('/').unwrap_or(text);
    if bare.is_empty() || bare == "." || bare == ".." {
        return Err("a segment name needs at least one letter or digit".into());
    }
    if bare.contains('/') {
        return Err("a segment name may not contain '/' (except one leading '/')".into());
    }
    if !bare.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err("use only letters, digits, '.', '_' and '-' in a segment name".into());
    }
    if bare.len() + 1 > MAX_NAME_LEN {
        return Err(format!("a segment name may have at most {} characters", MAX_NAME_LEN - 1));
    }
    Ok(format!("/{bare}"))
}

/// Unique per run (two students on one machine must not collide) and short
/// (macOS allows 31 bytes): "/exshm-<pid>-<8 random hex digits>".
pub fn default_name() -> String {
    fresh_name("exshm")
}

/// "/<prefix>-<pid>-<8 random hex digits>"; the bench uses "exshm-bench", so a
/// segment it ever left behind says where it came from.
pub fn fresh_name(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    // std seeds every RandomState from the OS's random source: enough for a name.
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("/{prefix}-{}-{:08x}", std::process::id(), random as u32)
}

/// The file that represents segment `name` on Linux ("/x" -> "/dev/shm/x").
pub fn dev_shm_path(name: &str) -> String {
    format!("/dev/shm{name}")
}

/// The segment the parent created and owns.
pub struct NamedSegment {
    shmem: Shmem,
    name: String,
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
    /// Why it is faster: a page that is first touched through a mapping is
    /// allocated, zeroed by the kernel, and only then overwritten with our values;
    /// `write` into a tmpfs file allocates each page as it copies a whole page
    /// into it, and skips the zeroing. Measured here for 800 MB: 0.4 s of CPU
    /// time against 0.7 s for `create` plus a fill through the mapping. A full
    /// /dev/shm is still an error (ENOSPC from `write`), never a SIGBUS.
    pub fn create_filled(name: &str, bytes: usize, value: f64) -> Result<Self> {
        let segment = Self::create_unallocated(name, bytes, false)?;
        segment.write_everywhere(value)?;
        Ok(segment)
    }

    /// A segment with its size set but no page allocated: touching a page that
    /// /dev/shm has no room for would be a SIGBUS, so callers allocate right away.
    fn create_unallocated(name: &str, bytes: usize, replace: bool) -> Result<Self> {
        // Hold the registry while the segment comes into existence, so that a
        // Ctrl-C at this moment still finds its name (see cleanup::registry).
        let mut registry = cleanup::registry();
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
        registry.segment = Some(name.to_owned());
        drop(registry);
        Ok(NamedSegment { shmem, name: name.to_owned() })
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
            Err(err) => bail!(
                "cannot allocate {} MB for {} in /dev/shm ({}); see `df -h /dev/shm`",
                self.shmem.len() / 1_000_000,
                self.name,
                err.desc()
            ),
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
            file.write_all_at(&chunk[..len], offset as u64).with_context(|| {
                format!(
                    "cannot fill {} MB of {} in /dev/shm; see `df -h /dev/shm`",
                    bytes / 1_000_000,
                    self.name
                )
            })?;
            offset += len;
        }
        Ok(())
    }

    /// The segment's name, with its leading '/'.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The permission bits of /dev/shm/<name>, to show that they are 0600.
    pub fn mode(&self) -> Result<u32> {
        let path = dev_shm_path(&self.name);
        let metadata = std::fs::metadata(&path).with_context(|| format!("cannot stat {path}"))?;
        Ok(metadata.permissions().mode() & 0o777)
    }

    /// Remove the name now. The memory stays until the last process unmaps it;
    /// only new `open`s by name fail from here on.
    pub fn unlink(&mut self) -> Result<()> {
        let mut registry = cleanup::registry();
        if self.shmem.is_owner() {
            match shm_unlink(self.name.as_str()) {
                // ENOENT: someone else (`rm`, another program) removed it already.
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("cannot unlink {}", self.name));
                }
            }
            // Not the owner any more: `Drop` must not unlink the name a second
            // time, when it might already belong to someone else's new segment.
            self.shmem.set_owner(false);
        }
        registry.segment = None;
        Ok(())
    }

    /// Leave the segment in /dev/shm after this process exits (`--keep`).
    pub fn keep(&mut self) {
        let mut registry = cleanup::registry();
        self.shmem.set_owner(false);
        registry.segment = None;
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

impl Drop for NamedSegment {
    fn drop(&mut self) {
        // An early return with an error lands here: the name goes too.
        // (The `Shmem` field then only unmaps and closes.)
        let _ = self.unlink();
    }
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
