//! The end of a traced run. strace runs with `-D`: the program is this process's own
//! child (strace's tracer is a grandchild), so this process reaps it and has its
//! exit status, and the program carries this process's parent-death signal. This
//! process is also a child subreaper (prctl): what the run leaves when its parent
//! ends (the program's watchdog, strace's helpers) is reparented to it, not to init,
//! and is reaped here.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid};

use crate::output::Log;

/// How long strace may go on once the program has ended (it then only follows the
/// program's watchdog to its end), and how long it may hold a process in one
/// tracing stop (it lets one go at once). One past either is stuck, and is killed.
const STRACE_OUTLIVES: Duration = Duration::from_secs(3);

/// Set once strace was killed for holding a process: the trace is incomplete.
pub static STRACE_KILLED: AtomicBool = AtomicBool::new(false);

/// Makes orphans of this process's descendants its own children.
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// Reaps the program (returns how it ended), then whatever else ends until both
/// the program's output (`output_ended`) and strace's log have ended. `gone` tells
/// the log's reader that the program has ended. strace still there
/// [`STRACE_OUTLIVES`] after the program (a fork of it caught in its start, which
/// holds the output or the log open) is killed, and so is a strace that holds a
/// process in one tracing stop that long ([`STRACE_KILLED`] then says so).
pub fn reap(
    program: Pid,
    strace: &Path,
    log: &Log,
    gone: &AtomicBool,
    output_ended: &AtomicBool,
) -> Option<WaitStatus> {
    // A process strace traces waits in a tracing stop until strace lets it go, and
    // strace does so at once. One held in the same stop (its count of context
    // switches unchanged) for STRACE_OUTLIVES is waiting for a strace that no longer
    // serves it (stopped, or stuck after a signal of its own): strace is killed, the
    // kernel lets its processes go, and the run ends untraced.
    let mut held: HashMap<i32, (u64, Instant)> = HashMap::new();
    let mut looked = Instant::now();
    let status = loop {
        match waitpid(program, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            outcome => break outcome.ok(),
        }
        if looked.elapsed() > Duration::from_millis(200) {
            looked = Instant::now();
            let now = held_by(&children_running(strace));
            held.retain(|pid, (switches, _)| now.contains(&(*pid, *switches)));
            now.into_iter()
                .for_each(|(pid, switches)| _ = held.entry(pid).or_insert((switches, looked)));
            if held.values().any(|(_, since)| since.elapsed() > STRACE_OUTLIVES) {
                children_running(strace).into_iter().for_each(|pid| _ = kill(pid, Signal::SIGKILL));
                STRACE_KILLED.store(true, Ordering::SeqCst);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
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
            children_running(strace).into_iter().for_each(|pid| _ = kill(pid, Signal::SIGKILL));
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every child of this process that runs `program`, found in /proc by its parent's
/// pid and its executable.
fn children_running(program: &Path) -> Vec<Pid> {
    let me = getpid().as_raw().to_string();
    let program = std::fs::canonicalize(program).unwrap_or_else(|_| program.to_path_buf());
    let runs = |dir: &Path| std::fs::read_link(dir.join("exe")).ok() == Some(program.clone());
    let parent_of = |dir: &Path| {
        // Field 4, after the name in parentheses (which may hold spaces): the parent.
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        stat.rsplit_once(')').and_then(|(_, rest)| Some(rest.split_whitespace().nth(1)?.to_owned()))
    };
    processes()
        .filter(|(_, dir)| parent_of(dir).as_deref() == Some(&me) && runs(dir))
        .map(|(pid, _)| Pid::from_raw(pid))
        .collect()
}

/// The processes in a tracing stop (state `t`) whose tracer is one of `tracers`,
/// each with its count of context switches (one more each time it is let go).
fn held_by(tracers: &[Pid]) -> Vec<(i32, u64)> {
    let field = |status: &str, name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned())
    };
    let count = |status: &str, name: &str| field(status, name).and_then(|v| v.parse().ok());
    processes()
        .filter_map(|(pid, dir)| {
            let status = std::fs::read_to_string(dir.join("status")).ok()?;
            let tracer = count(&status, "TracerPid:")?;
            let stopped = field(&status, "State:")?.starts_with('t');
            let ours = tracers.iter().any(|t| u64::from(t.as_raw() as u32) == tracer);
            let switches: u64 = count(&status, "voluntary_ctxt_switches:")?
                + count(&status, "nonvoluntary_ctxt_switches:")?;
            (stopped && ours).then_some((pid, switches))
        })
        .collect()
}

/// Every process: its pid and its /proc directory.
fn processes() -> impl Iterator<Item = (i32, std::path::PathBuf)> {
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    entries.filter_map(|e| Some((e.file_name().to_string_lossy().parse().ok()?, e.path())))
}
