//! The parent's side of a call back: waiting for the child to connect, on a helper
//! thread, while this thread watches the child.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ipc_channel::ipc::{IpcOneShotServer, IpcSender};
use plumbing::Child;

use crate::{Task, explain};

/// Waits for the child to connect and send the channel its task goes down, on a
/// helper thread, while this thread watches the child: a dead child ends the wait.
pub(crate) fn accept<T: Task>(
    child: &mut Child,
    server: IpcOneShotServer<IpcSender<T>>,
    socket: &str,
    label: &str,
) -> Result<IpcSender<T>> {
    quiet_panics_on(ACCEPTING);
    let (done, accepted) = mpsc::channel();
    let acceptor = std::thread::Builder::new()
        .name(ACCEPTING.into())
        .spawn(move || {
            // Another process may write anything to the socket, and on some malformed
            // messages ipc-channel panics (an assertion) where it could return an
            // error. Err(_): it did.
            let mut call = None;
            let accepted = catch_unwind(AssertUnwindSafe(|| {
                server.accept().map(|(connection, tasks)| {
                    call = Some(connection);
                    tasks
                })
            }));
            let _ = done.send(accepted);
            // The connection the child called on is no longer needed. Closing it took
            // 0.3 to 0.5 ms in the queue bench's runs (with descriptors in flight,
            // this kernel looks for unreachable ones at every close of a Unix
            // socket): this thread closes it, while the parent goes on.
            drop(call);
        })
        .context("cannot start a thread to wait for the child")?;
    loop {
        match accepted.recv_timeout(Duration::from_millis(10)) {
            Ok(Ok(result)) => {
                // The acceptor only closes the connection now; it ends by itself.
                drop(acceptor);
                let tasks = result
                    .with_context(|| format!("{label} did not call back properly"))
                    .map_err(|err| explain(child, err, true))?;
                return Ok(tasks);
            }
            Ok(Err(_panic)) => bail!("the socket for {label} got a message that is no call back"),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => bail!("the thread accepting {label} vanished"),
        }
        if let Some(ended) = child.ended()? {
            // It may have connected just before it ended: let the acceptor finish.
            if let Ok(Ok(Ok(tasks))) = accepted.recv_timeout(Duration::from_millis(500)) {
                let _ = acceptor.join();
                return Ok(tasks);
            }
            // Connect and hang up ourselves: that ends the acceptor's wait, and with
            // it the socket's directory.
            drop(IpcSender::<IpcSender<T>>::connect(socket.to_owned()));
            let _ = acceptor.join();
            match ended {
                Err(err) => bail!("{err:#}, before it called back"),
                Ok(()) => bail!("{label} ended before it called back"),
            }
        }
    }
}

/// The name of the thread that accepts a child's call.
const ACCEPTING: &str = "accept";

/// No panic message from the thread named `thread` (its panic is caught, and said
/// as an error line); any other thread's panic is said as before.
fn quiet_panics_on(thread: &'static str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(thread) {
                before(info);
            }
        }));
    });
}
