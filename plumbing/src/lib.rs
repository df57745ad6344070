//! Everything the lesson programs need that is not a lesson, written once:
//!
//! - process.rs starts a child, Python's `Process(target=task, args=...)`;
//!   child.rs joins it and forks one; the child's own side is [`as_child`], here;
//! - cleanup.rs removes what a run made, and stops its children, on Ctrl-C, SIGTERM
//!   and SIGHUP; watchdog.rs does the same after the parent died of SIGKILL;
//! - [`memory`]: does an array fit, its shared and private pages (the memory line),
//!   a process's peak; pause.rs: `--pause`, to look at that memory yourself;
//! - [`show`]: what is printed of an array, sizes, times, the check behind a
//!   verdict; [`arrays`]: ones made the way numpy makes them, an array's bytes.
//!
//! (Crates of their own: bench-protocol, for the `bench` commands, and callback,
//! for children that call back over ipc-channel: queue and manager.)

pub mod arrays;
mod child;
mod cleanup;
pub mod memory;
mod pause;
mod process;
pub mod show;
mod watchdog;

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result};

pub use child::{Child, fork, join_all};
pub use cleanup::Made;
pub use pause::{PauseArg, here as pause_here};
pub use process::{HandOver, Process, Task, Word, parse_child_cmd};

/// The status of a run whose output was closed early (`| head`): 128 + SIGPIPE.
const CLOSED_OUTPUT: u8 = 128 + 13;

/// Runs a program: `main` of every lesson program is `plumbing::main(|| ...)`. An
/// error becomes one line, `error: ...` (`child 2: error: ...` in a child), and
/// status 1. A standard output closed early (`| head`) ends the run quietly with
/// [`CLOSED_OUTPUT`]; one that cannot be written (`> /dev/full`) with one line and
/// status 1: after the usual cleanup, with no panic message.
pub fn main(program: impl FnOnce() -> Result<()>) -> ExitCode {
    quiet_panic_when_output_fails();
    let outcome = catch_unwind(AssertUnwindSafe(program));
    cleanup::at_exit(); // what `Drop` removed is gone already; the rest goes now
    ExitCode::from(status_of(outcome))
}

/// The exit status of a program, or a forked child's task, once its error is said.
pub(crate) fn status_of(outcome: std::thread::Result<Result<()>>) -> u8 {
    let failed_output = OUTPUT_FAILED.lock().unwrap_or_else(|e| e.into_inner()).take();
    match (outcome, failed_output) {
        (Ok(Ok(())), _) => 0,
        (_, Some(_)) | (Ok(Err(_)), None) if output_closed() => CLOSED_OUTPUT,
        (_, Some(why)) => {
            say_error(&format!("cannot write to standard output: {why}"));
            1
        }
        (Ok(Err(err)), None) => {
            cleanup::let_cleanup_finish();
            say_error(&format!("{err:#}"));
            1
        }
        // The panic message is already on standard error; 101 is Rust's own status.
        (Err(_panic), None) => 101,
    }
}

/// Who this process is in the run, in its error lines: unset in the parent,
/// "child 2" in a child (set once, by `as_child`).
pub(crate) static ROLE: OnceLock<String> = OnceLock::new();

/// The child's side: `label` ("child 3") names it in its error lines, then `task`
/// runs. (It asks again to die with its parent: another program may have started it.)
pub fn as_child(label: &str, task: impl FnOnce() -> Result<()>) -> Result<()> {
    as_child_calling_back(label, || Ok(()), |()| task())
}

/// [`as_child`] for a child that calls back to its parent for its task: `call_back`
/// gets it, then `task` does it (the test suite's faults act in between).
pub fn as_child_calling_back<T>(
    label: &str,
    call_back: impl FnOnce() -> Result<T>,
    task: impl FnOnce(T) -> Result<()>,
) -> Result<()> {
    let _ = crate::ROLE.set(label.to_owned());
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .context("cannot ask to die with the parent")?;
    let given = call_back()?;
    #[cfg(feature = "test-faults")]
    test_faults::child_starts(label);
    task(given)?;
    #[cfg(feature = "test-faults")]
    test_faults::child_is_done(label);
    Ok(())
}

/// One line, in one write: two processes writing at once never cut it in half.
pub(crate) fn say_error(message: &str) {
    let line = match ROLE.get() {
        Some(label) => format!("{label}: error: {message}\n"),
        None => format!("error: {message}\n"),
    };
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Why `println!` failed (a closed pipe, a full disk).
static OUTPUT_FAILED: Mutex<Option<String>> = Mutex::new(None);

/// `println!` panics when it cannot write: no bug of ours, so the panic unwinds (the
/// run is cleaned up) without its message, and [`main`] says what happened.
fn quiet_panic_when_output_fails() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<String>().map_or("", String::as_str);
        match message.strip_prefix("failed printing to stdout: ") {
            Some(why) => {
                let mut failed = OUTPUT_FAILED.lock().unwrap_or_else(|e| e.into_inner());
                failed.get_or_insert_with(|| why.to_owned());
            }
            None => default(info),
        }
    }));
}

/// Whether standard output is a pipe or socket whose reader has gone: poll reports
/// POLLERR for it. A terminal or a file never does.
fn output_closed() -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(&stdout), PollFlags::POLLOUT)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(1))
        && fds[0].revents().is_some_and(|events| events.contains(PollFlags::POLLERR))
}
