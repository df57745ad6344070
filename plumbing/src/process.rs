//! Child processes: Python's `Process(target=task, args=(...))`, `start()` and
//! `join()`, one way in every program.
//!
//! A program names what its children do in one enum, its `Task`: one variant per
//! child function, holding that function's arguments. A scene starts a child with
//! `Process::new(&Task::OneChild { path, n }).start()?` and waits for it with
//! `join()`. The child is this program again (Python's `spawn` start method): a
//! fresh process that shares no memory with the parent and gets only its command
//! line, `examples-mmap child one-child /tmp/x/data.f32 1000`. Its `main` parses
//! that line back into the same `Task` and calls the child function. Nothing else
//! passes: no environment variable, no hidden descriptor. A descriptor the child
//! needs, such as the end of a pipe, is one of the task's arguments, a [`HandOver`],
//! and it alone stays open across `exec`.
//!
//! [`fork`] is the other way, where what the child inherits is the lesson.
//!
//! Every child, however it was made:
//!
//! - **dies with its parent**: the kernel sends it SIGKILL when the parent dies,
//!   even of SIGKILL (Linux's parent-death signal, asked for between `fork` and
//!   `exec`, after checking that the parent is still there). The signal fires when
//!   the *thread* that started the child ends, so children are started from the
//!   main thread only;
//! - **has a process group of its own**, so Ctrl-C in the terminal reaches only the
//!   parent, which stops the group itself and then cleans up;
//! - **is registered from start to reaping** (see [`crate::cleanup`]);
//! - **is killed and reaped when its [`Child`] is dropped** while it still runs: a
//!   scene that returns early with an error leaves no process behind.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{ForkResult, Pid, getpid, getppid, gettid};

use crate::cleanup::{self, SignalsBlocked};

/// What a child is to do: implemented by each program's `Task` enum.
pub trait Task {
    /// The child's command line after `child`: the variant's sub-command, then its
    /// arguments in the order the variant declares them, as `clap` reads them back:
    /// `args!["one-child", path, n]`.
    fn args(&self) -> Args;
}

/// A child's command line, and the descriptors it inherits ([`HandOver`]s).
#[derive(Debug, Default, Clone)]
pub struct Args {
    words: Vec<OsString>,
    keep: Vec<RawFd>,
}

/// A value that can be one word of a child's command line (see [`args!`]).
pub trait Arg {
    fn push_onto(&self, args: &mut Args);
}

/// `args!["one-child", path, n]`: the words of a child's command line.
#[macro_export]
macro_rules! args {
    ($($arg:expr),* $(,)?) => {{
        let mut args = $crate::process::Args::default();
        $( $crate::process::Arg::push_onto(&$arg, &mut args); )*
        args
    }};
}

impl<T: Arg + ?Sized> Arg for &T {
    fn push_onto(&self, args: &mut Args) {
        (**self).push_onto(args);
    }
}

impl Arg for str {
    fn push_onto(&self, args: &mut Args) {
        args.words.push(self.into());
    }
}

impl Arg for String {
    fn push_onto(&self, args: &mut Args) {
        args.words.push(self.into());
    }
}

/// A path is passed as its bytes, whatever they are: no path is too odd for a child.
impl Arg for Path {
    fn push_onto(&self, args: &mut Args) {
        args.words.push(self.as_os_str().to_owned());
    }
}

impl Arg for PathBuf {
    fn push_onto(&self, args: &mut Args) {
        self.as_path().push_onto(args);
    }
}

macro_rules! arg_by_display {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn push_onto(&self, args: &mut Args) {
                args.words.push(self.to_string().into());
            }
        }
    )*};
}
arg_by_display!(u32, u64, usize, f64);

/// A descriptor the parent hands to its child, as Python passes `child_conn` in
/// `Process(target=task, args=(child_conn,))`. On the child's command line it is the
/// descriptor's number; that one descriptor is left open across `exec` (every other
/// one this program opens is close-on-exec), so the child finds it under the same
/// number. The child takes it with [`HandOver::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandOver(RawFd);

impl HandOver {
    /// In the parent: hand `fd` to the child. The parent keeps `fd` open until the
    /// child has started, and should close it then (see the pipe scene).
    pub fn new(fd: &impl AsRawFd) -> HandOver {
        HandOver(fd.as_raw_fd())
    }

    /// In the child: the descriptor, checked to be an open pipe or socket (never
    /// standard input, output or error), now owned by this process.
    pub fn take(self) -> Result<OwnedFd> {
        let HandOver(fd) = self;
        ensure!(fd > 2, "the handed-over descriptor must be 3 or higher, not {fd}");
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .with_context(|| format!("descriptor {fd} is not open in the child"))?;
        let target = target.to_string_lossy();
        ensure!(
            target.starts_with("pipe:") || target.starts_with("socket:"),
            "descriptor {fd} is {target}, not a pipe or a socket"
        );
        // SAFETY: the descriptor is open (checked above), the parent left it open for
        // this process alone, and `take` consumes the only HandOver naming it: this
        // OwnedFd is its only owner and closes it exactly once.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        #[cfg(feature = "test-faults")]
        let fd = crate::faults::cut_short(fd)?;
        Ok(fd)
    }
}

impl Arg for HandOver {
    fn push_onto(&self, args: &mut Args) {
        args.words.push(self.0.to_string().into());
        args.keep.push(self.0);
    }
}

impl std::str::FromStr for HandOver {
    type Err = std::num::ParseIntError;
    fn from_str(text: &str) -> Result<HandOver, Self::Err> {
        text.parse().map(HandOver)
    }
}

/// A child about to be started: `Process(target=task, args=(...))`.
pub struct Process<T> {
    task: T,
    label: String,
    stdin_piped: bool,
    program: Option<String>,
}

impl<T> Process<T> {
    /// The child that runs `task`, called "the child process" in messages.
    pub fn new(task: T) -> Process<T> {
        Process { task, label: "the child process".into(), stdin_piped: false, program: None }
    }

    /// Its name in messages: "child 3 of 100", "the server process".
    pub fn label(mut self, label: impl Into<String>) -> Process<T> {
        self.label = label.into();
        self
    }

    /// A pipe to its standard input, taken with [`Child::stdin`].
    pub fn stdin_piped(mut self) -> Process<T> {
        self.stdin_piped = true;
        self
    }

    /// The task and the label, for a way of starting that hands the task over later
    /// (a child that calls back for it).
    pub fn into_parts(self) -> (T, String) {
        (self.task, self.label)
    }
}

impl<T: Task> Process<T> {
    /// `--child-cmd CMD`: run CMD (a Python script, say) instead of this program,
    /// with the task's arguments after its sub-command (`PATH N`, not `one-child`).
    /// /bin/sh splits CMD the way a prompt would (so quotes work), then `exec`s it:
    /// the child is that program itself, not a shell waiting for it. The arguments
    /// follow as "$@", never pasted into the command, so no path or name can be read
    /// as shell syntax. None: this program's own child.
    pub fn program(mut self, cmd: Option<&str>) -> Process<T> {
        self.program = cmd.map(str::to_owned);
        self
    }

    /// `start()`: the child runs from here on; join it with [`Child::join`].
    pub fn start(self) -> Result<Child> {
        let Process { task, label, stdin_piped, program } = self;
        let args = task.args();
        on_the_main_thread()?;
        cleanup::install()?;
        let mut command = match &program {
            None => {
                let exe = std::env::current_exe().context("cannot find this program")?;
                let mut command = Command::new(exe);
                command.arg("child").args(&args.words);
                command
            }
            Some(cmd) => {
                let mut command = Command::new("/bin/sh");
                command.arg("-c").arg(format!("exec {cmd} \"$@\""));
                command.arg("sh").args(args.words.iter().skip(1)); // "sh" is $0
                command
            }
        };
        if stdin_piped {
            command.stdin(Stdio::piped());
        }
        crate::pause::hand_over(&mut command);
        command.process_group(0);
        let (parent, keep) = (getpid(), args.keep);
        // SAFETY: the closure runs in the forked child before `exec`, where the
        // parent's other threads may have left locks held, so only async-signal-safe
        // calls are allowed: prctl, getppid and one fcntl per handed-over descriptor,
        // on the child's own copy of the descriptor table. Nothing is allocated (the
        // error is a bare error number). All of it survives `exec`.
        unsafe {
            command.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                if getppid() != parent {
                    return Err(Errno::ESRCH.into()); // the parent died before we asked
                }
                for &fd in &keep {
                    let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                    let inherit = nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty());
                    nix::fcntl::fcntl(fd, inherit)?;
                }
                Ok(())
            });
        }
        // Spawned and registered under one lock: Ctrl-C cannot miss this child.
        let mut registry = cleanup::registry();
        let mut process = command.spawn().with_context(|| format!("cannot start {label}"))?;
        let pid = Pid::from_raw(process.id() as i32);
        registry.children.push(pid);
        drop(registry);
        // From here on the pid is ours to wait for; std's handle only gives the pipe.
        Ok(Child::new(label, pid, program, process.stdin.take()))
    }
}

/// A child process, from start to reaping.
pub struct Child {
    label: String,
    pid: Pid,
    started: Instant,
    /// The `--child-cmd` it runs, named in its errors.
    program: Option<String>,
    /// How and when it ended, once it has been reaped.
    ended: Option<(WaitStatus, Instant)>,
    stdin: Option<ChildStdin>,
}

impl Child {
    fn new(label: String, pid: Pid, program: Option<String>, stdin: Option<ChildStdin>) -> Child {
        Child { label, pid, started: Instant::now(), program, ended: None, stdin }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// The pipe to its standard input (see [`Process::stdin_piped`]). Dropping it
    /// closes the pipe: the child's end of input.
    pub fn stdin(&mut self) -> Result<ChildStdin> {
        self.stdin.take().context("the child's input is not a pipe of ours")
    }

    /// `join()`: waits for the child to end; anything but exit status 0 is an error
    /// that says how it ended. Returns how long it ran.
    pub fn join(mut self) -> Result<Duration> {
        let status = self.wait_status()?;
        self.check(status)?;
        Ok(self.running_time())
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

    /// The child's status if it has ended (it is reaped then), None while it runs.
    pub fn try_join(&mut self) -> Result<Option<WaitStatus>> {
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

    /// Waits for the child to end, and returns how.
    fn wait_status(&mut self) -> Result<WaitStatus> {
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

    /// How long the child ran, from its start to its end (or to now, if it runs).
    pub fn running_time(&self) -> Duration {
        let end = self.ended.map_or_else(Instant::now, |(_, at)| at);
        end.duration_since(self.started)
    }

    /// `Ok` for exit status 0, else "<label> failed: exit status 3" or "<label> was
    /// killed by signal 9 (SIGKILL)", naming the `--child-cmd` it ran.
    pub fn check(&self, status: WaitStatus) -> Result<()> {
        match self.how_it_failed(status) {
            None => Ok(()),
            Some(what) => bail!("{what}{}", self.program_note()),
        }
    }

    fn how_it_failed(&self, status: WaitStatus) -> Option<String> {
        match status {
            WaitStatus::Exited(_, 0) => None,
            status => Some(format!("{} {}", self.label, describe(status))),
        }
    }

    /// " (child command: CMD)" for a `--child-cmd` child: its own messages are above.
    fn program_note(&self) -> String {
        match &self.program {
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
    /// end of a channel closed, which it does only on its way out. A child that runs
    /// normally is not waited for: the error is not about it.
    pub fn explain(&mut self, err: anyhow::Error, closed: bool) -> anyhow::Error {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.try_join() {
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

/// `join()` for every child, started together: returns when each one finished,
/// counted from the first start. When one fails, the others are killed and reaped
/// before the error comes back, so a scene never waits for the rest of a failed
/// team. The children are named "child i of k" in messages.
pub fn join_all(mut children: Vec<Child>) -> Result<Vec<Duration>> {
    let count = children.len();
    let first_start = children.iter().map(|child| child.started).min();
    for (i, child) in children.iter_mut().enumerate().filter(|_| count > 1) {
        child.label = format!("child {} of {count}", i + 1);
    }
    let mut running: Vec<(usize, Child)> = children.into_iter().enumerate().collect();
    let mut finished = vec![Duration::ZERO; count];
    while !running.is_empty() {
        std::thread::sleep(Duration::from_millis(5));
        let mut failure = None;
        for (i, child) in &mut running {
            if let Some(status) = child.try_join()? {
                finished[*i] = child.ended.map_or(Duration::ZERO, |(_, at)| {
                    at.duration_since(first_start.unwrap_or(child.started))
                });
                if let Some(what) = child.how_it_failed(status) {
                    failure.get_or_insert((what, child.program_note()));
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
/// on the main thread; the plumbing's own threads (the cleanup thread, and with
/// `--pause` the pause thread) hold no lock while they wait, and while the cleanup
/// thread holds one (handling a signal) this function waits and the process exits;
/// the registry lock is held across the fork and never used in the child. glibc
/// resets the allocator's locks in the child, so the child may allocate and print.
/// The child leaves with `exit`, never returning into the caller's code, so nothing
/// of the parent's is dropped twice.
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
            Ok(Child::new("the child process".into(), child, None, None))
        }
    }
}

/// The forked child's whole life: the child's rules, the task, and `exit`.
fn forked_child(parent: Pid, blocked: SignalsBlocked, task: impl FnOnce() -> Result<()>) -> ! {
    blocked.default_actions_in_child();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // `ps` and /proc/PID/comm then tell it from its parent, whose copy it is.
        let _ = nix::sys::prctl::set_name(c"child");
        nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
        ensure!(getppid() == parent, "the parent process {parent} is gone");
        as_child("child", task)
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

/// The child's side: `label` ("child", "child 3") names this process in its error
/// lines; then `task` runs.
///
/// A child started by [`Process::start`] already has its parent-death signal; one
/// started by another parent (a Python script handing its file to our child, say)
/// may not, so it asks again, which costs nothing.
pub fn as_child(label: &str, task: impl FnOnce() -> Result<()>) -> Result<()> {
    as_child_calling_back(label, || Ok(()), |()| task())
}

/// [`as_child`] for a child that first calls back to its parent for its task:
/// `call_back` gets the task, then `task` does it. (The test suite's faults that
/// act "as the child starts its task" act between the two.)
pub fn as_child_calling_back<T>(
    label: &str,
    call_back: impl FnOnce() -> Result<T>,
    task: impl FnOnce(T) -> Result<()>,
) -> Result<()> {
    crate::set_role(label);
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .context("cannot set the parent-death signal")?;
    let given = call_back()?;
    #[cfg(feature = "test-faults")]
    crate::faults::child_starts(label);
    task(given)?;
    #[cfg(feature = "test-faults")]
    crate::faults::child_is_done(label);
    Ok(())
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

/// `--child-cmd` must name something to run (a clap value parser).
pub fn parse_child_cmd(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the child command is empty".into());
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn a_command_line_is_its_words_and_keeps_what_it_hands_over() {
        let path = PathBuf::from("/tmp/a b");
        let args = args!["one-child", path, 1000usize, 2.5f64, HandOver(7)];
        let words: Vec<&OsStr> = args.words.iter().map(OsString::as_os_str).collect();
        assert_eq!(words, ["one-child", "/tmp/a b", "1000", "2.5", "7"].map(OsStr::new));
        assert_eq!(args.keep, [7]);
    }

    #[test]
    fn a_path_travels_as_its_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let odd = PathBuf::from(OsStr::from_bytes(b"/tmp/\xff\nx"));
        assert_eq!(args![odd].words[0].as_bytes(), b"/tmp/\xff\nx");
    }
}
