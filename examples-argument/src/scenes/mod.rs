//! The scenes, one file each, in the tutorial's order, and the helpers they share.

pub mod argument;
pub mod inherit;

use anyhow::Result;
use ndarray::Array2;
use nix::unistd::{SysconfVar, sysconf};
use plumbing::memory;
use plumbing::show::size;

use crate::Scene;

/// Runs `scenes` in order, each under its heading.
pub fn run(scenes: &[Scene], n: u64) -> Result<()> {
    for (i, scene) in scenes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        match scene {
            Scene::Argument => {
                println!(
                    "=== argument: the child gets a serialized copy as its argument (spawn) ==="
                );
                argument::parent(n)?;
            }
            Scene::Inherit => {
                println!(
                    "=== inherit: the child is a fork and inherits the array copy-on-write ==="
                );
                inherit::parent(n)?;
            }
        }
    }
    Ok(())
}

/// The shape (n, n), or a clear error if `copies` such arrays cannot fit in memory.
pub fn checked_shape(n: u64, copies: u64) -> Result<(usize, usize)> {
    memory::array_len(
        n,
        n.checked_mul(n),
        size_of::<f64>(),
        copies,
        "the parent's and the child's",
    )?;
    let n = usize::try_from(n)?; // n fits, since n * n does
    Ok((n, n))
}

/// What a forked child wrote, against the pages the kernel copied for it: the values
/// that no longer hold the parent's 1.0 lie on some pages, and copy-on-write copies
/// exactly the pages written into, however few bytes of each.
pub fn report_writes(data: &Array2<f64>, copied: u64) {
    let values = data.as_slice().expect("an array of ones is in standard layout");
    let changed = values.iter().filter(|&&v| v != 1.0).count();
    let (Some(first), Some(last)) =
        (values.iter().position(|&v| v != 1.0), values.iter().rposition(|&v| v != 1.0))
    else {
        return println!("child: it changed no value; the kernel copied {copied} pages");
    };
    let page = sysconf(SysconfVar::PAGE_SIZE).ok().flatten().map_or(4096, |size| size as usize);
    let at = |index: usize| values.as_ptr() as usize + index * size_of::<f64>();
    let (start, end) = (at(first), at(last + 1));
    let bytes = size((end - start) as u64);
    println!("child: it changed {changed} values ({bytes}, {start:x} to {end:x}),");
    let spanned = ((end - 1) / page - start / page + 1) as u64;
    let those = if copied == spanned { "those " } else { "" };
    println!("child:   which lie on {spanned} pages; the kernel copied {those}{copied} pages");
}

/// "parent: peak memory so far: 805 MB": the most this process has held at once.
pub fn report_peak_memory() {
    println!("parent: peak memory so far: {} MB", memory::peak() / 1_000_000);
}

pub fn megabytes(bytes: usize) -> usize {
    bytes / 1_000_000
}
