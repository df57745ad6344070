//! `--trace`: what the processes asked the kernel to do, per scene. `named`: the
//! child opens the segment by its name in /dev/shm, maps that descriptor
//! MAP_SHARED, and moves no byte of the array through any read or write; the parent
//! unlinks the name. Where strace cannot run, each test says so in one line and
//! passes, unless EXAMPLES_REQUIRE_STRACE=1.

use test_support::{Launch, trace_summary, traced, traced_run};

const BIN: &str = env!("CARGO_BIN_EXE_examples-shm");

#[test]
fn the_named_child_maps_the_segment_shared_and_moves_no_array_bytes() {
    let name = format!("trace-test-{}", std::process::id());
    let args = ["named", "--n", "1000", "--name", &name, "--trace"];
    let launch = Launch::new(BIN, "examples-shm-trace", &args);
    let test = "the_named_child_maps_the_segment_shared_and_moves_no_array_bytes";
    let Some(stdout) = traced_run(launch, test) else { return };
    let summary = trace_summary(&stdout, "named");
    let segment = format!("/dev/shm/{name}");
    let child = traced(&summary, "child");
    let opened = child.iter().find(|l| l.starts_with(&format!("openat {segment} = fd ")));
    let opened = opened.unwrap_or_else(|| panic!("the child opens {segment}: {child:#?}"));
    let fd = opened.split("= fd ").nth(1).unwrap().split(' ').next().unwrap();
    let mapped = format!("mmap MAP_SHARED, fd {fd}: 8000 bytes, {segment}");
    assert!(child.contains(&mapped.as_str()), "{mapped:?} in {child:#?}");
    // No read, write, send or receive carried any of the array.
    assert!(child.iter().all(|l| !l.contains(" bytes on ")), "{child:#?}");
    let parent = traced(&summary, "parent");
    assert!(parent.iter().any(|l| l.starts_with(&format!("openat {segment} = fd "))));
    assert!(parent.iter().any(|l| l.starts_with("mmap MAP_SHARED, fd ")), "{parent:#?}");
    assert!(parent.contains(&format!("unlink {segment}").as_str()), "{parent:#?}");
    assert!(summary.iter().any(|l| l.ends_with(", 2 shared mappings")), "{summary:#?}");
}

#[test]
fn the_anonymous_mapping_is_made_once_and_inherited() {
    let launch = Launch::new(BIN, "examples-shm-trace", &["anonymous", "--n", "1000", "--trace"]);
    let test = "the_anonymous_mapping_is_made_once_and_inherited";
    let Some(stdout) = traced_run(launch, test) else { return };
    let summary = trace_summary(&stdout, "anonymous");
    let parent = traced(&summary, "parent");
    assert!(parent.contains(&"mmap MAP_SHARED|MAP_ANONYMOUS: 8000 bytes"), "{parent:#?}");
    let child = traced(&summary, "child");
    assert!(child.iter().all(|l| !l.starts_with("mmap") && !l.contains(" bytes on ")));
    assert!(summary.iter().any(|l| l.ends_with(", 1 shared mapping")), "{summary:#?}");
}
