//! Exercise "a producer dies" (docs/exercises/queue.md): what does a get do when
//! the only process that could put has died?
//!
//! The child puts one array and then, with `--die`, exits with status 3 before its
//! second put. Python's `queue.get()` would wait forever. Here the parent's second
//! `recv` returns an error at once: the kernel closed the child's end of the socket
//! when it died, and ipc-channel reports that no sender is left. The parent then
//! waits for the child and reports how it ended.
//!
//! `cargo run -p exercises --example queue_dead_producer -- --die`

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use ipc_channel::ipc::{IpcOneShotServer, IpcSender};
use ndarray::Array2;

/// A child puts one array, then dies (with --die) or puts a second one.
#[derive(Parser)]
struct Cli {
    /// The side of the (n, n) array of f64 [default: 1000, 8 MB]
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..))]
    n: u16,
    /// The child exits before its second put
    #[arg(long)]
    die: bool,
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("child") {
        let queue = args.next().context("missing the queue's name")?;
        let n: usize = args.next().context("missing n")?.parse()?;
        let die = args.next().as_deref() == Some("die");
        return child(queue, n, die);
    }
    let cli = Cli::parse();
    let (server, name) = IpcOneShotServer::<Array2<f64>>::new()?;
    let how = if cli.die { "die" } else { "live" };
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["child", &name, &cli.n.to_string(), how])
        .spawn()
        .context("could not start the child")?;
    let (queue, first) = server.accept().context("the child never put anything")?;
    println!("parent: got the first array ({} elements)", first.len());
    let second = queue.recv();
    let status = child.wait()?;
    match second {
        Ok(array) => {
            ensure!(status.success(), "the child process failed: {status}");
            println!("parent: got the second array ({} elements)", array.len());
            println!("verdict: both puts arrived; the child exited normally");
        }
        Err(err) if cli.die => {
            println!("parent: the second get failed at once: {err:?}");
            println!("parent: the child ended with {status}");
            println!("verdict: no hang: the queue reported that its only producer is gone");
        }
        Err(err) => bail!("the second get failed: {err:?} (the child ended with {status})"),
    }
    Ok(())
}

fn child(queue: String, n: usize, die: bool) -> Result<()> {
    let queue = IpcSender::<Array2<f64>>::connect(queue)?;
    queue.send(Array2::<f64>::ones((n, n)))?;
    if die {
        println!("child: put one array; now dying before the second put");
        std::process::exit(3);
    }
    queue.send(Array2::<f64>::zeros((n, n)))?;
    Ok(())
}
