//! Exercise "put, then change" (docs/exercises/queue.md): when is the copy made?
//!
//! The child puts its array of ones on the queue, then fills the same array with
//! zeros and puts it again. The parent gets two arrays. The first holds ones: the
//! message was serialized, a copy made, at the moment of the put, so later changes
//! to the child's array cannot reach it.
//!
//! The queue is an ipc-channel: the parent opens a one-shot server, the child
//! connects to it by name and gets a sender, and everything it sends is serialized
//! into a Unix socket at once.
//!
//! `cargo run -p exercises --example queue_put_then_change -- --n 1000`

use anyhow::{Context, Result, ensure};
use clap::Parser;
use ipc_channel::ipc::{IpcOneShotServer, IpcSender};
use ndarray::Array2;

/// A child puts an array, changes it, and puts it again.
#[derive(Parser)]
struct Cli {
    /// The side of the (n, n) array of f64 [default: 1000, 8 MB]
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..))]
    n: u16,
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("child") {
        let queue = args.next().context("missing the queue's name")?;
        let n: usize = args.next().context("missing n")?.parse()?;
        return child(queue, n);
    }
    let n = Cli::parse().n;
    let (server, name) = IpcOneShotServer::<Array2<f64>>::new()?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["child", &name, &n.to_string()])
        .spawn()
        .context("could not start the child")?;
    // The first message arrives with the connection; the rest through the receiver.
    let (queue, first) = server.accept().context("the child never put anything")?;
    let second = queue.recv().context("the child's second put never arrived")?;
    let status = child.wait()?;
    ensure!(status.success(), "the child process failed: {status}");

    println!("parent: first get:  {:?}", first_values(&first));
    println!("parent: second get: {:?}", first_values(&second));
    ensure!(
        first.iter().all(|&x| x == 1.0) && second.iter().all(|&x| x == 0.0),
        "expected ones from the first put and zeros from the second"
    );
    println!(
        "verdict: the first put holds ones in all {} elements: the copy was made at the put, before the child's fill",
        first.len()
    );
    Ok(())
}

fn child(queue: String, n: usize) -> Result<()> {
    let queue = IpcSender::<Array2<f64>>::connect(queue)?;
    let mut data = Array2::<f64>::ones((n, n));
    queue.send(data.clone())?; // serialized into the socket here and now
    println!("child: put my ones; now filling zeros and putting again");
    data.fill(0.0);
    queue.send(data)?;
    Ok(())
}

fn first_values(data: &Array2<f64>) -> Vec<f64> {
    data.iter().take(5).copied().collect()
}
