//! `--trace`: what the processes asked the kernel to do, per scene. The children of
//! `one-child` and `many-children` open the parent's file and map it MAP_SHARED;
//! the `copy-on-write` child maps it MAP_PRIVATE. None moves the array through a
//! read or a write. Where strace cannot run, each test says so in one line and
//! passes, unless EXAMPLES_REQUIRE_STRACE=1.

use test_support::{Launch, trace_summary, traced, traced_run};

const BIN: &str = env!("CARGO_BIN_EXE_examples-mmap");

/// Every scene, 1000 values, 3 children, traced; None where strace cannot trace.
fn run(test: &str) -> Option<String> {
    let args = ["--n", "1000", "--children", "3", "--trace"];
    traced_run(Launch::new(BIN, "examples-mmap-trace", &args), test)
}

/// Whether a process (its `lines`) opened the file and mapped that descriptor with
/// `flags`.
fn maps_the_file(lines: &[&str], flags: &str) -> bool {
    let opened = lines.iter().find_map(|l| l.strip_prefix("openat …/data.f32 = fd "));
    let Some(fd) = opened.and_then(|rest| rest.split(' ').next()) else { return false };
    lines.contains(&format!("mmap {flags}, fd {fd}: 4000 bytes, …/data.f32").as_str())
}

#[test]
fn children_map_the_file_shared_and_the_copy_on_write_child_privately() {
    let Some(stdout) = run("children_map_the_file_shared_and_the_copy_on_write_child_privately")
    else {
        return;
    };
    for scene in ["one-child", "many-children", "many-children-locked"] {
        let summary = trace_summary(&stdout, scene);
        let first = if scene == "one-child" { "child" } else { "child 1" };
        let child = traced(&summary, first);
        assert!(maps_the_file(&child, "MAP_SHARED"), "{scene}: {summary:#?}");
        assert!(child.iter().all(|l| !l.contains(" bytes on ")), "{scene}: {child:#?}");
        assert!(traced(&summary, "parent").iter().any(|l| l.starts_with("mmap MAP_SHARED, fd ")));
        if scene != "one-child" {
            let alike = "child 2 … child 3: trace: the same kinds of calls as child 1";
            assert!(summary.contains(&alike), "{scene}: {summary:#?}");
            assert!(summary.iter().any(|l| l.ends_with(", 4 shared mappings")), "{summary:#?}");
        }
    }
    let summary = trace_summary(&stdout, "copy-on-write");
    let child = traced(&summary, "child");
    assert!(maps_the_file(&child, "MAP_PRIVATE"), "{summary:#?}");
    assert!(!maps_the_file(&child, "MAP_SHARED"), "{summary:#?}");
}
