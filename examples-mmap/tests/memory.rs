//! What the kernel says about the array's pages (the `memory:` lines), at 40 MB so
//! that page counts are unambiguous: a child that maps the file shared shares the
//! file's pages with the parent (and with the other children); one that maps it
//! privately shares them until it writes, then holds copies of its own.

use test_support::{Launch, memory_lines};

const BIN: &str = env!("CARGO_BIN_EXE_examples-mmap");

fn run(args: &[&str]) -> String {
    let outcome = Launch::new(BIN, "em-memory", args).start().finish();
    assert!(outcome.status.success(), "{args:?}: {}", outcome.stderr);
    outcome.stdout
}

#[test]
fn shared_children_share_the_files_pages_and_a_private_one_copies_them() {
    let out = run(&["one-child", "--n", "10000000"]);
    let lines = memory_lines(&out, "child");
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].shared_mb >= 40 && lines[0].private_mb == 0, "{lines:?}");
    assert!(lines[0].mapping.starts_with("a shared mapping of /"), "{lines:?}");
    assert!(lines[0].mapping.ends_with("/data.f32"), "{lines:?}");

    let out = run(&["many-children", "--n", "10000000", "--children", "3"]);
    let lines = memory_lines(&out, "child 1");
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].shared_mb >= 40 && lines[0].private_mb == 0, "{lines:?}");

    let out = run(&["copy-on-write", "--n", "10000000"]);
    let lines = memory_lines(&out, "child");
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].shared_mb >= 40 && lines[0].private_mb == 0, "{lines:?}");
    assert!(lines[1].private_mb >= 40 && lines[1].shared_mb == 0, "{lines:?}");
    assert!(lines[1].mapping.starts_with("a private (copy-on-write) mapping of "), "{lines:?}");
}
