//! The watchdog: removes what a parent killed with SIGKILL left behind.
//!
//! SIGKILL runs no code in the process it kills, so neither `Drop` nor the cleanup
//! thread can remove that parent's scratch directories and shared-memory segments
//! (its children die with it by their parent-death signal). Python has the same
//! problem, and solves it the same way: its resource tracker is a separate process.
//!
//! Ours is this same program again, started by `exec` the first time the parent
//! registers anything, before that thing exists. It holds nothing of the run: its
//! standard streams are /dev/null (a test or a pipe reading the parent's output sees
//! its end as usual), it closes every descriptor but its control pipe, and it maps
//! no array. It has a session of its own, so Ctrl-C in the terminal does not reach
//! it, and no parent-death signal: it must outlive the parent.
//!
//! The parent tells it, on the control pipe, what it is about to make, what it made
//! (with the device and inode it got), and what it removed itself. The watchdog
//! waits for the parent to end (a pidfd, which no child of the parent can hold open
//! the way a forked child holds a pipe), then removes what is still registered, but
//! only if it is still the very thing the parent made: same device, same inode.
//! Something registered but never confirmed (the parent died between announcing and
//! making it) is removed only if it is ours and was made after the announcement.
//! Then it exits. A parent that ends normally has removed everything already.
//!
//! Its own SIGINT, SIGTERM or SIGHUP end it at once, removing nothing: the parent
//! may still be alive, and owns what is registered.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::unistd::{Pid, getppid, pipe2};

/// The variable that makes a run of this program the watchdog: the control pipe's
/// descriptor and the parent's pid, "fd,pid".
pub const VARIABLE: &str = "EXAMPLES_WATCHDOG";

/// What the watchdog removes: a directory with everything in it, or a file (a
/// shared-memory segment is the file /dev/shm/NAME).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Dir,
    File,
}

/// The parent's end of the control pipe, once the watchdog runs.
static CONTROL: Mutex<Option<File>> = Mutex::new(None);

/// Starts the watchdog (in the parent, once, before the first registration).
pub(crate) fn start() -> Result<()> {
    let (control_read, control_write) = pipe2(OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    let exe = std::env::current_exe().context("cannot find this program")?;
    let raw = control_read.as_raw_fd();
    let mut command = Command::new(exe);
    command
        .env(VARIABLE, format!("{raw},{}", std::process::id()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let setup = move || -> std::io::Result<()> {
        nix::unistd::setsid()?; // no terminal's Ctrl-C reaches it
        // SAFETY: `raw` is open in this child, a copy of the parent's read end.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
        let no_flags = nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty());
        nix::fcntl::fcntl(fd, no_flags)?;
        Ok(())
    };
    // SAFETY: runs in the forked child before `exec`: setsid and one fcntl, both
    // async-signal-safe, nothing allocated.
    unsafe { command.pre_exec(setup) };
    command.spawn().context("cannot start the watchdog")?;
    drop(control_read);
    *CONTROL.lock().unwrap_or_else(|e| e.into_inner()) = Some(File::from(control_write));
    Ok(())
}

/// Tells the watchdog something, if one runs. A watchdog that is gone (killed by
/// someone) is not an error: the run goes on without it.
fn tell(line: &str) {
    if let Some(control) = CONTROL.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        let _ = control.write_all(format!("{line}\n").as_bytes());
    }
}

/// About to make `path`: registered before it exists.
pub(crate) fn announce(kind: Kind, path: &Path) {
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    tell(&format!("announce {kind:?} {} {}", since.as_nanos(), path.display()));
}

/// Made `path`: its device and inode, which the watchdog checks before removing.
pub(crate) fn made(kind: Kind, path: &Path) {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        tell(&format!("made {kind:?} {} {} {}", meta.dev(), meta.ino(), path.display()));
    }
}

/// Removed `path` (or kept it on purpose): not the watchdog's business any more.
pub(crate) fn forget(path: &Path) {
    tell(&format!("forget {}", path.display()));
}

/// In `plumbing::main`: if this process was started as the watchdog, be it.
pub(crate) fn run_if_asked() -> Option<ExitCode> {
    let value = std::env::var(VARIABLE).ok()?;
    let (fd, parent) = value.split_once(',')?;
    let (fd, parent): (i32, i32) = (fd.parse().ok()?, parent.parse().ok()?);
    close_all_but(fd);
    // SAFETY: the parent handed this descriptor over open, and nothing else in this
    // process owns it (every other descriptor was just closed).
    let control = unsafe { OwnedFd::from_raw_fd(fd) };
    watch(control, Pid::from_raw(parent));
    Some(ExitCode::SUCCESS)
}

/// Closes every descriptor from 3 on but `keep`: the watchdog holds nothing of the
/// run (an inherited write end of a data pipe would keep a reader from its end).
fn close_all_but(keep: i32) {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<i32> =
        entries.flatten().filter_map(|entry| entry.file_name().to_str()?.parse().ok()).collect();
    for fd in fds.into_iter().filter(|&fd| fd > 2 && fd != keep) {
        let _ = nix::unistd::close(fd);
    }
}

/// One registered thing.
#[derive(Debug)]
struct Entry {
    kind: Kind,
    announced_at: Duration,
    made: Option<(u64, u64)>,
}

/// The watchdog's life: read what the parent says until the parent is gone, then
/// remove what is left.
fn watch(control: OwnedFd, parent: Pid) {
    let parent_gone = ParentWatch::new(parent);
    let mut registered: BTreeMap<PathBuf, Entry> = BTreeMap::new();
    let mut lines = BufReader::new(File::from(control));
    let mut line = String::new();
    loop {
        // The parent's messages first: whatever it sent before it died counts.
        while parent_gone.readable(&lines) {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => note(&mut registered, line.trim_end()),
            }
        }
        if parent_gone.wait(Duration::from_millis(100), &lines) {
            // Read anything that is still in the pipe, then clean.
            while parent_gone.readable(&lines) {
                line.clear();
                match lines.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => note(&mut registered, line.trim_end()),
                }
            }
            for (path, entry) in &registered {
                remove_if_ours(path, entry);
            }
            return;
        }
    }
}

fn note(registered: &mut BTreeMap<PathBuf, Entry>, line: &str) {
    let kind_of = |word: &str| if word == "Dir" { Kind::Dir } else { Kind::File };
    // The path comes last and may hold spaces: split off only the fields before it.
    let Some((command, rest)) = line.split_once(' ') else { return };
    match command {
        "announce" => {
            let mut fields = rest.splitn(3, ' ');
            let (Some(kind), Some(at), Some(path)) = (fields.next(), fields.next(), fields.next())
            else {
                return;
            };
            let announced_at = Duration::from_nanos(at.parse().unwrap_or(0));
            registered.insert(path.into(), Entry { kind: kind_of(kind), announced_at, made: None });
        }
        "made" => {
            let mut fields = rest.splitn(4, ' ');
            let (Some(kind), Some(dev), Some(ino), Some(path)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return;
            };
            let made = (dev.parse().unwrap_or(0), ino.parse().unwrap_or(0));
            let entry = registered.entry(path.into()).or_insert(Entry {
                kind: kind_of(kind),
                announced_at: Duration::ZERO,
                made: None,
            });
            entry.made = Some(made);
        }
        "forget" => {
            registered.remove(Path::new(rest));
        }
        _ => {}
    }
}

/// Removes `path` only if it still is what the parent made: the same device and
/// inode; or, never confirmed, a thing of this user's made after it was announced.
fn remove_if_ours(path: &Path, entry: &Entry) {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return };
    let ours = match entry.made {
        Some((dev, ino)) => meta.dev() == dev && meta.ino() == ino,
        None => {
            let changed = Duration::new(meta.ctime().max(0) as u64, meta.ctime_nsec() as u32);
            meta.uid() == nix::unistd::Uid::current().as_raw() && changed >= entry.announced_at
        }
    };
    if ours {
        let _ = match entry.kind {
            Kind::Dir => std::fs::remove_dir_all(path),
            Kind::File => std::fs::remove_file(path),
        };
    }
}

/// Knowing when the parent is gone: a pidfd where the kernel has them (5.3 on),
/// else its pid no longer being our parent's.
struct ParentWatch {
    parent: Pid,
    pidfd: Option<OwnedFd>,
}

impl ParentWatch {
    fn new(parent: Pid) -> ParentWatch {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or
        // -1; it touches no memory of ours.
        let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, parent.as_raw(), 0) };
        // SAFETY: a descriptor pidfd_open just returned is ours alone.
        let pidfd = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) });
        ParentWatch { parent, pidfd }
    }

    fn gone(&self) -> bool {
        getppid() != self.parent
    }

    /// Whether the control pipe has something to read right now.
    fn readable(&self, lines: &BufReader<File>) -> bool {
        !lines.buffer().is_empty() || poll_one(lines.get_ref().as_raw_fd(), 0)
    }

    /// Waits up to `limit` for the parent to end or for a message; true once it ended.
    fn wait(&self, limit: Duration, lines: &BufReader<File>) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let control = lines.get_ref();
        let timeout = PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX);
        match &self.pidfd {
            Some(pidfd) => {
                let mut fds = [
                    PollFd::new(std::os::fd::AsFd::as_fd(pidfd), PollFlags::POLLIN),
                    PollFd::new(std::os::fd::AsFd::as_fd(control), PollFlags::POLLIN),
                ];
                let _ = poll(&mut fds, timeout);
                fds[0].revents().is_some_and(|events| !events.is_empty()) || self.gone()
            }
            None => {
                let _ = poll_one(control.as_raw_fd(), limit.as_millis() as u16);
                self.gone()
            }
        }
    }
}

/// Whether `fd` is readable within `millis`.
fn poll_one(fd: i32, millis: u16) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // SAFETY: `fd` is the control pipe, open for as long as the watchdog runs.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(millis)), Ok(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(made: Option<(u64, u64)>, announced_at: Duration) -> Entry {
        Entry { kind: Kind::Dir, announced_at, made }
    }

    fn now() -> Duration {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap()
    }

    #[test]
    fn only_the_very_thing_that_was_made_is_removed() {
        let tmp = std::env::temp_dir().join(format!("wd-test-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let meta = std::fs::metadata(&tmp).unwrap();
        let made = Some((meta.dev(), meta.ino()));
        // Another run took the name since: same path, another inode. Kept.
        std::fs::remove_dir(&tmp).unwrap();
        let other = std::env::temp_dir().join(format!("wd-other-{}", std::process::id()));
        std::fs::create_dir_all(&other).unwrap(); // keeps the old inode from coming back
        std::fs::create_dir_all(&tmp).unwrap();
        remove_if_ours(&tmp, &entry(made, Duration::ZERO));
        assert!(tmp.exists(), "a directory the parent did not make was removed");
        // What the parent made: removed.
        let meta = std::fs::metadata(&tmp).unwrap();
        remove_if_ours(&tmp, &entry(Some((meta.dev(), meta.ino())), Duration::ZERO));
        assert!(!tmp.exists());
        // Never confirmed: removed only if it was made after it was announced.
        std::fs::create_dir_all(&tmp).unwrap();
        remove_if_ours(&tmp, &entry(None, now() + Duration::from_secs(60)));
        assert!(tmp.exists(), "made before the announcement, so not the parent's");
        remove_if_ours(&tmp, &entry(None, now() - Duration::from_secs(60)));
        assert!(!tmp.exists());
        std::fs::remove_dir(&other).unwrap();
    }

    #[test]
    fn messages_register_confirm_and_forget() {
        let mut registered = BTreeMap::new();
        note(&mut registered, "announce Dir 5 /tmp/a b");
        note(&mut registered, "made Dir 1 2 /tmp/a b");
        assert_eq!(registered[Path::new("/tmp/a b")].made, Some((1, 2)));
        note(&mut registered, "announce File 5 /dev/shm/x");
        note(&mut registered, "forget /dev/shm/x");
        assert_eq!(registered.len(), 1);
        note(&mut registered, "forget /tmp/a b");
        assert!(registered.is_empty());
    }
}
