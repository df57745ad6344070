//! What the programs print, the same way in every program: the array's first
//! values or its top-left corner (what the tutorials print), sizes and times.

use std::fmt::Debug;
use std::time::Duration;

use ndarray::{ArrayView1, ArrayView2, s};

/// The first 10 values, as the tutorials print `data[:10]`:
/// `child: first 10 values: [1.0, 1.0, ...]`.
pub fn show_first_values<A: Debug>(who: &str, data: ArrayView1<'_, A>) {
    let first: Vec<String> = data.iter().take(10).map(|v| format!("{v:?}")).collect();
    println!("{who}: first {} values: [{}]", first.len(), first.join(", "));
}

/// The top-left 5x5 corner, as the tutorials print `data[:5, :5]`, one row a line.
pub fn show_corner(who: &str, data: ArrayView2<'_, f64>) {
    println!("{who}: top-left 5x5 corner:");
    let (rows, cols) = data.dim();
    for row in data.slice(s![..rows.min(5), ..cols.min(5)]).rows() {
        let values: Vec<String> = row.iter().map(|x| format!("{x:.1}")).collect();
        println!("{who}:   [{}]", values.join(", "));
    }
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

/// `length` random lowercase letters and digits, for names that must not collide
/// with another run's (std seeds every `RandomState` from the OS's random source).
pub fn random_word(length: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..length)
        .map(|_| {
            let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
            ALPHABET[(random % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// A duration in seconds: "0.012 s" under a second, "1.25 s" from one on.
pub fn seconds(duration: Duration) -> String {
    match duration.as_secs_f64() {
        s if s < 1.0 => format!("{s:.3} s"),
        s => format!("{s:.2} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(size(4000), "4000 bytes");
        assert_eq!(size(8_000_000), "8.0 MB");
        assert_eq!(size(800_000_000), "800 MB");
        assert_eq!(size(1_600_000_000), "1.6 GB");
    }
}
