//! `--pause`: hold the child while it holds the array, so a learner can look at it
//! from another terminal (`pmap`, /proc/<pid>/maps, /dev/shm), then go on with Enter.
//!
//! The parent makes two pipes before its first child and hands both to every child
//! it starts (a forked child inherits them). A child that reaches
//! [`crate::pages::show_memory`] writes its pid and the array's address into the
//! first pipe and waits for a byte on the second. A thread of the parent reads the
//! first pipe, prints what to look at (real pids and names, ready to paste), waits
//! for a line on standard input (end of input also goes on), and writes the byte.
//! Ctrl-C meanwhile cleans up as always. The parent's own memory lines never wait.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::pages::mapping_of;

/// The variable that tells a child the two descriptors: "ready,go".
const VARIABLE: &str = "EXAMPLES_PAUSE_FDS";

/// The child's ends: where it says it is ready, and where it waits for the go.
#[derive(Clone, Copy)]
struct Ends {
    ready: RawFd,
    go: RawFd,
}

/// Set in the parent by [`enable`]; a forked child has a copy.
static PARENT_ENDS: OnceLock<Ends> = OnceLock::new();

/// Whether this run pauses (`--pause`): a scene may keep what it would remove early
/// (a segment's name) so that the learner can see it.
pub fn active() -> bool {
    PARENT_ENDS.get().is_some() || std::env::var_os(VARIABLE).is_some()
}

/// `--pause`: from now on every child is held at its memory line until Enter.
pub fn enable() -> Result<()> {
    let (ready_in, ready_out) = pipe2(OFlag::O_CLOEXEC).context("cannot make the pause pipes")?;
    let (go_in, go_out) = pipe2(OFlag::O_CLOEXEC).context("cannot make the pause pipes")?;
    let ends = Ends { ready: ready_out.as_raw_fd(), go: go_in.as_raw_fd() };
    // The children's ends stay open in the parent for every child still to come.
    std::mem::forget((ready_out, go_in));
    std::thread::Builder::new()
        .name("pause".into())
        .spawn(move || answer_children(ready_in, go_out))
        .context("cannot start the pause thread")?;
    let _ = PARENT_ENDS.set(ends);
    Ok(())
}

/// In the parent's `start`: hands the pause pipes to the child, if this run pauses.
pub(crate) fn hand_over(command: &mut Command) {
    if let Some(ends) = PARENT_ENDS.get().copied() {
        command.env(VARIABLE, format!("{},{}", ends.ready, ends.go));
        let inheritable = move || -> std::io::Result<()> {
            for fd in [ends.ready, ends.go] {
                // SAFETY: the fd is open in the child: a copy of the parent's, which
                // the parent never closes.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                let no_flags = nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty());
                nix::fcntl::fcntl(fd, no_flags)?;
            }
            Ok(())
        };
        // SAFETY: runs in the forked child before `exec`: two fcntl calls on the
        // child's own descriptor table, async-signal-safe, nothing allocated.
        unsafe { std::os::unix::process::CommandExt::pre_exec(command, inheritable) };
    }
}

/// In a child: if the parent pauses, say where the array is and wait for the go.
pub(crate) fn hold_here(address: usize) {
    if crate::ROLE.get().is_none() {
        return; // the parent's own lines never wait
    }
    let ends = PARENT_ENDS.get().copied().or_else(|| {
        let text = std::env::var(VARIABLE).ok()?;
        let (ready, go) = text.split_once(',')?;
        Some(Ends { ready: ready.parse().ok()?, go: go.parse().ok()? })
    });
    let Some(ends) = ends else { return };
    let _ = std::io::stdout().flush();
    // SAFETY: both descriptors were handed over open and stay open; ManuallyDrop
    // keeps these Files from closing them, as other calls use them again.
    let (mut ready, mut go) = unsafe {
        (
            std::mem::ManuallyDrop::new(File::from_raw_fd(ends.ready)),
            std::mem::ManuallyDrop::new(File::from_raw_fd(ends.go)),
        )
    };
    let message = format!("{} {} {}\n", std::process::id(), address, crate::role());
    if ready.write_all(message.as_bytes()).is_ok() {
        let _ = go.read(&mut [0u8; 1]);
    }
}

/// The parent's pause thread: one pause per message from a child.
fn answer_children(ready: OwnedFd, go: OwnedFd) {
    let (ready, mut go) = (BufReader::new(File::from(ready)), File::from(go));
    for message in ready.lines().map_while(Result::ok) {
        let mut fields = message.split_whitespace();
        let (Some(pid), Some(address), who) =
            (fields.next(), fields.next(), fields.collect::<Vec<_>>())
        else {
            continue;
        };
        let (pid, address) = (pid.parse().unwrap_or(0), address.parse().unwrap_or(0));
        show_what_to_look_at(pid, address, &who.join(" "));
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line); // Enter, or end of input
        let _ = go.write_all(b"g");
    }
}

/// The `pause:` lines: what exists right now, ready to paste into another terminal.
fn show_what_to_look_at(pid: u32, address: usize, who: &str) {
    let mut out =
        vec![format!("pause: {who} (pid {pid}) holds the array; look from another terminal:")];
    if let Some(mapping) = mapping_of(pid, address) {
        let pattern = match mapping.file() {
            Some(path) => {
                path.rsplit('/').next().unwrap_or(path).trim_end_matches(" (deleted)").to_owned()
            }
            None => format!("{:x}", mapping.start),
        };
        out.push(format!("pause:   grep {pattern} /proc/{pid}/maps"));
        if let Some(path) = mapping.path.as_deref().filter(|path| path.starts_with("/dev/shm/")) {
            out.push(format!("pause:   ls -l {path}"));
        }
    }
    out.push(format!("pause:   pmap -x {pid}"));
    out.push(format!("pause:   cat /proc/{pid}/smaps_rollup"));
    out.push("pause: press Enter here to go on".to_owned());
    // Not println!: with nobody reading our output any more, the child must still go.
    let _ = writeln!(std::io::stdout(), "{}", out.join("\n"));
}

/// `--pause`, the same flag in every program.
#[derive(clap::Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PauseArg {
    /// Hold each child while it holds the array, and say what to look at from another
    /// terminal (pmap, /proc/PID/maps, /dev/shm); Enter goes on
    #[arg(long, global = true)]
    pub pause: bool,
}

impl PauseArg {
    /// Turns pausing on for this run's scenes, if asked.
    pub fn apply(self) -> Result<()> {
        if self.pause { enable() } else { Ok(()) }
    }
}
