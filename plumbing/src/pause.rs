//! `--pause`: hold a child while it holds the array, so a learner can look at it
//! from another terminal, then go on with Enter.
//!
//! A child pauses because `--pause` is on its command line (the parent adds it), or
//! because its parent was (if forked). At [`here`] it prints what to look at, ready
//! to paste, and stops itself with SIGSTOP. The parent's pause thread waits for a
//! line on standard input (or its end), then sends SIGCONT.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill, raise};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};

use crate::memory::{Region, mappings_of};

/// Whether this run pauses (copied into forked children).
static PAUSING: AtomicBool = AtomicBool::new(false);

/// `--pause`, the same flag in every program.
#[derive(clap::Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PauseArg {
    /// Hold each child while it holds the array, and say what to look at from another
    /// terminal (/proc/PID/maps, smaps_rollup, /dev/shm); Enter goes on
    #[arg(long, global = true)]
    pub pause: bool,
}

impl PauseArg {
    /// Turns pausing on, if asked: in a parent for its children, in a child for itself.
    pub fn apply(self) {
        PAUSING.store(self.pause, Ordering::SeqCst);
    }
}

/// In the parent, before each child: whether this run pauses; the first time, the
/// thread that lets stopped children go on.
pub(crate) fn start_if_pausing() -> Result<bool> {
    static STARTED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if !PAUSING.load(Ordering::SeqCst) {
        return Ok(false);
    }
    if STARTED.get().is_none() {
        let thread = std::thread::Builder::new().name("pause".into());
        thread.spawn(resume_stopped_children).context("cannot start the pause thread")?;
        let _ = STARTED.set(());
    }
    Ok(true)
}

/// The pause thread: a stopped child waits for Enter, then goes on. Asking only for
/// stopped children (WSTOPPED) leaves the main thread's waits for ended ones alone.
fn resume_stopped_children() {
    loop {
        match waitid(Id::All, WaitPidFlag::WSTOPPED | WaitPidFlag::WNOHANG) {
            Ok(WaitStatus::Stopped(pid, _)) => {
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line); // Enter, or end
                let _ = kill(pid, Signal::SIGCONT);
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// In a child, with `--pause`: say where `array` is and what to look at, then stop
/// until the parent says go. Without `--pause`, and in the parent: nothing.
pub fn here<R: Region + ?Sized>(array: &R) {
    let Some(role) = crate::ROLE.get().filter(|_| PAUSING.load(Ordering::SeqCst)) else {
        return; // not pausing, or the parent itself (it has nobody to wake it)
    };
    let pid = std::process::id();
    let (start, bytes) = array.region();
    let (start, end) = (start as usize, start as usize + bytes);
    let mappings = mappings_of(pid, start, end);
    let size = crate::show::size(bytes as u64);
    let mut out = vec![
        format!("pause: {role} (pid {pid}) holds the array, {size}"),
        format!("pause:   at {start:x}-{end:x}; look from another terminal:"),
    ];
    let starts: Vec<String> = mappings.iter().map(|m| format!("{:x}", m.start)).collect();
    if !starts.is_empty() {
        out.push(format!("pause:   grep -E '^({})-' /proc/{pid}/maps", starts.join("|")));
    }
    out.push(format!("pause:   grep -E 'Rss|Shared|Private' /proc/{pid}/smaps_rollup"));
    let paths = mappings.iter().filter_map(|m| m.path.as_deref()?.strip_prefix("/dev/shm/"));
    let names = paths.filter(|name| !name.ends_with(" (deleted)"));
    out.extend(names.map(|name| format!("pause:   ls -l /dev/shm/{name}")));
    out.push("pause: press Enter here to go on".into());
    // Not println!: a closed standard output must not stop the pause's end.
    let _ = writeln!(std::io::stdout(), "{}", out.join("\n")).and(std::io::stdout().flush());
    let _ = raise(Signal::SIGSTOP);
}
