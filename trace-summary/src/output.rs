//! The two streams a traced run reads: strace's log, added up as it comes, and the
//! program's output, passed on with each scene's summary after the scene.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::log::Joiner;
use crate::render;
use crate::tally::Trace;

/// The log as read so far, and whether it has ended.
#[derive(Default)]
pub struct Shared {
    pub trace: Trace,
    pub ended: bool,
}

pub type Log = Arc<(Mutex<Shared>, Condvar)>;

/// Reads strace's log to its end. Our write end stays open until strace has opened
/// its own (the first line came), or strace is gone without one.
pub fn read_log(read_end: OwnedFd, write_end: OwnedFd, log: &Log, done: &AtomicBool) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut write_end = Some(write_end);
    while write_end.is_some() {
        let mut fds = [PollFd::new(read_end.as_fd(), PollFlags::POLLIN)];
        if matches!(poll(&mut fds, PollTimeout::from(50u8)), Ok(1)) || done.load(Ordering::SeqCst) {
            write_end = None;
        }
    }
    let mut input = BufReader::with_capacity(1 << 16, std::fs::File::from(read_end));
    let (mut joiner, mut line) = (Joiner::default(), Vec::new());
    loop {
        line.clear();
        if !matches!(input.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        if let Some((tid, whole)) = joiner.join(text.trim_end()) {
            let mut shared = log.0.lock().unwrap_or_else(|e| e.into_inner());
            shared.trace.add(tid, &whole);
            if input.buffer().is_empty() {
                log.1.notify_all();
            }
        }
    }
    log.0.lock().unwrap_or_else(|e| e.into_inner()).ended = true;
    log.1.notify_all();
}

/// Passes the program's output on; before each heading after the first, the
/// summary of the scene before it. Returns whether our own output was closed.
pub fn pass_output_on(
    output: impl Read,
    log: &Log,
    quiet: &dyn Fn() -> bool,
) -> anyhow::Result<bool> {
    let mut input = BufReader::new(output);
    let (mut line, mut blanks, mut headings) = (Vec::new(), 0, 0);
    let mut out = std::io::stdout().lock();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            // Blank lines at the very end are passed on as they came.
            let blank = b"\n".repeat(blanks);
            return Ok(out.write_all(&blank).and_then(|()| out.flush()).is_err());
        }
        if line == b"\n" {
            blanks += 1;
            continue;
        }
        if line.starts_with(b"=== ") {
            headings += 1;
            if headings > 1 && !quiet() {
                let (lock, arrived) = &**log;
                let shared = lock.lock().unwrap_or_else(|e| e.into_inner());
                let shared = arrived
                    .wait_while(shared, |s| s.trace.scenes.len() < headings && !s.ended)
                    .unwrap_or_else(|e| e.into_inner());
                let lines = render::scene(&shared.trace, headings - 2);
                drop(shared);
                if write_lines(&mut out, &lines).is_err() {
                    return Ok(true);
                }
            }
        }
        let blank = b"\n".repeat(std::mem::take(&mut blanks));
        if out
            .write_all(&blank)
            .and_then(|()| out.write_all(&line))
            .and_then(|()| out.flush())
            .is_err()
        {
            return Ok(true);
        }
    }
}

fn write_lines(out: &mut impl Write, lines: &[String]) -> std::io::Result<()> {
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()
}

pub fn print_lines(lines: &[String]) {
    let _ = write_lines(&mut std::io::stdout().lock(), lines);
}

/// The strace command, said first, in lines that fit: `trace: strace -f ...`.
pub fn announce(words: &[OsString]) {
    let mut lines = vec!["trace:".to_owned()];
    for word in words {
        let word = word.to_string_lossy();
        let word = match word.contains(|c: char| c.is_whitespace() || "'\"$\\;&|<>*?".contains(c)) {
            true => format!("'{}'", word.replace('\'', r"'\''")),
            false => word.into_owned(),
        };
        let last = lines.last_mut().expect("a line");
        if last.chars().count() + 1 + word.chars().count() > render::WIDTH && last.len() > 9 {
            lines.push(format!("trace:   {word}"));
        } else {
            last.push(' ');
            last.push_str(&word);
        }
    }
    print_lines(&lines);
}
