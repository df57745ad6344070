//! What the kernel says about the arrays' pages (the `memory:` lines), at 42 MB so
//! that page counts are unambiguous: every array on either side of a queue is its
//! process's alone, the one the child put and the one the parent got.

use test_support::{Launch, memory_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-queue");

#[test]
fn every_array_on_either_side_is_private() {
    for scene in ["queue", "argument-and-queue"] {
        let outcome = Launch::new(BIN, "eq-memory", &[scene, "--n", "2300"])
            .short_tmpdir("eqm")
            .start()
            .finish();
        assert!(outcome.status.success(), "{}", outcome.stderr);
        for who in ["child", "parent"] {
            let lines = memory_lines(&outcome.stdout, who);
            assert_eq!(lines.len(), 1, "{scene} {who}: {}", outcome.stdout);
            assert!(
                lines[0].private_mb >= 40 && lines[0].shared_mb == 0,
                "{scene} {who}: {lines:?}"
            );
        }
    }
}
