//! What travels on the queue, and how an array gets on and off it.
//!
//! Python's `queue.put(data)` pickles the whole array into one bytes object and
//! writes it to a pipe; `queue.get()` reads the bytes and unpickles a new array.
//! Here a put is two steps:
//!
//! 1. a small typed message, a [`Parcel`], goes on the queue: who made the array,
//!    its shape, and the receiving end of a byte channel made for this one array;
//! 2. the array's bytes go down that byte channel, straight from the array's own
//!    memory, in pieces of [`PIECE_BYTES`].
//!
//! Why not simply `IpcSender<Array2<f64>>` (or `Vec<f64>`)? It works, but serde
//! first writes the whole array into a new buffer before sending (two arrays' worth
//! of memory in the sender), and the receiver holds the raw message and the decoded
//! array at the same time (two in the receiver): an 800 MB array costs 1.6 GB on each
//! side. Here the sender sends the array's own memory, and the receiver writes each
//! piece that arrives straight into the array it is building, so each side holds
//! one array (plus one piece of 1 MiB in flight). The copy is still a whole copy:
//! the getter ends up with an array of its own.
//!
//! The byte channel travels inside the parcel, so the bytes of two producers'
//! arrays can never mix, however many processes put on the same queue at once.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ipc_channel::IpcError;
use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender, IpcReceiver, IpcSender};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// The array's bytes travel in messages of this size (1 MiB), and the receiver
/// copies each one into place as soon as it arrives.
///
/// Why pieces: ipc-channel hands every message over as a new `Vec<u8>` of the
/// message's size. Sent as one message, an 800 MB array would arrive as an 800 MB
/// `Vec<u8>`, and the receiver would hold it and the `f64` array rebuilt from it at
/// the same time. In pieces, only one piece is ever held beside the array, and the
/// allocator reuses its memory for the next one. Why 1 MiB: measured on an 800 MB
/// array, pieces from 64 KiB to 4 MiB are equally fast; much larger ones are a
/// little slower (a piece no longer stays in the CPU cache until it is copied) and
/// hold more memory for nothing.
const PIECE_BYTES: usize = 1 << 20;

/// The typed message on the queue: a label, a shape, and where the bytes will come.
#[derive(Serialize, Deserialize)]
pub struct Parcel {
    /// Who made the array: 0 is the parent, 1, 2, ... are the children.
    pub from: u32,
    /// (rows, columns); the bytes are rows * columns f64 values, row after row.
    pub shape: (usize, usize),
    data: IpcBytesReceiver,
}

/// An array taken out of a parcel: the receiver's own copy.
pub struct Got {
    pub from: u32,
    pub array: Array2<f64>,
    /// How long receiving the array took, once its parcel was here.
    pub took: Duration,
    pub bytes: usize,
}

impl Parcel {
    /// A parcel for an array of this shape, and the sender its bytes must go down.
    pub fn wrap(from: u32, shape: (usize, usize)) -> Result<(Parcel, IpcBytesSender)> {
        let (bytes_in, bytes_out) =
            ipc::bytes_channel().context("could not make a channel for the array's bytes")?;
        let parcel = Parcel { from, shape, data: bytes_out };
        Ok((parcel, bytes_in))
    }

    /// Receives the array's bytes, straight into the getter's new array.
    pub fn open(self) -> Result<Got> {
        let started = Instant::now();
        let (rows, columns) = self.shape;
        let len = rows
            .checked_mul(columns)
            .filter(|len| len.checked_mul(size_of::<f64>()).is_some())
            .with_context(|| format!("a parcel from {} has an impossible shape", who(self.from)))?;
        let values = receive_values(&self.data, len)
            .with_context(|| format!("could not get the array from {}", who(self.from)))?;
        let array = Array2::from_shape_vec(self.shape, values).context("bad shape")?;
        Ok(Got { from: self.from, array, took: started.elapsed(), bytes: len * size_of::<f64>() })
    }
}

/// Receives `len` f64 values from a byte channel, piece by piece, into the vector
/// that keeps them: the array's memory is allocated once, and filled as it comes.
fn receive_values(bytes: &IpcBytesReceiver, len: usize) -> Result<Vec<f64>> {
    let mut values: Vec<f64> = Vec::new();
    values.try_reserve_exact(len).with_context(|| format!("no memory for {len} values"))?;
    // Like numpy for a large array, ask the kernel for 2 MiB pages: the 800 MB then
    // arrive in 400 page faults instead of 200,000 (see `plumbing::bench`).
    plumbing::bench::advise_huge_pages(values.as_mut_ptr().cast(), len * size_of::<f64>());
    while values.len() < len {
        let piece = bytes.recv().map_err(|err| match err {
            // The sender's end closed before all the bytes came: it died mid-put.
            IpcError::Disconnected => anyhow::anyhow!(
                "only {} of its {} bytes arrived: the sender went away",
                values.len() * size_of::<f64>(),
                len * size_of::<f64>()
            ),
            other => anyhow::Error::from(other).context("could not receive the array's bytes"),
        })?;
        let room = len - values.len();
        if piece.len() % size_of::<f64>() != 0 || piece.len() / size_of::<f64>() > room {
            bail!(
                "expected {len} f64 values in all, but a piece of {} bytes came with room \
                 for {room} more",
                piece.len()
            );
        }
        // The piece can't simply be relabelled as f64s: a Vec<u8> may sit at any
        // address, and an f64 must sit at a multiple of 8. So each 8 bytes are
        // copied into place (compiled, this is as fast as a plain memory copy).
        values.extend(
            piece
                .chunks_exact(size_of::<f64>())
                .map(|bytes| f64::from_ne_bytes(bytes.try_into().expect("chunks of 8 bytes"))),
        );
    }
    Ok(values)
}

/// `queue.put(data)`: the parcel goes on the queue, then the bytes follow it.
///
/// A send larger than the socket's buffer (a few hundred KB) returns only once the
/// other side has read nearly all of it. So a process must never put a large
/// array on a queue that only it will get from, later, on the same thread: it would
/// wait for itself forever. (The benchmark tutorial's Python puts the array before
/// the child even starts; Python's queue gets away with it because a hidden feeder
/// thread does the writing.) Here every put has a reader in another process.
pub fn put(queue: &IpcSender<Parcel>, from: u32, array: &Array2<f64>) -> Result<()> {
    let (parcel, bytes) = Parcel::wrap(from, array.dim())?;
    queue.send(parcel).context("could not put on the queue (is the getter gone?)")?;
    send_bytes(&bytes, array)
}

/// Sends the array's memory down a parcel's byte channel, without copying it first.
pub fn send_bytes(bytes: &IpcBytesSender, array: &Array2<f64>) -> Result<()> {
    let values = array.as_slice().context("the array is not one contiguous block in row order")?;
    // SAFETY: `values` is a live, initialized &[f64]. Viewing the same memory as
    // bytes is sound: u8 has alignment 1, every byte of an f64 is initialized (f64
    // has no padding), the length in bytes is len * 8 (it fits: the slice exists),
    // and the byte view borrows `array` only until this function returns.
    let raw =
        unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size_of_val(values)) };
    for piece in raw.chunks(PIECE_BYTES) {
        bytes
            .send(piece)
            .context("could not send the array's bytes (did the receiving process die?)")?;
    }
    Ok(())
}

/// `queue.get()`: waits for the next parcel and opens it.
///
/// "Disconnected" means every put end of the queue is gone: all the processes that
/// held one have exited. That is why the parent never keeps a put end of its own
/// after handing them out: otherwise a dead child would leave the parent waiting on
/// a queue that can never deliver.
pub fn get(queue: &IpcReceiver<Parcel>) -> Result<Got> {
    let parcel = queue.recv().map_err(|err| match err {
        IpcError::Disconnected => anyhow::anyhow!(
            "the queue closed before an array arrived: no process that could put on it is left"
        ),
        other => anyhow::Error::from(other).context("could not get from the queue"),
    })?;
    parcel.open()
}

/// "the parent" or "child 3", for messages.
pub fn who(from: u32) -> String {
    match from {
        0 => "the parent".to_owned(),
        id => format!("child {id}"),
    }
}
