//! `--trace`, the same flag in every program: what the processes asked the kernel
//! to do. The run goes on under strace (Debian's `strace` package), following
//! every child, and after each scene a short summary says, per process and labelled
//! like the program's own lines, the system calls that carry the lesson:
//!
//! - processes: `clone`, `execve`, `wait4`/`waitid`, signals, how each ended;
//! - the array's way: `pipe2`, `socketpair`, `openat` of the lesson's file or of
//!   `/dev/shm/NAME`, `memfd_create`, `ftruncate`, `mmap` (flags, length,
//!   descriptor) and `munmap`, `unlink`;
//! - data moved: reads, writes, sends and receives summed per descriptor, and the
//!   descriptors passed with SCM_RIGHTS;
//!
//! and counts what it left out. run.rs starts strace and passes the output on;
//! log.rs reads strace's log, tally.rs adds it up, names.rs and render.rs print it.
//! What the summary says of a process comes from the log alone: its label from
//! what it printed or its command line, never from anything it was told.

mod call;
mod lines;
mod log;
mod names;
mod output;
mod reap;
mod render;
mod run;
mod tally;

pub use render::thousands;

use std::ffi::OsString;

/// `--trace`, flattened into each program's command line.
#[derive(clap::Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceArg {
    /// Run under strace, following every child, and after each scene print per
    /// process the system calls that carry its lesson (needs strace)
    #[arg(long, global = true)]
    pub trace: bool,
}

impl TraceArg {
    /// With `--trace`: runs this very command line again, without the flag, under
    /// strace, and exits with its status (2, in one line, where strace is missing
    /// or may not trace). Without: returns at once.
    pub fn run_traced_if_asked(self) {
        if self.trace {
            let _ = std::io::Write::flush(&mut std::io::stdout());
            std::process::exit(run::traced(without_trace(std::env::args_os().skip(1))));
        }
    }
}

/// The arguments as given, but `--trace` (before a `--`, after which words are
/// values).
fn without_trace(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut ended = false;
    args.filter(|word| {
        ended |= word == "--";
        ended || word != "--trace"
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(100_000_000), "100,000,000");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn only_the_flag_is_taken_out() {
        let args = ["one-child", "--trace", "--n", "5", "--", "--trace"].map(OsString::from);
        let kept = without_trace(args.into_iter());
        assert_eq!(kept, ["one-child", "--n", "5", "--", "--trace"].map(OsString::from));
    }
}
