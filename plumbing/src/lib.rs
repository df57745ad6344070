//! Everything the lesson programs need that is not a lesson, written once.
//!
//! A scene file reads like its tutorial because what every program needs, and no
//! lesson is about, lives here under names that say what they do:
//!
//! - [`children`]: starting children (this program again, another program given
//!   with `--child-cmd`, or a fork), waiting for all of them, stopping the rest when
//!   one fails, and saying how a child ended;
//! - [`cleanup`]: what an interrupted run must not leave behind (children, scratch
//!   directories, shared-memory names), removed on Ctrl-C, SIGTERM or SIGHUP, with
//!   the shell's exit status 128 + the signal's number;
//! - [`ipc`]: children that call back (the queue and manager programs): a first
//!   channel to a spawned child, without a hang if it dies first;
//! - [`faults`]: the switches the test suite uses to make a child fail on purpose;
//! - [`room`]: refusing an array that does not fit before allocating it, and peak
//!   memory;
//! - [`pages`]: the kernel's count of an array's shared and private pages, the
//!   memory line every scene prints; [`pause`]: `--pause`, which holds a child there;
//! - [`show`]: the printed corner of the array, sizes and times;
//! - [`watchdog`]: the process that removes what a parent killed with SIGKILL left;
//! - [`bench`]: the benchmark protocol every `bench` command shares.
//!
//! [`main`] ties them together: each program's `main` is one call to it.

pub mod bench;
pub mod bytes;
pub mod children;
pub mod cleanup;
#[cfg(feature = "test-faults")]
pub mod faults;
pub mod ipc;
pub mod pages;
pub mod pause;
pub mod process;
pub mod room;
pub mod show;
pub mod verdict;
pub mod watchdog;

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

pub use children::Child;
pub use pages::show_memory;
pub use process::{HandOver, Process, Task, as_child, fork, join_all};
pub use show::{show_corner, show_first_values};

/// The exit status of a run whose standard output was closed early (`| head`):
/// 128 + SIGPIPE, what the shell reports for a tool that the closed pipe stopped.
pub const CLOSED_OUTPUT: u8 = 128 + 13;

/// Runs a program: `main` of every lesson program is `plumbing::main(|| ...)`.
///
/// - An error becomes one line on standard error, `error: ...` (a child's starts
///   with its name, `child 2: error: ...`, so the one `error:` line is the
///   parent's), and exit status 1.
/// - A standard output closed early (`| head`, quitting `less`) ends the run
///   quietly with [`CLOSED_OUTPUT`], after the same cleanup as any other exit: no
///   panic message, no backtrace.
/// - If Ctrl-C arrived meanwhile, its cleanup has the last word (see [`cleanup`]).
pub fn main(program: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    if let Some(code) = watchdog::run_if_asked() {
        return code;
    }
    quiet_panic_when_output_closes();
    let outcome = catch_unwind(AssertUnwindSafe(program));
    cleanup::at_exit();
    // Everything the program made has been dropped by now (removed, killed, reaped).
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) => {
            cleanup::let_cleanup_finish();
            if output_closed() {
                return ExitCode::from(CLOSED_OUTPUT);
            }
            say_error(&format!("{err:#}"));
            ExitCode::FAILURE
        }
        Err(_panic) if OUTPUT_CLOSED.load(Ordering::SeqCst) => ExitCode::from(CLOSED_OUTPUT),
        // The panic message is already on standard error; 101 is Rust's own status.
        Err(_panic) => ExitCode::from(101),
    }
}

/// Who this process is in the run: None for the parent, "child 2" for a child.
pub(crate) static ROLE: OnceLock<String> = OnceLock::new();

/// Names this process in its error lines (a child's role, set once).
pub(crate) fn set_role(label: &str) {
    let _ = ROLE.set(label.to_owned());
}

/// The label of this process, "parent" when it is the one the user started.
pub fn role() -> &'static str {
    ROLE.get().map_or("parent", String::as_str)
}

/// One line, in one write: two processes writing at once never cut it in half.
pub(crate) fn say_error(message: &str) {
    let line = match ROLE.get() {
        Some(label) => format!("{label}: error: {message}\n"),
        None => format!("error: {message}\n"),
    };
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Set when `println!` failed because nobody reads standard output any more.
static OUTPUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// `println!` panics when standard output is a pipe whose reader has gone. That is
/// no bug of ours: it is `| head` having read enough. The panic then unwinds as
/// usual (so everything the program made is dropped and cleaned up), but without
/// its message.
fn quiet_panic_when_output_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && output_closed() {
            OUTPUT_CLOSED.store(true, Ordering::SeqCst);
        } else {
            default(info);
        }
    }));
}

/// Whether standard output is a pipe or socket whose reader has gone: poll reports
/// POLLERR for it. A terminal or a file never does.
pub fn output_closed() -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(&stdout), PollFlags::POLLOUT)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(1))
        && fds[0].revents().is_some_and(|events| events.contains(PollFlags::POLLERR))
}
