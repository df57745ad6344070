//! What the kernel says about the array's pages (the `memory:` lines), at 42 MB so
//! that page counts are unambiguous: the child's array and the parent's received one
//! are two arrays, each its process's alone.

use test_support::{Launch, memory_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-pipe");

#[test]
fn sender_and_receiver_each_hold_their_own_array() {
    let outcome = Launch::new(BIN, "ep-memory", &["--n", "2300"]).start().finish();
    assert!(outcome.status.success(), "{}", outcome.stderr);
    for who in ["child", "parent"] {
        let lines = memory_lines(&outcome.stdout, who);
        assert_eq!(lines.len(), 1, "{who}: {}", outcome.stdout);
        assert!(lines[0].private_mb >= 40 && lines[0].shared_mb == 0, "{who}: {lines:?}");
    }
}

/// Each process's peak is its own (VmHWM), whoever started the parent. Started the
/// way `cargo run` starts it, by a process that has waited for a big one (the
/// compiler), the program must not report that one's memory as its child's:
/// getrusage(RUSAGE_CHILDREN) keeps it across `exec`. Here the shell waits for a
/// run of this program that holds 320 MB, then becomes the scene's parent.
#[test]
fn a_peak_is_the_processs_own_whoever_started_the_parent() {
    let script = r#""$0" bench-run floor --n 40000000 > /dev/null; exec "$0" "$@""#;
    let outcome =
        Launch::new("/bin/sh", "ep-peak", &["-c", script, BIN, "--n", "1000"]).start().finish();
    assert!(outcome.status.success(), "{}", outcome.stderr);
    for who in ["parent", "child"] {
        let prefix = format!("{who}: peak memory ");
        let line = outcome.stdout.lines().find_map(|l| l.strip_prefix(&prefix));
        let mb: f64 = line.and_then(|l| l.strip_suffix(" MB")?.parse().ok()).unwrap_or(f64::MAX);
        // The 8 MB array and the program itself: far below the 320 MB held before.
        assert!(mb < 100.0, "{who}: {line:?}\n{}", outcome.stdout);
    }
}
