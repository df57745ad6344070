//! An array's values as the bytes they are in memory, for the programs that send an
//! array's own memory (a pipe, a child's standard input, a window of shared memory)
//! and read it back in place, with no buffer on either side.
//!
//! The bytes are the machine's own: little-endian on every machine these programs
//! run on (Linux on x86-64 or AArch64), which is what numpy's `float64` is there.

use std::io::{self, Read};

/// The values' own memory, as bytes.
pub fn as_bytes(values: &[f64]) -> &[u8] {
    // SAFETY: an f64 is 8 bytes with no padding, so its memory may be read as bytes;
    // u8 needs no alignment; the length covers exactly the memory of `values`, which
    // stays borrowed (alive, unchanged) as long as the bytes are.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size_of_val(values)) }
}

/// The values' own memory, as bytes to write into.
pub fn as_bytes_mut(values: &mut [f64]) -> &mut [u8] {
    // SAFETY: as in `as_bytes`, and every pattern of 8 bytes is a valid f64 (at worst
    // a NaN), so whatever is written here leaves valid values; the borrow is exclusive
    // because it comes from `&mut`.
    unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), size_of_val(values)) }
}

/// Reads until `buf` is full or the input ends. Returns (bytes read, `read` calls).
/// Unlike `read_exact`, it says how far it got, so a short stream can be a clear
/// message ("the stream ended after 39968 of 80000 bytes").
pub fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<(usize, u64)> {
    let (mut got, mut calls) = (0, 0);
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => {
                got += k;
                calls += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((got, calls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_bytes_are_the_same_memory() {
        let mut values = [1.0f64, -2.5];
        assert_eq!(as_bytes(&values)[..8], 1.0f64.to_ne_bytes());
        as_bytes_mut(&mut values)[8..].copy_from_slice(&3.0f64.to_ne_bytes());
        assert_eq!(values, [1.0, 3.0]);
    }

    #[test]
    fn a_short_input_says_how_far_it_got() {
        let mut buf = [0u8; 10];
        assert_eq!(read_up_to(&mut &[7u8; 4][..], &mut buf).unwrap(), (4, 1));
        assert_eq!(buf[..5], [7, 7, 7, 7, 0]);
        let mut chained = (&[1u8; 6][..]).chain(&[2u8; 6][..]);
        assert_eq!(read_up_to(&mut chained, &mut buf).unwrap(), (10, 2));
    }
}
