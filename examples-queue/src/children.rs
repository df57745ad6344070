//! Starting the child processes, connecting to them, waiting for them, and
//! cleaning up after them, without ever hanging on a child that has died.
//!
//! How a child gets its arguments (what Python's `spawn` does for
//! `Process(target=task, args=(queue,))`): the parent opens an
//! `IpcOneShotServer`, a listening Unix socket in a fresh temporary directory, and
//! starts this program again with the hidden `child` sub-command and the socket's
//! path. The child connects and sends back a sender pointing at itself; the parent
//! sends the child's [`Task`] down it: its end of the queue, and for some tasks an
//! array. A sender may travel inside a message: the file descriptor goes with it.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use ipc_channel::{IpcError, TryRecvError};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::stat::{Mode, umask};
use nix::sys::wait::waitpid;
use nix::unistd::{AccessFlags, Pid, access};

use crate::Task;
use crate::parcel::Parcel;

/// What the child sends first, once connected: where its arguments should go.
type Hello = IpcSender<Task>;

/// A running child, connected, with the channel its arguments go down.
pub struct Child {
    /// "the child process" or "child process 2 of 4", for error messages.
    label: String,
    /// The child's task and arguments go here (send exactly one [`Task`]).
    pub args: IpcSender<Task>,
    process: std::process::Child,
    started: Instant,
}

/// Starts a child and waits until it has connected, or has died trying.
pub fn start(label: impl Into<String>) -> Result<Child> {
    let label = label.into();
    check_temp_dir()?;
    let (server, name) = IpcOneShotServer::<Hello>::new()
        .context("could not open a socket for the child to connect to")?;
    // The socket lives in a temporary directory that the server removes when it is
    // dropped. If Ctrl-C comes first, the signal thread removes it instead.
    let socket_dir = std::path::Path::new(&name).parent().map(PathBuf::from);
    remember(|left| left.dirs.extend(socket_dir.clone()));

    let mut command = Command::new(std::env::current_exe()?);
    command.args(["child", "--server", &name, "--parent"]);
    command.arg(std::process::id().to_string());
    let mut process = {
        // Spawn while holding the lock, so a Ctrl-C can't miss a just-started child.
        let mut left = leftovers();
        let process = command.spawn().context("could not start a child process")?;
        left.children.push(process.id());
        process
    };
    let started = Instant::now();

    let connected = accept(server, &name, &mut process);
    remember(|left| left.dirs.retain(|dir| Some(dir) != socket_dir.as_ref()));
    match connected {
        Ok(args) => Ok(Child { label, args, process, started }),
        Err(err) => {
            let _ = process.kill();
            let _ = process.wait();
            forget_child(&process);
            Err(err.context(format!("{label} failed before connecting")))
        }
    }
}

/// The socket the child connects to lives in a new directory under TMPDIR, made
/// by ipc-channel, which would misbehave with a TMPDIR it cannot use: it panics
/// when it cannot make the directory, and it silently cuts a path longer than a
/// Unix socket's address holds (107 bytes), binding the socket somewhere else.
/// So both are refused here with a clear message first.
///
/// The directory also gets the default permissions: under the usual umask (022)
/// every user could list it. A umask of 077 makes it, and the socket, this user's
/// alone. (The parent creates no other files, so nothing else is affected.)
fn check_temp_dir() -> Result<()> {
    umask(Mode::from_bits_truncate(0o077));
    let dir = std::env::temp_dir();
    // ipc-channel adds "/.tmpXXXXXX/socket": 18 bytes.
    if dir.as_os_str().len() + 18 > 107 {
        bail!(
            "TMPDIR {} is too long for the path of a Unix socket in it; use one of at \
             most 89 bytes",
            dir.display()
        );
    }
    let is_dir = std::fs::metadata(&dir).is_ok_and(|meta| meta.is_dir());
    if !is_dir || access(&dir, AccessFlags::W_OK | AccessFlags::X_OK).is_err() {
        bail!(
            "TMPDIR {} is not a directory this program can write in (its sockets go there)",
            dir.display()
        );
    }
    Ok(())
}

/// `server.accept()`, but giving up when the child dies first.
///
/// `accept` blocks until somebody connects: if the child crashes before it
/// connects, nobody ever will. So the accept runs on a helper thread while this
/// thread watches the child.
fn accept(
    server: IpcOneShotServer<Hello>,
    name: &str,
    process: &mut std::process::Child,
) -> Result<IpcSender<Task>> {
    let (done, accepted) = mpsc::channel();
    let acceptor = std::thread::spawn(move || done.send(server.accept()));
    loop {
        match accepted.recv_timeout(Duration::from_millis(10)) {
            Ok(result) => {
                let _ = acceptor.join();
                let (_hello_channel, args) = result.context("the child did not say hello")?;
                return Ok(args);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the accepting thread died"),
        }
        if let Some(status) = process.try_wait()? {
            // Wake the blocked accept with a connection of our own that closes at
            // once: accept then fails, and the server (with its directory) is dropped.
            drop(IpcSender::<Hello>::connect(name.to_owned()));
            let _ = acceptor.join();
            bail!("{}", describe(status));
        }
    }
}

impl Child {
    pub fn pid(&self) -> u32 {
        self.process.id()
    }
}

/// Runs in the child before anything else: the child side of [`start`].
pub fn connect_to_parent(server: &str, parent: i32) -> Result<Task> {
    // The parent blocked SIGINT and SIGTERM before starting us, and a blocked mask
    // survives exec: unblock them, or Ctrl-C could not stop this process.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_unblock()?;
    // If the parent dies, the kernel kills this child too (Linux)...
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    // ...unless it died before that request was made.
    if nix::unistd::getppid() != Pid::from_raw(parent) {
        bail!("the parent process has already exited");
    }

    // This crate's extra test fault: die before connecting, when the parent is
    // blocked in `accept` (see `accept` for why that must not hang the parent).
    if std::env::var("EXAMPLES_CHILD_FAULT").as_deref() == Ok("exit-before-connect") {
        eprintln!("child: failing on purpose (EXAMPLES_CHILD_FAULT=exit-before-connect)");
        std::process::exit(3);
    }
    let hello = IpcSender::<Hello>::connect(server.to_owned())
        .context("could not connect to the parent")?;
    let (args_in, args_out) = ipc::channel::<Task>()?;
    hello.send(args_in).context("could not say hello to the parent")?;
    args_out.recv().context("could not receive the arguments from the parent")
}

/// `queue.recv()` for a queue that several children put on, which also gives up as
/// soon as one of them has failed. None: the queue has closed.
///
/// A queue closes only when every put end is gone. When one producer dies, the
/// others still hold theirs, and a plain `recv` would wait for them, however long
/// they take (forever, if one is stuck), before the death could be reported. So
/// the wait is cut into short slices, and the children are looked at in between.
pub fn recv_unless_one_failed(
    queue: &IpcReceiver<Parcel>,
    children: &mut [Child],
) -> Result<Option<Parcel>> {
    loop {
        match queue.try_recv_timeout(Duration::from_millis(50)) {
            Ok(parcel) => return Ok(Some(parcel)),
            Err(TryRecvError::IpcError(IpcError::Disconnected)) => return Ok(None),
            Err(TryRecvError::IpcError(err)) => {
                return Err(err).context("could not get from the queue");
            }
            Err(TryRecvError::Empty) => {}
        }
        for child in children.iter_mut() {
            // try_wait reaps a child that has ended, and keeps its status for
            // `finish_all`, which then reports it.
            if let Some(status) = child.process.try_wait()? {
                forget_child(&child.process);
                if !status.success() {
                    bail!("{} failed: {}", child.label, describe(status));
                }
            }
        }
    }
}

/// Waits for every child; a child's failure is reported before the parent's.
///
/// When a child dies, the parent only sees a symptom (a closed queue, a broken
/// send); the child's exit status is the real story. `outcome` is what the parent
/// got from its side of the conversation. When it failed, the children get a
/// moment to finish dying, and whatever is still running after that is killed
/// (it may be stuck putting to us), so this never hangs on a broken conversation.
///
/// Call it while the queue's get end is still open: a healthy child stuck in a put
/// then stays stuck and is killed, not blamed. Closing the get end first would make
/// its put fail, and its exit status 1 could hide the child that really failed.
///
/// Returns the outcome and the longest time a child ran, from start to exit.
pub fn finish_all<T>(children: Vec<Child>, outcome: Result<T>) -> Result<(T, Duration)> {
    let deadline = outcome.is_err().then(|| Instant::now() + Duration::from_secs(2));
    let count = children.len();
    let mut failures = Vec::new();
    let mut longest = Duration::ZERO;
    for child in children {
        let Child { label, args, mut process, started } = child;
        drop(args);
        let (status, killed_by_us) = reap(&mut process, deadline)?;
        longest = longest.max(started.elapsed());
        if !status.success() && !killed_by_us {
            failures.push(format!("{label} failed: {}", describe(status)));
        }
    }
    if let Some(first) = failures.first() {
        if failures.len() > 1 {
            bail!("{first} ({} of {count} children failed)", failures.len());
        }
        bail!("{first}");
    }
    Ok((outcome?, longest))
}

/// Waits for a process: forever when things went well, or until the deadline, then
/// kills it. Also returns whether it was us who killed it.
fn reap(
    process: &mut std::process::Child,
    deadline: Option<Instant>,
) -> Result<(ExitStatus, bool)> {
    let mut result = (None, false);
    if let Some(deadline) = deadline {
        while Instant::now() < deadline {
            if let Some(status) = process.try_wait()? {
                result = (Some(status), false);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if result.0.is_none() {
            let _ = process.kill();
            result.1 = true;
        }
    }
    let status = match result.0 {
        Some(status) => status,
        None => process.wait().context("could not wait for a child")?,
    };
    forget_child(process);
    Ok((status, result.1))
}

/// "exit status 3" or "it was killed by signal 9 (SIGKILL)".
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(number)) => match Signal::try_from(number) {
            Ok(signal) => format!("it was killed by signal {number} ({signal})"),
            Err(_) => format!("it was killed by signal {number}"),
        },
        (None, None) => format!("{status}"),
    }
}

/// The test suite's way to make a child fail on purpose; not a user feature.
/// EXAMPLES_CHILD_FAULT=exit makes the child exit with status 3, =panic makes it
/// panic, =sleep makes it sleep for a minute (so a test can kill the parent mid-scene).
pub fn fail_on_purpose_if_asked() {
    match std::env::var("EXAMPLES_CHILD_FAULT").as_deref() {
        Ok("exit") => {
            eprintln!("child: failing on purpose (EXAMPLES_CHILD_FAULT=exit)");
            std::process::exit(3);
        }
        Ok("panic") => panic!("child: failing on purpose (EXAMPLES_CHILD_FAULT=panic)"),
        Ok("sleep") => std::thread::sleep(Duration::from_secs(60)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------
// Ctrl-C and SIGTERM: kill the children, remove the socket directories
// ---------------------------------------------------------------------------------

/// What an interrupted run must not leave behind.
struct Leftovers {
    children: Vec<u32>,
    dirs: Vec<PathBuf>,
}

static LEFTOVERS: Mutex<Leftovers> =
    Mutex::new(Leftovers { children: Vec::new(), dirs: Vec::new() });

fn leftovers() -> std::sync::MutexGuard<'static, Leftovers> {
    LEFTOVERS.lock().unwrap_or_else(PoisonError::into_inner)
}

fn remember(change: impl FnOnce(&mut Leftovers)) {
    change(&mut leftovers());
}

fn forget_child(process: &std::process::Child) {
    let pid = process.id();
    remember(|left| left.children.retain(|&child| child != pid));
}

/// Before the parent reports an error: if a signal's cleanup is under way (it holds
/// the lock until the process exits), the error is only its echo (a child we just
/// killed), so wait here and let the cleanup have the last word.
pub fn let_cleanup_finish() {
    drop(leftovers());
}

/// Call first thing in the parent, before any other thread or child exists.
///
/// SIGINT and SIGTERM are blocked in this thread, and so in every thread started
/// later; one thread waits for them with `sigwait`, and cleans up as ordinary code
/// (no async-signal-safety puzzles, as a signal handler would have).
pub fn clean_up_on_signals() -> Result<()> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block()?;
    std::thread::spawn(move || {
        let Ok(signal) = signals.wait() else { return };
        let left = leftovers();
        for &child in &left.children {
            let pid = Pid::from_raw(child as i32);
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        for dir in &left.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
        eprintln!("error: interrupted by {signal}; cleaned up");
        // The shell's convention: 128 + the signal's number (130 for Ctrl-C).
        std::process::exit(128 + signal as i32);
    });
    Ok(())
}
