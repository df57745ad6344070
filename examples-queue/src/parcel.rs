//! What travels on the queue, and how an array gets on and off it.
//!
//! Python's `queue.put(data)` pickles the whole array into one bytes object and
//! writes it to a pipe; `queue.get()` reads the bytes and unpickles a new array.
//! Here a put is two steps:
//!
//! 1. a small typed message, a [`Parcel`], goes on the queue: who made the array,
//!    its shape, and what the bytes will come through;
//! 2. the array's bytes follow, a piece at a time, through two small windows of
//!    shared memory that the parcel carries (ipc-channel's `IpcSharedMemory`, its
//!    way of sending a large payload): the putter copies a piece into a free
//!    window and says so; the getter copies it out, into the array it is
//!    building, and hands the window back.
//!
//! Why not simply `IpcSender<Array2<f64>>` (or `Vec<f64>`)? It works, but serde
//! first writes the whole array into a new buffer before sending (two arrays' worth
//! of memory in the sender), and the receiver holds the raw message and the decoded
//! array at the same time (two in the receiver): an 800 MB array costs 1.6 GB on each
//! side. Here each side holds one array, plus the two windows. The copy is still a
//! whole copy: the windows only pass the bytes along, and the getter ends up with an
//! array of its own, in its own private memory.
//!
//! The windows travel inside the parcel, so the bytes of two producers' arrays can
//! never mix, however many processes put on the same queue at once.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ipc_channel::IpcError;
use ipc_channel::ipc::{self, IpcReceiver, IpcSender, IpcSharedMemory};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// The size of a window (1 MiB), so the size of the pieces the bytes travel in.
/// Measured on 160 MB and 800 MB arrays, 1 MiB was faster than 256 KiB (four times
/// the messages) and than 4 MiB (a piece no longer stays in the CPU cache between
/// the two copies). Two windows, so the putter fills one while the getter empties
/// the other.
const WINDOW_BYTES: usize = 1 << 20;

/// The typed message on the queue: a label, a shape, and where the bytes will come.
#[derive(Serialize, Deserialize)]
pub struct Parcel {
    /// Who made the array: 0 is the parent, 1, 2, ... are the children.
    pub from: u32,
    /// (rows, columns); the bytes are rows * columns f64 values, row after row.
    pub shape: (usize, usize),
    windows: Vec<IpcSharedMemory>,
    /// From the putter: "window w now holds the next piece, of this many bytes".
    filled: IpcReceiver<(usize, usize)>,
    /// To the putter: "window w is free again".
    emptied: IpcSender<usize>,
}

/// The putter's side of a parcel, to pack the bytes into: the same windows, the
/// other ends of the talk.
pub struct Packing {
    windows: Vec<IpcSharedMemory>,
    filled: IpcSender<(usize, usize)>,
    emptied: IpcReceiver<usize>,
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
    /// A parcel for an array of this shape, and the putter's side of it.
    pub fn wrap(from: u32, shape: (usize, usize)) -> Result<(Parcel, Packing)> {
        let bytes = byte_len(shape).with_context(|| format!("impossible shape {shape:?}"))?;
        // Two windows, or one if a single piece holds the whole array.
        let window = bytes.clamp(1, WINDOW_BYTES);
        let count = bytes.div_ceil(window).clamp(1, 2);
        let windows: Vec<_> = (0..count).map(|_| IpcSharedMemory::from_byte(0, window)).collect();
        let (filled, filled_here) =
            ipc::channel().context("could not make the parcel's channel")?;
        let (emptied, emptied_here) =
            ipc::channel().context("could not make the parcel's channel")?;
        let parcel = Parcel { from, shape, windows: windows.clone(), filled: filled_here, emptied };
        Ok((parcel, Packing { windows, filled, emptied: emptied_here }))
    }

    /// Receives the array's bytes, straight into the getter's new array.
    pub fn open(self) -> Result<Got> {
        let started = Instant::now();
        let len = byte_len(self.shape)
            .with_context(|| format!("a parcel from {} has an impossible shape", who(self.from)))?
            / size_of::<f64>();
        let values = self
            .receive_values(len)
            .with_context(|| format!("could not get the array from {}", who(self.from)))?;
        let array = Array2::from_shape_vec(self.shape, values).context("bad shape")?;
        Ok(Got { from: self.from, array, took: started.elapsed(), bytes: len * size_of::<f64>() })
    }

    /// Receives `len` f64 values, piece by piece, into the array that keeps them:
    /// its memory is allocated once (on 2 MiB pages, as numpy allocates a large
    /// array), and filled as the pieces come.
    fn receive_values(&self, len: usize) -> Result<Vec<f64>> {
        let mut values = plumbing::arrays::zeros(len)?;
        let mut got = 0; // bytes so far
        let bytes = plumbing::arrays::as_bytes_mut(&mut values);
        while got < bytes.len() {
            let (window, piece_len) = self.filled.recv().map_err(|err| match err {
                // The putter's end closed before all the bytes came: it died mid-put.
                IpcError::Disconnected => anyhow::anyhow!(
                    "only {got} of its {} bytes arrived: the sender went away",
                    bytes.len()
                ),
                other => anyhow::Error::from(other).context("could not receive the array's bytes"),
            })?;
            let Some(piece) = self.windows.get(window).and_then(|w| w.get(..piece_len)) else {
                bail!("a piece of {piece_len} bytes in window {window} does not fit the windows");
            };
            let Some(place) = bytes.get_mut(got..got + piece_len) else {
                bail!("expected {} bytes in all, but {piece_len} came after {got}", bytes.len());
            };
            // Copied into place: the getter's array is its own memory, not the window.
            place.copy_from_slice(piece);
            got += piece_len;
            // The window is the putter's again. If it has gone, it had nothing more
            // to put in it; a missing piece shows at the next `recv`.
            let _ = self.emptied.send(window);
        }
        Ok(values)
    }
}

/// rows * columns * 8, if that fits in memory's addresses.
fn byte_len((rows, columns): (usize, usize)) -> Option<usize> {
    rows.checked_mul(columns)?.checked_mul(size_of::<f64>()).filter(|&b| b <= isize::MAX as usize)
}

/// `queue.put(data)`: the parcel goes on the queue, then the bytes follow it.
///
/// A put returns only once the getter has taken all but the last two pieces. So a
/// process must never put a large array on a queue that only it will get from,
/// later, on the same thread: it would wait for itself forever. (The benchmark
/// tutorial's Python puts the array before the child even starts; Python's queue
/// gets away with it because a hidden feeder thread does the writing.) Here every
/// put has a reader in another process.
pub fn put(queue: &IpcSender<Parcel>, from: u32, array: &Array2<f64>) -> Result<()> {
    let (parcel, packing) = Parcel::wrap(from, array.dim())?;
    queue.send(parcel).context("could not put on the queue (is the getter gone?)")?;
    send_bytes(packing, array)
}

/// Copies the array's memory, a piece at a time, through the parcel's windows.
pub fn send_bytes(mut packing: Packing, array: &Array2<f64>) -> Result<()> {
    let values = array.as_slice().context("the array is not one contiguous block in row order")?;
    let raw = plumbing::arrays::as_bytes(values);
    let gone = "could not send the array's bytes (did the receiving process die?)";
    for (index, piece) in raw.chunks(WINDOW_BYTES).enumerate() {
        // The first pieces go into fresh windows; each later one waits for a window
        // the getter has emptied.
        let window = match index {
            i if i < packing.windows.len() => i,
            _ => packing.emptied.recv().context(gone)?,
        };
        let Some(place) = packing.windows.get_mut(window) else { bail!("no window {window}") };
        // SAFETY: a window is written only here, and read only by the getter between
        // our "filled" message for it and its "emptied" answer: this process writes a
        // window only before it has said it is filled, or after the getter has said
        // it is empty again, so no one reads or writes the bytes while we write them.
        // The messages go through the kernel, which orders the writes before the
        // reads. The mutable view lives only for this copy.
        let place = unsafe { place.deref_mut() };
        place[..piece.len()].copy_from_slice(piece);
        packing.filled.send((window, piece.len())).context(gone)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_arrives_whole_through_the_two_windows() {
        // One value; exactly one window; many pieces with a short last one.
        for shape in [(1, 1), (1, WINDOW_BYTES / 8), (3, 100_003)] {
            let sent = Array2::from_shape_fn(shape, |(r, c)| (r * 1_000_000 + c) as f64);
            let (queue, gets) = ipc::channel().unwrap();
            let putter = {
                let sent = sent.clone();
                std::thread::spawn(move || put(&queue, 7, &sent).unwrap())
            };
            let got = get(&gets).unwrap();
            putter.join().unwrap();
            assert_eq!((got.from, got.bytes), (7, sent.len() * 8));
            assert_eq!(got.array, sent, "{shape:?}");
        }
    }
}
