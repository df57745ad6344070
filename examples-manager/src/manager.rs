//! Starting the manager and its clients: the server process that hosts the array,
//! and children handed a proxy. Python's `with CustomManager() as manager:` and
//! `Process(target=task, args=(data_proxy,))`.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use examples_manager::{Proxy, ServerGone, serve};
use ipc_channel::ipc::{self, IpcReceiver, IpcSender};
use ndarray::Array1;
use plumbing::Child;
use plumbing::children::this_program;
use plumbing::ipc::{call_back, start_and_accept};
use serde::{Deserialize, Serialize};

/// Starts a server process hosting `len` ones, lets `scene` use it through a proxy,
/// then shuts it down and waits for it: the tutorial's `with CustomManager() as
/// manager:`. If anything fails, the error says how the server ended (if it did),
/// and the server is killed and reaped when it is dropped.
pub fn with_server<T>(len: usize, scene: impl FnOnce(&Proxy) -> Result<T>) -> Result<T> {
    let server_process = this_program(["server", &len.to_string()])?;
    let (mut server, _, proxy) = start_and_accept::<Proxy>("the server process", server_process)?;
    println!("parent: the server (process {}) hosts ones of shape [{len}]", server.pid());
    let value = scene(&proxy).map_err(|err| {
        // A child may have failed because the server died: if the server no longer
        // answers, how it ended is the story.
        let gone = err.downcast_ref::<ServerGone>().is_some()
            || !proxy.answers_within(Duration::from_secs(1));
        server.explain(err, gone)
    })?;
    proxy.shutdown().map_err(|err| server.explain(err, true))?;
    server.wait()?;
    Ok(value)
}

/// The server process (the hidden `server` sub-command): creates the array, hands
/// the parent a proxy, then serves until it is shut down or every proxy is gone.
pub fn server(len: usize, socket: &str) -> Result<()> {
    // Ones made the way numpy's `ones` makes a large array, on 2 MiB pages.
    let array = Array1::from_vec(plumbing::bench::ones(len));
    plumbing::show_memory("server", &array); // the only process that holds the array
    let (requests, incoming) = ipc::channel()?;
    // The proxy carries our request channel's only sender away: from now on only
    // clients hold one, so `serve` also ends by itself when the last client is gone.
    call_back(socket, Proxy::new(requests))?;
    serve(array, incoming);
    Ok(())
}

/// What a child sends its parent, on the socket it called back on.
#[derive(Serialize, Deserialize)]
pub enum FromChild {
    /// "I am up: send my orders here."
    Ready(IpcSender<Order>),
    /// The sum the child got through its proxy.
    Summed(f64),
    /// The job is done.
    Done,
}

/// What the parent sends a child: its name for output, its proxy and its job.
#[derive(Serialize, Deserialize)]
pub struct Order {
    pub label: String,
    pub proxy: Proxy,
    pub job: Job,
}

#[derive(Serialize, Deserialize)]
pub enum Job {
    Sum,
    Fill(f64),
    AddOne,
}

/// A child process, as the parent sees it.
pub struct ChildHandle {
    label: String,
    child: Child,
    orders: IpcSender<Order>,
    reports: IpcReceiver<FromChild>,
}

impl ChildHandle {
    /// Starts a child and waits until it has called back, ready for orders.
    pub fn start(label: &str) -> Result<ChildHandle> {
        let command = this_program(["child", label])?;
        let (child, reports, first) = start_and_accept(&format!("the {label} process"), command)?;
        let FromChild::Ready(orders) = first else {
            bail!("the {label} process did not start by asking for orders");
        };
        Ok(ChildHandle { label: label.to_string(), child, orders, reports })
    }

    /// Hands the child its job and a proxy: a clone of a sender, not of the array.
    /// A child that died first makes the send fail; its exit status says why.
    pub fn order(&mut self, proxy: &Proxy, job: Job) -> Result<()> {
        let order = Order { label: self.label.clone(), proxy: proxy.clone(), job };
        self.orders.send(order).map_err(|err| {
            let err = anyhow::Error::new(err)
                .context(format!("the {} process went away before its orders", self.label));
            self.child.explain(err, true)
        })
    }

    /// Waits for the child's report, then for the child. A child that dies closes
    /// its channel, so `recv` fails instead of waiting forever; its exit status
    /// then says what happened.
    pub fn finish(self) -> Result<FromChild> {
        let report = self.reports.recv();
        self.child.wait()?;
        report.with_context(|| format!("the {} process ended without reporting", self.label))
    }
}

/// The child process (the hidden `child` sub-command): call back, take the order,
/// do the job through the proxy, report. It gets a proxy, never the array.
pub fn child(socket: &str, job: impl FnOnce(&str, &Proxy, Job) -> Result<FromChild>) -> Result<()> {
    let (orders, incoming) = ipc::channel()?;
    let parent = call_back(socket, FromChild::Ready(orders))?;
    let Order { label, proxy, job: what } =
        incoming.recv().context("the parent went away before sending orders")?;
    let report = job(&label, &proxy, what)?;
    // Our lines must be out before the parent, once it has our report, prints more.
    std::io::stdout().flush()?;
    parent.send(report)?;
    Ok(())
}
