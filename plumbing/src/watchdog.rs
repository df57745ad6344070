//! The watchdog: removes what a parent killed with SIGKILL left behind.
//!
//! SIGKILL runs no code, so neither `Drop` nor the cleanup thread can remove what
//! such a parent made (its children die with it). Python's answer is ours: a
//! separate process, its resource tracker. Ours is a fork of the parent, made when
//! it first makes something or starts another program. No command line, variable or
//! file can start it or instruct it: nothing started by hand deletes anything. It
//! keeps only the read end of a pipe from the parent, has /dev/null for its streams,
//! a session of its own (Ctrl-C does not reach it), and no parent-death signal.
//!
//! The parent says on the pipe what it made (path bytes, device, inode), what it
//! removed or keeps, and the process group of each child running another program,
//! each message a tag byte, a length and that many bytes. When the parent is gone,
//! the pipe ends (a forked child's copy dies with the parent too); the watchdog
//! kills the groups listed, removes each thing listed if its path still holds that
//! very thing, and exits. A SIGINT, SIGTERM or SIGHUP of its own ends it at once.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, killpg, pthread_sigmask};
use nix::unistd::{ForkResult, Pid};

use crate::cleanup::Thing;

/// The parent's end of the pipe, once the watchdog runs.
static CONTROL: Mutex<Option<File>> = Mutex::new(None);

const MADE_DIR: u8 = b'D';
const MADE_FILE: u8 = b'F';
const FORGET: u8 = b'f';
const GROUP: u8 = b'G';
const GROUP_GONE: u8 = b'g';

/// Starts the watchdog, once (on the main thread).
pub(crate) fn start() -> Result<()> {
    let mut control = CONTROL.lock().unwrap_or_else(|e| e.into_inner());
    if control.is_some() {
        return Ok(());
    }
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make a pipe")?;
    // Whatever is buffered for our standard output would be written twice.
    let _ = std::io::stdout().flush();
    // SAFETY: see `watch`: the child runs only what is written for a forked copy of
    // a process that may have other threads. It holds no lock of theirs: it takes
    // none, allocates only through glibc's allocator (whose locks glibc resets in
    // the child) and leaves with `_exit`, never returning into the caller's code.
    match unsafe { nix::unistd::fork() }.context("cannot start the watchdog")? {
        ForkResult::Child => {
            drop(write_end);
            watch(read_end)
        }
        ForkResult::Parent { .. } => {
            drop(read_end);
            *control = Some(File::from(write_end));
            Ok(())
        }
    }
}

/// Made `thing`: the watchdog removes it if the parent dies with it still there.
pub(crate) fn tell_made(thing: &Thing) {
    let tag = if thing.dir { MADE_DIR } else { MADE_FILE };
    let mut payload = thing.id.0.to_le_bytes().to_vec();
    payload.extend(thing.id.1.to_le_bytes());
    payload.extend(thing.path.as_os_str().as_bytes());
    tell(tag, &payload);
}

/// Removed `thing`, or keeps it on purpose: not the watchdog's business any more.
pub(crate) fn tell_forgotten(thing: &Thing) {
    tell(FORGET, thing.path.as_os_str().as_bytes());
}

/// A child leads process group `pgid` (`alive`), or has ended and is about to be
/// reaped: the watchdog kills the groups it knows of if the parent dies.
pub(crate) fn tell_group(pgid: Pid, alive: bool) {
    tell(if alive { GROUP } else { GROUP_GONE }, &pgid.as_raw().to_le_bytes());
}

/// One message: tag, length (u32, little-endian), payload. A watchdog that is gone
/// (killed by someone) is not an error: the run goes on without it.
fn tell(tag: u8, payload: &[u8]) {
    let mut message = vec![tag];
    message.extend((payload.len() as u32).to_le_bytes());
    message.extend(payload);
    if let Some(control) = CONTROL.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        let _ = control.write_all(&message);
    }
}

/// The watchdog's life: read until the parent is gone, clean up, `_exit`.
fn watch(control: OwnedFd) -> ! {
    let _ = nix::unistd::setsid(); // no terminal's Ctrl-C reaches it
    let _ = nix::sys::prctl::set_name(c"watchdog");
    crate::cleanup::default_actions();
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let control = keep_only(control);
    let (mut made, mut groups) = (Vec::new(), Vec::new());
    let mut input = File::from(control);
    while let Some((tag, payload)) = read_message(&mut input) {
        match tag {
            MADE_DIR | MADE_FILE if payload.len() > 16 => {
                let word = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().unwrap());
                let path = PathBuf::from(std::ffi::OsString::from_vec(payload[16..].to_vec()));
                made.retain(|thing: &Thing| thing.path != path);
                made.push(Thing { dir: tag == MADE_DIR, path, id: (word(0), word(8)) });
            }
            FORGET => made.retain(|thing| thing.path.as_os_str().as_bytes() != payload),
            GROUP | GROUP_GONE if payload.len() == 4 => {
                let pgid = i32::from_le_bytes(payload[..4].try_into().unwrap());
                groups.retain(|&known| known != pgid);
                if tag == GROUP {
                    groups.push(pgid);
                }
            }
            _ => {} // nothing else is written; the parent is the only writer
        }
    }
    // The parent is gone. Its children died with it; their own children did not.
    for pgid in groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    for thing in &made {
        let _ = thing.remove_if_ours();
    }
    // SAFETY: `_exit` ends this process at once, without running anything of the
    // parent's copied state (exit handlers, buffered output).
    unsafe { nix::libc::_exit(0) }
}

/// The next message; None at the end of the pipe (or a message cut short by it).
fn read_message(input: &mut File) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    input.read_exact(&mut head).ok()?;
    let len = u32::from_le_bytes(head[1..5].try_into().ok()?) as usize;
    let mut payload = vec![0; len];
    input.read_exact(&mut payload).ok()?;
    Some((head[0], payload))
}

/// Standard streams to /dev/null, and every other descriptor closed but `keep`.
fn keep_only(keep: OwnedFd) -> OwnedFd {
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for target in 0..3 {
            // SAFETY: dup2 onto 0, 1 and 2 only replaces what those numbers name;
            // no Rust object of this process owns them as anything but stdio.
            let _ = unsafe { nix::libc::dup2(null.as_raw_fd(), target) };
        }
    }
    let keep = std::os::fd::IntoRawFd::into_raw_fd(keep);
    let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map(|entries| {
            entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
        })
        .unwrap_or_default();
    for fd in open.into_iter().filter(|&fd| fd > 2 && fd != keep) {
        // SAFETY: in this forked copy nothing will use these descriptors again; the
        // parent's own copies stay open in the parent.
        let _ = unsafe { nix::libc::close(fd) };
    }
    // SAFETY: `keep` is still open (it was not closed above) and owned by nobody
    // else in this process any more.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(keep) }
}
