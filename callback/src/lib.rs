//! Children that call back for their task: the queue and manager programs.
//!
//! Their children's tasks hold channels: the put end of a queue, a manager's proxy.
//! A channel end is an open socket, which no command line can carry. So such a child
//! is started with the path of a socket its parent listens on (ipc-channel's
//! one-shot server): `examples-queue child child /tmp/exr-x/.tmpA1b2/socket` (its
//! role, then the socket). It connects and sends the parent a channel of its own,
//! and the parent sends the task down that channel, channel ends and all: the kernel
//! passes the descriptors (SCM_RIGHTS). Python's spawn start method does the same
//! with a queue in `args`: it pickles it, descriptors and all, to the new process.
//!
//! The start is the plumbing's `Process`, with one option:
//! `Process::new(Task::MakeOnes { n, queue }).start_calling_back()` instead of
//! `.start()`; [`start_all`] starts several side by side. Only the programs that
//! use ipc-channel compile this crate.
//!
//! Three pitfalls are handled here once (the first and the last in accept.rs):
//!
//! - `accept` waits forever for a child that died before connecting: it runs on a
//!   helper thread while this thread watches the child, and a dead child ends the
//!   wait with its exit status.
//! - ipc-channel makes its socket directory itself, in TMPDIR: it panics when it
//!   cannot, or when the path is not UTF-8, and silently cuts a path longer than a
//!   socket address holds (107 bytes), binding the socket somewhere else. All are
//!   refused first with a clear message, and the sockets go into a registered
//!   directory of the run's own.
//! - Any process of the same user can connect to the socket and write anything, and
//!   on some malformed messages ipc-channel's `accept` panics instead of returning
//!   an error: the panic is caught, and said as one line.

mod accept;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use ipc_channel::{IpcError, TryRecvError};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{getpid, gettid};
use plumbing::Word;
use plumbing::{Child, Process, args};
use serde::Serialize;
use serde::de::DeserializeOwned;

use accept::accept;

/// A task that reaches its child down a channel.
pub trait Task: Serialize + DeserializeOwned + Send + 'static {
    /// The child's name in its own lines and errors: "server", "child", "child 2".
    fn role(&self) -> String;

    /// Its name in the parent's messages: "the server process".
    fn label(&self) -> String {
        "the child process".into()
    }
}

/// `.start_calling_back()`, the one option of `Process` for such a task.
pub trait StartCallingBack {
    /// `start()`, then hands the child its task once it has called back. A child
    /// that dies before that ends the wait with an error that says how it ended.
    fn start_calling_back(self) -> Result<Child>;
}

impl<T: Task> StartCallingBack for Process<T> {
    fn start_calling_back(self) -> Result<Child> {
        let mut started = start_all(vec![self])?;
        Ok(started.remove(0))
    }
}

/// `start()` for several children that call back: all are started before any is
/// waited for, so they start up side by side (Python's `start()` does not wait
/// for its child to start up either). Then each, in order, gets its task once it
/// has called back. If one fails, the others are stopped.
pub fn start_all<T: Task>(processes: Vec<Process<T>>) -> Result<Vec<Child>> {
    prepare()?;
    let mut calling = Vec::new();
    for process in processes {
        let task = process.into_task();
        let (server, socket) = IpcOneShotServer::<IpcSender<T>>::new()
            .context("cannot open a socket for a child to call back on")?;
        let label = task.label();
        let call_back =
            CallBack { role: task.role(), socket: socket.clone(), label: label.clone() };
        let child = Process::new(call_back).start()?;
        calling.push((child, server, socket, label, task));
    }
    let mut started = Vec::new();
    for (mut child, server, socket, label, task) in calling {
        let tasks = accept(&mut child, server, &socket, &label)?;
        tasks.send(task).map_err(|err| {
            let err = anyhow::Error::new(err).context(format!("{label} went away before its task"));
            explain(&mut child, err, true)
        })?;
        started.push(child);
    }
    Ok(started)
}

/// The command line of a child that calls back: its role and the socket.
struct CallBack {
    role: String,
    socket: String,
    label: String,
}

impl plumbing::Task for CallBack {
    fn args(&self) -> Vec<Word> {
        args![self.role, self.socket]
    }

    fn label(&self) -> String {
        self.label.clone()
    }
}

/// The child's side: calls back on `socket`, receives its task, and runs it with
/// `run`, as the plumbing's `as_child` runs any child's (`role` names it).
pub fn as_child<T: Task>(
    role: &str,
    socket: &str,
    run: impl FnOnce(T) -> Result<()>,
) -> Result<()> {
    let call_back = || {
        #[cfg(feature = "test-faults")]
        test_faults::before_calling_back(role);
        let (tasks, incoming) = ipc::channel::<T>()?;
        let parent = IpcSender::<IpcSender<T>>::connect(socket.to_owned())
            .context("could not connect to the parent")?;
        parent.send(tasks).context("could not call back to the parent")?;
        incoming.recv().context("the parent went away before sending the task")
    };
    plumbing::as_child_calling_back(role, call_back, run)
}

/// `queue.get()` from a queue that several children put on, which also gives up as
/// soon as one of them has failed. None: the queue has closed (every put end is
/// gone).
///
/// A queue closes only when every put end is gone. When one producer dies, the
/// others still hold theirs, and a plain `recv` would wait for them, however long
/// they take (forever, if one is stuck), before the death could be reported. So the
/// wait is cut into short slices, and the children are looked at in between.
pub fn recv_unless_one_failed<T>(
    queue: &IpcReceiver<T>,
    children: &mut [Child],
) -> Result<Option<T>>
where
    T: Serialize + DeserializeOwned,
{
    loop {
        match queue.try_recv_timeout(Duration::from_millis(50)) {
            Ok(message) => return Ok(Some(message)),
            Err(TryRecvError::IpcError(IpcError::Disconnected)) => return Ok(None),
            Err(TryRecvError::IpcError(err)) => {
                return Err(err).context("could not get from the queue");
            }
            Err(TryRecvError::Empty) => {}
        }
        for child in children.iter_mut() {
            if let Some(ended) = child.ended()? {
                ended?;
            }
        }
    }
}

/// ipc-channel makes each socket's directory in TMPDIR, itself, at a moment we
/// cannot register it first. So before the first socket, this process gets a
/// directory of its own in TMPDIR, registered (removed on Ctrl-C, at the end of the
/// run, and by the watchdog after a SIGKILL), and TMPDIR points into it: every
/// socket directory lands inside.
///
/// What ipc-channel could not use (see the module's documentation) is refused here
/// with one clear line. Everything it makes gets a umask of 077: under the usual 022
/// every user could list the directories. (These programs make no other files after
/// this, so nothing else changes.)
///
/// The first start does this. A bench calls it first, while its process is still
/// small: the directory's watchdog is a fork of this process, and making it before
/// the array and the feeder thread exist made the queue bench's runs at n =
/// 100,000 0.45 ms faster (medians of 250 runs, 6.86 against 6.41 ms).
pub fn prepare() -> Result<()> {
    // Kept until the end of the run, when the plumbing removes what it still lists.
    static RUN_DIR: OnceLock<plumbing::Made> = OnceLock::new();
    if RUN_DIR.get().is_some() {
        return Ok(());
    }
    ensure!(gettid() == getpid(), "the sockets' directory is made on the main thread only");
    umask(Mode::from_bits_truncate(0o077));
    let (path, run_dir) = plumbing::Made::scratch_dir("exr-")?; // says so if TMPDIR is unusable
    let Some(text) = path.to_str() else {
        let tmp = path.parent().unwrap_or(&path);
        bail!("TMPDIR {tmp:?} is not UTF-8, which a socket's path must be");
    };
    // ipc-channel adds "/.tmpXXXXXX/socket" (18 bytes); a socket address holds 107.
    ensure!(
        text.len() + 18 <= 107,
        "TMPDIR {} is too long for the path of a Unix socket in it; use one of at most 76 bytes",
        path.parent().unwrap_or(&path).display()
    );
    // SAFETY: set_var must not race with another thread reading the environment.
    // This runs once, on the main thread (checked above), before the first child
    // is started: the plumbing's other threads (the cleanup thread waiting for a
    // signal, the pause thread polling its children) never read it, no acceptor
    // thread exists yet, and the programs start no thread of their own before
    // their first child (the queue bench's feeder starts after `prepare`).
    unsafe { std::env::set_var("TMPDIR", path) };
    let _ = RUN_DIR.set(run_dir);
    Ok(())
}

/// Adds to `err` how `child` ended, if it has or is about to.
///
/// An error seen through a channel only says "closed" or "broken pipe"; the exit
/// status says why (killed by SIGKILL, say). A process that is ending has no status
/// yet for a moment, and under load that moment can last: so wait for it, up to 2 s,
/// while the kernel marks it as exiting or `closed` says its end of a channel
/// closed, which it does only on its way out. A child that runs normally is not
/// waited for: the error is not about it.
pub fn explain(child: &mut Child, err: anyhow::Error, closed: bool) -> anyhow::Error {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match child.ended() {
            Ok(Some(Err(ended))) => return err.context(format!("{ended:#}")),
            Ok(None) if (closed || is_exiting(child.pid())) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => return err,
        }
    }
}

/// Whether the kernel has begun to end process `pid`: it marks the process
/// PF_EXITING (bit 0x4 of the flags, field 9 of /proc/<pid>/stat) before it
/// closes the process's files.
fn is_exiting(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Field 2, the name in parentheses, may hold spaces: count from its end.
    let flags = stat.rsplit_once(')').and_then(|(_, fields)| fields.split_whitespace().nth(6));
    flags.and_then(|flags| flags.parse::<u64>().ok()).is_some_and(|flags| flags & 0x4 != 0)
}
