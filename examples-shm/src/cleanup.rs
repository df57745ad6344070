//! Leaving nothing behind: Ctrl-C and SIGTERM in the parent, children that die
//! with their parent, and waiting for children without hanging.
//!
//! A named segment outlives the process that made it. `shared_memory` unlinks it
//! only in the owner's `Drop`, and `Drop` does not run when the process is ended by
//! a signal or by `process::exit`. So the parent keeps a small registry of what
//! must go (the segment's name, the running child), and one thread that waits for
//! SIGINT/SIGTERM, removes it, and exits.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Result, bail};
use nix::errno::Errno;
use nix::sys::mman::shm_unlink;
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{Pid, getppid};

/// What the signal thread removes if the parent is interrupted right now.
#[derive(Debug, Default)]
pub struct Registry {
    /// The segment this process owns and has not unlinked yet.
    pub segment: Option<String>,
    /// The child that is running (not yet reaped, so its pid cannot be reused).
    pub child: Option<Pid>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { segment: None, child: None });

/// Lock the registry. Holding the guard while creating or unlinking a segment
/// makes "the segment exists" and "the registry says so" change together: a
/// signal arriving in between waits for the guard instead of missing the name.
pub fn registry() -> MutexGuard<'static, Registry> {
    // A panic elsewhere while holding the lock must not stop the cleanup.
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn interrupt_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set
}

/// Parent only, before anything is created: turn SIGINT/SIGTERM into a cleanup.
///
/// The signals are blocked in the main thread (and so in every thread started
/// later), and one thread picks them up with `sigwait`. Cleanup then runs as
/// ordinary code on that thread, not inside a signal handler, where almost
/// nothing (no locks, no allocation) would be allowed.
pub fn install_signal_cleanup() -> Result<()> {
    let signals = interrupt_signals();
    signals.thread_block()?;
    std::thread::spawn(move || {
        let Ok(signal) = signals.wait() else { return };
        // Keep the guard until exit, so the main thread cannot change anything
        // underneath us.
        let registry = registry();
        // The child first: a child that found the name gone would report an
        // error of its own before we could stop it.
        if let Some(child) = registry.child {
            let _ = kill(child, Signal::SIGKILL);
            // Reap it before we go: when we exit, nothing of ours is still running.
            let _ = waitpid(child, None);
        }
        if let Some(name) = &registry.segment {
            let _ = shm_unlink(name.as_str());
        }
        eprintln!("error: interrupted by {signal}; cleaned up");
        std::process::exit(128 + signal as i32);
    });
    Ok(())
}

/// Before the parent reports an error: if a signal's cleanup is under way (it holds
/// the registry until the process exits), the error is only its echo (the child it
/// just killed and reaped), so wait here and let the cleanup have the last word.
pub fn let_cleanup_finish() {
    drop(registry());
}

/// First thing in every child (spawned or forked).
pub fn child_start(parent: Pid) -> Result<()> {
    // A child inherits the parent's blocked SIGINT/SIGTERM, through fork and
    // through exec alike (std's Command does not reset the mask: a program it
    // started showed both still blocked): without this, Ctrl-C could not stop
    // the child.
    interrupt_signals().thread_unblock()?;
    // If the parent dies (even by SIGKILL, which it cannot clean up after), the
    // kernel kills this child too: no orphan keeps the memory mapped.
    set_pdeathsig(Signal::SIGKILL)?;
    // The parent may have died before the line above: then nobody would send
    // the signal, and our parent is now someone else.
    if getppid() != parent {
        bail!("the parent process {parent} is gone");
    }
    Ok(())
}

/// What [`child_start`] does, done for a child that is another program
/// (`--child-cmd`): it cannot know our rules, so the parent applies them in the
/// moment between `fork` and `exec`, and they carry over into that program (the
/// signal mask and the parent-death signal both survive `exec`).
pub fn external_child_start(command: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before `exec`, where only
    // async-signal-safe calls are allowed: it makes three system calls
    // (sigprocmask, prctl, getppid), on a signal set built on the stack, and
    // allocates nothing (its errors are bare error numbers).
    unsafe {
        command.pre_exec(move || {
            interrupt_signals().thread_unblock()?;
            set_pdeathsig(Signal::SIGKILL)?;
            if getppid() != parent {
                return Err(Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

/// Test-only fault switch, read by the child after it has attached to the
/// shared memory: EXAMPLES_CHILD_FAULT=exit (exit 3), =panic, or =sleep (60 s,
/// so that a test can kill a process mid-scene).
pub fn child_fault() {
    match std::env::var("EXAMPLES_CHILD_FAULT").as_deref() {
        Ok("exit") => {
            eprintln!("child: failing on purpose (EXAMPLES_CHILD_FAULT=exit)");
            std::process::exit(3);
        }
        Ok("panic") => panic!("child: panicking on purpose (EXAMPLES_CHILD_FAULT=panic)"),
        Ok("sleep") => std::thread::sleep(Duration::from_secs(60)),
        _ => {}
    }
}

/// Record a freshly forked child, so that Ctrl-C kills it.
///
/// If a signal arrives between the fork and this call, the child is not killed
/// by us, but it dies anyway: its parent-death signal (or its `getppid` check in
/// [`child_start`]) takes care of it.
pub fn watch_child(child: Pid) {
    registry().child = Some(child);
}

/// Start a spawned child and record it in one step. The registry is held across
/// the spawn, so a signal arriving meanwhile waits until the child is on record
/// and kills it before unlinking the name: the child never wakes to find the name
/// gone and report an error of its own. (A fork cannot do this: the child would
/// inherit the lock held.)
pub fn spawn_watched(command: &mut Command) -> std::io::Result<Child> {
    let mut registry = registry();
    let child = command.spawn()?;
    registry.child = Some(Pid::from_raw(child.id() as i32));
    Ok(child)
}

/// Wait for the child and turn anything but a clean exit into an error.
pub fn wait_child(child: Pid) -> Result<()> {
    // WNOWAIT: learn that the child ended but leave it a zombie, so its pid
    // cannot be reused while the registry still names it; then forget it and reap.
    let status = waitid(Id::Pid(child), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)?;
    let mut registry = registry();
    registry.child = None;
    waitpid(child, None)?;
    drop(registry);
    match status {
        WaitStatus::Exited(_, 0) => Ok(()),
        WaitStatus::Exited(_, code) => bail!("the child process failed: exit status {code}"),
        WaitStatus::Signaled(_, signal, _) => {
            bail!("the child process failed: was killed by signal {} ({signal})", signal as i32)
        }
        other => bail!("the child process failed: {other:?}"),
    }
}
