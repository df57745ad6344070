//! Child processes: started, watched, stopped, and never left behind.
//!
//! Python's `Process(target=task, args=...)` with `start()` and `join()`, for the
//! three ways a lesson makes a child:
//!
//! - [`this_program`]: this program again, with a hidden sub-command that runs the
//!   child's task (Python's `spawn` start method);
//! - [`other_program`]: another program, given with `--child-cmd` (a Python script,
//!   say), told the array's whereabouts on its command line;
//! - [`fork`]: a copy of this process (Python's `fork` start method), where what the
//!   child inherits is the lesson.
//!
//! The rules every child follows, whichever way it was made:
//!
//! - **It dies with its parent.** The kernel sends it SIGKILL when the parent dies,
//!   even of SIGKILL (Linux's parent-death signal). The signal fires when the
//!   *thread* that started the child ends, so children are started from the main
//!   thread only, which lives as long as the process. A child whose parent died
//!   before the request took effect notices (its parent is someone else) and ends.
//! - **It has a process group of its own**, so Ctrl-C in the terminal reaches only
//!   the parent, which stops the children itself and then cleans up.
//! - **It is registered from start to reaping** (see [`crate::cleanup`]); a pid is
//!   only forgotten after the child has ended and before it is reaped, so a signal
//!   can never kill a pid the system has handed to another process.
//! - **A dropped [`Child`] that still runs is killed and reaped**: leaving a scene
//!   early with an error leaves no process behind.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{ForkResult, Pid, getpid, getppid, gettid};

use crate::cleanup::{self, SignalsBlocked};

/// The variable through which a child learns its parent's pid.
const PARENT_VARIABLE: &str = "EXAMPLES_PARENT_PID";
/// The variable through which a child learns the descriptor handed over to it.
const HANDED_OVER_VARIABLE: &str = "EXAMPLES_HANDED_OVER_FD";
/// The variable that tells a child's error which `--child-cmd` it was.
const COMMAND_VARIABLE: &str = "EXAMPLES_CHILD_COMMAND";

/// A child process, from start to reaping.
pub struct Child {
    label: String,
    pid: Pid,
    started: Instant,
    /// The `--child-cmd` it runs, named in its errors.
    command: Option<String>,
    /// How and when it ended, once it has been reaped.
    ended: Option<(WaitStatus, Instant)>,
    /// Its standard input, when the command asked for a pipe (`Stdio::piped()`).
    pub stdin: Option<ChildStdin>,
    /// Its standard output, when piped.
    pub stdout: Option<ChildStdout>,
    /// Its standard error, when piped.
    pub stderr: Option<ChildStderr>,
}

/// This program again, with `args`: its hidden child sub-command and the task's
/// arguments. The analogue of Python's `spawn`: a fresh process that shares no
/// memory with the parent and gets only what its arguments say.
pub fn this_program<I, S>(args: I) -> Result<Command>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let exe = std::env::current_exe().context("cannot find this program to start a child")?;
    let mut command = Command::new(exe);
    command.args(args);
    Ok(command)
}

/// Another program as the child (`--child-cmd CMD`), with `args` appended.
///
/// /bin/sh splits CMD the way a prompt would (so quotes work), then `exec`s it: the
/// child is that program itself, not a shell waiting for it, so killing the child
/// kills the program. `args` follow as "$@": they are never pasted into the command
/// line, so no path or name can be misread as shell syntax.
pub fn other_program<I, S>(cmd: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(format!("exec {cmd} \"$@\""));
    command.arg("sh").args(args); // "sh" is $0; the arguments are $1, $2, ...
    command.env(COMMAND_VARIABLE, cmd);
    command
}

/// Lets the child started by `command` inherit `fd` (an end of a pipe, say), and
/// nothing else of ours: every descriptor this program opens is close-on-exec, and
/// this one stays open across `exec` only in the child. The child finds it with
/// [`handed_over`].
pub fn hand_over(command: &mut Command, fd: &impl AsRawFd) {
    let raw = fd.as_raw_fd();
    command.env(HANDED_OVER_VARIABLE, raw.to_string());
    let inheritable = move || -> std::io::Result<()> {
        // SAFETY: `raw` is open in the child: a copy of the parent's, which the
        // caller keeps open until the child has started.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))?;
        Ok(())
    };
    // SAFETY: runs in the forked child before `exec`: one fcntl, async-signal-safe,
    // on the child's own copy of the descriptor table; nothing is allocated.
    unsafe { command.pre_exec(inheritable) };
}

/// In the child: the descriptor its parent handed over, checked through /proc to be
/// an open pipe or socket (and not standard input, output or error).
pub fn handed_over() -> Result<OwnedFd> {
    let fd: i32 = std::env::var(HANDED_OVER_VARIABLE)
        .ok()
        .and_then(|fd| fd.parse().ok())
        .context("no descriptor was handed over to this child")?;
    ensure!(fd > 2, "the handed-over descriptor must be 3 or higher, not {fd}");
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .with_context(|| format!("descriptor {fd} is not open in the child"))?;
    let target = target.to_string_lossy();
    ensure!(
        target.starts_with("pipe:") || target.starts_with("socket:"),
        "descriptor {fd} is {target}, not a pipe or a socket"
    );
    // SAFETY: the descriptor is open (checked above) and the parent left it open for
    // this process alone; nothing else in this program owns it, so this OwnedFd is its
    // only owner and closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `--child-cmd` must name something to run (a clap value parser).
pub fn parse_child_cmd(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the child command is empty".into());
    }
    Ok(text.to_string())
}

/// Starts `command` as a child called `label` ("the child process", "child 3 of
/// 100", "the server process"): `Process.start()`.
pub fn start(label: impl Into<String>, mut command: Command) -> Result<Child> {
    let label = label.into();
    on_the_main_thread()?;
    cleanup::install()?;
    let parent = getpid();
    command.process_group(0);
    command.env(PARENT_VARIABLE, parent.to_string());
    crate::pause::hand_over(&mut command);
    // SAFETY: the closure runs in the forked child before `exec`, where the parent's
    // other threads may have left locks held, so only async-signal-safe calls are
    // allowed: it makes two system calls (prctl, getppid) and allocates nothing
    // (its error is a bare error number). Both settings survive `exec`.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            if getppid() != parent {
                return Err(Errno::ESRCH.into());
            }
            Ok(())
        });
    }
    let external = command
        .get_envs()
        .find(|(key, _)| *key == COMMAND_VARIABLE)
        .and_then(|(_, value)| Some(value?.to_string_lossy().into_owned()));
    // Spawned and registered under one lock: Ctrl-C cannot miss this child.
    let mut registry = cleanup::registry();
    let mut process = command.spawn().with_context(|| format!("cannot start {label}"))?;
    let pid = Pid::from_raw(process.id() as i32);
    registry.children.push(pid);
    drop(registry);
    // From here on the pid is ours to wait for; std's handle only gives the pipes.
    Ok(Child {
        label,
        pid,
        started: Instant::now(),
        command: external,
        ended: None,
        stdin: process.stdin.take(),
        stdout: process.stdout.take(),
        stderr: process.stderr.take(),
    })
}

/// Starts every command at once and waits for all of them (`start()` each, then
/// `join()` each). Returns when each one finished, counted from the first start.
/// When one fails, the others are killed and reaped before the error comes back.
/// With one command its name is "the child process", else "child i of k".
pub fn run_all(commands: Vec<Command>) -> Result<Vec<Duration>> {
    let count = commands.len();
    let label = |i: usize| match count {
        1 => "the child process".to_string(),
        _ => format!("child {i} of {count}"),
    };
    let first_start = Instant::now();
    let mut running = Vec::with_capacity(count);
    for (i, command) in commands.into_iter().enumerate() {
        running.push((i, start(label(i + 1), command)?));
        // An early return drops `running`: those already started are stopped.
    }
    let mut finished = vec![Duration::ZERO; count];
    while !running.is_empty() {
        std::thread::sleep(Duration::from_millis(5));
        let mut failure = None;
        for (i, child) in &mut running {
            if let Some(status) = child.try_wait()? {
                finished[*i] = first_start.elapsed();
                if let Some(what) = child.how_it_failed(status) {
                    failure.get_or_insert((what, child.command_note()));
                }
            }
        }
        running.retain(|(_, child)| child.ended.is_none());
        if let Some((what, note)) = failure {
            let others = running.len();
            drop(running); // kills and reaps them
            let stopped = match others {
                0 => String::new(),
                _ => format!("; stopped the {others} still running"),
            };
            bail!("{what}{stopped}{note}");
        }
    }
    Ok(finished)
}

/// Forks a child that runs `task` and exits: Python's `fork` start method. The
/// parent calls it "the child process"; it calls itself "child".
///
/// The child starts as a copy of this process: the same memory at the same
/// addresses (copy-on-write: a page is copied the first time either side writes
/// it), the same open files, and **one thread**, a copy of the calling one.
///
/// # Safety
///
/// Any other thread's locks are copied in whatever state they were, and nobody is
/// left in the child to release them. What this function guarantees: it is called
/// on the main thread; the plumbing's only thread (the cleanup thread) holds no lock
/// while it waits for a signal, and while it holds one (handling a signal) this
/// function waits and the process exits; the registry lock is held across the fork
/// and never used in the child. glibc resets the allocator's locks in the child, so
/// the child may allocate and print. The child leaves with `exit`, never returning
/// into the caller's code, so nothing of the parent's is dropped twice.
///
/// What the caller promises: no thread it started itself is running (the lesson
/// programs start none), and `task` relies on nothing that such a thread would do.
pub unsafe fn fork(task: impl FnOnce() -> Result<()>) -> Result<Child> {
    on_the_main_thread()?;
    cleanup::install()?;
    // Anything still in our output buffer would be printed twice, once by each.
    std::io::stdout().flush()?;
    let parent = getpid();
    let blocked = SignalsBlocked::now()?;
    let mut registry = cleanup::registry();
    // SAFETY: the function's contract above.
    match unsafe { nix::unistd::fork() }.context("fork failed")? {
        ForkResult::Child => forked_child(parent, blocked, task),
        ForkResult::Parent { child } => {
            registry.children.push(child);
            drop(registry);
            drop(blocked);
            Ok(Child {
                label: "the child process".to_owned(),
                pid: child,
                started: Instant::now(),
                command: None,
                ended: None,
                stdin: None,
                stdout: None,
                stderr: None,
            })
        }
    }
}

/// The forked child's whole life: the child's rules, the task, and `exit`.
fn forked_child(parent: Pid, blocked: SignalsBlocked, task: impl FnOnce() -> Result<()>) -> ! {
    let label = "child";
    blocked.default_actions_in_child();
    crate::set_role(label);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // `ps` and /proc/PID/comm then tell it from its parent, whose copy it is.
        let _ = nix::sys::prctl::set_name(c"child");
        nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
        ensure!(getppid() == parent, "the parent process {parent} is gone");
        #[cfg(feature = "test-faults")]
        crate::faults::child_starts(label);
        task()?;
        #[cfg(feature = "test-faults")]
        crate::faults::child_is_done(label);
        Ok(())
    }));
    let code = match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(err)) => {
            crate::say_error(&format!("{err:#}"));
            1
        }
        Err(_panic) if crate::output_closed() => i32::from(crate::CLOSED_OUTPUT),
        Err(_panic) => 101, // the message is already on standard error
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// In a child: the child's rules, checked, then `task`.
///
/// `label` ("child", "child 3") names the child in its error lines. The child learns
/// its parent's pid from `EXAMPLES_PARENT_PID`, which [`start`] sets; another parent
/// (a Python script handing its file to our child, say) sets it to its own pid. A
/// child sub-command started by hand, or whose parent died before it got here, ends
/// with an error instead of running.
pub fn as_child(label: &str, task: impl FnOnce() -> Result<()>) -> Result<()> {
    crate::set_role(label);
    let parent = std::env::var(PARENT_VARIABLE)
        .ok()
        .and_then(|pid| pid.parse::<i32>().ok())
        .with_context(|| {
            format!("this sub-command is a child's half: its parent starts it with {PARENT_VARIABLE} set to the parent's pid")
        })?;
    // [`start`] asked for it before `exec`; a parent that is not this program may not
    // have. Asking twice costs nothing.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .context("cannot set the parent-death signal")?;
    // If the parent died before the request took effect, our parent is another process.
    ensure!(getppid().as_raw() == parent, "the parent process {parent} is gone");
    // A child that calls back starts its task once it has (see crate::ipc).
    #[cfg(feature = "test-faults")]
    if std::env::var_os(crate::ipc::CALLS_BACK_VARIABLE).is_none() {
        crate::faults::child_starts(label);
    }
    #[cfg(feature = "test-faults")]
    if let Ok(fd) = handed_over() {
        // The relay takes the real descriptor; the number the task finds is its input.
        let relay = crate::faults::cut_short(nix::unistd::dup(&fd)?)?;
        let mut fd = fd;
        nix::unistd::dup2(&relay, &mut fd)?;
        let _ = std::os::fd::IntoRawFd::into_raw_fd(fd);
    }
    task()?;
    #[cfg(feature = "test-faults")]
    crate::faults::child_is_done(label);
    Ok(())
}

impl Child {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// The child's name in messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Waits for the child to end (`join()`); anything but exit status 0 is an
    /// error that says how it ended. Returns how long it ran.
    pub fn wait(mut self) -> Result<Duration> {
        let status = self.wait_status()?;
        self.check(status)?;
        Ok(self.running_time())
    }

    /// Waits for the child (`join()`), then gives the parent's own `outcome` of its
    /// conversation with it. A child that failed is the real story, and what the
    /// parent saw of it (a broken pipe, a stream cut short) only the symptom, added
    /// in brackets; so the child is waited for before the parent's result is judged.
    pub fn wait_then<T>(self, outcome: Result<T>) -> Result<T> {
        match (self.wait(), outcome) {
            (Err(failed), Err(symptom)) => bail!("{failed:#} ({symptom:#})"),
            (Err(failed), Ok(_)) => Err(failed),
            (Ok(_), outcome) => outcome,
        }
    }

    /// Waits for the child to end, and returns how: `Ok` for exit status 0.
    pub fn wait_status(&mut self) -> Result<WaitStatus> {
        if let Some((status, _)) = self.ended {
            return Ok(status);
        }
        // WNOWAIT: learn that it ended but leave it a zombie, so its pid stays ours
        // until the registry has forgotten it.
        let status = loop {
            match waitid(Id::Pid(self.pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Err(Errno::EINTR) => continue,
                other => break other,
            }
        }
        .with_context(|| format!("cannot wait for {}", self.label))?;
        self.reap(status);
        Ok(status)
    }

    /// The child's status if it has ended (then it is reaped), None if it runs.
    pub fn try_wait(&mut self) -> Result<Option<WaitStatus>> {
        if let Some((status, _)) = self.ended {
            return Ok(Some(status));
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
        match waitid(Id::Pid(self.pid), flags)
            .with_context(|| format!("cannot wait for {}", self.label))?
        {
            WaitStatus::StillAlive => Ok(None),
            status => {
                self.reap(status);
                Ok(Some(status))
            }
        }
    }

    /// How long the child ran, from its start to its end (or to now, if it runs).
    pub fn running_time(&self) -> Duration {
        let end = self.ended.map_or_else(Instant::now, |(_, at)| at);
        end.duration_since(self.started)
    }

    /// Waits up to `limit` for the child to end; then kills it. Returns how it
    /// ended, and whether it was us who ended it.
    pub fn wait_or_kill(&mut self, limit: Duration) -> Result<(WaitStatus, bool)> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait()? {
                return Ok((status, false));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = kill(self.pid, Signal::SIGKILL);
        Ok((self.wait_status()?, true))
    }

    /// `Ok` for exit status 0, else "<label> failed: exit status 3" or "<label> was
    /// killed by signal 9 (SIGKILL)", naming the `--child-cmd` it ran.
    pub fn check(&self, status: WaitStatus) -> Result<()> {
        match self.how_it_failed(status) {
            None => Ok(()),
            Some(what) => bail!("{what}{}", self.command_note()),
        }
    }

    fn how_it_failed(&self, status: WaitStatus) -> Option<String> {
        match status {
            WaitStatus::Exited(_, 0) => None,
            status => Some(format!("{} {}", self.label, describe(status))),
        }
    }

    /// " (child command: CMD)" for a `--child-cmd` child: its own messages are above.
    fn command_note(&self) -> String {
        match &self.command {
            Some(cmd) => format!(" (child command: {cmd})"),
            None => String::new(),
        }
    }

    /// Adds to `err` how this child ended, if it has or is about to.
    ///
    /// An error seen through a pipe or socket only says "closed" or "broken pipe";
    /// the exit status says why (killed by SIGKILL, say). A process that is ending
    /// has no status yet for a moment, and under load that moment can last: so wait
    /// for it, up to 2 s, while the kernel marks it as exiting or `closed` says its
    /// end of a channel closed, which it does only on its way out. A child that
    /// runs normally is not waited for: the error is not about it.
    pub fn explain(&mut self, err: anyhow::Error, closed: bool) -> anyhow::Error {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.try_wait() {
                Ok(Some(status)) => {
                    return match self.check(status) {
                        Err(ended) => err.context(format!("{ended:#}")),
                        Ok(()) => err,
                    };
                }
                Ok(None) if (closed || is_exiting(self.pid)) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return err,
            }
        }
    }

    /// Forget the pid in the registry, then reap the zombie: in this order, a
    /// signal can never find a pid that was reused.
    fn reap(&mut self, status: WaitStatus) {
        let mut registry = cleanup::registry();
        registry.children.retain(|&pid| pid != self.pid);
        let _ = waitpid(self.pid, None);
        self.ended = Some((status, Instant::now()));
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.ended.is_none() {
            // Not reaped yet, so the pid is still this child's.
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = self.wait_status();
        }
    }
}

/// "failed: exit status 3" or "was killed by signal 9 (SIGKILL)".
pub fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("failed: exit status {code}"),
        WaitStatus::Signaled(_, signal, _) => {
            format!("was killed by signal {} ({signal})", signal as i32)
        }
        other => format!("ended: {other:?}"),
    }
}

/// Whether the kernel has begun to end process `pid`: it marks the process
/// PF_EXITING (bit 0x4 of the flags, field 9 of /proc/<pid>/stat) before it
/// closes the process's files.
fn is_exiting(pid: Pid) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Field 2, the name in parentheses, may hold spaces: count from its end.
    let flags = stat
        .rsplit_once(')')
        .and_then(|(_, fields)| fields.split_whitespace().nth(6))
        .and_then(|flags| flags.parse::<u64>().ok());
    flags.is_some_and(|flags| flags & PF_EXITING != 0)
}

/// The parent-death signal fires when the thread that started the child ends: a
/// child started from a short-lived thread would be killed with it.
fn on_the_main_thread() -> Result<()> {
    ensure!(
        gettid() == getpid(),
        "children are started from the main thread only (their parent-death signal fires when the starting thread ends)"
    );
    Ok(())
}
