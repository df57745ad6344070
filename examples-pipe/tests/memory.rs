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
