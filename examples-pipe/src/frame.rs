//! What crosses the pipe: a 32-byte header, then the array's raw bytes.
//!
//! A pipe carries a stream of bytes with no boundaries, so the receiver must learn from
//! the bytes themselves how many more to expect. Python's `Connection.send` solves this
//! with a length prefix followed by a pickle; here the "pickle" is replaced by a header
//! a reader can decode by hand:
//!
//! ```text
//! offset  bytes  field
//!      0      8  magic: the ASCII text "ARRAYF64" (this protocol, elements are f64)
//!      8      8  number of dimensions, u64 little-endian (always 2 here)
//!     16      8  rows,    u64 little-endian
//!     24      8  columns, u64 little-endian
//!     32   8*r*c the elements in row-major (C) order, each an f64 little-endian
//! ```
//!
//! For the tutorial's (10000, 10000) array that is 32 + 800,000,000 bytes. The data is
//! written straight from the sender's array memory and read straight into the
//! receiver's array memory: no serialized copy of the whole array exists on either side.

use std::io::{Read, Write};

use anyhow::{Context, Result, bail, ensure};
use ndarray::Array2;
use plumbing::arrays::{as_bytes, as_bytes_mut, read_up_to};

/// First 8 bytes of every frame. A stream that starts differently is not ours (or is
/// out of step), and must not be trusted to tell us how much memory to allocate.
pub const MAGIC: [u8; 8] = *b"ARRAYF64";
/// Magic + dimension count + two dimensions, 8 bytes each.
pub const HEADER_LEN: usize = 32;

// The data is sent in memory order, which is little-endian only on little-endian
// machines. Refuse to build elsewhere rather than send bytes in a different order.
const _: () = assert!(
    cfg!(target_endian = "little"),
    "the wire format sends f64 in memory order: little-endian machines only"
);

/// The 32 header bytes announcing a (rows, cols) array of f64.
pub fn header(rows: usize, cols: usize) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0..8].copy_from_slice(&MAGIC);
    header[8..16].copy_from_slice(&2u64.to_le_bytes());
    header[16..24].copy_from_slice(&(rows as u64).to_le_bytes());
    header[24..32].copy_from_slice(&(cols as u64).to_le_bytes());
    header
}

/// Sends one frame: the header, then the array's own memory as bytes.
pub fn write_array<W: Write>(out: &mut W, array: &Array2<f64>) -> Result<()> {
    let (rows, cols) = array.dim();
    out.write_all(&header(rows, cols)).context("sending the header")?;

    let data = array.as_slice().context("the array is not contiguous in row-major order")?;
    // One write of the whole buffer: the kernel moves as much as the pipe holds, blocks
    // until the reader makes room, and repeats, all inside this call.
    out.write_all(as_bytes(data)).context("sending the data")?;
    out.flush().context("sending the data")?;
    Ok(())
}

/// Reads and checks the header; returns the shape it announces. Nothing is allocated
/// here: the caller decides whether that shape is one it is willing to receive.
pub fn read_header<R: Read>(input: &mut R) -> Result<(usize, usize)> {
    let mut header = [0u8; HEADER_LEN];
    let (got, _) = read_up_to(input, &mut header).context("reading the header")?;
    ensure!(got == HEADER_LEN, "the stream ended after {got} of {HEADER_LEN} header bytes");
    if header[0..8] != MAGIC {
        bail!(
            "the stream does not start with the magic {:?}, but with {:?}",
            String::from_utf8_lossy(&MAGIC),
            String::from_utf8_lossy(&header[0..8])
        );
    }
    let field = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
    let ndim = field(8);
    ensure!(ndim == 2, "expected a 2-dimensional array, but the header says {ndim} dimensions");
    let (rows, cols) = (field(16), field(24));
    let too_big = || anyhow::anyhow!("the header announces an impossible shape ({rows}, {cols})");
    let rows = usize::try_from(rows).map_err(|_| too_big())?;
    let cols = usize::try_from(cols).map_err(|_| too_big())?;
    Ok((rows, cols))
}

/// Reads exactly the array's size in bytes straight into its buffer. Returns how many
/// `read` calls it took: each asks for all the bytes still missing, and the kernel
/// hands over what the pipe holds at that moment (at most about one pipe buffer).
pub fn read_data_into<R: Read>(input: &mut R, array: &mut Array2<f64>) -> Result<u64> {
    let data = array.as_slice_mut().context("the array is not contiguous in row-major order")?;
    read_values_into(input, data)
}

/// `read_data_into` for a plain buffer of values, whatever shape they stand for.
pub fn read_values_into<R: Read>(input: &mut R, data: &mut [f64]) -> Result<u64> {
    let bytes = as_bytes_mut(data);
    let (got, calls) = read_up_to(input, bytes).context("reading the data")?;
    ensure!(got == bytes.len(), "the stream ended after {got} of {} data bytes", bytes.len());
    Ok(calls)
}

/// After a frame, the sender must have closed its end: one more read must say
/// end-of-file. Anything else means the two sides disagree about the format.
pub fn expect_end<R: Read>(input: &mut R) -> Result<()> {
    let mut extra = [0u8; 1];
    let (got, _) = read_up_to(input, &mut extra).context("reading past the data")?;
    ensure!(got == 0, "expected the stream to end after the data, but more bytes followed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(array: &Array2<f64>) -> Vec<u8> {
        let mut bytes = Vec::new();
        write_array(&mut bytes, array).unwrap();
        bytes
    }

    fn receive(mut stream: &[u8]) -> Result<Array2<f64>> {
        let shape = read_header(&mut stream)?;
        let mut array = Array2::zeros(shape);
        read_data_into(&mut stream, &mut array)?;
        expect_end(&mut stream)?;
        Ok(array)
    }

    #[test]
    fn header_is_magic_ndim_and_shape_in_little_endian() {
        let bytes = frame_of(&Array2::from_elem((2, 3), 1.0));
        assert_eq!(bytes.len(), HEADER_LEN + 2 * 3 * 8);
        assert_eq!(&bytes[0..8], b"ARRAYF64");
        assert_eq!(bytes[8..16], [2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[16..24], [2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[24..32], [3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[32..40], 1.0f64.to_le_bytes());
    }

    #[test]
    fn round_trip_keeps_shape_and_values() {
        let sent = Array2::from_shape_fn((3, 4), |(i, j)| (i * 10 + j) as f64);
        assert_eq!(receive(&frame_of(&sent)).unwrap(), sent);
    }

    #[test]
    fn short_header_is_an_error() {
        let bytes = frame_of(&Array2::from_elem((2, 2), 1.0));
        let err = receive(&bytes[..5]).unwrap_err().to_string();
        assert_eq!(err, "the stream ended after 5 of 32 header bytes");
        let err = receive(&[]).unwrap_err().to_string();
        assert_eq!(err, "the stream ended after 0 of 32 header bytes");
    }

    #[test]
    fn wrong_magic_is_an_error() {
        let mut bytes = frame_of(&Array2::from_elem((2, 2), 1.0));
        bytes[0] = b'X';
        let err = receive(&bytes).unwrap_err().to_string();
        assert!(err.contains("does not start with the magic"), "{err}");
    }

    #[test]
    fn wrong_dimension_count_is_an_error() {
        let mut bytes = frame_of(&Array2::from_elem((2, 2), 1.0));
        bytes[8] = 3;
        let err = receive(&bytes).unwrap_err().to_string();
        assert!(err.contains("says 3 dimensions"), "{err}");
    }

    #[test]
    fn truncated_data_is_an_error() {
        let bytes = frame_of(&Array2::from_elem((2, 2), 1.0));
        let err = receive(&bytes[..bytes.len() - 3]).unwrap_err().to_string();
        assert_eq!(err, "the stream ended after 29 of 32 data bytes");
    }

    #[test]
    fn extra_bytes_after_the_data_are_an_error() {
        let mut bytes = frame_of(&Array2::from_elem((2, 2), 1.0));
        bytes.push(0);
        let err = receive(&bytes).unwrap_err().to_string();
        assert!(err.contains("more bytes followed"), "{err}");
    }
}
