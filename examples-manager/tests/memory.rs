//! What the kernel says about the array's pages (the `memory:` lines), at 40 MB so
//! that page counts are unambiguous: the server holds the array, its own; a client
//! holds only what it fetched (a copy, its own), and a proxy alone holds none.

use test_support::{Launch, memory_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-manager");

fn run(args: &[&str]) -> String {
    let outcome = Launch::new(BIN, "emg-memory", args).short_tmpdir("emm").start().finish();
    assert!(outcome.status.success(), "{args:?}: {}", outcome.stderr);
    outcome.stdout
}

#[test]
fn the_server_holds_the_array_and_a_client_only_what_it_fetched() {
    let out = run(&["hosted-sum", "--n", "5000000"]);
    for who in ["server", "parent"] {
        let lines = memory_lines(&out, who);
        assert_eq!(lines.len(), 1, "{who}: {out}");
        assert!(lines[0].private_mb >= 40 && lines[0].shared_mb == 0, "{who}: {lines:?}");
    }
    // The child holds a proxy, not the array: its own peak, measured, is far below
    // the array's 40 MB.
    let out = run(&["child-proxy", "--n", "5000000"]);
    assert!(memory_lines(&out, "child").is_empty(), "{out}");
    let line = out
        .lines()
        .find_map(|line| line.strip_prefix("child: memory: this process peaked at "))
        .unwrap_or_else(|| panic!("no child memory line: {out}"));
    let (peak, array) = line.split_once(", the array is ").expect("peak, then the array");
    assert_eq!(array, "40 MB", "{line}");
    let peak_mb: f64 = peak.trim_end_matches(" MB").parse().unwrap_or(f64::MAX);
    assert!(peak_mb < 20.0, "{line}");
}
