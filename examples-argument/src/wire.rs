//! How the array crosses to the child: serialized with serde and bincode, this
//! program's `pickle`.
//!
//! ndarray can serialize itself with serde, but it hands serde one `f64` at a time,
//! and the child's decoder then reads them back one at a time: for 100,000,000 values
//! that bookkeeping costs more than moving the bytes. numpy's pickle (protocol 5)
//! does better: it pickles the array's description and sends its buffer as it is,
//! "out of band". So does this format. bincode encodes what describes the array, and
//! the values follow as the array's own bytes:
//!
//! ```text
//! rows, cols          the header: two integers, bincode's variable-length encoding
//! rows * cols * 8     the values: little-endian f64, row after row, nothing else
//! ```
//!
//! The sender writes the values straight from its array into the pipe, and the
//! receiver reads them straight into its new array: no serialized copy of the whole
//! array exists on either side. The kernel copies the bytes into the pipe and the
//! child's `read` copies them out: two copies in all. (The header bincode reads a
//! few bytes at a time; the values in as few `read`s as the pipe allows.)

use std::fs::File;
use std::io::{Read, Write};

use anyhow::{Context, Result, ensure};
use ndarray::Array2;
use plumbing::arrays::{as_bytes, as_bytes_mut, read_up_to};
use serde::{Deserialize, Serialize};

/// The values are sent as they lie in memory, which is little-endian only on a
/// little-endian machine: refuse to build elsewhere rather than send another order.
const _: () = assert!(cfg!(target_endian = "little"), "the values travel in memory order");

/// What bincode encodes: the array's shape. The values follow it, raw.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Header {
    pub rows: u64,
    pub cols: u64,
}

/// Both sides must agree on the encoding: bincode's standard configuration.
pub fn wire_format() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// The parent's side of `pickle.dumps`, straight into the child's pipe. Closing the
/// pipe at the end is the child's end of input. Returns the bytes sent.
pub fn send(mut pipe: File, data: &Array2<f64>) -> Result<usize> {
    widen_pipe(&pipe);
    write_array(&mut pipe, data)
}

/// Writes the header, then the values from the array's own memory.
pub fn write_array(out: &mut impl Write, data: &Array2<f64>) -> Result<usize> {
    let header = write_header(out, data.dim())?;
    // A transposed or sliced array is sent in its logical (row-major) order, which
    // takes a copy; the arrays of the lessons are already in that order and are not.
    let values = data.as_standard_layout();
    let bytes = as_bytes(values.as_slice().expect("a standard-layout array is one slice"));
    // One call: the kernel moves as much as the pipe holds, waits for the child to
    // make room, and repeats, all inside it.
    out.write_all(bytes).context("sending the values")?;
    Ok(header + bytes.len())
}

/// Encodes the header with bincode and writes it in one piece; returns its length.
pub fn write_header(out: &mut impl Write, (rows, cols): (usize, usize)) -> Result<usize> {
    let mut buffer = [0u8; 32];
    let header = Header { rows: rows as u64, cols: cols as u64 };
    let len = bincode::serde::encode_into_slice(header, &mut buffer, wire_format())?;
    out.write_all(&buffer[..len]).context("sending the header")?;
    Ok(len)
}

/// The child's side of `pickle.loads`: a new array, its values read straight into it.
pub fn receive(mut input: impl Read) -> Result<Array2<f64>> {
    let Header { rows, cols } = bincode::serde::decode_from_std_read(&mut input, wire_format())
        .context("reading the header")?;
    let impossible = || format!("the header announces an impossible shape ({rows}, {cols})");
    let rows = usize::try_from(rows).with_context(impossible)?;
    let cols = usize::try_from(cols).with_context(impossible)?;
    let len = rows.checked_mul(cols).with_context(impossible)?;
    // Fresh zero pages, asked to be 2 MiB (huge) pages as numpy does for a large
    // array: the kernel hands them out while `read` copies into them, about 400
    // page faults for 800 MB instead of 195,000.
    let mut values = plumbing::arrays::zeros(len)?;
    let bytes = as_bytes_mut(&mut values);
    let (got, _) = read_up_to(&mut input, bytes).context("reading the values")?;
    ensure!(got == bytes.len(), "the values ended after {got} of {} bytes", bytes.len());
    ensure!(read_up_to(&mut input, &mut [0u8; 1])?.0 == 0, "more bytes followed the values");
    Ok(Array2::from_shape_vec((rows, cols), values)?)
}

/// A pipe holds 64 KiB by default, so 800 MB cross it in 12,000 rounds of "parent
/// fills, child drains", each a pair of context switches. Linux lets a pipe grow to
/// /proc/sys/fs/pipe-max-size (1 MiB unless changed): 16 times fewer rounds. Only a
/// speed-up: if the kernel refuses, the default pipe carries the same bytes.
pub fn widen_pipe(pipe: &impl std::os::fd::AsFd) {
    let _ = nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(array: &Array2<f64>) -> Array2<f64> {
        let mut bytes = Vec::new();
        let sent = write_array(&mut bytes, array).unwrap();
        assert_eq!(sent, bytes.len());
        receive(&bytes[..]).unwrap()
    }

    #[test]
    fn arrays_come_back_equal() {
        for (rows, cols) in [(0, 0), (1, 1), (3, 5), (1, 300_007), (513, 512)] {
            let array = Array2::from_shape_fn((rows, cols), |(r, c)| (r * 1000 + c) as f64 - 0.5);
            assert_eq!(round_trip(&array), array, "shape ({rows}, {cols})");
        }
    }

    #[test]
    fn the_header_is_bincode_and_the_values_follow_raw() {
        let mut bytes = Vec::new();
        write_array(&mut bytes, &Array2::from_elem((2, 300), 1.5)).unwrap();
        // Variable-length integers: 2 fits in one byte; 300 takes a marker and a u16.
        assert_eq!(bytes[..4], [2, 251, 44, 1]);
        assert_eq!(bytes.len(), 4 + 2 * 300 * 8);
        assert_eq!(bytes[4..12], 1.5f64.to_le_bytes());
    }

    #[test]
    fn a_transposed_array_travels_in_its_logical_order() {
        let mut array = Array2::from_shape_fn((3, 4), |(r, c)| (r * 10 + c) as f64);
        array.swap_axes(0, 1);
        assert!(!array.is_standard_layout());
        assert_eq!(round_trip(&array), array);
    }

    #[test]
    fn truncated_or_overlong_input_is_an_error_not_a_panic() {
        let mut bytes = Vec::new();
        write_array(&mut bytes, &Array2::<f64>::ones((4, 4))).unwrap();
        for cut in [0, 1, 3, bytes.len() / 2, bytes.len() - 1] {
            assert!(receive(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        bytes.push(0);
        let err = receive(&bytes[..]).unwrap_err().to_string();
        assert_eq!(err, "more bytes followed the values");
    }

    #[test]
    fn an_impossible_shape_is_an_error_not_an_abort() {
        let mut bytes = Vec::new();
        write_header(&mut bytes, (usize::MAX, 2)).unwrap();
        assert!(receive(&bytes[..]).unwrap_err().to_string().contains("impossible shape"));
        bytes.clear();
        write_header(&mut bytes, (1 << 40, 1 << 20)).unwrap();
        assert!(receive(&bytes[..]).is_err());
    }
}
