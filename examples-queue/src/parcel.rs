//! What travels on the queue, and how an array gets on and off it.
//!
//! Python's `queue.put(data)` pickles the whole array into one bytes object and
//! writes it to a pipe; `queue.get()` reads the bytes and unpickles a new array.
//! Here a put is two steps:
//!
//! 1. a small typed message, a [`Parcel`], goes on the queue: who made the array,
//!    its shape, and the receiving end of a byte channel made for this one array;
//! 2. the array's bytes go down that byte channel, straight from the array's own
//!    memory.
//!
//! Why not simply `IpcSender<Array2<f64>>` (or `Vec<f64>`)? It works, but serde
//! first writes the whole array into a new buffer before sending (two arrays' worth
//! of memory in the sender), and the receiver holds the raw message and the decoded
//! array at the same time (two in the receiver): an 800 MB array costs 1.6 GB on each
//! side. Raw bytes avoid the copy in the sender. The receiver still needs a moment
//! with two: the received bytes and the array rebuilt from them.
//!
//! The byte channel travels inside the parcel, so the bytes of two producers'
//! arrays can never mix, however many processes put on the same queue at once.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ipc_channel::IpcError;
use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender, IpcReceiver, IpcSender};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

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
    /// How long receiving and rebuilding the array took, once its parcel was here.
    pub took: Duration,
    pub bytes: usize,
}

impl Parcel {
    /// A parcel for an array of this shape, and the sender its bytes must go down.
    pub fn wrap(from: u32, shape: (usize, usize)) -> Result<(Parcel, IpcBytesSender)> {
        let (bytes_in, bytes_out) =
            ipc::bytes_channel().context("could not make a channel for the array's bytes")?;
        let parcel = Parcel {
            from,
            shape,
            data: bytes_out,
        };
        Ok((parcel, bytes_in))
    }

    /// Receives the array's bytes and rebuilds the array from them.
    pub fn open(self) -> Result<Got> {
        let started = Instant::now();
        let (rows, columns) = self.shape;
        let bytes = self.data.recv().map_err(|err| match err {
            // The sender's end closed before the bytes came: its process died mid-put.
            IpcError::Disconnected => anyhow::anyhow!(
                "the bytes of the array from {} never arrived: the sender went away",
                who(self.from)
            ),
            other => anyhow::Error::from(other).context("could not receive the array's bytes"),
        })?;
        let expected = rows
            .checked_mul(columns)
            .and_then(|len| len.checked_mul(size_of::<f64>()));
        if expected != Some(bytes.len()) {
            bail!(
                "expected {rows} x {columns} f64 values ({} bytes) from {}, but {} bytes came",
                rows.saturating_mul(columns)
                    .saturating_mul(size_of::<f64>()),
                who(self.from),
                bytes.len()
            );
        }
        // This is the moment with two copies in this process: `bytes` and `values`.
        // The bytes can't simply be relabelled as f64s: a Vec<u8> may sit at any
        // address, and an f64 must sit at a multiple of 8.
        let values: Vec<f64> = bytes
            .chunks_exact(size_of::<f64>())
            .map(|chunk| f64::from_ne_bytes(chunk.try_into().expect("chunks of 8 bytes")))
            .collect();
        let received = bytes.len();
        drop(bytes);
        let array = Array2::from_shape_vec(self.shape, values).context("bad shape")?;
        Ok(Got {
            from: self.from,
            array,
            took: started.elapsed(),
            bytes: received,
        })
    }
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
    queue
        .send(parcel)
        .context("could not put on the queue (is the getter gone?)")?;
    send_bytes(&bytes, array)
}

/// Sends the array's memory down a parcel's byte channel, without copying it first.
pub fn send_bytes(bytes: &IpcBytesSender, array: &Array2<f64>) -> Result<()> {
    let values = array
        .as_slice()
        .context("the array is not one contiguous block in row order")?;
    // SAFETY: `values` is a live, initialized &[f64]. Viewing the same memory as
    // bytes is sound: u8 has alignment 1, every byte of an f64 is initialized (f64
    // has no padding), the length in bytes is len * 8 (it fits: the slice exists),
    // and the byte view borrows `array` only until this function returns.
    let raw =
        unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), size_of_val(values)) };
    bytes
        .send(raw)
        .context("could not send the array's bytes (did the receiving process die?)")
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
