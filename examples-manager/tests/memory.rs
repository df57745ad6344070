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
    let out = run(&["child-proxy", "--n", "5000000"]);
    assert!(memory_lines(&out, "child").is_empty(), "{out}");
    assert!(out.contains("child: memory: none of the array's pages are here"), "{out}");
}
