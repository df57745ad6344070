//! What an interrupted run must not leave behind, and who removes it.
//!
//! A run makes things that outlive it unless someone removes them: child processes,
//! scratch directories (a memory-mapped file, ipc-channel's sockets), and named
//! shared-memory segments, which stay in /dev/shm (in RAM) until unlinked. On the
//! ordinary paths, success and error alike, `Drop` removes them. `Drop` does not run
//! when a signal ends the process, so the parent also keeps a registry of what
//! exists right now, and one thread that waits for SIGINT (Ctrl-C), SIGTERM and
//! SIGHUP (the terminal closed): it kills and reaps the children, removes the
//! directories, unlinks the segments, says so in one line and exits with the
//! shell's status for that signal, 128 + its number (130 for Ctrl-C).
//!
//! The signal thread is started the first time something is registered, so a run
//! that makes nothing (`--help`, a bad flag) starts no thread. It uses
//! [`signal_hook`]: the handler only writes a byte to a pipe, and the cleanup runs as
//! ordinary code on the thread that reads it.
//!
//! Registering and creating happen under one lock: a signal that arrives in
//! between waits for the lock, and then finds what was just made.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use anyhow::{Context, Result};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, pthread_sigmask, signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::watchdog::Kind;

/// The signals that end a run with a cleanup.
pub const SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// What exists right now and must go if the run is interrupted.
#[derive(Default)]
pub(crate) struct Registry {
    /// Children started and not yet reaped (so their pids cannot be reused).
    pub children: Vec<Pid>,
    /// Scratch directories, removed with everything in them.
    pub dirs: Vec<PathBuf>,
    /// Names of shared-memory segments this process created and has not unlinked.
    pub segments: Vec<String>,
}

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { children: Vec::new(), dirs: Vec::new(), segments: Vec::new() });

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

/// Starts the signal thread, once: called before the first child or resource.
pub(crate) fn install() -> Result<()> {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let _ = OWNER.set(std::process::id());
    let numbers = SIGNALS.map(|signal| signal as i32);
    let mut signals =
        signal_hook::iterator::Signals::new(numbers).context("cannot watch for Ctrl-C")?;
    std::thread::Builder::new()
        .name("cleanup".into())
        .spawn(move || {
            if let Some(number) = signals.forever().next() {
                clean_up_and_exit(number);
            }
        })
        .context("cannot start the cleanup thread")?;
    let _ = INSTALLED.set(());
    Ok(())
}

/// The signal thread's work. It keeps the lock until the process exits, so the
/// main thread can neither start nor reap a child meanwhile, nor report an error
/// that is only an echo of this cleanup (see [`let_cleanup_finish`]).
fn clean_up_and_exit(number: i32) -> ! {
    let registry = registry();
    // The children first: one that woke to find its file or name gone would
    // report an error of its own.
    for &pid in &registry.children {
        let _ = kill(pid, Signal::SIGKILL);
    }
    for &pid in &registry.children {
        let _ = waitpid(pid, None);
    }
    for dir in &registry.dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    for name in &registry.segments {
        let _ = nix::sys::mman::shm_unlink(name.as_str());
    }
    let name = Signal::try_from(number).map_or("a signal", Signal::as_str);
    crate::say_error(&format!("interrupted by {name}; cleaned up"));
    std::process::exit(128 + number);
}

/// Before the parent reports an error: if a signal's cleanup is under way, the
/// error is only its echo (a child it just killed), so wait here for the exit.
pub(crate) fn let_cleanup_finish() {
    if OWNER.get() == Some(&std::process::id()) {
        drop(registry());
    }
}

/// Blocks [`SIGNALS`] in this thread while a child is forked, so that none is
/// handled by the child before it has put back the default actions (the handlers
/// write into a pipe the child shares with the parent's signal thread). Dropping
/// it unblocks them; a signal that arrived meanwhile is delivered then.
pub(crate) struct SignalsBlocked(SigSet);

impl SignalsBlocked {
    pub(crate) fn now() -> Result<SignalsBlocked> {
        let set: SigSet = SIGNALS.into_iter().collect();
        let mut old = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .context("cannot block signals around fork")?;
        Ok(SignalsBlocked(old))
    }

    /// In the forked child: the default actions, so Ctrl-C or SIGTERM ends it
    /// the ordinary way, then the mask the parent had.
    pub(crate) fn default_actions_in_child(self) {
        for sig in SIGNALS {
            // SAFETY: SIG_DFL installs no handler, so no Rust code can run in a
            // signal context because of it.
            let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        }
        // `drop` unblocks.
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

/// Starts the watchdog, once, before the first directory or segment exists: then a
/// parent killed with SIGKILL leaves nothing behind either (see [`crate::watchdog`]).
fn watched() -> Result<()> {
    static STARTED: OnceLock<()> = OnceLock::new();
    install()?;
    if STARTED.get().is_none() {
        crate::watchdog::start()?;
        let _ = STARTED.set(());
    }
    Ok(())
}

/// A fresh directory only this user can enter, in TMPDIR: removed when dropped, on
/// Ctrl-C, SIGTERM and SIGHUP, and by the watchdog after a SIGKILL.
pub struct ScratchDir {
    path: Option<PathBuf>,
}

impl ScratchDir {
    /// `prefix` names the directory after the program ("examples-mmap-..."), so one
    /// that is ever left behind says where it came from.
    pub fn new(prefix: &str) -> Result<ScratchDir> {
        use std::os::unix::fs::DirBuilderExt;
        watched()?;
        let tmp = std::env::temp_dir();
        let cannot = || format!("cannot create a temporary directory in {}", tmp.display());
        for _ in 0..100 {
            let path = tmp.join(format!("{prefix}{}", crate::show::random_word(8)));
            let mut registry = registry();
            // Announced before it exists, made under the lock: neither a signal nor
            // a SIGKILL can find it made and not registered.
            crate::watchdog::announce(Kind::Dir, &path);
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    crate::watchdog::made(Kind::Dir, &path);
                    registry.dirs.push(path.clone());
                    return Ok(ScratchDir { path: Some(path) });
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    crate::watchdog::forget(&path);
                }
                Err(err) => {
                    crate::watchdog::forget(&path);
                    return Err(err).with_context(cannot);
                }
            }
        }
        anyhow::bail!("{}: every name tried was taken", cannot())
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().expect("present until dropped")
    }

    /// Removes the directory now, reporting a failure (`Drop` cannot).
    pub fn close(mut self) -> Result<()> {
        self.remove()
    }

    /// Keeps the directory until the end of the run (then the plumbing removes it
    /// like anything still registered), without a value to drop.
    pub fn keep_for_the_run(mut self) -> PathBuf {
        self.path.take().expect("present until dropped")
    }

    fn remove(&mut self) -> Result<()> {
        let Some(path) = self.path.take() else {
            return Ok(());
        };
        let mut registry = registry();
        registry.dirs.retain(|registered| *registered != path);
        let removed = std::fs::remove_dir_all(&path);
        crate::watchdog::forget(&path);
        removed.with_context(|| format!("cannot remove {}", path.display()))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// Creates the shared-memory segment `name` with `create` and registers it in the
/// same step, so that Ctrl-C (and the watchdog, after a SIGKILL) find the name.
pub fn create_segment<T>(name: &str, create: impl FnOnce() -> Result<T>) -> Result<T> {
    watched()?;
    let file = segment_file(name);
    let mut registry = registry();
    crate::watchdog::announce(Kind::File, &file);
    let made = create();
    match &made {
        Ok(_) => {
            crate::watchdog::made(Kind::File, &file);
            registry.segments.push(name.to_owned());
        }
        Err(_) => crate::watchdog::forget(&file),
    }
    made
}

/// Unlinks the segment `name` with `unlink` (or leaves it, for `--keep`) and
/// forgets it in the same step.
pub fn forget_segment(name: &str, unlink: impl FnOnce() -> Result<()>) -> Result<()> {
    let mut registry = registry();
    unlink()?;
    registry.segments.retain(|registered| registered != name);
    crate::watchdog::forget(&segment_file(name));
    Ok(())
}

/// The file Linux shows for the segment `name` ("/x" is /dev/shm/x).
fn segment_file(name: &str) -> PathBuf {
    Path::new("/dev/shm").join(name.trim_start_matches('/'))
}

/// At the end of `plumbing::main`: what is still registered goes (a directory kept
/// for the whole run, such as the one for ipc-channel's sockets).
pub(crate) fn at_exit() {
    if OWNER.get() != Some(&std::process::id()) {
        return;
    }
    let mut registry = registry();
    for dir in registry.dirs.drain(..) {
        let _ = std::fs::remove_dir_all(&dir);
        crate::watchdog::forget(&dir);
    }
    for name in registry.segments.drain(..) {
        let _ = nix::sys::mman::shm_unlink(name.as_str());
        crate::watchdog::forget(&segment_file(&name));
    }
}
