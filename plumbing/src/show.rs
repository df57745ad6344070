//! What every program prints the same way: what the tutorials print of an array,
//! sizes, times, and the evidence behind a verdict (the whole array).

use std::fmt::Debug;
use std::time::Duration;

use anyhow::{Result, bail};
use ndarray::{ArrayView, Dimension, Ix2, s};

/// What the tutorials print of an array: a 1-D array's first 10 values, as
/// `print(data[:10])` (`child: first 10 values: [1.0, 1.0, ...]`); a 2-D array's
/// top-left 5x5 corner, as `print(data[:5, :5])`, one row a line.
pub fn show_values<A: Debug, D: Dimension>(who: &str, data: ArrayView<'_, A, D>) {
    let list = |values: &mut dyn Iterator<Item = &A>| {
        values.map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ")
    };
    match data.clone().into_dimensionality::<Ix2>() {
        Ok(corner) => {
            println!("{who}: top-left 5x5 corner:");
            let (rows, cols) = corner.dim();
            for row in corner.slice(s![..rows.min(5), ..cols.min(5)]).rows() {
                println!("{who}:   [{}]", list(&mut row.iter()));
            }
        }
        Err(_) => {
            let head = format!("{who}: first {} values:", data.len().min(10));
            println!("{}", wrapped(&head, &format!("[{}]", list(&mut data.iter().take(10)))));
        }
    }
}

/// Prints `verdict: TEXT`, the scene's conclusion, wrapped to 80 columns.
pub fn verdict(text: &str) {
    println!("{}", wrapped("verdict:", text));
}

/// `head` and `text`, broken at spaces into lines of at most 80 columns (a projector,
/// a book page), each further line indented under the text.
fn wrapped(head: &str, text: &str) -> String {
    let (mut lines, mut line) = (Vec::new(), head.to_string());
    for word in text.split(' ') {
        if line.len() + 1 + word.len() > 80 && !line.trim().is_empty() {
            lines.push(std::mem::replace(&mut line, " ".repeat(head.len())));
        }
        line = format!("{line} {word}");
    }
    lines.push(line);
    lines.join("\n")
}

/// A size for people, MB being 10^6 bytes: "4000 bytes", "8.0 MB", "800 MB", "1.6 GB".
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1_000_000 => format!("{b} bytes"),
        b if b < 10_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b < 1_000_000_000 => format!("{:.0} MB", b as f64 / 1e6),
        b => format!("{:.1} GB", b as f64 / 1e9),
    }
}

/// A duration in seconds: "0.012 s" under a second, "1.25 s" from one on.
pub fn seconds(duration: Duration) -> String {
    match duration.as_secs_f64() {
        s if s < 1.0 => format!("{s:.3} s"),
        s => format!("{s:.2} s"),
    }
}

/// Every element of `data` is `expected`, or an error naming the first that is not:
/// "expected 2.0 in all 1000 elements of the segment, but element 0 is 1".
pub fn expect_all<D: Dimension>(
    data: ArrayView<'_, f64, D>,
    expected: f64,
    what: &str,
) -> Result<()> {
    if let Some((at, seen)) = data.indexed_iter().find(|(_, x)| **x != expected) {
        bail!(
            "expected {expected:.1} in all {} elements of {what}, but element {at:?} is {seen}",
            data.len()
        );
    }
    Ok(())
}
