//! How the array crosses to the child: serialized with serde and bincode, this
//! program's `pickle`.
//!
//! ndarray can serialize itself with serde, but it hands serde one `f64` at a time,
//! and the child's decoder then reads them back one at a time. For 100,000,000
//! values that bookkeeping costs more than moving the bytes: about 1.4 s to decode
//! 800 MB here, against 0.4 s for the format below. So the values travel the way
//! numpy's pickle sends an array's buffer, as raw bytes, after the shape:
//!
//! ```text
//! rows, cols                      two integers
//! number of chunks                an integer
//! chunk: length, bytes            up to 1 MiB of little-endian f64, then the next chunk
//! ```
//!
//! Chunks keep memory flat: each side holds its array plus one chunk, never a
//! second serialized copy of the whole array.

use std::fmt;
use std::io::{BufReader, BufWriter, Read, Write};

use anyhow::Result;
use ndarray::Array2;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Values per chunk: 131072 f64, 1 MiB.
const CHUNK_VALUES: usize = 1 << 17;

/// Both sides must agree on the encoding: bincode's standard configuration. The
/// rows, columns and chunk lengths are its variable-length integers; each chunk's
/// bytes go as they are, the values' little-endian bytes in row-major order.
pub fn wire_format() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// The parent's side of `pickle.dumps`: serializes `data` straight into the child's
/// input, through a small buffer, so that no second 800 MB buffer exists (Python's
/// pickle builds the whole bytes object first). Closing the pipe at the end is the
/// child's end of input. Returns the bytes sent.
pub fn send(pipe: std::process::ChildStdin, data: &Array2<f64>) -> Result<usize> {
    widen_pipe(&pipe);
    let mut pipe = BufWriter::with_capacity(1 << 20, pipe);
    let bytes = bincode::serde::encode_into_std_write(Outgoing(data), &mut pipe, wire_format())?;
    pipe.flush()?;
    Ok(bytes)
}

/// The child's side of `pickle.loads`: a new array, rebuilt from the bytes.
pub fn receive(input: impl Read) -> Result<Array2<f64>> {
    let mut input = BufReader::with_capacity(1 << 20, input);
    let Incoming(data) = bincode::serde::decode_from_std_read(&mut input, wire_format())?;
    Ok(data)
}

/// A pipe holds 64 KiB by default, so 800 MB cross it in 12,000 rounds of "parent
/// fills, child drains", each a pair of context switches. Linux lets a pipe grow to
/// /proc/sys/fs/pipe-max-size (1 MiB unless changed): 16 times fewer rounds. Only a
/// speed-up: if the kernel refuses, the default pipe carries the same bytes.
pub fn widen_pipe(pipe: &impl std::os::fd::AsFd) {
    let _ = nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
}

/// The parent's side: serializes an array it keeps.
pub struct Outgoing<'a>(pub &'a Array2<f64>);

/// The child's side: a new array, rebuilt from the bytes.
pub struct Incoming(pub Array2<f64>);

impl Serialize for Outgoing<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (rows, cols) = self.0.dim();
        let values = self.0.as_standard_layout();
        let values = values.as_slice().expect("a standard-layout array is one slice");
        let mut tuple = serializer.serialize_tuple(3)?;
        tuple.serialize_element(&rows)?;
        tuple.serialize_element(&cols)?;
        tuple.serialize_element(&Chunks(values))?;
        tuple.end()
    }
}

struct Chunks<'a>(&'a [f64]);

impl Serialize for Chunks<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.chunks(CHUNK_VALUES).map(Chunk))
    }
}

struct Chunk<'a>(&'a [f64]);

impl Serialize for Chunk<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Little-endian whatever the machine, so the format is the same everywhere.
        let bytes: Vec<u8> = self.0.iter().flat_map(|x| x.to_le_bytes()).collect();
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for Incoming {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_tuple(3, IncomingVisitor)
    }
}

struct IncomingVisitor;

impl<'de> Visitor<'de> for IncomingVisitor {
    type Value = Incoming;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("rows, columns and the values of an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Incoming, A::Error> {
        let missing = || de::Error::custom("the array ended early");
        let rows: usize = seq.next_element()?.ok_or_else(missing)?;
        let cols: usize = seq.next_element()?.ok_or_else(missing)?;
        let len = rows
            .checked_mul(cols)
            .ok_or_else(|| de::Error::custom(format!("impossible shape ({rows}, {cols})")))?;
        let values = seq.next_element_seed(Values { len })?.ok_or_else(missing)?;
        let array = Array2::from_shape_vec((rows, cols), values).map_err(de::Error::custom)?;
        Ok(Incoming(array))
    }
}

/// Reads the chunks into one vector of exactly `len` values, allocated once.
struct Values {
    len: usize,
}

impl<'de> DeserializeSeed<'de> for Values {
    type Value = Vec<f64>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<f64>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Values {
    type Value = Vec<f64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} values in chunks of bytes", self.len)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
        let mut values: Vec<f64> = Vec::new();
        values
            .try_reserve_exact(self.len)
            .map_err(|_| de::Error::custom(format!("no memory for {} values", self.len)))?;
        // The buffer is fresh memory the kernel hands out page by page as it is
        // written. Asking for 2 MiB pages, as numpy does for large arrays, turns
        // 195,000 page faults for 800 MB into about 400.
        let bytes = self.len * size_of::<f64>();
        plumbing::bench::advise_huge_pages(values.as_mut_ptr().cast(), bytes);
        while let Some(ChunkBytes(bytes)) = seq.next_element()? {
            if bytes.len() % 8 != 0 || values.len() + bytes.len() / 8 > self.len {
                return Err(de::Error::custom("a chunk does not fit the array's shape"));
            }
            let chunk = bytes.chunks_exact(8);
            values.extend(chunk.map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))));
        }
        if values.len() != self.len {
            return Err(de::Error::custom(format!(
                "expected {} values, received {}",
                self.len,
                values.len()
            )));
        }
        Ok(values)
    }
}

/// One chunk, as the bytes bincode read.
struct ChunkBytes(Vec<u8>);

impl<'de> Deserialize<'de> for ChunkBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_byte_buf(ChunkVisitor)
    }
}

struct ChunkVisitor;

impl Visitor<'_> for ChunkVisitor {
    type Value = ChunkBytes;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a chunk of bytes")
    }

    fn visit_byte_buf<E>(self, bytes: Vec<u8>) -> Result<ChunkBytes, E> {
        Ok(ChunkBytes(bytes))
    }

    fn visit_bytes<E>(self, bytes: &[u8]) -> Result<ChunkBytes, E> {
        Ok(ChunkBytes(bytes.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(array: &Array2<f64>) -> Array2<f64> {
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(Outgoing(array), config).unwrap();
        let (Incoming(back), read) =
            bincode::serde::decode_from_slice::<Incoming, _>(&bytes, config).unwrap();
        assert_eq!(read, bytes.len());
        back
    }

    #[test]
    fn arrays_come_back_equal_across_chunk_boundaries() {
        for (rows, cols) in [(0, 0), (1, 1), (3, 5), (1, CHUNK_VALUES + 7), (513, 512)] {
            let array = Array2::from_shape_fn((rows, cols), |(r, c)| (r * 1000 + c) as f64 - 0.5);
            assert_eq!(round_trip(&array), array, "shape ({rows}, {cols})");
        }
    }

    #[test]
    fn a_transposed_array_travels_in_its_logical_order() {
        let mut array = Array2::from_shape_fn((3, 4), |(r, c)| (r * 10 + c) as f64);
        array.swap_axes(0, 1);
        assert!(!array.is_standard_layout());
        assert_eq!(round_trip(&array), array);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let config = bincode::config::standard();
        let array = Array2::<f64>::ones((4, 4));
        let bytes = bincode::serde::encode_to_vec(Outgoing(&array), config).unwrap();
        for cut in [0, 1, 3, bytes.len() / 2, bytes.len() - 1] {
            let result = bincode::serde::decode_from_slice::<Incoming, _>(&bytes[..cut], config);
            assert!(result.is_err(), "cut at {cut}");
        }
    }
}
