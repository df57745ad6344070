//! The array helpers against real memory and real readers.

use std::io::Read;

use plumbing::arrays::{as_bytes, as_bytes_mut, read_up_to, zeros};

#[test]
fn zeros_are_zeros_or_an_error() {
    assert_eq!(zeros(3).unwrap(), [0.0; 3]);
    assert!(zeros(0).unwrap().is_empty());
    assert!(zeros(usize::MAX / 4).is_err());
}

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
