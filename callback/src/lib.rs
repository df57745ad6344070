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
//! `.start()`. Only the programs that use ipc-channel compile this crate.
//!
//! Two pitfalls are handled here once:
//!
//! - `accept` waits forever for a child that died before connecting: it runs on a
//!   helper thread while this thread watches the child, and a dead child ends the
//!   wait with its exit status.
//! - ipc-channel makes its socket directory itself, in TMPDIR: it panics when it
//!   cannot, and silently cuts a path longer than a socket address holds (107 bytes),
//!   binding the socket somewhere else. Both are refused first with a clear message,
//!   and the sockets go into a registered directory of the run's own.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use ipc_channel::{IpcError, TryRecvError};
use nix::sys::stat::{Mode, umask};
use nix::sys::wait::WaitStatus;
use nix::unistd::{AccessFlags, access};
use plumbing::process::{Args, Child, describe};
use plumbing::{Process, args};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A task that reaches its child down a channel.
pub trait Task: Serialize + DeserializeOwned + Send + 'static {
    /// The child's name in its own lines and errors: "server", "child", "child 2".
    fn role(&self) -> String;
}

/// `.start_calling_back()`, the one option of `Process` for such a task.
pub trait StartCallingBack {
    /// `start()`, then hands the child its task once it has called back. A child
    /// that dies before that ends the wait with an error that says how it ended.
    fn start_calling_back(self) -> Result<Child>;
}

impl<T: Task> StartCallingBack for Process<T> {
    fn start_calling_back(self) -> Result<Child> {
        let (task, label) = self.into_parts();
        check_temp_dir()?;
        let (server, socket) = IpcOneShotServer::<IpcSender<T>>::new()
            .context("cannot open a socket for a child to call back on")?;
        let call_back = CallBack { role: task.role(), socket: socket.clone() };
        let mut child = Process::new(call_back).label(&label).start()?;
        let tasks = accept(&mut child, server, &socket, &label)?;
        tasks.send(task).map_err(|err| {
            let err = anyhow::Error::new(err).context(format!("{label} went away before its task"));
            child.explain(err, true)
        })?;
        Ok(child)
    }
}

/// The command line of a child that calls back: its role and the socket.
struct CallBack {
    role: String,
    socket: String,
}

impl plumbing::Task for CallBack {
    fn args(&self) -> Args {
        args![self.role, self.socket]
    }
}

/// Waits for the child to connect and send the channel its task goes down, on a
/// helper thread, while this thread watches the child: a dead child ends the wait.
fn accept<T: Task>(
    child: &mut Child,
    server: IpcOneShotServer<IpcSender<T>>,
    socket: &str,
    label: &str,
) -> Result<IpcSender<T>> {
    let (done, accepted) = mpsc::channel();
    let acceptor = std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || {
            let _ = done.send(server.accept());
        })
        .context("cannot start a thread to wait for the child")?;
    loop {
        match accepted.recv_timeout(Duration::from_millis(10)) {
            Ok(result) => {
                let _ = acceptor.join();
                let (_, tasks) = result
                    .with_context(|| format!("{label} did not call back properly"))
                    .map_err(|err| child.explain(err, true))?;
                return Ok(tasks);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => bail!("the thread accepting {label} vanished"),
        }
        if let Some(status) = child.try_join()? {
            // It may have connected just before it ended: let the acceptor finish.
            if let Ok(Ok((_, tasks))) = accepted.recv_timeout(Duration::from_millis(500)) {
                let _ = acceptor.join();
                return Ok(tasks);
            }
            // Connect and hang up ourselves: that ends the acceptor's wait, and with
            // it the socket's directory.
            drop(IpcSender::<IpcSender<T>>::connect(socket.to_owned()));
            let _ = acceptor.join();
            let how = match status {
                WaitStatus::Exited(_, code) => {
                    format!("failed before connecting: exit status {code}")
                }
                other => format!("{} before connecting", describe(other)),
            };
            bail!("{label} {how}");
        }
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
        plumbing::faults::before_calling_back(role);
        let (tasks, incoming) = ipc::channel::<T>()?;
        let parent = IpcSender::<IpcSender<T>>::connect(socket.to_owned())
            .context("could not connect to the parent")?;
        parent.send(tasks).context("could not call back to the parent")?;
        incoming.recv().context("the parent went away before sending the task")
    };
    plumbing::process::as_child_calling_back(role, call_back, run)
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
            if let Some(status) = child.try_join()? {
                child.check(status)?;
            }
        }
    }
}

/// `join()` for every child, with the parent's own `outcome` of its talk with them;
/// a child's failure is reported before the parent's own.
///
/// When a child dies, the parent only sees a symptom (a closed queue, a broken
/// send); the child's exit status is the real story. When `outcome` failed, the
/// children get a moment to finish dying, and whatever still runs after that is
/// killed (it may be stuck putting to us), so this never hangs on a broken talk.
///
/// Call it while the parent's receiving ends are still open: a healthy child stuck
/// in a send then stays stuck and is killed, not blamed. Closing them first would
/// make its send fail, and its exit status 1 could hide the child that really failed.
///
/// Returns the outcome and the longest time a child ran, from start to exit.
pub fn join_all_with<T>(children: Vec<Child>, outcome: Result<T>) -> Result<(T, Duration)> {
    let limit = match outcome {
        Ok(_) => None,
        Err(_) => Some(Instant::now() + Duration::from_secs(2)),
    };
    let count = children.len();
    let (mut failures, mut longest) = (Vec::new(), Duration::ZERO);
    for mut child in children {
        let status = loop {
            match child.try_join()? {
                Some(status) => break Some(status),
                None if limit.is_some_and(|limit| Instant::now() > limit) => break None,
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        };
        longest = longest.max(child.running_time());
        // None: still running after the moment it was given; dropping it kills it.
        if let Some(Err(err)) = status.map(|status| child.check(status)) {
            failures.push(err);
        }
    }
    if let Some(first) = failures.first() {
        if failures.len() > 1 {
            bail!("{first:#} ({} of {count} children failed)", failures.len());
        }
        bail!("{first:#}");
    }
    Ok((outcome?, longest))
}

/// ipc-channel makes each socket's directory in TMPDIR, itself, at a moment we
/// cannot register it first. So before the first socket, this process gets a
/// directory of its own in TMPDIR, registered (removed on Ctrl-C, at the end of the
/// run, and by the watchdog after a SIGKILL), and TMPDIR points into it: every
/// socket directory lands inside.
///
/// The problems ipc-channel would have with a TMPDIR it cannot use (see the module's
/// documentation) are refused here with a clear message first. Everything it makes
/// gets a umask of 077: under the usual 022 every user could list the directories.
/// (These programs make no other files after this, so nothing else changes.)
fn check_temp_dir() -> Result<()> {
    static RUN_DIR: OnceLock<PathBuf> = OnceLock::new();
    if RUN_DIR.get().is_some() {
        return Ok(());
    }
    umask(Mode::from_bits_truncate(0o077));
    let dir = std::env::temp_dir();
    // We add "/exr-XXXXXXXX" (13 bytes) and ipc-channel "/.tmpXXXXXX/socket" (18).
    ensure!(
        dir.as_os_str().len() + 13 + 18 <= 107,
        "TMPDIR {} is too long for the path of a Unix socket in it; use one of at most 76 bytes",
        dir.display()
    );
    let is_dir = std::fs::metadata(&dir).is_ok_and(|meta| meta.is_dir());
    ensure!(
        is_dir && access(&dir, AccessFlags::W_OK | AccessFlags::X_OK).is_ok(),
        "TMPDIR {} is not a directory this program can write in (its sockets go there)",
        dir.display()
    );
    let run_dir = plumbing::cleanup::ScratchDir::new("exr-")?.keep_for_the_run();
    // SAFETY: set_var must not race with another thread reading the environment.
    // This runs on the main thread; the plumbing's other threads (the cleanup thread
    // waiting for a signal, the pause thread reading standard input) never read it,
    // and no acceptor thread exists yet: they start only after this first check.
    unsafe { std::env::set_var("TMPDIR", &run_dir) };
    let _ = RUN_DIR.set(run_dir);
    Ok(())
}
