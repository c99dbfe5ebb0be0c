//! The serving threads: one single-threaded tokio runtime per thread, each with its own
//! listening socket per listener (`SO_REUSEPORT`: the kernel spreads new connections over
//! them) and its own keep-alive connections to targets. A connection, the request tasks it
//! spawns and the target connections they use all stay on one thread, so a request costs no
//! cross-thread wake-ups (the design of HAProxy's and nginx's workers).

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;

use tokio::net::TcpSocket;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// The index of the serving thread the caller runs on (0 off the serving threads).
pub fn slot() -> usize {
    SLOT.with(|s| s.get())
}

pub struct Workers {
    handles: Vec<Handle>,
    /// Dropping these ends the threads (their runtimes, and every task on them).
    _stops: Vec<oneshot::Sender<()>>,
}

impl Workers {
    pub fn start(threads: usize) -> io::Result<Self> {
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        for i in 0..threads.max(1) {
            let (handle_tx, handle_rx) = mpsc::channel();
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            std::thread::Builder::new().name(format!("berth-lb-{i}")).spawn(move || {
                SLOT.with(|s| s.set(i));
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                        return;
                    }
                };
                let _ = handle_tx.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
            })?;
            handles.push(handle_rx.recv().map_err(io::Error::other)??);
            stops.push(stop_tx);
        }
        Ok(Self { handles, _stops: stops })
    }

    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }
}

/// Binds one socket per serving thread to `address` (all to the same port when it is 0).
pub fn bind(address: SocketAddr, count: usize) -> io::Result<Vec<TcpSocket>> {
    let first = socket(address)?;
    first.bind(address)?;
    let bound = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        let s = socket(bound)?;
        s.bind(bound)?;
        sockets.push(s);
    }
    Ok(sockets)
}

fn socket(address: SocketAddr) -> io::Result<TcpSocket> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // Address reuse lets a port just freed be bound again at once.
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    Ok(socket)
}
