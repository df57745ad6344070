//! child-proxy: the tutorial's second example. The parent sums the hosted array
//! through its proxy; then a child is handed a proxy and sums too. One array, never
//! copied: only requests and answers travel.

use anyhow::{Context, Result, ensure};
use callback::StartCallingBack;
use examples_manager::Proxy;
use ipc_channel::ipc::{self, IpcSender};
use plumbing::Process;
use plumbing::memory::peak;
use plumbing::show::{size, verdict};

use crate::Task;
use crate::scenes::with_server;

/// The parent: its own sum, then the child's.
pub fn parent(len: usize) -> Result<()> {
    let (parent_sum, (child_sum, child_peak)) = with_server(len, |proxy| {
        let parent_sum = proxy.sum()?;
        println!("parent: sum through my proxy: {parent_sum}");
        // child = Process(target=task, args=(data_proxy,)); start(); join(). The child
        // gets a clone of our proxy: one more sender into the same server.
        let (report, reports) = ipc::channel()?;
        let child =
            Process::new(Task::Sum { proxy: proxy.clone(), report }).start_calling_back()?;
        let summed = reports.recv().context("the child ended without reporting its sum");
        child.join_with(summed).map(|summed| (parent_sum, summed))
    })?;
    ensure!(
        parent_sum == len as f64 && child_sum == len as f64,
        "expected both sums to be {len}, but the parent got {parent_sum} and the child {child_sum}"
    );
    // The array's bytes never reached the child: its peak stays far below them.
    let bytes = len as u64 * 8;
    ensure!(
        bytes < 50_000_000 || child_peak < bytes / 2,
        "expected no copy of the {} array in the child, but it peaked at {}",
        size(bytes),
        size(child_peak)
    );
    verdict(&format!(
        "child-proxy: the parent and the child both summed {len} through their proxies; one array, never copied"
    ));
    Ok(())
}

/// The child: the tutorial's `task(data_proxy)`, a sum through its proxy. It
/// reports its sum, and the most memory it held, for the parent's verdict.
pub fn child(proxy: &Proxy, report: &IpcSender<(f64, u64)>) -> Result<()> {
    let sum = proxy.sum()?; // data_proxy.sum()
    println!("child: sum through my proxy: {sum}");
    let array = proxy.shape()?.iter().product::<usize>() as u64 * 8;
    println!(
        "child: memory: this process peaked at {}, the array is {}",
        size(peak()),
        size(array)
    );
    report.send((sum, peak()))?;
    Ok(())
}
