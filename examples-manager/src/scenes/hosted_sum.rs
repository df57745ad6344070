//! hosted-sum: the tutorial's first example. A server process hosts the array; a
//! sum computed on the server sends back one number, while a sum on a fetched copy
//! first sends the whole array across. Both are timed.

use std::time::Instant;

use anyhow::{Result, ensure};
use plumbing::memory::peak;
use plumbing::show::{size, verdict};

use crate::scenes::with_server;

/// The parent: both sums, side by side.
pub fn parent(len: usize) -> Result<()> {
    let array = size(len as u64 * 8);
    // with CustomManager() as manager: data_proxy = manager.shared_array(...)
    let (hosted, copied) = with_server(len, |proxy| {
        let start = Instant::now();
        let hosted = proxy.sum()?; // data_proxy.sum(): computed where the array lives
        let hosted_time = start.elapsed().as_secs_f64();
        println!(
            "parent: sum on the hosted array: {hosted} in {hosted_time:.3} s (only the answer came back)"
        );

        let start = Instant::now();
        let copy = proxy.copy()?; // data_proxy._getvalue(): the whole array crosses over
        let copied = copy.sum();
        plumbing::memory::show_memory("parent", &copy); // the fetched copy: ours alone
        let copied_time = start.elapsed().as_secs_f64();
        println!(
            "parent: sum on a fetched copy: {copied} in {copied_time:.3} s ({array} crossed over first)"
        );
        drop(copy);

        println!(
            "parent: fetching a copy first took {:.1}x as long as asking the server",
            copied_time / hosted_time
        );
        println!(
            "parent: peak memory: parent {}, server {} (the array is {array})",
            size(peak()),
            size(proxy.peak_memory()?)
        );
        Ok((hosted, copied))
    })?;
    ensure!(
        hosted == len as f64 && copied == len as f64,
        "expected both sums to be {len}, but the server said {hosted} and the copy gave {copied}"
    );
    verdict(&format!(
        "hosted-sum: both sums are {len}; the hosted sum moved one number, the copied sum the whole array ({array})"
    ));
    Ok(())
}
