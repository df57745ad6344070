//! The machinery behind `examples-manager`: what the server offers ([`Request`]),
//! how clients ask for it ([`Proxy`]), the server's loop ([`serve`]), and how the
//! parent starts processes of its own program and waits for them to call back.
//!
//! `main.rs` is the program to read first; this file is what it leans on.
//!
//! Python's manager hands out an `AutoProxy` that forwards any method *name* to the
//! server, and the server decides at run time whether it exposes that name (the
//! tutorial's `AttributeError` / `RemoteError`). Here the server's whole API is the
//! [`Request`] enum and the proxy has one typed method per variant, so asking for an
//! operation the server does not offer is a compile error in the client.

use std::fs;
use std::io::{self, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use ipc_channel::ipc::{self, IpcBytesSender, IpcOneShotServer, IpcReceiver, IpcSender};
use ndarray::{Array1, Axis, s};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{AccessFlags, access, getpid, getppid};
use serde::{Deserialize, Serialize};

/// Everything the server can do: one variant per operation, each carrying the
/// sender on which the server answers (senders travel inside messages, so every
/// request brings its own private reply channel and answers never get mixed up
/// between clients).
#[derive(Serialize, Deserialize)]
pub enum Request {
    /// The array's shape: the attribute the tutorial could not read through a proxy.
    Shape { reply: IpcSender<Vec<usize>> },
    /// The sum of every element, computed where the array lives.
    Sum { reply: IpcSender<f64> },
    /// The smallest and largest element: one answer that vouches for the whole array.
    MinMax { reply: IpcSender<(f64, f64)> },
    /// A copy of the elements `start..end` (the tutorial's `getdata(slice(0, 10))`).
    Slice { start: usize, end: usize, reply: IpcSender<Result<Vec<f64>, String>> },
    /// Sets every element to `value`.
    Fill { value: f64, reply: IpcSender<()> },
    /// Adds `value` to the elements `start..end`.
    Add { start: usize, end: usize, value: f64, reply: IpcSender<Result<(), String>> },
    /// Streams a full copy of the array as raw bytes: first the length (u64, little
    /// endian), then the elements (f64, little endian) in chunks.
    Copy { bytes: IpcBytesSender },
    /// The server's own peak memory (resident set, KiB), from `getrusage`.
    PeakMemory { reply: IpcSender<u64> },
    /// Answer, then stop serving: the server process exits.
    Shutdown { reply: IpcSender<()> },
}

/// Elements per chunk when streaming a copy: 1 MiB of f64 at a time, so neither side
/// ever holds more than the array, one full copy and one chunk.
const COPY_CHUNK: usize = 128 * 1024;

/// A client's handle on the hosted array: a sender of [`Request`]s and nothing else.
/// Cloning it (or sending it to another process inside a message) gives another
/// client of the same array; the array itself never moves.
///
/// Each method is one request and one answer. If the server has died, the reply
/// channel closes and the method returns a [`ServerGone`] error: never a hang.
///
/// The proxy only has the operations the server offers:
///
/// ```
/// fn report(proxy: &examples_manager::Proxy) -> anyhow::Result<()> {
///     let total = proxy.sum()?;
///     println!("sum: {total}");
///     Ok(())
/// }
/// ```
///
/// and asking for one it does not offer (here a `mean`) does not compile. In Python
/// the same mistake is found only when the server raises a remote error at run time:
///
/// ```compile_fail,E0599
/// fn report(proxy: &examples_manager::Proxy) -> anyhow::Result<()> {
///     let average = proxy.mean()?;
///     println!("mean: {average}");
///     Ok(())
/// }
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct Proxy {
    requests: IpcSender<Request>,
}

impl Proxy {
    /// Wraps the sending end of the server's request channel.
    pub fn new(requests: IpcSender<Request>) -> Proxy {
        Proxy { requests }
    }

    pub fn shape(&self) -> Result<Vec<usize>> {
        self.ask("shape", |reply| Request::Shape { reply })
    }

    pub fn sum(&self) -> Result<f64> {
        self.ask("sum", |reply| Request::Sum { reply })
    }

    pub fn min_max(&self) -> Result<(f64, f64)> {
        self.ask("min_max", |reply| Request::MinMax { reply })
    }

    pub fn slice(&self, start: usize, end: usize) -> Result<Vec<f64>> {
        self.ask("slice", |reply| Request::Slice { start, end, reply })?
            .map_err(|refusal| anyhow!("the server refused slice {start}..{end}: {refusal}"))
    }

    pub fn fill(&self, value: f64) -> Result<()> {
        self.ask("fill", |reply| Request::Fill { value, reply })
    }

    pub fn add(&self, start: usize, end: usize, value: f64) -> Result<()> {
        self.ask("add", |reply| Request::Add { start, end, value, reply })?
            .map_err(|refusal| anyhow!("the server refused add on {start}..{end}: {refusal}"))
    }

    pub fn peak_memory_kib(&self) -> Result<u64> {
        self.ask("peak_memory", |reply| Request::PeakMemory { reply })
    }

    pub fn shutdown(&self) -> Result<()> {
        self.ask("shutdown", |reply| Request::Shutdown { reply })
    }

    /// Fetches a full copy of the hosted array (the tutorial's `_getvalue()`).
    ///
    /// The bytes are decoded into the new array chunk by chunk as they arrive, so
    /// this process holds one copy plus one chunk, never a byte buffer *and* an array.
    pub fn copy(&self) -> Result<Array1<f64>> {
        let gone = |_| ServerGone { request: "copy" };
        let (bytes, incoming) = ipc::bytes_channel()?;
        // `bytes` moves into the request and is dropped here after sending: only the
        // server holds a sender, so if it dies, `recv` below fails instead of waiting.
        self.requests.send(Request::Copy { bytes }).map_err(gone)?;
        let header: [u8; 8] = incoming.recv().map_err(gone)?[..]
            .try_into()
            .context("the copy did not start with its length")?;
        let len = usize::try_from(u64::from_le_bytes(header))?;
        let mut values = Vec::new();
        values
            .try_reserve_exact(len)
            .with_context(|| format!("no memory for a copy of {len} values"))?;
        while values.len() < len {
            let chunk = incoming.recv().map_err(gone)?;
            ensure!(
                chunk.len() % 8 == 0 && values.len() + chunk.len() / 8 <= len,
                "the copy arrived garbled (a chunk of {} bytes)",
                chunk.len()
            );
            values.extend(chunk.chunks_exact(8).map(|bytes| {
                f64::from_le_bytes(bytes.try_into().expect("chunks_exact(8) gives 8 bytes"))
            }));
        }
        Ok(Array1::from_vec(values))
    }

    /// One round trip: a fresh reply channel, the request carrying its sending end,
    /// then a wait on the receiving end.
    fn ask<T>(&self, request: &'static str, make: impl FnOnce(IpcSender<T>) -> Request) -> Result<T>
    where
        T: for<'de> Deserialize<'de> + Serialize,
    {
        let (reply, answer) = ipc::channel()?;
        // `make` moves our only `reply` sender into the request, which `send` consumes:
        // afterwards just the server holds it, so its death closes `answer`.
        self.requests.send(make(reply)).map_err(|_| ServerGone { request })?;
        Ok(answer.recv().map_err(|_| ServerGone { request })?)
    }
}

/// The server went away before answering: its end of a channel closed.
#[derive(Debug)]
pub struct ServerGone {
    pub request: &'static str,
}

impl std::fmt::Display for ServerGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the server did not answer `{}` (its channel closed)", self.request)
    }
}

impl std::error::Error for ServerGone {}

/// The server's loop: the only code that ever touches the array.
///
/// Requests from every client arrive on one channel and are applied one at a time,
/// in arrival order, so no request sees another one half done: many clients adding
/// at once lose no update, without any lock. It returns after `Shutdown`, or when
/// every proxy is gone (all clients exited).
pub fn serve(mut array: Array1<f64>, requests: IpcReceiver<Request>) {
    let len = array.len();
    // `let _ = reply.send(..)` below: a client that died before its answer simply
    // does not get it; the server keeps serving the others.
    while let Ok(request) = requests.recv() {
        match request {
            Request::Shape { reply } => {
                let _ = reply.send(array.shape().to_vec());
            }
            Request::Sum { reply } => {
                let _ = reply.send(array.sum());
            }
            Request::MinMax { reply } => {
                let min = array.fold(f64::INFINITY, |low, &x| low.min(x));
                let max = array.fold(f64::NEG_INFINITY, |high, &x| high.max(x));
                let _ = reply.send((min, max));
            }
            Request::Slice { start, end, reply } => {
                let answer =
                    check_range(start, end, len).map(|()| array.slice(s![start..end]).to_vec());
                let _ = reply.send(answer);
            }
            Request::Fill { value, reply } => {
                array.fill(value);
                let _ = reply.send(());
            }
            Request::Add { start, end, value, reply } => {
                let answer = check_range(start, end, len).map(|()| {
                    let mut part = array.slice_mut(s![start..end]);
                    part += value;
                });
                let _ = reply.send(answer);
            }
            Request::Copy { bytes } => {
                let _ = send_copy(&array, &bytes);
            }
            Request::PeakMemory { reply } => {
                let _ = reply.send(peak_memory_kib());
            }
            Request::Shutdown { reply } => {
                let _ = reply.send(());
                return;
            }
        }
    }
}

/// A bad range is the client's mistake: answer it, do not crash the shared server.
fn check_range(start: usize, end: usize, len: usize) -> Result<(), String> {
    if start <= end && end <= len { Ok(()) } else { Err(format!("the array has {len} elements")) }
}

/// Encodes one chunk at a time into a small reusable buffer: the server never
/// holds a second copy of the array, only the array and one chunk.
fn send_copy(array: &Array1<f64>, bytes: &IpcBytesSender) -> io::Result<()> {
    bytes.send(&(array.len() as u64).to_le_bytes())?;
    let mut buffer = Vec::with_capacity(COPY_CHUNK * 8);
    for chunk in array.axis_chunks_iter(Axis(0), COPY_CHUNK) {
        buffer.clear();
        for value in chunk {
            buffer.extend_from_slice(&value.to_le_bytes());
        }
        bytes.send(&buffer)?;
    }
    Ok(())
}

/// This process's peak resident memory in KiB (Linux reports `ru_maxrss` in KiB).
pub fn peak_memory_kib() -> u64 {
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |usage| usage.max_rss().max(0) as u64)
}

/// A process started from our own program. If it is dropped while still running
/// (we are leaving early with an error), it is killed and reaped, so no orphan or
/// zombie outlives a failed scene.
pub struct Process {
    who: String,
    child: Child,
}

impl Process {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a normal end; anything but exit status 0 is an error that says how
    /// the process ended.
    pub fn wait(&mut self) -> Result<()> {
        let status = self.child.wait()?;
        ensure!(status.success(), "the {} process {}", self.who, describe(status));
        Ok(())
    }

    /// Adds to `err` how this process ended, if it has. Errors seen through a
    /// channel only say "closed"; the exit status says why (e.g. killed by SIGKILL).
    ///
    /// An ending process has no exit status yet for a moment, and under load that
    /// moment can last: so wait for it, up to 2 s, while the process is ending, or
    /// when `err` is the server's channel closing, which it does only on its way out
    /// (a panic closes it while unwinding, before the kernel sees the process end).
    /// A process running normally is not waited for: the error is not about it.
    pub fn explain(&mut self, err: anyhow::Error) -> anyhow::Error {
        let closed = err.downcast_ref::<ServerGone>().is_some();
        self.explain_after(err, closed)
    }

    /// The same, for an error that says this process closed its end of a channel.
    pub fn explain_closed(&mut self, err: anyhow::Error) -> anyhow::Error {
        self.explain_after(err, true)
    }

    fn explain_after(&mut self, err: anyhow::Error, closed: bool) -> anyhow::Error {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if !status.success() => {
                    return err.context(format!("the {} process {}", self.who, describe(status)));
                }
                Ok(None) if (closed || is_ending(self.child.id())) && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(10));
                }
                _ => return err,
            }
        }
    }
}

/// Whether the kernel has begun to end process `pid`. It marks the process
/// PF_EXITING (bit 0x4 of the flags, field 9 of /proc/<pid>/stat) before it closes
/// the process's files, so a process whose channel we saw close is already marked.
fn is_ending(pid: u32) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Field 2, the name in parentheses, may hold spaces: count from its end.
    let flags = stat
        .rsplit_once(')')
        .and_then(|(_, fields)| fields.split_whitespace().nth(6))
        .and_then(|flags| flags.parse::<u64>().ok());
    flags.is_some_and(|flags| flags & PF_EXITING != 0)
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `exit status 3` or `was killed by signal 9 (SIGKILL)`, for error messages.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("failed: exit status {code}"),
        (None, Some(number)) => {
            let name = Signal::try_from(number).map_or("unknown", Signal::as_str);
            format!("was killed by signal {number} ({name})")
        }
        (None, None) => format!("ended: {status}"),
    }
}

/// Starts our own program again (spawn style: `current_exe` with a hidden
/// sub-command in `args`, plus the name of a one-shot socket as the last argument)
/// and waits until the new process connects to that socket and sends its first
/// message of type `T`. Returns the process, the channel it connected on (for
/// further messages) and that first message.
pub fn spawn_and_accept<T>(who: &str, args: &[&str]) -> Result<(Process, IpcReceiver<T>, T)>
where
    T: for<'de> Deserialize<'de> + Serialize + Send + 'static,
{
    check_temp_dir()?;
    let (server, name) =
        IpcOneShotServer::<T>::new().context("cannot open a socket to call back on")?;
    // ipc-channel keeps the socket in a fresh temporary directory until `accept` ends.
    let _pending = PendingSocket::register(&name);
    let mut command = Command::new(std::env::current_exe()?);
    command.args(args).arg(&name).stdin(Stdio::null());
    let parent = getpid();
    // SAFETY: `pre_exec` runs in the forked child before `exec`. This parent has other
    // threads (the signal waiter, acceptors), whose locks may be held at the fork, so
    // only async-signal-safe work is allowed there: the closure makes three plain
    // system calls (prctl, getppid, pthread_sigmask) and allocates nothing; the
    // errors are raw errno values, which `io::Error` stores without allocating.
    unsafe {
        command.pre_exec(move || {
            // Die with us: the kernel sends SIGKILL to this process when the thread
            // that started it (our main thread) ends. Checking `getppid` afterwards
            // closes the window where we died before the request took effect.
            set_pdeathsig(Signal::SIGKILL)?;
            if getppid() != parent {
                return Err(io::ErrorKind::Other.into());
            }
            // The signal mask survives `exec`: undo our block of SIGINT/SIGTERM so
            // Ctrl-C still stops the new process.
            interrupt_signals().thread_unblock()?;
            Ok(())
        });
    }
    let child = command.spawn().with_context(|| format!("cannot start the {who} process"))?;
    let mut process = Process { who: who.to_string(), child };

    // `accept` blocks until somebody connects; if the new process dies first, nobody
    // ever will. So accept on a helper thread and watch the process meanwhile.
    let (done, accepted) = mpsc::channel();
    let acceptor = thread::spawn(move || {
        let _ = done.send(server.accept());
    });
    loop {
        match accepted.recv_timeout(Duration::from_millis(20)) {
            Ok(result) => {
                let _ = acceptor.join();
                let (channel, first) = result
                    .with_context(|| format!("the {who} process did not call back properly"))
                    .map_err(|err| process.explain_closed(err))?;
                return Ok((process, channel, first));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                bail!("the thread accepting the {who} process vanished")
            }
        }
        if let Some(status) = process.child.try_wait()? {
            // It may have connected just before it ended: let the acceptor finish.
            if let Ok(Ok((channel, first))) = accepted.recv_timeout(Duration::from_millis(500)) {
                let _ = acceptor.join();
                return Ok((process, channel, first));
            }
            // Connect and hang up ourselves: this ends the acceptor's wait, and with
            // it the socket's temporary directory.
            drop(IpcSender::<T>::connect(name));
            let _ = acceptor.join();
            let how = if status.success() { "ended".to_string() } else { describe(status) };
            bail!("the {who} process {how} before it called back");
        }
    }
}

/// The socket to call back on lives in a new directory under TMPDIR, made by
/// ipc-channel, which would misbehave with a TMPDIR it cannot use: it panics when
/// it cannot make the directory, and it silently cuts a path longer than a Unix
/// socket's address holds (107 bytes), binding the socket somewhere else. So both
/// are refused here with a clear message first.
///
/// The directory also gets the default permissions: under the usual umask (022)
/// every user could list it. A umask of 077 makes it, and the socket, this user's
/// alone. (The parent creates no other files, so nothing else is affected.)
fn check_temp_dir() -> Result<()> {
    umask(Mode::from_bits_truncate(0o077));
    let dir = std::env::temp_dir();
    // ipc-channel adds "/.tmpXXXXXX/socket": 18 bytes.
    ensure!(
        dir.as_os_str().len() + 18 <= 107,
        "TMPDIR {} is too long for the path of a Unix socket in it; use one of at most 89 bytes",
        dir.display()
    );
    let is_dir = fs::metadata(&dir).is_ok_and(|meta| meta.is_dir());
    ensure!(
        is_dir && access(&dir, AccessFlags::W_OK | AccessFlags::X_OK).is_ok(),
        "TMPDIR {} is not a directory this program can write in (its sockets go there)",
        dir.display()
    );
    Ok(())
}

/// SIGINT and SIGTERM: the signals the parent turns into a clean exit.
fn interrupt_signals() -> SigSet {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
}

/// Socket directories that exist right now, for the interrupt handler to remove.
static PENDING_SOCKETS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

struct PendingSocket(PathBuf);

impl PendingSocket {
    fn register(socket: &str) -> PendingSocket {
        let dir = PathBuf::from(socket).parent().map(PathBuf::from).unwrap_or_default();
        PENDING_SOCKETS.lock().unwrap_or_else(|e| e.into_inner()).push(dir.clone());
        PendingSocket(dir)
    }
}

impl Drop for PendingSocket {
    fn drop(&mut self) {
        PENDING_SOCKETS.lock().unwrap_or_else(|e| e.into_inner()).retain(|dir| *dir != self.0);
    }
}

/// Before the parent reports an error: if a signal's cleanup is under way (it holds
/// the list of sockets until the process exits), the error is only its echo (a
/// socket it just removed), so wait here and let the cleanup have the last word.
pub fn let_cleanup_finish() {
    drop(PENDING_SOCKETS.lock());
}

/// Ctrl-C and SIGTERM still clean up. Call first thing in the parent, before any
/// other thread exists: the block is inherited by every later thread, so only the
/// waiter thread below ever sees these signals. The server and the children need
/// no killing here: they were started with PDEATHSIG=SIGKILL, so the kernel kills
/// them when we exit.
pub fn clean_up_on_interrupt() -> Result<()> {
    let signals = interrupt_signals();
    signals.thread_block()?;
    thread::spawn(move || {
        if let Ok(signal) = signals.wait() {
            // Held until exit: see `let_cleanup_finish`.
            let mut pending = PENDING_SOCKETS.lock().unwrap_or_else(|e| e.into_inner());
            for dir in pending.drain(..) {
                let _ = fs::remove_dir_all(dir);
            }
            eprintln!("error: interrupted by {signal}; cleaned up");
            // The shell's convention: 128 + the signal's number (130 for Ctrl-C).
            std::process::exit(128 + signal as i32);
        }
    });
    Ok(())
}

// ---------------------------------------------------------------------------
// Small helpers for main.rs
// ---------------------------------------------------------------------------

/// Test-only switches, not in --help. `EXAMPLES_SERVER_FAULT` (read by the server
/// once the parent has its proxy) and `EXAMPLES_CHILD_FAULT` (read by a child once it
/// has its proxy): `exit` exits 3, `panic` panics, `sleep` hangs for 60 s so a test
/// can kill processes mid-scene.
pub fn fault_switch(variable: &str, who: &str) {
    match std::env::var(variable).as_deref() {
        Ok("exit") => {
            // One write, newline included: eprintln! would write the line in pieces,
            // and a parent that kills the other processes at this moment would leave
            // it open for its own `error:` line to be glued onto.
            let line = format!("{who}: failing on purpose ({variable}=exit)\n");
            let _ = io::stderr().write_all(line.as_bytes());
            std::process::exit(3);
        }
        Ok("panic") => panic!("{who}: failing on purpose ({variable}=panic)"),
        Ok("sleep") => thread::sleep(Duration::from_secs(60)),
        _ => {}
    }
}

/// The length of a scene's array: `--n` or the scene's default. Refused before
/// anything is allocated if `copies` arrays that long do not fit in available memory.
pub fn array_len(n: Option<u64>, default: u64, copies: u64) -> Result<usize> {
    let n = n.unwrap_or(default);
    let what = match copies {
        1 => format!("an array of {n} f64"),
        _ => format!("{copies} arrays of {n} f64 (the server's and the parent's copy)"),
    };
    let bytes = n
        .checked_mul(8 * copies)
        .with_context(|| format!("--n {n} is too large: {what} would need more than 2^64 bytes"))?;
    if let Some(available) = memory_available() {
        ensure!(
            bytes <= available,
            "--n {n} is too large: {what} would take {} MB, but only {} MB of memory is available",
            mb(bytes),
            mb(available)
        );
    }
    usize::try_from(n).context("--n does not fit this machine's address space")
}

/// MemAvailable from /proc/meminfo, in bytes; None where there is no such file.
fn memory_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Bytes as whole megabytes (10^6 bytes).
pub fn mb(bytes: u64) -> u64 {
    (bytes + 500_000) / 1_000_000
}
