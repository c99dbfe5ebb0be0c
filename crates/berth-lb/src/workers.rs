//! The serving threads: one single-threaded tokio runtime per thread. Each listener's accept
//! loop hands every new connection to the thread serving the fewest connections; from then
//! on the connection, its requests and the keep-alive target connections they use all stay
//! on that thread, so a request costs no cross-thread wake-up (the shape of HAProxy's and
//! nginx's workers). Each thread is kept on a core of its own unless told otherwise
//! (`affinity`).

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};

use crate::affinity::{self, Affinity};

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// The index of the serving thread the caller runs on (0 off the serving threads).
pub fn slot() -> usize {
    SLOT.with(|s| s.get())
}

pub struct Workers {
    dispatch: Dispatch,
    /// Dropping these ends the threads (their runtimes, and every task on them).
    _stops: Vec<oneshot::Sender<()>>,
}

/// Hands connections to the serving threads.
#[derive(Clone)]
pub struct Dispatch {
    handles: Arc<[Handle]>,
    /// Connections each thread serves.
    load: Arc<[AtomicUsize]>,
}

impl Workers {
    pub fn start(threads: usize, placement: Affinity) -> io::Result<Self> {
        let threads = threads.max(1);
        let cores = match placement {
            Affinity::Cores => affinity::allowed()
                .inspect_err(|e| tracing::warn!(error = %e, "the serving threads' cores are unknown; not pinning them"))
                .ok()
                .and_then(|allowed| affinity::plan(threads, &allowed)),
            Affinity::Unpinned => None,
        };
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        for i in 0..threads {
            let (handle_tx, handle_rx) = mpsc::channel();
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let core = cores.as_ref().map(|c| c[i]);
            std::thread::Builder::new().name(format!("berth-lb-{i}")).spawn(move || {
                SLOT.with(|s| s.set(i));
                if let Some(core) = core
                    && let Err(e) = affinity::pin(core)
                {
                    tracing::warn!(error = %e, core, "a serving thread could not be kept on its core");
                }
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
        let load = handles.iter().map(|_| AtomicUsize::new(0)).collect();
        Ok(Self { dispatch: Dispatch { handles: handles.into(), load }, _stops: stops })
    }

    pub fn len(&self) -> usize {
        self.dispatch.handles.len()
    }

    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    /// The thread that runs accept loops.
    pub fn first(&self) -> &Handle {
        &self.dispatch.handles[0]
    }
}

impl Dispatch {
    /// Serves a newly accepted connection with `serve` on the least busy serving thread.
    pub fn hand_off<F, Fut>(&self, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Ok(stream) = stream.into_std() else { return };
        let i = (0..self.load.len()).min_by_key(|&i| self.load[i].load(Ordering::Relaxed)).unwrap_or(0);
        self.load[i].fetch_add(1, Ordering::Relaxed);
        let guard = Served(self.load.clone(), i);
        self.handles[i].spawn(async move {
            let _guard = guard;
            if let Ok(stream) = TcpStream::from_std(stream) {
                serve(stream).await;
            }
        });
    }
}

/// A listener's accept loop: every connection accepted until `stop` changes (or its sender
/// goes away) is served by `serve` on the least busy serving thread.
pub async fn accept_all<F, Fut>(listener: TcpListener, mut stop: watch::Receiver<bool>, dispatch: Dispatch, serve: F)
where
    F: Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let (serve, stop) = (serve.clone(), stop.clone());
                dispatch.hand_off(stream, move |stream| serve(stream, peer, stop));
            }
            // Out of file descriptors and the like: wait a little rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// One connection served by thread `.1`, until dropped.
struct Served(Arc<[AtomicUsize]>, usize);

impl Drop for Served {
    fn drop(&mut self) {
        self.0[self.1].fetch_sub(1, Ordering::Relaxed);
    }
}

/// A socket bound to `address`, ready to listen.
pub fn bind(address: SocketAddr) -> io::Result<TcpSocket> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // Address reuse lets a port just freed be bound again at once.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cores each serving thread of `workers` may run on.
    fn cores_of(workers: &Workers) -> Vec<Vec<usize>> {
        workers
            .dispatch
            .handles
            .iter()
            .map(|h| {
                let (tx, rx) = mpsc::channel();
                h.spawn(async move { tx.send(affinity::allowed().unwrap()).unwrap() });
                rx.recv().unwrap()
            })
            .collect()
    }

    #[test]
    fn serving_threads_are_kept_on_cores_of_their_own() {
        let allowed = affinity::allowed().unwrap();
        let workers = Workers::start(allowed.len(), Affinity::Cores).unwrap();
        let expected: Vec<Vec<usize>> = allowed.iter().map(|&c| vec![c]).collect();
        assert_eq!(cores_of(&workers), expected);
    }

    #[test]
    fn more_threads_than_cores_or_unpinned_are_left_to_the_kernel() {
        let allowed = affinity::allowed().unwrap();
        let crowded = Workers::start(allowed.len() + 1, Affinity::Cores).unwrap();
        assert!(cores_of(&crowded).iter().all(|c| *c == allowed));
        let unpinned = Workers::start(allowed.len(), Affinity::Unpinned).unwrap();
        assert!(cores_of(&unpinned).iter().all(|c| *c == allowed));
    }
}
