//! The test suite's switches for making a process fail on purpose; not a user
//! feature, and not in any `--help`.
//!
//! `EXAMPLES_CHILD_FAULT` is read by every child:
//!
//! - `exit`: as the child starts its task, say so on standard error and exit with
//!   status 3;
//! - `panic`: as the child starts its task, panic, as a bug would;
//! - `sleep`: once the child has done its task, sleep 60 s before ending, so that a
//!   test can interrupt or kill the run at the latest moment of a scene, when
//!   everything the scene makes exists.
//!
//! (A child that calls back to its parent starts its task once it has called back.)
//!
//! `EXAMPLES_SERVER_FAULT` does the same in a server process, once it serves: all
//! three act at that moment.

use std::io::Write;
use std::time::Duration;

/// The switch for children.
pub const CHILD: &str = "EXAMPLES_CHILD_FAULT";
/// The switch for server processes.
pub const SERVER: &str = "EXAMPLES_SERVER_FAULT";

/// `exit` and `panic` of [`CHILD`]: called by the plumbing as a child starts its task.
pub(crate) fn child_starts(who: &str) {
    if std::env::var(CHILD).as_deref() != Ok("sleep") {
        act_on(CHILD, who);
    }
}

/// `sleep` of [`CHILD`]: called by the plumbing once a child has done its task.
pub(crate) fn child_is_done() {
    if std::env::var(CHILD).as_deref() == Ok("sleep") {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Acts on [`SERVER`], if set: called by a server once it serves.
pub fn server_fault(who: &str) {
    act_on(SERVER, who);
}

/// The value of a switch, for a fault only one program has (a stream cut short,
/// say): None when the tests did not ask for one.
pub fn asked(variable: &str) -> Option<String> {
    std::env::var(variable).ok()
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
