//! The many-children scenes' bookkeeping: the floor they are timed against, how long
//! the children took, and what the parent found in the whole array afterwards.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use memmap2::MmapRaw;
use ndarray::ArrayView1;

use crate::file;

/// The same `times` passes of +1 over the same mapping, by one process with no
/// children and no lock: what the work costs before any sharing. Leaves 0 behind.
pub fn floor(map: &MmapRaw, n: usize, times: u32) -> Duration {
    // SAFETY: no child exists yet, so this process is the file's only user.
    let mut data = unsafe { file::view_mut(map, n) };
    let started = Instant::now();
    for _ in 0..times {
        data += 1.0;
    }
    let took = started.elapsed();
    data.fill(0.0);
    let seconds = took.as_secs_f64();
    println!("parent: floor: one process adding 1 to every value {times} times: {seconds:.2} s");
    took
}

/// When the children finished, against the floor.
pub fn report_times(floor: Duration, started: Instant, finished: &[Duration]) {
    let took = started.elapsed().as_secs_f64();
    let first = finished.iter().min().copied().unwrap_or_default().as_secs_f64();
    let floor = floor.as_secs_f64();
    // A ratio to a floor of a few milliseconds (small --n) would only measure noise.
    let ratio = match floor >= 0.05 {
        true => format!(", {:.1}x the floor", took / floor),
        false => String::new(),
    };
    let children = finished.len();
    println!("parent: all {children} children finished after {took:.2} s{ratio}");
    println!("parent:   (the first after {first:.2} s)");
}

/// What the many-children scenes found in the whole array.
pub struct Updates {
    /// Values below `children`: each lost at least one update.
    pub below: u64,
    /// Updates lost in all: `children` minus the value, summed.
    pub lost: u64,
    pub smallest: f32,
    pub largest: f32,
}

impl Updates {
    /// Each child adds 1 once, so every value should be `children`. A lost update leaves
    /// a whole number from 1 to children - 1 (every store wrote something read + 1);
    /// anything else (0, a fraction, more than `children`) no race can make: a bug.
    pub fn count(data: ArrayView1<'_, f32>, children: u32) -> Result<Updates> {
        let expected = children as f32;
        let mut updates =
            Updates { below: 0, lost: 0, smallest: f32::INFINITY, largest: f32::NEG_INFINITY };
        let mut impossible = 0u64;
        for &v in data {
            updates.smallest = updates.smallest.min(v);
            updates.largest = updates.largest.max(v);
            if !(1.0..=expected).contains(&v) || v.fract() != 0.0 {
                impossible += 1;
            } else if v < expected {
                updates.below += 1;
                updates.lost += (expected - v) as u64;
            }
        }
        let Updates { below, smallest, largest, .. } = updates;
        let n = data.len();
        println!(
            "parent: checked all {n} values: {below} below {children}, smallest {smallest}, largest {largest}"
        );
        ensure!(
            impossible == 0,
            "expected whole numbers from 1 to {children} (each child adds 1 once), but {impossible} values are not"
        );
        Ok(updates)
    }
}
