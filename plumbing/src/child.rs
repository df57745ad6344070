//! A child process from start to reaping (`join()`), and the fork start method. A [`Child`] dropped while it runs is killed and reaped: a scene
//! that returns early with an error leaves no process behind.

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{ForkResult, Pid, getpid, getppid, gettid};

use crate::cleanup::{self, SignalsBlocked};

/// A started child: `join()` it.
pub struct Child {
    label: String,
    pid: Pid,
    started: Instant,
    /// The `--child-cmd` it runs, named in its errors.
    program: Option<String>,
    /// How and when it ended, once it has been reaped.
    ended: Option<(WaitStatus, Instant)>,
}

impl Child {
    pub(crate) fn new(label: String, pid: Pid, program: Option<String>) -> Child {
        Child { label, pid, started: Instant::now(), program, ended: None }
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// `join()`: waits for the child to end; anything but exit status 0 is an error
    /// that says how it ended. Returns how long it ran.
    pub fn join(mut self) -> Result<Duration> {
        let status = self.wait()?;
        self.check(status)?;
        Ok(self.ran())
    }

    /// `join()`, then the parent's own `outcome` of its talk with the child. A child
    /// that failed is the real story, and what the parent saw of it (a broken pipe, a
    /// stream cut short) only the symptom, added in brackets.
    pub fn join_with<T>(self, outcome: Result<T>) -> Result<T> {
        match (self.join(), outcome) {
            (Err(failed), Err(symptom)) => bail!("{failed:#} ({symptom:#})"),
            (Err(failed), Ok(_)) => Err(failed),
            (Ok(_), outcome) => outcome,
        }
    }

    /// Whether the child has ended, and how: None while it runs, then `Ok` for exit
    /// status 0, or an error that says how it ended (see [`Child::join`]).
    pub fn ended(&mut self) -> Result<Option<Result<()>>> {
        Ok(self.try_join()?.map(|status| self.check(status)))
    }

    /// Waits until the child has ended, and reaps it.
    fn wait(&mut self) -> Result<WaitStatus> {
        loop {
            if let Some(status) = self.try_join()? {
                return Ok(status);
            }
            // WNOWAIT: leave it a zombie, its pid ours until the registry forgets it.
            match waitid(Id::Pid(self.pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(err) => return Err(err).context(format!("cannot wait for {}", self.label)),
            }
        }
    }

    /// How the child ended, if it has (it is reaped then); None while it runs.
    fn try_join(&mut self) -> Result<Option<WaitStatus>> {
        if let Some((status, _)) = self.ended {
            return Ok(Some(status));
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
        match waitid(Id::Pid(self.pid), flags).context(format!("cannot wait for {}", self.label))? {
            WaitStatus::StillAlive => Ok(None),
            status => {
                self.reap(status);
                Ok(Some(status))
            }
        }
    }

    /// `Ok` for exit status 0, else "<label> failed: exit status 3" or "<label> was
    /// killed by signal 9 (SIGKILL)", naming the `--child-cmd` it ran.
    fn check(&self, status: WaitStatus) -> Result<()> {
        let how = match status {
            WaitStatus::Exited(_, 0) => return Ok(()),
            WaitStatus::Exited(_, code) => format!("failed: exit status {code}"),
            WaitStatus::Signaled(_, signal, _) => {
                format!("was killed by signal {} ({signal})", signal as i32)
            }
            other => format!("ended: {other:?}"),
        };
        let command = self.program.as_ref().map(|cmd| format!(" (child command: {cmd})"));
        bail!("{} {how}{}", self.label, command.unwrap_or_default())
    }

    fn ran(&self) -> Duration {
        self.ended.map_or_else(Instant::now, |(_, at)| at).duration_since(self.started)
    }

    /// Forget the pid in the registry, then reap the zombie: in this order, a
    /// signal can never find a pid that was reused.
    fn reap(&mut self, status: WaitStatus) {
        let mut registry = cleanup::registry();
        registry.children.retain(|&pid| pid != self.pid);
        if self.program.is_some() {
            crate::watchdog::tell_group(self.pid, false); // its pid may be reused now
        }
        let _ = waitpid(self.pid, None);
        self.ended = Some((status, Instant::now()));
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.ended.is_none() {
            // Not reaped yet, so the pid is still this child's.
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = self.wait();
        }
    }
}

/// `join()` for children started together, then the parent's own `outcome` (only a
/// symptom if a child failed: a closed queue). Returns when each child ended, from
/// the first start. Once one has failed, or `outcome` has, the others get 2 s, then
/// are killed (one may be stuck sending to us); the first failure in start order is
/// the error. Children without a label of their own are "child process i of k".
pub fn join_all<T>(mut children: Vec<Child>, outcome: Result<T>) -> Result<(T, Vec<Duration>)> {
    let count = children.len();
    for (i, child) in children.iter_mut().enumerate().filter(|_| count > 1) {
        if child.label == "the child process" {
            child.label = format!("child process {} of {count}", i + 1);
        }
    }
    let first_start = children.iter().map(|child| child.started).min();
    let grace = || Some(Instant::now() + Duration::from_secs(2));
    let mut until = if outcome.is_err() { grace() } else { None };
    let (mut finished, mut failures) = (vec![Duration::ZERO; count], Vec::new());
    let mut running: Vec<(usize, Child)> = children.into_iter().enumerate().collect();
    while !running.is_empty() && until.is_none_or(|until| Instant::now() < until) {
        for (i, child) in &mut running {
            if let Some(status) = child.try_join()? {
                finished[*i] = child.ran() + child.started.duration_since(first_start.unwrap());
                failures.extend(child.check(status).err().map(|err| (*i, err)));
            }
        }
        running.retain(|(_, child)| child.ended.is_none());
        if !failures.is_empty() && until.is_none() {
            until = grace();
        }
        // Sleep until one ends (WNOWAIT: its Child reaps it), or look again in 2 ms.
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        let ended = |status: WaitStatus| running.iter().any(|(_, c)| status.pid() == Some(c.pid));
        if !(running.is_empty() || until.is_none() && waitid(Id::All, flags).is_ok_and(ended)) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let others = running.len();
    drop(running); // kills and reaps them
    failures.sort_by_key(|(i, _)| *i);
    match (failures.into_iter().next(), others) {
        (Some((_, err)), 0) => Err(err),
        (Some((_, err)), _) => bail!("{err:#}; stopped the {others} still running"),
        (None, _) => Ok((outcome?, finished)),
    }
}

/// Forks a child that runs `task` and exits: Python's `fork` start method. It is a
/// copy of this process: the same memory at the same addresses (copy-on-write), the
/// same open files, and **one thread**, a copy of this one.
///
/// # Safety
///
/// Other threads' locks are copied as they were, with nobody left to release them.
/// The plumbing's own threads (cleanup, pause) hold none while they wait, and the
/// registry lock is held across the fork and never used in the child; glibc resets
/// the allocator's locks, so the child may allocate and print; it leaves with
/// `exit`, so nothing of the parent's is dropped twice. The caller promises that no
/// thread it started itself runs (argument and shm, the programs that fork, start none).
pub unsafe fn fork(task: impl FnOnce() -> Result<()>) -> Result<Child> {
    on_the_main_thread()?;
    cleanup::install()?;
    crate::pause::start_if_pausing()?;
    // Anything still in our output buffer would be printed twice, once by each.
    std::io::stdout().flush()?;
    let parent = getpid();
    let blocked = SignalsBlocked::now()?;
    let mut registry = cleanup::registry();
    // SAFETY: the function's contract above.
    match unsafe { nix::unistd::fork() }.context("fork failed")? {
        ForkResult::Child => {
            // Ctrl-C or SIGTERM end the child the ordinary way, then the parent's mask.
            cleanup::default_actions();
            drop(blocked);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                // `ps` and /proc/PID/comm then tell it from its parent, whose copy it is.
                let _ = nix::sys::prctl::set_name(c"child");
                nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                ensure!(getppid() == parent, "the parent process {parent} is gone");
                crate::as_child("child", task)
            }));
            let code = crate::status_of(outcome);
            let _ = std::io::stdout().flush();
            std::process::exit(i32::from(code));
        }
        ForkResult::Parent { child } => {
            registry.children.push(child);
            drop(registry);
            drop(blocked);
            Ok(Child::new("the child process".into(), child, None))
        }
    }
}

/// The parent-death signal fires when the thread that started the child ends: a
/// child started from a short-lived thread would be killed with it.
pub(crate) fn on_the_main_thread() -> Result<()> {
    ensure!(gettid() == getpid(), "children are started from the main thread only");
    Ok(())
}
