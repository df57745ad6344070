//! The traced run. This process starts strace on its own command line without
//! `--trace`, and stays beside it: it passes the program's standard output on line
//! by line, and before each heading after the first (and at the end) prints the
//! summary of the scene that just ended, read from strace's log as it comes.
//!
//! The log comes through a pipe, named to strace as `/proc/PID/fd/N` (this
//! process's end, which strace opens for itself; the program does not get it).
//! With `-D` the program is this process's child and strace a grandchild (reap.rs):
//! Ctrl-C, SIGTERM and SIGHUP are passed to the program, and if this process is
//! killed the program gets SIGTERM, its parent-death signal; either way it cleans
//! up as it always does, and strace ends with it.

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::ptrace::Options;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::sys::wait::WaitStatus;
use nix::unistd::{Pid, getpid, getppid};

use crate::output::{Log, announce, pass_output_on, print_lines, read_log};
use crate::{reap, render};

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
    if let Err(err) = reap::become_subreaper() {
        return say(&format!("cannot adopt what strace leaves: {err}"), 1);
    }
    if let Err(why) = ptrace_allowed() {
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

/// Whether this machine lets a process trace another: a child that waits for a
/// line is seized with ptrace (as strace will), then killed.
fn ptrace_allowed() -> Result<(), String> {
    let mut probe = Command::new("/bin/sh")
        .args(["-c", "read line"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot start /bin/sh to try ptrace: {err}"))?;
    let seized = nix::sys::ptrace::seize(Pid::from_raw(probe.id() as i32), Options::empty());
    let _ = probe.kill();
    let _ = probe.wait();
    match seized {
        Ok(()) => Ok(()),
        Err(Errno::EPERM | Errno::EACCES) => {
            Err("--trace needs ptrace, which this machine does not allow".into())
        }
        Err(err) => Err(format!("cannot try ptrace: {err}")),
    }
}

fn run(strace: &Path, exe: &Path, args: Vec<OsString>) -> anyhow::Result<i32> {
    let got = Arc::new(AtomicI32::new(0));
    let program = Arc::new(AtomicI32::new(0));
    pass_signals_on(&got, &program)?;
    let (log_read, log_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let log_path = format!("/proc/{}/fd/{}", getpid(), log_write.as_raw_fd());
    let options = ["-D", "-f", "-q", "-yy", "-s", "64", "-I2", "-o", &log_path, "--"];
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
    // async-signal-safe calls (sigaction, prctl, getppid, sigprocmask); it allocates
    // nothing.
    unsafe {
        command.pre_exec(move || {
            // Our handlers (copied by fork) would swallow the parent-death signal.
            for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
                nix::sys::signal::signal(signal, SigHandler::SigDfl)?;
            }
            // With -D this process becomes the program: it keeps the signal across
            // exec, and ends (cleaning up) with us, as plumbing's children do.
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            if getppid() != parent {
                return Err(Errno::ESRCH.into()); // we died before it asked
            }
            // strace, forked from it, goes on writing a log nobody reads any more.
            pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::from(Signal::SIGPIPE)), None)?;
            Ok(())
        });
    }
    if got.load(Ordering::SeqCst) != 0 {
        return Ok(128 + got.load(Ordering::SeqCst));
    }
    let mut child = command.spawn()?;
    let program_pid = Pid::from_raw(child.id() as i32);
    program.store(program_pid.as_raw(), Ordering::SeqCst);
    if let Ok(signal) = Signal::try_from(got.load(Ordering::SeqCst)) {
        let _ = kill(program_pid, signal);
    }
    let output = child.stdout.take().expect("piped");
    drop(child); // reaped below, with everything else
    let log: Log = Arc::default();
    let (gone, output_ended) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let reader = {
        let (log, gone) = (log.clone(), gone.clone());
        std::thread::spawn(move || read_log(log_read, log_write, &log, &gone))
    };
    let reaper = {
        let (log, gone, ended, strace) =
            (log.clone(), gone.clone(), output_ended.clone(), strace.to_owned());
        std::thread::spawn(move || reap::reap(program_pid, &strace, &log, &gone, &ended))
    };
    let quiet = || got.load(Ordering::SeqCst) != 0;
    let closed = pass_output_on(output, &log, &quiet);
    output_ended.store(true, Ordering::SeqCst);
    let status = reaper.join().unwrap_or(None);
    let _ = reader.join();
    let closed = closed?;
    let shared = log.0.lock().unwrap_or_else(|e| e.into_inner());
    if !closed && !quiet() {
        let last = shared.trace.scenes.len().saturating_sub(1);
        print_lines(&render::scene(&shared.trace, last));
    }
    // How the program ended, as reaped here; whether the log saw it end.
    let top = shared.trace.top.and_then(|top| shared.trace.who.get(&top));
    let logged = top.is_some_and(|who| who.ended.is_some());
    Ok(match (status, closed, got.load(Ordering::SeqCst)) {
        (_, true, _) => CLOSED_OUTPUT,
        (_, _, signal) if signal != 0 => 128 + signal,
        _ if crate::reap::STRACE_KILLED.load(Ordering::SeqCst) => {
            say("strace stopped serving the program: killed it; the trace is incomplete", 1)
        }
        (Some(status), _, _) if !logged => {
            let how = match status {
                WaitStatus::Exited(_, code) => format!("exit status {code}"),
                WaitStatus::Signaled(_, signal, _) => format!("killed by {signal}"),
                other => format!("{other:?}"),
            };
            say(&format!("strace ended early: the trace is incomplete (the program: {how})"), 1)
        }
        (Some(WaitStatus::Exited(_, code)), _, _) => code,
        (Some(WaitStatus::Signaled(_, signal, _)), _, _) => 128 + signal as i32,
        (_, _, _) => say("cannot tell how the program ended", 1),
    })
}

/// Ctrl-C, SIGTERM and SIGHUP: remembered in `got` and passed to the program.
fn pass_signals_on(got: &Arc<AtomicI32>, program: &Arc<AtomicI32>) -> anyhow::Result<()> {
    let signals = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP].map(|s| s as i32);
    let mut signals = signal_hook::iterator::Signals::new(signals)?;
    let (got, program) = (got.clone(), program.clone());
    std::thread::spawn(move || {
        for number in signals.forever() {
            got.store(number, Ordering::SeqCst);
            let pid = program.load(Ordering::SeqCst);
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
