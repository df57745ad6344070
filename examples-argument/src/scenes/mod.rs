//! The scenes, one file each, in the tutorial's order, and the helpers they share.

pub mod argument;
pub mod inherit;

use anyhow::Result;
use plumbing::room;

use crate::Scene;

/// Runs `scenes` in order, each under its heading.
pub fn run(scenes: &[Scene], n: u64, pause: plumbing::pause::PauseArg) -> Result<()> {
    pause.apply()?;
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
    room::array_len(n, n.checked_mul(n), size_of::<f64>(), copies, "the parent's and the child's")?;
    let n = usize::try_from(n)?; // n fits, since n * n does
    Ok((n, n))
}

/// "parent: peak memory so far: 805 MB": the most this process has held at once.
pub fn report_peak_memory() {
    println!("parent: peak memory so far: {} MB", room::peak() / 1_000_000);
}

pub fn megabytes(bytes: usize) -> usize {
    bytes / 1_000_000
}
