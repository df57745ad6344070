//! The scenes, one file each, in the tutorial's order, and what they share: the
//! server started and stopped around a scene, the sizes they check first, and the
//! name each child goes by.

pub mod attribute;
pub mod child_proxy;
pub mod hosted_sum;
pub mod mutate;
pub mod slice;

use std::time::Duration;

use anyhow::Result;
use examples_manager::{Proxy, ServerGone};
use ipc_channel::ipc;
use plumbing::{Child, Process, memory};

use crate::{Scene, Task};

/// The tutorial's sizes: 50,000,000 f64 for the timing example, 100,000,000 for the others.
const HOSTED_SUM_N: u64 = 50_000_000;
const N: u64 = 100_000_000;

/// Runs `scenes` in order, each under its heading.
pub fn run(scenes: &[Scene], n: Option<u64>, clients: u64) -> Result<()> {
    for (i, scene) in scenes.iter().enumerate() {
        if i > 0 {
            println!();
        }
        match scene {
            Scene::HostedSum => {
                println!(
                    "=== hosted-sum: summing where the array lives versus copying it out first ==="
                );
                // The parent also holds a full copy in this scene: two arrays must fit.
                hosted_sum::parent(array_len(n, HOSTED_SUM_N, 2)?)?;
            }
            Scene::ChildProxy => {
                println!("=== child-proxy: the parent and a child both sum the hosted array ===");
                child_proxy::parent(array_len(n, N, 1)?)?;
            }
            Scene::Attribute => {
                println!(
                    "=== attribute: the proxy answers the array's shape (a typed request) ==="
                );
                attribute::parent(array_len(n, N, 1)?)?;
            }
            Scene::Slice => {
                println!(
                    "=== slice: the proxy returns a slice of values, a copy of just those ==="
                );
                slice::parent(array_len(n, N, 1)?)?;
            }
            Scene::Mutate => {
                println!(
                    "=== mutate: a child writes through its proxy; clients at once lose nothing ==="
                );
                mutate::parent(array_len(n, N, 1)?, clients)?;
            }
        }
    }
    Ok(())
}

/// Starts a server process hosting `len` ones, lets `scene` use it through a proxy,
/// then shuts it down and waits for it: the tutorial's `with CustomManager() as
/// manager:`. If anything fails, the error says how the server ended (if it did),
/// and the server is killed and reaped when it is dropped.
pub fn with_server<T>(len: usize, scene: impl FnOnce(&Proxy) -> Result<T>) -> Result<T> {
    with_server_and(len, |_| Vec::new(), |proxy, _| scene(proxy))
}

/// [`with_server`], with children started at the same time as the server, so that
/// they start up side by side: `tasks` makes their tasks from the proxy, and
/// `scene` gets them running. (The bench's way; the scenes start theirs later.)
pub fn with_server_and<T>(
    len: usize,
    tasks: impl FnOnce(&Proxy) -> Vec<Task>,
    scene: impl FnOnce(&Proxy, Vec<Child>) -> Result<T>,
) -> Result<T> {
    // The request channel: its receiving end goes to the server in its task, and the
    // sending end becomes our proxy. Every client's proxy is a clone of it.
    let (requests, incoming) = ipc::channel()?;
    let proxy = Proxy::new(requests);
    let mut processes = vec![Process::new(Task::Server { len, requests: incoming })];
    processes.extend(tasks(&proxy).into_iter().map(Process::new));
    let mut children = callback::start_all(processes)?;
    let mut server = children.remove(0);
    // The server answers once it has made the array and serves.
    proxy.shape().map_err(|err| callback::explain(&mut server, err, true))?;
    println!("parent: the server (process {}) hosts ones of shape [{len}]", server.pid());
    let value = scene(&proxy, children).map_err(|err| {
        // A child may have failed because the server died: if the server no longer
        // answers, how it ended is the story.
        let gone = err.downcast_ref::<ServerGone>().is_some()
            || !proxy.answers_within(Duration::from_secs(1));
        callback::explain(&mut server, err, gone)
    })?;
    proxy.shutdown().map_err(|err| callback::explain(&mut server, err, true))?;
    server.join()?;
    Ok(value)
}

/// The name each child goes by in its own lines and errors.
impl callback::Task for Task {
    fn role(&self) -> String {
        match self {
            Task::Server { .. } => "server".into(),
            Task::AddOne { id, .. } => format!("child {id}"),
            Task::Sum { .. } | Task::Fill { .. } => "child".into(),
        }
    }

    fn label(&self) -> String {
        match self {
            Task::Server { .. } => "the server process".into(),
            _ => "the child process".into(),
        }
    }
}

/// The length of a scene's array: `--n` or the scene's default. Refused before
/// anything is allocated if `copies` arrays that long do not fit in memory.
pub fn array_len(n: Option<u64>, default: u64, copies: u64) -> Result<usize> {
    let n = n.unwrap_or(default);
    memory::array_len(n, Some(n), size_of::<f64>(), copies, "the server's and the parent's copy")
}
