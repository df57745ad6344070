//! The server's side of the manager: the only code that ever touches the array.

use std::io;

use ipc_channel::ipc::{IpcBytesSender, IpcReceiver};
use ndarray::{Array1, Axis, s};

use crate::{COPY_CHUNK, Request};

/// The server process (`Task::Server`): makes the array, then serves until it is
/// shut down or every proxy is gone. Python's manager process, with its registered
/// type.
pub fn host(len: usize, requests: IpcReceiver<Request>) -> anyhow::Result<()> {
    // Ones made the way numpy's `ones` makes a large array, on 2 MiB pages.
    let array = Array1::from_vec(plumbing::arrays::ones(len));
    plumbing::memory::show_memory("server", &array); // the only process that holds the array
    plumbing::pause_here(&array); // --pause: look at it from another terminal
    serve(array, requests);
    Ok(())
}

/// The server's loop: the only code that ever touches the array.
///
/// Requests from every client arrive on one channel and are applied one at a time,
/// in arrival order, so no request sees another one half done: many clients adding
/// at once lose no update, without any lock. It returns after `Shutdown`, or when
/// every proxy is gone (all clients exited).
pub fn serve(mut array: Array1<f64>, requests: IpcReceiver<Request>) {
    let len = array.len();
    // `let _ = reply.send(..)` below: a client that died before its answer simply
    // does not get it; the server keeps serving the others.
    while let Ok(request) = requests.recv() {
        match request {
            Request::Shape { reply } => {
                let _ = reply.send(array.shape().to_vec());
            }
            Request::Sum { reply } => {
                let _ = reply.send(array.sum());
            }
            Request::MinMax { reply } => {
                let min = array.fold(f64::INFINITY, |low, &x| low.min(x));
                let max = array.fold(f64::NEG_INFINITY, |high, &x| high.max(x));
                let _ = reply.send((min, max));
            }
            Request::Slice { start, end, reply } => {
                let answer =
                    check_range(start, end, len).map(|()| array.slice(s![start..end]).to_vec());
                let _ = reply.send(answer);
            }
            Request::Fill { value, reply } => {
                array.fill(value);
                let _ = reply.send(());
            }
            Request::Add { start, end, value, reply } => {
                let answer = check_range(start, end, len).map(|()| {
                    let mut part = array.slice_mut(s![start..end]);
                    part += value;
                });
                let _ = reply.send(answer);
            }
            Request::Copy { bytes } => {
                let _ = send_copy(&array, &bytes);
            }
            Request::PeakMemory { reply } => {
                let _ = reply.send(plumbing::memory::peak());
            }
            Request::Shutdown { reply } => {
                let _ = reply.send(());
                return;
            }
        }
    }
}

/// A bad range is the client's mistake: answer it, do not crash the shared server.
fn check_range(start: usize, end: usize, len: usize) -> Result<(), String> {
    if start <= end && end <= len { Ok(()) } else { Err(format!("the array has {len} elements")) }
}

/// Encodes one chunk at a time into a small reusable buffer: the server never
/// holds a second copy of the array, only the array and one chunk.
fn send_copy(array: &Array1<f64>, bytes: &IpcBytesSender) -> io::Result<()> {
    bytes.send(&(array.len() as u64).to_le_bytes())?;
    let mut buffer = Vec::with_capacity(COPY_CHUNK * 8);
    for chunk in array.axis_chunks_iter(Axis(0), COPY_CHUNK) {
        buffer.clear();
        for value in chunk {
            buffer.extend_from_slice(&value.to_le_bytes());
        }
        bytes.send(&buffer)?;
    }
    Ok(())
}
