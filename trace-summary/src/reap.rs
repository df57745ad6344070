//! The end of a traced run. strace runs with `-D`: the program is this process's own
//! child (strace's tracer is a grandchild), so this process reaps it and has its
//! exit status, and the program carries this process's parent-death signal. This
//! process is also a child subreaper (prctl): what the run leaves when its parent
//! ends (the program's watchdog, strace's helpers) is reparented to it, not to init,
//! and is reaped here.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid};

use crate::output::Log;

/// How long strace may go on once the program has ended: it then only follows the
/// program's watchdog to its end. One still there after that is stuck (killed in
/// its start) and is killed.
const STRACE_OUTLIVES: Duration = Duration::from_secs(3);

/// Makes orphans of this process's descendants its own children.
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// Reaps the program (returns how it ended), then whatever else ends until both
/// the program's output (`output_ended`) and strace's log have ended. `gone` tells
/// the log's reader that the program has ended. strace still there
/// [`STRACE_OUTLIVES`] after the program (a fork of it caught in its start, which
/// holds the output or the log open) is killed.
pub fn reap(
    program: Pid,
    strace: &Path,
    log: &Log,
    gone: &AtomicBool,
    output_ended: &AtomicBool,
) -> Option<WaitStatus> {
    let status = loop {
        match waitpid(program, None) {
            Err(Errno::EINTR) => continue,
            outcome => break outcome.ok(),
        }
    };
    gone.store(true, Ordering::SeqCst);
    let (since, mut killed) = (Instant::now(), false);
    loop {
        while let Ok(reaped) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            if reaped.pid().is_none() {
                break;
            }
        }
        let log_ended = log.0.lock().unwrap_or_else(|e| e.into_inner()).ended;
        if log_ended && output_ended.load(Ordering::SeqCst) {
            return status;
        }
        if !killed && since.elapsed() > STRACE_OUTLIVES {
            kill_children_running(strace);
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGKILL to every child of this process that runs `program`, found in /proc by
/// its parent's pid and its executable.
fn kill_children_running(program: &Path) {
    let me = getpid().as_raw().to_string();
    let program = std::fs::canonicalize(program).unwrap_or_else(|_| program.to_path_buf());
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Field 4, after the name in parentheses (which may hold spaces): the parent.
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
        let runs = std::fs::read_link(entry.path().join("exe")).ok();
        if parent == Some(me.as_str()) && runs.as_deref() == Some(program.as_path()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
