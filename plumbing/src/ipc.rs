//! Children that call back: how a spawned child of the queue and manager programs
//! gets its first channel to the parent.
//!
//! A spawned child shares nothing with its parent, so it cannot inherit a channel.
//! The parent opens an ipc-channel `IpcOneShotServer` (a listening Unix socket in a
//! fresh directory under TMPDIR), starts the child with the socket's path as its last
//! argument, and waits; the child connects and sends its first message, typically a
//! sender pointing back at itself. Senders can travel inside messages (the file
//! descriptor goes with them), so from then on any channel can follow.
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
use std::process::Command;
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver, IpcSender};
use ipc_channel::{IpcError, TryRecvError};
use nix::sys::stat::{Mode, umask};
use nix::sys::wait::WaitStatus;
use nix::unistd::{AccessFlags, access};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::children::{self, Child};
use crate::cleanup::ScratchDir;

/// Set for a child that calls back: its task starts once it has called back, so
/// that is when the test fault switch acts ([`call_back`]).
pub(crate) const CALLS_BACK_VARIABLE: &str = "EXAMPLES_CALLS_BACK";

/// Starts `command` as a child called `label`, with the name of a fresh one-shot
/// socket appended to its arguments, and waits until it has called back with its
/// first message of type `T` (or died trying: then the error says how it ended).
/// Returns the child, the channel it called back on, and that first message.
pub fn start_and_accept<T>(label: &str, mut command: Command) -> Result<(Child, IpcReceiver<T>, T)>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    check_temp_dir()?;
    let (server, name) =
        IpcOneShotServer::<T>::new().context("cannot open a socket for a child to call back on")?;
    command.arg(&name).env(CALLS_BACK_VARIABLE, "1");
    let mut child = children::start(label, command)?;

    let (done, accepted) = mpsc::channel();
    let acceptor = std::thread::spawn(move || {
        let _ = done.send(server.accept());
    });
    loop {
        match accepted.recv_timeout(Duration::from_millis(10)) {
            Ok(result) => {
                let _ = acceptor.join();
                let (channel, first) = result
                    .with_context(|| format!("{label} did not call back properly"))
                    .map_err(|err| child.explain(err, true))?;
                return Ok((child, channel, first));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => bail!("the thread accepting {label} vanished"),
        }
        if let Some(status) = child.try_wait()? {
            // It may have connected just before it ended: let the acceptor finish.
            if let Ok(Ok((channel, first))) = accepted.recv_timeout(Duration::from_millis(500)) {
                let _ = acceptor.join();
                return Ok((child, channel, first));
            }
            // Connect and hang up ourselves: that ends the acceptor's wait, and with
            // it the socket's directory.
            drop(IpcSender::<T>::connect(name));
            let _ = acceptor.join();
            let how = match status {
                WaitStatus::Exited(_, code) => {
                    format!("failed before connecting: exit status {code}")
                }
                other => format!("{} before connecting", children::describe(other)),
            };
            bail!("{label} {how}");
        }
    }
}

/// In the child: connects to the parent's socket and sends `first`; returns the
/// sender, for more messages of the same type. The test fault switch acts before
/// (`exit-before-connect`) and after (`exit`, `panic`, `sleep`).
pub fn call_back<T: Serialize>(socket: &str, first: T) -> Result<IpcSender<T>> {
    #[cfg(feature = "test-faults")]
    crate::faults::before_calling_back(crate::role());
    let parent =
        IpcSender::<T>::connect(socket.to_owned()).context("could not connect to the parent")?;
    parent.send(first).context("could not call back to the parent")?;
    #[cfg(feature = "test-faults")]
    crate::faults::child_starts(crate::role());
    Ok(parent)
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
            if let Some(status) = child.try_wait()? {
                child.check(status)?;
            }
        }
    }
}

/// Waits for every child; a child's failure is reported before the parent's own.
///
/// When a child dies, the parent only sees a symptom (a closed queue, a broken
/// send); the child's exit status is the real story. `outcome` is what the parent
/// got from its side of the conversation. When it failed, the children get a moment
/// to finish dying, and whatever still runs after that is killed (it may be stuck
/// putting to us), so this never hangs on a broken conversation.
///
/// Call it while the parent's receiving ends are still open: a healthy child stuck
/// in a send then stays stuck and is killed, not blamed. Closing them first would
/// make its send fail, and its exit status 1 could hide the child that really failed.
///
/// Returns the outcome and the longest time a child ran, from start to exit.
pub fn finish_all<T>(children: Vec<Child>, outcome: Result<T>) -> Result<(T, Duration)> {
    let limit = match outcome {
        Ok(_) => Duration::MAX,
        Err(_) => Duration::from_secs(2),
    };
    let started = Instant::now();
    let count = children.len();
    let (mut failures, mut longest) = (Vec::new(), Duration::ZERO);
    for mut child in children {
        let left = limit.saturating_sub(started.elapsed());
        let (status, killed_by_us) = match limit {
            Duration::MAX => (child.wait_status()?, false),
            _ => child.wait_or_kill(left)?,
        };
        longest = longest.max(child.running_time());
        if !killed_by_us && let Err(err) = child.check(status) {
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
/// directory of its own in TMPDIR, registered before it exists (removed on Ctrl-C,
/// at the end of the run, and by the watchdog after a SIGKILL), and TMPDIR points
/// into it: every socket directory lands inside.
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
    let run_dir = ScratchDir::new("exr-")?.keep_for_the_run();
    // SAFETY: set_var must not race with another thread reading the environment.
    // This runs on the main thread; the plumbing's other threads (the cleanup thread
    // waiting for a signal, the pause thread reading standard input) never read it,
    // and no acceptor thread exists yet: they start only after this first check.
    unsafe { std::env::set_var("TMPDIR", &run_dir) };
    let _ = RUN_DIR.set(run_dir);
    Ok(())
}
