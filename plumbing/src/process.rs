//! Starting a child: Python's `Process(target=task, args=(...))` and `start()`.
//!
//! A program names what its children do in one enum, its `Task`, a variant per
//! child function holding its arguments: `Process::new(Task::OneChild { file, len
//! }).start()?`, then `join()`. The child is this program again (Python's `spawn`),
//! and gets only its command line, `examples-mmap child one-child /tmp/x/data.f32
//! 1000`, parsed back into the same `Task`: no environment variable, no hidden
//! descriptor. A descriptor it needs (a pipe's end) is an argument, a [`HandOver`].
//! Every child dies with its parent (the parent-death signal), leads a process group
//! of its own (Ctrl-C reaches only the parent, which stops the group), and is
//! registered from start to reaping (cleanup.rs).

use std::ffi::OsString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, ChildStdout, Command, Stdio};

use anyhow::{Context, Result, ensure};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::Signal;
use nix::unistd::{Pid, getpid, getppid};

use crate::child::{Child, on_the_main_thread};
use crate::cleanup;

/// What a child is to do: implemented by each program's `Task` enum.
pub trait Task {
    /// The child's command line after `child`: the variant's sub-command, then its
    /// arguments in the variant's order: `args!["one-child", file, len]`.
    fn args(&self) -> Vec<Word>;

    /// Its name in the parent's messages: "the child process", "the server process".
    fn label(&self) -> String {
        "the child process".into()
    }
}

/// One word of a child's command line: text (a path goes as its bytes, whatever
/// they are), or a descriptor it inherits ([`HandOver`]).
#[derive(Debug, Clone)]
pub enum Word {
    Text(OsString),
    Fd(RawFd),
}

/// `args!["one-child", file, len]`: the words of a child's command line.
#[macro_export]
macro_rules! args {
    ($($arg:expr),* $(,)?) => { vec![$($crate::Word::from(&$arg)),*] };
}

/// `Word::from(&value)` for each type a task's arguments have (and a reference to one).
macro_rules! word_from {
    ($($t:ty => |$v:ident| $word:expr),* $(,)?) => {$(
        impl From<&$t> for Word { fn from($v: &$t) -> Word { $word } }
        impl From<&&$t> for Word { fn from($v: &&$t) -> Word { Word::from(*$v) } }
    )*};
}
word_from! {
    str => |s| Word::Text(s.into()),
    String => |s| Word::Text(s.into()),
    Path => |p| Word::Text(p.into()),
    PathBuf => |p| Word::Text(p.into()),
    u32 => |v| Word::Text(v.to_string().into()),
    u64 => |v| Word::Text(v.to_string().into()),
    usize => |v| Word::Text(v.to_string().into()),
    f64 => |v| Word::Text(v.to_string().into()),
    HandOver => |handed| Word::Fd(handed.0),
}

/// A descriptor the parent hands to its child, as Python passes `child_conn` in
/// `Process(target=task, args=(child_conn,))`: `HandOver::from(&write_end)`. On the
/// child's command line it is the descriptor's number; that one descriptor stays
/// open across `exec` (every other is close-on-exec), and the child takes it with
/// [`HandOver::take`]. The parent should close its own once the child has started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandOver(RawFd);

impl<F: AsRawFd> From<&F> for HandOver {
    fn from(fd: &F) -> HandOver {
        HandOver(fd.as_raw_fd())
    }
}

impl HandOver {
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
        let fd = test_faults::cut_short(fd)?;
        Ok(fd)
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
    program: Option<String>,
    /// A bench run: `bench-run ...`, not `child ...`, its output read by the bench.
    bench_run: bool,
}

impl<T> Process<T> {
    /// The child that runs `task`.
    pub fn new(task: T) -> Process<T> {
        Process { task, program: None, bench_run: false }
    }

    /// `--child-cmd CMD`: run CMD (a Python script, say) instead of this program,
    /// with the task's arguments after its sub-command (`PATH N`, not `one-child`).
    /// /bin/sh splits CMD as a prompt would, then `exec`s it; the arguments follow
    /// as "$@", never pasted into the command, so no path can be read as shell
    /// syntax. None: this program's own child.
    pub fn program(mut self, cmd: Option<&str>) -> Process<T> {
        self.program = cmd.map(str::to_owned);
        self
    }

    /// The task, for a child that calls back for it (the callback crate).
    pub fn into_task(self) -> T {
        self.task
    }
}

impl<T: Task> Process<T> {
    /// `start()`: the child runs from here on; wait for it with [`Child::join`].
    pub fn start(self) -> Result<Child> {
        self.spawn().map(|(child, _)| child)
    }

    /// A timed run of the bench protocol: this program run as `ARGS...` rather than
    /// `child ARGS...`, with its standard output and error for the parent to read.
    #[doc(hidden)]
    pub fn bench_run(task: T) -> Result<(Child, ChildStdout, ChildStderr)> {
        let (child, output) = Process { bench_run: true, ..Process::new(task) }.spawn()?;
        let (stdout, stderr) = output.context("no pipes from the run")?;
        Ok((child, stdout, stderr))
    }

    fn spawn(self) -> Result<(Child, Option<(ChildStdout, ChildStderr)>)> {
        let Process { task, program, bench_run } = self;
        let label = task.label();
        let args = task.args();
        let keep: Vec<RawFd> = args
            .iter()
            .filter_map(|word| if let Word::Fd(fd) = word { Some(*fd) } else { None })
            .collect();
        let words = args.into_iter().map(|word| match word {
            Word::Text(text) => text,
            Word::Fd(fd) => fd.to_string().into(),
        });
        let words: Vec<OsString> = words.collect();
        on_the_main_thread()?;
        cleanup::install()?;
        let pausing = crate::pause::start_if_pausing()?;
        let mut command = match &program {
            None => {
                let mut command = Command::new(std::env::current_exe()?);
                command.args((!bench_run).then_some("child")).args(&words);
                command.args(pausing.then_some("--pause")); // the child holds at pause::here
                command
            }
            Some(cmd) => {
                let mut command = Command::new("/bin/sh");
                command.arg("-c").arg(format!("exec {cmd} \"$@\""));
                command.arg("sh").args(words.iter().skip(1)); // "sh" is $0
                // Another program may start children of its own, which no parent-death
                // signal reaches: the watchdog kills its whole group if we die first.
                crate::watchdog::start()?;
                command
            }
        };
        if bench_run {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        command.process_group(0);
        let parent = getpid();
        // SAFETY: the closure runs in the forked child before `exec`, where other
        // threads' locks may be held, so it makes only async-signal-safe calls
        // (prctl, getppid, fcntl on its own descriptor table) and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                if getppid() != parent {
                    return Err(Errno::ESRCH.into()); // the parent died before we asked
                }
                for &fd in &keep {
                    fcntl(BorrowedFd::borrow_raw(fd), FcntlArg::F_SETFD(FdFlag::empty()))?;
                }
                Ok(())
            });
        }
        // Spawned and registered under one lock: Ctrl-C cannot miss this child.
        let mut registry = cleanup::registry();
        let mut process = command.spawn().with_context(|| format!("cannot start {label}"))?;
        let pid = Pid::from_raw(process.id() as i32);
        registry.children.push(pid);
        if program.is_some() {
            crate::watchdog::tell_group(pid, true);
        }
        drop(registry);
        let output = process.stdout.take().zip(process.stderr.take());
        Ok((Child::new(label, pid, program), output))
    }
}

/// `--child-cmd` must name something to run (a clap value parser).
pub fn parse_child_cmd(text: &str) -> Result<String, String> {
    match text.trim().is_empty() {
        true => Err("the child command is empty".into()),
        false => Ok(text.to_string()),
    }
}
