//! What an interrupted run must not leave behind, and who removes it.
//!
//! Child processes, scratch directories and shared-memory segments (in RAM until
//! unlinked) outlive a run unless removed. `Drop` removes them on every ordinary
//! path, but not when a signal ends the process: so the parent keeps a registry of
//! what exists, and a thread waiting for SIGINT (Ctrl-C), SIGTERM and SIGHUP kills
//! the children's groups, removes what was made, says so in one line and exits with
//! the shell's status (130 for Ctrl-C). SIGKILL runs no code: see watchdog.rs.
//! A thing is removed only if its name still holds what this run made (the device
//! and inode recorded then); making and registering happen under one lock.

use std::collections::hash_map::RandomState;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, killpg, pthread_sigmask, signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::watchdog;

/// The signals that end a run with a cleanup.
pub(crate) const SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// What exists right now and must go if the run is interrupted.
pub(crate) struct Registry {
    /// Children started and not yet reaped (their pids cannot be reused), each the
    /// leader of the process group that is killed.
    pub children: Vec<Pid>,
    made: Vec<Thing>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { children: Vec::new(), made: Vec::new() });

/// The process that owns the registry. A forked child has a copy of it, which it
/// must never use: the copy may be locked for good (the fork happened under it).
static OWNER: OnceLock<u32> = OnceLock::new();

pub(crate) fn registry() -> MutexGuard<'static, Registry> {
    assert!(
        OWNER.get().is_none_or(|&owner| owner == std::process::id()),
        "a forked child cannot start children or register what to clean up"
    );
    // A panic elsewhere while holding the lock must not stop the cleanup.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A directory (removed with everything in it) or a file (a shared-memory segment
/// is the file /dev/shm/NAME), as it was made: its path, device and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Thing {
    pub dir: bool,
    pub path: PathBuf,
    pub id: (u64, u64),
}

impl Thing {
    /// Removes it if the path still holds it (same device and inode; a symbolic link
    /// put there since is another inode). Ok(false): something else, or nothing.
    pub(crate) fn remove_if_ours(&self) -> std::io::Result<bool> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.id => {}
            Ok(_) => return Ok(false),
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err),
        }
        let remove = if self.dir { std::fs::remove_dir_all::<&Path> } else { std::fs::remove_file };
        remove(&self.path)?;
        Ok(true)
    }
}

/// Something this run made and will remove (a scratch directory, a segment's file):
/// when dropped, on Ctrl-C, SIGTERM and SIGHUP, and by the watchdog after a SIGKILL,
/// each time only if it is still the very thing that was made.
#[derive(Debug)]
pub struct Made(Option<Thing>);

impl Made {
    /// A fresh directory only this user can enter, in TMPDIR ([`temp_dir`]), and
    /// its path; `prefix` names it after the program ("examples-mmap-..."), so one
    /// ever left behind says where it came from.
    pub fn scratch_dir(prefix: &str) -> Result<(PathBuf, Made)> {
        let tmp = temp_dir();
        let taken = |e: &std::io::Error| e.kind() == ErrorKind::AlreadyExists;
        for _ in 0..100 {
            // std seeds every RandomState from the OS's random source.
            let random = std::hash::BuildHasher::hash_one(&RandomState::new(), prefix);
            let path = tmp.join(format!("{prefix}{:08x}", random as u32));
            let mkdir = || Ok(std::fs::DirBuilder::new().mode(0o700).create(&path)?);
            match Made::by(true, &path, mkdir) {
                Err(err) if err.downcast_ref().is_some_and(taken) => continue,
                made => {
                    let (tmp, hint) = (tmp.display(), "set TMPDIR to choose another place");
                    let context = || format!("cannot create a directory in {tmp} ({hint})");
                    return made.map(|((), made)| (path, made)).with_context(context);
                }
            }
        }
        bail!("cannot create a directory in {}: every name tried was taken", tmp.display())
    }

    /// Runs `make`, which creates `path` (a directory if `dir`, else a file) and
    /// returns a value, and registers what is at `path` then, under one lock.
    pub fn by<T>(dir: bool, path: &Path, make: impl FnOnce() -> Result<T>) -> Result<(T, Made)> {
        install()?;
        let mut registry = registry();
        watchdog::start()?;
        let value = make()?;
        let meta = std::fs::symlink_metadata(path).context("cannot look at what was just made")?;
        let thing = Thing { dir, path: path.to_owned(), id: (meta.dev(), meta.ino()) };
        watchdog::tell_made(&thing);
        registry.made.push(thing.clone());
        Ok((value, Made(Some(thing))))
    }

    /// Removes it now, reporting a failure (`Drop` cannot). Ok(false): the name holds
    /// something else now, or nothing (removed or replaced), and it was left alone.
    pub fn remove(mut self) -> Result<bool> {
        let Some(thing) = self.0.take() else { return Ok(true) };
        let mut registry = registry(); // a signal meanwhile waits, then finds it gone
        let removed = thing.remove_if_ours();
        registry.made.retain(|made| *made != thing);
        watchdog::tell_forgotten(&thing);
        removed.context(format!("cannot remove {}", thing.path.display()))
    }

    /// Keeps it after the run (`--keep`): nobody removes it any more.
    pub fn keep(mut self) {
        let thing = self.0.take().expect("present until removed or kept");
        registry().made.retain(|made| *made != thing);
        watchdog::tell_forgotten(&thing);
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        if self.0.is_some() {
            let _ = Made(self.0.take()).remove();
        }
    }
}

/// Where scratch directories go: TMPDIR, or /tmp where it is unset, empty or
/// relative (said once).
fn temp_dir() -> PathBuf {
    match std::env::var_os("TMPDIR").map(PathBuf::from) {
        None => PathBuf::from("/tmp"),
        Some(tmp) if tmp.is_absolute() => tmp,
        Some(tmp) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                let line =
                    format!("note: TMPDIR {tmp:?} is not absolute; scratch files go to /tmp\n");
                let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            });
            PathBuf::from("/tmp")
        }
    }
}

/// Starts the signal thread, once: called before the first child or thing made.
pub(crate) fn install() -> Result<()> {
    if OWNER.set(std::process::id()).is_err() {
        return Ok(()); // installed already
    }
    let mut signals = signal_hook::iterator::Signals::new(SIGNALS.map(|signal| signal as i32))
        .context("cannot watch for Ctrl-C")?;
    std::thread::Builder::new()
        .name("cleanup".into())
        .spawn(move || {
            if let Some(number) = signals.forever().next() {
                clean_up_and_exit(number);
            }
        })
        .context("cannot start the cleanup thread")?;
    Ok(())
}

/// The signal thread's work. It keeps the lock until the exit: the main thread can
/// neither start nor reap a child meanwhile, nor report this cleanup's echo.
fn clean_up_and_exit(number: i32) -> ! {
    let registry = registry();
    // The children first: one that woke to find its file or name gone would report
    // an error of its own. The whole group: a `--child-cmd` program's children too.
    for &pid in &registry.children {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    for &pid in &registry.children {
        let _ = waitpid(pid, None);
    }
    for thing in &registry.made {
        let _ = thing.remove_if_ours();
    }
    let name = Signal::try_from(number).map_or("a signal", Signal::as_str);
    crate::say_error(&format!("interrupted by {name}; cleaned up"));
    std::process::exit(128 + number);
}

/// Before the parent reports an error: if a signal's cleanup is under way, the error
/// is only its echo (a child it just killed), so wait here for the exit.
pub(crate) fn let_cleanup_finish() {
    if OWNER.get() == Some(&std::process::id()) {
        drop(registry());
    }
}

/// At the end of `plumbing::main`: what is still registered goes (a directory kept
/// for the whole run, such as the one for ipc-channel's sockets).
pub(crate) fn at_exit() {
    if OWNER.get() == Some(&std::process::id()) {
        for thing in std::mem::take(&mut registry().made) {
            let _ = thing.remove_if_ours();
            watchdog::tell_forgotten(&thing);
        }
    }
}

/// Blocks [`SIGNALS`] while a child is forked, so the child handles none before it
/// has put back the default actions (the handlers write into a pipe the parent's
/// signal thread reads). Dropping it unblocks them.
pub(crate) struct SignalsBlocked(SigSet);

impl SignalsBlocked {
    pub(crate) fn now() -> Result<SignalsBlocked> {
        let (set, mut old): (SigSet, _) = (SIGNALS.into_iter().collect(), SigSet::empty());
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .context("cannot block signals around fork")?;
        Ok(SignalsBlocked(old))
    }
}

/// SIGINT, SIGTERM and SIGHUP back to their default actions (they end the process).
pub(crate) fn default_actions() {
    for sig in SIGNALS {
        // SAFETY: SIG_DFL installs no handler, so no Rust code can run in a signal
        // context because of it.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}
