//! The process bookkeeping the lesson needs but is not about: starting children,
//! waiting for every one of them, stopping them all when one fails, and cleaning up on
//! Ctrl-C or SIGTERM.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{Pid, getppid};

/// What must go if the program is interrupted: the children it is running and the
/// scratch directory that holds the file.
#[derive(Default)]
struct Running {
    pids: Vec<Pid>,
    scratch: Option<PathBuf>,
}

/// Starts and waits for children, and owns the thread that handles Ctrl-C and SIGTERM.
pub struct Supervisor {
    running: Arc<Mutex<Running>>,
}

fn termination_signals() -> SigSet {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
}

impl Supervisor {
    pub fn start() -> Result<Supervisor> {
        let signals = termination_signals();
        // Blocked here, before any other thread exists, the signals stay pending until
        // the thread below takes them with sigwait: no handler runs in the middle of
        // our work, and cleanup is ordinary code.
        signals.thread_block().context("cannot block SIGINT and SIGTERM")?;
        let running = Arc::new(Mutex::new(Running::default()));
        let for_thread = Arc::clone(&running);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || clean_up_on_signal(signals, &for_thread))
            .context("cannot start the signal thread")?;
        Ok(Supervisor { running })
    }

    /// On Ctrl-C or SIGTERM, remove `dir` (the normal exit paths drop the TempDir instead).
    pub fn remove_on_signal(&self, dir: &Path) {
        self.lock().scratch = Some(dir.to_path_buf());
    }

    /// Start every command at once and wait for all of them. Returns when each child
    /// finished, counted from the first start. If one fails, the others are killed and
    /// reaped before the error comes back: never a hang, never a stray process.
    pub fn run_children(&self, commands: Vec<Command>) -> Result<Vec<Duration>> {
        let count = commands.len();
        let started = Instant::now();
        let mut children: Vec<(usize, Child)> = Vec::with_capacity(count);
        for (i, mut command) in commands.into_iter().enumerate() {
            // A process group of its own: a Ctrl-C in the terminal reaches only the
            // parent, which then stops the children itself and cleans up.
            command.process_group(0);
            // Spawn and record under the lock, so an interrupt cannot miss this child.
            let mut running = self.lock();
            match command.spawn() {
                Ok(child) => {
                    running.pids.push(Pid::from_raw(child.id() as i32));
                    children.push((i + 1, child));
                }
                Err(err) => {
                    drop(running);
                    self.stop(&mut children);
                    return Err(err).context(format!("cannot start child {} of {count}", i + 1));
                }
            }
        }

        let mut finished = vec![Duration::ZERO; count];
        while !children.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
            let mut failure = None;
            let mut running = self.lock();
            children.retain_mut(|(id, child)| match child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => {
                    running.pids.retain(|&pid| pid.as_raw() as u32 != child.id());
                    finished[*id - 1] = started.elapsed();
                    if !status.success() && failure.is_none() {
                        failure = Some((*id, describe(status)));
                    }
                    false
                }
                Err(err) => {
                    failure.get_or_insert((*id, format!("cannot be waited for: {err}")));
                    true
                }
            });
            drop(running);
            if let Some((id, what)) = failure {
                let others = children.len();
                self.stop(&mut children);
                if count == 1 {
                    bail!("the child process failed: {what}");
                }
                let stopped = match others {
                    0 => String::new(),
                    _ => format!("; stopped the {others} still running"),
                };
                bail!("child {id} of {count} failed: {what}{stopped}");
            }
        }
        Ok(finished)
    }

    /// Kill and reap every child still in `children`.
    fn stop(&self, children: &mut Vec<(usize, Child)>) {
        let mut running = self.lock();
        for (_, child) in children.iter_mut() {
            let _ = child.kill(); // fails only for a child that already exited
        }
        for (_, child) in children.iter_mut() {
            let _ = child.wait();
        }
        running.pids.clear();
        children.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The signal thread: wait for SIGINT or SIGTERM, then kill and reap the children,
/// remove the scratch directory and exit. It keeps the lock until the end, so the
/// main thread cannot start or reap a child in the meantime.
fn clean_up_on_signal(signals: SigSet, running: &Mutex<Running>) {
    let Ok(signal) = signals.wait() else { return };
    let running = running.lock().unwrap_or_else(PoisonError::into_inner);
    for &pid in &running.pids {
        let _ = kill(pid, Signal::SIGKILL);
    }
    for &pid in &running.pids {
        let _ = waitpid(pid, None);
    }
    if let Some(dir) = &running.scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    eprintln!("error: interrupted by {signal}; cleaned up");
    std::process::exit(128 + signal as i32);
}

/// "exit status 3" or "was killed by signal 9 (SIGKILL)".
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(number)) => match Signal::try_from(number) {
            Ok(signal) => format!("was killed by signal {number} ({signal})"),
            Err(_) => format!("was killed by signal {number}"),
        },
        (None, None) => status.to_string(),
    }
}

/// First thing in a child: undo what the parent set up for itself, and die with it.
pub fn become_child(parent: u32) -> Result<()> {
    // The parent's blocked SIGINT and SIGTERM survive exec; unblock them so a child can
    // still be stopped the ordinary way.
    termination_signals().thread_unblock().context("cannot unblock SIGINT and SIGTERM")?;
    // If the parent dies (even by SIGKILL, when it can clean nothing), so do we...
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .context("cannot set the parent-death signal")?;
    // ...unless it died before the line above: then we already have a new parent.
    ensure!(getppid().as_raw() as u32 == parent, "the parent process {parent} is gone");
    Ok(())
}

/// What [`become_child`] does, done for a child that is another program
/// (`--child-cmd`): it cannot know our rules, so the parent applies them between
/// `fork` and `exec`, and they carry over into that program (the signal mask and the
/// parent-death signal both survive `exec`).
pub fn prepare_external_child(command: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before `exec`, where only
    // async-signal-safe calls are allowed: it makes three system calls (sigprocmask,
    // prctl, getppid) on a signal set built on the stack, and allocates nothing (its
    // errors are bare error numbers).
    unsafe {
        command.pre_exec(move || {
            termination_signals().thread_unblock()?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            if getppid() != parent {
                return Err(nix::errno::Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

/// The test-only fault switch, the same in every example program: a child reads
/// EXAMPLES_CHILD_FAULT once it has mapped the file. `exit` exits with status 3,
/// `panic` panics, `sleep` sleeps 60 s (so a test can interrupt the scene).
pub fn fail_on_purpose_if_asked(who: &str) {
    match std::env::var("EXAMPLES_CHILD_FAULT").as_deref() {
        Ok("exit") => {
            // One write, newline included: eprintln! would write `who` and the rest
            // separately, and a parent that kills the other children at this moment
            // would leave the line open for its own `error:` line to be glued onto.
            let line = format!("{who}: failing on purpose (EXAMPLES_CHILD_FAULT=exit)\n");
            let _ = std::io::stderr().write_all(line.as_bytes());
            std::process::exit(3);
        }
        Ok("panic") => panic!("{who}: failing on purpose (EXAMPLES_CHILD_FAULT=panic)"),
        Ok("sleep") => std::thread::sleep(Duration::from_secs(60)),
        _ => {}
    }
}

/// MemAvailable from /proc/meminfo in bytes, or None where there is no such file.
pub fn memory_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
