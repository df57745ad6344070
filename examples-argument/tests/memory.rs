//! What the kernel says about the array's pages (the `memory:` lines), at 42 MB so
//! that page counts are unambiguous: the argument's child holds a copy of its own;
//! the forked child shares the parent's pages until it writes them, then holds
//! copies of its own.

use test_support::{Launch, memory_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-argument");

#[test]
fn the_kernel_counts_a_copy_and_copy_on_write() {
    let outcome = Launch::new(BIN, "ea-memory", &["--n", "2300"]).start().finish();
    assert!(outcome.status.success(), "{}", outcome.stderr);
    let lines = memory_lines(&outcome.stdout, "child");
    assert_eq!(lines.len(), 3, "{}", outcome.stdout);
    // argument: the deserialized copy is the child's alone, and no fork is involved:
    // the line must not say copy-on-write.
    assert!(lines[0].private_mb >= 40 && lines[0].shared_mb == 0, "{lines:?}");
    assert_eq!(lines[0].mapping, "this process's own private memory", "{lines:?}");
    // inherit, before writing: every page shared with the parent, copy-on-write.
    assert!(lines[1].shared_mb >= 40 && lines[1].private_mb <= 1, "{lines:?}");
    assert!(lines[1].mapping.starts_with("private memory, shared copy-on-write"), "{lines:?}");
    // inherit, after filling zeros: every page copied, the child's alone.
    assert!(lines[2].private_mb >= 40 && lines[2].shared_mb <= 1, "{lines:?}");
    assert_eq!(lines[2].mapping, "this process's own private memory", "{lines:?}");
}
