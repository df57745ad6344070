//! The test suite's switches for making a process fail on purpose; not a user
//! feature, and not in any `--help`.
//!
//! `EXAMPLES_CHILD_FAULT` is read by every child:
//!
//! - `exit`: as the child starts its task, say so on standard error and exit with
//!   status 3;
//! - `panic`: as the child starts its task, panic, as a bug would;
//! - `sleep`: as the child starts its task, sleep 60 s, so that a test can
//!   interrupt or kill the run mid-scene;
//! - `sleep-after`: once the child has done its task, sleep 60 s before ending, so
//!   that a test can interrupt or kill the run at the latest moment of a scene,
//!   when everything the scene makes exists and the child has said so;
//!
//! - `truncate:N`, for a child that was handed a descriptor (see
//!   [`crate::children::hand_over`]): only the first N bytes the child writes there
//!   reach the parent, which then sees the end of the stream, while the child goes
//!   on as if nothing were wrong: a stream cut short.
//!
//! - `exit-before-connect`, for a child that calls back to its parent (see
//!   [`crate::ipc`]): exit with status 3 before calling back.
//!
//! A child that calls back starts its task once it has called back.
//! `EXAMPLES_SERVER_FAULT` acts in a server process (a child called "server") once
//! it has called back, before it serves: `exit`, `panic` and `sleep` all at that
//! moment.

use std::io::Write;
use std::time::Duration;

/// The switch for children.
pub const CHILD: &str = "EXAMPLES_CHILD_FAULT";
/// The switch for server processes.
pub const SERVER: &str = "EXAMPLES_SERVER_FAULT";

/// `exit`, `panic` and `sleep` of [`CHILD`]: called by the plumbing as a child starts
/// its task; all of [`SERVER`] in a server.
pub(crate) fn child_starts(who: &str) {
    match who {
        "server" => act_on(SERVER, who),
        _ => act_on(CHILD, who),
    }
}

/// `exit-before-connect` of [`CHILD`]: a child that dies before it calls back.
pub(crate) fn before_calling_back(who: &str) {
    if who != "server" && std::env::var(CHILD).as_deref() == Ok("exit-before-connect") {
        let line = format!("{who}: failing on purpose ({CHILD}=exit-before-connect)\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
        std::process::exit(3);
    }
}

/// `sleep-after` of [`CHILD`]: called by the plumbing once a child has done its task.
pub(crate) fn child_is_done(who: &str) {
    if who != "server" && std::env::var(CHILD).as_deref() == Ok("sleep-after") {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// The value of a switch, for a fault only one program has (a stream cut short,
/// say): None when the tests did not ask for one.
pub fn asked(variable: &str) -> Option<String> {
    std::env::var(variable).ok()
}

/// `truncate:N` of [`CHILD`]: the handed-over descriptor is replaced by a pipe to a
/// thread of this child that passes on the first N bytes and swallows the rest. The
/// child joins the thread once its task is done.
pub(crate) fn cut_short() -> anyhow::Result<Option<std::thread::JoinHandle<()>>> {
    use nix::unistd::{dup, dup2, pipe2};
    use std::io::{Read, Write};
    let Some(limit) =
        std::env::var(CHILD).ok().and_then(|f| f.strip_prefix("truncate:")?.parse().ok())
    else {
        return Ok(None);
    };
    let mut fd = crate::children::handed_over()?;
    let real = std::fs::File::from(dup(&fd)?); // where the bytes really go
    let (relay_in, relay_out) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    dup2(&relay_out, &mut fd)?; // the same number, now the relay's input
    drop(relay_out);
    let _ = std::os::fd::IntoRawFd::into_raw_fd(fd); // left open: the task takes it

    Ok(Some(std::thread::spawn(move || {
        let (mut input, mut real, mut passed) = (std::fs::File::from(relay_in), Some(real), 0);
        let mut buffer = vec![0; 1 << 16];
        while let Ok(read @ 1..) = input.read(&mut buffer) {
            if let Some(out) = &mut real {
                let pass = read.min(limit - passed);
                let _ = out.write_all(&buffer[..pass]);
                passed += pass;
                if passed == limit {
                    real = None; // the parent sees the end of the stream here
                }
            }
        }
    })))
}

fn act_on(variable: &str, who: &str) {
    match std::env::var(variable).as_deref() {
        Ok("exit") => {
            // One write, newline included: a parent that kills the other children
            // at this moment must not find half a line to glue its own onto.
            let line = format!("{who}: failing on purpose ({variable}=exit)\n");
            let _ = std::io::stderr().write_all(line.as_bytes());
            std::process::exit(3);
        }
        Ok("panic") => panic!("{who}: failing on purpose ({variable}=panic)"),
        Ok("sleep") => std::thread::sleep(Duration::from_secs(60)),
        _ => {}
    }
}
