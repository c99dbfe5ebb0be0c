//! A TCP listener (NLB): each accepted connection goes to one target of the forward
//! action's group (round robin; by source address when the group is sticky) and bytes are
//! copied both ways until either side closes or the connection idles past the listener's
//! idle timeout. A draining target gets no new connections; its open ones run on.

use std::hash::{Hash, Hasher};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::pool::CONNECT_TIMEOUT;
use crate::routes::Routes;
use crate::target::now_nanos;
use crate::workers::Dispatch;

/// Serves the listener's connections until `stop` changes (or its sender goes away); a
/// connection in progress ends with it.
pub async fn serve(
    listener: TcpListener,
    routes: Arc<ArcSwap<Routes>>,
    stop: watch::Receiver<bool>,
    dispatch: Dispatch,
) {
    crate::workers::accept_all(listener, stop, dispatch, move |stream, peer, mut stop| {
        let routes = routes.clone();
        async move {
            tokio::select! {
                _ = connection(stream, peer, &routes) => {}
                _ = stop.changed() => {}
            }
        }
    })
    .await
}

async fn connection(client: TcpStream, peer: SocketAddr, routes: &ArcSwap<Routes>) {
    let (group, idle) = {
        let routes = routes.load();
        routes.meter.connection();
        let Some(forward) = routes.tcp_forward() else { return };
        let Some(group) = forward.choose(None) else { return };
        (group.clone(), routes.idle_timeout)
    };
    let sticky = group.state.load().stickiness.is_some();
    let picked = if sticky {
        let mut h = std::hash::DefaultHasher::new();
        peer.ip().hash(&mut h);
        group.pick_by_hash(h.finish())
    } else {
        group.pick(|_, _| false)
    };
    let Ok(target) = picked else { return };
    group.meter.request();
    let _in_flight = target.begin();
    let server = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.address)).await {
        Ok(Ok(s)) => s,
        _ => {
            group.meter.connection_failed();
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    pipe(client, server, idle).await;
}

/// Copies both ways until one side is done with both directions, or nothing moved for `idle`.
pub async fn pipe(client: TcpStream, server: TcpStream, idle: Duration) {
    let last = Arc::new(AtomicU64::new(now_nanos()));
    let mut a = Tracked { inner: client, last: last.clone() };
    let mut b = Tracked { inner: server, last: last.clone() };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    let idle_nanos = idle.as_nanos() as u64;
    loop {
        let since = now_nanos().saturating_sub(last.load(Ordering::Relaxed));
        if since >= idle_nanos {
            return;
        }
        tokio::select! {
            _ = &mut copy => return,
            _ = tokio::time::sleep(Duration::from_nanos(idle_nanos - since)) => {}
        }
    }
}

/// A stream that notes when bytes last moved through it.
struct Tracked {
    inner: TcpStream,
    last: Arc<AtomicU64>,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.last.store(now_nanos(), Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
