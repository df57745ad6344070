//! child-proxy: the tutorial's second example. The parent sums the hosted array
//! through its proxy; then a child is handed a proxy and sums too. One array, never
//! copied: only requests and answers travel.

use anyhow::{Result, bail, ensure};
use examples_manager::Proxy;

use crate::manager::{ChildHandle, FromChild, Job, with_server};

/// The parent: its own sum, then the child's.
pub fn parent(len: usize) -> Result<()> {
    let (parent_sum, child_sum) = with_server(len, |proxy| {
        let parent_sum = proxy.sum()?;
        println!("parent: sum through my proxy: {parent_sum}");
        // child = Process(target=task, args=(data_proxy,)); start(); join()
        let mut child = ChildHandle::start("child")?;
        // The child receives a clone of our proxy: one more sender into the same
        // server. The array does not move.
        child.order(proxy, Job::Sum)?;
        let FromChild::Summed(child_sum) = child.finish()? else {
            bail!("the child reported something other than its sum");
        };
        Ok((parent_sum, child_sum))
    })?;
    ensure!(
        parent_sum == len as f64 && child_sum == len as f64,
        "expected both sums to be {len}, but the parent got {parent_sum} and the child {child_sum}"
    );
    println!(
        "verdict: child-proxy: the parent and the child both summed {len} through their proxies; one array, never copied"
    );
    Ok(())
}

/// The child: the tutorial's `task(data_proxy)`, a sum through its proxy.
pub fn child(label: &str, proxy: &Proxy) -> Result<FromChild> {
    let sum = proxy.sum()?; // data_proxy.sum()
    println!("{label}: sum through my proxy: {sum}");
    println!("{label}: memory: none of the array's pages are here; it holds only a proxy");
    Ok(FromChild::Summed(sum))
}
