//! Exercise "add a request kind" (docs/exercises/manager.md): a `Mean` request,
//! in a manager reduced to its bones.
//!
//! A server process hosts n ones. The parent holds a proxy (the sending end of the
//! server's request channel) and asks for the sum, and then for the mean: the new
//! request kind. Adding it took the three steps examples-manager needs too: a
//! variant in `Request`, a method on `Proxy`, an arm in `serve`. Asking for a request
//! the server does not offer is not possible: the proxy has no method for it, so the
//! client would not compile.
//!
//! `cargo run -p exercises --example manager_mean -- --n 1000000`

use anyhow::{Context, Result, ensure};
use clap::Parser;
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use ndarray::Array1;
use serde::{Deserialize, Serialize};

/// A server hosts n ones; the parent asks for the sum and the mean through a proxy.
#[derive(Parser)]
struct Cli {
    /// Number of f64 values the server hosts [default: 1000000]
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..))]
    n: u32,
}

/// Everything a client may ask. Each request carries the sender for its answer.
#[derive(Serialize, Deserialize)]
enum Request {
    Sum {
        reply: IpcSender<f64>,
    },
    /// The new kind: the mean, computed where the array is.
    Mean {
        reply: IpcSender<f64>,
    },
    Shutdown,
}

/// The client's handle on the server: one method per request kind.
#[derive(Serialize, Deserialize)]
struct Proxy {
    requests: IpcSender<Request>,
}

impl Proxy {
    fn sum(&self) -> Result<f64> {
        self.ask(|reply| Request::Sum { reply })
    }

    fn mean(&self) -> Result<f64> {
        self.ask(|reply| Request::Mean { reply })
    }

    fn ask(&self, request: impl FnOnce(IpcSender<f64>) -> Request) -> Result<f64> {
        let (reply, answer) = ipc::channel()?;
        self.requests.send(request(reply))?;
        answer.recv().context("the server did not answer")
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("server") {
        return server(args[2].clone(), args[3].parse()?);
    }
    let n = Cli::parse().n;
    let (welcome, name) = IpcOneShotServer::<Proxy>::new()?;
    let mut server = std::process::Command::new(std::env::current_exe()?)
        .args(["server", &name, &n.to_string()])
        .spawn()
        .context("could not start the server")?;
    let (_, proxy) = welcome.accept().context("the server never called back")?;

    let sum = proxy.sum()?;
    let mean = proxy.mean()?;
    println!("parent: sum through my proxy: {sum}");
    println!("parent: mean through my proxy: {mean}");
    proxy.requests.send(Request::Shutdown)?;
    let status = server.wait()?;
    ensure!(status.success(), "the server failed: {status}");
    ensure!(sum == f64::from(n) && mean == 1.0, "expected sum {n} and mean 1");
    println!(
        "verdict: the server answered the new Mean request: {mean} over {n} elements, computed where they live"
    );
    Ok(())
}

/// The server process: host the array, hand out a proxy, serve until shutdown.
fn server(name: String, n: usize) -> Result<()> {
    let array = Array1::<f64>::ones(n);
    let (requests, incoming) = ipc::channel::<Request>()?;
    IpcSender::<Proxy>::connect(name)?.send(Proxy { requests })?;
    serve(&array, &incoming)
}

fn serve(array: &Array1<f64>, incoming: &IpcReceiver<Request>) -> Result<()> {
    loop {
        match incoming.recv()? {
            Request::Sum { reply } => reply.send(array.sum())?,
            Request::Mean { reply } => reply.send(array.mean().unwrap_or(f64::NAN))?,
            Request::Shutdown => return Ok(()),
        }
    }
}
