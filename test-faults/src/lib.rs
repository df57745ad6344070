//! The test suite's switches for making a process fail on purpose, compiled only
//! into the programs the tests build: plumbing's feature `test-faults`, which each
//! program's dev-dependency on plumbing turns on, brings this crate in. A program
//! built by `cargo build` or `cargo run` has none of this, and reads no variable
//! below.
//!
//! `EXAMPLES_CHILD_FAULT`, read by every child:
//!
//! - `exit`: as the child starts its task, say so on standard error and exit with
//!   status 3;
//! - `panic`: as the child starts its task, panic, as a bug would;
//! - `sleep`: as the child starts its task, sleep 60 s, so that a test can
//!   interrupt or kill the run mid-scene;
//! - `sleep-after`: once the child has done its task, sleep 60 s before ending, so
//!   that a test can interrupt or kill the run when everything the scene makes
//!   exists and the child has said so;
//! - `truncate:N`, for a child handed a descriptor (plumbing's `HandOver`): only the
//!   first N bytes the child writes there reach the parent, which then sees the end
//!   of the stream, while the child goes on as if nothing were wrong;
//! - `exit-before-connect`, for a child that calls back to its parent: exit with
//!   status 3 before calling back;
//! - `sleep-before-connect`, for such a child: sleep 60 s before calling back, so
//!   that a test can write to the socket its parent listens on before it does.
//!
//! `EXAMPLES_SERVER_FAULT` acts in a server process (a child called "server") as it
//! starts serving: `exit`, `panic` and `sleep`.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

const CHILD: &str = "EXAMPLES_CHILD_FAULT";
const SERVER: &str = "EXAMPLES_SERVER_FAULT";

/// As a child starts its task (`exit`, `panic`, `sleep`; a server's switch for it).
pub fn child_starts(who: &str) {
    let variable = if who == "server" { SERVER } else { CHILD };
    match std::env::var(variable).as_deref() {
        Ok("exit") => fail(who, variable, "exit"),
        Ok("panic") => panic!("{who}: failing on purpose ({variable}=panic)"),
        Ok("sleep") => std::thread::sleep(Duration::from_secs(60)),
        _ => {}
    }
}

/// Once a child has done its task (`sleep-after`; the relay of `truncate:N`).
pub fn child_is_done(who: &str) {
    if let Some(relay) = RELAY.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = relay.join();
    }
    if who != "server" && std::env::var(CHILD).as_deref() == Ok("sleep-after") {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Before a child calls back to its parent (`exit-before-connect`,
/// `sleep-before-connect`).
pub fn before_calling_back(who: &str) {
    match std::env::var(CHILD).as_deref() {
        _ if who == "server" => {}
        Ok("exit-before-connect") => fail(who, CHILD, "exit-before-connect"),
        Ok("sleep-before-connect") => std::thread::sleep(Duration::from_secs(60)),
        _ => {}
    }
}

/// The thread of `truncate:N`, joined once the child's task is done.
static RELAY: Mutex<Option<JoinHandle<()>>> = Mutex::new(None);

/// `truncate:N`: `fd` is kept for the real bytes, and the child gets a pipe to a
/// thread that passes on the first N bytes written into it and swallows the rest.
pub fn cut_short(fd: OwnedFd) -> anyhow::Result<OwnedFd> {
    let limit: Option<usize> =
        std::env::var(CHILD).ok().and_then(|f| f.strip_prefix("truncate:")?.parse().ok());
    let Some(limit) = limit else { return Ok(fd) };
    let (relay_in, relay_out) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let relay = std::thread::Builder::new().spawn(move || {
        let (mut input, mut real, mut passed) =
            (std::fs::File::from(relay_in), Some(std::fs::File::from(fd)), 0);
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
    })?;
    *RELAY.lock().unwrap_or_else(|e| e.into_inner()) = Some(relay);
    Ok(relay_out)
}

/// Says so on standard error, in one write, and exits with status 3: a parent that
/// kills the other children at this moment must not find half a line.
fn fail(who: &str, variable: &str, value: &str) -> ! {
    let line = format!("{who}: failing on purpose ({variable}={value})\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    std::process::exit(3);
}
