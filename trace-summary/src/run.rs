//! The traced run. This process starts strace on its own command line without
//! `--trace`, and stays beside it: it passes the program's standard output on line
//! by line, and before each heading after the first (and at the end) prints the
//! summary of the scene that just ended, read from strace's log as it comes.
//!
//! The log comes through a pipe, named to strace as `/proc/PID/fd/N` (this
//! process's end, which strace opens for itself; no other process gets it). Ctrl-C,
//! SIGTERM and SIGHUP are passed to strace, which passes them to the program and
//! lets go of every process (`-I2`): the program cleans up as it always does. If
//! this process is killed, strace gets SIGTERM (its parent-death signal), so the
//! program does again.

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::unistd::{Pid, getpid, getppid};

use crate::output::{Log, announce, pass_output_on, print_lines, read_log};
use crate::render;

/// The exit status of a run whose output was closed early (`| head`), as plumbing's.
const CLOSED_OUTPUT: i32 = 128 + 13;
const HOW_TO_GET_IT: &str = "Debian: apt install strace";

/// Runs `args` (this program's arguments without `--trace`) under strace and
/// returns the exit status to end with; problems are said in one line.
pub fn traced(args: Vec<OsString>) -> i32 {
    let Some(strace) = find_in_path("strace") else {
        eprintln!("error: --trace needs strace, which is not installed ({HOW_TO_GET_IT})");
        return 2;
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => shorter(exe),
        Err(err) => return say(&format!("cannot find this program's file: {err}"), 1),
    };
    if let Err(why) = check(&strace, &exe) {
        return say(&why, 2);
    }
    match run(&strace, &exe, args) {
        Ok(status) => status,
        Err(err) => say(&format!("{err:#}"), 1),
    }
}

fn say(message: &str, status: i32) -> i32 {
    eprintln!("error: {message}");
    status
}

/// Whether strace runs here and may trace: it traces this program's `--help`.
fn check(strace: &Path, exe: &Path) -> Result<(), String> {
    let output = Command::new(strace)
        .args(["-f", "-qq", "-o", "/dev/null", "--"])
        .arg(exe)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run {}: {err}", strace.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let first = said.lines().next().unwrap_or_default().trim();
    if said.contains("ptrace") && (said.contains("not permitted") || said.contains("EPERM")) {
        return Err("--trace needs ptrace, which this machine does not allow".into());
    }
    Err(crate::names::cut(&format!("strace cannot trace here: {first}"), 73))
}

fn run(strace: &Path, exe: &Path, args: Vec<OsString>) -> anyhow::Result<i32> {
    let got = Arc::new(AtomicI32::new(0));
    let tracer = Arc::new(AtomicI32::new(0));
    pass_signals_on(&got, &tracer)?;
    let (log_read, log_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let log_path = format!("/proc/{}/fd/{}", getpid(), log_write.as_raw_fd());
    let options = ["-f", "-q", "-yy", "-s", "64", "-I2", "-o", &log_path, "--"];
    let mut words: Vec<OsString> = std::iter::once(strace.file_name().unwrap_or_default().into())
        .chain(options.iter().map(OsString::from))
        .chain([exe.as_os_str().to_owned()])
        .chain(args.iter().cloned())
        .collect();
    announce(&words);
    words.remove(0);
    let mut command = Command::new(strace);
    command.args(words).stdin(Stdio::inherit()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let parent = getpid();
    // SAFETY: the closure runs in the forked child before `exec` and makes only
    // async-signal-safe calls (prctl, getppid, sigprocmask); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            if getppid() != parent {
                return Err(Errno::ESRCH.into()); // we died before it asked
            }
            // A log nobody reads any more must not end strace before SIGTERM comes.
            pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::from(Signal::SIGPIPE)), None)?;
            Ok(())
        });
    }
    if got.load(Ordering::SeqCst) != 0 {
        return Ok(128 + got.load(Ordering::SeqCst));
    }
    let mut child = command.spawn()?;
    tracer.store(child.id() as i32, Ordering::SeqCst);
    if let Ok(signal) = Signal::try_from(got.load(Ordering::SeqCst)) {
        let _ = kill(Pid::from_raw(child.id() as i32), signal);
    }
    let log: Log = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (log, done) = (log.clone(), done.clone());
        std::thread::spawn(move || read_log(log_read, log_write, &log, &done))
    };
    let output = child.stdout.take().expect("piped");
    let quiet = || got.load(Ordering::SeqCst) != 0;
    let closed = pass_output_on(output, &log, &quiet)?;
    let status = child.wait()?;
    done.store(true, Ordering::SeqCst);
    let _ = reader.join();
    let shared = log.0.lock().unwrap_or_else(|e| e.into_inner());
    let top = shared.trace.top.and_then(|top| shared.trace.who.get(&top));
    let ended = top.and_then(|who| who.ended.clone());
    if !closed && !quiet() {
        let last = shared.trace.scenes.len().saturating_sub(1);
        print_lines(&render::scene(&shared.trace, last));
    }
    Ok(match (ended, closed, got.load(Ordering::SeqCst)) {
        (_, true, _) => CLOSED_OUTPUT,
        (_, _, signal) if signal != 0 => 128 + signal,
        (Some(Ok(code)), _, _) => code,
        (Some(Err(signal)), _, _) => 128 + signal.parse::<Signal>().map_or(0, |s| s as i32),
        (None, _, _) => say(&format!("strace ended ({status}) before the program did"), 1),
    })
}

/// Ctrl-C, SIGTERM and SIGHUP: remembered in `got` and passed to strace.
fn pass_signals_on(got: &Arc<AtomicI32>, tracer: &Arc<AtomicI32>) -> anyhow::Result<()> {
    let signals = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP].map(|s| s as i32);
    let mut signals = signal_hook::iterator::Signals::new(signals)?;
    let (got, tracer) = (got.clone(), tracer.clone());
    std::thread::spawn(move || {
        for number in signals.forever() {
            got.store(number, Ordering::SeqCst);
            let pid = tracer.load(Ordering::SeqCst);
            if let (true, Ok(signal)) = (pid > 0, Signal::try_from(number)) {
                let _ = kill(Pid::from_raw(pid), signal);
            }
        }
    });
    Ok(())
}

/// `program` in a directory of PATH, if it is there.
fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|file| {
        use std::os::unix::fs::PermissionsExt;
        file.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The program's path relative to the current directory when it lies inside it
/// (`target/debug/examples-pipe`), as short as the line that shows it.
fn shorter(exe: PathBuf) -> PathBuf {
    let here = std::env::current_dir().ok();
    match here.as_ref().and_then(|here| exe.strip_prefix(here).ok()) {
        Some(inside) => inside.to_path_buf(),
        None => exe,
    }
}
