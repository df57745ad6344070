//! `--trace`: what the processes asked the kernel to do, per scene. A put maps only
//! windows of shared memory far smaller than the array, and passes them to the
//! getter with SCM_RIGHTS; the array's bytes are copied through them by plain memory
//! copies, which no system call shows, so only small messages cross the sockets.
//! Where strace cannot run, each test says so in one line and passes, unless
//! EXAMPLES_REQUIRE_STRACE=1.

use test_support::{Launch, bytes_in, trace_summary, traced, traced_run};

const BIN: &str = env!("CARGO_BIN_EXE_examples-queue");

/// "1.0 MB" (10^6 bytes) or "8000 bytes", in bytes.
fn size(text: &str) -> f64 {
    let (number, unit) = text.trim().split_once(' ').expect("a size");
    let number: f64 = number.parse().expect("a number");
    match unit {
        "MB" => number * 1e6,
        "GB" => number * 1e9,
        _ => number,
    }
}

#[test]
fn puts_pass_small_shared_windows_and_the_array_goes_through_them() {
    // (1000, 1000) f64: an 8 MB array, where a window is 1 MiB.
    let args = ["--n", "1000", "--producers", "2", "--trace"];
    let launch = Launch::new(BIN, "examples-queue-trace", &args).short_tmpdir("qt");
    let test = "puts_pass_small_shared_windows_and_the_array_goes_through_them";
    let Some(stdout) = traced_run(launch, test) else { return };
    let array = 1000.0 * 1000.0 * 8.0;
    for scene in ["queue", "argument-and-queue", "many-producers"] {
        let summary = trace_summary(&stdout, scene);
        let shared: Vec<&str> =
            summary.iter().copied().filter(|l| l.contains(": trace: mmap MAP_SHARED")).collect();
        assert!(!shared.is_empty(), "{scene}: {summary:#?}");
        for line in &shared {
            let mapped = size(line.rsplit(": ").next().unwrap().split(',').next().unwrap());
            assert!(mapped * 4.0 <= array, "{scene}: a window of {mapped} bytes: {line}");
        }
        let passed =
            |l: &&str| l.contains("passed") && l.contains("(SCM_RIGHTS): ") && l.contains("memfd");
        assert!(summary.iter().any(passed), "{scene}: {summary:#?}");
        let note = "trace: the array itself is copied through those shared windows, by plain";
        assert!(summary.contains(&note), "{scene}: {summary:#?}");
        let total = summary.iter().find(|l| l.starts_with("trace: in all: ")).unwrap();
        let sent = bytes_in(total).unwrap_or_else(|| panic!("a few bytes: {total}"));
        assert!((sent as f64) * 100.0 < array, "{scene}: {total}");
    }
    let child = traced(&trace_summary(&stdout, "queue"), "child");
    assert!(child.iter().any(|l| l.starts_with("memfd_create")), "{child:#?}");
}
