//! The manager of `examples-manager`: what the server offers ([`Request`]), how
//! clients ask for it ([`Proxy`]), and the server's loop ([`serve`], in server.rs).
//! Python's `BaseManager` with a registered type, and its `AutoProxy`.
//!
//! The scenes in `scenes/` are the program to read first; this is what they use.
//!
//! Python's manager hands out an `AutoProxy` that forwards any method *name* to the
//! server, and the server decides at run time whether it exposes that name (the
//! tutorial's `AttributeError` / `RemoteError`). Here the server's whole API is the
//! [`Request`] enum and the proxy has one typed method per variant, so asking for an
//! operation the server does not offer is a compile error in the client.

mod server;

use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use ipc_channel::ipc::{self, IpcBytesSender, IpcSender};
use ndarray::Array1;
use serde::{Deserialize, Serialize};

pub use server::{host, serve};

/// Everything the server can do: one variant per operation, each carrying the
/// sender on which the server answers (senders travel inside messages, so every
/// request brings its own private reply channel and answers never get mixed up
/// between clients).
#[derive(Serialize, Deserialize)]
pub enum Request {
    /// The array's shape: the attribute the tutorial could not read through a proxy.
    Shape { reply: IpcSender<Vec<usize>> },
    /// The sum of every element, computed where the array lives.
    Sum { reply: IpcSender<f64> },
    /// The smallest and largest element: one answer that vouches for the whole array.
    MinMax { reply: IpcSender<(f64, f64)> },
    /// A copy of the elements `start..end` (the tutorial's `getdata(slice(0, 10))`).
    Slice { start: usize, end: usize, reply: IpcSender<Result<Vec<f64>, String>> },
    /// Sets every element to `value`.
    Fill { value: f64, reply: IpcSender<()> },
    /// Adds `value` to the elements `start..end`.
    Add { start: usize, end: usize, value: f64, reply: IpcSender<Result<(), String>> },
    /// Streams a full copy of the array as raw bytes: first the length (u64, little
    /// endian), then the elements (f64, little endian) in chunks.
    Copy { bytes: IpcBytesSender },
    /// The server's own peak memory in bytes: the most it has held at once.
    PeakMemory { reply: IpcSender<u64> },
    /// Answer, then stop serving: the server process exits.
    Shutdown { reply: IpcSender<()> },
}

/// Elements per chunk when streaming a copy: 1 MiB of f64 at a time, so neither side
/// ever holds more than the array, one full copy and one chunk.
pub(crate) const COPY_CHUNK: usize = 128 * 1024;

/// A client's handle on the hosted array: a sender of [`Request`]s and nothing else.
/// Cloning it (or sending it to another process inside a message) gives another
/// client of the same array; the array itself never moves.
///
/// Each method is one request and one answer. If the server has died, the reply
/// channel closes and the method returns a [`ServerGone`] error: never a hang.
///
/// The proxy only has the operations the server offers:
///
/// ```
/// fn report(proxy: &examples_manager::Proxy) -> anyhow::Result<()> {
///     let total = proxy.sum()?;
///     println!("sum: {total}");
///     Ok(())
/// }
/// ```
///
/// and asking for one it does not offer (here a `mean`) does not compile. In Python
/// the same mistake is found only when the server raises a remote error at run time:
///
/// ```compile_fail,E0599
/// fn report(proxy: &examples_manager::Proxy) -> anyhow::Result<()> {
///     let average = proxy.mean()?;
///     println!("mean: {average}");
///     Ok(())
/// }
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct Proxy {
    requests: IpcSender<Request>,
}

impl Proxy {
    /// Wraps the sending end of the server's request channel.
    pub fn new(requests: IpcSender<Request>) -> Proxy {
        Proxy { requests }
    }

    pub fn shape(&self) -> Result<Vec<usize>> {
        self.ask("shape", |reply| Request::Shape { reply })
    }

    pub fn sum(&self) -> Result<f64> {
        self.ask("sum", |reply| Request::Sum { reply })
    }

    pub fn min_max(&self) -> Result<(f64, f64)> {
        self.ask("min_max", |reply| Request::MinMax { reply })
    }

    pub fn slice(&self, start: usize, end: usize) -> Result<Vec<f64>> {
        self.ask("slice", |reply| Request::Slice { start, end, reply })?
            .map_err(|refusal| anyhow!("the server refused slice {start}..{end}: {refusal}"))
    }

    pub fn fill(&self, value: f64) -> Result<()> {
        self.ask("fill", |reply| Request::Fill { value, reply })
    }

    pub fn add(&self, start: usize, end: usize, value: f64) -> Result<()> {
        self.ask("add", |reply| Request::Add { start, end, value, reply })?
            .map_err(|refusal| anyhow!("the server refused add on {start}..{end}: {refusal}"))
    }

    pub fn peak_memory(&self) -> Result<u64> {
        self.ask("peak_memory", |reply| Request::PeakMemory { reply })
    }

    pub fn shutdown(&self) -> Result<()> {
        self.ask("shutdown", |reply| Request::Shutdown { reply })
    }

    /// Fetches a full copy of the hosted array (the tutorial's `_getvalue()`).
    ///
    /// The bytes are decoded into the new array chunk by chunk as they arrive, so
    /// this process holds one copy plus one chunk, never a byte buffer *and* an array.
    pub fn copy(&self) -> Result<Array1<f64>> {
        let gone = |_| ServerGone { request: "copy" };
        let (bytes, incoming) = ipc::bytes_channel()?;
        // `bytes` moves into the request and is dropped here after sending: only the
        // server holds a sender, so if it dies, `recv` below fails instead of waiting.
        self.requests.send(Request::Copy { bytes }).map_err(gone)?;
        let header: [u8; 8] = incoming.recv().map_err(gone)?[..]
            .try_into()
            .context("the copy did not start with its length")?;
        let len = usize::try_from(u64::from_le_bytes(header))?;
        let mut values = Vec::new();
        values
            .try_reserve_exact(len)
            .with_context(|| format!("no memory for a copy of {len} values"))?;
        while values.len() < len {
            let chunk = incoming.recv().map_err(gone)?;
            ensure!(
                chunk.len() % 8 == 0 && values.len() + chunk.len() / 8 <= len,
                "the copy arrived garbled (a chunk of {} bytes)",
                chunk.len()
            );
            values.extend(chunk.chunks_exact(8).map(|bytes| {
                f64::from_le_bytes(bytes.try_into().expect("chunks_exact(8) gives 8 bytes"))
            }));
        }
        Ok(Array1::from_vec(values))
    }

    /// Whether the server still answers a small request within `limit`: after an
    /// error elsewhere (a child that failed), this tells whether the server is the
    /// story. A busy or dying server says no.
    pub fn answers_within(&self, limit: Duration) -> bool {
        let Ok((reply, answer)) = ipc::channel::<Vec<usize>>() else { return false };
        self.requests.send(Request::Shape { reply }).is_ok()
            && answer.try_recv_timeout(limit).is_ok()
    }

    /// One round trip: a fresh reply channel, the request carrying its sending end,
    /// then a wait on the receiving end.
    fn ask<T>(&self, request: &'static str, make: impl FnOnce(IpcSender<T>) -> Request) -> Result<T>
    where
        T: for<'de> Deserialize<'de> + Serialize,
    {
        let (reply, answer) = ipc::channel()?;
        // `make` moves our only `reply` sender into the request, which `send` consumes:
        // afterwards just the server holds it, so its death closes `answer`.
        self.requests.send(make(reply)).map_err(|_| ServerGone { request })?;
        Ok(answer.recv().map_err(|_| ServerGone { request })?)
    }
}

/// The server went away before answering: its end of a channel closed.
#[derive(Debug)]
pub struct ServerGone {
    pub request: &'static str,
}

impl std::fmt::Display for ServerGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the server did not answer `{}` (its channel closed)", self.request)
    }
}

impl std::error::Error for ServerGone {}
